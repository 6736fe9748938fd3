//! Users of an Amazon Cognito user pool, moved on their first login (issue 25; optional,
//! `COGNITO_MIGRATION_USER_POOL_ID` and `COGNITO_MIGRATION_CLIENT_ID`). Cognito cannot export
//! password hashes, so a login for a number unknown here is tried against the pool
//! (`AdminInitiateAuth` with `ADMIN_USER_PASSWORD_AUTH`, the number as the user name); when the
//! pool takes the password and the user's number is verified there, its attributes
//! (`AdminGetUser`) become the account here, under the Cognito `sub` as its id so that tokens
//! keep their subject. Every refusal is the ordinary wrong-password answer.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::config::SharedInterceptor;
use aws_sdk_cognitoidentityprovider::error::{DisplayErrorContext, SdkError};
use aws_sdk_cognitoidentityprovider::operation::admin_initiate_auth::AdminInitiateAuthError;
use aws_sdk_cognitoidentityprovider::types::AuthFlowType;

use crate::config::ConfigError;
use crate::error::AuthError;
use crate::password::Password;
use crate::phone::PhoneNumber;
use crate::settings::Env;

/// The most one call to the pool may take, its retry included: a login that asks the pool
/// makes two calls on top of its own, within the function's timeout.
pub const COGNITO_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The pool to move users from, and an app client of it that allows
/// `ALLOW_ADMIN_USER_PASSWORD_AUTH` and has no client secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CognitoMigrationConfig {
    pub user_pool_id: String,
    pub client_id: String,
}

impl CognitoMigrationConfig {
    /// Both settings, or neither (the migration is off).
    pub fn from_env(env: &Env<'_>) -> Result<Option<Self>, ConfigError> {
        let pool = env.get("COGNITO_MIGRATION_USER_POOL_ID")?;
        let client = env.get("COGNITO_MIGRATION_CLIENT_ID")?;
        match (pool, client) {
            (None, None) => Ok(None),
            (Some(pool), Some(client)) => Ok(Some(Self {
                user_pool_id: pool.trim().to_owned(),
                client_id: client.trim().to_owned(),
            })),
            (Some(_), None) => Err(ConfigError::Missing("COGNITO_MIGRATION_CLIENT_ID")),
            (None, Some(_)) => Err(ConfigError::Missing("COGNITO_MIGRATION_USER_POOL_ID")),
        }
    }
}

/// A pool's user whose password was right: what the account here is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CognitoUser {
    /// Cognito's `sub`: the account's id here.
    pub sub: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    /// When the pool created the user (epoch seconds).
    pub created_at: Option<u64>,
}

#[derive(Clone)]
pub struct CognitoMigration {
    client: Client,
    config: CognitoMigrationConfig,
}

impl CognitoMigration {
    /// `interceptors` go on its client (only code can pass them: the tests' call recorder).
    pub fn new(
        config: &CognitoMigrationConfig,
        aws: &SdkConfig,
        interceptors: &[SharedInterceptor],
    ) -> Self {
        let aws = aws
            .to_builder()
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(COGNITO_CALL_TIMEOUT / 2)
                    .operation_timeout(COGNITO_CALL_TIMEOUT)
                    .build(),
            )
            .build();
        let mut builder = aws_sdk_cognitoidentityprovider::config::Builder::from(&aws);
        for interceptor in interceptors {
            builder.push_interceptor(interceptor.clone());
        }
        Self {
            client: Client::from_conf(builder.build()),
            config: config.clone(),
        }
    }

    /// The pool's user of `phone` when `password` is its password and the pool has its number
    /// as verified; `None` for every refusal (unknown, wrong password, disabled, unconfirmed,
    /// a challenge such as MFA or a new password to set). An outage or a misconfigured pool is
    /// an error (503), logged.
    pub async fn authenticate(
        &self,
        phone: &PhoneNumber,
        password: &Password,
    ) -> Result<Option<CognitoUser>, AuthError> {
        let started = self
            .client
            .admin_initiate_auth()
            .user_pool_id(&self.config.user_pool_id)
            .client_id(&self.config.client_id)
            .auth_flow(AuthFlowType::AdminUserPasswordAuth)
            .auth_parameters("USERNAME", phone.as_str())
            .auth_parameters("PASSWORD", password.exposed())
            .send()
            .await;
        let answer = match started {
            Ok(answer) => answer,
            Err(error) if refused(&error) => return Ok(None),
            Err(error) => return Err(unavailable("AdminInitiateAuth", &error)),
        };
        let Some(signed_in) = answer
            .authentication_result()
            .and_then(|result| result.access_token())
            .and_then(token_subject)
        else {
            // A challenge (MFA, a new password): not something a login here can answer.
            tracing::info!(
                challenge = ?answer.challenge_name(),
                "the Cognito pool asked a challenge: the user is not moved"
            );
            return Ok(None);
        };
        let user = self
            .client
            .admin_get_user()
            .user_pool_id(&self.config.user_pool_id)
            .username(phone.as_str())
            .send()
            .await
            .map_err(|error| unavailable("AdminGetUser", &error))?;
        let attribute = |name: &str| {
            user.user_attributes()
                .iter()
                .find(|attribute| attribute.name() == name)
                .and_then(|attribute| attribute.value())
                .map(str::to_owned)
        };
        // The number is the account here: only a number the pool verified moves it.
        if attribute("phone_number").as_deref() != Some(phone.as_str())
            || attribute("phone_number_verified").as_deref() != Some("true")
        {
            tracing::warn!(
                phone = %phone.masked(),
                "the Cognito user's number is not this one, or not verified: not moved"
            );
            return Ok(None);
        }
        let Some(sub) = attribute("sub").filter(|sub| uuid::Uuid::parse_str(sub).is_ok()) else {
            return Err(AuthError::unavailable("a Cognito user without a UUID sub"));
        };
        // The number named another user between the two calls (its alias moved): the password
        // was that other user's.
        if sub != signed_in {
            tracing::warn!(phone = %phone.masked(), "the Cognito number changed hands: not moved");
            return Ok(None);
        }
        Ok(Some(CognitoUser {
            sub,
            given_name: attribute("given_name"),
            family_name: attribute("family_name"),
            email: attribute("email"),
            created_at: user
                .user_create_date()
                .and_then(|date| u64::try_from(date.secs()).ok()),
        }))
    }
}

/// The `sub` of the access token the pool just issued (read, not verified: it came from the
/// pool over the SDK's TLS, in answer to this call).
fn token_subject(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&json).ok()?;
    claims.get("sub")?.as_str().map(str::to_owned)
}

/// The pool's answers that mean "not this password" (or no such user, or one that cannot log
/// in): the wrong-password answer, never an outage.
fn refused<R>(error: &SdkError<AdminInitiateAuthError, R>) -> bool {
    matches!(
        error.as_service_error(),
        Some(
            AdminInitiateAuthError::NotAuthorizedException(_)
                | AdminInitiateAuthError::UserNotFoundException(_)
                | AdminInitiateAuthError::UserNotConfirmedException(_)
                | AdminInitiateAuthError::PasswordResetRequiredException(_)
        )
    )
}

fn unavailable<E, R>(operation: &str, error: &SdkError<E, R>) -> AuthError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let cause = DisplayErrorContext(error).to_string();
    tracing::error!(operation, %cause, "the Cognito pool could not be asked");
    AuthError::unavailable(format!("Cognito {operation}: {cause}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(
        pool: Option<&str>,
        client: Option<&str>,
    ) -> Result<Option<CognitoMigrationConfig>, ConfigError> {
        let lookup = |name: &str| match name {
            "COGNITO_MIGRATION_USER_POOL_ID" => pool.map(str::to_owned),
            "COGNITO_MIGRATION_CLIENT_ID" => client.map(str::to_owned),
            _ => None,
        };
        CognitoMigrationConfig::from_env(&Env::new(&lookup))
    }

    #[test]
    fn the_pool_and_its_client_are_set_together_or_not_at_all() {
        assert_eq!(read(None, None).unwrap(), None);
        assert_eq!(read(Some(" "), Some("")).unwrap(), None);
        assert_eq!(
            read(Some("eu-west-1_AbC123"), Some("1example23456789")).unwrap(),
            Some(CognitoMigrationConfig {
                user_pool_id: "eu-west-1_AbC123".to_owned(),
                client_id: "1example23456789".to_owned(),
            })
        );
        assert!(read(Some("eu-west-1_AbC123"), None).is_err());
        assert!(read(None, Some("1example23456789")).is_err());
    }
}
