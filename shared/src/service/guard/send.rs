//! A code's send under the protocol: the code, the caller's resend cooldown and one count in
//! every counter and budget of the send, in one transaction. A full shard of a sharded budget is
//! swapped for another of its budget (once), and a reserve spent for a number its owner proved
//! recently gives way to the number's floor; any other refusal is the answer.

use crate::App;
use crate::breaker::{Conversion, ConversionCounter, Level};
use crate::config::Limits;
use crate::error::AuthError;
use crate::limits::{self, SendCounter, SendScope};
use crate::service::codes::{BotCheck, SendRefusal};
use crate::store::attempts::AttemptsTable;
use crate::store::otps::{NewOtp, resend_wait};
use crate::store::{Refusal, Transaction};

use super::{Plan, commit_planned, refusal_of};

/// What a send transaction did: counted (in these counters: a full shard may have been swapped
/// for another of its budget, the reserve for the floor), or refused by a limit, with the shared
/// budgets its refusals showed and their sends then (fresh from the refusals: a parallel burst
/// whose reads were all stale still has its pressure reported, by the sends it left refused).
pub(crate) enum Committed {
    Counted(Vec<SendCounter>),
    Refused {
        refusal: SendRefusal,
        full_budgets: Vec<(SendCounter, u64)>,
    },
}

/// The steps of a send transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendStep {
    Cooldown,
    Code,
    Count(SendScope),
    /// The breaker's counts of the code sent.
    Conversion,
    /// The breaker's state of a destination (`enforce`, codes to new numbers).
    Breaker,
}

/// How many shards a send tries before a full budget refuses it: a second try keeps a budget
/// whose chosen shard filled first from refusing while others have room, and costs a refused
/// send at most two transactions.
const SHARD_ATTEMPTS: usize = 2;

/// The breaker's part of a send: the counters the code counts in as sent, and whether the
/// destinations' states are checked (`enforce`, a code to a new number).
pub(crate) struct BreakerPart {
    pub conversions: Vec<ConversionCounter>,
    /// As what the code counts as sent (to a new number or not).
    pub sent: Conversion,
    pub checked: bool,
}

/// Writes the code, the cooldown and the counts of `counted` in one transaction, with the
/// breaker's counts and checks: the counters as counted (a full shard replaced by another of its
/// budget; the reserve by `floor`, the counters of a recently proved number's floor, when
/// given), or why the send was refused.
pub(crate) async fn commit_send(
    app: &App,
    new_otp: &NewOtp<'_>,
    (counted, floor): (Vec<SendCounter>, Option<Vec<SendCounter>>),
    breaker: &BreakerPart,
    bot: BotCheck,
) -> Result<Committed, AuthError> {
    let plan = SendPlan {
        new_otp,
        counted,
        floor,
        breaker,
        bot,
        moves_left: SHARD_ATTEMPTS - 1,
        full_budgets: Vec::new(),
    };
    // The reserve's tries, then the floor's.
    commit_planned(app, plan, 2 * SHARD_ATTEMPTS).await
}

/// A send as the protocol plans it.
struct SendPlan<'a, 'b> {
    new_otp: &'a NewOtp<'b>,
    counted: Vec<SendCounter>,
    /// The counters to count in instead once the reserve refuses, while not yet tried.
    floor: Option<Vec<SendCounter>>,
    breaker: &'a BreakerPart,
    bot: BotCheck,
    /// Full shards may still be swapped this many times.
    moves_left: usize,
    /// The shared budgets refusals showed, with their sends then.
    full_budgets: Vec<(SendCounter, u64)>,
}

impl SendPlan<'_, '_> {
    /// The counters of `counted` that refused the send.
    fn full(&self, refusals: &[Refusal<SendStep>]) -> Vec<usize> {
        (0..self.counted.len())
            .filter(|&i| refusal_of(refusals, SendStep::Count(self.counted[i].scope)).is_some())
            .collect()
    }

    /// Whether a bot check would have let the send through: refused only short of the full
    /// limits of an unchecked send. Every refused counter is read (a corrupt one is an error),
    /// and the shared budgets among them kept for the pressure report.
    fn check_would_pass(
        &mut self,
        full: &[usize],
        refusals: &[Refusal<SendStep>],
    ) -> Result<bool, AuthError> {
        let mut would_pass = self.bot == BotCheck::Unchecked && !full.is_empty();
        for &i in full {
            let counter = &self.counted[i];
            let refusal = refusal_of(refusals, SendStep::Count(counter.scope));
            let hits = AttemptsTable::send_hits(refusal.and_then(Refusal::old_item))?;
            would_pass &= hits < u64::from(counter.limit);
            if counter.scope.is_shared_budget() {
                self.full_budgets.push((counter.clone(), hits));
            }
        }
        Ok(would_pass)
    }

    /// The answer to a send refused by `refusal`.
    fn refused_by(&mut self, refusal: SendRefusal) -> Committed {
        Committed::Refused {
            refusal,
            full_budgets: std::mem::take(&mut self.full_budgets),
        }
    }

    /// Swaps each full shard for another of its budget, when every full counter has another
    /// shard and a move is left.
    fn move_shards(&mut self, limits: &Limits, full: &[usize]) -> bool {
        if self.moves_left == 0 {
            return false;
        }
        let moved: Option<Vec<SendCounter>> = full
            .iter()
            .map(|&i| another_shard(limits, &self.counted[i], self.new_otp.now))
            .collect();
        match moved {
            Some(moved) if !moved.is_empty() => {
                for (&i, counter) in full.iter().zip(moved) {
                    self.counted[i] = counter;
                }
                self.moves_left -= 1;
                true
            }
            _ => false,
        }
    }

    /// The cap to wait out: the refusal that lasts longest (a cap of the phone rather than the
    /// reserve on a tie: no floor can help then).
    fn cap(&self, full: &[usize]) -> SendRefusal {
        let now = self.new_otp.now;
        let last = full
            .iter()
            .map(|&i| &self.counted[i])
            .max_by_key(|counter| (counter.window.ends_at, !counter.scope.is_reserve()));
        let (scope, retry_after) = last.map_or((SendScope::Global, 1), |counter| {
            (counter.scope, counter.window.ends_at - now)
        });
        tracing::info!(budget = scope.name(), "code not sent: send budget used up");
        SendRefusal::Cap { scope, retry_after }
    }

    /// The refusal of a destination's breaker state, if one refused the send: blocked (until
    /// when), or challenged and the send passed no bot check.
    fn breaker_refusal(
        &self,
        refusals: &[Refusal<SendStep>],
    ) -> Result<Option<SendRefusal>, AuthError> {
        let now = self.new_otp.now;
        let mut refusal = None;
        for step in refusals.iter().filter(|r| r.step == SendStep::Breaker) {
            let state = AttemptsTable::breaker_refusal(step.old_item())?;
            let this = match state.level_at(now) {
                Level::Blocked => SendRefusal::Paused {
                    retry_after: state.blocked_until - now,
                },
                // Changed since: the next try finds it as it is now.
                Level::Normal => continue,
                Level::Challenge => SendRefusal::CheckNeeded,
            };
            if refusal.is_none() || matches!(this, SendRefusal::Paused { .. }) {
                refusal = Some(this);
            }
        }
        if refusal.is_some() {
            tracing::info!("code not sent: the SMS breaker holds its destination");
        }
        Ok(refusal)
    }

    /// Counts in the floor instead of the reserve, once, when the reserve is the cap to wait out
    /// and the number has a floor.
    fn fall_to_floor(&mut self, cap: SendRefusal) -> bool {
        let reserve = matches!(cap, SendRefusal::Cap { scope, .. } if scope.is_reserve());
        match self.floor.take() {
            Some(floor) if reserve => {
                tracing::info!("reserve spent: a recently proved number's floor is used");
                self.counted = floor;
                true
            }
            _ => false,
        }
    }
}

impl Plan for SendPlan<'_, '_> {
    type Step = SendStep;
    type Done = Committed;

    fn transaction(&self, app: &App) -> Result<Transaction<SendStep>, AuthError> {
        let [cooldown, stored] = app.store.otps.store(self.new_otp)?;
        let mut transaction = Transaction::new()
            .step(SendStep::Cooldown, cooldown)
            .step(SendStep::Code, stored);
        for counter in &self.counted {
            let limit = self.bot.limit_of(counter);
            let count = app.store.attempts.count_send(counter, limit)?;
            transaction = transaction.step(SendStep::Count(counter.scope), count);
        }
        let attempts = &app.store.attempts;
        for counter in &self.breaker.conversions {
            let count = attempts.count_conversion(counter, self.breaker.sent)?;
            transaction = transaction.step(SendStep::Conversion, count);
            if self.breaker.checked {
                let checked = self.bot != BotCheck::Unchecked;
                let check = attempts.check_breaker(
                    &counter.destination,
                    counter.shard,
                    checked,
                    self.new_otp.now,
                )?;
                transaction = transaction.step(SendStep::Breaker, check);
            }
        }
        Ok(transaction)
    }

    fn committed(self, _app: &App) -> Committed {
        Committed::Counted(self.counted)
    }

    fn refused(
        &mut self,
        app: &App,
        refusals: Vec<Refusal<SendStep>>,
    ) -> Result<Option<Committed>, AuthError> {
        if let Some(cooldown) = refusal_of(&refusals, SendStep::Cooldown) {
            let retry_after = resend_wait(cooldown.old_item(), self.new_otp.now);
            return Ok(Some(self.refused_by(SendRefusal::Cooldown { retry_after })));
        }
        if refusal_of(&refusals, SendStep::Code).is_some() {
            return Err(AuthError::internal("a new verification id was taken"));
        }
        if let Some(refusal) = self.breaker_refusal(&refusals)? {
            return Ok(Some(self.refused_by(refusal)));
        }
        let full = self.full(&refusals);
        let check_would_pass = self.check_would_pass(&full, &refusals)?;
        // A full shard of a budget whose other shards may still have room: try another one.
        if self.move_shards(&app.config.limits, &full) {
            return Ok(None);
        }
        if check_would_pass {
            tracing::info!("code not sent: the budgets' unchecked half is used up");
            return Ok(Some(self.refused_by(SendRefusal::CheckNeeded)));
        }
        let cap = self.cap(&full);
        // Only the owner's own networks reach the floor: strangers naming a list of active
        // numbers must not spend it (nor turn it into a budget of its own).
        if self.fall_to_floor(cap) {
            self.moves_left = SHARD_ATTEMPTS - 1;
            return Ok(None);
        }
        Ok(Some(self.refused_by(cap)))
    }
}

/// A shard of a sharded budget, chosen at random so sends spread over its items.
pub(crate) fn random_shard(shards: u32) -> u32 {
    rand::random_range(0..shards.max(1))
}

/// The counter of another shard of `counter`'s budget, chosen at random; none when the budget
/// has one shard (or `counter` is not sharded).
fn another_shard(limits: &Limits, counter: &SendCounter, now: u64) -> Option<SendCounter> {
    let full = counter.shard?;
    let moved = limits::send_counter(limits, counter.scope, counter.subject.clone(), now, |n| {
        (full + 1 + rand::random_range(0..n.saturating_sub(1).max(1))) % n.max(1)
    });
    (moved.shard != Some(full)).then_some(moved)
}
