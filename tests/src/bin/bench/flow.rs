//! One pass over the API (sign-ups for new phones, then every other endpoint on the accounts
//! they create), timed call by call, and the samples it collects. The same pass runs in-process
//! and through the binaries, so every function is measured on its main paths.

use std::time::{Duration, Instant};

use auth_tests::{DynamoDbGate, Endpoint, PASSWORD, RawRequest, TestApp, TestResponse};

use crate::capacity::{CapacityMeter, Units};
use crate::emulator::Cpu;
use crate::setup::Bench;
use serde_json::{Value, json};

/// The password the pass changes to, and resets back from.
const NEW_PASSWORD: &str = "a brand new passphrase";

/// One call: its wall time, and what else could be seen of it. In-process: the DynamoDB
/// requests it made, the time they took and the capacity they consumed. Through a binary: the
/// process's CPU and the duration Lambda would bill.
pub struct Sample {
    pub wall: Duration,
    pub dynamodb_calls: usize,
    pub dynamodb_time: Duration,
    pub units: Units,
    pub usage: Option<Usage>,
}

impl Sample {
    pub fn timed(wall: Duration) -> Self {
        Sample {
            wall,
            dynamodb_calls: 0,
            dynamodb_time: Duration::ZERO,
            units: Units::default(),
            usage: None,
        }
    }
}

/// An invocation of a function binary, as Lambda would bill it.
pub struct Usage {
    /// From handing over the event to the function's next poll.
    pub billed: Duration,
    /// CPU the process used meanwhile (user + system).
    pub cpu: Cpu,
    /// The first invocation of a fresh process (a cold start's), kept apart from the others.
    pub first: bool,
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
    /// The `{id}` of `/auth/sessions/{id}/`.
    pub path_id: Option<String>,
}

impl Call {
    fn post(endpoint: Endpoint, body: Value, ip: String) -> Self {
        Call {
            endpoint,
            method: "POST",
            body: Some(body),
            bearer: None,
            ip,
            path_id: None,
        }
    }

    fn authed(endpoint: Endpoint, method: &'static str, body: Option<Value>, access: &str) -> Self {
        Call {
            endpoint,
            method,
            body,
            bearer: Some(access.to_owned()),
            ip: ip(0),
            path_id: None,
        }
    }

    fn raw<'a>(&'a self, body: Option<&'a str>) -> RawRequest<'a> {
        RawRequest {
            method: self.method,
            content_type: body.map(|_| "application/json"),
            body,
            bearer: self.bearer.as_deref(),
            source_ip: &self.ip,
            path_id: self.path_id.as_deref(),
            ..RawRequest::default()
        }
    }

    pub fn event(&self) -> String {
        let body = self.body.as_ref().map(request_body);
        auth_tests::api_gateway_event(self.endpoint.path(), &self.raw(body.as_deref())).to_string()
    }
}

/// One call through the shared handler, in this process.
async fn call_in_process(
    t: &TestApp,
    gate: &DynamoDbGate,
    meter: &CapacityMeter,
    call: &Call,
) -> (TestResponse, Sample) {
    let (calls, busy, units) = (gate.seen(), gate.busy(), meter.units());
    let body = call.body.as_ref().map(request_body);
    let start = Instant::now();
    let response = t.send(call.endpoint, call.raw(body.as_deref())).await;
    let wall = start.elapsed();
    let sample = Sample {
        wall,
        dynamodb_calls: gate.seen() - calls,
        dynamodb_time: gate.busy() - busy,
        units: meter.units() - units,
        usage: None,
    };
    (response, sample)
}

/// The steps of one pass over the API, each with the endpoint it calls.
pub struct Scenario {
    pub series: Vec<(&'static str, Endpoint, Series)>,
    /// The national numbers of the accounts at the end of the pass (they change theirs), whose
    /// password is `PASSWORD` again.
    pub phones: Vec<String>,
}

impl Scenario {
    fn push(&mut self, name: &'static str, endpoint: Endpoint, sample: Sample) {
        match self.series.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, _, series)) => series.0.push(sample),
            None => self.series.push((name, endpoint, Series(vec![sample]))),
        }
    }

    /// The step and usage of `function`'s first invocation (its cold start's), if it had one.
    pub fn first_invocation(&self, function: &str) -> Option<(&'static str, &Usage)> {
        self.series
            .iter()
            .filter(|(_, endpoint, _)| endpoint.function() == function)
            .find_map(|(step, _, series)| {
                let usage = series
                    .0
                    .iter()
                    .find_map(|s| s.usage.as_ref().filter(|u| u.first))?;
                Some((*step, usage))
            })
    }
}

/// A step: its name, and the call it makes.
struct Step(&'static str, Call);

/// Runs the pass for `n` new phones, handing each call to `run` (in-process or a binary).
/// Every function of the template gets its main paths: sign-up, login (right and wrong
/// password, and by code), refresh, the profile, the sessions, a phone change, a password
/// change, logout, a password reset and the key set.
pub async fn run_flow<F, Fut>(t: &TestApp, n: usize, phone_base: usize, mut run: F) -> Scenario
where
    F: FnMut(Call) -> Fut,
    Fut: std::future::Future<Output = (Value, u16, Sample)>,
{
    let mut scenario = Scenario {
        series: Vec::new(),
        phones: Vec::new(),
    };
    let mut step = async |Step(name, call): Step, expected: u16| -> Value {
        let endpoint = call.endpoint;
        let (body, status, sample) = run(call).await;
        assert_eq!(status, expected, "{name}: {body}");
        scenario.push(name, endpoint, sample);
        body
    };
    let phones: Vec<String> = (0..n).map(|i| phone(i, phone_base)).collect();
    let new_phones: Vec<String> = (0..n).map(|i| phone(i, phone_base + 2_000_000)).collect();
    let code_for = |national: &str| t.last_code_for(&e164(national)).expect("an SMS");
    let id_of = |body: &Value| {
        body["verification_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    for (i, number) in phones.iter().enumerate() {
        let call = Call::post(Endpoint::CheckPhone, json!({ "phone": number }), ip(i));
        step(Step("check-phone (new)", call), 200).await;
    }
    let mut registration = Vec::new();
    for (i, number) in phones.iter().enumerate() {
        let body = json!({ "phone": number, "code": code_for(number) });
        let answer = step(
            Step("verify", Call::post(Endpoint::Verify, body, ip(i))),
            200,
        )
        .await;
        registration.push(
            answer["registration_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    for (i, token) in registration.iter().enumerate() {
        let call = Call::post(Endpoint::Register, auth_tests::register_body(token), ip(i));
        step(Step("register", call), 201).await;
    }
    for i in 0..n {
        let call = Call::post(Endpoint::CheckPhone, json!({ "phone": phones[0] }), ip(i));
        step(Step("check-phone (registered)", call), 200).await;
    }
    // Each account's session: (access, refresh).
    let mut sessions = Vec::new();
    for (i, number) in phones.iter().enumerate() {
        let body = json!({ "phone": number, "password": PASSWORD });
        let answer = step(
            Step("login (ok)", Call::post(Endpoint::Login, body, ip(i))),
            200,
        )
        .await;
        sessions.push((token(&answer, "access"), token(&answer, "refresh")));
    }
    for (i, number) in phones.iter().enumerate() {
        let body = json!({ "phone": number, "password": "wrong password" });
        step(
            Step("login (wrong)", Call::post(Endpoint::Login, body, ip(i))),
            401,
        )
        .await;
    }
    for (i, (access, refresh)) in sessions.iter_mut().enumerate() {
        let call = Call::post(Endpoint::Refresh, json!({ "refresh": refresh }), ip(i));
        let answer = step(Step("refresh", call), 200).await;
        (*access, *refresh) = (token(&answer, "access"), token(&answer, "refresh"));
    }
    for (access, _) in &sessions {
        let call = Call::authed(Endpoint::Profile, "GET", None, access);
        step(Step("profile (GET)", call), 200).await;
    }
    // A second session per account, by login code, which the first one then lists and ends.
    for (i, number) in phones.iter().enumerate() {
        let call = Call::post(Endpoint::LoginOtpRequest, json!({ "phone": number }), ip(i));
        let answer = step(Step("login code request", call), 200).await;
        let body =
            json!({ "phone": number, "code": code_for(number), "verification_id": id_of(&answer) });
        step(
            Step("login by code", Call::post(Endpoint::LoginOtp, body, ip(i))),
            200,
        )
        .await;
    }
    let mut others = Vec::new();
    for (access, _) in &sessions {
        let call = Call::authed(Endpoint::Sessions, "GET", None, access);
        let answer = step(Step("sessions (list)", call), 200).await;
        let listed = answer["sessions"].as_array().cloned().unwrap_or_default();
        let other = listed
            .iter()
            .find(|s| s["current"] == false)
            .expect("the code's session");
        others.push(other["id"].as_str().unwrap_or_default().to_owned());
    }
    for ((access, _), other) in sessions.iter().zip(&others) {
        let mut call = Call::authed(Endpoint::SessionRevoke, "DELETE", None, access);
        call.path_id = Some(other.clone());
        step(Step("session revoke", call), 204).await;
    }
    for ((access, _), new_phone) in sessions.iter().zip(&new_phones) {
        let body = json!({ "new_phone": new_phone, "password": PASSWORD });
        let call = Call::authed(Endpoint::PhoneChangeRequest, "POST", Some(body), access);
        let answer = step(Step("phone change request", call), 200).await;
        let body = json!({ "new_phone": new_phone, "code": code_for(new_phone), "verification_id": id_of(&answer) });
        let call = Call::authed(Endpoint::PhoneChangeConfirm, "POST", Some(body), access);
        step(Step("phone change confirm", call), 200).await;
    }
    for (access, _) in &sessions {
        let body = json!({ "old_password": PASSWORD, "new_password": NEW_PASSWORD });
        let call = Call::authed(Endpoint::PasswordChange, "POST", Some(body), access);
        step(Step("password change", call), 204).await;
    }
    for (access, refresh) in &sessions {
        let body = json!({ "refresh": refresh });
        let call = Call::authed(Endpoint::Logout, "POST", Some(body), access);
        step(Step("logout", call), 204).await;
    }
    for (i, new_phone) in new_phones.iter().enumerate() {
        let call = Call::post(
            Endpoint::PasswordResetRequest,
            json!({ "phone": new_phone }),
            ip(i),
        );
        let answer = step(Step("password reset request", call), 200).await;
        let body = json!({
            "phone": new_phone, "code": code_for(new_phone), "new_password": PASSWORD,
            "verification_id": id_of(&answer),
        });
        let call = Call::post(Endpoint::PasswordResetConfirm, body, ip(i));
        step(Step("password reset confirm", call), 204).await;
    }
    for i in 0..n {
        let call = Call {
            endpoint: Endpoint::Jwks,
            method: "GET",
            body: None,
            bearer: None,
            ip: ip(i),
            path_id: None,
        };
        step(Step("jwks", call), 200).await;
    }
    scenario.phones = new_phones;
    scenario
}

/// 1, 2, 4: the pass in-process (the shared handler called directly), with the DynamoDB
/// requests of every call counted and timed by the gate and their capacity by the meter.
pub async fn in_process(bench: &Bench, calls: usize) -> Scenario {
    let (t, gate, meter) = (&bench.t, &bench.gate, &bench.meter);
    run_flow(t, calls, 0, move |call| async move {
        let (response, sample) = call_in_process(t, gate, meter, &call).await;
        (response.body, response.status, sample)
    })
    .await
}

/// The full run's calls per endpoint (`Options::calls` without `--smoke`).
pub const FULL_RUN_CALLS: usize = 200;

/// How many codes the smoke run's probe sends to one key: one more than every default budget
/// the full run could reach on one range, phone or network (the settings table's `Bench::Raise`
/// rows whose default is below the full run's calls per endpoint), so that a budget the
/// benchmark forgot to raise refuses the smoke run, in CI, before it refuses a full run.
pub fn probe_sends() -> usize {
    auth_shared::settings::SETTINGS
        .iter()
        .filter(|setting| setting.bench == auth_shared::settings::Bench::Raise)
        .filter_map(|setting| match setting.default {
            auth_shared::settings::IfUnset::Value(text) => text.parse::<usize>().ok(),
            _ => None,
        })
        .filter(|&default| default < FULL_RUN_CALLS)
        .max()
        .unwrap_or(0)
        + 1
}

/// The smoke run's probe of the raised limits, in-process: `probe_sends()` sign-up codes to new
/// numbers of one range, as many to one new number, as many login codes to one registered
/// number and as many lookups of it, all from one client address. Every call must succeed.
pub async fn probe_limits(bench: &Bench) -> usize {
    let t = &bench.t;
    let n = probe_sends();
    let from = ip(0);
    let expect = async |name: &str, endpoint: Endpoint, body: Value| {
        let response = t.post_from(endpoint, body, &from).await;
        assert_eq!(response.status, 200, "{name}: {}", response.body);
    };
    // One range: the numbers differ in their last digits only.
    for i in 0..n {
        let body = json!({ "phone": phone(i, 5_000_000) });
        expect("sign-up codes to one range", Endpoint::CheckPhone, body).await;
    }
    let one_new = phone(0, 6_000_000);
    for _ in 0..n {
        let body = json!({ "phone": one_new });
        expect("sign-up codes to one number", Endpoint::CheckPhone, body).await;
    }
    let registered = phone(0, 7_000_000);
    t.registered_user(&registered, &e164(&registered)).await;
    for _ in 0..n {
        let body = json!({ "phone": registered });
        expect("login codes to one number", Endpoint::LoginOtpRequest, body).await;
    }
    for _ in 0..n {
        let body = json!({ "phone": registered });
        expect("lookups of one number", Endpoint::CheckPhone, body).await;
    }
    n
}
