//! The bot check before a code is sent: a token the front end got from the captcha provider,
//! verified server-side with the provider's siteverify call. SMS pumping is paid per message,
//! so the check comes before any send budget is spent.

use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::CaptchaConfig;
use crate::error::AuthError;

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
