//! Checking a guessed code under the lock-out rules: the slot first, then the comparison.

use crate::App;
use crate::audit::{self, AuditEvent, Subject};
use crate::breaker::Conversion;
use crate::error::AuthError;
use crate::http::Caller;
use crate::limits;
use crate::otp::{OtpCode, OtpPurpose};
use crate::phone::PhoneNumber;
use crate::profile::User;
use crate::service::admin::disabled_login;
use crate::service::guard::{self, AccountGuard, CodeSlot, Guards};
use crate::store::attempts::FailureKind;
use crate::store::otps::{GuessBudget, StoredOtp};
use crate::store::{CodeRecords, Write};
use crate::tokens::hash_opaque_token;

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
    code: StoredOtp,
    purpose: OtpPurpose,
}

impl MatchedCode {
    /// The writes that spend the code, clear the pair's failures and the network's resend
    /// cooldown and count the code as entered for the breaker (for the caller's transaction);
    /// spending fails if the code was used or expired meanwhile, so one code yields one success.
    pub fn spend(
        &self,
        app: &App,
        phone: &PhoneNumber,
        caller: &Caller,
        now: u64,
    ) -> Result<Vec<Write>, AuthError> {
        let mut writes = vec![
            app.store
                .otps
                .consume(phone, self.purpose, &self.code, now)?,
            app.store
                .otps
                .end_cooldown(phone, self.purpose, &caller.network)?,
            app.store
                .attempts
                .clear_pair(FailureKind::Verify, phone, &caller.network)?,
        ];
        writes.extend(entered(app, phone, (&self.code, self.purpose))?);
        Ok(writes)
    }
}

/// The breaker's counts of a code entered (for the transaction that spends it), in the bucket
/// of its send, and the note that reports it to the provider when its SMS waits for that
/// (`AttemptsTable::note_entered`); none for a test number's code, which was never texted (nor
/// counted as sent).
pub(crate) fn entered(
    app: &App,
    phone: &PhoneNumber,
    (code, purpose): (&StoredOtp, OtpPurpose),
) -> Result<Vec<Write>, AuthError> {
    if app.config.test_otp_numbers.contains_key(phone.as_str()) {
        return Ok(Vec::new());
    }
    let attempts = &app.store.attempts;
    let counters = app
        .config
        .sms_breaker
        .counters_of(phone, code.sent_at, guard::random_shard);
    // Sign-up and change-of-number codes went to new numbers (`SendPool::NewNumbers`).
    let conversion = match purpose {
        OtpPurpose::SignUp | OtpPurpose::PhoneChange => Conversion::VerifiedNewNumber,
        OtpPurpose::PasswordReset | OtpPurpose::Login => Conversion::Verified,
    };
    let mut writes = counters
        .iter()
        .map(|counter| attempts.count_conversion(counter, conversion))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(message_id) = &code.message_id {
        writes.push(attempts.note_entered(message_id, app.clock.now())?);
    }
    Ok(writes)
}

/// The code of `codes` that `guess` matches, if any; call it only once the guess has its slot.
pub(crate) fn matching_code(
    app: &App,
    phone: &PhoneNumber,
    guess: &CodeGuess,
    codes: Vec<StoredOtp>,
) -> Result<Option<StoredOtp>, AuthError> {
    let hasher = app.otp_hasher()?;
    Ok(codes
        .into_iter()
        .find(|code| hasher.matches(phone, &guess.code, &code.code_hash)))
}

/// Checks `guess` against the live codes of `phone` for `purpose`: the one its verification id
/// names, or, without an id, each of them. The guess first takes its slot against the (phone,
/// network) pair (3 failures) and the budget it spends (5 wrong guesses of that code, or the
/// few the codes share for guesses without an id); only then are the codes compared.
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
    let budget = guess.budget();
    let CodeRecords { pair, target } = app
        .store
        .code_records(phone, &caller.network, purpose, &budget, now)
        .await?;
    let target = target.owned_by(owner);
    // A blocked pair is told so before anything about the code.
    limits::pair_slot(&app.config.limits, pair, now)?;
    guard::admit_guess(&target, app.config.otp_max_attempts)?;
    let codes = target.codes().to_vec();
    let taken = guard::take_slot(
        app,
        Guards {
            phone,
            network: &caller.network,
            kind: FailureKind::Verify,
            pair,
            account: AccountGuard::Unguarded,
            code: Some(CodeSlot { purpose, target }),
        },
        now,
    )
    .await?;
    let Some(code) = matching_code(app, phone, guess, codes)? else {
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
    };
    Ok(MatchedCode { code, purpose })
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
    // A code sent before the account was disabled opens nothing.
    if user.disabled {
        return Err(disabled_login(phone, &user, caller));
    }
    Ok((matched, user))
}
