//! App claims: a JSON object per user that operators set through the admin API (roles, a
//! tenant, a plan), copied into every new access token under the one claim `app`, so that a
//! service verifying the token reads them without calling back (API Gateway's JWT authorizer
//! cannot authorize on them; it hands them to the function behind it). Tokens already issued
//! keep what they carry: a change shows in the next login's or refresh's token.

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

/// A user's app claims, kept as the tables keep them: the compact JSON of a non-empty object,
/// or nothing. The text is kept as read, so that a condition comparing it with the stored value
/// holds (a float need not print back as it was written), and it is parsed only where it is
/// used, so that a corrupt stored value fails those uses and nothing else.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppClaims {
    stored: Option<String>,
}

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
        if claims.is_empty() {
            return Ok(Self::default());
        }
        let stored = Value::Object(claims).to_string();
        if stored.len() > MAX_APP_CLAIMS_BYTES {
            return Err(invalid(&format!(
                "at most {MAX_APP_CLAIMS_BYTES} bytes as JSON"
            )));
        }
        Ok(Self {
            stored: Some(stored),
        })
    }

    /// The claims as the tables keep them, or nothing when there are none.
    pub fn to_stored(&self) -> Option<String> {
        self.stored.clone()
    }

    /// The claims the tables keep (`to_stored`), as read.
    pub fn from_stored(stored: Option<String>) -> Self {
        Self { stored }
    }

    /// What the access token's `app` claim carries: nothing when there are no claims. A stored
    /// value that is no JSON object is a corrupt item.
    pub fn in_token(&self) -> Result<Option<Map<String, Value>>, AuthError> {
        let Some(text) = &self.stored else {
            return Ok(None);
        };
        match serde_json::from_str(text) {
            Ok(Value::Object(claims)) => Ok(Some(claims)),
            _ => Err(AuthError::internal("stored app_claims is no JSON object")),
        }
    }

    /// The claims as a JSON object (`{}` when there are none), as the admin API shows them.
    pub fn to_value(&self) -> Result<Value, AuthError> {
        Ok(Value::Object(self.in_token()?.unwrap_or_default()))
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
        let sent = json!({ "roles": ["admin"], "tenant": "t-1" });
        let claims = AppClaims::parse(sent.clone()).unwrap();
        let stored = claims.to_stored().unwrap();
        assert_eq!(AppClaims::from_stored(Some(stored)), claims);
        assert_eq!(claims.to_value().unwrap(), sent);
        assert_eq!(AppClaims::parse(json!({})).unwrap().to_stored(), None);
        assert_eq!(
            AppClaims::parse(json!({})).unwrap().in_token().unwrap(),
            None
        );
    }

    #[test]
    fn stored_text_is_kept_as_read_and_a_corrupt_one_fails_only_its_uses() {
        // A float need not print back as written: the text read is the text compared.
        let read = r#"{"a":2.5000000000000002e-30}"#.to_owned();
        let claims = AppClaims::from_stored(Some(read.clone()));
        assert_eq!(claims.to_stored(), Some(read));
        let corrupt = AppClaims::from_stored(Some("[1]".to_owned()));
        assert!(corrupt.in_token().is_err());
        assert!(corrupt.to_value().is_err());
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
