use std::convert::Infallible;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use super::SentCodeView;
use crate::App;
use crate::error::AuthError;
use crate::http::{caller, parse_json_post, respond};
use crate::service::signup::{self, PhoneCheck};

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
    sent: Option<SentCodeView>,
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
    let token = super::captcha_token(body.captcha_token.as_ref())?;
    Ok(
        match signup::check_phone(app, &phone, &caller, token, language).await? {
            PhoneCheck::Registered => CheckPhoneResponse {
                exists: true,
                sent: None,
            },
            PhoneCheck::Unregistered(sent) => CheckPhoneResponse {
                exists: false,
                sent: Some(SentCodeView::new(app, "OTP sent successfully.", sent)),
            },
        },
    )
}
