//! The bot check before a code is sent: a token the front end got from the captcha provider,
//! verified server-side with the provider's siteverify call. SMS pumping is paid per message,
//! so the check comes before any send budget is spent.

use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::{ConfigError, SecretSource};
use crate::error::AuthError;
use crate::secrets::SecretVariables;
use crate::settings::Env;

/// How long the provider may take: a slow provider must not hold the request (503 instead).
const VERIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// Longer tokens are not tokens (Turnstile's are at most 2,048 characters).
pub const MAX_TOKEN_CHARS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptchaProvider {
    Turnstile,
    Hcaptcha,
    Recaptcha,
}

impl CaptchaProvider {
    /// The provider's documented siteverify endpoint.
    pub fn verify_url(self) -> &'static str {
        match self {
            Self::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/siteverify",
            Self::Hcaptcha => "https://api.hcaptcha.com/siteverify",
            Self::Recaptcha => "https://www.google.com/recaptcha/api/siteverify",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Turnstile => "turnstile",
            Self::Hcaptcha => "hcaptcha",
            Self::Recaptcha => "recaptcha",
        }
    }
}

impl FromStr for CaptchaProvider {
    type Err = ();

    fn from_str(name: &str) -> Result<Self, ()> {
        match name {
            "turnstile" => Ok(Self::Turnstile),
            "hcaptcha" => Ok(Self::Hcaptcha),
            "recaptcha" => Ok(Self::Recaptcha),
            _ => Err(()),
        }
    }
}

/// When the token is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptchaWhen {
    /// Before every code.
    Always,
    /// Only while a budget the code would draw on is more than half used in its window, so
    /// ordinary users never see the check.
    UnderPressure,
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

const CAPTCHA_SECRET_VARIABLES: SecretVariables = SecretVariables {
    secret_id: "CAPTCHA_SECRET_ID",
    local_fallback: "LOCAL_CAPTCHA_SECRET",
    // Never read: refused, so that the secret is not put in the environment by mistake.
    retired: "CAPTCHA_SECRET",
};

impl CaptchaConfig {
    /// `CAPTCHA_PROVIDER` and its settings; none when unset. The provider's secret must be
    /// configured wherever the provider is (the functions that send codes).
    pub fn from_env(env: &Env<'_>) -> Result<Option<Self>, ConfigError> {
        let secret = SecretSource::from_env(env, &CAPTCHA_SECRET_VARIABLES)?;
        let Some(raw) = env.get("CAPTCHA_PROVIDER")? else {
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
        let when = env.choice(
            "CAPTCHA_WHEN",
            &[
                ("always", CaptchaWhen::Always),
                ("under-pressure", CaptchaWhen::UnderPressure),
            ],
        )?;
        let verify_url = env.get("CAPTCHA_VERIFY_URL")?.map_or_else(
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
        let min_score: f64 = env.parse("CAPTCHA_MIN_SCORE")?;
        if !(0.0..=1.0).contains(&min_score) {
            return Err(ConfigError::Invalid {
                name: "CAPTCHA_MIN_SCORE",
                reason: "must be between 0 and 1".to_owned(),
            });
        }
        let secret = secret.ok_or(ConfigError::Missing("CAPTCHA_SECRET_ID"))?;
        Ok(Some(Self {
            provider,
            verify_url,
            when,
            min_score,
            secret,
        }))
    }
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

/// The provider's answer (the fields all three share, and reCAPTCHA v3's score).
#[derive(Deserialize)]
struct SiteVerify {
    success: bool,
    #[serde(default)]
    score: Option<f64>,
    #[serde(rename = "error-codes", default)]
    error_codes: Vec<String>,
}

/// Error codes that mean the service is misconfigured or the provider failed (not that the
/// user failed the check).
const PROVIDER_FAULTS: [&str; 4] = [
    "missing-input-secret",
    "invalid-input-secret",
    "sitekey-secret-mismatch",
    "internal-error",
];

/// Verifies tokens with the configured provider.
pub struct CaptchaVerifier {
    client: reqwest::Client,
    provider: CaptchaProvider,
    verify_url: String,
    min_score: f64,
    secret: SecretString,
    pub when: CaptchaWhen,
}

impl CaptchaVerifier {
    pub fn new(config: &CaptchaConfig, secret: SecretString) -> Result<Self, AuthError> {
        // reqwest's rustls uses the process's crypto provider: the one the AWS SDK uses too.
        // Installing fails only when one is installed already, which is as good.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(VERIFY_TIMEOUT)
            .connect_timeout(VERIFY_TIMEOUT)
            // The secret goes only where it was configured to go.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(AuthError::internal)?;
        Ok(Self {
            client,
            provider: config.provider,
            verify_url: config.verify_url.clone(),
            min_score: config.min_score,
            secret,
            when: config.when,
        })
    }

    /// Whether the provider accepts `token` (solved by a client at `remote_ip`). The provider
    /// unreachable, slow or refusing the service's secret is an error (503), not a refusal.
    pub async fn verify(&self, token: &str, remote_ip: &str) -> Result<bool, AuthError> {
        let form = [
            ("secret", self.secret.expose_secret()),
            ("response", token),
            ("remoteip", remote_ip),
        ];
        let response = self
            .client
            .post(&self.verify_url)
            .form(&form)
            .send()
            .await
            // Without the URL: reqwest's errors name it, and the form is never in them.
            .map_err(|error| unreachable(self.provider, error.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unreachable(self.provider, format!("answered {status}")));
        }
        let body = response
            .bytes()
            .await
            .map_err(|error| unreachable(self.provider, error.without_url()))?;
        let answer: SiteVerify = serde_json::from_slice(&body)
            .map_err(|error| unreachable(self.provider, format!("unreadable answer: {error}")))?;
        if let Some(code) = answer
            .error_codes
            .iter()
            .find(|code| PROVIDER_FAULTS.contains(&code.as_str()))
        {
            return Err(unreachable(self.provider, format!("answered {code}")));
        }
        let passed = answer.success && answer.score.is_none_or(|score| score >= self.min_score);
        if !passed {
            tracing::info!(
                provider = self.provider.name(),
                error_codes = ?answer.error_codes,
                score = answer.score,
                "captcha refused"
            );
        }
        Ok(passed)
    }
}

fn unreachable(provider: CaptchaProvider, cause: impl std::fmt::Display) -> AuthError {
    AuthError::unavailable(format!("captcha provider {}: {cause}", provider.name()))
}
