//! One-time codes: sending them within the limits, and checking them under the lock-out rules.

use crate::App;
use crate::audit::{self, AuditEvent, Subject};
use crate::captcha::CaptchaWhen;
use crate::config::Limits;
use crate::error::AuthError;
use crate::http::Caller;
use crate::limits::{self, SendCounter, SendPool, SendScope};
use crate::messages::CodeMessage;
use crate::otp::{OtpCode, OtpPurpose};
use crate::phone::PhoneNumber;
use crate::profile::User;
use crate::service::guard::{self, CodeSlot, Guards};
use crate::sms::{Delivery, Sms};
use crate::store::attempts::{AttemptsTable, FailureKind};
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

/// The steps of a send transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendStep {
    Code,
    Count(SendScope),
}

/// Stores a fresh code for `phone` and sends it by SMS in `language` (one of
/// `Messages::language_for`), drawing on the budgets of `pool` as the bot check `bot` allows.
/// The code, the resend cooldown and the send counters are written in one transaction, so a
/// refused send changes nothing.
pub async fn send_otp(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
    purpose: OtpPurpose,
    (pool, bot): (SendPool, BotCheck),
    language: &str,
) -> Result<Result<SentCode, SendRefusal>, AuthError> {
    let send = Send {
        purpose,
        pool,
        bot,
        phone_subject: phone.as_str().to_owned(),
        owner: None,
    };
    send_counted(app, phone, caller, send, language).await
}

/// As `send_otp`, for the code that proves a new number before the account of `user_id` moves
/// to it: the code is bound to that account, so no other account can spend or replace it.
pub async fn send_phone_change_otp(
    app: &App,
    new_phone: &PhoneNumber,
    caller: &Caller,
    user_id: &str,
    bot: BotCheck,
    language: &str,
) -> Result<Result<SentCode, SendRefusal>, AuthError> {
    let send = Send {
        purpose: OtpPurpose::PhoneChange,
        pool: SendPool::NewNumbers,
        bot,
        phone_subject: new_phone.as_str().to_owned(),
        owner: Some(user_id),
    };
    send_counted(app, new_phone, caller, send, language).await
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
    let send = Send {
        purpose: OtpPurpose::Login,
        pool: SendPool::StepUp,
        bot: BotCheck::NotAsked,
        phone_subject: format!("login#{phone}"),
        owner: None,
    };
    send_counted(app, phone, caller, send, language).await
}

/// What a send is: the code's purpose, the budgets it draws on and what the bot check found,
/// the name of the per-phone send caps it counts against, and the account it is bound to when
/// not the phone's own.
struct Send<'a> {
    purpose: OtpPurpose,
    pool: SendPool,
    bot: BotCheck,
    phone_subject: String,
    owner: Option<&'a str>,
}

async fn send_counted(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
    send: Send<'_>,
    language: &str,
) -> Result<Result<SentCode, SendRefusal>, AuthError> {
    let Send {
        purpose,
        pool,
        bot,
        phone_subject,
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
    let mut counted: Vec<SendCounter> = [
        (SendScope::Phone, phone_subject.as_str()),
        (SendScope::PhoneDaily, phone_subject.as_str()),
        (SendScope::ClientNetwork, caller.network.as_str()),
    ]
    .into_iter()
    .map(|(scope, subject)| {
        limits::send_counter(limits, scope, subject.to_owned(), now, random_shard)
    })
    .collect();
    counted.extend(limits::budget_counters(
        limits,
        pool,
        phone,
        now,
        random_shard,
    ));
    let code_hash = app.otp_hasher()?.hash(phone, &code);
    let new_otp = NewOtp {
        phone,
        purpose,
        owner,
        code_hash: code_hash.clone(),
        verification_hash: hash_opaque_token(&verification_id),
        now,
        expires_at: now + config.otp_ttl_seconds,
        resend_at: now + config.otp_resend_seconds,
    };
    for attempt in 0..SHARD_ATTEMPTS {
        let mut transaction =
            Transaction::new().step(SendStep::Code, app.store.otps.replace(new_otp.clone())?);
        for counter in &counted {
            transaction = transaction.step(
                SendStep::Count(counter.scope),
                app.store
                    .attempts
                    .count_send(counter, bot.limit_of(counter))?,
            );
        }
        let refused = match app.store.commit(&transaction).await {
            Ok(()) => break,
            Err(TransactionError::Storage(error)) => return Err(error),
            Err(refused @ TransactionError::Refused(_)) => refused,
        };
        if let Some(old_item) = refused.refused(SendStep::Code) {
            let retry_after = resend_wait(old_item, owner, now);
            return Ok(Err(SendRefusal::Cooldown { retry_after }));
        }
        let full: Vec<usize> = (0..counted.len())
            .filter(|&i| refused.refused(SendStep::Count(counted[i].scope)).is_some())
            .collect();
        // Refused only short of the full limits: a bot check would let the send through.
        let check_would_pass = bot == BotCheck::Unchecked
            && !full.is_empty()
            && full.iter().all(|&i| {
                let old = refused.refused(SendStep::Count(counted[i].scope)).flatten();
                AttemptsTable::send_hits(old) < u64::from(counted[i].limit)
            });
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
                return Ok(Err(SendRefusal::CheckNeeded));
            }
            _ => {
                let (scope, retry_after) = full.first().map_or((SendScope::Global, 1), |&i| {
                    (counted[i].scope, counted[i].window.ends_at - now)
                });
                tracing::info!(budget = scope.name(), "code not sent: send budget used up");
                return Ok(Err(SendRefusal::Cap { scope, retry_after }));
            }
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
                take_back_unsent(app, phone, purpose, &code_hash, &counted).await;
                return Err(error);
            }
        }
    } else {
        report_pressure(app, caller, &counted).await;
    }
    // A configured test number gets its code stored but no SMS.
    audit::record(AuditEvent::OtpSent, caller, sent);
    Ok(Ok(SentCode { verification_id }))
}

/// After the provider refused the send (nothing was sent; an unknown outcome keeps the code):
/// deletes the code (only if it is still this one, not a newer code a concurrent request
/// stored), so that the user is not held to a cooldown for a message never sent, and refunds
/// the phone's send budgets (`refunded_on_failed_send`), so that asking again does not count
/// twice. The writes go out side by side (one round trip of the Lambda time budget, see
/// template.yaml). Best effort: the answer is the provider's failure anyway.
async fn take_back_unsent(
    app: &App,
    phone: &PhoneNumber,
    purpose: OtpPurpose,
    code_hash: &str,
    counted: &[SendCounter],
) {
    let delete = async {
        if let Err(error) = app
            .store
            .otps
            .delete_unsent(phone, purpose, code_hash)
            .await
        {
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

const TOKEN_MISSING: &str = "Complete the captcha and send its token as 'captcha_token'.";

/// What the bot check before a code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotCheck {
    /// No check is configured (or the number is a test number): the full budgets apply.
    NotAsked,
    /// The provider accepted the token: the full budgets apply.
    Passed,
    /// The check is asked for only under pressure and no token came: the send may use only the
    /// unchecked half of each shared budget (`limits::unchecked_share`), counted atomically.
    Unchecked,
    /// A check was asked for and the request carried no token.
    TokenMissing,
}

impl BotCheck {
    /// Refuses a send without the token the check asked for.
    pub fn ensure_passed(self) -> Result<(), AuthError> {
        match self {
            Self::TokenMissing => Err(AuthError::CaptchaRequired(TOKEN_MISSING)),
            Self::NotAsked | Self::Passed | Self::Unchecked => Ok(()),
        }
    }

    /// The limit a send is counted against in `counter`.
    fn limit_of(self, counter: &SendCounter) -> u32 {
        if self == Self::Unchecked && counter.scope.is_shared_budget() {
            limits::unchecked_share(counter.limit)
        } else {
            counter.limit
        }
    }
}

/// The bot check before a code to `phone` from `pool` (`CAPTCHA_PROVIDER`, `CAPTCHA_WHEN`). A
/// token sent is verified with the provider before any counter is spent (a refused one is a
/// 400, the provider unreachable a 503). Without a token: `always` asks for one; `under-pressure`
/// lets the send use the unchecked half of the shared budgets, except that a code to a
/// registered number asks for one as soon as its reserve is half used (read from the pressure
/// marks, which do not depend on the number, so the answer tells nothing about the account).
/// Test numbers get no SMS and no check; step-up codes need the password, and no check.
pub async fn check_bot(
    app: &App,
    phone: &PhoneNumber,
    pool: SendPool,
    token: Option<&str>,
    caller: &Caller,
) -> Result<BotCheck, AuthError> {
    let Some(verifier) = &app.captcha else {
        return Ok(BotCheck::NotAsked);
    };
    if pool == SendPool::StepUp || app.config.test_otp_numbers.contains_key(phone.as_str()) {
        return Ok(BotCheck::NotAsked);
    }
    if let Some(token) = token.filter(|token| !token.trim().is_empty()) {
        if !verifier.verify(token, &caller.ip).await? {
            return Err(AuthError::CaptchaRequired(
                "The captcha was not accepted. Solve it again and send the new token.",
            ));
        }
        return Ok(BotCheck::Passed);
    }
    if verifier.when == CaptchaWhen::Always {
        return Ok(BotCheck::TokenMissing);
    }
    if pool == SendPool::Registered {
        let now = app.clock.now();
        let budgets = limits::budget_counters(&app.config.limits, pool, phone, now, |_| 0);
        let half = limits::PRESSURE_LEVELS[0];
        if app
            .store
            .attempts
            .any_under_pressure(&budgets, half)
            .await?
        {
            return Ok(BotCheck::TokenMissing);
        }
    }
    Ok(BotCheck::Unchecked)
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

/// Whether `phone` has an account, for `check-phone` and a change of number. Each lookup counts
/// against the client network's lookup cap, so numbers cannot be enumerated faster than that;
/// the account is read in the same round trip, and told only when the count was accepted.
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
