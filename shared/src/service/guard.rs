//! Count before you check: every guarded attempt (a password or a code) first takes its slot
//! under the limits, in one transaction of conditional writes, and only then is the password
//! hashed or the code compared. Parallel bursts therefore evaluate no more guesses than the
//! limits allow: a request whose slot is refused never reaches the check. A success clears the
//! counters in the transaction that acts on it.

use crate::App;
use crate::error::AuthError;
use crate::limits::{self, AccountRecord, PairRecord};
use crate::otp::OtpPurpose;
use crate::phone::PhoneNumber;
use crate::store::attempts::{AttemptsTable, FailureKind};
use crate::store::otps::{CodeTarget, OtpsTable};
use crate::store::{Transaction, TransactionError};

/// The steps of a slot transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Pair,
    Account,
    Code,
}

/// A guess at a code: the purpose, and the codes it may match with the budget it spends.
pub(crate) struct CodeSlot {
    pub purpose: OtpPurpose,
    pub target: CodeTarget,
}

/// The guards of one attempt, in the state they were read in.
pub(crate) struct Guards<'a> {
    pub phone: &'a PhoneNumber,
    pub network: &'a str,
    pub kind: FailureKind,
    pub pair: Option<PairRecord>,
    pub account: AccountGuard,
    pub code: Option<CodeSlot>,
}

/// Whether an attempt counts against the account's back-off.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AccountGuard {
    /// It does not (a code check).
    Unguarded,
    /// It does, from the record as read. `exempt_from_wait`: counted but not held by the wait
    /// (a network the owner proved the account from, or a step-up code, which proves the phone).
    Counted {
        record: Option<AccountRecord>,
        exempt_from_wait: bool,
    },
}

impl AccountGuard {
    /// The account's failures once this attempt is counted, when the account guards it.
    fn failures_after(self) -> Option<u32> {
        match self {
            Self::Unguarded => None,
            Self::Counted { record, .. } => {
                Some(record.map_or(1, |record| record.failures.saturating_add(1)))
            }
        }
    }

    /// The account's live record before this attempt, when the account guards it.
    fn record(self) -> Option<AccountRecord> {
        match self {
            Self::Unguarded => None,
            Self::Counted { record, .. } => record,
        }
    }
}

/// What a taken slot leaves: the failures still allowed, for the answer and the audit log.
pub(crate) struct Taken {
    /// Failures the pair may still make after this one.
    pub pair_left: u32,
    /// The account's failures counting this attempt, when the account guards it.
    pub account_failures: Option<u32>,
    /// The account's record as it was before this attempt was counted.
    pub account_before: Option<AccountRecord>,
    /// Wrong guesses the code's budget still allows after this one.
    pub code_left: Option<u32>,
}

/// How many times a slot is planned again after its state moved on under a parallel attempt;
/// each retry starts from the state the refusal reported, so each makes progress.
const SLOT_ATTEMPTS: usize = 6;

/// Guesses the target's budget still allows, this one included (0 when none).
fn guesses_left(target: &CodeTarget, max_attempts: u32) -> u32 {
    match target {
        CodeTarget::Verified { code, .. } => code
            .as_ref()
            .map_or(0, |code| max_attempts.saturating_sub(code.failed_attempts)),
        CodeTarget::Anonymous { record, .. } => limits::anonymous_guesses(max_attempts)
            .saturating_sub(record.map_or(0, |record| record.failed_attempts)),
    }
}

/// Refuses a guess the target cannot take: no live code (none of this id, or none at all), or
/// its budget spent.
pub(crate) fn admit_guess(target: &CodeTarget, max_attempts: u32) -> Result<(), AuthError> {
    if target.codes().is_empty() {
        return Err(AuthError::NoActiveOtp);
    }
    if guesses_left(target, max_attempts) == 0 {
        return Err(AuthError::OtpAttemptsExhausted);
    }
    Ok(())
}

/// Takes the attempt's slot: one transaction that counts it against the pair, the account (when
/// it guards the attempt) and the code (when one is guessed), and that fails when any of them
/// forbids it. A state that moved on under a parallel attempt is planned again from what the
/// refusal reports; a limit that forbids the attempt is the answer.
pub(crate) async fn take_slot(
    app: &App,
    mut guards: Guards<'_>,
    now: u64,
) -> Result<Taken, AuthError> {
    let limits = &app.config.limits;
    let max_attempts = app.config.otp_max_attempts;
    for _ in 0..SLOT_ATTEMPTS {
        let pair_slot = limits::pair_slot(limits, guards.pair, now)?;
        let mut transaction = Transaction::new().step(
            Step::Pair,
            app.store.attempts.take_pair_slot(
                guards.kind,
                guards.phone,
                guards.network,
                pair_slot,
                limits,
                now,
            )?,
        );
        if let AccountGuard::Counted {
            record,
            exempt_from_wait,
        } = guards.account
        {
            let slot = limits::account_slot(limits, record, exempt_from_wait, now)?;
            transaction = transaction.step(
                Step::Account,
                app.store
                    .attempts
                    .take_account_slot(guards.phone, slot, limits, now)?,
            );
        }
        if let Some(code) = &guards.code {
            admit_guess(&code.target, max_attempts)?;
            transaction = transaction.step(
                Step::Code,
                app.store.otps.take_guess_slot(
                    guards.phone,
                    code.purpose,
                    &code.target,
                    (max_attempts, limits::anonymous_guesses(max_attempts)),
                    (now, app.config.otp_ttl_seconds),
                )?,
            );
        }
        match app.store.commit(&transaction).await {
            Ok(()) => {
                return Ok(Taken {
                    pair_left: limits::pair_failures_left(limits, guards.pair),
                    account_failures: guards.account.failures_after(),
                    account_before: guards.account.record(),
                    code_left: guards
                        .code
                        .as_ref()
                        .map(|code| guesses_left(&code.target, max_attempts).saturating_sub(1)),
                });
            }
            Err(TransactionError::Storage(error)) => return Err(error),
            Err(TransactionError::Refused(refusals)) => {
                for refusal in refusals {
                    let old = refusal.old_item;
                    match refusal.step {
                        Step::Pair => guards.pair = AttemptsTable::pair_record(old, now)?,
                        Step::Account => {
                            if let AccountGuard::Counted { record, .. } = &mut guards.account {
                                *record = AttemptsTable::account_record(old, now)?;
                            }
                        }
                        Step::Code => {
                            let code = guards
                                .code
                                .as_mut()
                                .ok_or_else(|| AuthError::internal("a code step without a code"))?;
                            match &mut code.target {
                                CodeTarget::Verified { code: stored, .. } => {
                                    *stored = OtpsTable::live(old, now)?;
                                }
                                CodeTarget::Anonymous { record, .. } => {
                                    *record = OtpsTable::anonymous_record(old, now)?;
                                }
                            }
                            admit_guess(&code.target, max_attempts)?;
                        }
                    }
                }
            }
        }
    }
    Err(AuthError::unavailable(
        "attempt counters kept changing under parallel attempts",
    ))
}
