//! The token hook (`TOKEN_HOOK_FUNCTION`, optional): the operator's Lambda function, invoked
//! before each access token is signed (registration, login, refresh), that returns claims to add
//! to it, as Cognito's pre-token-generation and Supabase's custom access token hooks do. It is
//! fail-closed: when it fails, takes longer than `TOKEN_HOOK_TIMEOUT`, or answers claims that
//! break the rules (not an object, over `MAX_HOOK_CLAIMS_BYTES`, a name the token uses), no
//! token is issued (503) and nothing is written.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_lambda::config::SharedInterceptor;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::app_claims::RESERVED_NAMES;
use crate::error::AuthError;

/// The most one invocation may take, the call to Lambda included.
pub const TOKEN_HOOK_TIMEOUT: Duration = Duration::from_secs(1);

/// The most the hook's claims may take as compact JSON (UTF-8 bytes).
pub const MAX_HOOK_CLAIMS_BYTES: usize = 2048;

/// What the hook is asked: `{"trigger", "user_id", "session_id", "app_claims"}`.
#[derive(Debug, Serialize)]
pub struct HookRequest<'a> {
    /// `registration`, `login` (any kind) or `refresh`.
    pub trigger: &'static str,
    pub user_id: &'a str,
    pub session_id: &'a str,
    /// The user's app claims (the token carries them under `app` anyway), `{}` when none.
    pub app_claims: Value,
}

#[derive(Clone)]
pub struct TokenHook {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl TokenHook {
    /// The hook `function` (name or ARN), called with one attempt of at most
    /// `TOKEN_HOOK_TIMEOUT`, and `interceptors` on its client (only code can pass them).
    pub fn new(function: &str, aws: &SdkConfig, interceptors: &[SharedInterceptor]) -> Self {
        let aws = crate::sms::provider_client_settings(aws, TOKEN_HOOK_TIMEOUT);
        let mut lambda = aws_sdk_lambda::config::Builder::from(&aws);
        for interceptor in interceptors {
            lambda.push_interceptor(interceptor.clone());
        }
        Self {
            client: aws_sdk_lambda::Client::from_conf(lambda.build()),
            function: function.to_owned(),
        }
    }

    /// The claims the hook adds to the token of `request`: its answer's `claims` object.
    pub async fn claims(&self, request: &HookRequest<'_>) -> Result<Map<String, Value>, AuthError> {
        let payload = serde_json::to_vec(request).map_err(AuthError::internal)?;
        let output = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|error| refused(&format!("was not invoked ({error})")))?;
        if let Some(kind) = output.function_error() {
            return Err(refused(&format!("failed ({kind})")));
        }
        if !(200..300).contains(&output.status_code()) {
            return Err(refused(&format!(
                "answered status {}",
                output.status_code()
            )));
        }
        let answer = output.payload().map(Blob::as_ref).unwrap_or_default();
        checked_claims(answer)
    }
}

/// The `claims` of the hook's answer `{"claims": {...}}`, if they keep the rules.
fn checked_claims(answer: &[u8]) -> Result<Map<String, Value>, AuthError> {
    let Ok(Value::Object(mut answer)) = serde_json::from_slice::<Value>(answer) else {
        return Err(refused("answered no JSON object"));
    };
    let claims = match answer.remove("claims") {
        None => Map::new(),
        Some(Value::Object(claims)) => claims,
        Some(_) => return Err(refused("answered claims that are no object")),
    };
    if let Some(name) = claims
        .keys()
        .find(|name| RESERVED_NAMES.contains(&name.as_str()))
    {
        return Err(refused(&format!("answered the reserved claim {name:?}")));
    }
    let size = Value::Object(claims.clone()).to_string().len();
    if size > MAX_HOOK_CLAIMS_BYTES {
        return Err(refused(&format!(
            "answered {size} bytes of claims (at most {MAX_HOOK_CLAIMS_BYTES})"
        )));
    }
    Ok(claims)
}

/// The hook failed: no token (what it answered is not logged: it may hold personal data).
fn refused(what: &str) -> AuthError {
    AuthError::unavailable(format!("the token hook {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_an_object_of_allowed_claims_within_the_size_is_taken() {
        let taken = checked_claims(br#"{"claims": {"roles": ["a"]}}"#).unwrap();
        assert_eq!(Value::Object(taken), json!({ "roles": ["a"] }));
        assert!(checked_claims(b"{}").unwrap().is_empty());
        for refused in [
            &b"null"[..],
            b"[1]",
            b"not json",
            br#"{"claims": [1]}"#,
            br#"{"claims": {"sub": "someone else"}}"#,
            br#"{"claims": {"exp": 99999999999}}"#,
        ] {
            assert!(checked_claims(refused).is_err());
        }
        let big = json!({ "claims": { "a": "x".repeat(MAX_HOOK_CLAIMS_BYTES) } }).to_string();
        assert!(checked_claims(big.as_bytes()).is_err());
    }
}
