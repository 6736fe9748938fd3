//! `CapturedLogs`: the writer of a test's own `tracing` subscriber, read back as text, and
//! `set_thread_default`, which installs that subscriber for the test's thread.
//! `CapturedLogs::capture_json` and `capture_text` do both.

use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
use tracing::subscriber::{DefaultGuard, NoSubscriber};
use tracing::{Dispatch, Level, Subscriber};

/// `tracing::subscriber::set_default`, safe in a test binary where other tests run on other
/// threads without a subscriber.
///
/// tracing caches each callsite's interest for the whole process, and while exactly one
/// `Dispatch` exists it asks the default of whichever thread reaches the callsite first. A test
/// thread without a subscriber that gets there first caches "never", and the capturing test then
/// sees none of that callsite's events (tokio-rs/tracing#3611; it hit the audit test once all
/// tests shared one binary). An inert `Dispatch` kept alive for the life of the process means
/// there is never exactly one: interest is then asked of every live dispatch.
pub fn set_thread_default(subscriber: impl Subscriber + Send + Sync + 'static) -> DefaultGuard {
    static INERT: OnceLock<Dispatch> = OnceLock::new();
    INERT.get_or_init(|| Dispatch::new(NoSubscriber::default()));
    tracing::subscriber::set_default(subscriber)
}

/// Collects everything logged while it is the writer of a `tracing` subscriber.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl CapturedLogs {
    /// Captures what this thread logs up to `level`, as JSON lines (as in Lambda), until the
    /// guard drops.
    pub fn capture_json(level: Level) -> (Self, DefaultGuard) {
        let logs = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(level)
            .with_writer(logs.clone())
            .finish();
        (logs.clone(), set_thread_default(subscriber))
    }

    /// As `capture_json`, in the plain text format.
    pub fn capture_text(level: Level) -> (Self, DefaultGuard) {
        let logs = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(logs.clone())
            .finish();
        (logs.clone(), set_thread_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }

    /// The fields of each audit event captured as JSON lines, in order.
    pub fn audit_events(&self) -> Vec<Value> {
        self.text()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|event| event["target"] == "audit")
            .map(|event| event["fields"].clone())
            .collect()
    }
}
