//! The importer (`import-users`, issue 25): its binary on a generated file of made-up users
//! (JSON lines, one well-formed PBKDF2 hash each), into the bench's users table on DynamoDB
//! Local, run twice: the first run writes every account, the second finds them all present.
//! Its summary (`--json`) gives the counts and the write units DynamoDB reported; its peak
//! memory is read from `/proc/<pid>/status` (`VmHWM`) while it runs.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::setup::{Bench, Options};

/// One run of the importer.
pub struct ImportRun {
    pub label: &'static str,
    pub rows: u64,
    pub seconds: f64,
    pub summary: Value,
    pub peak_rss_mib: f64,
}

/// The rows of the import measurement: `--import N`, else a few in the smoke run.
pub fn rows(options: &Options) -> u64 {
    options
        .import
        .unwrap_or(if options.smoke { 200 } else { 20_000 })
}

pub async fn measure(bench: &Bench, options: &Options) -> Vec<ImportRun> {
    let rows = rows(options);
    let file = std::env::temp_dir().join(format!("bench-import-{}.jsonl", uuid::Uuid::new_v4()));
    write_users(&file, rows);
    let mut runs = Vec::new();
    for (label, dry_run) in [
        ("dry run (reads only)", true),
        ("first run", false),
        ("second run", false),
    ] {
        runs.push(run(bench, options, &file, rows, label, dry_run).await);
    }
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(file.with_extension("jsonl.rejects.jsonl"));
    runs
}

/// The first generated number: 09128000000, leaving room for 1,999,999 more in 0912.
const IMPORTED_PHONE_BASE: usize = 8_000_000;

fn write_users(path: &Path, rows: u64) {
    assert!(rows < 2_000_000, "at most 1,999,999 generated users");
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("the users file"));
    for n in 0..usize::try_from(rows).expect("rows") {
        let row = json!({
            "id": n,
            // Beyond the numbers the passes over the API use (`flow::phone`'s bases).
            "phone": crate::flow::phone(n, IMPORTED_PHONE_BASE),
            "password_hash": "pbkdf2_sha256$870000$seasalt0123456789abc$5zF9IsNQDpP/iTgRXoPHDpEmj7hd6ORDYHrjjCbs5No=",
            "first_name": "Imported",
            "last_name": format!("User {n}"),
            "email": format!("user{n}@example.com"),
            "created_at": 1_600_000_000 + n,
        });
        writeln!(out, "{row}").expect("a row");
    }
    out.flush().expect("the users file");
}

async fn run(
    bench: &Bench,
    options: &Options,
    file: &Path,
    rows: u64,
    label: &'static str,
    dry_run: bool,
) -> ImportRun {
    let binary = options.binaries.join("import-users");
    let mut command = tokio::process::Command::new(&binary);
    command
        .arg(file)
        .args(["--format", "jsonl", "--default-region", "IR", "--json"])
        .args(["--table", &bench.t.tables().users])
        .envs(bench.binary_env())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    if dry_run {
        command.arg("--dry-run");
    }
    let started = Instant::now();
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    let status = format!("/proc/{}/status", child.id().expect("its pid"));
    let watch = tokio::spawn(async move {
        let mut peak_kib = 0.0_f64;
        while let Ok(text) = tokio::fs::read_to_string(&status).await {
            if let Some(kib) = text
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        peak_kib
    });
    let output = child.wait_with_output().await.expect("the importer ran");
    let seconds = started.elapsed().as_secs_f64();
    let peak_kib = watch.await.unwrap_or_default();
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "the importer's summary: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    assert_eq!(
        summary["rows"].as_u64(),
        Some(rows),
        "{label}: every row read"
    );
    let expected = if label == "second run" {
        "already_present"
    } else {
        "imported"
    };
    assert_eq!(summary[expected].as_u64(), Some(rows), "{label}: {summary}");
    ImportRun {
        label,
        rows,
        seconds,
        summary,
        peak_rss_mib: peak_kib / 1024.0,
    }
}
