//! `GET /hello`: the example of a route behind API Gateway's JWT authorizer (template parameter
//! `ExampleProtectedRoute`). API Gateway checks the token; the function answers with what the
//! authorizer accepted, and refuses a request that did not pass it (`authorizer`).

use std::convert::Infallible;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::authorizer::AuthorizedClaims;
use crate::error::AuthError;
use crate::http::{require_method, respond};

/// Who called, as the token says.
#[derive(Serialize)]
struct Hello {
    sub: String,
    scope: String,
    /// The token's expiry (`exp`), RFC 3339.
    expires_at: String,
}

/// `GET /hello`: the caller's `sub`, `scope` and token expiry, read from API Gateway's JWT
/// authorizer context; 401 without it. Needs no app: it reads no setting and calls no service.
pub async fn hello(request: Request) -> Result<Response<Body>, Infallible> {
    respond(StatusCode::OK, greet(&request))
}

fn greet(request: &Request) -> Result<Hello, AuthError> {
    require_method(request, Method::GET)?;
    let claims = AuthorizedClaims::of(request)?;
    Ok(Hello {
        sub: claims.sub,
        scope: claims.scope,
        expires_at: super::rfc3339(claims.exp),
    })
}
