use std::convert::Infallible;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use crate::App;
use crate::error::AuthError;
use crate::http::{caller, parse_json_post, respond};
use crate::password::Password;
use crate::profile;
use crate::service::signup::{self, Registration};
use crate::tokens::TokenPair;

/// Longer values cannot be tokens this service issued; refused without a database call.
const MAX_TOKEN_CHARS: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    /// `reg_token` is the name existing clients send.
    #[serde(alias = "reg_token")]
    registration_token: String,
    password: String,
    first_name: String,
    last_name: String,
    email: String,
}

#[derive(Serialize)]
struct RegisterResponse {
    message: &'static str,
    user: super::UserView,
    tokens: TokenPair,
}

/// `POST /auth/register/`: creates the account of a verified phone.
pub async fn register(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    respond(StatusCode::CREATED, handle(app, &request).await)
}

async fn handle(app: &App, request: &Request) -> Result<RegisterResponse, AuthError> {
    let body: RegisterRequest = parse_json_post(request)?;
    // Every field is checked before the token is looked at, so bad input never spends it.
    let registration = Registration {
        password: Password::new(body.password)?,
        first_name: profile::name("first_name", &body.first_name)?,
        last_name: profile::name("last_name", &body.last_name)?,
        email: profile::email(&body.email)?,
        registration_token: body.registration_token,
    };
    if registration.registration_token.len() > MAX_TOKEN_CHARS {
        return Err(AuthError::InvalidRegistrationToken);
    }
    let (user, tokens) = signup::register(
        app,
        registration,
        &caller(request, app.config.trusted_proxy)?,
    )
    .await?;
    Ok(RegisterResponse {
        message: "User registered successfully!",
        user: user.into(),
        tokens,
    })
}
