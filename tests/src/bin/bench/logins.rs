//! 3. Login throughput at full argon2 strength, next to the time of one argon2id verification.

use std::time::{Duration, Instant};

use auth_shared::password::{self, Password};
use auth_tests::{Endpoint, PASSWORD};
use serde_json::json;

use crate::emulator::process_cpu_time;
use crate::flow::ip;
use crate::report::percentile;
use crate::setup::{Bench, Options};

/// One argon2id verification (OWASP parameters), timed several times.
pub struct HashTime {
    pub runs: usize,
    pub median: Duration,
    /// The CPU time this process used for it (median), when it can be read.
    pub cpu_median: Option<Duration>,
}

/// Logins by `concurrency` parallel clients.
pub struct Throughput {
    pub concurrency: usize,
    pub logins: usize,
    pub seconds: f64,
    /// The cores DynamoDB Local (on the same machine) used meanwhile, when it can be read.
    pub dynamodb_cores: Option<f64>,
}

/// Times one argon2id verification; measured first, before anything else loads the machine.
pub async fn one_hash(options: &Options) -> HashTime {
    let stored = password::hash(Password::new(PASSWORD.to_owned()).expect("password"))
        .await
        .expect("hash");
    let mut hashes = Vec::new();
    let mut cpu = Vec::new();
    let own_cpu = || process_cpu_time(std::process::id());
    for _ in 0..if options.smoke { 3 } else { 20 } {
        let (start, cpu_before) = (Instant::now(), own_cpu());
        password::verify(
            Password::presented(PASSWORD.to_owned()),
            Some(stored.clone()),
        )
        .await
        .expect("verify");
        hashes.push(start.elapsed());
        if let Some((after, before)) = own_cpu().zip(cpu_before) {
            cpu.push(after.saturating_sub(before));
        }
    }
    hashes.sort();
    cpu.sort();
    HashTime {
        runs: hashes.len(),
        median: percentile(&hashes, 50.0),
        cpu_median: (!cpu.is_empty()).then(|| percentile(&cpu, 50.0)),
    }
}

/// Right-password logins of the users the in-process pass registered (`phones`: their numbers
/// at its end), at concurrency 1 and 8.
pub async fn throughput(bench: &Bench, options: &Options, phones: &[String]) -> Vec<Throughput> {
    let mut results = Vec::new();
    for concurrency in [1usize, 8] {
        let total = if options.smoke {
            concurrency * 2
        } else {
            concurrency * 25
        };
        let dynamodb_cpu = dynamodb_local_cpu();
        let start = Instant::now();
        let per_task = total / concurrency;
        let tasks = (0..concurrency).map(|task| {
            let t = &bench.t;
            async move {
                for i in 0..per_task {
                    let number = &phones[(task * per_task + i) % phones.len()];
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
        let dynamodb_cores = match (dynamodb_cpu, dynamodb_local_cpu()) {
            (Some(before), Some(after)) => Some((after - before) / seconds),
            _ => None,
        };
        results.push(Throughput {
            concurrency,
            logins: total,
            seconds,
            dynamodb_cores,
        });
    }
    results
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
