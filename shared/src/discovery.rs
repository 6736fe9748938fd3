//! The OpenID Connect discovery document (`/.well-known/openid-configuration`): where verifiers
//! (API Gateway's JWT authorizer, JWKS middlewares) find the key set of this service's issuer.
//! Only fields true of the service are given: it has no authorization or token endpoint in the
//! OAuth sense, so none of their fields (`response_types_supported`,
//! `token_endpoint_auth_methods_supported`...) appear.

use serde::Serialize;

use crate::error::AuthError;
use crate::tokens::TokenIssuer;

/// The claims this service's access tokens carry.
const CLAIMS: [&str; 10] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "sid",
    "scope",
    "token_type",
];

#[derive(Debug, Serialize)]
pub struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
    /// The algorithm this service signs with, then those of the other keys it publishes. It
    /// issues no ID tokens; verifiers read this field for the algorithms of the issuer's tokens.
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    /// `sub` is the user id, the same for every audience.
    pub subject_types_supported: [&'static str; 1],
    pub scopes_supported: Vec<String>,
    pub claims_supported: [&'static str; 10],
}

impl Discovery {
    /// The document of `tokens`' issuer. An issuer that is not an HTTP(S) URL has no discovery
    /// (verifiers fetch `{issuer}/.well-known/openid-configuration`): 404.
    pub async fn of(tokens: &TokenIssuer) -> Result<Self, AuthError> {
        let issuer = tokens.issuer()?;
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(AuthError::NotFound(
                "No discovery: the issuer (JWT_ISSUER) is not a URL.",
            ));
        }
        Ok(Self {
            jwks_uri: format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')),
            issuer: issuer.to_owned(),
            id_token_signing_alg_values_supported: tokens.algorithms().await?,
            subject_types_supported: ["public"],
            scopes_supported: tokens.scopes().into_iter().map(str::to_owned).collect(),
            claims_supported: CLAIMS,
        })
    }
}
