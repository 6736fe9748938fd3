//! One-time codes: sending them within the limits (`send`), the bot check before a send
//! (`bot_check`), and checking guesses under the lock-out rules (`guesses`).

mod bot_check;
mod guesses;
mod send;

pub use bot_check::{BotCheck, check_bot};
pub use guesses::{CodeGuess, MatchedCode, match_account_code, match_code, match_owned_code};
pub(crate) use guesses::{entered, matching_code};
pub use send::{BudgetReading, CodeToSend, SendOutcome, SendRefusal, SentCode, send_code};
