//! One-time codes: sending them within the limits, and checking them under the lock-out rules.

use crate::App;
use crate::audit::{self, AuditEvent, Caller, Subject};
use crate::error::AuthError;
use crate::limits::{self, FailureCounter, FailureKind, SendScope};
use crate::otp::{OtpCode, OtpPurpose};
use crate::phone::PhoneNumber;
use crate::store::attempts::Failures;
use crate::store::otps::{NewOtp, OtpsTable, WrongAttempt, resend_wait};
use crate::store::{self, TransactionError, now};

/// Why a code was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefusal {
    /// The phone's previous code is inside its resend cooldown.
    Cooldown { retry_after: u64 },
    /// A send cap (per phone or per client IP) is used up for this window.
    Cap { scope: SendScope, retry_after: u64 },
}

impl From<SendRefusal> for AuthError {
    fn from(refusal: SendRefusal) -> Self {
        match refusal {
            SendRefusal::Cooldown { retry_after } => AuthError::ResendTooSoon { retry_after },
            SendRefusal::Cap { retry_after, .. } => AuthError::RateLimited { retry_after },
        }
    }
}

/// Stores a fresh code for `phone` and sends it by SMS. The code, the resend cooldown and the
/// send counters are written in one transaction, so a refused send changes nothing.
pub async fn send_otp(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
    purpose: OtpPurpose,
) -> Result<Result<(), SendRefusal>, AuthError> {
    let config = &app.config;
    limits::ensure_sms_allowed(config, phone)?;
    let now = now();
    let fixed_code = config.test_otp_numbers.get(phone.as_str());
    let code = fixed_code.map_or_else(OtpCode::generate, |code| OtpCode::from_configured(code));

    let counts = limits::send_counts(&app.attempts, &config.limits, phone, &caller.ip, now)?;
    let mut items = vec![app.otps.replace(NewOtp {
        phone,
        code_hash: app.otp_hasher()?.hash(phone, &code),
        purpose,
        now,
        expires_at: now + config.otp_ttl_seconds,
        resend_at: now + config.otp_resend_seconds,
    })?];
    let caps: Vec<(SendScope, u64)> = counts.iter().map(|c| (c.scope, c.retry_after)).collect();
    items.extend(counts.into_iter().map(|count| count.update));
    match store::transact(&app.dynamodb, items).await {
        Ok(()) => {}
        Err(TransactionError::ConditionFailed { index: 0, old_item }) => {
            let retry_after = resend_wait(old_item.as_ref(), now);
            return Ok(Err(SendRefusal::Cooldown { retry_after }));
        }
        Err(TransactionError::ConditionFailed { index, .. }) => {
            let (scope, retry_after) = caps[index - 1];
            return Ok(Err(SendRefusal::Cap { scope, retry_after }));
        }
        Err(TransactionError::Storage(error)) => return Err(error),
    }

    let sent = Subject {
        phone: Some(phone),
        detail: Some(purpose.as_str()),
        ..Subject::default()
    };
    if fixed_code.is_some() {
        // A configured test number: the code is stored, no SMS is sent.
        audit::record(AuditEvent::OtpSent, caller, sent);
        return Ok(Ok(()));
    }
    let minutes = config.otp_ttl_seconds.div_ceil(60);
    let body = format!(
        "Your verification code is {}. It expires in {minutes} minutes. Do not share it.",
        code.expose()
    );
    if let Err(error) = app.sms.send(phone, &body).await {
        // Take the code back so the user is not held to a cooldown for a message never sent.
        if let Err(cleanup) = app.otps.delete(phone).await {
            tracing::warn!(error = %cleanup, "could not remove an unsent otp");
        }
        return Err(error);
    }
    audit::record(AuditEvent::OtpSent, caller, sent);
    Ok(Ok(()))
}

/// A code that matched: spend it with `consume` in the transaction that acts on it, then call
/// `forget_failures`.
pub struct MatchedCode<'a> {
    code_hash: String,
    purpose: OtpPurpose,
    counter: FailureCounter<'a>,
    failures: Failures,
}

impl MatchedCode<'_> {
    /// The write that spends the code (for the caller's transaction); it fails if the code was
    /// replaced, used or expired meanwhile, so one code yields one success.
    pub fn consume(
        &self,
        app: &App,
        phone: &PhoneNumber,
        now: u64,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, AuthError> {
        app.otps.consume(
            phone,
            &self.code_hash,
            self.purpose,
            app.config.otp_max_attempts,
            now,
        )
    }

    /// Clears the pair's earlier failures after the success; best effort (failing it must not
    /// fail the success).
    pub async fn forget_failures(&self) {
        if let Err(error) = self.counter.clear(self.failures).await {
            tracing::warn!(%error, "could not clear failure counter");
        }
    }
}

/// Checks `code` against the live code of `phone` for `purpose`. Refuses a blocked (phone, IP)
/// pair; a wrong code counts against both the code (5 tries) and the pair (3 failures).
pub async fn match_code<'a>(
    app: &'a App,
    phone: &PhoneNumber,
    code: &OtpCode,
    caller: &Caller,
    purpose: OtpPurpose,
) -> Result<MatchedCode<'a>, AuthError> {
    let config = &app.config;
    let now = now();
    let counter = app.failure_counter(FailureKind::Verify, phone, &caller.ip);
    // The pair's record and the code in one round trip.
    let [pair, otp] = store::get_items(
        &app.dynamodb,
        [counter.item_key(), app.otps.item_key(phone)],
    )
    .await?;
    let failures = counter.ensure_not_blocked(pair, now)?;
    let otp = OtpsTable::live(otp, now)
        .filter(|otp| otp.purpose == purpose)
        .ok_or(AuthError::NoActiveOtp)?;
    let max_attempts = config.otp_max_attempts;
    if otp.failed_attempts >= max_attempts {
        return Err(AuthError::OtpAttemptsExhausted);
    }
    if !app.otp_hasher()?.matches(phone, code, &otp.code_hash) {
        let used = match app
            .otps
            .record_wrong_attempt(phone, &otp.code_hash, max_attempts, now)
            .await?
        {
            WrongAttempt::Counted(used) => used,
            WrongAttempt::CodeGone => return Err(AuthError::NoActiveOtp),
        };
        let left_for_pair = counter.record(now).await?;
        let subject = || Subject {
            phone: Some(phone),
            detail: Some(purpose.as_str()),
            ..Subject::default()
        };
        audit::record(AuditEvent::OtpFailed, caller, subject());
        if left_for_pair == 0 {
            audit::record(AuditEvent::Lockout, caller, subject());
        }
        return Err(AuthError::IncorrectOtp {
            attempts_left: max_attempts.saturating_sub(used).min(left_for_pair),
        });
    }
    Ok(MatchedCode {
        code_hash: otp.code_hash,
        purpose,
        counter,
        failures,
    })
}
