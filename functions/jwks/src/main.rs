//! Lambda entry point for `GET /.well-known/jwks.json`: builds the app once per cold start.

use auth_shared::{App, handlers};
use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let app = App::from_env().await?;
    run(service_fn(|request| handlers::jwks(&app, request))).await
}
