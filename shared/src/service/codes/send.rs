//! Sending a code: the code and the counters it is sent under, the send transaction
//! (`guard::commit_send`), the SMS, the take-back of a refused send and the pressure report.

use crate::App;
use crate::audit::{self, AuditEvent, Subject};
use crate::breaker::Conversion;
use crate::config::Limits;
use crate::error::AuthError;
use crate::http::Caller;
use crate::limits::{self, Requester, SendCounter, SendPool, SendScope};
use crate::messages::CodeMessage;
use crate::otp::{OtpCode, OtpPurpose};
use crate::phone::PhoneNumber;
use crate::service::guard::{self, BreakerPart, Committed};
use crate::sms::{Delivery, Sms};
use crate::store::otps::NewOtp;
use crate::tokens::{hash_opaque_token, new_opaque_token};

use super::bot_check::{BotCheck, TOKEN_MISSING};

/// Why a code was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefusal {
    /// The phone's previous code of this purpose is inside its resend cooldown.
    Cooldown { retry_after: u64 },
    /// A send cap is used up for this window.
    Cap { scope: SendScope, retry_after: u64 },
    /// The shared budgets' unchecked half is used up (`CAPTCHA_WHEN=under-pressure`), or the
    /// SMS breaker challenges the destination: the send needs a bot check.
    CheckNeeded,
    /// The SMS breaker blocks the destination for codes to new numbers.
    Paused { retry_after: u64 },
}

impl From<SendRefusal> for AuthError {
    fn from(refusal: SendRefusal) -> Self {
        match refusal {
            SendRefusal::Cooldown { retry_after } => AuthError::ResendTooSoon { retry_after },
            SendRefusal::Cap { retry_after, .. } | SendRefusal::Paused { retry_after } => {
                AuthError::RateLimited { retry_after }
            }
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
    /// The pool's budgets as a lookup read them just before (`BudgetReading`).
    pub budgets: Option<BudgetReading>,
}

/// The budgets a send will draw on, their shards chosen and their sends read before it (in the
/// lookup's read, which check-phone and a change of number make anyway): the send counts in
/// these shards, and its pressure report needs no read of its own (the sends read plus this
/// one: a lower bound under parallel sends, so a level is reported late, never early).
pub struct BudgetReading {
    pub counters: Vec<SendCounter>,
    pub sends: Vec<u64>,
}

impl BudgetReading {
    /// Whether these are `pool`'s budgets in the windows current at `now`.
    fn is_current(&self, limits: &Limits, pool: SendPool, now: u64) -> bool {
        let scopes = self.counters.iter().map(|counter| counter.scope);
        scopes.eq(pool.budgets().iter().copied())
            && self
                .counters
                .iter()
                .all(|counter| counter.window == limits::send_limit(limits, counter.scope, now).1)
    }

    /// The sends read in `counter`, when it is one of these.
    fn sends_before(&self, counter: &SendCounter) -> Option<u64> {
        let position = self.counters.iter().position(|read| read == counter)?;
        self.sends.get(position).copied()
    }
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
            budgets: None,
        }
    }
}

/// Stores a fresh code for `phone` and sends it by SMS in `language` (one of
/// `Messages::language_for`), counted against the caller's and the phone's caps and the budgets
/// of its pool as the bot check allows (`limits::caller_counters`, `limits::budget_counters`).
/// The code, the caller's resend cooldown and the send counters are written in one
/// transaction (`guard::commit_send`), so a refused send changes nothing.
pub async fn send_code(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
    send: CodeToSend<'_>,
    language: &str,
) -> Result<SendOutcome, AuthError> {
    limits::ensure_sms_allowed(&app.config, phone)?;
    let now = app.clock.now();
    let code = new_code(app, phone);
    let verification_id = new_opaque_token()?;
    let new_otp = new_otp(app, phone, caller, &send, &code, &verification_id, now)?;
    let budgets = counters(app, phone, caller, &send, now);
    let breaker = breaker_part(app, phone, &send, &code, now);
    let counted = match guard::commit_send(app, &new_otp, budgets, &breaker, send.bot).await? {
        Committed::Counted(counted) => counted,
        Committed::Refused {
            refusal,
            full_budgets,
        } => {
            mark_pressure(app, caller, &full_budgets).await;
            return Ok(SendOutcome::Refused(refusal));
        }
    };
    let sent = Sent {
        otp: &new_otp,
        counted: &counted,
        breaker: &breaker,
        budgets: send.budgets.as_ref(),
        caller,
    };
    match code {
        // A configured test number gets its code stored but no SMS.
        NewCode::Fixed(_) => report_pressure(app, &sent).await,
        NewCode::Texted(code) => text_code(app, &sent, &code, language).await?,
    }
    let subject = Subject {
        phone: Some(phone),
        detail: Some(send.purpose.as_str()),
        ..Subject::default()
    };
    audit::record(AuditEvent::OtpSent, caller, subject);
    Ok(SendOutcome::Sent(SentCode { verification_id }))
}

/// A fresh code: a test number's configured one (never texted), or a random one to text.
enum NewCode {
    Fixed(OtpCode),
    Texted(OtpCode),
}

impl NewCode {
    fn code(&self) -> &OtpCode {
        match self {
            Self::Fixed(code) | Self::Texted(code) => code,
        }
    }
}

fn new_code(app: &App, phone: &PhoneNumber) -> NewCode {
    match app.config.test_otp_numbers.get(phone.as_str()) {
        Some(code) => NewCode::Fixed(OtpCode::from_configured(code)),
        None => NewCode::Texted(OtpCode::generate(app.config.otp_length)),
    }
}

/// The code as stored: its hash under the verification id's, with its expiry and cooldown.
fn new_otp<'a>(
    app: &App,
    phone: &'a PhoneNumber,
    caller: &'a Caller,
    send: &CodeToSend<'a>,
    code: &NewCode,
    verification_id: &str,
    now: u64,
) -> Result<NewOtp<'a>, AuthError> {
    let config = &app.config;
    Ok(NewOtp {
        phone,
        purpose: send.purpose,
        owner: send.owner,
        code_hash: app.otp_hasher()?.hash(phone, code.code()),
        verification_hash: hash_opaque_token(verification_id),
        network: &caller.network,
        now,
        expires_at: now + config.otp_ttl_seconds,
        resend_at: now + config.otp_resend_seconds,
        decoy: false,
    })
}

/// The counters a send counts in (the caller's and the phone's, then its pool's budgets: as
/// read before the send, else with a shard of each sharded one at random), and those it counts in instead once the reserve is
/// spent: a recently proved number's floor, reached only from the owner's own networks
/// (strangers naming a list of active numbers must not spend it, nor turn it into a budget of
/// its own).
fn counters(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
    send: &CodeToSend<'_>,
    now: u64,
) -> (Vec<SendCounter>, Option<Vec<SendCounter>>) {
    let limits = &app.config.limits;
    let requester = Requester {
        network: &caller.network,
        block: limits::block_of(&caller.ip),
        known_network: send.known_network,
    };
    let callers = limits::caller_counters(limits, send.pool, phone, &requester, now);
    let budgets = match &send.budgets {
        Some(read) if read.is_current(limits, send.pool, now) => read.counters.clone(),
        _ => limits::budget_counters(limits, send.pool, phone, now, guard::random_shard),
    };
    let has_floor = send.proved_recently && send.known_network && send.pool != SendPool::NewNumbers;
    let floor = has_floor.then(|| {
        let floor = limits::floor_counters(limits, phone, now);
        [callers.clone(), floor].concat()
    });
    ([callers, budgets].concat(), floor)
}

/// The breaker's part of a texted code: the counters it counts in as sent (a random shard of its
/// country's), and, when the breaker enforces, a check of its destinations' states for a code
/// to a new number (codes to registered numbers meet the breaker in `check_bot`, whose answer
/// does not depend on the account). A test number's fixed code is neither counted nor checked.
fn breaker_part(
    app: &App,
    phone: &PhoneNumber,
    send: &CodeToSend<'_>,
    code: &NewCode,
    now: u64,
) -> BreakerPart {
    let breaker = &app.config.sms_breaker;
    let to_new_number = send.pool == SendPool::NewNumbers;
    let sent = if to_new_number {
        Conversion::SentToNewNumber
    } else {
        Conversion::Sent
    };
    match code {
        NewCode::Fixed(_) => BreakerPart {
            conversions: Vec::new(),
            sent,
            checked: false,
        },
        NewCode::Texted(_) => BreakerPart {
            conversions: breaker.counters_of(phone, now, guard::random_shard),
            sent,
            checked: breaker.enforces() && to_new_number,
        },
    }
}

/// A send the counters took: the code as stored and the counters it was counted in.
struct Sent<'a> {
    otp: &'a NewOtp<'a>,
    counted: &'a [SendCounter],
    /// The breaker's counters it was counted in as sent, and as what.
    breaker: &'a BreakerPart,
    /// The budgets as read before the send, if they were.
    budgets: Option<&'a BudgetReading>,
    caller: &'a Caller,
}

/// Texts the code, with the pressure report beside it (both wait on the network, so the report
/// does not delay the SMS). A send the provider refused is taken back (`take_back_unsent`); one
/// whose outcome is unknown stays: the text may still arrive, so the code stays usable, the
/// send stays counted and the caller is answered as for a sent code (asking again now would
/// meet the cooldown).
async fn text_code(
    app: &App,
    sent: &Sent<'_>,
    code: &OtpCode,
    language: &str,
) -> Result<(), AuthError> {
    let config = &app.config;
    let purpose = sent.otp.purpose;
    let message = CodeMessage {
        service: &config.service_name,
        purpose,
        code: code.expose(),
        minutes: config.otp_ttl_seconds.div_ceil(60),
    };
    let body = config.messages.compose(language, &message);
    let sms = Sms {
        to: sent.otp.phone,
        body: &body,
        code: Some((code, purpose)),
        language,
        now: sent.otp.now,
        feedback: !sent.breaker.conversions.is_empty(),
    };
    let pressure = report_pressure(app, sent);
    match tokio::join!(app.sms.send(&sms), pressure).0 {
        Ok(Delivery::Accepted { message_id: None }) => Ok(()),
        Ok(Delivery::Accepted {
            message_id: Some(message_id),
        }) => {
            if let Err(error) = app.store.otps.set_message_id(sent.otp, &message_id).await {
                tracing::warn!(%error, "could not note the message id of a code's SMS");
            }
            Ok(())
        }
        Ok(Delivery::Unconfirmed) => {
            let uncertain = Subject {
                phone: Some(sent.otp.phone),
                detail: Some(purpose.as_str()),
                ..Subject::default()
            };
            audit::record(AuditEvent::SmsSendUncertain, sent.caller, uncertain);
            Ok(())
        }
        Err(error) => {
            take_back_unsent(app, sent).await;
            Err(error)
        }
    }
}

/// After the provider refused the send (nothing was sent; an unknown outcome keeps the code):
/// deletes the code and the cooldown it set (only if they are still this send's), so that the
/// user is not held to a cooldown for a message never sent, and refunds the phone's send budgets
/// (`refunded_on_failed_send`), so that asking again does not count twice, and the breaker's
/// count of it as sent (an SMS never sent is no code left unentered). The writes go out side by
/// side (one round trip of the Lambda time budget, see template.yaml). Best effort: the answer
/// is the provider's failure anyway.
async fn take_back_unsent(app: &App, sent: &Sent<'_>) {
    let delete = async {
        if let Err(error) = app.store.otps.delete_unsent(sent.otp).await {
            tracing::warn!(%error, "could not remove an unsent otp");
        }
    };
    let refunds = sent
        .counted
        .iter()
        .filter(|counter| counter.scope.refunded_on_failed_send())
        .map(|counter| async move {
            if let Err(error) = app.store.attempts.refund_send(counter).await {
                tracing::warn!(%error, "could not refund the send budget of an unsent otp");
            }
        });
    let conversions = sent.breaker.conversions.iter().map(|counter| async move {
        if let Err(error) = app
            .store
            .attempts
            .refund_conversion(counter, sent.breaker.sent)
            .await
        {
            tracing::warn!(%error, "could not take back the breaker's count of an unsent otp");
        }
    });
    tokio::join!(
        delete,
        futures_util::future::join_all(refunds),
        futures_util::future::join_all(conversions)
    );
}

/// After a counted send: reports each shared budget that this send took past half or nine
/// tenths of its window (`sms_budget_pressure`, once per budget, level and window), so an alarm
/// fires before users are refused. A sharded budget's level is that of the shard the send
/// counted in (sends spread evenly over the shards). Best effort: a failure is logged.
async fn report_pressure(app: &App, sent: &Sent<'_>) {
    let budgets: Vec<SendCounter> = sent
        .counted
        .iter()
        .filter(|counter| counter.scope.is_shared_budget())
        .cloned()
        .collect();
    if budgets.is_empty() {
        return;
    }
    let sends = match budget_use(app, &budgets, sent.budgets).await {
        Ok(sends) => sends,
        Err(error) => {
            tracing::warn!(%error, "could not read the send budgets' use");
            return;
        }
    };
    let used: Vec<(SendCounter, u64)> = budgets.into_iter().zip(sends).collect();
    mark_pressure(app, sent.caller, &used).await;
}

/// Marks and reports each level of its window that a budget's `sends` reached, once per
/// budget, level and window. Best effort: a failure is logged.
async fn mark_pressure(app: &App, caller: &Caller, used: &[(SendCounter, u64)]) {
    for (counter, sends) in used {
        for level in limits::pressure_reached(*sends, counter.limit) {
            match app.store.attempts.mark_pressure(counter, level).await {
                Ok(true) => audit::budget_pressure(caller, counter, level),
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "could not mark a send budget's pressure"),
            }
        }
    }
}

/// The sends counted in `budgets` with this one: as read before the send plus this one when
/// every budget was (no shard moved), else read now.
async fn budget_use(
    app: &App,
    budgets: &[SendCounter],
    read: Option<&BudgetReading>,
) -> Result<Vec<u64>, AuthError> {
    let before: Option<Vec<u64>> = read.and_then(|read| {
        budgets
            .iter()
            .map(|counter| read.sends_before(counter))
            .collect()
    });
    match before {
        Some(before) => Ok(before.into_iter().map(|sends| sends + 1).collect()),
        None => app.store.attempts.send_counts(budgets).await,
    }
}
