//! The abuse limits: which counters exist, how they are keyed, and what they allow.
//!
//! - Failed verifies and failed logins are counted per (phone, client IP) pair; at
//!   `max_failures_per_pair` the pair is blocked for `block_seconds`. Keying on the pair means a
//!   stranger cannot lock the owner out from the owner's own network.
//! - OTP sends are counted per phone and per client IP in fixed windows.

use aws_sdk_dynamodb::types::TransactWriteItem;

use crate::config::Limits;
use crate::error::AuthError;
use crate::phone::PhoneNumber;
use crate::store::attempts::{AttemptsTable, Failures};

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

    /// Refuses a blocked pair with the time left; otherwise returns the failures so far.
    pub async fn ensure_not_blocked(&self, now: u64) -> Result<Failures, AuthError> {
        let failures = self
            .attempts
            .failures(&self.key, now)
            .await?
            .unwrap_or_default();
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

/// What a send counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendScope {
    Phone,
    ClientIp,
}

/// A send counter update and the wait to report when it refuses.
pub struct SendCount {
    pub scope: SendScope,
    pub update: TransactWriteItem,
    pub retry_after: u64,
}

fn send_window(limits: &Limits, now: u64) -> (u64, u64) {
    let window = limits.otp_send_window_seconds.max(1);
    let index = now / window;
    (index, (index + 1) * window)
}

fn send_count(
    attempts: &AttemptsTable,
    limits: &Limits,
    scope: SendScope,
    subject: &str,
    now: u64,
) -> Result<SendCount, AuthError> {
    let (window, window_end) = send_window(limits, now);
    let (name, limit) = match scope {
        SendScope::Phone => ("phone", limits.otp_sends_per_phone),
        SendScope::ClientIp => ("ip", limits.otp_sends_per_ip),
    };
    Ok(SendCount {
        scope,
        update: attempts.count_send(
            &format!("send#{name}#{subject}#{window}"),
            limit,
            window_end,
        )?,
        retry_after: window_end - now,
    })
}

/// The per-phone and per-IP send counters one OTP send must pass, for the transaction that
/// stores the code: either every counter accepts and the code is stored, or nothing changes.
pub fn send_counts(
    attempts: &AttemptsTable,
    limits: &Limits,
    phone: &PhoneNumber,
    ip: &str,
    now: u64,
) -> Result<Vec<SendCount>, AuthError> {
    Ok(vec![
        send_count(attempts, limits, SendScope::Phone, phone.as_str(), now)?,
        send_count(attempts, limits, SendScope::ClientIp, ip, now)?,
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
