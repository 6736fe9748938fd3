//! What API Gateway's JWT authorizer says of a request: on a route behind it, API Gateway has
//! checked the token (issuer, audience, key through discovery, expiry, scopes) before the
//! function runs, and hands the function the token's claims in the event
//! (`requestContext.authorizer.jwt.claims`, every value a string). Only API Gateway writes the
//! request context; a client cannot. A request without that context reached the function by a
//! route without the authorizer, and is refused: the claims are never read from the token itself.

use lambda_http::http::header;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use crate::error::AuthError;

/// The claims of a token API Gateway's JWT authorizer accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedClaims {
    /// The user id.
    pub sub: String,
    /// The token's space-separated scopes (`scope`), empty when it has none.
    pub scope: String,
    /// When the token expires (`exp`, seconds since the epoch).
    pub exp: u64,
}

impl AuthorizedClaims {
    /// The claims API Gateway's JWT authorizer put into `request`'s context. Without that
    /// context (a route without the authorizer): 401, `MissingToken` when the request has no
    /// `Authorization` header, else `InvalidToken`; claims without `sub` or a numeric `exp`:
    /// 401 `InvalidToken`.
    pub fn of(request: &Request) -> Result<Self, AuthError> {
        let jwt = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => context
                .authorizer
                .as_ref()
                .and_then(|authorizer| authorizer.jwt.as_ref()),
            _ => None,
        };
        let Some(jwt) = jwt else {
            return Err(match request.headers().get(header::AUTHORIZATION) {
                None => AuthError::MissingToken,
                Some(_) => AuthError::InvalidToken,
            });
        };
        let claims = &jwt.claims;
        let sub = claims
            .get("sub")
            .filter(|sub| !sub.is_empty())
            .ok_or(AuthError::InvalidToken)?;
        let exp = claims
            .get("exp")
            .and_then(|exp| exp.parse().ok())
            .ok_or(AuthError::InvalidToken)?;
        Ok(Self {
            sub: sub.clone(),
            scope: claims.get("scope").cloned().unwrap_or_default(),
            exp,
        })
    }
}
