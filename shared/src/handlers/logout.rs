use std::convert::Infallible;

use lambda_http::{Body, Request, Response};
use serde::Deserialize;

use crate::App;
use crate::error::AuthError;
use crate::http::{caller, parse_optional_json_post, respond_no_content};
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
    let caller = caller(request, app.config.trusted_proxy)?;
    let session = super::authenticated(app, request).await?;
    let logout = (body.refresh.as_deref(), body.all);
    sessions::logout(app, &session, logout, &caller).await
}
