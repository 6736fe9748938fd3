//! App claims: a JSON object per user that operators set through the admin API (roles, a
//! tenant, a plan), copied into every new access token under the one claim `app`, so that an
//! API Gateway route or a downstream service reads them without calling back. Tokens already
//! issued keep what they carry: a change shows in the next login's or refresh's token.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::AuthError;

/// The claim of the access token that carries them.
pub const APP_CLAIM: &str = "app";

/// The most the object may take as compact JSON (UTF-8 bytes): every access token carries it.
pub const MAX_APP_CLAIMS_BYTES: usize = 2048;

/// The names the access token itself uses (and `app`), refused as app claim names so that
/// nobody reading a token, or flattening its claims, can mistake one for the other.
pub const RESERVED_NAMES: [&str; 11] = [
    "sub",
    "sid",
    "iat",
    "nbf",
    "exp",
    "iss",
    "aud",
    "jti",
    "token_type",
    "scope",
    APP_CLAIM,
];

/// A user's app claims; empty when none are set (then tokens carry no `app` claim).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct AppClaims(Map<String, Value>);

impl AppClaims {
    /// The claims an operator sent: a JSON object of at most `MAX_APP_CLAIMS_BYTES`, none of
    /// whose names is reserved.
    pub fn parse(value: Value) -> Result<Self, AuthError> {
        let Value::Object(claims) = value else {
            return Err(invalid("must be a JSON object"));
        };
        if let Some(name) = claims
            .keys()
            .find(|name| RESERVED_NAMES.contains(&name.as_str()))
        {
            return Err(AuthError::InvalidRequest(format!(
                "Invalid field 'app_claims': '{name}' is a name the token itself uses."
            )));
        }
        let claims = Self(claims);
        if claims.stored().len() > MAX_APP_CLAIMS_BYTES {
            return Err(invalid(&format!(
                "at most {MAX_APP_CLAIMS_BYTES} bytes as JSON"
            )));
        }
        Ok(claims)
    }

    /// The claims as the tables keep them (compact JSON), or nothing when there are none.
    pub fn to_stored(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.stored())
    }

    /// The claims the tables keep (`to_stored`); kept JSON that is no object is a corrupt item.
    pub fn from_stored(stored: Option<&str>) -> Result<Self, AuthError> {
        match stored {
            None => Ok(Self::default()),
            Some(text) => match serde_json::from_str(text) {
                Ok(Value::Object(claims)) => Ok(Self(claims)),
                _ => Err(AuthError::internal("stored app_claims is no JSON object")),
            },
        }
    }

    /// What the access token's `app` claim carries: nothing when there are no claims.
    pub fn in_token(&self) -> Option<&Map<String, Value>> {
        (!self.0.is_empty()).then_some(&self.0)
    }

    fn stored(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }
}

fn invalid(rule: &str) -> AuthError {
    AuthError::InvalidRequest(format!("Invalid field 'app_claims': {rule}."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_within_the_size_without_reserved_names_is_taken() {
        let claims = AppClaims::parse(json!({ "roles": ["admin"], "tenant": "t-1" })).unwrap();
        let stored = claims.to_stored().unwrap();
        assert_eq!(AppClaims::from_stored(Some(&stored)).unwrap(), claims);
        assert_eq!(AppClaims::parse(json!({})).unwrap().to_stored(), None);
        assert_eq!(AppClaims::parse(json!({})).unwrap().in_token(), None);
    }

    #[test]
    fn anything_else_is_refused() {
        for refused in [json!([1]), json!("x"), json!(null), json!({ "sub": "x" })] {
            assert!(AppClaims::parse(refused).is_err());
        }
        let filler = "x".repeat(MAX_APP_CLAIMS_BYTES);
        assert!(AppClaims::parse(json!({ "a": filler })).is_err());
        let fits = "x".repeat(MAX_APP_CLAIMS_BYTES - r#"{"a":""}"#.len());
        assert!(AppClaims::parse(json!({ "a": fits })).is_ok());
    }
}
