use std::convert::Infallible;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use crate::App;
use crate::error::AuthError;
use crate::http::{caller, parse_json_post, respond};
use crate::otp::OtpCode;
use crate::password::Password;
use crate::service::codes::CodeGuess;
use crate::service::sessions;
use crate::tokens::TokenPair;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    phone: String,
    password: String,
    /// The code sent by SMS when a login answered `code_required` (step-up).
    code: Option<String>,
    verification_id: Option<String>,
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
    let phone = app.phones.parse(&body.phone)?;
    let code = body
        .code
        .map(|code| CodeGuess::new(OtpCode::parse(&code)?, body.verification_id))
        .transpose()?;
    let caller = caller(request)?;
    let password = Password::presented(body.password);
    let tokens = sessions::login(app, &phone, password, code, &caller).await?;
    Ok(LoginResponse {
        message: "Login successful.",
        tokens,
    })
}
