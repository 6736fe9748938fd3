//! Audit events: one structured `tracing` event per security-relevant outcome, under the target
//! `audit` (JSON lines in Lambda). They carry the masked phone, the client IP and the request id,
//! and never a code, token or password.

use crate::http::Caller;
use crate::limits::SendCounter;
use crate::phone::PhoneNumber;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvent {
    OtpSent,
    OtpVerified,
    OtpFailed,
    Registered,
    LoginSucceeded,
    LoginFailed,
    Lockout,
    StepUpRequired,
    TokenRefreshed,
    TokenReuseDetected,
    /// The account moved to a new number: `phone` is the old one, `detail` the new (masked).
    PhoneChanged,
    /// A shared send budget passed half or nine tenths of its window (`budget_pressure`).
    SmsBudgetPressure,
    /// A destination's SMS breaker state changed (`breaker_changed`).
    SmsBreakerChanged,
    /// The SMS provider gave no answer in time: the code was kept and counted, and may or may
    /// not have been texted (`detail` is its purpose).
    SmsSendUncertain,
    /// An operator disabled the account (the admin API).
    AccountDisabled,
    /// An operator enabled it again.
    AccountEnabled,
    /// An operator read the account or its sessions (the admin API).
    AccountRead,
    /// An operator ended every session of the account.
    SignedOutEverywhere,
    /// An operator ended one session of the account.
    SessionRevoked,
    /// An operator deleted the account.
    AccountDeleted,
    /// An operator set the account's app claims.
    ClaimsChanged,
    /// A login moved a user of the Cognito pool being moved from: its account was created.
    AccountMigrated,
}

impl AuditEvent {
    pub fn name(self) -> &'static str {
        match self {
            Self::OtpSent => "otp_sent",
            Self::OtpVerified => "otp_verified",
            Self::OtpFailed => "otp_failed",
            Self::Registered => "registered",
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::Lockout => "lockout",
            Self::StepUpRequired => "step_up_required",
            Self::TokenRefreshed => "token_refreshed",
            Self::TokenReuseDetected => "token_reuse_detected",
            Self::PhoneChanged => "phone_changed",
            Self::SmsBudgetPressure => "sms_budget_pressure",
            Self::SmsBreakerChanged => "sms_breaker_changed",
            Self::SmsSendUncertain => "sms_send_uncertain",
            Self::AccountDisabled => "account_disabled",
            Self::AccountEnabled => "account_enabled",
            Self::AccountRead => "account_read",
            Self::SignedOutEverywhere => "signed_out_everywhere",
            Self::SessionRevoked => "session_revoked",
            Self::AccountDeleted => "account_deleted",
            Self::ClaimsChanged => "claims_changed",
            Self::AccountMigrated => "account_migrated",
        }
    }
}

/// What an event is about; every part optional.
#[derive(Default)]
pub struct Subject<'a> {
    pub phone: Option<&'a PhoneNumber>,
    pub user_id: Option<&'a str>,
    /// A short reason or kind (`signup`, `password_reset`, `pair`, `account`, ...).
    pub detail: Option<&'a str>,
}

pub fn record(event: AuditEvent, caller: &Caller, subject: Subject<'_>) {
    let phone = subject.phone.map(PhoneNumber::masked);
    tracing::info!(
        target: "audit",
        event = event.name(),
        phone = phone.as_deref(),
        user_id = subject.user_id,
        detail = subject.detail,
        client_ip = %caller.ip,
        request_id = %caller.request_id,
    );
}

/// An admin action on the account `user_id` (of `phone`, masked), with the operator's IAM
/// identity instead of a client address.
pub fn by_operator(
    event: AuditEvent,
    operator: &crate::service::admin::Operator,
    subject: Subject<'_>,
) {
    let phone = subject.phone.map(PhoneNumber::masked);
    tracing::info!(
        target: "audit",
        event = event.name(),
        phone = phone.as_deref(),
        user_id = subject.user_id,
        detail = subject.detail,
        operator = %operator.arn,
        operator_id = operator.principal_id.as_deref(),
        access_key = operator.access_key.as_deref(),
        request_id = %operator.request_id,
    );
}

/// `sms_budget_pressure`: the send that took the budget of `counter` (its scope and subject: a
/// country code, a number range or `all`) to `percent` of its limit in the window ending at
/// `window_ends_at`. Reported once per budget, level and window.
pub fn budget_pressure(caller: &Caller, counter: &SendCounter, percent: u32) {
    tracing::info!(
        target: "audit",
        event = AuditEvent::SmsBudgetPressure.name(),
        budget = counter.scope.name(),
        budget_subject = %counter.subject,
        percent,
        window_ends_at = counter.window.ends_at,
        client_ip = %caller.ip,
        request_id = %caller.request_id,
    );
}

/// `sms_breaker_changed`: a review moved a destination (`range:<range>` or `country:<code>`)
/// from the state last decided to another, from the codes sent and entered in the window of
/// `window_seconds` before; `mode` says whether the states refuse sends (`enforce`) or are only
/// reported (`observe`).
pub fn breaker_changed(change: &crate::breaker::Change, breaker: &crate::breaker::Breaker) {
    tracing::info!(
        target: "audit",
        event = AuditEvent::SmsBreakerChanged.name(),
        destination = %change.destination.name(),
        old_state = change.old.name(),
        new_state = change.new.name(),
        sent = change.counts.sent,
        sent_to_new_numbers = change.counts.sent_to_new,
        verified = change.counts.verified,
        window_seconds = breaker.window_seconds,
        enforced = breaker.enforces(),
    );
}
