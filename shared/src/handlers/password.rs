use std::convert::Infallible;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use crate::App;
use crate::error::AuthError;
use crate::http::{caller, parse_json_post, respond, respond_no_content};
use crate::otp::OtpPurpose;
use crate::password::Password;
use crate::service::account;
use crate::service::codes::CodeGuess;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    old_password: String,
    new_password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    phone: String,
    /// The language of the SMS (else `Accept-Language`).
    locale: Option<String>,
    /// The bot check's token, when one is configured (`CAPTCHA_PROVIDER`).
    captcha_token: Option<String>,
}

#[derive(Serialize)]
struct ResetRequested {
    message: &'static str,
    /// Sent back with the code (and, so that the answer is the same, without one).
    verification_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetConfirmation {
    phone: String,
    code: String,
    new_password: String,
    verification_id: Option<String>,
}

/// `POST /auth/password/change/` (Bearer): replaces the password, ends the other sessions.
pub async fn password_change(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    respond_no_content(change(app, &request).await)
}

async fn change(app: &App, request: &Request) -> Result<(), AuthError> {
    let body: PasswordChange = parse_json_post(request)?;
    let new_password = Password::new(body.new_password)?;
    let caller = caller(request, app.config.trusted_proxy)?;
    let session = super::authenticated(app, request).await?;
    account::change_password(
        app,
        &session,
        Password::presented(body.old_password),
        new_password,
        &caller,
    )
    .await
}

/// `POST /auth/password/reset/request/`: sends a reset code to a registered number. The answer
/// is the same whether or not the number has an account.
pub async fn password_reset_request(
    app: &App,
    request: Request,
) -> Result<Response<Body>, Infallible> {
    respond(StatusCode::OK, reset_request(app, &request).await)
}

async fn reset_request(app: &App, request: &Request) -> Result<ResetRequested, AuthError> {
    let body: ResetRequest = parse_json_post(request)?;
    let phone = app.phones.parse(&body.phone)?;
    let language = super::sms_language(app, body.locale.as_deref(), request)?;
    let caller = caller(request, app.config.trusted_proxy)?;
    let purpose = OtpPurpose::PasswordReset;
    let token = super::captcha_token(body.captcha_token.as_ref())?;
    let sent =
        account::request_code_for_account(app, &phone, &caller, purpose, token, language).await?;
    Ok(ResetRequested {
        message: "If this number has an account, a reset code has been sent to it.",
        verification_id: sent.verification_id,
    })
}

/// `POST /auth/password/reset/confirm/`: sets a new password with a reset code.
pub async fn password_reset_confirm(
    app: &App,
    request: Request,
) -> Result<Response<Body>, Infallible> {
    respond_no_content(reset_confirm(app, &request).await)
}

async fn reset_confirm(app: &App, request: &Request) -> Result<(), AuthError> {
    let body: ResetConfirmation = parse_json_post(request)?;
    let phone = app.phones.parse(&body.phone)?;
    let guess = CodeGuess::new(super::code_field(app, &body.code)?, body.verification_id)?;
    let new_password = Password::new(body.new_password)?;
    let caller = caller(request, app.config.trusted_proxy)?;
    account::confirm_password_reset(app, &phone, &guess, new_password, &caller).await
}
