//! Logging for every function: the level and format Lambda asks for, with every other crate's
//! logs capped so that no level, TRACE included, puts a password, code, token or Authorization
//! header in the logs.

use std::str::FromStr;

use crate::settings::Env;

use tracing::Subscriber;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Targets that log at whatever level is asked for: this crate, whose events carry no secret
/// (passwords, codes and tokens are `secrecy` types or have no `Debug`), and its audit events.
pub const OWN_TARGETS: [&str; 2] = ["auth_shared", "audit"];

/// The most any other target logs, whatever level is asked for. Below it, dependencies log
/// secrets: `lambda_runtime` each raw event (bodies with passwords and codes, the Authorization
/// header) at TRACE; `aws_smithy_runtime` each request and response (an SNS Publish carries the
/// SMS text with the code) and parsed output at TRACE, errors at DEBUG; `aws_sigv4` the request
/// it signs (with the session token) at TRACE; `h2` and `hyper_util` connection frames at TRACE.
/// An allow-list rather than a deny-list, so that a new dependency is capped too.
pub const DEPENDENCY_MAX_LEVEL: LevelFilter = LevelFilter::INFO;

/// What the environment asks for, read as `lambda_http::tracing::init_default_subscriber` does.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO.
    pub level: LevelFilter,
    /// `RUST_LOG`'s directives (e.g. `auth_shared=debug`), on top of `level`.
    pub directives: String,
    /// `AWS_LAMBDA_LOG_FORMAT=JSON`, as Lambda sets it when the function logs JSON.
    pub json: bool,
}

impl LogSettings {
    pub fn from_env() -> Self {
        Self::from_lookup(crate::settings::process_variable)
    }

    /// From any variable source. Logging starts before the configuration is read, so a
    /// variable it cannot use falls back (to INFO, to text lines) instead of stopping the function.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let env = Env::new(&lookup);
        let read = |name| env.get(name).ok().flatten();
        let rust_log = read("RUST_LOG").unwrap_or_default();
        let level = read("AWS_LAMBDA_LOG_LEVEL")
            .or_else(|| (!rust_log.is_empty()).then(|| rust_log.clone()))
            .and_then(|level| LevelFilter::from_str(&level).ok())
            .unwrap_or(LevelFilter::INFO);
        let json =
            read("AWS_LAMBDA_LOG_FORMAT").is_some_and(|format| format.eq_ignore_ascii_case("json"));
        Self {
            level,
            directives: rust_log,
            json,
        }
    }
}

/// Installs the global subscriber, writing to stdout as Lambda expects. Call once, first thing
/// in `main`.
pub fn init() {
    let settings = LogSettings::from_env();
    // Fails only when a subscriber is already set (a test harness); that one then stays.
    if subscriber(&settings, std::io::stdout).try_init().is_ok() {
        tracing::debug!(
            requested = %settings.level,
            dependencies_capped_at = %DEPENDENCY_MAX_LEVEL,
            "logging started"
        );
    }
}

/// The subscriber `init` installs, writing to `writer`: what is asked for, and no more than
/// `DEPENDENCY_MAX_LEVEL` from anything but `OWN_TARGETS`.
pub fn subscriber<W>(settings: &LogSettings, writer: W) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let requested = EnvFilter::builder()
        .with_default_directive(settings.level.into())
        .parse_lossy(&settings.directives);
    let secret_safe = OWN_TARGETS.iter().fold(
        Targets::new().with_default(DEPENDENCY_MAX_LEVEL),
        |targets, own| targets.with_target(*own, LevelFilter::TRACE),
    );
    let output = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_writer(writer);
    let output = if settings.json {
        output.json().boxed()
    } else {
        output.boxed()
    };
    // Both filters must pass an event: stacked global filters combine as AND.
    tracing_subscriber::registry()
        .with(requested)
        .with(secret_safe)
        .with(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'writer> MakeWriter<'writer> for Captured {
        type Writer = Self;
        fn make_writer(&'writer self) -> Self {
            self.clone()
        }
    }

    /// Logs one event per interesting target and level under `settings`; returns the output.
    fn logged_with(settings: LogSettings) -> String {
        let captured = Captured::default();
        tracing::subscriber::with_default(subscriber(&settings, captured.clone()), || {
            tracing::trace!(
                target: "lambda_runtime::layers::api_response",
                body = "secret-event",
                "raw JSON event received from Lambda"
            );
            tracing::debug!(target: "aws_smithy_runtime::client::orchestrator", "secret-debug");
            tracing::trace!(target: "aws_sigv4::http_request::sign", "secret-signing");
            tracing::trace!(target: "h2::codec", "secret-frame");
            tracing::info!(target: "lambda_runtime", "dependency-info");
            tracing::warn!(target: "aws_smithy_runtime", "dependency-warn");
            tracing::trace!(target: "auth_shared::service", "own-trace");
            tracing::debug!(target: "audit", "audit-debug");
            tracing::info!(target: "audit", event = "registered", "audit-info");
        });
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    fn settings(level: LevelFilter, directives: &str, json: bool) -> LogSettings {
        LogSettings {
            level,
            directives: directives.into(),
            json,
        }
    }

    #[test]
    fn at_trace_dependencies_stay_at_info_and_own_targets_trace() {
        for json in [false, true] {
            let logged = logged_with(settings(LevelFilter::TRACE, "", json));
            assert!(!logged.contains("secret"), "{logged}");
            for expected in [
                "dependency-info",
                "dependency-warn",
                "own-trace",
                "audit-info",
            ] {
                assert!(logged.contains(expected), "{expected} in {logged}");
            }
        }
    }

    #[test]
    fn directives_naming_a_dependency_cannot_lift_its_cap() {
        let logged = logged_with(settings(
            LevelFilter::INFO,
            "trace,lambda_runtime=trace,lambda_runtime::layers::api_response=trace,\
             aws_smithy_runtime=debug,h2=trace",
            false,
        ));
        assert!(!logged.contains("secret"), "{logged}");
        assert!(logged.contains("own-trace"), "{logged}");
    }

    #[test]
    fn a_lower_level_than_the_cap_is_honoured() {
        let logged = logged_with(settings(LevelFilter::WARN, "", false));
        assert!(logged.contains("dependency-warn"), "{logged}");
        for quiet in ["dependency-info", "own-trace", "audit-info", "secret"] {
            assert!(!logged.contains(quiet), "{quiet} in {logged}");
        }
    }

    #[test]
    fn json_lines_when_lambda_asks_for_json() {
        let logged = logged_with(settings(LevelFilter::INFO, "", true));
        for line in logged.lines() {
            let parsed: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(parsed["level"].is_string(), "{line}");
        }
        assert!(logged.contains(r#""event":"registered""#), "{logged}");
    }
}
