use std::convert::Infallible;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use super::SentCodeView;
use crate::App;
use crate::error::AuthError;
use crate::http::{caller, parse_json_post, respond};
use crate::otp::OtpPurpose;
use crate::password::Password;
use crate::service::codes::CodeGuess;
use crate::service::{account, sessions};
use crate::tokens::TokenPair;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    phone: String,
    password: String,
    /// The code sent by SMS when a login answered `code_required` (step-up).
    code: Option<String>,
    verification_id: Option<String>,
    /// The language of a step-up code's SMS (else `Accept-Language`).
    locale: Option<String>,
    /// The bot check's token, asked for before a step-up code is sent.
    captcha_token: Option<String>,
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
        .map(|code| CodeGuess::new(super::code_field(app, &code)?, body.verification_id))
        .transpose()?;
    let language = super::sms_language(app, body.locale.as_deref(), request)?;
    let caller = caller(request, app.config.trusted_proxy)?;
    let attempt = sessions::LoginAttempt {
        phone: &phone,
        password: Password::presented(body.password),
        code,
        captcha_token: super::captcha_token(body.captcha_token.as_ref())?,
        language,
    };
    let tokens = sessions::login(app, attempt, &caller).await?;
    Ok(LoginResponse {
        message: "Login successful.",
        tokens,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginCodeRequest {
    phone: String,
    /// The language of the SMS (else `Accept-Language`).
    locale: Option<String>,
    /// The bot check's token, when one is configured (`CAPTCHA_PROVIDER`).
    captcha_token: Option<String>,
}

/// `POST /auth/login/otp/request/`: sends a login code to a registered number. The answer is the
/// same whether or not the number has an account.
pub async fn login_otp_request(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    respond(StatusCode::OK, code_request(app, &request).await)
}

async fn code_request(app: &App, request: &Request) -> Result<SentCodeView, AuthError> {
    let body: LoginCodeRequest = parse_json_post(request)?;
    let phone = app.phones.parse(&body.phone)?;
    let language = super::sms_language(app, body.locale.as_deref(), request)?;
    let caller = caller(request, app.config.trusted_proxy)?;
    let purpose = OtpPurpose::Login;
    let token = super::captcha_token(body.captcha_token.as_ref())?;
    let sent =
        account::request_code_for_account(app, &phone, &caller, purpose, token, language).await?;
    // The verification id comes back without a code too, so that the answer is the same.
    let message = "If this number has an account, a login code has been sent to it.";
    Ok(SentCodeView::new(app, message, sent))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeLogin {
    phone: String,
    code: String,
    verification_id: Option<String>,
}

/// `POST /auth/login/otp/`: exchanges a login code for tokens (passwordless login).
pub async fn login_otp(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    respond(StatusCode::OK, code_login(app, &request).await)
}

async fn code_login(app: &App, request: &Request) -> Result<LoginResponse, AuthError> {
    let body: CodeLogin = parse_json_post(request)?;
    let phone = app.phones.parse(&body.phone)?;
    let guess = CodeGuess::new(super::code_field(app, &body.code)?, body.verification_id)?;
    let caller = caller(request, app.config.trusted_proxy)?;
    let tokens = sessions::login_with_code(app, &phone, &guess, &caller).await?;
    Ok(LoginResponse {
        message: "Login successful.",
        tokens,
    })
}
