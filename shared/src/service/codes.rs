//! One-time codes: sending them within the limits, and checking them under the lock-out rules.

use crate::App;
use crate::audit::{self, AuditEvent, Subject};
use crate::error::AuthError;
use crate::http::Caller;
use crate::limits::{self, SendScope};
use crate::messages::CodeMessage;
use crate::otp::{OtpCode, OtpPurpose};
use crate::phone::PhoneNumber;
use crate::profile::User;
use crate::service::guard::{self, CodeSlot, Guards};
use crate::sms::Sms;
use crate::store::attempts::FailureKind;
use crate::store::otps::{GuessBudget, NewOtp, resend_wait};
use crate::store::{CodeRecords, Transaction, TransactionError, Write};
use crate::tokens::{hash_opaque_token, new_opaque_token};

/// Why a code was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefusal {
    /// The phone's previous code of this purpose is inside its resend cooldown.
    Cooldown { retry_after: u64 },
    /// A send cap is used up for this window.
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

/// A code that was sent: the client proves with `verification_id` that a guess comes from
/// whoever asked for the code, so that strangers' wrong guesses cannot use the code up.
pub struct SentCode {
    pub verification_id: String,
}

/// The steps of a send transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendStep {
    Code,
    Count(SendScope),
}

/// Stores a fresh code for `phone` and sends it by SMS in `language` (one of
/// `Messages::language_for`). The code, the resend cooldown and the send counters are written in
/// one transaction, so a refused send changes nothing.
pub async fn send_otp(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
    purpose: OtpPurpose,
    language: &str,
) -> Result<Result<SentCode, SendRefusal>, AuthError> {
    let phone_subject = phone.as_str().to_owned();
    send_counted(app, phone, caller, purpose, phone_subject, None, language).await
}

/// As `send_otp`, for the code that proves a new number before the account of `user_id` moves
/// to it: the code is bound to that account, so no other account can spend or replace it.
pub async fn send_phone_change_otp(
    app: &App,
    new_phone: &PhoneNumber,
    caller: &Caller,
    user_id: &str,
    language: &str,
) -> Result<Result<SentCode, SendRefusal>, AuthError> {
    let subject = new_phone.as_str().to_owned();
    let purpose = OtpPurpose::PhoneChange;
    send_counted(
        app,
        new_phone,
        caller,
        purpose,
        subject,
        Some(user_id),
        language,
    )
    .await
}

/// As `send_otp`, for the login code of a step-up: it goes only to whoever knows the password,
/// so it has per-phone caps of its own, and strangers filling the phone's caps (with reset or
/// login-code requests) cannot keep the owner out.
pub async fn send_step_up_otp(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
    language: &str,
) -> Result<Result<SentCode, SendRefusal>, AuthError> {
    let phone_subject = format!("login#{phone}");
    send_counted(
        app,
        phone,
        caller,
        OtpPurpose::Login,
        phone_subject,
        None,
        language,
    )
    .await
}

/// `phone_subject` names the per-phone send caps the code counts against; `owner` binds the code
/// to an account other than the phone's own.
async fn send_counted(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
    purpose: OtpPurpose,
    phone_subject: String,
    owner: Option<&str>,
    language: &str,
) -> Result<Result<SentCode, SendRefusal>, AuthError> {
    let config = &app.config;
    limits::ensure_sms_allowed(config, phone)?;
    let now = app.clock.now();
    let fixed_code = config.test_otp_numbers.get(phone.as_str());
    let code = fixed_code.map_or_else(
        || OtpCode::generate(config.otp_length),
        |code| OtpCode::from_configured(code),
    );
    let verification_id = new_opaque_token()?;

    let (country_code, _) = phone.sms_profile();
    let counted = [
        (SendScope::Phone, phone_subject.as_str()),
        (SendScope::PhoneDaily, phone_subject.as_str()),
        (SendScope::ClientNetwork, caller.network.as_str()),
        (SendScope::Country, &country_code.to_string()),
        (SendScope::Global, "all"),
    ]
    .map(|(scope, subject)| (scope, subject.to_owned()));
    let code_hash = app.otp_hasher()?.hash(phone, &code);
    let mut transaction = Transaction::new().step(
        SendStep::Code,
        app.store.otps.replace(NewOtp {
            phone,
            purpose,
            owner,
            code_hash: code_hash.clone(),
            verification_hash: hash_opaque_token(&verification_id),
            now,
            expires_at: now + config.otp_ttl_seconds,
            resend_at: now + config.otp_resend_seconds,
        })?,
    );
    for (scope, subject) in &counted {
        let (limit, window) = limits::send_limit(&config.limits, *scope, now);
        transaction = transaction.step(
            SendStep::Count(*scope),
            app.store
                .attempts
                .count_send(*scope, subject, limit, window)?,
        );
    }
    match app.store.commit(&transaction).await {
        Ok(()) => {}
        Err(TransactionError::Storage(error)) => return Err(error),
        Err(refused @ TransactionError::Refused(_)) => {
            if let Some(old_item) = refused.refused(SendStep::Code) {
                let retry_after = resend_wait(old_item, owner, now);
                return Ok(Err(SendRefusal::Cooldown { retry_after }));
            }
            let scope = counted
                .iter()
                .map(|(scope, _)| *scope)
                .find(|scope| refused.refused(SendStep::Count(*scope)).is_some())
                .unwrap_or(SendScope::Global);
            let (_, window) = limits::send_limit(&config.limits, scope, now);
            return Ok(Err(SendRefusal::Cap {
                scope,
                retry_after: window.ends_at - now,
            }));
        }
    }

    let sent = Subject {
        phone: Some(phone),
        detail: Some(purpose.as_str()),
        ..Subject::default()
    };
    if fixed_code.is_none() {
        let body = config.messages.compose(
            language,
            &CodeMessage {
                service: &config.service_name,
                purpose,
                code: code.expose(),
                minutes: config.otp_ttl_seconds.div_ceil(60),
            },
        );
        let sms = Sms {
            to: phone,
            body: &body,
            code: &code,
            purpose,
            language,
            now,
        };
        if let Err(error) = app.sms.send(&sms).await {
            take_back_unsent(app, phone, purpose, &code_hash, &counted, now).await;
            return Err(error);
        }
    }
    // A configured test number gets its code stored but no SMS.
    audit::record(AuditEvent::OtpSent, caller, sent);
    Ok(Ok(SentCode { verification_id }))
}

/// After the provider failed: deletes the code (only if it is still this one, not a newer
/// code a concurrent request stored), so that the user is not held to a cooldown for a message
/// never sent, and refunds the phone's send budgets (`refunded_on_failed_send`), so that asking
/// again does not count twice. Best effort: the answer is the provider's failure anyway.
async fn take_back_unsent(
    app: &App,
    phone: &PhoneNumber,
    purpose: OtpPurpose,
    code_hash: &str,
    counted: &[(SendScope, String)],
    now: u64,
) {
    if let Err(error) = app
        .store
        .otps
        .delete_unsent(phone, purpose, code_hash)
        .await
    {
        tracing::warn!(%error, "could not remove an unsent otp");
    }
    // A few small writes, on the failure path only: one after the other is fast enough.
    for (scope, subject) in counted {
        if !scope.refunded_on_failed_send() {
            continue;
        }
        let (_, window) = limits::send_limit(&app.config.limits, *scope, now);
        if let Err(error) = app
            .store
            .attempts
            .refund_send(*scope, subject, window)
            .await
        {
            tracing::warn!(%error, "could not refund the send budget of an unsent otp");
        }
    }
}

/// Whether `phone` has an account, for `check-phone` and a change of number. Each lookup counts
/// against the client/// network's lookup cap, so numbers cannot be enumerated faster than that; the account is read
/// in the same round trip, and told only when the count was accepted.
pub async fn check_phone_lookup(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
) -> Result<bool, AuthError> {
    let now = app.clock.now();
    let (limit, window) = limits::send_limit(&app.config.limits, SendScope::Lookup, now);
    let (counted, user) = tokio::join!(
        app.store
            .attempts
            .count_lookup(&caller.network, limit, window),
        app.store.users.get(phone),
    );
    if !counted? {
        return Err(AuthError::RateLimited {
            retry_after: window.ends_at - now,
        });
    }
    Ok(user?.is_some())
}

/// A code as a client sends it: the digits and, from clients that kept it, the verification id
/// of the send. Without the id a guess spends the code's anonymous budget, so older clients keep
/// working while clients that send the id cannot have their code used up by strangers.
pub struct CodeGuess {
    pub code: OtpCode,
    pub verification_id: Option<String>,
}

/// Longer values cannot be ids this service issued.
const MAX_VERIFICATION_ID_CHARS: usize = 64;

impl CodeGuess {
    pub fn budget(&self) -> GuessBudget {
        match &self.verification_id {
            Some(id) => GuessBudget::Verified(hash_opaque_token(id)),
            None => GuessBudget::Anonymous,
        }
    }

    /// Validates the optional verification id (the code is validated by `OtpCode::parse`).
    pub fn new(code: OtpCode, verification_id: Option<String>) -> Result<Self, AuthError> {
        if verification_id
            .as_ref()
            .is_some_and(|id| id.is_empty() || id.len() > MAX_VERIFICATION_ID_CHARS)
        {
            return Err(AuthError::InvalidRequest(
                "Invalid field 'verification_id': not an id this service issued.".into(),
            ));
        }
        Ok(Self {
            code,
            verification_id,
        })
    }
}

/// A code that matched: spend it with `spend` in the transaction that acts on it.
pub struct MatchedCode {
    code_hash: String,
    purpose: OtpPurpose,
}

impl MatchedCode {
    /// The writes that spend the code and clear the pair's failures (for the caller's
    /// transaction); spending fails if the code was replaced, used or expired meanwhile, so one
    /// code yields one success.
    pub fn spend(
        &self,
        app: &App,
        phone: &PhoneNumber,
        caller: &Caller,
        now: u64,
    ) -> Result<[Write; 2], AuthError> {
        Ok([
            app.store
                .otps
                .consume(phone, self.purpose, &self.code_hash, now)?,
            app.store
                .attempts
                .clear_pair(FailureKind::Verify, phone, &caller.network)?,
        ])
    }
}

/// Checks `guess` against the live code of `phone` for `purpose`. The guess first takes its slot
/// against the (phone, network) pair (3 failures) and the code's budget (5 wrong guesses); only
/// then are the codes compared.
pub async fn match_code(
    app: &App,
    phone: &PhoneNumber,
    guess: &CodeGuess,
    caller: &Caller,
    purpose: OtpPurpose,
) -> Result<MatchedCode, AuthError> {
    match_owned_code(app, phone, guess, caller, purpose, None).await
}

/// As `match_code`, for a code bound to the account `owner` (`send_phone_change_otp`): a code
/// sent for another account is no code at all for this one, and costs it no guess.
pub async fn match_owned_code(
    app: &App,
    phone: &PhoneNumber,
    guess: &CodeGuess,
    caller: &Caller,
    purpose: OtpPurpose,
    owner: Option<&str>,
) -> Result<MatchedCode, AuthError> {
    let now = app.clock.now();
    let CodeRecords { pair, code } = app
        .store
        .code_records(phone, &caller.network, purpose, now)
        .await?;
    let code = code.filter(|stored| stored.owner.as_deref() == owner);
    let budget = guess.budget();
    // A blocked pair is told so before anything about the code.
    limits::pair_slot(&app.config.limits, pair, now)?;
    guard::admit_guess(code.as_ref(), &budget, app.config.otp_max_attempts)?;
    let stored = code.ok_or(AuthError::NoActiveOtp)?;
    let code_hash = stored.code_hash.clone();
    let taken = guard::take_slot(
        app,
        Guards {
            phone,
            network: &caller.network,
            kind: FailureKind::Verify,
            pair,
            account: None,
            exempt_from_wait: false,
            code: Some(CodeSlot {
                purpose,
                budget,
                stored,
            }),
        },
        now,
    )
    .await?;
    if !app.otp_hasher()?.matches(phone, &guess.code, &code_hash) {
        let subject = || Subject {
            phone: Some(phone),
            detail: Some(purpose.as_str()),
            ..Subject::default()
        };
        audit::record(AuditEvent::OtpFailed, caller, subject());
        if taken.pair_left == 0 {
            audit::record(AuditEvent::Lockout, caller, subject());
        }
        return Err(AuthError::IncorrectOtp {
            attempts_left: taken.code_left.unwrap_or(0).min(taken.pair_left),
        });
    }
    Ok(MatchedCode { code_hash, purpose })
}

/// `match_code` for the codes that go only to registered numbers (password reset, login): the
/// matched code and its account. An account deleted since leaves the code as good as gone.
pub async fn match_account_code(
    app: &App,
    phone: &PhoneNumber,
    guess: &CodeGuess,
    caller: &Caller,
    purpose: OtpPurpose,
) -> Result<(MatchedCode, User), AuthError> {
    let matched = match_code(app, phone, guess, caller, purpose).await?;
    let user = app
        .store
        .users
        .get(phone)
        .await?
        .ok_or(AuthError::NoActiveOtp)?;
    Ok((matched, user))
}
