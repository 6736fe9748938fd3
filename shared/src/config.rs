//! Typed configuration, read once from the environment at cold start: each part parses its own
//! settings through `settings::Env` (`Limits::from_env`, `SmsProviderConfig::from_env`,
//! `Messages::from_env`, `CaptchaConfig::from_env`, `TrustedProxy::from_env`, the secrets'
//! `SecretSource::from_env`), and `Config` composes them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use phonenumber::country;

pub use crate::breaker::Breaker;
pub use crate::captcha::CaptchaConfig;
use crate::cognito::CognitoMigrationConfig;
use crate::events::EventSettings;
use crate::http::TrustedProxy;
pub use crate::limits::Limits;
use crate::messages::Messages;
use crate::otp::OTP_LENGTHS;
use crate::phone::PhoneNumber;
use crate::secrets::{
    JWT_SIGNING_KEY_VARIABLES, KEY_PUBLICATION_KEY_VARIABLES, OTP_HMAC_KEY_VARIABLES, on_lambda,
};
pub use crate::secrets::{SecretSource, validate_secret};
use crate::settings::{self, Env};
use crate::sms;
pub use crate::sms::SmsProviderConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// A read of a variable that `settings::SETTINGS` does not list (a mistake in the code).
    #[error("environment variable {0} is not in the settings table (shared/src/settings.rs)")]
    Unlisted(&'static str),
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

#[derive(Debug, Clone)]
pub struct Tables {
    pub users: String,
    pub otps: String,
    pub registration_tokens: String,
    pub attempts: String,
    pub sessions: String,
    /// The public keys signers publish for verifiers (`SigningKeysTable`).
    pub signing_keys: String,
    /// The outbox of domain events (`EventsTable`).
    pub events: String,
}

impl Tables {
    fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            users: env.required("USERS_TABLE")?,
            otps: env.required("OTPS_TABLE")?,
            registration_tokens: env.required("REGISTRATION_TOKENS_TABLE")?,
            attempts: env.required("ATTEMPTS_TABLE")?,
            sessions: env.required("SESSIONS_TABLE")?,
            signing_keys: env.required("SIGNING_KEYS_TABLE")?,
            events: env.required("EVENTS_TABLE")?,
        })
    }

    /// Each table's environment variable and name, as the template passes them.
    pub fn variables(&self) -> [(&'static str, &str); 7] {
        [
            ("USERS_TABLE", &self.users),
            ("OTPS_TABLE", &self.otps),
            ("REGISTRATION_TOKENS_TABLE", &self.registration_tokens),
            ("ATTEMPTS_TABLE", &self.attempts),
            ("SESSIONS_TABLE", &self.sessions),
            ("SIGNING_KEYS_TABLE", &self.signing_keys),
            ("EVENTS_TABLE", &self.events),
        ]
    }
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
    /// The operator's function that adds claims to each access token (`TOKEN_HOOK_FUNCTION`:
    /// name or ARN), if any.
    pub token_hook_function: Option<String>,
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
    /// The SMS circuit breaker (`SMS_BREAKER_*`).
    pub sms_breaker: Breaker,
    /// The proxy whose header names the client, for the per-network limits (`TRUSTED_PROXY`).
    pub trusted_proxy: TrustedProxy,
    /// What the domain events carry.
    pub events: EventSettings,
    /// The Cognito pool whose users are moved on their first login, if any.
    pub cognito_migration: Option<CognitoMigrationConfig>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(settings::process_variable)
    }

    /// Builds the config from any variable source (tests pass a map): each part parses its own
    /// settings from the one reader.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(&lookup);
        let default_region = env.parse("DEFAULT_REGION")?;
        let otp_length = env.bounded("OTP_LENGTH", OTP_LENGTHS, " digits")?;
        let jwt_algorithm = jwt_algorithm(&env)?;
        let limits = Limits::from_env(&env)?;
        let jwt_asymmetric_key = asymmetric_key(&env, jwt_algorithm)?;
        let (jwt_audience, jwt_refresh_audience) = audiences(&env)?;
        Ok(Self {
            tables: Tables::from_env(&env)?,
            default_region,
            otp_ttl_seconds: env.parse("OTP_TTL_SECONDS")?,
            otp_resend_seconds: env.parse("OTP_RESEND_SECONDS")?,
            otp_max_attempts: env.parse("OTP_MAX_ATTEMPTS")?,
            registration_token_ttl_seconds: env.parse("REGISTRATION_TOKEN_TTL_SECONDS")?,
            access_token_ttl_seconds: env.parse("ACCESS_TOKEN_TTL_SECONDS")?,
            refresh_token_ttl_seconds: env.parse("REFRESH_TOKEN_TTL_SECONDS")?,
            session_max_seconds: env.parse("SESSION_MAX_SECONDS")?,
            refresh_reuse_grace_seconds: env.parse("REFRESH_REUSE_GRACE_SECONDS")?,
            recent_login_seconds: env.parse("RECENT_LOGIN_SECONDS")?,
            service_name: env.text("SERVICE_NAME")?,
            jwt_issuer: issuer_setting(&env)?,
            scopes: scopes(&env)?,
            token_hook_function: env
                .get("TOKEN_HOOK_FUNCTION")?
                .map(|function| function.trim().to_owned()),
            jwt_audience,
            jwt_refresh_audience,
            jwt_algorithm,
            jwt_asymmetric_key: jwt_asymmetric_key.clone(),
            jwt_previous_kms_key_id: env
                .get("JWT_PREVIOUS_KMS_KEY_ID")?
                .map(|id| id.trim().to_owned()),
            jwt_signing_key: held_signing_key(&env, jwt_algorithm, jwt_asymmetric_key.as_ref())?,
            jwt_previous_public_key: env.get("JWT_PREVIOUS_PUBLIC_KEY")?,
            key_publication_key: SecretSource::from_env(&env, &KEY_PUBLICATION_KEY_VARIABLES)?,
            otp_hmac_key: SecretSource::from_env(&env, &OTP_HMAC_KEY_VARIABLES)?,
            sms_breaker: Breaker::from_env(&env, limits.otp_send_budget_shards)?,
            limits,
            allowed_country_codes: parse_country_codes(
                env.get("ALLOWED_COUNTRY_CODES")?.as_deref(),
            )?,
            sms: SmsProviderConfig::from_env(&env)?,
            sms_timeout: sms::timeout_from_env(&env)?,
            otp_length,
            messages: Messages::from_env(&env)?,
            test_otp_numbers: parse_test_numbers(
                env.get("TEST_OTP_NUMBERS")?.as_deref().unwrap_or(""),
                default_region,
                otp_length,
            )?,
            captcha: CaptchaConfig::from_env(&env)?,
            trusted_proxy: TrustedProxy::from_env(&env)?,
            events: EventSettings::from_env(&env)?,
            cognito_migration: CognitoMigrationConfig::from_env(&env)?,
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

/// `JWT_AUDIENCE` and the refresh audience (`JWT_REFRESH_AUDIENCE`, by default the audience
/// with `#refresh`), which must differ so that no verifier takes one token for the other.
fn audiences(env: &Env<'_>) -> Result<(String, String), ConfigError> {
    let audience = env.text("JWT_AUDIENCE")?;
    let refresh_audience = env
        .get("JWT_REFRESH_AUDIENCE")?
        .unwrap_or_else(|| format!("{audience}#refresh"));
    if refresh_audience == audience {
        return Err(ConfigError::Invalid {
            name: "JWT_REFRESH_AUDIENCE",
            reason: "must differ from JWT_AUDIENCE".to_owned(),
        });
    }
    Ok((audience, refresh_audience))
}

/// `JWT_ALGORITHM`: RS256, ES256 or EdDSA (the default when unset).
fn jwt_algorithm(env: &Env<'_>) -> Result<JwtAlgorithm, ConfigError> {
    env.choice(
        "JWT_ALGORITHM",
        &[
            ("RS256", JwtAlgorithm::Rs256),
            ("ES256", JwtAlgorithm::Es256),
            ("EdDSA", JwtAlgorithm::EdDSA),
        ],
    )
}

/// The secret of the private key the signing functions hold: the Ed25519 key for EdDSA (or its
/// local fallback), or an RS256/ES256 PEM key kept out of KMS. For RS256/ES256 only the secret
/// id is read (local runs use `LOCAL_JWT_PRIVATE_KEY_FILE`, and the Ed25519 fallback of a local
/// environment is ignored), and it is refused beside a KMS key or key file: one key signs.
fn held_signing_key(
    env: &Env<'_>,
    algorithm: JwtAlgorithm,
    asymmetric: Option<&AsymmetricKeySource>,
) -> Result<Option<SecretSource>, ConfigError> {
    let variable = JWT_SIGNING_KEY_VARIABLES.secret_id;
    if algorithm == JwtAlgorithm::EdDSA {
        return SecretSource::from_env(env, &JWT_SIGNING_KEY_VARIABLES);
    }
    let Some(secret_id) = env.get(variable)? else {
        return Ok(None);
    };
    if let Some(other) = asymmetric {
        let other = match other {
            AsymmetricKeySource::Kms { .. } => "JWT_KMS_KEY_ID",
            AsymmetricKeySource::LocalPem(_) => "LOCAL_JWT_PRIVATE_KEY_FILE",
        };
        return Err(ConfigError::Invalid {
            name: variable,
            reason: format!("names a key in a secret, and {other} another: one key signs"),
        });
    }
    Ok(Some(SecretSource::SecretsManager {
        variable,
        secret_id,
    }))
}

/// The RS256/ES256 key: `JWT_KMS_KEY_ID`, or for local runs `LOCAL_JWT_PRIVATE_KEY_FILE`
/// (refused on Lambda); neither is read for EdDSA, and either set then is a mistake.
fn asymmetric_key(
    env: &Env<'_>,
    algorithm: JwtAlgorithm,
) -> Result<Option<AsymmetricKeySource>, ConfigError> {
    const KMS: &str = "JWT_KMS_KEY_ID";
    const LOCAL: &str = "LOCAL_JWT_PRIVATE_KEY_FILE";
    let kms = env.get(KMS)?.map(|id| id.trim().to_owned());
    let local = env.get(LOCAL)?.map(|path| PathBuf::from(path.trim()));
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
        (None, Some(path)) => match on_lambda(env)? {
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

fn issuer_setting(env: &Env<'_>) -> Result<IssuerSetting, ConfigError> {
    Ok(match env.get("JWT_ISSUER")? {
        Some(issuer) => IssuerSetting::Configured(issuer.trim().to_owned()),
        // Lambda always sets AWS_REGION; the fallback only serves local runs without it.
        None => IssuerSetting::ThisApi {
            region: env.text("AWS_REGION")?,
        },
    })
}

/// `SCOPES_DEFAULT`: space-separated RFC 6749 scope tokens (printable ASCII but `"` and `\`).
fn scopes(env: &Env<'_>) -> Result<Vec<String>, ConfigError> {
    let raw = env.text("SCOPES_DEFAULT")?;
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
    use crate::captcha::{CaptchaProvider, CaptchaWhen};
    use crate::http::SHA256_OF_EMPTY;

    const KEY: &str = "a-local-secret-of-at-least-32-bytes-0123";

    fn config_with(variables: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env: HashMap<String, String> = settings::table_variables()
            .map(|name| (name.to_owned(), format!("t-{name}")))
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
        // RS256 under a key in a secret, which only the signing functions read.
        let secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jwt-key-AbCdEf";
        let held = config_with(&[
            ("JWT_ALGORITHM", "RS256"),
            ("JWT_SIGNING_SECRET_ID", secret),
        ])
        .unwrap();
        assert_eq!(held.jwt_asymmetric_key, None);
        assert!(matches!(
            held.jwt_signing_key,
            Some(SecretSource::SecretsManager { ref secret_id, .. }) if secret_id == secret
        ));
        for (variables, name) in [
            (
                vec![
                    ("JWT_ALGORITHM", "RS256"),
                    ("JWT_SIGNING_SECRET_ID", secret),
                    ("JWT_KMS_KEY_ID", kms),
                ],
                "JWT_SIGNING_SECRET_ID",
            ),
            (
                vec![
                    ("JWT_ALGORITHM", "ES256"),
                    ("JWT_SIGNING_SECRET_ID", secret),
                    ("LOCAL_JWT_PRIVATE_KEY_FILE", "k.pem"),
                ],
                "JWT_SIGNING_SECRET_ID",
            ),
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
