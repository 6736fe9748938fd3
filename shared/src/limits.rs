//! The abuse limits: which counters exist, how they are keyed, and what they allow.
//!
//! - Failed verifies and failed logins are counted per (phone, client IP) pair; at
//!   `max_failures_per_pair` the pair is blocked for `block_seconds`. Keying on the pair means a
//!   stranger cannot lock the owner out from the owner's own network.
//! - OTP sends are counted per phone (hour and day), per client IP, per country calling code and
//!   overall, in fixed windows; SMS only go to mobile numbers of allowed countries.

use aws_sdk_dynamodb::types::TransactWriteItem;

use crate::config::{Config, Limits};
use crate::error::AuthError;
use crate::phone::PhoneNumber;
use crate::store::attempts::{AttemptsTable, Failures};
use crate::store::{Item, ItemKey};

#[derive(Debug, Clone, Copy)]
pub enum FailureKind {
    Verify,
    Login,
}

/// The failure counter of one (phone, IP) pair for one kind of attempt.
pub struct FailureCounter<'a> {
    attempts: &'a AttemptsTable,
    limits: &'a Limits,
    key: String,
}

impl<'a> FailureCounter<'a> {
    pub fn new(
        attempts: &'a AttemptsTable,
        limits: &'a Limits,
        kind: FailureKind,
        phone: &PhoneNumber,
        ip: &str,
    ) -> Self {
        let kind = match kind {
            FailureKind::Verify => "verify",
            FailureKind::Login => "login",
        };
        Self {
            attempts,
            limits,
            key: format!("fail#{kind}#{phone}#{ip}"),
        }
    }

    /// Where the pair's record is, for a batch read.
    pub fn item_key(&self) -> ItemKey {
        self.attempts.item_key(&self.key)
    }

    /// Refuses a blocked pair with the time left; otherwise returns the failures so far.
    /// `item` is the pair's record as read with `item_key`.
    pub fn ensure_not_blocked(&self, item: Option<Item>, now: u64) -> Result<Failures, AuthError> {
        let failures = AttemptsTable::live_failures(item, now).unwrap_or_default();
        match failures.blocked_until {
            Some(until) if until > now => Err(AuthError::Blocked {
                retry_after: until - now,
            }),
            _ => Ok(failures),
        }
    }

    /// Counts a failure; returns how many more the pair may make before it is blocked.
    pub async fn record(&self, now: u64) -> Result<u32, AuthError> {
        let limits = self.limits;
        let failures = self
            .attempts
            .record_failure(
                &self.key,
                now,
                limits.block_seconds,
                limits.max_failures_per_pair,
                limits.block_seconds,
            )
            .await?;
        Ok(limits.max_failures_per_pair.saturating_sub(failures.count))
    }

    /// Forgets the failures after a success (skipped when there were none).
    pub async fn clear(&self, failures: Failures) -> Result<(), AuthError> {
        if failures.count > 0 {
            self.attempts.clear(&self.key).await?;
        }
        Ok(())
    }
}

/// The per-account back-off on failed password checks, across all IPs: after
/// `account_backoff_after` consecutive failures each further one doubles the wait (from
/// `account_backoff_base_seconds`, capped at `account_backoff_max_seconds`); at
/// `account_max_failures` the account is locked until a password reset. A success resets it.
///
/// Unlike a hard lock, a back-off cannot be aimed at a victim for long: the owner can log in as
/// soon as the current wait (at most an hour) passes, from any network, while an attacker gets
/// at most one guess per wait. Attempts refused during a wait are not evaluated nor counted.
pub struct AccountBackoff<'a> {
    attempts: &'a AttemptsTable,
    limits: &'a Limits,
    key: String,
}

impl<'a> AccountBackoff<'a> {
    pub fn new(attempts: &'a AttemptsTable, limits: &'a Limits, phone: &PhoneNumber) -> Self {
        Self {
            attempts,
            limits,
            key: format!("acct#{phone}"),
        }
    }

    /// The wait after `failures` consecutive failures, if any.
    pub fn wait_after(limits: &Limits, failures: u32) -> Option<u64> {
        let doublings = failures.checked_sub(limits.account_backoff_after)?;
        let factor = 1u64.checked_shl(doublings).unwrap_or(u64::MAX);
        Some(
            limits
                .account_backoff_base_seconds
                .saturating_mul(factor)
                .min(limits.account_backoff_max_seconds),
        )
    }

    /// Where the account's record is, for a batch read.
    pub fn item_key(&self) -> ItemKey {
        self.attempts.item_key(&self.key)
    }

    /// Refuses a locked account (403) or one inside its back-off (429); otherwise returns the
    /// failures so far. `item` is the account's record as read with `item_key`.
    pub fn ensure_allowed(&self, item: Option<Item>, now: u64) -> Result<u32, AuthError> {
        let Some(record) = AttemptsTable::live_account_failures(item, now) else {
            return Ok(0);
        };
        if record.count >= self.limits.account_max_failures {
            return Err(AuthError::AccountLocked {
                retry_after: record.expires_at.saturating_sub(now),
            });
        }
        if let Some(wait) = Self::wait_after(self.limits, record.count) {
            let allowed_at = record.last_failure_at + wait;
            if allowed_at > now {
                return Err(AuthError::BackingOff {
                    retry_after: allowed_at - now,
                });
            }
        }
        Ok(record.count)
    }

    pub async fn record(&self, now: u64) -> Result<u32, AuthError> {
        self.attempts
            .record_account_failure(&self.key, now, self.limits.account_failure_memory_seconds)
            .await
    }

    /// Forgets the failures (after a success, or a password reset).
    pub async fn clear(&self) -> Result<(), AuthError> {
        self.attempts.clear(&self.key).await
    }
}

/// What guards a password check: the (phone, IP) pair's lock-out and the account's back-off.
pub struct PasswordGuard<'a> {
    pair: FailureCounter<'a>,
    account: AccountBackoff<'a>,
}

/// The failures seen before a password check, to clear after a success.
pub struct PriorFailures {
    pair: Failures,
    account: u32,
}

impl<'a> PasswordGuard<'a> {
    pub fn new(pair: FailureCounter<'a>, account: AccountBackoff<'a>) -> Self {
        Self { pair, account }
    }

    /// Where the two records are, for a batch read.
    pub fn item_keys(&self) -> [ItemKey; 2] {
        [self.pair.item_key(), self.account.item_key()]
    }

    /// Refuses a blocked pair or an account in back-off; `pair` and `account` are the records
    /// as read with `item_keys`.
    pub fn ensure_allowed(
        &self,
        pair: Option<Item>,
        account: Option<Item>,
        now: u64,
    ) -> Result<PriorFailures, AuthError> {
        let pair = self.pair.ensure_not_blocked(pair, now)?;
        let account = self.account.ensure_allowed(account, now)?;
        Ok(PriorFailures { pair, account })
    }

    /// Counts a wrong password against both; true when this failure blocked the pair or put
    /// the account into back-off (a lock-out, for the audit log).
    pub async fn record_failure(&self, now: u64) -> Result<bool, AuthError> {
        let left_for_pair = self.pair.record(now).await?;
        let account_failures = self.account.record(now).await?;
        Ok(left_for_pair == 0 || account_failures >= self.account.limits.account_backoff_after)
    }

    /// Forgets earlier failures after a right password; best effort (a failure here must not
    /// fail the login).
    pub async fn record_success(&self, prior: PriorFailures) {
        let cleared = async {
            self.pair.clear(prior.pair).await?;
            if prior.account > 0 {
                self.account.clear().await?;
            }
            Ok::<(), AuthError>(())
        };
        if let Err(error) = cleared.await {
            tracing::warn!(%error, "could not clear failure counters");
        }
    }
}

/// What a send counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendScope {
    /// One phone, per window (an hour by default).
    Phone,
    /// One phone, per day.
    PhoneDaily,
    /// One client IP, per window.
    ClientIp,
    /// One country calling code, per day.
    Country,
    /// The whole service, per window.
    Global,
}

/// A send counter update and the wait to report when it refuses.
pub struct SendCount {
    pub scope: SendScope,
    pub update: TransactWriteItem,
    pub retry_after: u64,
}

const DAY_SECONDS: u64 = 86_400;

fn send_count(
    attempts: &AttemptsTable,
    limits: &Limits,
    scope: SendScope,
    subject: &str,
    now: u64,
) -> Result<SendCount, AuthError> {
    let (name, limit, window) = match scope {
        SendScope::Phone => (
            "phone",
            limits.otp_sends_per_phone,
            limits.otp_send_window_seconds,
        ),
        SendScope::PhoneDaily => ("phone-day", limits.otp_sends_per_phone_per_day, DAY_SECONDS),
        SendScope::ClientIp => (
            "ip",
            limits.otp_sends_per_ip,
            limits.otp_send_window_seconds,
        ),
        SendScope::Country => ("country", limits.otp_sends_per_country_per_day, DAY_SECONDS),
        SendScope::Global => (
            "global",
            limits.otp_sends_global_per_window,
            limits.otp_send_window_seconds,
        ),
    };
    // Fixed windows named in the key: a new window is a new item, so no reset is ever needed.
    let window = window.max(1);
    let index = now / window;
    let window_end = (index + 1) * window;
    Ok(SendCount {
        scope,
        update: attempts.count_send(
            &format!("send#{name}#{subject}#{index}"),
            limit,
            window_end,
        )?,
        retry_after: window_end - now,
    })
}

/// Every send counter one OTP send must pass, for the transaction that stores the code: either
/// every counter accepts and the code is stored, or nothing changes. Together they bound what
/// SMS pumping can cost: per number, per client, per destination country and overall.
pub fn send_counts(
    attempts: &AttemptsTable,
    limits: &Limits,
    phone: &PhoneNumber,
    ip: &str,
    now: u64,
) -> Result<Vec<SendCount>, AuthError> {
    let (country_code, _) = phone.sms_profile();
    Ok(vec![
        send_count(attempts, limits, SendScope::Phone, phone.as_str(), now)?,
        send_count(attempts, limits, SendScope::PhoneDaily, phone.as_str(), now)?,
        send_count(attempts, limits, SendScope::ClientIp, ip, now)?,
        send_count(
            attempts,
            limits,
            SendScope::Country,
            &country_code.to_string(),
            now,
        )?,
        send_count(attempts, limits, SendScope::Global, "all", now)?,
    ])
}

/// The per-IP send counter alone, for requests that must count like a send without sending
/// (a password reset for a number without an account, which must look the same).
pub fn client_ip_send_count(
    attempts: &AttemptsTable,
    limits: &Limits,
    ip: &str,
    now: u64,
) -> Result<SendCount, AuthError> {
    send_count(attempts, limits, SendScope::ClientIp, ip, now)
}

/// Refuses numbers SMS must not go to: outside the allowed country codes, or of a kind that
/// cannot receive SMS or costs the sender extra (premium rate, shared cost, fixed lines). The
/// configured test numbers are exempt: they get no SMS.
pub fn ensure_sms_allowed(config: &Config, phone: &PhoneNumber) -> Result<(), AuthError> {
    if config.test_otp_numbers.contains_key(phone.as_str()) {
        return Ok(());
    }
    let (country_code, mobile) = phone.sms_profile();
    if !config.sms_allowed_to(country_code) {
        return Err(AuthError::InvalidRequest(
            "SMS codes are not available for this country.".into(),
        ));
    }
    if !mobile {
        return Err(AuthError::InvalidRequest(
            "This number cannot receive SMS codes; use a mobile number.".into(),
        ));
    }
    Ok(())
}
