use std::convert::Infallible;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use crate::App;
use crate::error::AuthError;
use crate::http::{caller, parse_json_body, respond, respond_no_content};
use crate::password::Password;
use crate::profile;
use crate::profile::{ProfileChanges, User};
use crate::service::account;

/// What the profile endpoints show: the account and when it was created.
#[derive(Serialize)]
pub(super) struct ProfileResponse {
    #[serde(flatten)]
    user: super::UserView,
    /// RFC 3339, UTC.
    created_at: String,
}

impl From<User> for ProfileResponse {
    fn from(user: User) -> Self {
        Self {
            created_at: super::rfc3339(user.created_at),
            user: user.profile.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileUpdate {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountDeletion {
    password: String,
}

/// `GET | PATCH | DELETE /auth/profile/` (Bearer): read, edit or delete the account.
pub async fn profile(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    match *request.method() {
        Method::GET => respond(StatusCode::OK, show(app, &request).await),
        Method::PATCH => respond(StatusCode::OK, update(app, &request).await),
        Method::DELETE => respond_no_content(delete(app, &request).await),
        _ => respond_no_content(Err(AuthError::MethodNotAllowed {
            allow: "GET, PATCH, DELETE",
        })),
    }
}

async fn show(app: &App, request: &Request) -> Result<ProfileResponse, AuthError> {
    let session = super::authenticated(app, request).await?;
    Ok(account::current_user(app, &session).await?.into())
}

async fn update(app: &App, request: &Request) -> Result<ProfileResponse, AuthError> {
    let body: ProfileUpdate = parse_json_body(request)?;
    let changes = ProfileChanges {
        first_name: body
            .first_name
            .map(|name| profile::name("first_name", &name))
            .transpose()?,
        last_name: body
            .last_name
            .map(|name| profile::name("last_name", &name))
            .transpose()?,
        email: body.email.map(|email| profile::email(&email)).transpose()?,
    };
    let session = super::authenticated(app, request).await?;
    Ok(account::update_profile(app, &session, changes)
        .await?
        .into())
}

async fn delete(app: &App, request: &Request) -> Result<(), AuthError> {
    let body: AccountDeletion = parse_json_body(request)?;
    let caller = caller(request, app.config.trusted_proxy)?;
    let session = super::authenticated(app, request).await?;
    account::delete_account(app, &session, Password::presented(body.password), &caller).await
}
