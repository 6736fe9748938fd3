//! The phone + OTP authentication library behind every Lambda function: the domain rules,
//! the DynamoDB storage and the HTTP handlers, so that all of it is testable in-process.

pub mod audit;
pub mod config;
pub mod error;
pub mod handlers;
pub mod http;
pub mod limits;
pub mod otp;
pub mod password;
pub mod phone;
pub mod profile;
pub mod service;
pub mod sms;
pub mod store;
pub mod telemetry;
pub mod tokens;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use crate::config::{Config, ConfigError, SmsProviderConfig};
use crate::limits::{AccountBackoff, FailureCounter, FailureKind, PasswordGuard};
use crate::otp::OtpHasher;
use crate::phone::PhoneNumber;
use crate::sms::SmsSender;
use crate::store::attempts::AttemptsTable;
use crate::store::otps::OtpsTable;
use crate::store::registration_tokens::RegistrationTokensTable;
use crate::store::sessions::SessionsTable;
use crate::store::users::UsersTable;
use crate::tokens::TokenIssuer;

pub use crate::error::AuthError;

/// Everything a handler needs, built once per cold start and shared by every invocation.
pub struct App {
    pub config: Config,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub users: UsersTable,
    pub otps: OtpsTable,
    pub registration_tokens: RegistrationTokensTable,
    pub attempts: AttemptsTable,
    pub sessions: SessionsTable,
    pub otp_hasher: OtpHasher,
    pub tokens: TokenIssuer,
    pub sms: SmsSender,
}

impl App {
    /// Reads the environment and builds the clients; no network call is made here.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        Self::new(config, &load_aws_config().await)
    }

    pub fn new(config: Config, aws: &SdkConfig) -> Result<Self, ConfigError> {
        Self::with_dynamodb(config, aws, aws_sdk_dynamodb::Client::new(aws))
    }

    /// As `new`, with a DynamoDB client configured by the caller.
    pub fn with_dynamodb(
        config: Config,
        aws: &SdkConfig,
        dynamodb: aws_sdk_dynamodb::Client,
    ) -> Result<Self, ConfigError> {
        let tables = &config.tables;
        Ok(Self {
            users: UsersTable::new(dynamodb.clone(), tables.users.clone()),
            otps: OtpsTable::new(dynamodb.clone(), tables.otps.clone()),
            registration_tokens: RegistrationTokensTable::new(
                dynamodb.clone(),
                tables.registration_tokens.clone(),
            ),
            attempts: AttemptsTable::new(dynamodb.clone(), tables.attempts.clone()),
            sessions: SessionsTable::new(dynamodb.clone(), tables.sessions.clone()),
            otp_hasher: OtpHasher::new(config.otp_hmac_secret.clone()),
            tokens: TokenIssuer::new(&config)?,
            sms: match &config.sms {
                SmsProviderConfig::Sns => SmsSender::Sns(aws_sdk_sns::Client::new(aws)),
                SmsProviderConfig::Outbox { path } => SmsSender::Outbox { path: path.clone() },
            },
            dynamodb,
            config,
        })
    }
}

impl App {
    /// The failure counter of one (phone, client IP) pair.
    pub fn failure_counter(
        &self,
        kind: FailureKind,
        phone: &PhoneNumber,
        client_ip: &str,
    ) -> FailureCounter<'_> {
        FailureCounter::new(&self.attempts, &self.config.limits, kind, phone, client_ip)
    }

    /// The per-account back-off of `phone`.
    pub fn account_backoff(&self, phone: &PhoneNumber) -> AccountBackoff<'_> {
        AccountBackoff::new(&self.attempts, &self.config.limits, phone)
    }

    /// The guards of a password check for `phone` from `client_ip`.
    pub fn password_guard(&self, phone: &PhoneNumber, client_ip: &str) -> PasswordGuard<'_> {
        PasswordGuard::new(
            self.failure_counter(FailureKind::Login, phone, client_ip),
            self.account_backoff(phone),
        )
    }
}

/// The AWS SDK settings: timeouts well inside the Lambda timeout (15 s in template.yaml; a
/// request makes at most four sequential DynamoDB calls) and the standard retry mode, so a slow
/// or throttled DynamoDB gives a prompt 503 rather than a Lambda timeout.
pub async fn load_aws_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(500))
                .operation_attempt_timeout(Duration::from_secs(1))
                .operation_timeout(Duration::from_secs(3))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}
