//! Lambda entry point for the events table's stream: builds the publisher once per cold start.

use auth_shared::publisher::Publisher;
use lambda_http::lambda_runtime::{Error, run, service_fn};

// Lambda hands an instance one batch at a time: one thread, with no hand-offs between worker
// threads (BENCHMARKS.md section 1).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    auth_shared::telemetry::init();
    let publisher = Publisher::from_env().await?;
    run(service_fn(|event| publisher.handle(event))).await
}
