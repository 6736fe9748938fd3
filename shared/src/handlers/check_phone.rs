use std::convert::Infallible;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use super::CodeSent;
use crate::App;
use crate::error::AuthError;
use crate::http::{caller, parse_json_post, respond};
use crate::limits::SendPool;
use crate::otp::OtpPurpose;
use crate::service::codes::{CodeToSend, check_bot, check_phone_lookup, send_code};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckPhoneRequest {
    phone: String,
    /// The language of the SMS (else `Accept-Language`).
    locale: Option<String>,
    /// The bot check's token, when one is configured (`CAPTCHA_PROVIDER`).
    captcha_token: Option<String>,
}

#[derive(Serialize)]
struct CheckPhoneResponse {
    exists: bool,
    #[serde(flatten)]
    sent: Option<CodeSent>,
}

/// `POST /auth/check-phone/`: says whether the phone has an account; if not, sends a code.
pub async fn check_phone(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    respond(StatusCode::OK, handle(app, &request).await)
}

async fn handle(app: &App, request: &Request) -> Result<CheckPhoneResponse, AuthError> {
    let body: CheckPhoneRequest = parse_json_post(request)?;
    let phone = app.phones.parse(&body.phone)?;
    let language = super::sms_language(app, body.locale.as_deref(), request)?;
    let caller = caller(request, app.config.trusted_proxy)?;
    let pool = SendPool::NewNumbers;
    let token = super::captcha_token(body.captcha_token.as_ref())?;
    // A token is verified before any counter is spent; only a new number needs one.
    let bot = check_bot(app, &phone, pool, token, &caller).await?;
    if check_phone_lookup(app, &phone, &caller).await? {
        return Ok(CheckPhoneResponse {
            exists: true,
            sent: None,
        });
    }
    bot.ensure_passed()?;
    let send = CodeToSend::new(OtpPurpose::SignUp, pool, bot);
    let sent = send_code(app, &phone, &caller, send, language)
        .await?
        .sent()?;
    Ok(CheckPhoneResponse {
        exists: false,
        sent: Some(CodeSent::new(app, "OTP sent successfully.", sent)),
    })
}
