//! One handler per Lambda function: parse the request, call the service, shape the response.
//! Each returns `Infallible`: every error is already a JSON response.

mod admin;
mod check_phone;
mod hello;
mod jwks;
mod login;
mod logout;
mod password;
mod phone;
mod profile;
mod refresh;
mod register;
mod sessions;
mod verify;

pub use admin::{
    admin_find_users, admin_session_revoke, admin_sessions, admin_user, admin_user_claims,
    admin_user_status,
};
pub use check_phone::check_phone;
pub use hello::hello;
pub use jwks::{jwks, openid_configuration};
pub use login::{login, login_otp, login_otp_request};
pub use logout::logout;
pub use password::{password_change, password_reset_confirm, password_reset_request};
pub use phone::{phone_change_confirm, phone_change_request};
pub use profile::profile;
pub use refresh::refresh;
pub use register::register;
pub use sessions::{session_revoke, sessions};
pub use verify::verify;

use lambda_http::{Request, RequestExt};
use serde::Serialize;

use crate::App;
use crate::captcha;
use crate::error::AuthError;
use crate::http::{accept_language, bearer_token};
use crate::messages::Locale;
use crate::otp::OtpCode;
use crate::profile::UserProfile;
use crate::service::codes::SentCode;
use crate::store::sessions::Session;

/// An account as the answers show it: never the password hash.
#[derive(Serialize)]
struct UserView {
    id: String,
    phone: String,
    first_name: String,
    last_name: String,
    email: String,
}

impl From<UserProfile> for UserView {
    fn from(profile: UserProfile) -> Self {
        Self {
            id: profile.id,
            phone: profile.phone,
            first_name: profile.first_name,
            last_name: profile.last_name,
            email: profile.email,
        }
    }
}

/// The answer to a request that sent a code.
#[derive(Serialize)]
struct SentCodeView {
    message: &'static str,
    expires_in: u64,
    resend_after: u64,
    /// Sent back with the code, so that only this client's wrong guesses count against it.
    verification_id: String,
}

impl SentCodeView {
    fn new(app: &App, message: &'static str, sent: SentCode) -> Self {
        Self {
            message,
            expires_in: app.config.otp_ttl_seconds,
            resend_after: app.config.otp_resend_seconds,
            verification_id: sent.verification_id,
        }
    }
}

/// Seconds since the epoch as RFC 3339 (UTC), as the answers show times.
fn rfc3339(seconds: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// The path parameter `name` when it is a UUID (an account or session id this service issues),
/// hyphenated; otherwise nothing.
fn path_uuid(request: &Request, name: &str) -> Option<String> {
    let raw = request.path_parameters_ref()?.first(name)?;
    uuid::Uuid::try_parse(raw)
        .ok()
        .map(|id| id.hyphenated().to_string())
}

/// The live session of a request's `Authorization: Bearer` access token.
async fn authenticated(app: &App, request: &Request) -> Result<Session, AuthError> {
    crate::service::sessions::authenticate(app, bearer_token(request)?).await
}

/// The language of the SMS a request may send: the body's `locale` (400 if it is no language
/// tag), else the `Accept-Language` header, else the fallback.
fn sms_language<'a>(
    app: &'a App,
    locale: Option<&str>,
    request: &Request,
) -> Result<&'a str, AuthError> {
    let locale = locale.map(Locale::parse).transpose()?;
    Ok(app
        .config
        .messages
        .language_for(locale.as_ref(), accept_language(request)))
}

/// The optional `captcha_token` field: refused when longer than any provider's token, whether
/// or not a bot check is configured (the field's rule does not change with the deployment).
fn captcha_token(token: Option<&String>) -> Result<Option<&str>, AuthError> {
    match token {
        Some(token) if token.chars().count() > captcha::MAX_TOKEN_CHARS => {
            Err(AuthError::InvalidRequest(format!(
                "Invalid field 'captcha_token': at most {} characters.",
                captcha::MAX_TOKEN_CHARS
            )))
        }
        token => Ok(token.map(String::as_str)),
    }
}

/// A code field, of exactly the configured length.
fn code_field(app: &App, code: &str) -> Result<OtpCode, AuthError> {
    OtpCode::parse(code, app.config.otp_length)
}
