//! Typed configuration, read once from the environment at cold start.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use phonenumber::country;
use secrecy::SecretString;

use crate::captcha::{CaptchaProvider, CaptchaWhen};
use crate::http::TrustedProxy;
use crate::messages::{Autofill, Messages};
use crate::otp::{DEFAULT_OTP_LENGTH, OTP_LENGTHS};
use crate::phone::PhoneNumber;

/// Secrets shorter than this are refused: they would make the keys derived from them guessable.
const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("the secret named by {name} could not be read: {reason}")]
    SecretUnreadable { name: &'static str, reason: String },
    /// A local-only secret value in a function running on AWS Lambda.
    #[error(
        "environment variable {name} is for local runs only and is refused on AWS Lambda \
         ({signal} is set): put the secret in Secrets Manager and set {secret_id}"
    )]
    LocalSecretOnLambda {
        name: &'static str,
        secret_id: &'static str,
        signal: &'static str,
    },
    /// A local private key file in a function running on AWS Lambda.
    #[error(
        "environment variable {name} is for local runs only and is refused on AWS Lambda \
         ({signal} is set): sign in AWS KMS with JWT_KMS_KEY_ID"
    )]
    LocalKeyOnLambda {
        name: &'static str,
        signal: &'static str,
    },
}

/// `JWT_ALGORITHM`: what this deployment signs its tokens with. Unset means EdDSA, what every
/// deployment before the choice signed with; the template's default is RS256 (README, "Tokens").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    /// RSA 2048 in AWS KMS (the only algorithm API Gateway's HTTP API JWT authorizer accepts).
    Rs256,
    /// ECDSA P-256 in AWS KMS.
    Es256,
    /// Ed25519 from the Secrets Manager secret `JWT_SIGNING_SECRET_ID`.
    EdDSA,
}

impl JwtAlgorithm {
    /// Its JWS name, as `JWT_ALGORITHM` and the tokens' `alg` write it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    pub fn algorithm(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

/// Where the RS256/ES256 private key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsymmetricKeySource {
    /// An asymmetric AWS KMS key (`JWT_KMS_KEY_ID`: its ARN, id or alias; not a secret).
    Kms { key_id: String },
    /// A PKCS#8 PEM file (`LOCAL_JWT_PRIVATE_KEY_FILE`), for local runs only.
    LocalPem(PathBuf),
}

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
struct SecretVariables {
    secret_id: &'static str,
    local_fallback: &'static str,
    retired: &'static str,
}

const JWT_SIGNING_KEY_VARIABLES: SecretVariables = SecretVariables {
    secret_id: "JWT_SIGNING_SECRET_ID",
    local_fallback: "LOCAL_JWT_SIGNING_KEY",
    retired: "JWT_SIGNING_KEY",
};

const OTP_HMAC_KEY_VARIABLES: SecretVariables = SecretVariables {
    secret_id: "OTP_HMAC_SECRET_ID",
    local_fallback: "LOCAL_OTP_HMAC_SECRET",
    retired: "OTP_HMAC_SECRET",
};

const KEY_PUBLICATION_KEY_VARIABLES: SecretVariables = SecretVariables {
    secret_id: "KEY_PUBLICATION_SECRET_ID",
    local_fallback: "LOCAL_KEY_PUBLICATION_SECRET",
    // Never read: refused, so that the secret is not put in the environment by mistake.
    retired: "KEY_PUBLICATION_SECRET",
};

const CAPTCHA_SECRET_VARIABLES: SecretVariables = SecretVariables {
    secret_id: "CAPTCHA_SECRET_ID",
    local_fallback: "LOCAL_CAPTCHA_SECRET",
    // Never read: refused, so that the secret is not put in the environment by mistake.
    retired: "CAPTCHA_SECRET",
};

#[derive(Debug, Clone)]
pub struct Tables {
    pub users: String,
    pub otps: String,
    pub registration_tokens: String,
    pub attempts: String,
    pub sessions: String,
    /// The public keys signers publish for verifiers (`SigningKeysTable`).
    pub signing_keys: String,
}

#[derive(Debug, Clone)]
pub enum SmsProviderConfig {
    Sns,
    Outbox {
        path: PathBuf,
    },
    /// An operator-owned Lambda function sends the SMS (`SMS_HOOK_FUNCTION`: name or ARN).
    Lambda {
        function: String,
    },
    /// AWS End User Messaging SMS (`SendTextMessage`).
    EndUserMessaging {
        origination_identity: Option<String>,
        configuration_set: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Failed verifies (or logins) for one phone from one IP before that pair is blocked.
    pub lockout_max_failures: u32,
    pub lockout_seconds: u64,
    pub otp_sends_per_phone: u32,
    pub otp_sends_per_ip: u32,
    /// The window of the per-phone, per-IP and global caps (an hour by default).
    pub otp_send_window_seconds: u64,
    pub otp_sends_per_phone_per_day: u32,
    /// New-number sends (sign-up, change of number) per country calling code and day.
    pub otp_sends_per_country_per_day: u32,
    /// New-number sends of the whole service per send window.
    pub otp_sends_global_per_hour: u32,
    /// New-number sends per number range (`limits::number_range`) and send window.
    pub otp_sends_per_range_per_hour: u32,
    /// Sends to registered numbers (reset, login, step-up) per country calling code and day.
    pub otp_reserved_sends_per_country_per_day: u32,
    /// Sends to registered numbers of the whole service per send window.
    pub otp_reserved_sends_global_per_hour: u32,
    /// Shards of each country and global budget (`limits::shard_count`).
    pub otp_send_budget_shards: u32,
    /// Consecutive failed password checks of one account (from any IP) before back-off starts.
    pub account_backoff_after_failures: u32,
    pub account_backoff_base_seconds: u64,
    pub account_backoff_max_seconds: u64,
    /// Consecutive failures after which a login needs a code by SMS besides the password.
    pub account_max_failures: u32,
    /// How long an account's failures are remembered after the last one.
    pub account_failure_memory_seconds: u64,
    /// `check-phone` lookups per client network and send window (number enumeration).
    pub check_phone_lookups_per_ip: u32,
    /// Codes to one phone asked for from one client network per day.
    pub otp_sends_per_phone_network_per_day: u32,
    /// Reset and login codes asked for from one /24 (IPv4) or /48 (IPv6) per send window.
    pub otp_sends_per_ip_block_per_hour: u32,
    /// Step-up codes per account and day.
    pub otp_step_up_sends_per_day: u32,
    /// Codes per day to a registered number proved in the last 30 days once the reserve is spent.
    pub otp_proven_floor_per_day: u32,
    /// Wrong passwords one session may give (password change, account deletion) before it is
    /// ended; these checks are not held by the account back-off.
    pub session_password_max_failures: u32,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub tables: Tables,
    pub default_region: country::Id,
    pub otp_ttl_seconds: u64,
    pub otp_resend_seconds: u64,
    pub otp_max_attempts: u32,
    pub registration_token_ttl_seconds: u64,
    pub access_token_ttl_seconds: u64,
    pub refresh_token_ttl_seconds: u64,
    /// Absolute lifetime of a session, however often it is refreshed.
    pub session_max_seconds: u64,
    /// How long a just-spent refresh token still rotates (two tabs, a retried request) before
    /// presenting it counts as reuse and revokes the session.
    pub refresh_reuse_grace_seconds: u64,
    /// How recent a session's login must be to change the phone number, so that a stolen
    /// token of an older session cannot move the account to the thief's number.
    pub recent_login_seconds: u64,
    /// Named in every SMS, so the recipient knows who sent the code.
    pub service_name: String,
    /// `iss` of the tokens and the discovery document's issuer (`JWT_ISSUER`).
    pub jwt_issuer: IssuerSetting,
    /// `scope` of access tokens (`SCOPES_DEFAULT`, space-separated; `profile` by default).
    pub scopes: Vec<String>,
    /// `aud` of access tokens, the audience other services verify.
    pub jwt_audience: String,
    /// `aud` of refresh tokens: never the access audience, so that no service verifying access
    /// tokens with the published keys can accept a refresh token.
    pub jwt_refresh_audience: String,
    /// What tokens are signed with (`JWT_ALGORITHM`).
    pub jwt_algorithm: JwtAlgorithm,
    /// RS256/ES256 only: the key that signs (`JWT_KMS_KEY_ID`, or locally
    /// `LOCAL_JWT_PRIVATE_KEY_FILE`). Every function that signs or verifies tokens has it; only
    /// the signing functions are allowed to sign with it (template.yaml).
    pub jwt_asymmetric_key: Option<AsymmetricKeySource>,
    /// A KMS key that verifies and is published but does not sign (`JWT_PREVIOUS_KMS_KEY_ID`):
    /// the previous key after a rotation, or the next one before it signs. Any algorithm.
    pub jwt_previous_kms_key_id: Option<String>,
    /// EdDSA only: the Ed25519 key, PKCS#8 PEM or a secret string whose SHA-256 is the seed.
    /// Only functions that sign tokens have it.
    pub jwt_signing_key: Option<SecretSource>,
    /// The previous key's public part (JWK `x`, base64url), still accepted and published.
    pub jwt_previous_public_key: Option<String>,
    /// Key of the MACs that make published signing keys trusted (`key_publication`); the
    /// functions that sign or verify tokens have it. Without it a function trusts only its own
    /// and the configured keys.
    pub key_publication_key: Option<SecretSource>,
    /// Key of the OTP hashes; only functions that issue or check codes have it.
    pub otp_hmac_key: Option<SecretSource>,
    pub limits: Limits,
    /// Country calling codes whose numbers may be sent SMS (toll-fraud guard); empty means the
    /// default region's. Resolved when needed, so that cold starts do not load libphonenumber's
    /// metadata (tens of milliseconds) before the first request that parses a number.
    pub allowed_country_codes: Vec<u16>,
    pub sms: SmsProviderConfig,
    /// How long one call to the SMS provider may take (`SMS_TIMEOUT_SECONDS`); never retried.
    pub sms_timeout: Duration,
    /// Digits per code (`OTP_LENGTH`, 4 to 10).
    pub otp_length: usize,
    /// The SMS text: templates per language and the autofill lines.
    pub messages: Messages,
    /// Opt-in fixed codes for review/e2e numbers (E.164 -> code); such numbers get no SMS.
    pub test_otp_numbers: HashMap<String, String>,
    /// The bot check before codes are sent (`CAPTCHA_PROVIDER`); none when unset.
    pub captcha: Option<CaptchaConfig>,
    /// The proxy whose header names the client, for the per-network limits (`TRUSTED_PROXY`).
    pub trusted_proxy: TrustedProxy,
}

/// A bot check's settings: the provider, where its answers are verified, when it is asked for,
/// and the secret (only in the functions that send codes).
#[derive(Debug, Clone)]
pub struct CaptchaConfig {
    pub provider: CaptchaProvider,
    /// The provider's siteverify endpoint (`CAPTCHA_VERIFY_URL` replaces it, for tests).
    pub verify_url: String,
    pub when: CaptchaWhen,
    /// Lowest score accepted from providers that score (reCAPTCHA v3), `CAPTCHA_MIN_SCORE`.
    pub min_score: f64,
    pub secret: SecretSource,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the config from any variable source (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let default_region = env.parse_or("DEFAULT_REGION", country::Id::IR)?;
        let sms = sms_provider(&env)?;
        let sms_timeout = sms_timeout(&env)?;
        let otp_length = env.parse_or("OTP_LENGTH", DEFAULT_OTP_LENGTH)?;
        if !OTP_LENGTHS.contains(&otp_length) {
            return Err(ConfigError::Invalid {
                name: "OTP_LENGTH",
                reason: format!(
                    "must be {} to {} digits, not {otp_length}",
                    OTP_LENGTHS.start(),
                    OTP_LENGTHS.end()
                ),
            });
        }
        let messages = messages(&env)?;
        let jwt_algorithm = jwt_algorithm(&env)?;
        let jwt_audience = env
            .get("JWT_AUDIENCE")
            .unwrap_or_else(|| "phone-auth-clients".to_owned());
        let jwt_refresh_audience = env
            .get("JWT_REFRESH_AUDIENCE")
            .unwrap_or_else(|| format!("{jwt_audience}#refresh"));
        if jwt_refresh_audience == jwt_audience {
            return Err(ConfigError::Invalid {
                name: "JWT_REFRESH_AUDIENCE",
                reason: "must differ from JWT_AUDIENCE".to_owned(),
            });
        }
        Ok(Self {
            tables: Tables {
                users: env.required("USERS_TABLE")?,
                otps: env.required("OTPS_TABLE")?,
                registration_tokens: env.required("REGISTRATION_TOKENS_TABLE")?,
                attempts: env.required("ATTEMPTS_TABLE")?,
                sessions: env.required("SESSIONS_TABLE")?,
                signing_keys: env.required("SIGNING_KEYS_TABLE")?,
            },
            default_region,
            otp_ttl_seconds: env.parse_or("OTP_TTL_SECONDS", 300)?,
            otp_resend_seconds: env.parse_or("OTP_RESEND_SECONDS", 60)?,
            otp_max_attempts: env.parse_or("OTP_MAX_ATTEMPTS", 5)?,
            registration_token_ttl_seconds: env.parse_or("REGISTRATION_TOKEN_TTL_SECONDS", 600)?,
            access_token_ttl_seconds: env.parse_or("ACCESS_TOKEN_TTL_SECONDS", 900)?,
            refresh_token_ttl_seconds: env.parse_or("REFRESH_TOKEN_TTL_SECONDS", 604_800)?,
            session_max_seconds: env.parse_or("SESSION_MAX_SECONDS", 30 * 86_400)?,
            refresh_reuse_grace_seconds: env.parse_or("REFRESH_REUSE_GRACE_SECONDS", 10)?,
            recent_login_seconds: env.parse_or("RECENT_LOGIN_SECONDS", 600)?,
            service_name: env
                .get("SERVICE_NAME")
                .unwrap_or_else(|| "Phone Auth".to_owned()),
            jwt_issuer: issuer_setting(&env),
            scopes: scopes(&env)?,
            jwt_audience,
            jwt_refresh_audience,
            jwt_algorithm,
            jwt_asymmetric_key: asymmetric_key(&env, jwt_algorithm)?,
            jwt_previous_kms_key_id: env
                .get("JWT_PREVIOUS_KMS_KEY_ID")
                .map(|id| id.trim().to_owned()),
            // The Ed25519 key is not read when another algorithm signs.
            jwt_signing_key: match jwt_algorithm {
                JwtAlgorithm::EdDSA => env.secret_source(&JWT_SIGNING_KEY_VARIABLES)?,
                JwtAlgorithm::Rs256 | JwtAlgorithm::Es256 => None,
            },
            jwt_previous_public_key: env.get("JWT_PREVIOUS_PUBLIC_KEY"),
            key_publication_key: env.secret_source(&KEY_PUBLICATION_KEY_VARIABLES)?,
            otp_hmac_key: env.secret_source(&OTP_HMAC_KEY_VARIABLES)?,
            limits: Limits {
                lockout_max_failures: env.parse_or("LOCKOUT_MAX_FAILURES", 3)?,
                lockout_seconds: env.parse_or("LOCKOUT_SECONDS", 3600)?,
                otp_sends_per_phone: env.parse_or("OTP_SENDS_PER_PHONE", 5)?,
                otp_sends_per_ip: env.parse_or("OTP_SENDS_PER_IP", 10)?,
                otp_send_window_seconds: env.parse_or("OTP_SEND_WINDOW_SECONDS", 3600)?,
                otp_sends_per_phone_per_day: env.parse_or("OTP_SENDS_PER_PHONE_PER_DAY", 10)?,
                otp_sends_per_country_per_day: env
                    .parse_or("OTP_SENDS_PER_COUNTRY_PER_DAY", 1000)?,
                otp_sends_global_per_hour: env.parse_or("OTP_SENDS_GLOBAL_PER_HOUR", 500)?,
                otp_sends_per_range_per_hour: env.parse_or("OTP_SENDS_PER_RANGE_PER_HOUR", 20)?,
                otp_reserved_sends_per_country_per_day: env
                    .parse_or("OTP_RESERVED_SENDS_PER_COUNTRY_PER_DAY", 1000)?,
                otp_reserved_sends_global_per_hour: env
                    .parse_or("OTP_RESERVED_SENDS_GLOBAL_PER_HOUR", 500)?,
                otp_send_budget_shards: budget_shards(&env)?,
                account_backoff_after_failures: env
                    .parse_or("ACCOUNT_BACKOFF_AFTER_FAILURES", 10)?,
                account_backoff_base_seconds: env.parse_or("ACCOUNT_BACKOFF_BASE_SECONDS", 30)?,
                account_backoff_max_seconds: env.parse_or("ACCOUNT_BACKOFF_MAX_SECONDS", 3600)?,
                account_max_failures: env.parse_or("ACCOUNT_MAX_FAILURES", 100)?,
                account_failure_memory_seconds: env
                    .parse_or("ACCOUNT_FAILURE_MEMORY_SECONDS", 30 * 86_400)?,
                check_phone_lookups_per_ip: env.parse_or("CHECK_PHONE_LOOKUPS_PER_IP", 100)?,
                otp_sends_per_phone_network_per_day: env
                    .parse_or("OTP_SENDS_PER_PHONE_NETWORK_PER_DAY", 5)?,
                otp_sends_per_ip_block_per_hour: env
                    .parse_or("OTP_SENDS_PER_IP_BLOCK_PER_HOUR", 30)?,
                otp_step_up_sends_per_day: env.parse_or("OTP_STEP_UP_SENDS_PER_DAY", 2)?,
                otp_proven_floor_per_day: env.parse_or("OTP_PROVEN_FLOOR_PER_DAY", 2)?,
                session_password_max_failures: env.parse_or("SESSION_PASSWORD_MAX_FAILURES", 5)?,
            },
            allowed_country_codes: parse_country_codes(
                env.get("ALLOWED_COUNTRY_CODES").as_deref(),
            )?,
            sms,
            sms_timeout,
            otp_length,
            messages,
            test_otp_numbers: parse_test_numbers(
                env.get("TEST_OTP_NUMBERS").as_deref().unwrap_or(""),
                default_region,
                otp_length,
            )?,
            captcha: captcha(&env)?,
            trusted_proxy: trusted_proxy(&env)?,
        })
    }
}

impl Config {
    /// Whether SMS may go to numbers with this country calling code.
    pub fn sms_allowed_to(&self, country_code: u16) -> bool {
        if self.allowed_country_codes.is_empty() {
            return phonenumber::metadata::DATABASE
                .by_id(self.default_region.as_ref())
                .is_some_and(|region| region.country_code() == country_code);
        }
        self.allowed_country_codes.contains(&country_code)
    }
}

/// Secrets shorter than `MIN_SECRET_BYTES` are refused, wherever they come from.
pub(crate) fn validate_secret(value: String) -> Result<SecretString, String> {
    if value.trim().len() < MIN_SECRET_BYTES {
        return Err(format!("must be at least {MIN_SECRET_BYTES} bytes"));
    }
    Ok(SecretString::from(value))
}

struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|value| !value.trim().is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing(name))
    }

    /// The secret's id, else its local fallback, else none (the function lacks the secret).
    /// With an id the fallback's value is never read: both set is refused.
    fn secret_source(
        &self,
        variables: &SecretVariables,
    ) -> Result<Option<SecretSource>, ConfigError> {
        if self.get(variables.retired).is_some() {
            return Err(ConfigError::Invalid {
                name: variables.retired,
                reason: format!(
                    "is not read: set {} (AWS) or {} (local runs only)",
                    variables.secret_id, variables.local_fallback
                ),
            });
        }
        if let Some(secret_id) = self.get(variables.secret_id) {
            if self.get(variables.local_fallback).is_some() {
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
        let Some(value) = self.get(variables.local_fallback) else {
            return Ok(None);
        };
        if let Some(signal) = self.on_lambda() {
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

    /// The variable that shows the function runs on real AWS Lambda, if one is set.
    fn on_lambda(&self) -> Option<&'static str> {
        ON_LAMBDA_SIGNALS
            .into_iter()
            .find(|signal| self.get(signal).is_some())
    }

    fn parse_or<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|_| ConfigError::Invalid {
                name,
                reason: format!("cannot parse '{raw}'"),
            }),
        }
    }
}

/// `SMS_PROVIDER` and the settings of the chosen provider (the others' are not read).
fn sms_provider<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<SmsProviderConfig, ConfigError> {
    Ok(match env.get("SMS_PROVIDER").as_deref().unwrap_or("sns") {
        "sns" => SmsProviderConfig::Sns,
        "outbox" => SmsProviderConfig::Outbox {
            path: env
                .get("SMS_OUTBOX_PATH")
                .unwrap_or_else(|| ".local/sms-outbox.jsonl".to_owned())
                .into(),
        },
        "lambda" => SmsProviderConfig::Lambda {
            function: env.required("SMS_HOOK_FUNCTION")?.trim().to_owned(),
        },
        "end-user-messaging" => SmsProviderConfig::EndUserMessaging {
            origination_identity: env.get("SMS_ORIGINATION_IDENTITY"),
            configuration_set: env.get("SMS_CONFIGURATION_SET"),
        },
        other => {
            return Err(ConfigError::Invalid {
                name: "SMS_PROVIDER",
                reason: format!("'{other}' is not one of: sns, outbox, lambda, end-user-messaging"),
            });
        }
    })
}

/// `JWT_ALGORITHM`: RS256, ES256 or EdDSA (the default when unset).
fn jwt_algorithm<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<JwtAlgorithm, ConfigError> {
    match env.get("JWT_ALGORITHM").as_deref().map(str::trim) {
        None | Some("EdDSA") => Ok(JwtAlgorithm::EdDSA),
        Some("RS256") => Ok(JwtAlgorithm::Rs256),
        Some("ES256") => Ok(JwtAlgorithm::Es256),
        Some(other) => Err(ConfigError::Invalid {
            name: "JWT_ALGORITHM",
            reason: format!("'{other}' is not one of: RS256, ES256, EdDSA"),
        }),
    }
}

/// The RS256/ES256 key: `JWT_KMS_KEY_ID`, or for local runs `LOCAL_JWT_PRIVATE_KEY_FILE`
/// (refused on Lambda); neither is read for EdDSA, and either set then is a mistake.
fn asymmetric_key<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    algorithm: JwtAlgorithm,
) -> Result<Option<AsymmetricKeySource>, ConfigError> {
    const KMS: &str = "JWT_KMS_KEY_ID";
    const LOCAL: &str = "LOCAL_JWT_PRIVATE_KEY_FILE";
    let kms = env.get(KMS).map(|id| id.trim().to_owned());
    let local = env.get(LOCAL).map(|path| PathBuf::from(path.trim()));
    if algorithm == JwtAlgorithm::EdDSA {
        if let Some(name) = [(KMS, kms.is_some()), (LOCAL, local.is_some())]
            .into_iter()
            .find_map(|(name, set)| set.then_some(name))
        {
            return Err(ConfigError::Invalid {
                name,
                reason: "signs RS256 or ES256 only, and JWT_ALGORITHM is EdDSA".to_owned(),
            });
        }
        return Ok(None);
    }
    match (kms, local) {
        (Some(_), Some(_)) => Err(ConfigError::Invalid {
            name: LOCAL,
            reason: format!("is for local runs only: unset it when {KMS} is set"),
        }),
        (Some(key_id), None) => Ok(Some(AsymmetricKeySource::Kms { key_id })),
        (None, Some(path)) => match env.on_lambda() {
            Some(signal) => Err(ConfigError::LocalKeyOnLambda {
                name: LOCAL,
                signal,
            }),
            None => Ok(Some(AsymmetricKeySource::LocalPem(path))),
        },
        (None, None) => Ok(None),
    }
}

/// Where the tokens' issuer comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerSetting {
    /// `JWT_ISSUER`, as given.
    Configured(String),
    /// `JWT_ISSUER` unset: this API's default URL, `https://{api id}.execute-api.{region}.{suffix}`,
    /// learned from the first request's context. The template cannot pass that URL: the API's
    /// definition refers to every function, so a function referring to the API is a cycle.
    ThisApi { region: String },
}

fn issuer_setting<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> IssuerSetting {
    match env.get("JWT_ISSUER") {
        Some(issuer) => IssuerSetting::Configured(issuer.trim().to_owned()),
        // Lambda always sets AWS_REGION; the fallback only serves local runs without it.
        None => IssuerSetting::ThisApi {
            region: env
                .get("AWS_REGION")
                .unwrap_or_else(|| "us-east-1".to_owned()),
        },
    }
}

/// `SCOPES_DEFAULT`: space-separated RFC 6749 scope tokens (printable ASCII but `"` and `\`).
fn scopes<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Result<Vec<String>, ConfigError> {
    let raw = env
        .get("SCOPES_DEFAULT")
        .unwrap_or_else(|| "profile".to_owned());
    let scopes: Vec<String> = raw.split_whitespace().map(str::to_owned).collect();
    let valid = |scope: &str| {
        scope
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
    };
    if let Some(bad) = scopes.iter().find(|scope| !valid(scope)) {
        return Err(ConfigError::Invalid {
            name: "SCOPES_DEFAULT",
            reason: format!("'{bad}' is not a scope (printable ASCII, no quote or backslash)"),
        });
    }
    Ok(scopes)
}

/// `TRUSTED_PROXY`: `none` (the default) or `cloudfront`, which needs
/// `TRUSTED_PROXY_ORIGIN_SECRET_SHA256`: the SHA-256 (hex) of the secret CloudFront adds as
/// `X-Origin-Verify`. Only its hash is configured: it names the secret without holding it.
fn trusted_proxy<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<TrustedProxy, ConfigError> {
    const HASH: &str = "TRUSTED_PROXY_ORIGIN_SECRET_SHA256";
    let Some(raw) = env.get("TRUSTED_PROXY") else {
        return Ok(TrustedProxy::None);
    };
    match raw.trim() {
        "none" => Ok(TrustedProxy::None),
        "cloudfront" => {
            let hash = env.get(HASH).ok_or(ConfigError::Missing(HASH))?;
            let origin_secret_sha256 =
                parse_sha256_hex(hash.trim()).ok_or_else(|| ConfigError::Invalid {
                    name: HASH,
                    reason: "must be 64 hexadecimal digits, the SHA-256 of the (non-empty) \
                             origin secret"
                        .into(),
                })?;
            Ok(TrustedProxy::CloudFront {
                origin_secret_sha256,
            })
        }
        _ => Err(ConfigError::Invalid {
            name: "TRUSTED_PROXY",
            reason: format!("'{raw}' is not one of: none, cloudfront"),
        }),
    }
}

/// The SHA-256 of nothing: the hash of an origin secret left empty by mistake.
const SHA256_OF_EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// 64 hexadecimal digits as 32 bytes; not the hash of an empty secret.
fn parse_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) || hex == SHA256_OF_EMPTY {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(bytes)
}

/// The bounds of `SMS_TIMEOUT_SECONDS`: long enough for a slow provider (or a cold hook function),
/// short enough that a sending function's worst case fits its Lambda timeout (template.yaml).
pub const SMS_TIMEOUT_SECONDS: std::ops::RangeInclusive<u64> = 1..=8;

/// `SMS_TIMEOUT_SECONDS` (default 6): how long one provider call may take before its outcome is
/// taken as unknown.
fn sms_timeout<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Result<Duration, ConfigError> {
    let seconds: u64 = env.parse_or("SMS_TIMEOUT_SECONDS", 6)?;
    if !SMS_TIMEOUT_SECONDS.contains(&seconds) {
        return Err(ConfigError::Invalid {
            name: "SMS_TIMEOUT_SECONDS",
            reason: format!(
                "must be {} to {} seconds, not {seconds}",
                SMS_TIMEOUT_SECONDS.start(),
                SMS_TIMEOUT_SECONDS.end()
            ),
        });
    }
    Ok(Duration::from_secs(seconds))
}

/// Shards of each country and global send budget (`OTP_SEND_BUDGET_SHARDS`, 1 to 100): each
/// shard's item takes about 500 transactional writes a second, so 8 carry about 4,000 sends.
fn budget_shards<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Result<u32, ConfigError> {
    let shards = env.parse_or("OTP_SEND_BUDGET_SHARDS", 8)?;
    if !(1..=100).contains(&shards) {
        return Err(ConfigError::Invalid {
            name: "OTP_SEND_BUDGET_SHARDS",
            reason: format!("must be 1 to 100, not {shards}"),
        });
    }
    Ok(shards)
}

/// `CAPTCHA_PROVIDER` and its settings; none when unset. The provider's secret must be
/// configured wherever the provider is (the functions that send codes).
fn captcha<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<Option<CaptchaConfig>, ConfigError> {
    let secret = env.secret_source(&CAPTCHA_SECRET_VARIABLES)?;
    let Some(raw) = env.get("CAPTCHA_PROVIDER") else {
        if secret.is_some() {
            return Err(ConfigError::Invalid {
                name: "CAPTCHA_SECRET_ID",
                reason: "is set without CAPTCHA_PROVIDER".to_owned(),
            });
        }
        return Ok(None);
    };
    let provider: CaptchaProvider = raw.trim().parse().map_err(|()| ConfigError::Invalid {
        name: "CAPTCHA_PROVIDER",
        reason: format!("'{raw}' is not one of: turnstile, hcaptcha, recaptcha"),
    })?;
    let when = match env.get("CAPTCHA_WHEN").as_deref().map(str::trim) {
        None | Some("under-pressure") => CaptchaWhen::UnderPressure,
        Some("always") => CaptchaWhen::Always,
        Some(other) => {
            return Err(ConfigError::Invalid {
                name: "CAPTCHA_WHEN",
                reason: format!("'{other}' is not one of: always, under-pressure"),
            });
        }
    };
    let verify_url = env.get("CAPTCHA_VERIFY_URL").map_or_else(
        || provider.verify_url().to_owned(),
        |url| url.trim().to_owned(),
    );
    if !is_safe_verify_url(&verify_url) {
        return Err(ConfigError::Invalid {
            name: "CAPTCHA_VERIFY_URL",
            reason: "must be an https:// URL (plain http only to 127.0.0.1 or localhost)"
                .to_owned(),
        });
    }
    let min_score: f64 = env.parse_or("CAPTCHA_MIN_SCORE", 0.5)?;
    if !(0.0..=1.0).contains(&min_score) {
        return Err(ConfigError::Invalid {
            name: "CAPTCHA_MIN_SCORE",
            reason: "must be between 0 and 1".to_owned(),
        });
    }
    let secret = secret.ok_or(ConfigError::Missing("CAPTCHA_SECRET_ID"))?;
    Ok(Some(CaptchaConfig {
        provider,
        verify_url,
        when,
        min_score,
        secret,
    }))
}

/// Whether the secret may be sent to `url`: over TLS, or in plain HTTP to this machine only (a
/// test stub); never with credentials in the URL, which could hide the real host.
fn is_safe_verify_url(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.host_str().is_some()
        && (parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback))
}

/// The SMS text: the built-in templates, with the operator's from `SMS_TEMPLATES` (JSON) or
/// `SMS_TEMPLATES_FILE` (a JSON file; for templates beyond Lambda's 4 KB of environment), and
/// the autofill settings.
fn messages<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Result<Messages, ConfigError> {
    let inline = env.get("SMS_TEMPLATES");
    let file = env.get("SMS_TEMPLATES_FILE");
    let (name, json) = match (inline, file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Invalid {
                name: "SMS_TEMPLATES_FILE",
                reason: "set SMS_TEMPLATES or SMS_TEMPLATES_FILE, not both".to_owned(),
            });
        }
        (Some(json), None) => ("SMS_TEMPLATES", Some(json)),
        (None, Some(path)) => (
            "SMS_TEMPLATES_FILE",
            Some(
                std::fs::read_to_string(path.trim()).map_err(|error| ConfigError::Invalid {
                    name: "SMS_TEMPLATES_FILE",
                    reason: format!("cannot read '{}': {error}", path.trim()),
                })?,
            ),
        ),
        (None, None) => ("SMS_TEMPLATES", None),
    };
    let mut messages = match json {
        Some(json) => Messages::with_overrides(&json)
            .map_err(|reason| ConfigError::Invalid { name, reason })?,
        None => Messages::default(),
    };
    messages.autofill = Autofill {
        webotp_domain: env
            .get("WEBOTP_DOMAIN")
            .map(|raw| Autofill::parse_domain(&raw))
            .transpose()
            .map_err(|reason| ConfigError::Invalid {
                name: "WEBOTP_DOMAIN",
                reason,
            })?,
        android_app_hash: env
            .get("ANDROID_APP_HASH")
            .map(|raw| Autofill::parse_app_hash(&raw))
            .transpose()
            .map_err(|reason| ConfigError::Invalid {
                name: "ANDROID_APP_HASH",
                reason,
            })?,
    };
    Ok(messages)
}

/// `"98,1,44"`; unset means the calling code of the default region alone (an empty list).
fn parse_country_codes(raw: Option<&str>) -> Result<Vec<u16>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(|code| code.trim().trim_start_matches('+'))
        .filter(|code| !code.is_empty())
        .map(|code| {
            code.parse().map_err(|_| ConfigError::Invalid {
                name: "ALLOWED_COUNTRY_CODES",
                reason: format!("'{code}' is not a country calling code"),
            })
        })
        .collect()
}

/// `"+15555550100=123456,09121234567=000000"`: numbers are normalised like user input; each code
/// has `otp_length` digits, or it could never be entered.
fn parse_test_numbers(
    raw: &str,
    default_region: country::Id,
    otp_length: usize,
) -> Result<HashMap<String, String>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        name: "TEST_OTP_NUMBERS",
        reason,
    };
    raw.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (number, code) = entry
                .split_once('=')
                .ok_or_else(|| invalid(format!("'{entry}' is not NUMBER=CODE")))?;
            let phone = PhoneNumber::parse_allowing(number.trim(), default_region, |_| true)
                .map_err(|_| invalid(format!("'{number}' is not a phone number")))?;
            let code = code.trim();
            if code.len() != otp_length || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(format!(
                    "the code for '{number}' must be {otp_length} digits (OTP_LENGTH)"
                )));
            }
            Ok((phone.as_str().to_owned(), code.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "a-local-secret-of-at-least-32-bytes-0123";

    fn config_with(variables: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env: HashMap<String, String> = [
            "USERS_TABLE",
            "OTPS_TABLE",
            "REGISTRATION_TOKENS_TABLE",
            "ATTEMPTS_TABLE",
            "SESSIONS_TABLE",
            "SIGNING_KEYS_TABLE",
        ]
        .iter()
        .map(|name| ((*name).to_owned(), format!("t-{name}")))
        .collect();
        env.extend(
            variables
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Config::from_lookup(|name| env.get(name).cloned())
    }

    fn invalid_variable(result: Result<Config, ConfigError>) -> &'static str {
        match result {
            Err(ConfigError::Invalid { name, .. }) => name,
            other => panic!("expected an invalid variable, got {other:?}"),
        }
    }

    #[test]
    fn secret_ids_name_secrets_manager_and_local_fallbacks_carry_values() {
        let config = config_with(&[
            (
                "JWT_SIGNING_SECRET_ID",
                "arn:aws:secretsmanager:eu-west-1:1:secret:jwt",
            ),
            ("LOCAL_OTP_HMAC_SECRET", KEY),
        ])
        .unwrap();
        assert!(matches!(
            config.jwt_signing_key,
            Some(SecretSource::SecretsManager { variable: "JWT_SIGNING_SECRET_ID", ref secret_id })
                if secret_id.ends_with(":secret:jwt")
        ));
        assert!(matches!(
            config.otp_hmac_key,
            Some(SecretSource::LocalFallback(_))
        ));
    }

    #[test]
    fn the_bot_check_needs_a_known_provider_its_secret_and_a_tls_url() {
        assert!(config_with(&[]).unwrap().captcha.is_none());
        let captcha = config_with(&[
            ("CAPTCHA_PROVIDER", "hcaptcha"),
            (
                "CAPTCHA_SECRET_ID",
                "arn:aws:secretsmanager:eu-west-1:1:secret:captcha",
            ),
        ])
        .unwrap()
        .captcha
        .unwrap();
        assert_eq!(captcha.provider, CaptchaProvider::Hcaptcha);
        assert_eq!(captcha.verify_url, "https://api.hcaptcha.com/siteverify");
        assert_eq!(captcha.when, CaptchaWhen::UnderPressure, "the default");
        assert!((captcha.min_score - 0.5).abs() < f64::EPSILON);

        let with = |extra: &[(&'static str, &'static str)]| {
            let mut variables = vec![
                ("CAPTCHA_PROVIDER", "turnstile"),
                ("LOCAL_CAPTCHA_SECRET", KEY),
            ];
            variables.extend_from_slice(extra);
            config_with(&variables)
        };
        assert!(with(&[("CAPTCHA_VERIFY_URL", "http://127.0.0.1:8080/verify")]).is_ok());
        for (name, value) in [
            ("CAPTCHA_PROVIDER", "friendlycaptcha"),
            ("CAPTCHA_WHEN", "sometimes"),
            ("CAPTCHA_VERIFY_URL", "http://siteverify.example.com/"),
            ("CAPTCHA_VERIFY_URL", "http://127.0.0.1:1@evil.example/"),
            (
                "CAPTCHA_VERIFY_URL",
                "https://user:pw@siteverify.example.com/",
            ),
            ("CAPTCHA_MIN_SCORE", "2"),
        ] {
            assert_eq!(invalid_variable(with(&[(name, value)])), name);
        }
        assert!(matches!(
            config_with(&[("CAPTCHA_PROVIDER", "recaptcha")]),
            Err(ConfigError::Missing("CAPTCHA_SECRET_ID"))
        ));
        assert_eq!(
            invalid_variable(config_with(&[("CAPTCHA_SECRET", KEY)])),
            "CAPTCHA_SECRET",
            "the secret itself is never read from the environment"
        );
        assert_eq!(
            invalid_variable(config_with(&[("LOCAL_CAPTCHA_SECRET", KEY)])),
            "CAPTCHA_SECRET_ID",
            "a secret without a provider is a mistake"
        );
        assert_eq!(
            invalid_variable(config_with(&[("OTP_SEND_BUDGET_SHARDS", "0")])),
            "OTP_SEND_BUDGET_SHARDS"
        );
    }

    #[test]
    fn a_function_without_a_secret_has_none() {
        let config = config_with(&[]).unwrap();
        assert!(config.jwt_signing_key.is_none());
        assert!(config.otp_hmac_key.is_none());
        assert!(config.key_publication_key.is_none());
    }

    #[test]
    fn a_secret_id_and_its_local_fallback_together_are_refused() {
        for (id, fallback) in [
            ("JWT_SIGNING_SECRET_ID", "LOCAL_JWT_SIGNING_KEY"),
            ("OTP_HMAC_SECRET_ID", "LOCAL_OTP_HMAC_SECRET"),
            ("KEY_PUBLICATION_SECRET_ID", "LOCAL_KEY_PUBLICATION_SECRET"),
        ] {
            let result = config_with(&[(id, "some-secret-id"), (fallback, KEY)]);
            assert_eq!(invalid_variable(result), fallback);
        }
    }

    #[test]
    fn the_old_secret_variables_are_refused_by_name() {
        for old in [
            "JWT_SIGNING_KEY",
            "OTP_HMAC_SECRET",
            "KEY_PUBLICATION_SECRET",
        ] {
            assert_eq!(invalid_variable(config_with(&[(old, KEY)])), old);
        }
    }

    #[test]
    fn local_secrets_are_refused_on_lambda_but_not_under_cargo_lambda_watch() {
        // What cargo lambda watch (1.9.2) sets for each function it runs.
        let watch = [
            ("AWS_LAMBDA_FUNCTION_NAME", "check-phone"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9000/.rt"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "1"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096"),
            ("AWS_LAMBDA_MAX_CONCURRENCY", "1"),
        ];
        for (fallback, secret_id) in [
            ("LOCAL_JWT_SIGNING_KEY", "JWT_SIGNING_SECRET_ID"),
            ("LOCAL_OTP_HMAC_SECRET", "OTP_HMAC_SECRET_ID"),
            ("LOCAL_KEY_PUBLICATION_SECRET", "KEY_PUBLICATION_SECRET_ID"),
            ("LOCAL_CAPTCHA_SECRET", "CAPTCHA_SECRET_ID"),
        ] {
            // The captcha secret is read only with a provider.
            let provider =
                (fallback == "LOCAL_CAPTCHA_SECRET").then_some(("CAPTCHA_PROVIDER", "turnstile"));
            let local: Vec<(&str, &str)> = [(fallback, KEY)]
                .into_iter()
                .chain(provider)
                .chain(watch)
                .collect();
            assert!(
                config_with(&local).is_ok(),
                "{fallback} under cargo lambda watch"
            );
            for (signal, value) in [
                ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
                ("LAMBDA_TASK_ROOT", "/var/task"),
            ] {
                let mut lambda = local.clone();
                lambda.push((signal, value));
                match config_with(&lambda) {
                    Err(ConfigError::LocalSecretOnLambda {
                        name,
                        secret_id: id,
                        signal: found,
                    }) => {
                        assert_eq!((name, id, found), (fallback, secret_id, signal));
                    }
                    other => panic!("{fallback} with {signal}: expected a refusal, got {other:?}"),
                }
                let mut deployed = lambda.clone();
                deployed.retain(|(name, _)| *name != fallback);
                deployed.push((secret_id, "arn:aws:secretsmanager:eu-west-1:1:secret:s"));
                assert!(
                    config_with(&deployed).is_ok(),
                    "{secret_id} is what Lambda reads"
                );
            }
        }
        let error = config_with(&[
            ("LOCAL_OTP_HMAC_SECRET", KEY),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ])
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "environment variable LOCAL_OTP_HMAC_SECRET is for local runs only and is refused on \
             AWS Lambda (AWS_LAMBDA_INITIALIZATION_TYPE is set): put the secret in Secrets \
             Manager and set OTP_HMAC_SECRET_ID"
        );
    }

    #[test]
    fn short_local_secrets_are_refused() {
        let result = config_with(&[("LOCAL_OTP_HMAC_SECRET", "too-short")]);
        assert_eq!(invalid_variable(result), "LOCAL_OTP_HMAC_SECRET");
    }

    #[test]
    fn otp_length_is_4_to_10_digits_and_test_codes_must_match_it() {
        assert_eq!(config_with(&[]).unwrap().otp_length, 6);
        assert_eq!(config_with(&[("OTP_LENGTH", "4")]).unwrap().otp_length, 4);
        assert_eq!(config_with(&[("OTP_LENGTH", "10")]).unwrap().otp_length, 10);
        for bad in ["3", "11", "0", "six", "-6"] {
            assert_eq!(
                invalid_variable(config_with(&[("OTP_LENGTH", bad)])),
                "OTP_LENGTH"
            );
        }
        let numbers = ("TEST_OTP_NUMBERS", "+15555550100=1234");
        assert!(config_with(&[("OTP_LENGTH", "4"), numbers]).is_ok());
        let mismatched = config_with(&[numbers]);
        assert_eq!(invalid_variable(mismatched), "TEST_OTP_NUMBERS");
    }

    #[test]
    fn sms_providers_need_their_settings() {
        let config = config_with(&[
            ("SMS_PROVIDER", "lambda"),
            ("SMS_HOOK_FUNCTION", "send-sms"),
        ])
        .unwrap();
        assert!(
            matches!(config.sms, SmsProviderConfig::Lambda { ref function } if function == "send-sms")
        );
        assert!(matches!(
            config_with(&[("SMS_PROVIDER", "lambda")]),
            Err(ConfigError::Missing("SMS_HOOK_FUNCTION"))
        ));
        let config = config_with(&[
            ("SMS_PROVIDER", "end-user-messaging"),
            ("SMS_ORIGINATION_IDENTITY", "pool-123"),
        ])
        .unwrap();
        assert!(matches!(
            config.sms,
            SmsProviderConfig::EndUserMessaging { origination_identity: Some(ref id), configuration_set: None }
                if id == "pool-123"
        ));
        assert_eq!(
            invalid_variable(config_with(&[("SMS_PROVIDER", "twilio")])),
            "SMS_PROVIDER"
        );
    }

    #[test]
    fn the_sms_timeout_is_1_to_8_seconds_and_6_by_default() {
        assert_eq!(
            config_with(&[]).unwrap().sms_timeout,
            Duration::from_secs(6)
        );
        let one = config_with(&[("SMS_TIMEOUT_SECONDS", "1")]).unwrap();
        assert_eq!(one.sms_timeout, Duration::from_secs(1));
        let eight = config_with(&[("SMS_TIMEOUT_SECONDS", "8")]).unwrap();
        assert_eq!(eight.sms_timeout, Duration::from_secs(8));
        for bad in ["0", "9", "-1", "5s", "2.5"] {
            let result = config_with(&[("SMS_TIMEOUT_SECONDS", bad)]);
            assert_eq!(invalid_variable(result), "SMS_TIMEOUT_SECONDS", "{bad}");
        }
    }

    #[test]
    fn sms_templates_and_autofill_are_validated_at_start() {
        for (name, value) in [
            ("SMS_TEMPLATES", r#"{"en": "no code"}"#),
            ("SMS_TEMPLATES", r#"{"en": "{code} {when}"}"#),
            ("SMS_TEMPLATES_FILE", "/no/such/templates.json"),
            ("WEBOTP_DOMAIN", "https://example.com"),
            ("ANDROID_APP_HASH", "short"),
        ] {
            assert_eq!(
                invalid_variable(config_with(&[(name, value)])),
                name,
                "{value}"
            );
        }
        let both = config_with(&[("SMS_TEMPLATES", "{}"), ("SMS_TEMPLATES_FILE", "t.json")]);
        assert_eq!(invalid_variable(both), "SMS_TEMPLATES_FILE");
        let config = config_with(&[
            ("SMS_TEMPLATES", r#"{"de": "Code: {code}"}"#),
            ("WEBOTP_DOMAIN", "example.com"),
        ])
        .unwrap();
        assert_eq!(
            config.messages.languages().collect::<Vec<_>>(),
            ["de", "en", "fa"]
        );
        assert_eq!(
            config.messages.autofill.webotp_domain.as_deref(),
            Some("example.com")
        );
    }

    #[test]
    fn only_a_named_proxy_is_trusted() {
        assert_eq!(config_with(&[]).unwrap().trusted_proxy, TrustedProxy::None);
        let none = config_with(&[("TRUSTED_PROXY", "none")]).unwrap();
        assert_eq!(none.trusted_proxy, TrustedProxy::None);
        let hash = "ab".repeat(32);
        let cloudfront = config_with(&[
            ("TRUSTED_PROXY", "cloudfront"),
            ("TRUSTED_PROXY_ORIGIN_SECRET_SHA256", &hash),
        ])
        .unwrap();
        assert_eq!(
            cloudfront.trusted_proxy,
            TrustedProxy::CloudFront {
                origin_secret_sha256: [0xab; 32]
            }
        );
        assert!(matches!(
            config_with(&[("TRUSTED_PROXY", "cloudfront")]),
            Err(ConfigError::Missing("TRUSTED_PROXY_ORIGIN_SECRET_SHA256"))
        ));
        let plus = format!("+{}", "a".repeat(63));
        for bad in [
            "ab",
            "zz".repeat(32).as_str(),
            "é".repeat(32).as_str(),
            plus.as_str(),
            SHA256_OF_EMPTY,
        ] {
            let result = config_with(&[
                ("TRUSTED_PROXY", "cloudfront"),
                ("TRUSTED_PROXY_ORIGIN_SECRET_SHA256", bad),
            ]);
            assert_eq!(
                invalid_variable(result),
                "TRUSTED_PROXY_ORIGIN_SECRET_SHA256"
            );
        }
        for bad in ["CloudFront", "x-forwarded-for", "alb"] {
            let result = config_with(&[("TRUSTED_PROXY", bad)]);
            assert_eq!(invalid_variable(result), "TRUSTED_PROXY", "{bad}");
        }
    }

    #[test]
    fn the_issuer_is_configured_or_this_apis_url() {
        let configured = config_with(&[("JWT_ISSUER", "https://auth.example.com")]).unwrap();
        assert_eq!(
            configured.jwt_issuer,
            IssuerSetting::Configured("https://auth.example.com".to_owned())
        );
        // The template passes an empty parameter through.
        let default = config_with(&[("JWT_ISSUER", ""), ("AWS_REGION", "eu-west-1")]).unwrap();
        assert_eq!(
            default.jwt_issuer,
            IssuerSetting::ThisApi {
                region: "eu-west-1".to_owned()
            }
        );
    }

    #[test]
    fn scopes_are_space_separated_scope_tokens() {
        assert_eq!(config_with(&[]).unwrap().scopes, ["profile"]);
        let two = config_with(&[("SCOPES_DEFAULT", " profile  orders:read ")]).unwrap();
        assert_eq!(two.scopes, ["profile", "orders:read"]);
        for bad in ["pro\"file", "a\\b", "caf\u{e9}"] {
            let result = config_with(&[("SCOPES_DEFAULT", bad)]);
            assert_eq!(invalid_variable(result), "SCOPES_DEFAULT", "{bad}");
        }
    }

    #[test]
    fn the_algorithm_is_eddsa_unless_set_and_its_key_variables_go_with_it() {
        let default = config_with(&[("LOCAL_JWT_SIGNING_KEY", KEY)]).unwrap();
        assert_eq!(default.jwt_algorithm, JwtAlgorithm::EdDSA);
        assert!(default.jwt_signing_key.is_some());
        let kms = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let rs256 = config_with(&[
            ("JWT_ALGORITHM", "RS256"),
            ("JWT_KMS_KEY_ID", kms),
            ("LOCAL_JWT_SIGNING_KEY", KEY),
        ])
        .unwrap();
        assert_eq!(rs256.jwt_algorithm, JwtAlgorithm::Rs256);
        assert_eq!(
            rs256.jwt_asymmetric_key,
            Some(AsymmetricKeySource::Kms {
                key_id: kms.to_owned()
            })
        );
        assert!(
            rs256.jwt_signing_key.is_none(),
            "the Ed25519 key is not read"
        );
        let es256 = config_with(&[
            ("JWT_ALGORITHM", "ES256"),
            ("LOCAL_JWT_PRIVATE_KEY_FILE", ".local/jwt-es256.pem"),
            ("JWT_PREVIOUS_KMS_KEY_ID", kms),
        ])
        .unwrap();
        assert_eq!(
            es256.jwt_asymmetric_key,
            Some(AsymmetricKeySource::LocalPem(".local/jwt-es256.pem".into()))
        );
        assert_eq!(es256.jwt_previous_kms_key_id.as_deref(), Some(kms));
        for (variables, name) in [
            (vec![("JWT_ALGORITHM", "HS256")], "JWT_ALGORITHM"),
            (vec![("JWT_KMS_KEY_ID", kms)], "JWT_KMS_KEY_ID"),
            (
                vec![("LOCAL_JWT_PRIVATE_KEY_FILE", "k.pem")],
                "LOCAL_JWT_PRIVATE_KEY_FILE",
            ),
            (
                vec![
                    ("JWT_ALGORITHM", "RS256"),
                    ("JWT_KMS_KEY_ID", kms),
                    ("LOCAL_JWT_PRIVATE_KEY_FILE", "k.pem"),
                ],
                "LOCAL_JWT_PRIVATE_KEY_FILE",
            ),
        ] {
            assert_eq!(invalid_variable(config_with(&variables)), name);
        }
        let on_lambda = config_with(&[
            ("JWT_ALGORITHM", "RS256"),
            ("LOCAL_JWT_PRIVATE_KEY_FILE", "k.pem"),
            ("LAMBDA_TASK_ROOT", "/var/task"),
        ]);
        assert!(matches!(
            on_lambda,
            Err(ConfigError::LocalKeyOnLambda {
                name: "LOCAL_JWT_PRIVATE_KEY_FILE",
                signal: "LAMBDA_TASK_ROOT"
            })
        ));
    }

    #[test]
    fn refresh_tokens_get_their_own_audience() {
        let config = config_with(&[("JWT_AUDIENCE", "shop")]).unwrap();
        assert_eq!(config.jwt_refresh_audience, "shop#refresh");
        let config = config_with(&[("JWT_REFRESH_AUDIENCE", "auth-refresh")]).unwrap();
        assert_eq!(config.jwt_refresh_audience, "auth-refresh");
        let same = config_with(&[("JWT_AUDIENCE", "a"), ("JWT_REFRESH_AUDIENCE", "a")]);
        assert_eq!(invalid_variable(same), "JWT_REFRESH_AUDIENCE");
    }
}
