//! The phone + OTP authentication library behind every Lambda function: the domain rules,
//! the DynamoDB storage and the HTTP handlers, so that all of it is testable in-process.

pub mod app_claims;
pub mod audit;
pub mod authorizer;
pub mod breaker;
pub mod captcha;
pub mod clock;
pub mod cognito;
pub mod config;
pub mod discovery;
pub mod error;
pub mod events;
pub mod handlers;
pub mod http;
pub mod import;
pub mod imported_hash;
pub mod jwt_keys;
pub mod key_publication;
pub mod limits;
pub mod messages;
pub mod otp;
pub mod password;
pub mod phone;
pub mod profile;
pub mod publisher;
pub mod refresh_tokens;
pub mod secrets;
pub mod service;
pub mod settings;
pub mod sms;
pub mod store;
pub mod telemetry;
pub mod token_hook;
pub mod tokens;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use crate::captcha::CaptchaVerifier;
use crate::clock::Clock;
use crate::cognito::CognitoMigration;
use crate::config::{Config, ConfigError};
use crate::jwt_keys::AsymmetricKeys;
use crate::key_publication::PublicationKey;
use crate::otp::OtpHasher;
use crate::phone::PhoneParser;
use crate::secrets::AppSecrets;
use crate::sms::SmsSender;
use crate::store::Store;
use crate::store::signing_keys::SigningKeysTable;
use crate::token_hook::TokenHook;
use crate::tokens::TokenIssuer;

pub use crate::error::AuthError;

/// Everything a handler needs, built once per cold start and shared by every invocation.
pub struct App {
    pub config: Config,
    pub clock: Clock,
    pub store: Store,
    /// Normalises the phone numbers of requests.
    pub phones: PhoneParser,
    /// Present only in the functions configured with the OTP key (those that send or check
    /// codes); read it through `otp_hasher()`.
    otp_key: Option<OtpHasher>,
    pub tokens: TokenIssuer,
    pub sms: SmsSender,
    /// The bot check before codes are sent, when `CAPTCHA_PROVIDER` is set.
    pub captcha: Option<CaptchaVerifier>,
    /// The function that adds claims to each access token, when `TOKEN_HOOK_FUNCTION` is set.
    pub token_hook: Option<TokenHook>,
    /// The Cognito pool users are moved from, when `COGNITO_MIGRATION_USER_POOL_ID` is set.
    pub cognito_migration: Option<CognitoMigration>,
}

impl App {
    /// Reads the environment and the secrets it names (one `GetSecretValue` each, kept for the
    /// life of the instance) and builds the clients.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        let aws = load_aws_config().await;
        let secrets_manager = aws_sdk_secretsmanager::Client::new(&aws);
        let kms = jwt_keys::kms_client(&aws);
        let (secrets, keys) = tokio::try_join!(
            AppSecrets::fetch(&config, &secrets_manager),
            AsymmetricKeys::fetch(&config, &kms),
        )?;
        Self::with_keys(
            config,
            secrets,
            keys,
            &aws,
            aws_sdk_dynamodb::Client::new(&aws),
        )
    }

    /// An app whose secrets, if any, are local fallbacks; no network call is made here.
    pub fn new(config: Config, aws: &SdkConfig) -> Result<Self, ConfigError> {
        Self::with_dynamodb(config, aws, aws_sdk_dynamodb::Client::new(aws))
    }

    /// As `new`, with a DynamoDB client configured by the caller.
    pub fn with_dynamodb(
        config: Config,
        aws: &SdkConfig,
        dynamodb: aws_sdk_dynamodb::Client,
    ) -> Result<Self, ConfigError> {
        let secrets = AppSecrets::local(&config)?;
        Self::with_secrets(config, secrets, aws, dynamodb)
    }

    /// The app of `config` with its secrets already read, and its RS256/ES256 key, if any, from
    /// a local file (KMS keys are read by `from_env` or `with_keys`'s caller).
    pub fn with_secrets(
        config: Config,
        secrets: AppSecrets,
        aws: &SdkConfig,
        dynamodb: aws_sdk_dynamodb::Client,
    ) -> Result<Self, ConfigError> {
        let keys = AsymmetricKeys::local(&config)?;
        Self::with_keys(config, secrets, keys, aws, dynamodb)
    }

    /// The app of `config` with its secrets and its RS256/ES256 keys already read.
    pub fn with_keys(
        config: Config,
        secrets: AppSecrets,
        keys: AsymmetricKeys,
        aws: &SdkConfig,
        dynamodb: aws_sdk_dynamodb::Client,
    ) -> Result<Self, ConfigError> {
        let clock = Clock::default();
        let signing_keys =
            SigningKeysTable::new(dynamodb.clone(), config.tables.signing_keys.clone());
        let captcha = match (&config.captcha, secrets.captcha_secret) {
            (Some(captcha), Some(secret)) => {
                Some(CaptchaVerifier::new(captcha, secret).map_err(|error| {
                    ConfigError::Invalid {
                        name: "CAPTCHA_PROVIDER",
                        reason: error.to_string(),
                    }
                })?)
            }
            (Some(_), None) => return Err(ConfigError::Missing("CAPTCHA_SECRET_ID")),
            (None, _) => None,
        };
        Ok(Self {
            captcha,
            store: Store::new(dynamodb, &config.tables),
            phones: PhoneParser::new(
                config.default_region,
                config.test_otp_numbers.keys().cloned(),
            ),
            otp_key: secrets.otp_hmac_key.map(OtpHasher::new),
            tokens: TokenIssuer::new(
                &config,
                secrets.jwt_signing_key.as_ref(),
                keys,
                secrets.key_publication_key.map(PublicationKey::new),
                signing_keys,
                clock.clone(),
            )?,
            sms: SmsSender::new(&config.sms, config.sms_timeout, aws),
            token_hook: config
                .token_hook_function
                .as_deref()
                .map(|function| TokenHook::new(function, aws, &[])),
            cognito_migration: config
                .cognito_migration
                .as_ref()
                .map(|pool| CognitoMigration::new(pool, aws, &[])),
            clock,
            config,
        })
    }
}

impl App {
    /// Makes this app keep `clock`'s time (tests share one clock between copies of an app).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.tokens.set_clock(clock.clone());
        self.clock = clock;
        self
    }

    /// Notes what API Gateway says of a request before its handler runs: the API's id, from
    /// which the issuer is learned when `JWT_ISSUER` is unset.
    pub fn observe(&self, request: &lambda_http::Request) {
        use lambda_http::RequestExt;
        use lambda_http::request::RequestContext;
        if let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() {
            self.tokens.learn_issuer(context.apiid.as_deref());
        }
    }

    /// The OTP key; a function deployed without it answers 500 (a misconfiguration).
    pub fn otp_hasher(&self) -> Result<&OtpHasher, AuthError> {
        self.otp_key
            .as_ref()
            .ok_or_else(|| AuthError::internal("this function has no OTP key (OTP_HMAC_SECRET_ID)"))
    }
}

/// How long one AWS call may take, its retries included. A function's longest chain of
/// sequential calls times this must fit its Lambda timeout: the time-budget test
/// (`tests/tests/least_privilege.rs`) checks every function's recorded chains against
/// `template.yaml`.
pub const AWS_CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// The AWS SDK settings: timeouts well inside the Lambda timeout and the standard retry mode, so
/// a slow or throttled DynamoDB gives a prompt 503 rather than a Lambda timeout. The SMS
/// providers' clients replace the timeouts and retries with their own (`sms::SmsSender::new`).
pub async fn load_aws_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(500))
                .operation_attempt_timeout(Duration::from_secs(1))
                .operation_timeout(AWS_CALL_TIMEOUT)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}
