use std::convert::Infallible;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use crate::App;
use crate::error::AuthError;
use crate::http::{caller, parse_json_post, respond};
use crate::password::Password;
use crate::service::sessions;
use crate::tokens::TokenPair;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    phone: String,
    password: String,
}

#[derive(Serialize)]
struct LoginResponse {
    message: &'static str,
    tokens: TokenPair,
}

/// `POST /auth/login/`: exchanges phone and password for tokens.
pub async fn login(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    respond(StatusCode::OK, handle(app, &request).await)
}

async fn handle(app: &App, request: &Request) -> Result<LoginResponse, AuthError> {
    let body: LoginRequest = parse_json_post(request)?;
    let phone = app.config.parse_phone(&body.phone)?;
    let caller = caller(request)?;
    let tokens = sessions::login(app, &phone, Password::presented(body.password), &caller).await?;
    Ok(LoginResponse {
        message: "Login successful.",
        tokens,
    })
}
