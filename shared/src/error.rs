//! The one error type of the service and its single mapping to an HTTP response.

use lambda_http::http::{HeaderName, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Malformed or invalid input; the message says which field and why.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Invalid phone number.")]
    InvalidPhone,
    #[error("Incorrect OTP.")]
    IncorrectOtp { attempts_left: u32 },
    #[error("No active OTP for this phone number. Request a new code.")]
    NoActiveOtp,
    #[error("Too many incorrect attempts for this code. Request a new code.")]
    OtpAttemptsExhausted,
    #[error("Invalid, expired or already used registration token.")]
    InvalidRegistrationToken,
    #[error("This phone number is already registered.")]
    PhoneAlreadyRegistered,
    /// The request raced another change of the same account; retrying is safe.
    #[error("{0}")]
    Conflict(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("Invalid phone number or password.")]
    InvalidCredentials,
    #[error("Wrong password.")]
    WrongPassword,
    #[error("Missing bearer token.")]
    MissingToken,
    #[error("Invalid or expired token.")]
    InvalidToken,
    /// Too many wrong passwords from one session: it was ended.
    #[error("Too many wrong passwords: this session has ended. Log in again.")]
    SessionEnded,
    #[error("Too many failed attempts. Try again later.")]
    Blocked { retry_after: u64 },
    /// A sensitive change needs a session whose login is recent.
    #[error("Log in again to make this change.")]
    RecentLoginRequired,
    /// An operator disabled the account (the admin API): no login, refresh or access token
    /// works until it is enabled again.
    #[error("This account is disabled.")]
    AccountDisabled,
    /// An admin route reached without API Gateway's IAM authorization (a misrouted request).
    #[error("This route takes AWS IAM (SigV4) authorization only.")]
    IamRequired,
    #[error("Too many failed attempts for this account. Try again later.")]
    BackingOff { retry_after: u64 },
    /// Step-up: the password was right, but after many failures the login also needs the code
    /// just sent by SMS (`verification_id` is that code's, when one was sent now).
    #[error("Enter the code sent to your phone by SMS to log in.")]
    CodeRequired { verification_id: Option<String> },
    /// A bot check is needed before a code is sent: the token is missing or was refused.
    #[error("{0}")]
    CaptchaRequired(&'static str),
    #[error("Please wait before requesting a new code.")]
    ResendTooSoon { retry_after: u64 },
    #[error("Too many requests. Try again later.")]
    RateLimited { retry_after: u64 },
    #[error("Request body is too large.")]
    PayloadTooLarge,
    #[error("Content-Type must be application/json.")]
    UnsupportedMediaType,
    #[error("Method not allowed.")]
    MethodNotAllowed { allow: &'static str },
    /// A dependency (DynamoDB, SMS) failed or timed out; the cause is logged, never returned.
    #[error("Service temporarily unavailable. Try again shortly.")]
    Unavailable(#[source] Cause),
    #[error("Internal server error.")]
    Internal(#[source] Cause),
}

/// How long clients should wait after a 503 before retrying.
const UNAVAILABLE_RETRY_AFTER: u64 = 1;

impl AuthError {
    pub fn unavailable(cause: impl Into<Cause>) -> Self {
        Self::Unavailable(cause.into())
    }

    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_)
            | Self::InvalidPhone
            | Self::IncorrectOtp { .. }
            | Self::NoActiveOtp
            | Self::OtpAttemptsExhausted
            | Self::CaptchaRequired(_) => StatusCode::BAD_REQUEST,
            Self::InvalidCredentials
            | Self::WrongPassword
            | Self::MissingToken
            | Self::InvalidToken
            | Self::SessionEnded
            | Self::CodeRequired { .. } => StatusCode::UNAUTHORIZED,
            Self::InvalidRegistrationToken
            | Self::Blocked { .. }
            | Self::RecentLoginRequired
            | Self::AccountDisabled
            | Self::IamRequired => StatusCode::FORBIDDEN,
            Self::PhoneAlreadyRegistered | Self::Conflict(_) => StatusCode::CONFLICT,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::ResendTooSoon { .. } | Self::RateLimited { .. } | Self::BackingOff { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Blocked { retry_after }
            | Self::BackingOff { retry_after }
            | Self::ResendTooSoon { retry_after }
            | Self::RateLimited { retry_after } => Some((*retry_after).max(1)),
            Self::Unavailable(_) => Some(UNAVAILABLE_RETRY_AFTER),
            _ => None,
        }
    }

    /// The JSON body of the refusal: `{"error", ...}` with the fields some errors carry.
    pub fn body(&self) -> Value {
        let mut body = json!({ "error": self.to_string() });
        match self {
            Self::IncorrectOtp { attempts_left } => {
                body["attempts_left"] = Value::from(*attempts_left);
            }
            Self::RecentLoginRequired => {
                body["login_required"] = Value::from(true);
            }
            Self::AccountDisabled => {
                body["disabled"] = Value::from(true);
            }
            Self::CaptchaRequired(_) => {
                body["captcha_required"] = Value::from(true);
            }
            Self::CodeRequired { verification_id } => {
                body["code_required"] = Value::from(true);
                if let Some(id) = verification_id {
                    body["verification_id"] = Value::from(id.as_str());
                }
            }
            _ => {}
        }
        if let Some(seconds) = self.retry_after() {
            body["retry_after"] = Value::from(seconds);
        }
        body
    }

    /// The headers the refusal carries besides the JSON body.
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = Vec::new();
        if let Some(seconds) = self.retry_after() {
            headers.push((header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        if let Self::MethodNotAllowed { allow } = self {
            headers.push((header::ALLOW, HeaderValue::from_static(allow)));
        }
        let challenge = match self {
            Self::MissingToken => Some("Bearer"),
            Self::InvalidToken | Self::SessionEnded => Some("Bearer error=\"invalid_token\""),
            _ => None,
        };
        if let Some(challenge) = challenge {
            headers.push((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            ));
        }
        headers
    }

    /// Logs the error: a server error with its cause chain, a refusal by its status only
    /// (validation messages can echo what the client sent).
    pub fn log(&self) {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %ErrorChain(self), "request failed");
        } else {
            tracing::info!(status = status.as_u16(), "request refused");
        }
    }
}

/// Displays an error with its whole `source()` chain, for logs.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}
