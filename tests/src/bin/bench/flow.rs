//! One pass over the API (sign-ups for new phones, then sessions), timed call by call, and the
//! samples it collects. The same pass runs in-process and through the binaries.

use std::time::{Duration, Instant};

use auth_tests::{DynamoDbGate, Endpoint, PASSWORD, RawRequest, TestApp, TestResponse};

use crate::setup::Bench;
use serde_json::{Value, json};

/// One call: its wall time, and the DynamoDB requests it made and the time they took (zero
/// through a binary, where the gate cannot see them).
pub struct Sample {
    pub wall: Duration,
    pub dynamodb_calls: usize,
    pub dynamodb_time: Duration,
}

/// The samples of one step of the pass.
#[derive(Default)]
pub struct Series(pub Vec<Sample>);

impl Series {
    pub fn sorted(&self, f: impl Fn(&Sample) -> Duration) -> Vec<Duration> {
        let mut v: Vec<Duration> = self.0.iter().map(f).collect();
        v.sort();
        v
    }
}

/// One token of a response's `tokens` object.
fn token(body: &Value, kind: &str) -> String {
    body["tokens"][kind].as_str().unwrap_or_default().to_owned()
}

pub fn phone(i: usize, base: usize) -> String {
    format!("0912{:07}", base + i)
}

fn e164(national: &str) -> String {
    format!("+98{}", &national[1..])
}

pub fn ip(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

fn request_body(body: &Value) -> String {
    body.to_string()
}

/// The work one benchmark step does, in-process or through a binary.
pub struct Call {
    pub endpoint: Endpoint,
    pub method: &'static str,
    pub body: Option<Value>,
    pub bearer: Option<String>,
    pub ip: String,
}

impl Call {
    fn post(endpoint: Endpoint, body: Value, ip: String) -> Self {
        Call {
            endpoint,
            method: "POST",
            body: Some(body),
            bearer: None,
            ip,
        }
    }

    pub fn event(&self) -> String {
        let body = self.body.as_ref().map(request_body);
        auth_tests::api_gateway_event(
            self.endpoint.path(),
            &RawRequest {
                method: self.method,
                body: body.as_deref(),
                bearer: self.bearer.as_deref(),
                source_ip: &self.ip,
                ..RawRequest::default()
            },
        )
        .to_string()
    }
}

/// One call through the shared handler, in this process.
async fn call_in_process(t: &TestApp, gate: &DynamoDbGate, call: &Call) -> (TestResponse, Sample) {
    let (calls, busy) = (gate.seen(), gate.busy());
    let body = call.body.as_ref().map(request_body);
    let start = Instant::now();
    let response = t
        .send(
            call.endpoint,
            RawRequest {
                method: call.method,
                body: body.as_deref(),
                bearer: call.bearer.as_deref(),
                source_ip: &call.ip,
                ..RawRequest::default()
            },
        )
        .await;
    let wall = start.elapsed();
    let sample = Sample {
        wall,
        dynamodb_calls: gate.seen() - calls,
        dynamodb_time: gate.busy() - busy,
    };
    (response, sample)
}

/// The steps of one pass over the API: sign-ups for `n` new phones, then sessions.
pub struct Scenario {
    pub series: Vec<(&'static str, Series)>,
}

impl Scenario {
    fn new() -> Self {
        Scenario { series: Vec::new() }
    }

    fn push(&mut self, name: &'static str, sample: Sample) {
        match self.series.iter_mut().find(|(n, _)| *n == name) {
            Some((_, series)) => series.0.push(sample),
            None => self.series.push((name, Series(vec![sample]))),
        }
    }
}

/// Runs the API flow `n` times, handing each call to `run` (in-process or a binary).
pub async fn run_flow<F, Fut>(t: &TestApp, n: usize, phone_base: usize, mut run: F) -> Scenario
where
    F: FnMut(&'static str, Call) -> Fut,
    Fut: std::future::Future<Output = (Value, u16, Sample)>,
{
    let mut scenario = Scenario::new();
    let phones: Vec<String> = (0..n).map(|i| phone(i, phone_base)).collect();
    for (i, number) in phones.iter().enumerate() {
        let (body, status, sample) = run(
            "check-phone (new)",
            Call::post(Endpoint::CheckPhone, json!({ "phone": number }), ip(i)),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        scenario.push("check-phone (new)", sample);
    }
    let mut tokens = Vec::new();
    for (i, number) in phones.iter().enumerate() {
        let code = t.last_code_for(&e164(number)).expect("an SMS");
        let (body, status, sample) = run(
            "verify",
            Call::post(
                Endpoint::Verify,
                json!({ "phone": number, "code": code }),
                ip(i),
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        tokens.push(
            body["registration_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        scenario.push("verify", sample);
    }
    for (i, token) in tokens.iter().enumerate() {
        let (body, status, sample) = run(
            "register",
            Call::post(Endpoint::Register, auth_tests::register_body(token), ip(i)),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        scenario.push("register", sample);
    }
    for i in 0..n {
        let (_, status, sample) = run(
            "check-phone (registered)",
            Call::post(Endpoint::CheckPhone, json!({ "phone": phones[0] }), ip(i)),
        )
        .await;
        assert_eq!(status, 200);
        scenario.push("check-phone (registered)", sample);
    }
    let mut refresh = String::new();
    let mut access = String::new();
    for (i, number) in phones.iter().enumerate() {
        let (body, status, sample) = run(
            "login (ok)",
            Call::post(
                Endpoint::Login,
                json!({ "phone": number, "password": PASSWORD }),
                ip(i),
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        (access, refresh) = (token(&body, "access"), token(&body, "refresh"));
        scenario.push("login (ok)", sample);
    }
    for (i, number) in phones.iter().enumerate() {
        let (_, status, sample) = run(
            "login (wrong)",
            Call::post(
                Endpoint::Login,
                json!({ "phone": number, "password": "wrong password" }),
                ip(i),
            ),
        )
        .await;
        assert_eq!(status, 401);
        scenario.push("login (wrong)", sample);
    }
    for i in 0..n {
        let (body, status, sample) = run(
            "refresh",
            Call::post(Endpoint::Refresh, json!({ "refresh": refresh }), ip(i)),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        (access, refresh) = (token(&body, "access"), token(&body, "refresh"));
        scenario.push("refresh", sample);
    }
    for i in 0..n {
        let call = Call {
            endpoint: Endpoint::Profile,
            method: "GET",
            body: None,
            bearer: Some(access.clone()),
            ip: ip(i),
        };
        let (body, status, sample) = run("profile", call).await;
        assert_eq!(status, 200, "{body}");
        scenario.push("profile", sample);
    }
    scenario
}

/// 1, 2, 4: the pass in-process (the shared handler called directly), with the DynamoDB
/// requests of every call counted and timed by the gate.
pub async fn in_process(bench: &Bench, calls: usize) -> Scenario {
    let (t, gate) = (&bench.t, &bench.gate);
    run_flow(t, calls, 0, move |_, call| async move {
        let (response, sample) = call_in_process(t, gate, &call).await;
        (response.body, response.status, sample)
    })
    .await
}
