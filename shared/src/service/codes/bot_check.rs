//! The bot check before a code is sent (`CAPTCHA_PROVIDER`, `CAPTCHA_WHEN`).

use crate::App;
use crate::breaker::Destination;
use crate::captcha::CaptchaWhen;
use crate::error::AuthError;
use crate::http::Caller;
use crate::limits::{self, SendCounter, SendPool};
use crate::phone::PhoneNumber;
use crate::service::guard;

pub(super) const TOKEN_MISSING: &str =
    "Complete the captcha and send its token as 'captcha_token'.";

/// What the bot check before a code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotCheck {
    /// No check is configured (or the number is a test number): the full budgets apply.
    NotAsked,
    /// The provider accepted the token: the full budgets apply.
    Passed,
    /// The check is asked for only under pressure and no token came: the send may use only the
    /// unchecked half of each shared budget (`limits::unchecked_share`), counted atomically.
    Unchecked,
    /// A check was asked for and the request carried no token.
    TokenMissing,
}

impl BotCheck {
    /// Refuses a send without the token the check asked for.
    pub fn ensure_passed(self) -> Result<(), AuthError> {
        match self {
            Self::TokenMissing => Err(AuthError::CaptchaRequired(TOKEN_MISSING)),
            Self::NotAsked | Self::Passed | Self::Unchecked => Ok(()),
        }
    }

    /// The limit a send is counted against in `counter`.
    pub(crate) fn limit_of(self, counter: &SendCounter) -> u32 {
        if self == Self::Unchecked && counter.scope.is_shared_budget() {
            limits::unchecked_share(counter.limit)
        } else {
            counter.limit
        }
    }
}

/// The bot check before a code to `phone` from `pool` (`CAPTCHA_PROVIDER`, `CAPTCHA_WHEN`). A
/// token sent is verified with the provider before any counter is spent (a refused one is a
/// 400, the provider unreachable a 503). Without a token: `always` asks for one; `under-pressure`
/// lets the send use the unchecked half of the shared budgets, except that a code to a
/// registered number (a reset, login or step-up code) asks for one as soon as its reserve is
/// half used, or the SMS breaker (`enforce`) challenges or blocks its range or country (read
/// from the pressure marks and the breaker's states, which do not depend on the account, so
/// the answer tells nothing about it). Test numbers get no SMS and no check.
pub async fn check_bot(
    app: &App,
    phone: &PhoneNumber,
    pool: SendPool,
    token: Option<&str>,
    caller: &Caller,
) -> Result<BotCheck, AuthError> {
    let Some(verifier) = &app.captcha else {
        return Ok(BotCheck::NotAsked);
    };
    if app.config.test_otp_numbers.contains_key(phone.as_str()) {
        return Ok(BotCheck::NotAsked);
    }
    if let Some(token) = token.filter(|token| !token.trim().is_empty()) {
        if !verifier.verify(token, &caller.ip).await? {
            return Err(AuthError::CaptchaRequired(
                "The captcha was not accepted. Solve it again and send the new token.",
            ));
        }
        return Ok(BotCheck::Passed);
    }
    if verifier.when == CaptchaWhen::Always {
        return Ok(BotCheck::TokenMissing);
    }
    if pool != SendPool::NewNumbers {
        let now = app.clock.now();
        let budgets = limits::budget_counters(&app.config.limits, pool, phone, now, |_| 0);
        let half = limits::PRESSURE_LEVELS[0];
        let breaker = &app.config.sms_breaker;
        // Challenged or blocked, the number's destinations ask for the check too (blocked ones
        // refuse only new numbers: a registered number keeps its own caps).
        let challenged: Vec<(Destination, u32)> = if breaker.enforces() {
            Destination::of(phone)
                .into_iter()
                .map(|destination| (destination, guard::random_shard(breaker.shards)))
                .collect()
        } else {
            Vec::new()
        };
        if app
            .store
            .attempts
            .any_under_pressure(&budgets, half, (&challenged, now))
            .await?
        {
            return Ok(BotCheck::TokenMissing);
        }
    }
    Ok(BotCheck::Unchecked)
}
