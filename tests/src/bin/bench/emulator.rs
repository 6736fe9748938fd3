//! A minimal AWS Lambda Runtime API on loopback, to run the real function binaries the way
//! Lambda does (one invocation at a time per process) and time them from outside.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc, oneshot};

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<String>>>>;

struct Shared {
    events: Mutex<mpsc::Receiver<(String, String)>>,
    pending: Pending,
    first_poll: Mutex<Option<Instant>>,
}

/// One function process behind its own Runtime API.
pub struct Function {
    events: mpsc::Sender<(String, String)>,
    shared: Arc<Shared>,
    child: tokio::process::Child,
    pub started_at: Instant,
}

async fn serve(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let reply = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
    };
    if request.method() == Method::GET && path.ends_with("/invocation/next") {
        shared
            .first_poll
            .lock()
            .await
            .get_or_insert_with(Instant::now);
        let next = shared.events.lock().await.recv().await;
        let Some((id, event)) = next else {
            return Ok(reply(StatusCode::GONE, String::new()));
        };
        let mut response = reply(StatusCode::OK, event);
        let headers = response.headers_mut();
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
            + 15_000;
        headers.insert("lambda-runtime-aws-request-id", id.parse().expect("header"));
        headers.insert(
            "lambda-runtime-deadline-ms",
            deadline.to_string().parse().expect("header"),
        );
        headers.insert(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench"
                .parse()
                .expect("header"),
        );
        headers.insert(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000"
                .parse()
                .expect("header"),
        );
        return Ok(response);
    }
    if request.method() == Method::POST && (path.ends_with("/response") || path.ends_with("/error"))
    {
        let id = path.split('/').nth(4).unwrap_or_default().to_owned();
        let body = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if let Some(waiter) = shared.pending.lock().await.remove(&id) {
            let _ = waiter.send(String::from_utf8_lossy(&body).into_owned());
        }
        return Ok(reply(StatusCode::ACCEPTED, String::new()));
    }
    Ok(reply(StatusCode::NOT_FOUND, String::new()))
}

impl Function {
    /// Starts `binary` with `env` against a fresh Runtime API.
    pub async fn start(binary: &Path, env: &HashMap<String, String>) -> Function {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address: SocketAddr = listener.local_addr().expect("address");
        let (events, receiver) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            events: Mutex::new(receiver),
            pending: Arc::default(),
            first_poll: Mutex::new(None),
        });
        let server_state = shared.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = server_state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| serve(state.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let started_at = Instant::now();
        let child = tokio::process::Command::new(binary)
            .env_clear()
            .envs(env)
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_LEVEL", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        Function {
            events,
            shared,
            child,
            started_at,
        }
    }

    /// Hands one event to the function; returns its response and how long it took.
    pub async fn invoke(&self, event: String) -> (serde_json::Value, Duration) {
        let id = uuid::Uuid::new_v4().to_string();
        let (sender, receiver) = oneshot::channel();
        self.shared.pending.lock().await.insert(id.clone(), sender);
        let start = Instant::now();
        self.events
            .send((id, event))
            .await
            .expect("function is polling");
        let body = tokio::time::timeout(Duration::from_secs(30), receiver)
            .await
            .expect("function answered in time")
            .expect("response");
        (
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
            start.elapsed(),
        )
    }

    /// When the runtime first asked for work: process start plus initialisation.
    pub async fn init_time(&self) -> Option<Duration> {
        let first = *self.shared.first_poll.lock().await;
        first.map(|at| at - self.started_at)
    }

    /// Peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find(|line| line.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}
