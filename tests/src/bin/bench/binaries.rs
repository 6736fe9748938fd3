//! 1, 5, 7, 8: the real function binaries, one process per function behind a local Lambda
//! Runtime API, as Lambda runs them: cold start, the pass over the API with the CPU and billed
//! duration of every invocation, binary size and peak memory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use auth_tests::routes::template_functions;
use auth_tests::tables::template_path;
use serde_json::Value;

use crate::emulator::{Cpu, Function};
use crate::flow::{Sample, Scenario, Usage, run_flow};
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
    /// From process start to its first poll of the Runtime API (initialisation), and the CPU
    /// the process used by then.
    pub init: Duration,
    pub init_cpu: Cpu,
    pub binary_bytes: u64,
    pub peak_rss_kib: u64,
}

pub struct Binaries {
    pub dir: PathBuf,
    pub cold: Vec<ColdStart>,
    pub scenario: Scenario,
}

/// Starts each function alone and waits until it is initialised, runs the pass over the API
/// through them (phones apart from the in-process pass; the first call each function gets is
/// its cold start's first invocation), then reads their sizes and peak memory.
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
        let (init, init_cpu) = function.ready().await;
        cold.push(ColdStart {
            name: name.clone(),
            init,
            init_cpu: init_cpu.unwrap_or_default(),
            binary_bytes: 0,
            peak_rss_kib: 0,
        });
        functions.insert(name, function);
    }
    let functions = &functions;
    let invoked = &std::sync::Mutex::new(std::collections::HashSet::new());
    let scenario = run_flow(&bench.t, options.calls, 1_000_000, |call| async move {
        let name = call.endpoint.function();
        let first = invoked.lock().expect("invoked").insert(name);
        let invocation = functions[name].invoke(call.event()).await;
        let status = invocation.response["statusCode"].as_u64().unwrap_or(0) as u16;
        let body = invocation.response["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        let mut sample = Sample::timed(invocation.wall);
        sample.usage = invocation.cpu.map(|cpu| Usage {
            billed: invocation.billed,
            cpu,
            first,
        });
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
