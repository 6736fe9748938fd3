//! The benchmark: per-endpoint latency in-process and through the real release binaries,
//! DynamoDB requests per call, login throughput at full argon2 strength, handler overhead,
//! cold start, binary size and peak memory. Prints markdown tables.
//!
//! Run it with `scripts/bench` (which builds the release binaries and starts DynamoDB Local);
//! `scripts/bench --smoke` runs a few iterations of everything, as CI does.

mod emulator;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auth_shared::App;
use auth_shared::config::Config;
use auth_shared::password::{self, Password};
use auth_tests::{DynamoDbGate, Endpoint, PASSWORD, RawRequest, TestApp, TestResponse, base_env};
use emulator::Function;
use serde_json::{Value, json};

/// Limits raised so that the benchmark measures work, not refusals.
const BENCH_LIMITS: [(&str, &str); 10] = [
    ("OTP_SENDS_PER_PHONE", "1000000"),
    ("OTP_SENDS_PER_PHONE_PER_DAY", "1000000"),
    ("OTP_SENDS_PER_IP", "1000000"),
    ("OTP_SENDS_PER_COUNTRY_PER_DAY", "1000000"),
    ("OTP_SENDS_GLOBAL_PER_HOUR", "1000000"),
    ("LOCKOUT_MAX_FAILURES", "1000000"),
    ("ACCOUNT_BACKOFF_AFTER_FAILURES", "1000000"),
    ("ACCOUNT_MAX_FAILURES", "1000000"),
    ("OTP_RESEND_SECONDS", "0"),
    ("CHECK_PHONE_LOOKUPS_PER_IP", "1000000"),
];

/// What the issue asks of each endpoint's DynamoDB requests per call.
fn target(name: &str) -> &'static str {
    match name {
        "check-phone (new)" | "check-phone (registered)" => "≤ 3",
        "verify" => "≤ 2",
        "register" => "1 transaction + ≤ 1 read",
        "login (ok)" | "login (wrong)" => "≤ 2",
        "refresh" => "≤ 2",
        _ => "",
    }
}

struct Sample {
    wall: Duration,
    dynamodb_calls: usize,
    dynamodb_time: Duration,
}

#[derive(Default)]
struct Series(Vec<Sample>);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64)).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

impl Series {
    fn sorted(&self, f: impl Fn(&Sample) -> Duration) -> Vec<Duration> {
        let mut v: Vec<Duration> = self.0.iter().map(f).collect();
        v.sort();
        v
    }
}

/// One token of a response's `tokens` object.
fn token(body: &Value, kind: &str) -> String {
    body["tokens"][kind].as_str().unwrap_or_default().to_owned()
}

fn phone(i: usize, base: usize) -> String {
    format!("0912{:07}", base + i)
}

fn e164(national: &str) -> String {
    format!("+98{}", &national[1..])
}

fn ip(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

fn request_body(body: &Value) -> String {
    body.to_string()
}

/// The work one benchmark step does, in-process or through a binary.
struct Call {
    endpoint: Endpoint,
    method: &'static str,
    body: Option<Value>,
    bearer: Option<String>,
    ip: String,
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

    fn event(&self) -> String {
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

async fn in_process(t: &TestApp, gate: &DynamoDbGate, call: &Call) -> (TestResponse, Sample) {
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

/// CPU seconds used so far by DynamoDB Local (`DYNAMODB_LOCAL_PID`, set by scripts/bench).
fn dynamodb_local_cpu() -> Option<f64> {
    let pid = std::env::var("DYNAMODB_LOCAL_PID").ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses): utime and stime are 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Where the function binaries are: `--binaries DIR`, by default the release build.
fn binaries_dir(args: &[String]) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    args.iter()
        .position(|a| a == "--binaries")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("release"))
}

/// The steps of one pass over the API: sign-ups for `n` new phones, then sessions.
struct Scenario {
    series: Vec<(&'static str, Series)>,
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
async fn run_flow<F, Fut>(t: &TestApp, n: usize, phone_base: usize, mut run: F) -> Scenario
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

fn binary_of(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::CheckPhone => "check-phone",
        Endpoint::Verify => "verify",
        Endpoint::Register => "register",
        Endpoint::Login => "login",
        Endpoint::Refresh => "refresh",
        Endpoint::Logout => "logout",
        Endpoint::Profile => "profile",
        Endpoint::PasswordChange => "password-change",
        Endpoint::PasswordResetRequest => "password-reset-request",
        Endpoint::PasswordResetConfirm => "password-reset-confirm",
        Endpoint::Jwks => "jwks",
    }
}

const FUNCTIONS: [&str; 11] = [
    "check-phone",
    "verify",
    "register",
    "login",
    "refresh",
    "logout",
    "profile",
    "password-change",
    "password-reset-request",
    "password-reset-confirm",
    "jwks",
];

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let n = if smoke { 3 } else { 200 };
    let binaries = binaries_dir(&args);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "# Benchmark ({} mode, {n} calls per endpoint, {cores} cores)\n",
        if smoke { "smoke" } else { "full" }
    );

    // One set of tables; an app whose DynamoDB client counts and times every operation.
    let aws = auth_shared::load_aws_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let prefix = format!("bench{}-", uuid::Uuid::new_v4().simple());
    let created = auth_tests::tables::create_all(&dynamodb, &prefix)
        .await
        .expect("tables");
    let outbox = std::env::temp_dir().join(format!("{prefix}outbox.jsonl"));
    let mut env = base_env(&created, &outbox);
    for (name, value) in BENCH_LIMITS {
        env.insert(name.to_owned(), value.to_owned());
    }
    let config = Config::from_lookup(|name| env.get(name).cloned()).expect("config");
    let gate = DynamoDbGate::counting();
    let gated = aws_sdk_dynamodb::config::Builder::from(&aws)
        .interceptor(gate.clone())
        .build();
    let t = TestApp {
        app: App::with_dynamodb(config, &aws, aws_sdk_dynamodb::Client::from_conf(gated))
            .expect("app"),
        dynamodb: dynamodb.clone(),
        outbox: outbox.clone(),
    };

    // 3. One argon2id verification (OWASP parameters), measured first, in this run.
    let stored = password::hash(Password::new(PASSWORD.to_owned()).expect("password"))
        .await
        .expect("hash");
    let mut hashes = Vec::new();
    for _ in 0..if smoke { 3 } else { 20 } {
        let start = Instant::now();
        password::verify(
            Password::presented(PASSWORD.to_owned()),
            Some(stored.clone()),
        )
        .await
        .expect("verify");
        hashes.push(start.elapsed());
    }
    hashes.sort();
    let hash_time = percentile(&hashes, 50.0);

    // 1, 2, 4: in-process.
    let scenario = run_flow(&t, n, 0, |_, call| {
        let (t, gate) = (&t, &gate);
        async move {
            let (response, sample) = in_process(t, gate, &call).await;
            (response.body, response.status, sample)
        }
    })
    .await;
    println!("## Per endpoint, in-process (the shared handler called directly)\n");
    println!(
        "| endpoint | p50 ms | p95 ms | p99 ms | DynamoDB requests per call | target | overhead p50 ms (excl. DynamoDB and argon2) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, series) in &scenario.series {
        let wall = series.sorted(|s| s.wall);
        let argon2 = if name.starts_with("login") || *name == "register" {
            hash_time
        } else {
            Duration::ZERO
        };
        let overhead = series.sorted(|s| {
            s.wall
                .saturating_sub(s.dynamodb_time)
                .saturating_sub(argon2)
        });
        let calls: Vec<usize> = series.0.iter().map(|s| s.dynamodb_calls).collect();
        let (min, max) = (
            calls.iter().min().copied().unwrap_or(0),
            calls.iter().max().copied().unwrap_or(0),
        );
        let calls = if min == max {
            min.to_string()
        } else {
            format!("{min}–{max}")
        };
        println!(
            "| {name} | {} | {} | {} | {calls} | {} | {} |",
            ms(percentile(&wall, 50.0)),
            ms(percentile(&wall, 95.0)),
            ms(percentile(&wall, 99.0)),
            target(name),
            ms(percentile(&overhead, 50.0)),
        );
    }

    // 3. Login throughput at concurrency 1 and 8.
    println!("\n## Login throughput (argon2id m=19456 KiB, t=2, p=1)\n");
    println!(
        "One verification, median of {}: {} ms; limit = {cores} cores / that = {:.1} logins/s\n",
        hashes.len(),
        ms(hash_time),
        cores as f64 / hash_time.as_secs_f64()
    );
    println!("| concurrency | logins | seconds | logins/s | share of the limit |");
    println!("|---|---|---|---|---|");
    let limit = cores as f64 / hash_time.as_secs_f64();
    let mut dynamodb_share = Vec::new();
    for concurrency in [1usize, 8] {
        let total = if smoke {
            concurrency * 2
        } else {
            concurrency * 25
        };
        let dynamodb_cpu = dynamodb_local_cpu();
        let start = Instant::now();
        let per_task = total / concurrency;
        let tasks = (0..concurrency).map(|task| {
            let t = &t;
            async move {
                for i in 0..per_task {
                    let number = phone((task * per_task + i) % n, 0);
                    let response = t
                        .post_from(
                            Endpoint::Login,
                            json!({ "phone": number, "password": PASSWORD }),
                            &ip(task),
                        )
                        .await;
                    assert_eq!(response.status, 200);
                }
            }
        });
        futures::future::join_all(tasks).await;
        let seconds = start.elapsed().as_secs_f64();
        let rate = total as f64 / seconds;
        println!(
            "| {concurrency} | {total} | {seconds:.2} | {rate:.1} | {:.0}% |",
            100.0 * rate / limit
        );
        if let (Some(before), Some(after)) = (dynamodb_cpu, dynamodb_local_cpu()) {
            dynamodb_share.push((concurrency, (after - before) / seconds));
        }
    }
    for (concurrency, cores_used) in dynamodb_share {
        println!(
            "\nAt concurrency {concurrency}, DynamoDB Local (same machine) used {cores_used:.2} of the {cores} cores."
        );
    }

    // 1, 5, 7: through the release binaries, one process per function, as Lambda runs them.
    let mut binary_env: HashMap<String, String> = env.clone();
    // As template.yaml deploys them: a fixed glibc mmap threshold, so that argon2's 19 MiB
    // blocks go back to the OS after each hash.
    binary_env.insert("MALLOC_MMAP_THRESHOLD_".to_owned(), "1048576".to_owned());
    for name in [
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
    ] {
        if let Ok(value) = std::env::var(name) {
            binary_env.insert(name.to_owned(), value);
        }
    }
    // Cold start: each process is started alone and timed from process start to its first poll
    // (initialisation) and to its first response. The request is a GET without credentials: the
    // key set for JWKS, and for the others a refusal (405 or 401) that needs no DynamoDB call.
    let mut functions: HashMap<&'static str, Function> = HashMap::new();
    let mut cold: Vec<(&'static str, Duration, Duration)> = Vec::new();
    for name in FUNCTIONS {
        let binary = binaries.join(name);
        assert!(
            binary.exists(),
            "{} is not built: run scripts/bench",
            binary.display()
        );
        let function = Function::start(&binary, &binary_env).await;
        let endpoint = if name == "jwks" {
            Endpoint::Jwks
        } else {
            Endpoint::CheckPhone
        };
        let call = Call {
            endpoint,
            method: "GET",
            body: None,
            bearer: None,
            ip: ip(0),
        };
        function.invoke(call.event()).await;
        let first_response = function.started_at.elapsed();
        let init = function.init_time().await.unwrap_or_default();
        cold.push((name, init, first_response));
        functions.insert(name, function);
    }
    let through = run_flow(&t, n, 1_000_000, |_, call| {
        let functions = &functions;
        async move {
            let function = &functions[binary_of(call.endpoint)];
            let (response, wall) = function.invoke(call.event()).await;
            let status = response["statusCode"].as_u64().unwrap_or(0) as u16;
            let body = response["body"]
                .as_str()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null);
            (
                body,
                status,
                Sample {
                    wall,
                    dynamodb_calls: 0,
                    dynamodb_time: Duration::ZERO,
                },
            )
        }
    })
    .await;
    println!(
        "\n## Per endpoint, through the binaries in {} (local Lambda Runtime API, one invocation at a time)\n",
        binaries.display()
    );
    println!("| endpoint | p50 ms | p95 ms | p99 ms |");
    println!("|---|---|---|---|");
    for (name, series) in &through.series {
        let wall = series.sorted(|s| s.wall);
        println!(
            "| {name} | {} | {} | {} |",
            ms(percentile(&wall, 50.0)),
            ms(percentile(&wall, 95.0)),
            ms(percentile(&wall, 99.0))
        );
    }

    println!(
        "\n## Cold start, size and memory of each function ({})\n",
        binaries.display()
    );
    println!(
        "| function | init ms (process start → first poll) | first response ms (from process start) | binary MB | peak RSS MB after the run |"
    );
    println!("|---|---|---|---|---|");
    for (name, init, first) in &cold {
        let size = std::fs::metadata(binaries.join(name))
            .map(|m| m.len())
            .unwrap_or(0);
        let rss = functions[name].peak_rss_kib().unwrap_or(0);
        println!(
            "| {name} | {} | {} | {:.2} | {:.1} |",
            ms(*init),
            ms(*first),
            size as f64 / 1_048_576.0,
            rss as f64 / 1024.0
        );
    }
    let arm64 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/lambda");
    if arm64.exists() {
        println!("\n## arm64 Lambda builds (`cargo lambda build --release --arm64`)\n");
        println!("| function | bootstrap MB |");
        println!("|---|---|");
        for name in FUNCTIONS {
            let size = std::fs::metadata(arm64.join(name).join("bootstrap"))
                .map(|m| m.len())
                .unwrap_or(0);
            println!("| {name} | {:.2} |", size as f64 / 1_048_576.0);
        }
    }
    let _ = std::fs::remove_file(&outbox);
}
