//! Lambda entry point for the attempts table's stream (its conversion counters only, by the
//! mapping's filter): builds the app once per cold start and reviews the SMS breaker's states.

use auth_shared::{App, breaker};
use lambda_http::lambda_runtime::{Error, run, service_fn};

// Lambda hands an instance one batch at a time: one thread, with no hand-offs between worker
// threads (BENCHMARKS.md section 1).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    auth_shared::telemetry::init();
    let app = App::from_env().await?;
    run(service_fn(|event| breaker::handle(&app, event))).await
}
