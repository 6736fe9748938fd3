//! `Served`: a `TestApp` behind a real HTTP server on loopback (port 0), whose issuer is its own
//! URL, for verifiers that find the keys over HTTP as they would in production: discovery
//! document, then `jwks_uri`. Serves GET requests to the endpoints' paths (both slash forms).

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::{Endpoint, RawRequest, Stack, TestApp, TestResponse, routes};

pub struct Served {
    /// `http://127.0.0.1:PORT`: the server, and the tokens' issuer.
    pub base_url: String,
    pub app: Arc<TestApp>,
}

impl Served {
    /// An app configured with `overrides` and `JWT_ISSUER` = the server's URL, served.
    pub async fn start(overrides: &[(&str, &str)]) -> Self {
        let listener = Listener::bind().await;
        let base_url = listener.base_url.clone();
        let mut env = overrides.to_vec();
        env.push(("JWT_ISSUER", &base_url));
        let app = Arc::new(TestApp::with_env(&env).await);
        serve(listener.listener, app.clone());
        Self { base_url, app }
    }
}

/// A loopback port bound before what it serves exists, so that its URL can be the issuer.
pub struct Listener {
    listener: tokio::net::TcpListener,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
}

impl Listener {
    pub async fn bind() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        Self { listener, base_url }
    }

    /// The bound socket, for a server of one's own.
    pub fn into_inner(self) -> tokio::net::TcpListener {
        self.listener
    }
}

/// A `Stack` (one app per function, as deployed) served on a `Listener`.
pub struct ServedStack {
    pub base_url: String,
    pub stack: Arc<Stack>,
}

impl ServedStack {
    pub fn serve(listener: Listener, stack: Stack) -> Self {
        let stack = Arc::new(stack);
        serve(listener.listener, stack.clone());
        Self {
            base_url: listener.base_url,
            stack,
        }
    }
}

/// A stack served on a `Listener` whose deployment can be replaced by the next one (an update
/// of the stack: the API keeps its URL, hence the issuer).
pub struct ServedDeployments {
    pub base_url: String,
    current: Arc<RwLock<Arc<Stack>>>,
}

impl ServedDeployments {
    pub fn serve(listener: Listener, stack: Stack) -> Self {
        let current = Arc::new(RwLock::new(Arc::new(stack)));
        serve(listener.listener, current.clone());
        Self {
            base_url: listener.base_url,
            current,
        }
    }

    /// The deployment serving now.
    pub fn current(&self) -> Arc<Stack> {
        self.current
            .read()
            .map_or_else(|e| e.into_inner().clone(), |stack| stack.clone())
    }

    /// Serves `stack` from now on; returns it.
    pub fn replace(&self, stack: Stack) -> Arc<Stack> {
        let stack = Arc::new(stack);
        match self.current.write() {
            Ok(mut current) => *current = stack.clone(),
            Err(poisoned) => *poisoned.into_inner() = stack.clone(),
        }
        stack
    }
}

/// What answers a GET of an endpoint: one app for all, each function's own, or the current
/// deployment's.
trait Serves: Send + Sync + 'static {
    fn get(&self, endpoint: Endpoint) -> impl Future<Output = TestResponse> + Send + '_;
}

fn get_request() -> RawRequest<'static> {
    RawRequest {
        method: "GET",
        content_type: None,
        ..RawRequest::default()
    }
}

impl Serves for TestApp {
    fn get(&self, endpoint: Endpoint) -> impl Future<Output = TestResponse> + Send + '_ {
        self.send(endpoint, get_request())
    }
}

impl Serves for Stack {
    fn get(&self, endpoint: Endpoint) -> impl Future<Output = TestResponse> + Send + '_ {
        self.app(endpoint).send(endpoint, get_request())
    }
}

impl Serves for RwLock<Arc<Stack>> {
    fn get(&self, endpoint: Endpoint) -> impl Future<Output = TestResponse> + Send + '_ {
        let stack = self
            .read()
            .map_or_else(|e| e.into_inner().clone(), |stack| stack.clone());
        async move { stack.app(endpoint).send(endpoint, get_request()).await }
    }
}

fn serve<T: Serves>(listener: tokio::net::TcpListener, target: Arc<T>) {
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| answer(target.clone(), request));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

async fn answer<T: Serves>(
    target: Arc<T>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    let endpoint = Endpoint::ALL
        .iter()
        .find(|e| e.path() == path || routes::twin(e.path()) == path);
    let (status, body) = match endpoint {
        Some(endpoint) if request.method() == hyper::Method::GET => {
            let response = target.get(*endpoint).await;
            (response.status, response.body.to_string())
        }
        Some(_) => (405, String::new()),
        None => (404, String::new()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    response.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("a header"),
    );
    Ok(response)
}

/// The Python of the test tools' venv (`scripts/test` installs PyJWT there).
pub fn venv_python() -> PathBuf {
    let python = routes::workspace_root().join(".local/venv/bin/python3");
    assert!(
        python.exists(),
        "{} is missing: run the tests with scripts/test, which installs it",
        python.display()
    );
    python
}

/// Runs `tests/verifiers/<script>` with the venv's Python, `input` as JSON on its stdin, and
/// returns what it prints (JSON).
pub async fn run_verifier(script: &str, input: &Value) -> Value {
    use tokio::io::AsyncWriteExt;
    let path = routes::workspace_root()
        .join("tests/verifiers")
        .join(script);
    let mut child = tokio::process::Command::new(venv_python())
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the verifier");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.to_string().as_bytes())
        .await
        .expect("write the verifier's input");
    drop(stdin);
    let output = child.wait_with_output().await.expect("the verifier ran");
    assert!(
        output.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the verifier prints JSON")
}
