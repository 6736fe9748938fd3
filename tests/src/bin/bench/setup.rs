//! What every measurement shares: the command line, one set of tables, and an app whose
//! DynamoDB client counts and times every operation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use auth_shared::App;
use auth_shared::config::Config;
use auth_shared::settings::SETTINGS;
use auth_tests::{DynamoDbGate, TestApp, base_env};

use crate::capacity::CapacityMeter;

/// The limits the benchmark raises (and the waits it removes), so that it measures work, not
/// refusals: every setting the table marks (`Bench::Raise`, `Bench::Zero`), so that a new budget
/// cannot be left out.
pub fn bench_limits() -> impl Iterator<Item = (&'static str, &'static str)> {
    SETTINGS
        .iter()
        .filter_map(|setting| Some((setting.name, setting.bench_value()?)))
}

/// The one setting the benchmark takes from its own environment.
pub const BREAKER_MODE: &str = "SMS_BREAKER_MODE";

/// The rows of `--import` without a number.
const DEFAULT_IMPORT_ROWS: u64 = 100_000;

/// The command line: `--smoke`, `--sizing` and `--binaries DIR`.
pub struct Options {
    pub smoke: bool,
    /// Only what the sizing needs: the in-process pass (DynamoDB requests and capacity) and the
    /// pass through the binaries (CPU and billed duration), not the throughput runs.
    pub sizing: bool,
    /// Only the token signing measurement (`--signing`).
    pub signing: bool,
    /// Only the events publisher, on the events of an in-process pass (`--events`).
    pub events: bool,
    /// Only the importer, on this many generated rows (`--import N`).
    pub import: Option<u64>,
    /// Calls per endpoint in each pass over the API.
    pub calls: usize,
    /// Where the function binaries are: `--binaries DIR`, by default the release build.
    pub binaries: PathBuf,
    pub cores: usize,
}

impl Options {
    pub fn from_args() -> Self {
        let args: Vec<String> = std::env::args().collect();
        let smoke = args.iter().any(|a| a == "--smoke");
        let sizing = args.iter().any(|a| a == "--sizing");
        let signing = args.iter().any(|a| a == "--signing");
        let events = args.iter().any(|a| a == "--events");
        let import = args.iter().position(|a| a == "--import").map(|i| {
            args.get(i + 1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(DEFAULT_IMPORT_ROWS)
        });
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
        let binaries = args
            .iter()
            .position(|a| a == "--binaries")
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
            .unwrap_or_else(|| target.join("release"));
        Options {
            smoke,
            sizing,
            signing,
            events,
            import,
            calls: if smoke { 3 } else { 200 },
            binaries,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// One set of tables and the app on them, in-process, behind a counting gate and a capacity
/// meter.
pub struct Bench {
    pub t: TestApp,
    pub gate: DynamoDbGate,
    pub meter: CapacityMeter,
    /// The app's environment, which the function binaries get too.
    pub env: HashMap<String, String>,
}

impl Bench {
    pub async fn start() -> Self {
        let aws = auth_shared::load_aws_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
        let prefix = format!("bench{}-", uuid::Uuid::new_v4().simple());
        let created = auth_tests::tables::create_all(&dynamodb, &prefix)
            .await
            .expect("tables");
        let outbox = std::env::temp_dir().join(format!("{prefix}outbox.jsonl"));
        let mut env = base_env(&created, &outbox);
        for (name, value) in bench_limits() {
            env.insert(name.to_owned(), value.to_owned());
        }
        // `SMS_BREAKER_MODE=off scripts/bench ...` measures the paths without the SMS breaker's
        // counts, beside a run with them (BENCHMARKS.md section 13).
        if let Ok(mode) = std::env::var(BREAKER_MODE) {
            env.insert(BREAKER_MODE.to_owned(), mode);
        }
        let config = Config::from_lookup(|name| env.get(name).cloned()).expect("config");
        let gate = DynamoDbGate::counting();
        let meter = CapacityMeter::default();
        let gated = aws_sdk_dynamodb::config::Builder::from(&aws)
            .interceptor(gate.clone())
            .interceptor(meter.clone())
            .build();
        let t = TestApp::from_app(
            App::with_dynamodb(config, &aws, aws_sdk_dynamodb::Client::from_conf(gated))
                .expect("app"),
            dynamodb,
            outbox,
        );
        Bench {
            t,
            gate,
            meter,
            env,
        }
    }

    /// The environment of the function binaries: the app's, plus DynamoDB Local's endpoint and
    /// credentials.
    pub fn binary_env(&self) -> HashMap<String, String> {
        let mut env = self.env.clone();
        // The events publisher's own setting, so that it starts (for its cold start and size;
        // the pass over the API never invokes it).
        env.insert("EVENT_BUS_NAME".to_owned(), "bench-events".to_owned());
        for name in [
            "AWS_ENDPOINT_URL_DYNAMODB",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
        ] {
            if let Ok(value) = std::env::var(name) {
                env.insert(name.to_owned(), value);
            }
        }
        env
    }

    pub fn clean_up(&self) {
        let _ = std::fs::remove_file(&self.t.outbox);
    }
}
