use std::convert::Infallible;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use crate::App;
use crate::error::AuthError;
use crate::http::{caller, parse_json_post, respond};
use crate::service::codes::CodeGuess;
use crate::service::signup::verify_phone;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    phone: String,
    code: String,
    /// From the check-phone answer; optional, but without it strangers' wrong guesses and this
    /// client's share one budget.
    verification_id: Option<String>,
}

#[derive(Serialize)]
struct VerifyResponse {
    message: &'static str,
    registration_token: String,
    expires_in: u64,
}

/// `POST /auth/verify/`: exchanges a correct code for a registration token.
pub async fn verify(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    respond(StatusCode::OK, handle(app, &request).await)
}

async fn handle(app: &App, request: &Request) -> Result<VerifyResponse, AuthError> {
    let body: VerifyRequest = parse_json_post(request)?;
    let phone = app.phones.parse(&body.phone)?;
    let guess = CodeGuess::new(super::code_field(app, &body.code)?, body.verification_id)?;
    let caller = caller(request, app.config.trusted_proxy)?;
    let registration_token = verify_phone(app, &phone, &guess, &caller).await?;
    Ok(VerifyResponse {
        message: "Phone verified.",
        registration_token,
        expires_in: app.config.registration_token_ttl_seconds,
    })
}
