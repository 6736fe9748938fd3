//! 1, 5, 7: the real function binaries, one process per function behind a local Lambda Runtime
//! API, as Lambda runs them: cold start, the pass over the API, binary size and peak memory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use auth_tests::Endpoint;
use auth_tests::routes::template_functions;
use auth_tests::tables::template_path;
use serde_json::Value;

use crate::emulator::Function;
use crate::flow::{Call, Sample, Scenario, ip, run_flow};
use crate::setup::{Bench, Options};

/// The functions to start: every function of `template.yaml`, in its order (the benchmark keeps
/// no list of its own; the route-table test checks `Endpoint` against the same template).
pub fn names() -> Vec<String> {
    template_functions(&template_path())
        .expect("read template.yaml")
        .into_iter()
        .map(|function| function.binary)
        .collect()
}

/// One function's cold start and, after the pass, its size and peak memory.
pub struct ColdStart {
    pub name: String,
    /// From process start to its first poll of the Runtime API (initialisation).
    pub init: Duration,
    /// From process start to its first response.
    pub first_response: Duration,
    pub binary_bytes: u64,
    pub peak_rss_kib: u64,
}

pub struct Binaries {
    pub dir: PathBuf,
    pub cold: Vec<ColdStart>,
    pub scenario: Scenario,
}

/// Starts each function alone and times its first response, runs the pass over the API through
/// them (phones apart from the in-process pass), then reads their sizes and peak memory.
pub async fn measure(bench: &Bench, options: &Options) -> Binaries {
    let env = bench.binary_env();
    let mut functions: HashMap<String, Function> = HashMap::new();
    let mut cold = Vec::new();
    for name in names() {
        let binary = options.binaries.join(&name);
        assert!(
            binary.exists(),
            "{} is not built: run scripts/bench",
            binary.display()
        );
        let function = Function::start(&binary, &env).await;
        let (init, first_response) = cold_start(&name, &function).await;
        cold.push(ColdStart {
            name: name.clone(),
            init,
            first_response,
            binary_bytes: 0,
            peak_rss_kib: 0,
        });
        functions.insert(name, function);
    }
    let functions = &functions;
    let scenario = run_flow(&bench.t, options.calls, 1_000_000, |_, call| async move {
        let function = &functions[call.endpoint.function()];
        let (response, wall) = function.invoke(call.event()).await;
        let status = response["statusCode"].as_u64().unwrap_or(0) as u16;
        let body = response["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        let sample = Sample {
            wall,
            dynamodb_calls: 0,
            dynamodb_time: Duration::ZERO,
        };
        (body, status, sample)
    })
    .await;
    for start in &mut cold {
        start.binary_bytes = std::fs::metadata(options.binaries.join(&start.name))
            .map(|m| m.len())
            .unwrap_or(0);
        start.peak_rss_kib = functions[&start.name].peak_rss_kib().unwrap_or(0);
    }
    Binaries {
        dir: options.binaries.clone(),
        cold,
        scenario,
    }
}

/// The first invocation of a fresh process: a GET without credentials, which answers the key
/// set for JWKS, and for the others a refusal (405 or 401) that needs no DynamoDB call.
/// Returns the time from process start to the first poll and to the first response.
async fn cold_start(name: &str, function: &Function) -> (Duration, Duration) {
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
    (init, first_response)
}
