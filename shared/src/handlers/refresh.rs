use std::convert::Infallible;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use crate::App;
use crate::error::AuthError;
use crate::http::{caller, parse_json_post, respond};
use crate::service::sessions;
use crate::tokens::TokenPair;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh: String,
}

#[derive(Serialize)]
struct RefreshResponse {
    tokens: TokenPair,
}

/// `POST /auth/refresh/`: spends a refresh token for a new pair.
pub async fn refresh(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    respond(StatusCode::OK, handle(app, &request).await)
}

async fn handle(app: &App, request: &Request) -> Result<RefreshResponse, AuthError> {
    let body: RefreshRequest = parse_json_post(request)?;
    let tokens = sessions::refresh(
        app,
        &body.refresh,
        &caller(request, app.config.trusted_proxy)?,
    )
    .await?;
    Ok(RefreshResponse { tokens })
}
