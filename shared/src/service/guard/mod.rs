//! Count before you check, the one protocol of every guarded write: a guess (a password or a
//! code) first takes its slot under the limits, and a code is sent only once its counters took
//! it, each in one transaction of conditional writes planned from the state as read. A refused
//! condition means either that a limit forbids the request (the answer) or that the state moved
//! on under a parallel request: the write is then planned again from what the refusal reports,
//! so each retry makes progress. Parallel bursts therefore pass no more guesses or sends than
//! the limits allow.
//!
//! - `commit_planned`: the driver, plan → commit → re-plan, for any `Plan`
//! - `slot`: a guess's slot (the pair, the account, the code), `take_slot`
//! - `send`: a code's send (its cooldown, counters and budgets, another shard of a full one, a
//!   proven number's floor past a spent reserve), `commit_send`

mod send;
mod slot;

pub(crate) use send::{BreakerPart, Committed, commit_send, random_shard};
pub(crate) use slot::{AccountGuard, CodeSlot, Guards, Taken, admit_guess, take_slot};

use crate::App;
use crate::error::AuthError;
use crate::store::{Refusal, Transaction, TransactionError};

/// A guarded write as the protocol drives it.
pub(crate) trait Plan {
    /// The names of the transaction's steps.
    type Step: Copy + PartialEq;
    /// What the write answers.
    type Done;

    /// The transaction for the state as now known (an error when a limit forbids it outright).
    fn transaction(&self, app: &App) -> Result<Transaction<Self::Step>, AuthError>;

    /// The answer once the transaction committed.
    fn committed(self, app: &App) -> Self::Done;

    /// Learns from the refused steps: `None` to plan again, or the answer.
    fn refused(
        &mut self,
        app: &App,
        refusals: Vec<Refusal<Self::Step>>,
    ) -> Result<Option<Self::Done>, AuthError>;
}

/// Plans, commits and plans again after a refusal, at most `attempts` times: the one place a
/// guarded write's refusal is read. A state that keeps moving under parallel requests past
/// that is a 503 (the client asks again).
pub(crate) async fn commit_planned<P: Plan>(
    app: &App,
    mut plan: P,
    attempts: usize,
) -> Result<P::Done, AuthError> {
    for _ in 0..attempts {
        let transaction = plan.transaction(app)?;
        let refusals = match app.store.commit(&transaction).await {
            Ok(()) => return Ok(plan.committed(app)),
            Err(TransactionError::Storage(error)) => return Err(error),
            Err(TransactionError::Refused(refusals)) => refusals,
        };
        if let Some(done) = plan.refused(app, refusals)? {
            return Ok(done);
        }
    }
    Err(AuthError::unavailable(
        "guarded counters kept changing under parallel requests",
    ))
}

/// The refusal of `step` among `refusals`, when that step was refused.
pub(crate) fn refusal_of<S: PartialEq>(refusals: &[Refusal<S>], step: S) -> Option<&Refusal<S>> {
    refusals.iter().find(|refusal| refusal.step == step)
}
