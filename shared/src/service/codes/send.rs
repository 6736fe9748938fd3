//! Sending a code: the send transaction under every counter and budget (with the retry on
//! another shard), the SMS, the take-back of a refused send and the pressure report.

use crate::App;
use crate::audit::{self, AuditEvent, Subject};
use crate::config::Limits;
use crate::error::AuthError;
use crate::http::Caller;
use crate::limits::{self, Requester, SendCounter, SendPool, SendScope};
use crate::messages::CodeMessage;
use crate::otp::{OtpCode, OtpPurpose};
use crate::phone::PhoneNumber;
use crate::sms::{Delivery, Sms};
use crate::store::attempts::AttemptsTable;
use crate::store::otps::{NewOtp, resend_wait};
use crate::store::{Refusal, Transaction, TransactionError};
use crate::tokens::{hash_opaque_token, new_opaque_token};

use super::bot_check::{BotCheck, TOKEN_MISSING};

/// Why a code was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefusal {
    /// The phone's previous code of this purpose is inside its resend cooldown.
    Cooldown { retry_after: u64 },
    /// A send cap is used up for this window.
    Cap { scope: SendScope, retry_after: u64 },
    /// The shared budgets' unchecked half is used up (`CAPTCHA_WHEN=under-pressure`): the send
    /// needs a bot check.
    CheckNeeded,
}

impl From<SendRefusal> for AuthError {
    fn from(refusal: SendRefusal) -> Self {
        match refusal {
            SendRefusal::Cooldown { retry_after } => AuthError::ResendTooSoon { retry_after },
            SendRefusal::Cap { retry_after, .. } => AuthError::RateLimited { retry_after },
            SendRefusal::CheckNeeded => AuthError::CaptchaRequired(TOKEN_MISSING),
        }
    }
}

/// A code that was sent: the client proves with `verification_id` that a guess comes from
/// whoever asked for the code, so that strangers' wrong guesses cannot use the code up.
pub struct SentCode {
    pub verification_id: String,
}

/// What became of a request to send a code that did not fail.
pub enum SendOutcome {
    Sent(SentCode),
    /// Refused by a limit before anything was stored or sent.
    Refused(SendRefusal),
}

impl SendOutcome {
    /// The sent code, or the refusal as the error a caller answers with.
    pub fn sent(self) -> Result<SentCode, AuthError> {
        match self {
            Self::Sent(sent) => Ok(sent),
            Self::Refused(refusal) => Err(refusal.into()),
        }
    }
}

/// What a send transaction did: counted (in these counters: a full shard may have been swapped
/// for another of its budget), or refused by a limit.
enum Committed {
    Counted(Vec<SendCounter>),
    Refused(SendRefusal),
}

/// The steps of a send transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendStep {
    Cooldown,
    Code,
    Count(SendScope),
}

/// A code to send: its purpose, the budgets it draws on and what the bot check found, who asks,
/// whether the number's owner proved it recently (a registered number then has a floor beyond
/// the spent reserve), and the account the code is bound to when not the phone's own (a change
/// of number: no other account can spend it).
pub struct CodeToSend<'a> {
    pub purpose: OtpPurpose,
    pub pool: SendPool,
    pub bot: BotCheck,
    pub known_network: bool,
    pub proved_recently: bool,
    pub owner: Option<&'a str>,
}

impl CodeToSend<'_> {
    /// A code of `purpose` from `pool`, from an unknown network to a number not proved lately.
    pub fn new(purpose: OtpPurpose, pool: SendPool, bot: BotCheck) -> Self {
        Self {
            purpose,
            pool,
            bot,
            known_network: false,
            proved_recently: false,
            owner: None,
        }
    }
}

/// Stores a fresh code for `phone` and sends it by SMS in `language` (one of
/// `Messages::language_for`), counted against the caller's and the phone's caps and the budgets
/// of its pool as the bot check allows (`limits::caller_counters`, `limits::budget_counters`).
/// The code, the caller's resend cooldown and the send counters are written in one
/// transaction, so a refused send changes nothing.
pub async fn send_code(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
    send: CodeToSend<'_>,
    language: &str,
) -> Result<SendOutcome, AuthError> {
    let CodeToSend {
        purpose,
        pool,
        bot,
        known_network,
        proved_recently,
        owner,
    } = send;
    let config = &app.config;
    limits::ensure_sms_allowed(config, phone)?;
    let now = app.clock.now();
    let fixed_code = config.test_otp_numbers.get(phone.as_str());
    let code = fixed_code.map_or_else(
        || OtpCode::generate(config.otp_length),
        |code| OtpCode::from_configured(code),
    );
    let verification_id = new_opaque_token()?;

    let limits = &config.limits;
    let requester = Requester {
        network: &caller.network,
        block: limits::block_of(&caller.ip),
        known_network,
    };
    let counters = |floor: bool| {
        let mut counted = limits::caller_counters(limits, pool, phone, &requester, now);
        counted.extend(if floor {
            limits::floor_counters(limits, phone, now)
        } else {
            limits::budget_counters(limits, pool, phone, now, random_shard)
        });
        counted
    };
    let code_hash = app.otp_hasher()?.hash(phone, &code);
    let new_otp = NewOtp {
        phone,
        purpose,
        owner,
        code_hash,
        verification_hash: hash_opaque_token(&verification_id),
        network: &caller.network,
        now,
        expires_at: now + config.otp_ttl_seconds,
        resend_at: now + config.otp_resend_seconds,
        decoy: false,
    };
    let mut outcome = commit_send(app, &new_otp, counters(false), bot).await?;
    // Only the owner's own networks reach the floor: strangers naming a list of active numbers
    // must not spend it (nor turn it into a budget of its own).
    if proved_recently
        && known_network
        && pool != SendPool::NewNumbers
        && matches!(outcome, Committed::Refused(SendRefusal::Cap { scope, .. }) if scope.is_reserve())
    {
        tracing::info!("reserve spent: a recently proved number's floor is used");
        outcome = commit_send(app, &new_otp, counters(true), bot).await?;
    }
    let counted = match outcome {
        Committed::Counted(counted) => counted,
        Committed::Refused(refusal) => return Ok(SendOutcome::Refused(refusal)),
    };

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
            code: Some((&code, purpose)),
            language,
            now,
        };
        // The pressure check does not delay the SMS: both wait on the network.
        let (sent_sms, ()) =
            tokio::join!(app.sms.send(&sms), report_pressure(app, caller, &counted));
        match sent_sms {
            Ok(Delivery::Accepted) => {}
            // The text may still arrive: the code stays usable, the send stays counted and the
            // caller is answered as for a sent code (asking again now would meet the cooldown).
            Ok(Delivery::Unconfirmed) => {
                let uncertain = Subject {
                    phone: Some(phone),
                    detail: Some(purpose.as_str()),
                    ..Subject::default()
                };
                audit::record(AuditEvent::SmsSendUncertain, caller, uncertain);
            }
            Err(error) => {
                take_back_unsent(app, &new_otp, &counted).await;
                return Err(error);
            }
        }
    } else {
        report_pressure(app, caller, &counted).await;
    }
    // A configured test number gets its code stored but no SMS.
    audit::record(AuditEvent::OtpSent, caller, sent);
    Ok(SendOutcome::Sent(SentCode { verification_id }))
}

/// Writes the code, the cooldown and the counts of `counted` in one transaction: the counters
/// as counted (a full shard replaced by another of its budget), or why the send was refused.
async fn commit_send(
    app: &App,
    new_otp: &NewOtp<'_>,
    mut counted: Vec<SendCounter>,
    bot: BotCheck,
) -> Result<Committed, AuthError> {
    let limits = &app.config.limits;
    let now = new_otp.now;
    for attempt in 0..SHARD_ATTEMPTS {
        let [cooldown, stored] = app.store.otps.store(new_otp)?;
        let mut transaction = Transaction::new()
            .step(SendStep::Cooldown, cooldown)
            .step(SendStep::Code, stored);
        for counter in &counted {
            transaction = transaction.step(
                SendStep::Count(counter.scope),
                app.store
                    .attempts
                    .count_send(counter, bot.limit_of(counter))?,
            );
        }
        let refused = match app.store.commit(&transaction).await {
            Ok(()) => return Ok(Committed::Counted(counted)),
            Err(TransactionError::Storage(error)) => return Err(error),
            Err(refused @ TransactionError::Refused(_)) => refused,
        };
        if let Some(cooldown) = refused.refused(SendStep::Cooldown) {
            let retry_after = resend_wait(cooldown.old_item(), now);
            return Ok(Committed::Refused(SendRefusal::Cooldown { retry_after }));
        }
        if refused.refused(SendStep::Code).is_some() {
            return Err(AuthError::internal("a new verification id was taken"));
        }
        let full: Vec<usize> = (0..counted.len())
            .filter(|&i| refused.refused(SendStep::Count(counted[i].scope)).is_some())
            .collect();
        // Refused only short of the full limits: a bot check would let the send through.
        let mut check_would_pass = bot == BotCheck::Unchecked && !full.is_empty();
        for &i in &full {
            let old = refused
                .refused(SendStep::Count(counted[i].scope))
                .and_then(Refusal::old_item);
            check_would_pass &= AttemptsTable::send_hits(old)? < u64::from(counted[i].limit);
        }
        // A full shard of a budget whose other shards may still have room: try another one.
        let moved: Option<Vec<SendCounter>> = full
            .iter()
            .map(|&i| another_shard(limits, &counted[i], now))
            .collect();
        match moved {
            Some(moved) if !moved.is_empty() && attempt + 1 < SHARD_ATTEMPTS => {
                for (i, counter) in full.into_iter().zip(moved) {
                    counted[i] = counter;
                }
            }
            _ if check_would_pass => {
                tracing::info!("code not sent: the budgets' unchecked half is used up");
                return Ok(Committed::Refused(SendRefusal::CheckNeeded));
            }
            _ => {
                // The refusal that lasts longest is the one to wait out (a cap of the phone
                // rather than the reserve on a tie: no floor can help then).
                let last = full
                    .iter()
                    .map(|&i| &counted[i])
                    .max_by_key(|counter| (counter.window.ends_at, !counter.scope.is_reserve()));
                let (scope, retry_after) = last.map_or((SendScope::Global, 1), |counter| {
                    (counter.scope, counter.window.ends_at - now)
                });
                tracing::info!(budget = scope.name(), "code not sent: send budget used up");
                return Ok(Committed::Refused(SendRefusal::Cap { scope, retry_after }));
            }
        }
    }
    Err(AuthError::internal(
        "a send was planned again past its attempts",
    ))
}

/// After the provider refused the send (nothing was sent; an unknown outcome keeps the code):
/// deletes the code and the cooldown it set (only if they are still this send's), so that the
/// user is not held to a cooldown for a message never sent, and refunds the phone's send budgets
/// (`refunded_on_failed_send`), so that asking again does not count twice. The writes go out
/// side by side (one round trip of the Lambda time budget, see template.yaml). Best effort: the
/// answer is the provider's failure anyway.
async fn take_back_unsent(app: &App, otp: &NewOtp<'_>, counted: &[SendCounter]) {
    let delete = async {
        if let Err(error) = app.store.otps.delete_unsent(otp).await {
            tracing::warn!(%error, "could not remove an unsent otp");
        }
    };
    let refunds = counted
        .iter()
        .filter(|counter| counter.scope.refunded_on_failed_send())
        .map(|counter| async move {
            if let Err(error) = app.store.attempts.refund_send(counter).await {
                tracing::warn!(%error, "could not refund the send budget of an unsent otp");
            }
        });
    tokio::join!(delete, futures_util::future::join_all(refunds));
}

/// A shard of a sharded budget, chosen at random so sends spread over its items.
fn random_shard(shards: u32) -> u32 {
    rand::random_range(0..shards.max(1))
}

/// How many shards a send tries before a full budget refuses it: a second try keeps a budget
/// whose chosen shard filled first from refusing while others have room, and costs a refused
/// send at most two transactions.
const SHARD_ATTEMPTS: usize = 2;

/// The counter of another shard of `counter`'s budget, chosen at random; none when the budget
/// has one shard (or `counter` is not sharded).
fn another_shard(limits: &Limits, counter: &SendCounter, now: u64) -> Option<SendCounter> {
    let full = counter.shard?;
    let moved = limits::send_counter(limits, counter.scope, counter.subject.clone(), now, |n| {
        (full + 1 + rand::random_range(0..n.saturating_sub(1).max(1))) % n.max(1)
    });
    (moved.shard != Some(full)).then_some(moved)
}

/// After a counted send: reports each shared budget that this send took past half or nine
/// tenths of its window (`sms_budget_pressure`, once per budget, level and window), so an alarm
/// fires before users are refused. A sharded budget's level is that of the shard the send
/// counted in (sends spread evenly over the shards). Best effort: a failure is logged.
async fn report_pressure(app: &App, caller: &Caller, counted: &[SendCounter]) {
    let budgets: Vec<SendCounter> = counted
        .iter()
        .filter(|counter| counter.scope.is_shared_budget())
        .cloned()
        .collect();
    if budgets.is_empty() {
        return;
    }
    let hits = match app.store.attempts.send_counts(&budgets).await {
        Ok(hits) => hits,
        Err(error) => {
            tracing::warn!(%error, "could not read the send budgets' use");
            return;
        }
    };
    for (counter, hits) in budgets.iter().zip(hits) {
        for level in limits::pressure_reached(hits, counter.limit) {
            match app.store.attempts.mark_pressure(counter, level).await {
                Ok(true) => audit::budget_pressure(caller, counter, level),
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "could not mark a send budget's pressure"),
            }
        }
    }
}
