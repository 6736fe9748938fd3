//! Data made by other tools for the tests: the Python scripts of `tests/fixtures`, run with the
//! Python of `.local/django` (Django, bcrypt and argon2-cffi; `scripts/test` installs it).

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// Runs `tests/fixtures/<script>` with `args` and `input` as JSON on its standard input, and
/// returns what it printed, read as JSON.
pub async fn python_fixture(script: &str, args: &[&str], input: &Value) -> Value {
    let root = crate::routes::workspace_root();
    let python = root.join(".local/django/bin/python3");
    let mut child = tokio::process::Command::new(&python)
        .arg(root.join("tests/fixtures").join(script))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/test installs it)", python.display()));
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.to_string().as_bytes())
        .await
        .expect("write");
    drop(stdin);
    let output = child.wait_with_output().await.expect("the fixture ran");
    assert!(output.status.success(), "{script} failed");
    serde_json::from_slice(&output.stdout).expect("the fixture's output as JSON")
}

/// A new empty directory for one test's files.
pub fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("auth-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}
