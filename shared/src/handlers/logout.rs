use std::convert::Infallible;

use lambda_http::{Body, Request, Response};
use serde::Deserialize;

use crate::App;
use crate::error::AuthError;
use crate::http::{parse_optional_json_post, respond_no_content};
use crate::service::sessions;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LogoutRequest {
    refresh: Option<String>,
    #[serde(default)]
    all: bool,
}

/// `POST /auth/logout/` (Bearer): ends this session, or every session with `"all": true`.
pub async fn logout(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    respond_no_content(handle(app, &request).await)
}

async fn handle(app: &App, request: &Request) -> Result<(), AuthError> {
    let body: LogoutRequest = parse_optional_json_post(request)?;
    let session = super::authenticated(app, request).await?;
    sessions::logout(app, &session, body.refresh.as_deref(), body.all).await
}
