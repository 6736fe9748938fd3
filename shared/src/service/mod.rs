//! The flows of the service on validated inputs. Handlers translate HTTP to these calls and back.
//!
//! - `guard`: count before you check, one plan → commit → re-plan driver: a guess takes its slot
//!   under the limits before it is checked, a code is sent only once its counters took it
//! - `codes`: sending one-time codes (`send`), the bot check before a send (`bot_check`), and
//!   checking guesses (`guesses`)
//! - `signup`: check-phone (the lookup and the sign-up code), verify a phone, register an account
//! - `sessions`: log in, refresh, authenticate a request, log out
//! - `account`: profile, password change, password reset, account deletion
//! - `phone_change`: moving the account to a new number
//! - `admin`: what operators do to accounts (find, disable, enable)

pub mod account;
pub mod admin;
pub mod codes;
pub(crate) mod guard;
pub mod phone_change;
pub mod sessions;
pub mod signup;

use crate::App;
use crate::error::AuthError;
use crate::events::{Event, EventSubject};
use crate::store::Write;

/// The write that records `event` in the events table, for the transaction of the change it
/// reports: the event exists if and only if that transaction commits.
pub(crate) fn event_write(
    app: &App,
    event: Event<'_>,
    subject: EventSubject<'_>,
    now: u64,
) -> Result<Write, AuthError> {
    let event = app.config.events.outbox_event(event, subject, now)?;
    app.store.events.record(&event)
}
