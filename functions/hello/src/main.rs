//! Lambda entry point for `GET /hello`, the example route behind API Gateway's JWT authorizer.
//! It builds no app: it reads no setting, secret or table, and calls no AWS service.

use auth_shared::handlers;
use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    auth_shared::telemetry::init();
    run(service_fn(handlers::hello)).await
}
