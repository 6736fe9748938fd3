//! The secrets a function holds: read from AWS Secrets Manager once per cold start (one
//! `GetSecretValue` each, kept for the life of the instance), or from the local-only fallback
//! variables. A function gets only the secrets its configuration names.

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use secrecy::SecretString;

use crate::config::{Config, ConfigError};
use crate::settings::Env;

/// Secrets shorter than this are refused: they would make the keys derived from them guessable.
const MIN_SECRET_BYTES: usize = 32;

/// What tells real AWS Lambda from `cargo lambda watch` (`scripts/dev`, the e2e test), which
/// also runs the functions with `AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_RUNTIME_API`,
/// `AWS_LAMBDA_FUNCTION_VERSION` and `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` set (cargo-lambda 1.9.2,
/// `crates/cargo-lambda-watch/src/watcher.rs`). Lambda sets both of these in every runtime and
/// reserves them (a function's configuration cannot set or clear them); cargo lambda watch sets
/// neither. `AWS_EXECUTION_ENV` would not do: Lambda leaves it unset in OS-only runtimes such as
/// `provided.al2023`, which these functions use.
const ON_LAMBDA_SIGNALS: [&str; 2] = ["AWS_LAMBDA_INITIALIZATION_TYPE", "LAMBDA_TASK_ROOT"];

/// Where a secret comes from. In AWS only its Secrets Manager id is in the environment (the
/// value is fetched at cold start); the value itself in the environment is for local runs only.
#[derive(Debug, Clone)]
pub enum SecretSource {
    SecretsManager {
        /// The variable that named the secret, for error messages.
        variable: &'static str,
        secret_id: String,
    },
    LocalFallback(SecretString),
}

/// The variables of one secret: its Secrets Manager id, the local-only fallback holding the
/// value, and the name the value had before (refused, so an old setup fails loudly).
pub(crate) struct SecretVariables {
    pub(crate) secret_id: &'static str,
    pub(crate) local_fallback: &'static str,
    pub(crate) retired: &'static str,
}

pub(crate) const JWT_SIGNING_KEY_VARIABLES: SecretVariables = SecretVariables {
    secret_id: "JWT_SIGNING_SECRET_ID",
    local_fallback: "LOCAL_JWT_SIGNING_KEY",
    retired: "JWT_SIGNING_KEY",
};

pub(crate) const OTP_HMAC_KEY_VARIABLES: SecretVariables = SecretVariables {
    secret_id: "OTP_HMAC_SECRET_ID",
    local_fallback: "LOCAL_OTP_HMAC_SECRET",
    retired: "OTP_HMAC_SECRET",
};

pub(crate) const KEY_PUBLICATION_KEY_VARIABLES: SecretVariables = SecretVariables {
    secret_id: "KEY_PUBLICATION_SECRET_ID",
    local_fallback: "LOCAL_KEY_PUBLICATION_SECRET",
    // Never read: refused, so that the secret is not put in the environment by mistake.
    retired: "KEY_PUBLICATION_SECRET",
};

/// Secrets shorter than `MIN_SECRET_BYTES` are refused, wherever they come from.
pub fn validate_secret(value: String) -> Result<SecretString, String> {
    if value.trim().len() < MIN_SECRET_BYTES {
        return Err(format!("must be at least {MIN_SECRET_BYTES} bytes"));
    }
    Ok(SecretString::from(value))
}

impl SecretSource {
    /// The secret's id, else its local fallback, else none (the function lacks the secret).
    /// With an id the fallback's value is never read: both set is refused.
    pub(crate) fn from_env(
        env: &Env<'_>,
        variables: &SecretVariables,
    ) -> Result<Option<Self>, ConfigError> {
        if env.is_set(variables.retired)? {
            return Err(ConfigError::Invalid {
                name: variables.retired,
                reason: format!(
                    "is not read: set {} (AWS) or {} (local runs only)",
                    variables.secret_id, variables.local_fallback
                ),
            });
        }
        if let Some(secret_id) = env.get(variables.secret_id)? {
            if env.is_set(variables.local_fallback)? {
                return Err(ConfigError::Invalid {
                    name: variables.local_fallback,
                    reason: format!(
                        "is for local runs only: unset it when {} is set",
                        variables.secret_id
                    ),
                });
            }
            return Ok(Some(SecretSource::SecretsManager {
                variable: variables.secret_id,
                secret_id,
            }));
        }
        let Some(value) = env.get(variables.local_fallback)? else {
            return Ok(None);
        };
        if let Some(signal) = on_lambda(env)? {
            return Err(ConfigError::LocalSecretOnLambda {
                name: variables.local_fallback,
                secret_id: variables.secret_id,
                signal,
            });
        }
        let secret = validate_secret(value).map_err(|reason| ConfigError::Invalid {
            name: variables.local_fallback,
            reason,
        })?;
        Ok(Some(SecretSource::LocalFallback(secret)))
    }
}

/// The variable that shows the function runs on real AWS Lambda, if one is set.
pub(crate) fn on_lambda(env: &Env<'_>) -> Result<Option<&'static str>, ConfigError> {
    for signal in ON_LAMBDA_SIGNALS {
        if env.is_set(signal)? {
            return Ok(Some(signal));
        }
    }
    Ok(None)
}

/// The secret values, each present only when the function is configured with it.
#[derive(Default)]
pub struct AppSecrets {
    pub jwt_signing_key: Option<SecretString>,
    pub key_publication_key: Option<SecretString>,
    pub otp_hmac_key: Option<SecretString>,
    pub captcha_secret: Option<SecretString>,
}

impl AppSecrets {
    /// The secrets of `config`, fetching those named by a Secrets Manager id (in parallel).
    pub async fn fetch(
        config: &Config,
        secrets_manager: &aws_sdk_secretsmanager::Client,
    ) -> Result<Self, ConfigError> {
        let captcha_secret = config.captcha.as_ref().map(|captcha| &captcha.secret);
        let (jwt_signing_key, key_publication_key, otp_hmac_key, captcha_secret) = tokio::try_join!(
            resolve(config.jwt_signing_key.as_ref(), secrets_manager),
            resolve(config.key_publication_key.as_ref(), secrets_manager),
            resolve(config.otp_hmac_key.as_ref(), secrets_manager),
            resolve(captcha_secret, secrets_manager),
        )?;
        Ok(Self {
            jwt_signing_key,
            key_publication_key,
            otp_hmac_key,
            captcha_secret,
        })
    }

    /// The secrets of `config` without any network call: only local fallbacks are allowed.
    pub fn local(config: &Config) -> Result<Self, ConfigError> {
        Ok(Self {
            jwt_signing_key: local(config.jwt_signing_key.as_ref())?,
            key_publication_key: local(config.key_publication_key.as_ref())?,
            otp_hmac_key: local(config.otp_hmac_key.as_ref())?,
            captcha_secret: local(config.captcha.as_ref().map(|captcha| &captcha.secret))?,
        })
    }
}

fn local(source: Option<&SecretSource>) -> Result<Option<SecretString>, ConfigError> {
    match source {
        None => Ok(None),
        Some(SecretSource::LocalFallback(value)) => Ok(Some(value.clone())),
        Some(SecretSource::SecretsManager { variable, .. }) => Err(ConfigError::SecretUnreadable {
            name: variable,
            reason: "Secrets Manager ids are read by App::from_env (or AppSecrets::fetch)"
                .to_owned(),
        }),
    }
}

async fn resolve(
    source: Option<&SecretSource>,
    secrets_manager: &aws_sdk_secretsmanager::Client,
) -> Result<Option<SecretString>, ConfigError> {
    let Some(SecretSource::SecretsManager {
        variable,
        secret_id,
    }) = source
    else {
        return local(source);
    };
    let unreadable = |reason: String| ConfigError::SecretUnreadable {
        name: variable,
        reason,
    };
    let output = secrets_manager
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        // The SDK's errors name the secret and the failure, never a secret value.
        .map_err(|error| unreadable(DisplayErrorContext(error).to_string()))?;
    let value = output
        .secret_string
        .ok_or_else(|| unreadable("the secret has no SecretString".to_owned()))?;
    validate_secret(value).map(Some).map_err(unreadable)
}
