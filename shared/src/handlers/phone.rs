use std::convert::Infallible;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

use crate::App;
use crate::error::AuthError;
use crate::http::{caller, parse_json_post, respond};
use crate::password::Password;
use crate::service::codes::CodeGuess;
use crate::service::phone_change;

use super::SentCodeView;
use super::profile::ProfileResponse;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneChangeRequest {
    new_phone: String,
    /// The account's password: a code login alone never moves an account.
    password: String,
    /// The language of the SMS (else `Accept-Language`).
    locale: Option<String>,
    /// The bot check's token, when one is configured (`CAPTCHA_PROVIDER`).
    captcha_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneChangeConfirmation {
    new_phone: String,
    code: String,
    verification_id: Option<String>,
    /// The language of the notice SMS to the old number (else `Accept-Language`).
    locale: Option<String>,
}

/// `POST /auth/phone/change/request/` (Bearer): sends a code to the new number.
pub async fn phone_change_request(
    app: &App,
    request: Request,
) -> Result<Response<Body>, Infallible> {
    respond(StatusCode::OK, change_request(app, &request).await)
}

async fn change_request(app: &App, request: &Request) -> Result<SentCodeView, AuthError> {
    let body: PhoneChangeRequest = parse_json_post(request)?;
    let new_phone = app.phones.parse(&body.new_phone)?;
    let language = super::sms_language(app, body.locale.as_deref(), request)?;
    let caller = caller(request, app.config.trusted_proxy)?;
    let session = super::authenticated(app, request).await?;
    let token = super::captcha_token(body.captcha_token.as_ref())?;
    let change = phone_change::PhoneChangeRequest {
        new_phone: &new_phone,
        password: Password::presented(body.password),
        captcha_token: token,
        language,
    };
    let sent = phone_change::request_phone_change(app, &session, change, &caller).await?;
    Ok(SentCodeView::new(app, "Code sent to the new number.", sent))
}

/// `POST /auth/phone/change/confirm/` (Bearer): moves the account to the new number.
pub async fn phone_change_confirm(
    app: &App,
    request: Request,
) -> Result<Response<Body>, Infallible> {
    respond(StatusCode::OK, confirm(app, &request).await)
}

async fn confirm(app: &App, request: &Request) -> Result<ProfileResponse, AuthError> {
    let body: PhoneChangeConfirmation = parse_json_post(request)?;
    let new_phone = app.phones.parse(&body.new_phone)?;
    let guess = CodeGuess::new(super::code_field(app, &body.code)?, body.verification_id)?;
    let caller = caller(request, app.config.trusted_proxy)?;
    let language = super::sms_language(app, body.locale.as_deref(), request)?;
    let session = super::authenticated(app, request).await?;
    let moved = (&new_phone, &guess);
    let user = phone_change::confirm_phone_change(app, &session, moved, &caller, language).await?;
    Ok(user.into())
}
