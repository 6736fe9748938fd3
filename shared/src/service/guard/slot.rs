//! A guess's slot: every guarded attempt (a password or a code) first takes its slot under the
//! limits, in one transaction of conditional writes, and only then is the password hashed or the
//! code compared. Parallel bursts therefore evaluate no more guesses than the limits allow: a
//! request whose slot is refused never reaches the check. A success clears the counters in the
//! transaction that acts on it.

use crate::App;
use crate::error::AuthError;
use crate::limits::{self, AccountRecord, PairRecord};
use crate::otp::OtpPurpose;
use crate::phone::PhoneNumber;
use crate::store::attempts::{AttemptsTable, FailureKind};
use crate::store::otps::{CodeTarget, OtpsTable};
use crate::store::{Refusal, Transaction, Write};

use super::{Plan, commit_planned};

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
pub(crate) async fn take_slot(app: &App, guards: Guards<'_>, now: u64) -> Result<Taken, AuthError> {
    let plan = SlotPlan {
        guards,
        now,
        max_attempts: app.config.otp_max_attempts,
    };
    commit_planned(app, plan, SLOT_ATTEMPTS).await
}

/// A slot as the protocol plans it: the guards as last read.
struct SlotPlan<'a> {
    guards: Guards<'a>,
    now: u64,
    max_attempts: u32,
}

impl SlotPlan<'_> {
    /// The pair's step: refused outright while the pair is blocked.
    fn pair_step(&self, app: &App) -> Result<Write, AuthError> {
        let limits = &app.config.limits;
        let guards = &self.guards;
        let slot = limits::pair_slot(limits, guards.pair, self.now)?;
        let (kind, phone, network) = (guards.kind, guards.phone, guards.network);
        app.store
            .attempts
            .take_pair_slot(kind, phone, network, slot, limits, self.now)
    }

    /// The account's step, when the account guards the attempt: refused outright while it waits.
    fn account_step(&self, app: &App) -> Result<Option<Write>, AuthError> {
        let AccountGuard::Counted {
            record,
            exempt_from_wait,
        } = self.guards.account
        else {
            return Ok(None);
        };
        let limits = &app.config.limits;
        let slot = limits::account_slot(limits, record, exempt_from_wait, self.now)?;
        let attempts = &app.store.attempts;
        attempts
            .take_account_slot(self.guards.phone, slot, limits, self.now)
            .map(Some)
    }

    /// The code's step, when a code is guessed: refused outright without a guess left.
    fn code_step(&self, app: &App) -> Result<Option<Write>, AuthError> {
        let Some(code) = &self.guards.code else {
            return Ok(None);
        };
        admit_guess(&code.target, self.max_attempts)?;
        let budgets = (
            self.max_attempts,
            limits::anonymous_guesses(self.max_attempts),
        );
        let (phone, now) = (self.guards.phone, self.now);
        let times = (now, app.config.otp_ttl_seconds);
        app.store
            .otps
            .take_guess_slot(phone, code.purpose, &code.target, budgets, times)
            .map(Some)
    }

    /// Takes in the item a refused step found: the state a parallel attempt left.
    fn reread(&mut self, refusal: Refusal<Step>) -> Result<(), AuthError> {
        let (old, now) = (refusal.old_item, self.now);
        match refusal.step {
            Step::Pair => self.guards.pair = AttemptsTable::pair_record(old, now)?,
            Step::Account => {
                if let AccountGuard::Counted { record, .. } = &mut self.guards.account {
                    *record = AttemptsTable::account_record(old, now)?;
                }
            }
            Step::Code => {
                let code = self
                    .guards
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
                admit_guess(&code.target, self.max_attempts)?;
            }
        }
        Ok(())
    }
}

impl Plan for SlotPlan<'_> {
    type Step = Step;
    type Done = Taken;

    fn transaction(&self, app: &App) -> Result<Transaction<Step>, AuthError> {
        let transaction = Transaction::new().step(Step::Pair, self.pair_step(app)?);
        Ok(transaction
            .steps(Step::Account, self.account_step(app)?)
            .steps(Step::Code, self.code_step(app)?))
    }

    fn committed(self, app: &App) -> Taken {
        let guards = self.guards;
        Taken {
            pair_left: limits::pair_failures_left(&app.config.limits, guards.pair),
            account_failures: guards.account.failures_after(),
            account_before: guards.account.record(),
            code_left: guards
                .code
                .as_ref()
                .map(|code| guesses_left(&code.target, self.max_attempts).saturating_sub(1)),
        }
    }

    fn refused(
        &mut self,
        _app: &App,
        refusals: Vec<Refusal<Step>>,
    ) -> Result<Option<Taken>, AuthError> {
        for refusal in refusals {
            self.reread(refusal)?;
        }
        Ok(None)
    }
}
