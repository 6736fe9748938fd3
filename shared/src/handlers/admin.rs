//! The admin API (`/admin/...`), behind API Gateway's `AWS_IAM` authorization: operators find
//! and read accounts, disable and enable them, end their sessions and delete them. Each handler
//! requires the IAM identity API Gateway authenticated (`http::operator`) right after the
//! method, so that a request that did not pass the authorizer is refused before anything is
//! read, parsed or written.

use std::convert::Infallible;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};

use super::sessions::SessionView;
use crate::App;
use crate::app_claims::AppClaims;
use crate::error::AuthError;
use crate::http::{operator, parse_json_body, require_method, respond, respond_no_content};
use crate::service::admin::{self, AccountOverview, Operator};

/// An account as operators see it: never a hash or a secret.
#[derive(Serialize)]
struct AdminUserView {
    #[serde(flatten)]
    user: super::UserView,
    /// RFC 3339, UTC.
    created_at: String,
    /// The last session start (login of any kind, or registration); RFC 3339, UTC.
    last_login_at: Option<String>,
    disabled: bool,
    live_sessions: usize,
    /// What its access tokens carry under `app`.
    app_claims: serde_json::Value,
}

impl TryFrom<AccountOverview> for AdminUserView {
    type Error = AuthError;

    fn try_from(overview: AccountOverview) -> Result<Self, AuthError> {
        let user = overview.user;
        Ok(Self {
            created_at: super::rfc3339(user.created_at),
            last_login_at: user.last_login_at.map(super::rfc3339),
            disabled: user.disabled,
            live_sessions: overview.live_sessions,
            app_claims: user.app_claims.to_value()?,
            user: user.profile.into(),
        })
    }
}

#[derive(Serialize)]
struct FoundUsers {
    users: Vec<AdminUserView>,
}

#[derive(Serialize)]
struct SessionPage {
    sessions: Vec<SessionView>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimsBody {
    app_claims: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusChange {
    disabled: bool,
}

/// The sessions one page lists when the request does not say.
const DEFAULT_PAGE: usize = 50;
/// The most sessions one page lists.
const MAX_PAGE: usize = 100;

/// `GET /admin/users?phone=...` or `?id=...`: the account of a number (in any form the public
/// API accepts) or of an id, as a list of none or one.
pub async fn admin_find_users(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    respond(StatusCode::OK, find_users(app, &request).await)
}

async fn find_users(app: &App, request: &Request) -> Result<FoundUsers, AuthError> {
    require_method(request, Method::GET)?;
    let operator = operator(request)?;
    let query = request.query_string_parameters_ref();
    let phone = query.and_then(|query| query.first("phone"));
    let id = query.and_then(|query| query.first("id"));
    let searched = phone.map(|phone| app.phones.parse(phone)).transpose()?;
    let found = match (&searched, id) {
        (Some(phone), None) => admin::find_by_phone(app, phone).await,
        (None, Some(id)) => match uuid::Uuid::try_parse(id) {
            Ok(id) => admin::find_by_id(app, &id.hyphenated().to_string()).await,
            Err(_) => return Err(invalid("Invalid query parameter 'id': not a UUID.")),
        },
        _ => return Err(invalid("Give one query parameter: 'phone' or 'id'.")),
    };
    let user = match found {
        Ok(user) => user,
        Err(AuthError::NotFound(_)) => {
            admin::searched_in_vain(&operator, searched.as_ref());
            return Ok(FoundUsers { users: Vec::new() });
        }
        Err(error) => return Err(error),
    };
    let overview = admin::read(app, user, &operator).await?;
    Ok(FoundUsers {
        users: vec![overview.try_into()?],
    })
}

/// `GET | DELETE /admin/users/{id}`: read the account, or delete it (as its owner's deletion
/// does).
pub async fn admin_user(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    match *request.method() {
        Method::GET => respond(StatusCode::OK, show_user(app, &request).await),
        Method::DELETE => respond_no_content(delete_user(app, &request).await),
        _ => respond_no_content(Err(GET_OR_DELETE)),
    }
}

const GET_OR_DELETE: AuthError = AuthError::MethodNotAllowed {
    allow: "GET, DELETE",
};

async fn show_user(app: &App, request: &Request) -> Result<AdminUserView, AuthError> {
    let (operator, user_id) = operator_and_user(request)?;
    let user = admin::find_by_id(app, &user_id).await?;
    admin::read(app, user, &operator).await?.try_into()
}

async fn delete_user(app: &App, request: &Request) -> Result<(), AuthError> {
    let (operator, user_id) = operator_and_user(request)?;
    admin::delete_account(app, &user_id, &operator).await
}

/// `PUT /admin/users/{id}/status` `{"disabled": true|false}`: disable or enable the account.
pub async fn admin_user_status(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    respond(StatusCode::OK, set_status(app, &request).await)
}

async fn set_status(app: &App, request: &Request) -> Result<AdminUserView, AuthError> {
    require_method(request, Method::PUT)?;
    let (operator, user_id) = operator_and_user(request)?;
    let change: StatusChange = parse_json_body(request)?;
    let user = admin::set_disabled(app, &user_id, change.disabled, &operator).await?;
    admin::overview(app, user).await?.try_into()
}

/// `GET | PUT /admin/users/{id}/claims` `{"app_claims": {...}}`: the account's app claims, or
/// set them (`{}`: none).
pub async fn admin_user_claims(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    respond(StatusCode::OK, claims(app, &request).await)
}

async fn claims(app: &App, request: &Request) -> Result<ClaimsBody, AuthError> {
    let put = match *request.method() {
        Method::GET => false,
        Method::PUT => true,
        _ => return Err(AuthError::MethodNotAllowed { allow: "GET, PUT" }),
    };
    let (operator, user_id) = operator_and_user(request)?;
    let user = if put {
        let body: ClaimsBody = parse_json_body(request)?;
        let claims = AppClaims::parse(body.app_claims)?;
        admin::set_app_claims(app, &user_id, claims, &operator).await?
    } else {
        admin::read_account(app, &user_id, &operator).await?
    };
    Ok(ClaimsBody {
        app_claims: user.app_claims.to_value()?,
    })
}

/// `GET | DELETE /admin/users/{id}/sessions`: a page of the account's live sessions
/// (`?limit=`, `?after=`), or sign it out everywhere.
pub async fn admin_sessions(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    match *request.method() {
        Method::GET => respond(StatusCode::OK, list_sessions(app, &request).await),
        Method::DELETE => respond_no_content(sign_out_everywhere(app, &request).await),
        _ => respond_no_content(Err(GET_OR_DELETE)),
    }
}

async fn list_sessions(app: &App, request: &Request) -> Result<SessionPage, AuthError> {
    let (operator, user_id) = operator_and_user(request)?;
    let query = request.query_string_parameters_ref();
    let limit = match query.and_then(|query| query.first("limit")) {
        None => DEFAULT_PAGE,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_PAGE).contains(limit))
            .ok_or_else(|| {
                AuthError::InvalidRequest(format!(
                    "Invalid query parameter 'limit': 1 to {MAX_PAGE}."
                ))
            })?,
    };
    let after = match query.and_then(|query| query.first("after")) {
        None => None,
        Some(raw) => Some(
            uuid::Uuid::try_parse(raw)
                .map_err(|_| invalid("Invalid query parameter 'after': not a session id."))?
                .hyphenated()
                .to_string(),
        ),
    };
    let page = (limit, after.as_deref());
    let (sessions, next) = admin::sessions_page(app, &user_id, page, &operator).await?;
    Ok(SessionPage {
        sessions: sessions
            .into_iter()
            .map(|summary| SessionView::new(summary, None))
            .collect(),
        next,
    })
}

async fn sign_out_everywhere(app: &App, request: &Request) -> Result<(), AuthError> {
    let (operator, user_id) = operator_and_user(request)?;
    admin::sign_out_everywhere(app, &user_id, &operator).await
}

/// `DELETE /admin/users/{id}/sessions/{session_id}`: end one of the account's sessions.
pub async fn admin_session_revoke(
    app: &App,
    request: Request,
) -> Result<Response<Body>, Infallible> {
    respond_no_content(revoke_session(app, &request).await)
}

async fn revoke_session(app: &App, request: &Request) -> Result<(), AuthError> {
    require_method(request, Method::DELETE)?;
    let (operator, user_id) = operator_and_user(request)?;
    let session_id =
        super::path_uuid(request, "session_id").ok_or(AuthError::NotFound("No such session."))?;
    admin::revoke_session(app, &user_id, &session_id, &operator).await
}

/// The operator, then the account id of the path (a UUID: anything else names no account).
fn operator_and_user(request: &Request) -> Result<(Operator, String), AuthError> {
    let operator = operator(request)?;
    let user_id = super::path_uuid(request, "id").ok_or(admin::NO_ACCOUNT)?;
    Ok((operator, user_id))
}

fn invalid(message: &str) -> AuthError {
    AuthError::InvalidRequest(message.to_owned())
}
