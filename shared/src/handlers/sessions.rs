use std::convert::Infallible;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::App;
use crate::error::AuthError;
use crate::http::{caller, require_method, respond, respond_no_content};
use crate::service::sessions;
use crate::store::sessions::SessionSummary;

#[derive(Serialize)]
struct SessionList {
    sessions: Vec<SessionView>,
}

#[derive(Serialize)]
pub(super) struct SessionView {
    id: String,
    /// RFC 3339, UTC.
    created_at: String,
    /// The login or the last refresh, RFC 3339, UTC.
    last_used_at: String,
    user_agent: Option<String>,
    /// As seen at the login or the last refresh.
    ip: Option<String>,
    /// The session of the token that asked (the user's own list only).
    #[serde(skip_serializing_if = "Option::is_none")]
    current: Option<bool>,
}

impl SessionView {
    /// `current_id`: the session of the token that asked, in the user's own list.
    pub(super) fn new(session: SessionSummary, current_id: Option<&str>) -> Self {
        Self {
            current: current_id.map(|id| session.session_id == id),
            id: session.session_id,
            created_at: super::rfc3339(session.created_at),
            last_used_at: super::rfc3339(session.last_used_at),
            user_agent: session.user_agent,
            ip: session.ip,
        }
    }
}

/// `GET /auth/sessions/` (Bearer): the user's live sessions.
pub async fn sessions(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    respond(StatusCode::OK, list(app, &request).await)
}

async fn list(app: &App, request: &Request) -> Result<SessionList, AuthError> {
    require_method(request, Method::GET)?;
    let session = super::authenticated(app, request).await?;
    let sessions = sessions::list_sessions(app, &session).await?;
    Ok(SessionList {
        sessions: sessions
            .into_iter()
            .map(|summary| SessionView::new(summary, Some(&session.session_id)))
            .collect(),
    })
}

/// `DELETE /auth/sessions/{id}/` (Bearer): ends one of the user's sessions.
pub async fn session_revoke(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    respond_no_content(revoke(app, &request).await)
}

async fn revoke(app: &App, request: &Request) -> Result<(), AuthError> {
    require_method(request, Method::DELETE)?;
    let caller = caller(request, app.config.trusted_proxy)?;
    let session = super::authenticated(app, request).await?;
    let id = session_id(request).ok_or(AuthError::NotFound("No such session."))?;
    sessions::revoke_session(app, &session, &id, &caller).await
}

/// The `{id}` of the path: a session id this service issues (a UUID), or nothing.
fn session_id(request: &Request) -> Option<String> {
    super::path_uuid(request, "id")
}
