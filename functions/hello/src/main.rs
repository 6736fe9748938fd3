//! Lambda entry point for `GET /hello`, the example route behind API Gateway's JWT authorizer.
//! It builds no app: it reads no setting, secret or table, and calls no AWS service.

use auth_shared::handlers;
use lambda_http::{Error, run, service_fn};

// Lambda hands an instance one request at a time: one thread, with no hand-offs between worker
// threads (BENCHMARKS.md section 1).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    auth_shared::telemetry::init();
    run(service_fn(handlers::hello)).await
}
