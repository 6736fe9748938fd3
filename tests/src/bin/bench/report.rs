//! The markdown tables: one function per measurement, printing what it measured.

use std::path::Path;
use std::time::Duration;

use crate::binaries::Binaries;
use crate::flow::Scenario;
use crate::logins::{HashTime, Throughput};
use crate::setup::Options;

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64)).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

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

pub fn title(options: &Options) {
    println!(
        "# Benchmark ({} mode, {} calls per endpoint, {} cores)\n",
        if options.smoke { "smoke" } else { "full" },
        options.calls,
        options.cores
    );
}

/// Latency, DynamoDB requests and overhead (without DynamoDB and argon2) per endpoint.
pub fn in_process(scenario: &Scenario, hash: &HashTime) {
    println!("## Per endpoint, in-process (the shared handler called directly)\n");
    println!(
        "| endpoint | p50 ms | p95 ms | p99 ms | DynamoDB requests per call | target | overhead p50 ms (excl. DynamoDB and argon2) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, series) in &scenario.series {
        let wall = series.sorted(|s| s.wall);
        let argon2 = if name.starts_with("login") || *name == "register" {
            hash.median
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
}

/// Logins per second against the limit the cores and one argon2 verification set.
pub fn throughput(hash: &HashTime, runs: &[Throughput], cores: usize) {
    println!("\n## Login throughput (argon2id m=19456 KiB, t=2, p=1)\n");
    let limit = cores as f64 / hash.median.as_secs_f64();
    println!(
        "One verification, median of {}: {} ms; limit = {cores} cores / that = {limit:.1} logins/s\n",
        hash.runs,
        ms(hash.median),
    );
    println!("| concurrency | logins | seconds | logins/s | share of the limit |");
    println!("|---|---|---|---|---|");
    for run in runs {
        let rate = run.logins as f64 / run.seconds;
        println!(
            "| {} | {} | {:.2} | {rate:.1} | {:.0}% |",
            run.concurrency,
            run.logins,
            run.seconds,
            100.0 * rate / limit
        );
    }
    for run in runs {
        if let Some(cores_used) = run.dynamodb_cores {
            println!(
                "\nAt concurrency {}, DynamoDB Local (same machine) used {cores_used:.2} of the {cores} cores.",
                run.concurrency
            );
        }
    }
}

/// Latency per endpoint through the binaries.
pub fn through_binaries(binaries: &Binaries) {
    println!(
        "\n## Per endpoint, through the binaries in {} (local Lambda Runtime API, one invocation at a time)\n",
        binaries.dir.display()
    );
    println!("| endpoint | p50 ms | p95 ms | p99 ms |");
    println!("|---|---|---|---|");
    for (name, series) in &binaries.scenario.series {
        let wall = series.sorted(|s| s.wall);
        println!(
            "| {name} | {} | {} | {} |",
            ms(percentile(&wall, 50.0)),
            ms(percentile(&wall, 95.0)),
            ms(percentile(&wall, 99.0))
        );
    }
}

pub fn cold_start(binaries: &Binaries) {
    println!(
        "\n## Cold start, size and memory of each function ({})\n",
        binaries.dir.display()
    );
    println!(
        "| function | init ms (process start → first poll) | first response ms (from process start) | binary MB | peak RSS MB after the run |"
    );
    println!("|---|---|---|---|---|");
    for start in &binaries.cold {
        println!(
            "| {} | {} | {} | {:.2} | {:.1} |",
            start.name,
            ms(start.init),
            ms(start.first_response),
            start.binary_bytes as f64 / 1_048_576.0,
            start.peak_rss_kib as f64 / 1024.0
        );
    }
}

/// The size of each arm64 Lambda build, when `scripts/bench --arm64` made them.
pub fn arm64(functions: &[String]) {
    let arm64 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/lambda");
    if !arm64.exists() {
        return;
    }
    println!("\n## arm64 Lambda builds (`cargo lambda build --release --arm64`)\n");
    println!("| function | bootstrap MB |");
    println!("|---|---|");
    for name in functions {
        let size = std::fs::metadata(arm64.join(name).join("bootstrap"))
            .map(|m| m.len())
            .unwrap_or(0);
        println!("| {name} | {:.2} |", size as f64 / 1_048_576.0);
    }
}
