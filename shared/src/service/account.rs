//! The account of a logged-in user, and password recovery by OTP.
//!
//! A credential change revokes first and cleans up after: the transaction that writes the new
//! password also bumps the user's credentials version, which ends every older session at once;
//! deleting the old session items afterwards is only tidying, so an outage between the steps
//! leaves no old session alive.

use crate::App;
use crate::audit::{self, AuditEvent, Subject};
use crate::breaker::{Conversion, ConversionCounter};
use crate::error::AuthError;
use crate::events::{DeletedBy, Event, EventSubject, PasswordChangedBy};
use crate::http::Caller;
use crate::limits::{self, Requester, SendCounter, SendPool, SendScope};
use crate::otp::OtpPurpose;
use crate::password::{self, Password};
use crate::phone::PhoneNumber;
use crate::profile::{ProfileChanges, User};
use crate::service::codes::{
    CodeGuess, CodeToSend, SendOutcome, SendRefusal, SentCode, check_bot, match_account_code,
    send_code,
};
use crate::service::event_write;
use crate::service::guard::{self, Plan};
use crate::service::sessions::{
    ConfirmedPassword, confirm_password, give_back_password_slot, mark_proof,
};
use crate::store::otps::NewOtp;
use crate::store::sessions::Session;
use crate::store::{AccountCodeRecords, Refusal, Transaction, Write};
use crate::tokens::{hash_opaque_token, new_opaque_token};

/// The account behind a live session (gone if it was deleted meanwhile).
pub async fn current_user(app: &App, session: &Session) -> Result<User, AuthError> {
    app.store
        .users
        .get(&session.phone)
        .await?
        .filter(|user| user.profile.id == session.user_id)
        .ok_or(AuthError::InvalidToken)
}

pub async fn update_profile(
    app: &App,
    session: &Session,
    changes: ProfileChanges,
) -> Result<User, AuthError> {
    app.store
        .users
        .update_profile(&session.phone, &session.user_id, changes)
        .await?
        .ok_or(AuthError::InvalidToken)
}

/// Deletes the stale session items of a user after their credentials changed to version
/// `current`; they are already dead (an older credentials version), so a failure here is
/// logged, not returned. A session started since, under the new version, stays.
pub(crate) async fn tidy_sessions(app: &App, user_id: &str, current: u64) {
    match app.store.sessions.remove_stale(user_id, current).await {
        Ok(revoked) => tracing::info!(user_id, revoked, "old sessions removed"),
        Err(error) => tracing::warn!(user_id, %error, "could not remove old sessions"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AccountStep {
    Account,
    Credentials,
    KeepSession,
    Clear,
}

/// Deletes the account and ends all its sessions; the phone can register again.
pub async fn delete_account(
    app: &App,
    session: &Session,
    password: Password,
    caller: &Caller,
) -> Result<(), AuthError> {
    let ConfirmedPassword {
        user,
        clear_counters,
    } = confirm_password(app, session, password, caller).await?;
    let deleted = async {
        let transaction = Transaction::new()
            .step(
                AccountStep::Account,
                app.store.users.delete(&session.phone, &session.user_id)?,
            )
            .step(
                AccountStep::Account,
                event_write(
                    app,
                    Event::UserDeleted {
                        by: DeletedBy::User,
                    },
                    session_subject(session, caller),
                    app.clock.now(),
                )?,
            )
            .step(
                AccountStep::Credentials,
                app.store
                    .sessions
                    .bump_credentials(&session.user_id, user.credentials_version)?,
            )
            .steps(AccountStep::Clear, clear_counters);
        // A refusal: the account or its credentials changed meanwhile.
        app.store
            .apply(&transaction, |_| AuthError::InvalidToken)
            .await
    };
    if let Err(error) = deleted.await {
        give_back_password_slot(app, session).await;
        return Err(error);
    }
    tidy_sessions(app, &session.user_id, user.credentials_version + 1).await;
    tracing::info!(user_id = %session.user_id, "account deleted");
    Ok(())
}

/// Replaces the password; every other session of the user ends, this one stays.
pub async fn change_password(
    app: &App,
    session: &Session,
    old_password: Password,
    new_password: Password,
    caller: &Caller,
) -> Result<(), AuthError> {
    let ConfirmedPassword {
        user,
        clear_counters,
    } = confirm_password(app, session, old_password, caller).await?;
    let changed = async {
        let hash = password::hash(new_password).await?;
        let subject = session_subject(session, caller);
        let by = PasswordChangedBy::Change;
        let new = NewPassword::writes(app, &user, hash, by, subject, app.clock.now())?;
        let transaction = Transaction::new()
            .steps(AccountStep::Account, new.account)
            .step(AccountStep::Credentials, new.credentials)
            .step(
                AccountStep::KeepSession,
                app.store
                    .sessions
                    .keep_under(session, user.credentials_version + 1)?,
            )
            .steps(AccountStep::Clear, clear_counters);
        // A refusal: the account, its credentials or this session changed meanwhile.
        app.store
            .apply(&transaction, |_| AuthError::InvalidToken)
            .await
    };
    if let Err(error) = changed.await {
        give_back_password_slot(app, session).await;
        return Err(error);
    }
    tidy_sessions(app, &session.user_id, user.credentials_version + 1).await;
    tracing::info!(user_id = %session.user_id, "password changed");
    Ok(())
}

/// Sends a code for `purpose` (a password reset, a login by code) if `phone` has an account.
/// The caller answers the same either way, so the answer must not depend on the account either:
/// the phone's cooldown and cap silently skip the SMS, every request counts once against the
/// client network's cap, which alone may refuse (429) since it says nothing about the number,
/// and a verification id comes back either way: when nothing was sent, it names a stand-in
/// that no code matches, so that guesses are answered alike too. The SMS is in `language`.
pub async fn request_code_for_account(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
    purpose: OtpPurpose,
    captcha_token: Option<&str>,
    language: &str,
) -> Result<SentCode, AuthError> {
    // Before the account lookup, so that the answer is the same with or without an account.
    limits::ensure_sms_allowed(&app.config, phone)?;
    let pool = SendPool::Registered;
    let bot = check_bot(app, phone, pool, captcha_token, caller).await?;
    bot.ensure_passed()?;
    let now = app.clock.now();
    let records = app.store.account_code_records(phone, &caller.network, now);
    let AccountCodeRecords {
        registered,
        known_network,
        proved_recently,
    } = records.await?;
    if registered {
        let send = CodeToSend {
            known_network,
            proved_recently,
            ..CodeToSend::new(purpose, pool, bot)
        };
        match send_code(app, phone, caller, send, language).await? {
            SendOutcome::Sent(sent) => return Ok(sent),
            SendOutcome::Refused(refusal @ SendRefusal::Cap { scope, .. })
                if is_callers_cap(scope) =>
            {
                return Err(refusal.into());
            }
            // Refused for the phone or the shared budgets (a refusal that asks for the bot check
            // included): count the caller as an unknown number would, and answer the same.
            SendOutcome::Refused(_) => tracing::info!(
                purpose = purpose.as_str(),
                "code not sent: phone cooldown or cap"
            ),
        }
    }
    answer_unsent(app, phone, caller, purpose, known_network).await
}

/// The answer to a code request that sent nothing (no account, or the phone's limits): the
/// caller's and the phone's counters counted as a send counts them, so that they refuse alike
/// either way, and a stand-in code stored under the id returned (with the network's resend
/// cooldown, as a code sets it), so that guesses are answered as for a code sent. The cooldown
/// and the phone's caps bound the stand-ins as they bound codes: inside the one or past the
/// other the id names nothing (as a refused send's would).
async fn answer_unsent(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
    purpose: OtpPurpose,
    known_network: bool,
) -> Result<SentCode, AuthError> {
    let now = app.clock.now();
    let requester = Requester {
        network: &caller.network,
        block: limits::block_of(&caller.ip),
        known_network,
    };
    let limits = &app.config.limits;
    let pool = SendPool::Registered;
    let counters = limits::caller_counters(limits, pool, phone, &requester, now);
    let verification_id = new_opaque_token()?;
    let stand_in = NewOtp {
        phone,
        purpose,
        owner: None,
        code_hash: hash_opaque_token(&new_opaque_token()?),
        verification_hash: hash_opaque_token(&verification_id),
        network: &caller.network,
        now,
        expires_at: now + app.config.otp_ttl_seconds,
        resend_at: now + app.config.otp_resend_seconds,
        decoy: true,
    };
    // Counted by the SMS breaker as a code sent, as a real one would be: its counts must not
    // tell which numbers have an account.
    let conversions = app
        .config
        .sms_breaker
        .counters_of(phone, now, guard::random_shard);
    let plan = UnsentPlan {
        stand_in: Some(&stand_in),
        counters: &counters,
        conversions: &conversions,
        now,
    };
    guard::commit_planned(app, plan, 2).await?;
    Ok(SentCode { verification_id })
}

/// The writes of an answer that sent nothing: the stand-in with the network's cooldown and every
/// counter of a send; inside the cooldown, or past the phone's caps, only the caller's counters
/// (the id then names nothing).
struct UnsentPlan<'a> {
    /// None once the stand-in was refused.
    stand_in: Option<&'a NewOtp<'a>>,
    counters: &'a [SendCounter],
    /// The SMS breaker's counters, counted as sent with the stand-in.
    conversions: &'a [ConversionCounter],
    now: u64,
}

impl Plan for UnsentPlan<'_> {
    type Step = Unsent;
    type Done = ();

    fn transaction(&self, app: &App) -> Result<Transaction<Unsent>, AuthError> {
        let mut transaction = Transaction::new();
        if let Some(stand_in) = self.stand_in {
            let [cooldown, decoy] = app.store.otps.store(stand_in)?;
            transaction = transaction
                .step(Unsent::Cooldown, cooldown)
                .step(Unsent::Decoy, decoy);
            for counter in self.conversions {
                let count = app
                    .store
                    .attempts
                    .count_conversion(counter, Conversion::Sent)?;
                transaction = transaction.step(Unsent::Conversion, count);
            }
        }
        for counter in self.counters {
            if self.stand_in.is_some() || is_callers_cap(counter.scope) {
                let count = app.store.attempts.count_send(counter, counter.limit)?;
                transaction = transaction.step(Unsent::Count(counter.scope), count);
            }
        }
        Ok(transaction)
    }

    fn committed(self, _app: &App) {}

    fn refused(
        &mut self,
        _app: &App,
        refusals: Vec<Refusal<Unsent>>,
    ) -> Result<Option<()>, AuthError> {
        let callers = [SendScope::ClientNetwork, SendScope::ClientBlock];
        if let Some(scope) = callers
            .into_iter()
            .find(|&scope| guard::refusal_of(&refusals, Unsent::Count(scope)).is_some())
        {
            let counter = self.counters.iter().find(|counter| counter.scope == scope);
            return Err(AuthError::RateLimited {
                retry_after: counter.map_or(1, |counter| counter.window.ends_at - self.now),
            });
        }
        if guard::refusal_of(&refusals, Unsent::Decoy).is_some() {
            return Err(AuthError::internal("a new verification id was taken"));
        }
        if self.stand_in.take().is_none() {
            return Err(AuthError::internal("no stand-in in this transaction"));
        }
        // Inside the network's cooldown, or the phone's caps spent: the caller is still
        // counted, and the id names nothing.
        Ok(None)
    }
}

/// The steps of an answer to a code request that sent nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unsent {
    Count(SendScope),
    Cooldown,
    Decoy,
    Conversion,
}

/// The caps of the client itself (its network and its block): they may refuse a request for a
/// code openly, since they say nothing about the number.
fn is_callers_cap(scope: SendScope) -> bool {
    matches!(scope, SendScope::ClientNetwork | SendScope::ClientBlock)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResetStep {
    Code,
    Account,
    Credentials,
    Clear,
}

/// Sets a new password with a reset code (same wrong-code rules and lock-outs as sign-up
/// verification) and ends every session of the account. A reset also clears the account's
/// failed logins.
pub async fn confirm_password_reset(
    app: &App,
    phone: &PhoneNumber,
    guess: &CodeGuess,
    new_password: Password,
    caller: &Caller,
) -> Result<(), AuthError> {
    let (matched, user) =
        match_account_code(app, phone, guess, caller, OtpPurpose::PasswordReset).await?;
    let hash = password::hash(new_password).await?;
    let subject = EventSubject {
        user_id: &user.profile.id,
        phone,
        network: Some(&caller.network),
    };
    let now = app.clock.now();
    let new = NewPassword::writes(app, &user, hash, PasswordChangedBy::Reset, subject, now)?;
    let transaction = Transaction::new()
        .steps(ResetStep::Code, matched.spend(app, phone, caller, now)?)
        .steps(ResetStep::Account, new.account)
        .step(ResetStep::Credentials, new.credentials)
        .step(ResetStep::Clear, app.store.attempts.clear_account(phone)?)
        .steps(ResetStep::Clear, mark_proof(app, phone, caller, now)?);
    // The code was spent or replaced, or the account changed under the reset: try again.
    app.store
        .apply(&transaction, |_| AuthError::NoActiveOtp)
        .await?;
    tidy_sessions(app, &user.profile.id, user.credentials_version + 1).await;
    let subject = Subject {
        phone: Some(phone),
        user_id: Some(&user.profile.id),
        detail: Some(OtpPurpose::PasswordReset.as_str()),
    };
    audit::record(AuditEvent::OtpVerified, caller, subject);
    tracing::info!(user_id = %user.profile.id, "password reset");
    Ok(())
}

/// The writes of a new password, for a change or a reset: on the account, the hash and its
/// event; and the user's credentials version bumped, which ends the sessions started under the
/// old one (the caller keeps the one it must).
struct NewPassword {
    account: [Write; 2],
    credentials: Write,
}

impl NewPassword {
    fn writes(
        app: &App,
        user: &User,
        hash: String,
        by: PasswordChangedBy,
        subject: EventSubject<'_>,
        now: u64,
    ) -> Result<Self, AuthError> {
        let event = event_write(app, Event::UserPasswordChanged { by }, subject, now)?;
        Ok(Self {
            account: [app.store.users.set_password(user, hash)?, event],
            credentials: app
                .store
                .sessions
                .bump_credentials(&user.profile.id, user.credentials_version)?,
        })
    }
}

/// The subject of an event a request of `session` caused.
pub(crate) fn session_subject<'a>(session: &'a Session, caller: &'a Caller) -> EventSubject<'a> {
    EventSubject {
        user_id: &session.user_id,
        phone: &session.phone,
        network: Some(&caller.network),
    }
}
