//! The secrets a function holds: read from AWS Secrets Manager once per cold start (one
//! `GetSecretValue` each, kept for the life of the instance), or from the local-only fallback
//! variables. A function gets only the secrets its configuration names.

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use secrecy::SecretString;

use crate::config::{Config, ConfigError, SecretSource, validate_secret};

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
