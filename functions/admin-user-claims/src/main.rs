//! Lambda entry point for `GET and PUT /admin/users/{id}/claims` (the admin API, behind IAM):
//! builds the app once per cold start.

use auth_shared::{App, handlers};
use lambda_http::{Error, run, service_fn};

// Lambda hands an instance one request at a time: one thread, with no hand-offs between worker
// threads (BENCHMARKS.md section 1).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    auth_shared::telemetry::init();
    let app = App::from_env().await?;
    run(service_fn(|request| {
        handlers::admin_user_claims(&app, request)
    }))
    .await
}
