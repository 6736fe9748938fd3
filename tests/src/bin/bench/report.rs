//! The markdown tables: one function per measurement, printing what it measured.

use std::path::Path;
use std::time::Duration;

use crate::binaries::Binaries;
use crate::emulator::{Cpu, TICKS_PER_SECOND};
use crate::flow::{Sample, Scenario, Series};
use crate::logins::{HashTime, Throughput};
use crate::setup::Options;
use crate::signing::SigningCost;

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64)).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// The warm invocations of a series through a binary (its cold start's first one left out).
pub fn warm(series: &Series) -> impl Iterator<Item = &Sample> {
    series
        .0
        .iter()
        .filter(|s| s.usage.as_ref().is_some_and(|u| !u.first))
}

/// Mean CPU per call of `samples` split into user and system time (from the clock-tick
/// counters, summed over the calls), total (from the CPU-time clock) and minor page faults.
pub struct CpuSplit {
    pub user_ms: f64,
    pub system_ms: f64,
    pub total_ms: f64,
    pub faults: f64,
}

pub fn cpu_split<'a>(samples: impl Iterator<Item = &'a Sample>) -> CpuSplit {
    let mut sum = Cpu::default();
    let mut calls = 0;
    for usage in samples.filter_map(|s| s.usage.as_ref()) {
        sum.time += usage.cpu.time;
        sum.user_ticks += usage.cpu.user_ticks;
        sum.system_ticks += usage.cpu.system_ticks;
        sum.minor_faults += usage.cpu.minor_faults;
        calls += 1;
    }
    let per_call = |ticks: u64| ticks as f64 / TICKS_PER_SECOND * 1000.0 / calls.max(1) as f64;
    CpuSplit {
        user_ms: per_call(sum.user_ticks),
        system_ms: per_call(sum.system_ticks),
        total_ms: sum.time.as_secs_f64() * 1000.0 / calls.max(1) as f64,
        faults: sum.minor_faults as f64 / calls.max(1) as f64,
    }
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
        "# Benchmark ({} mode, {} calls per endpoint, {} cores, SMS breaker {})\n",
        if options.smoke { "smoke" } else { "full" },
        options.calls,
        options.cores,
        std::env::var(crate::setup::BREAKER_MODE).unwrap_or_else(|_| "default".to_owned())
    );
}

/// The smoke run's probe of the raised limits.
pub fn probe(sends: usize) {
    println!(
        "Limits probe: {sends} sign-up codes to one number range, {sends} to one number, {sends} \
         login codes to one registered number and {sends} lookups of it, from one address: all \
         answered.\n"
    );
}

/// Latency, DynamoDB requests and overhead (without DynamoDB and argon2) per endpoint.
pub fn in_process(scenario: &Scenario, hash: &HashTime, largest: &[(&str, usize)]) {
    println!("## Per endpoint, in-process (the shared handler called directly)\n");
    println!(
        "| endpoint | p50 ms | p95 ms | p99 ms | DynamoDB requests per call | target | read / write request units per call, by DynamoDB's rules (as DynamoDB Local reports them) | overhead p50 ms (excl. DynamoDB and argon2) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, _, series) in &scenario.series {
        let wall = series.sorted(|s| s.wall);
        let argon2 = hash.median * hashes(name);
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
        let n = series.0.len().max(1) as f64;
        let mean = |f: fn(&Sample) -> f64| series.0.iter().map(f).sum::<f64>() / n;
        let (read, write) = (mean(|s| s.units.read), mean(|s| s.units.write));
        let reported = (
            mean(|s| s.units.reported_read),
            mean(|s| s.units.reported_write),
        );
        let unreported: u64 = series.0.iter().map(|s| s.units.unreported).sum();
        let unreported = if unreported > 0 {
            format!(" ({unreported} requests without a figure)")
        } else {
            String::new()
        };
        println!(
            "| {name} | {} | {} | {} | {calls} | {} | {read:.2} / {write:.2} ({:.2} / {:.2}){unreported} | {} |",
            ms(percentile(&wall, 50.0)),
            ms(percentile(&wall, 95.0)),
            ms(percentile(&wall, 99.0)),
            target(name),
            reported.0,
            reported.1,
            ms(percentile(&overhead, 50.0)),
        );
    }
    let sizes: Vec<String> = largest
        .iter()
        .map(|(table, bytes)| format!("{table} {bytes} B"))
        .collect();
    println!(
        "\nLargest item per table after the pass (DynamoDB's size rules): {}; the rules above take every item to be within 1 KB.",
        sizes.join(", ")
    );
}

/// How many argon2 hashes or verifications a step's call runs.
pub fn hashes(step: &str) -> u32 {
    match step {
        "login (ok)" | "login (wrong)" | "register" | "password reset confirm" => 1,
        "password change" => 2,
        _ => 0,
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

/// Latency and CPU per endpoint through the binaries (warm invocations).
pub fn through_binaries(binaries: &Binaries) {
    println!(
        "\n## Per endpoint, through the binaries in {} (local Lambda Runtime API, one invocation at a time, warm)\n",
        binaries.dir.display()
    );
    println!(
        "CPU is the function process's own (user + system, every thread), per invocation up to its next poll; the first invocation of each process is in the cold-start table instead.\n"
    );
    println!(
        "| endpoint | p50 ms | p95 ms | p99 ms | CPU ms per call (mean) | of which user / system | minor page faults per call |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, _, series) in &binaries.scenario.series {
        let mut wall: Vec<Duration> = warm(series).map(|s| s.wall).collect();
        wall.sort();
        let cpu = cpu_split(warm(series));
        println!(
            "| {name} | {} | {} | {} | {:.2} | {:.2} / {:.2} | {:.0} |",
            ms(percentile(&wall, 50.0)),
            ms(percentile(&wall, 95.0)),
            ms(percentile(&wall, 99.0)),
            cpu.total_ms,
            cpu.user_ms,
            cpu.system_ms,
            cpu.faults,
        );
    }
}

pub fn cold_start(binaries: &Binaries) {
    println!(
        "\n## Cold start, size and memory of each function ({})\n",
        binaries.dir.display()
    );
    println!(
        "Init: process start to its first poll of the Runtime API. First invocation: the first call of the pass the fresh process got (its main path), from the event to its next poll.\n"
    );
    println!(
        "| function | init ms | init CPU ms | first invocation | its ms (to the next poll) | its CPU ms | binary MB | peak RSS MB after the run |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for start in &binaries.cold {
        let (step, billed, cpu) = match binaries.scenario.first_invocation(&start.name) {
            Some((step, usage)) => (step, ms(usage.billed), ms(usage.cpu.time)),
            None => ("–", "–".to_owned(), "–".to_owned()),
        };
        println!(
            "| {} | {} | {} | {step} | {billed} | {cpu} | {:.2} | {:.1} |",
            start.name,
            ms(start.init),
            ms(start.init_cpu.time),
            start.binary_bytes as f64 / 1_048_576.0,
            start.peak_rss_kib as f64 / 1024.0
        );
    }
}

/// CPU per login through the binary next to one hash plus a call that does not hash: the target
/// is at most 1.1 times that sum.
pub fn login_cpu(hash: &HashTime, binaries: &Binaries) {
    let Some(hash_cpu) = hash.cpu_median else {
        return;
    };
    let step = |name: &str| {
        binaries
            .scenario
            .series
            .iter()
            .find(|(step, _, _)| *step == name)
            .map(|(_, _, series)| cpu_split(warm(series)))
    };
    let (Some(login), Some(refresh), Some(verify)) =
        (step("login (ok)"), step("refresh"), step("verify"))
    else {
        return;
    };
    let hash_ms = hash_cpu.as_secs_f64() * 1000.0;
    println!("\n## CPU per login\n");
    println!(
        "One argon2id verification in this process: {hash_ms:.2} ms of CPU (median of {}). Through the login binary, per warm call: {:.2} ms (user {:.2}, system {:.2}, {:.0} minor page faults).\n",
        hash.runs, login.total_ms, login.user_ms, login.system_ms, login.faults
    );
    for (name, other) in [("refresh", &refresh), ("verify", &verify)] {
        let limit = 1.1 * (hash_ms + other.total_ms);
        println!(
            "- against one hash + {name} ({:.2} ms): limit 1.1 × {:.2} = {limit:.2} ms; login {:.2} ms: {}",
            other.total_ms,
            hash_ms + other.total_ms,
            login.total_ms,
            if login.total_ms <= limit {
                "met"
            } else {
                "not met"
            }
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

/// What signing a token pair costs this process, by way of signing (`signing`).
pub fn signing(costs: &[SigningCost]) {
    println!("\n## Token signing: CPU and time per token pair, in this process\n");
    println!(
        "One `TokenIssuer::issue` (the access token signed, the refresh token opaque), one pair after another after one to warm up; KMS runs on the tests' emulator, so its time is not KMS's.\n"
    );
    println!(
        "| signing | KMS requests per pair | pairs | CPU µs per pair (mean) | time µs per pair (p50) |"
    );
    println!("|---|---|---|---|---|");
    for cost in costs {
        println!(
            "| {} | {} | {} | {:.0} | {:.0} |",
            cost.name,
            cost.kms_requests,
            cost.calls,
            cost.cpu_mean.as_secs_f64() * 1e6,
            cost.wall_p50.as_secs_f64() * 1e6
        );
    }
}

/// The importer's runs (BENCHMARKS.md, section 12).
pub fn import(runs: &[crate::import::ImportRun]) {
    println!("## The importer (`import-users`, its binary, JSON lines, into DynamoDB Local)\n");
    println!(
        "| rows | run | seconds | rows/s | imported | already present | write units per account written (as DynamoDB Local reports them) | importer's peak memory (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for run in runs {
        let count = |name: &str| run.summary[name].as_u64().unwrap_or_default();
        let imported = count("imported");
        let units = run.summary["write_units"].as_f64().unwrap_or_default();
        let per_account = if run.summary["dry_run"].as_bool() == Some(true) || imported == 0 {
            "-".to_owned()
        } else {
            format!("{:.2}", units / imported as f64)
        };
        println!(
            "| {} | {} | {:.1} | {:.0} | {} | {} | {per_account} | {:.1} |",
            run.rows,
            run.label,
            run.seconds,
            run.rows as f64 / run.seconds,
            imported,
            count("already_present"),
            run.peak_rss_mib
        );
    }
    println!();
}
