//! `HttpStub`: a local HTTP server standing in for an AWS API (port 0, loopback only). It records
//! every request and gives each the answer it was last told to give (or the one given for
//! requests whose body holds a text, such as a secret's id).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// What the stub answers.
#[derive(Debug, Clone)]
pub struct StubAnswer {
    pub status: u16,
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: String,
}

impl StubAnswer {
    /// `status` with a JSON body and the headers an AWS JSON service sends.
    pub fn json(status: u16, content_type: &'static str, body: &Value) -> Self {
        Self {
            status,
            headers: vec![("content-type", content_type)],
            body: body.to_string(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// A request the stub received.
#[derive(Debug, Clone)]
pub struct StubRequest {
    pub method: String,
    pub path: String,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl StubRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON request body")
    }
}

pub struct HttpStub {
    pub endpoint: String,
    requests: Arc<Mutex<Vec<StubRequest>>>,
    answer: Arc<Mutex<StubAnswer>>,
    /// Answers for requests whose body contains the text, before `answer`.
    answers_by_body: Arc<Mutex<Vec<(String, StubAnswer)>>>,
    /// How long the stub waits before each answer (a slow provider).
    delay: Arc<Mutex<Duration>>,
}

impl HttpStub {
    pub async fn start(answer: StubAnswer) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(Mutex::new(answer));
        let answers_by_body = Arc::new(Mutex::new(Vec::new()));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let answers = Answers {
            default: answer.clone(),
            by_body: answers_by_body.clone(),
        };
        let (log, wait) = (requests.clone(), delay.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (log, answers, wait) = (log.clone(), answers.clone(), wait.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        respond(log.clone(), answers.clone(), wait.clone(), request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            endpoint,
            requests,
            answer,
            answers_by_body,
            delay,
        }
    }

    /// From now on, answer the requests whose body contains `text` with `answer`.
    pub fn answer_when_body_contains(&self, text: &str, answer: StubAnswer) {
        let mut answers = self.answers_by_body.lock().expect("answers");
        answers.push((text.to_owned(), answer));
    }

    /// From now on, wait `delay` before each answer (the request is recorded on arrival).
    pub fn delay_answers(&self, delay: Duration) {
        *self.delay.lock().expect("delay") = delay;
    }

    /// From now on, answer every request with `answer`.
    pub fn answer_with(&self, answer: StubAnswer) {
        *self.answer.lock().expect("answer") = answer;
    }

    pub fn requests(&self) -> Vec<StubRequest> {
        self.requests.lock().expect("requests").clone()
    }
}

#[derive(Clone)]
struct Answers {
    default: Arc<Mutex<StubAnswer>>,
    by_body: Arc<Mutex<Vec<(String, StubAnswer)>>>,
}

impl Answers {
    fn to(&self, body: &[u8]) -> StubAnswer {
        let body = String::from_utf8_lossy(body);
        let by_body = self.by_body.lock().expect("answers");
        match by_body
            .iter()
            .find(|(text, _)| body.contains(text.as_str()))
        {
            Some((_, answer)) => answer.clone(),
            None => self.default.lock().expect("answer").clone(),
        }
    }
}

async fn respond(
    log: Arc<Mutex<Vec<StubRequest>>>,
    answers: Answers,
    delay: Arc<Mutex<Duration>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|body| body.to_bytes().to_vec())
        .unwrap_or_default();
    let answer = answers.to(&body);
    log.lock().expect("requests").push(StubRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body,
    });
    let delay = *delay.lock().expect("delay");
    tokio::time::sleep(delay).await;
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() = hyper::StatusCode::from_u16(answer.status).expect("a status");
    for (name, value) in answer.headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("a header value"));
    }
    Ok(response)
}
