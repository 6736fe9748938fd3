//! Sessions: log in, rotate refresh tokens (with reuse detection), authenticate requests, log out.

use crate::App;
use crate::app_claims::AppClaims;
use crate::audit::{self, AuditEvent, Subject};
use crate::cognito::CognitoMigration;
use crate::error::AuthError;
use crate::events::{Event, EventSubject, SessionEndReason, SessionMethod};
use crate::http::Caller;
use crate::limits::{self, SendPool};
use crate::otp::OtpPurpose;
use crate::password::{self, Password};
use crate::phone::PhoneNumber;
use crate::profile::{self, User, UserProfile};
use crate::refresh_tokens::{self, PresentedRefresh};
use crate::service::account::session_subject;
use crate::service::admin::disabled_login;
use crate::service::codes::{
    CodeGuess, CodeToSend, SendOutcome, SendRefusal, check_bot, entered, match_account_code,
    matching_code, send_code,
};
use crate::service::event_write;
use crate::service::guard::{self, AccountGuard, CodeSlot, Guards, Taken};
use crate::store::attempts::{FailureKind, SessionSlot};
use crate::store::otps::{CodeTarget, StoredOtp};
use crate::store::sessions::{RefreshStanding, SeenFrom, Session, SessionSummary, was_spent};
use crate::store::{LoginRecords, Transaction, TransactionError, Write};
use crate::token_hook::HookRequest;
use crate::tokens::{ExtraClaims, TokenPair, TokenType};
use futures_util::StreamExt;

/// A new session of `user` started by `method`: its items and `session.started` event (for the
/// transaction that starts it), and its first tokens.
pub async fn new_session(
    app: &App,
    (user, method): (&User, SessionMethod),
    caller: &Caller,
    now: u64,
) -> Result<(Vec<Write>, TokenPair), AuthError> {
    let session = Session {
        user_id: user.profile.id.clone(),
        session_id: uuid::Uuid::new_v4().to_string(),
        phone: PhoneNumber::from_stored(user.profile.phone.clone()),
        credentials_version: user.credentials_version,
        created_at: now,
        app_claims: user.app_claims.clone(),
    };
    let trigger = match method {
        SessionMethod::Registration => "registration",
        _ => "login",
    };
    let extra = extra_claims(app, &session, trigger).await?;
    let issued = app
        .tokens
        .issue((&session.user_id, &session.session_id), &extra, now)
        .await?;
    let mut items = app
        .store
        .sessions
        .start(&session, &issued, seen_from(caller, now))?;
    let started = Event::SessionStarted {
        session_id: &session.session_id,
        method,
    };
    let subject = EventSubject {
        user_id: &session.user_id,
        phone: &session.phone,
        network: Some(&caller.network),
    };
    items.push(event_write(app, started, subject, now)?);
    Ok((items, issued.pair))
}

/// What the access token of `session` carries besides its own claims: the user's app claims,
/// and what the token hook adds for `trigger` (`registration`, `login` or `refresh`) when one
/// is configured. A hook that fails refuses the token.
async fn extra_claims(
    app: &App,
    session: &Session,
    trigger: &'static str,
) -> Result<ExtraClaims, AuthError> {
    let hook = match &app.token_hook {
        None => serde_json::Map::new(),
        Some(hook) => {
            let request = HookRequest {
                trigger,
                user_id: &session.user_id,
                session_id: &session.session_id,
                app_claims: session.app_claims.to_value()?,
            };
            hook.claims(&request).await?
        }
    };
    Ok(ExtraClaims {
        app: session.app_claims.clone(),
        hook,
    })
}

/// The writes that mark a proof of `phone`'s account from the caller's network
/// (`AttemptsTable::mark_proof`), remembered as long as the account's failures are.
pub(crate) fn mark_proof(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
    now: u64,
) -> Result<[Write; 2], AuthError> {
    let memory = app.config.limits.account_failure_memory_seconds;
    app.store
        .attempts
        .mark_proof(phone, &caller.network, memory, now)
}

fn seen_from(caller: &Caller, now: u64) -> SeenFrom<'_> {
    SeenFrom {
        ip: &caller.ip,
        user_agent: caller.user_agent.as_deref(),
        at: now,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoginStep {
    Session,
    Credentials,
    Code,
    Clear,
}

/// A login as the client sent it.
pub struct LoginAttempt<'a> {
    pub phone: &'a PhoneNumber,
    pub password: Password,
    /// The step-up code, after a login answered `code_required`.
    pub code: Option<CodeGuess>,
    /// The bot check's token, asked for before a step-up code is sent (`check_bot`).
    pub captcha_token: Option<&'a str>,
    /// The language of a step-up code's SMS.
    pub language: &'a str,
}

/// Checks phone and password and starts a session.
///
/// The attempt takes its slot under the (phone, network) pair's limit and the account's back-off
/// before argon2 runs. An unknown phone and a wrong password cost the same argon2 work and give
/// the same error. After `account_max_failures` consecutive failures the right password alone is
/// answered with `CodeRequired` and a code by SMS (step-up); a login with that code proves the
/// phone, so it is not held by the account's back-off, only by the pair's limit and the code's
/// own budget, and the code is compared before the password. A step-up code's SMS is in
/// `language`.
pub async fn login(
    app: &App,
    attempt: LoginAttempt<'_>,
    caller: &Caller,
) -> Result<TokenPair, AuthError> {
    let phone = attempt.phone;
    let now = app.clock.now();
    let (records, target) = read_login(app, phone, attempt.code.as_ref(), caller, now).await;
    let mut records = records?;
    // A blocked pair is told so before anything about the account or a code.
    limits::pair_slot(&app.config.limits, records.pair, now)?;
    let step_up = limits::step_up_required(&app.config.limits, records.account);
    let code_slot = admit_step_up_code(app, target?, step_up)?;
    let codes = code_slot.as_ref().map(|slot| slot.target.codes().to_vec());
    let taken = take_login_slot(app, phone, caller, &records, code_slot, now).await?;
    let guess = attempt.code.as_ref().zip(codes);
    let step_up_code = check_step_up_code(app, phone, guess, &taken, caller)?;
    let user = records.user.take();
    let checked = check_password(app, phone, attempt.password, user, &taken, caller).await?;
    let Some((user, verified)) = checked else {
        spend_step_up_code(app, phone, step_up_code.as_ref(), now).await?;
        return Err(AuthError::InvalidCredentials);
    };
    // Said only to whoever has the password; no step-up code is sent for it. The right
    // password was no guess: the account's back-off slot is given back, as for a step-up.
    if user.disabled {
        give_back_account_slot(app, phone, &taken).await;
        return Err(disabled_login(phone, &user, caller));
    }
    if step_up && step_up_code.is_none() {
        let step_up = StepUp {
            known_network: records.known_network,
            proved_recently: records.proved_recently,
            captcha_token: attempt.captcha_token,
            language: attempt.language,
        };
        return Err(demand_step_up(app, phone, caller, &taken, step_up).await?);
    }
    let login = (phone, &user, &verified);
    let committed = commit_login(app, login, caller, step_up_code.as_ref(), now).await;
    if committed.is_err() {
        forget_right_password(app, phone, caller, &taken).await;
    }
    committed
}

/// What a login reads before it takes its slot: its records and, only when a step-up code was
/// entered, the codes it may match, side by side (each answer on its own, so that a blocked pair
/// is told before a failed code read).
async fn read_login(
    app: &App,
    phone: &PhoneNumber,
    code: Option<&CodeGuess>,
    caller: &Caller,
    now: u64,
) -> (
    Result<LoginRecords, AuthError>,
    Result<Option<CodeTarget>, AuthError>,
) {
    let target = async {
        let Some(guess) = code else {
            return Ok(None);
        };
        let budget = guess.budget();
        let target = app
            .store
            .code_target(phone, OtpPurpose::Login, &budget, now);
        target.await.map(Some)
    };
    tokio::join!(app.store.login_records(phone, &caller.network, now), target)
}

/// The step-up code's slot: only while the account is in step-up, and only for a live code with
/// a guess left.
fn admit_step_up_code(
    app: &App,
    target: Option<CodeTarget>,
    step_up: bool,
) -> Result<Option<CodeSlot>, AuthError> {
    let Some(target) = target.filter(|_| step_up) else {
        return Ok(None);
    };
    let target = target.owned_by(None);
    guard::admit_guess(&target, app.config.otp_max_attempts)?;
    Ok(Some(CodeSlot {
        purpose: OtpPurpose::Login,
        target,
    }))
}

/// Takes the login's slot under the pair's limit, the account's back-off and the step-up
/// code's budget, before any check runs.
async fn take_login_slot(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
    records: &LoginRecords,
    code: Option<CodeSlot>,
    now: u64,
) -> Result<Taken, AuthError> {
    let account = AccountGuard::Counted {
        record: records.account,
        // A step-up code proves the phone; a known network is the owner's usual one.
        exempt_from_wait: code.is_some() || records.known_network,
    };
    let guards = Guards {
        phone,
        network: &caller.network,
        kind: FailureKind::Login,
        pair: records.pair,
        account,
        code,
    };
    guard::take_slot(app, guards, now).await
}

/// The step-up code that the guess matches among the codes it may (its slot taken), when one
/// was entered; a wrong one is audited and answered with the guesses left.
fn check_step_up_code(
    app: &App,
    phone: &PhoneNumber,
    guess: Option<(&CodeGuess, Vec<StoredOtp>)>,
    taken: &Taken,
    caller: &Caller,
) -> Result<Option<StoredOtp>, AuthError> {
    let Some((guess, codes)) = guess else {
        return Ok(None);
    };
    if let Some(matched) = matching_code(app, phone, guess, codes)? {
        return Ok(Some(matched));
    }
    let subject = Subject {
        phone: Some(phone),
        detail: Some(OtpPurpose::Login.as_str()),
        ..Subject::default()
    };
    audit::record(AuditEvent::OtpFailed, caller, subject);
    Err(AuthError::IncorrectOtp {
        attempts_left: taken.code_left.unwrap_or(0).min(taken.pair_left),
    })
}

/// How the account of a right password is written by the login's transaction.
enum Verified {
    /// The account here; `upgraded`: the argon2id hash that replaces an imported one.
    Stored { upgraded: Option<String> },
    /// A user of the Cognito pool being moved from: the account is created.
    Migrated,
}

/// The login's credentials check, once the attempt has its slot: argon2 against `user`'s hash
/// (a dummy hash for no user, so that both cost the same, and never a match), the user when it
/// matches. A number unknown here is tried against the Cognito pool being moved from, when one
/// is configured. A wrong password is audited as a failed login (and a lock-out when it blocked
/// the pair or put the account into back-off); the success clears the counters (`commit_login`).
async fn check_password(
    app: &App,
    phone: &PhoneNumber,
    password: Password,
    user: Option<User>,
    taken: &Taken,
    caller: &Caller,
) -> Result<Option<(User, Verified)>, AuthError> {
    let checked = match (user, &app.cognito_migration) {
        (None, Some(pool)) => match migrated_account(app, pool, phone, password).await {
            Ok(found) => found,
            // The pool could not be asked: no guess was checked, so none is counted.
            Err(error) => {
                give_back_account_slot(app, phone, taken).await;
                return Err(error);
            }
        },
        (user, _) => {
            let hash = user.as_ref().map(|user| user.password_hash.clone());
            let (matches, upgraded) = password::verify_upgrading(password, hash).await?;
            user.filter(|_| matches)
                .map(|user| (user, Verified::Stored { upgraded }))
        }
    };
    if checked.is_some() {
        return Ok(checked);
    }
    let subject = || Subject {
        phone: Some(phone),
        ..Subject::default()
    };
    audit::record(AuditEvent::LoginFailed, caller, subject());
    if limits::is_lockout(&app.config.limits, taken.pair_left, taken.account_failures) {
        audit::record(AuditEvent::Lockout, caller, subject());
    }
    Ok(None)
}

/// The account a Cognito pool's user becomes here when the pool takes `password` for `phone`:
/// its `sub` as the id, its names and email where they pass this service's rules, the password
/// hashed by this service. `commit_login` claims the `sub`'s credentials item, so a `sub` moved
/// before (under a number since changed, or deleted here) is not moved again: one id, one
/// account, and a deletion stands.
async fn migrated_account(
    app: &App,
    pool: &CognitoMigration,
    phone: &PhoneNumber,
    password: Password,
) -> Result<Option<(User, Verified)>, AuthError> {
    let Some(found) = pool.authenticate(phone, &password).await? else {
        return Ok(None);
    };
    let now = app.clock.now();
    let field = |value: Option<String>, check: fn(&str) -> Result<String, AuthError>| {
        value
            .and_then(|value| check(&value).ok())
            .unwrap_or_default()
    };
    let user = User {
        profile: UserProfile {
            id: found.sub,
            phone: phone.as_str().to_owned(),
            first_name: field(found.given_name, |name| profile::name("first_name", name)),
            last_name: field(found.family_name, |name| profile::name("last_name", name)),
            email: field(found.email, profile::email),
        },
        password_hash: password::hash(password).await?,
        created_at: found.created_at.unwrap_or(now).min(now),
        credentials_version: 0,
        disabled: false,
        last_login_at: Some(now),
        app_claims: AppClaims::default(),
    };
    Ok(Some((user, Verified::Migrated)))
}

/// A right step-up code with a wrong password: the code is spent, so that whoever reads the SMS
/// (a SIM swap, say) gets one password guess from it, not one per code try. Best effort: the
/// answer is the wrong password anyway, and a code spent meanwhile is spent.
async fn spend_step_up_code(
    app: &App,
    phone: &PhoneNumber,
    matched: Option<&StoredOtp>,
    now: u64,
) -> Result<(), AuthError> {
    let Some(matched) = matched else {
        return Ok(());
    };
    let spend = app
        .store
        .otps
        .consume(phone, OtpPurpose::Login, matched, now)?;
    // The code reached its owner: entered, for the breaker, whatever the password.
    let spend = Transaction::new()
        .step((), spend)
        .steps((), entered(app, phone, (matched, OtpPurpose::Login))?);
    let spent = app.store.apply(&spend, |()| AuthError::NoActiveOtp).await;
    if let Err(error) = spent
        && !matches!(error, AuthError::NoActiveOtp)
    {
        tracing::warn!(%error, "could not spend a step-up code");
    }
    Ok(())
}

/// The right password of an account in step-up: audited, the failure it was counted as given
/// back (the right password was no guess: it must not start a new wait for the owner, and the
/// code, when sent, is entered without being held by the back-off anyway), and a code sent:
/// the answer to the login.
async fn demand_step_up(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
    taken: &Taken,
    step_up: StepUp<'_>,
) -> Result<AuthError, AuthError> {
    let subject = Subject {
        phone: Some(phone),
        ..Subject::default()
    };
    audit::record(AuditEvent::StepUpRequired, caller, subject);
    give_back_account_slot(app, phone, taken).await;
    send_step_up_code(app, phone, caller, step_up).await
}

/// Gives back the account back-off slot a login with the right password took (it was no
/// guess), unless another attempt was counted since (`refund_account_slot`). The (phone,
/// network) pair's count stays. Best effort.
async fn give_back_account_slot(app: &App, phone: &PhoneNumber, taken: &Taken) {
    let Some(counted) = taken.account_failures else {
        return;
    };
    let attempts = &app.store.attempts;
    let refund = attempts.refund_account_slot(phone, taken.account_before, counted);
    if let Err(error) = refund.await {
        tracing::warn!(%error, "could not give back the account's back-off slot");
    }
}

/// After a right password whose login then failed (the token hook, DynamoDB): it was no guess,
/// so the account's back-off slot is given back and the (phone, network) pair's failures are
/// cleared, as the success would have. Best effort.
async fn forget_right_password(app: &App, phone: &PhoneNumber, caller: &Caller, taken: &Taken) {
    give_back_account_slot(app, phone, taken).await;
    let clear = app
        .store
        .attempts
        .clear_pair(FailureKind::Login, phone, &caller.network)
        .map(|write| Transaction::new().step((), write));
    let cleared = match clear {
        Ok(transaction) => app.store.commit(&transaction).await.map_err(|_| ()),
        Err(_) => Err(()),
    };
    if cleared.is_err() {
        tracing::warn!("could not clear the pair's failures after a right password");
    }
}

/// Starts the session of a right login in one transaction: the session, the login recorded on
/// the account if its password did not change since it was read (with this service's hash in
/// place of an imported one, `upgraded`), the counters cleared, the network marked as the
/// owner's, and the step-up code spent when one was entered.
async fn commit_login(
    app: &App,
    (phone, user, verified): (&PhoneNumber, &User, &Verified),
    caller: &Caller,
    step_up_code: Option<&StoredOtp>,
    now: u64,
) -> Result<TokenPair, AuthError> {
    let method = match step_up_code {
        Some(_) => SessionMethod::StepUp,
        None => SessionMethod::Password,
    };
    let (session_items, tokens) = new_session(app, (user, method), caller, now).await?;
    let attempts = &app.store.attempts;
    let spend = match step_up_code {
        Some(matched) => {
            let mut writes =
                vec![
                    app.store
                        .otps
                        .consume(phone, OtpPurpose::Login, matched, now)?,
                ];
            writes.extend(entered(app, phone, (matched, OtpPurpose::Login))?);
            writes
        }
        None => Vec::new(),
    };
    let transaction = Transaction::new()
        .steps(LoginStep::Session, session_items)
        .step(
            LoginStep::Credentials,
            match verified {
                Verified::Stored { upgraded } => {
                    app.store
                        .users
                        .record_login(user, now, upgraded.as_deref())?
                }
                // Refused if the number was registered meanwhile: then the password is checked
                // against that account at the next try.
                Verified::Migrated => app.store.users.create(user)?,
            },
        )
        .steps(
            LoginStep::Credentials,
            first_credentials(app, user, verified)?,
        )
        .step(
            LoginStep::Clear,
            attempts.clear_pair(FailureKind::Login, phone, &caller.network)?,
        )
        .step(LoginStep::Clear, attempts.clear_account(phone)?)
        .steps(LoginStep::Clear, mark_proof(app, phone, caller, now)?)
        .steps(LoginStep::Code, spend);
    app.store
        .apply(&transaction, |step| match step {
            // The password was changed or reset after it was read: it is no longer the password.
            LoginStep::Credentials => AuthError::InvalidCredentials,
            LoginStep::Code => AuthError::NoActiveOtp,
            LoginStep::Session | LoginStep::Clear => {
                AuthError::internal("new session id already taken")
            }
        })
        .await?;
    let subject = || Subject {
        phone: Some(phone),
        user_id: Some(&user.profile.id),
        ..Subject::default()
    };
    if matches!(verified, Verified::Migrated) {
        audit::record(AuditEvent::AccountMigrated, caller, subject());
    }
    audit::record(AuditEvent::LoginSucceeded, caller, subject());
    Ok(tokens)
}

/// For a user moved from the Cognito pool: its id's credentials item, created, so that the
/// pool can move that id once (refused as a wrong password when it was moved before).
fn first_credentials(
    app: &App,
    user: &User,
    verified: &Verified,
) -> Result<Option<Write>, AuthError> {
    match verified {
        Verified::Migrated => Ok(Some(
            app.store.sessions.claim_credentials(&user.profile.id)?,
        )),
        Verified::Stored { .. } => Ok(None),
    }
}

/// What the step-up code of a login is sent with.
struct StepUp<'a> {
    known_network: bool,
    proved_recently: bool,
    captcha_token: Option<&'a str>,
    language: &'a str,
}

/// Sends the code a step-up login needs, under the registered numbers' reserve (or a recently
/// proved number's floor), the account's small daily allowance and the bot check: the answer
/// to the login. A send the limits refuse sends nothing and is answered as any refused send.
async fn send_step_up_code(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
    step_up: StepUp<'_>,
) -> Result<AuthError, AuthError> {
    let pool = SendPool::StepUp;
    let bot = check_bot(app, phone, pool, step_up.captcha_token, caller).await?;
    bot.ensure_passed()?;
    let send = CodeToSend {
        known_network: step_up.known_network,
        proved_recently: step_up.proved_recently,
        ..CodeToSend::new(OtpPurpose::Login, pool, bot)
    };
    Ok(
        match send_code(app, phone, caller, send, step_up.language).await? {
            SendOutcome::Sent(sent) => AuthError::CodeRequired {
                verification_id: Some(sent.verification_id),
            },
            // The code sent a moment ago is still the one to enter.
            SendOutcome::Refused(SendRefusal::Cooldown { .. }) => AuthError::CodeRequired {
                verification_id: None,
            },
            SendOutcome::Refused(refusal) => refusal.into(),
        },
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodeLoginStep {
    Code,
    Session,
    Credentials,
    Clear,
}

/// Logs in with a login code alone (passwordless): the code proves the phone. It is checked
/// under the rules and lock-outs of phone verification (the (phone, network) pair's limit, the
/// code's budgets), not the password back-off; a success starts a session and, like a password
/// login, clears the account's failed logins (a step-up included).
pub async fn login_with_code(
    app: &App,
    phone: &PhoneNumber,
    guess: &CodeGuess,
    caller: &Caller,
) -> Result<TokenPair, AuthError> {
    let (matched, user) = match_account_code(app, phone, guess, caller, OtpPurpose::Login).await?;
    let now = app.clock.now();
    let (session_items, tokens) =
        new_session(app, (&user, SessionMethod::Code), caller, now).await?;
    let transaction = Transaction::new()
        .steps(CodeLoginStep::Code, matched.spend(app, phone, caller, now)?)
        .steps(CodeLoginStep::Session, session_items)
        .step(
            CodeLoginStep::Credentials,
            app.store.users.record_login(&user, now, None)?,
        )
        .step(
            CodeLoginStep::Clear,
            app.store.attempts.clear_account(phone)?,
        )
        .steps(CodeLoginStep::Clear, mark_proof(app, phone, caller, now)?);
    app.store
        .apply(&transaction, |step| match step {
            // Spent or replaced meanwhile, or the account changed under it.
            CodeLoginStep::Code | CodeLoginStep::Credentials => AuthError::NoActiveOtp,
            CodeLoginStep::Session | CodeLoginStep::Clear => {
                AuthError::internal("new session id already taken")
            }
        })
        .await?;
    let subject = Subject {
        phone: Some(phone),
        user_id: Some(&user.profile.id),
        detail: Some("code"),
    };
    audit::record(AuditEvent::LoginSucceeded, caller, subject);
    Ok(tokens)
}

/// A right password of a logged-in user, and the writes that clear its counters (for the
/// transaction that acts on it).
pub(crate) struct ConfirmedPassword {
    pub user: User,
    pub clear_counters: [Write; 2],
}

/// Checks the user's current password from a live session (password change, account deletion,
/// change of number). The session proves more than a password, so the check is not held by the
/// account's back-off (strangers guessing at the login must not block the owner's own changes);
/// it counts against the session's own wrong-password budget first, and the wrong password that
/// spends it ends the session.
pub(crate) async fn confirm_password(
    app: &App,
    session: &Session,
    password: Password,
    caller: &Caller,
) -> Result<ConfirmedPassword, AuthError> {
    let (user, slot) = tokio::join!(
        app.store.users.get(&session.phone),
        take_password_slot(app, session, caller),
    );
    slot?;
    // From here the slot is this check's: only a wrong password keeps it.
    let (user, matches) = match check_session_password(session, user, password).await {
        Ok(checked) => checked,
        Err(error) => {
            give_back_password_slot(app, session).await;
            return Err(error);
        }
    };
    if !matches {
        return Err(count_wrong_password(app, session, caller).await?);
    }
    Ok(ConfirmedPassword {
        clear_counters: [
            app.store
                .attempts
                .release_session_slot(&session.session_id)?,
            app.store.attempts.clear_account(&session.phone)?,
        ],
        user,
    })
}

/// Takes a slot of the session's own wrong-password budget before the check runs: refused
/// while other checks hold the slots, and the end of the session once an earlier check spent
/// the budget (it ended the session, or should have).
async fn take_password_slot(
    app: &App,
    session: &Session,
    caller: &Caller,
) -> Result<(), AuthError> {
    let max = app.config.limits.session_password_max_failures;
    let session_ends = session
        .created_at
        .saturating_add(app.config.session_max_seconds);
    let slot = app
        .store
        .attempts
        .take_session_slot(&session.session_id, max, session_ends);
    match slot.await? {
        SessionSlot::Taken => Ok(()),
        SessionSlot::Busy => Err(AuthError::RateLimited { retry_after: 1 }),
        SessionSlot::Spent => {
            end_session(app, session, caller).await?;
            Err(AuthError::SessionEnded)
        }
    }
}

/// The session's user as read, and whether `password` is its password.
async fn check_session_password(
    session: &Session,
    user: Result<Option<User>, AuthError>,
    password: Password,
) -> Result<(User, bool), AuthError> {
    let user = user?
        .filter(|user| user.profile.id == session.user_id)
        .ok_or(AuthError::InvalidToken)?;
    let matches = password::verify(password, Some(user.password_hash.clone())).await?;
    Ok((user, matches))
}

/// A wrong password from a live session: audited and counted (it keeps its slot); the one that
/// spends the session's budget ends the session. The answer to the check.
async fn count_wrong_password(
    app: &App,
    session: &Session,
    caller: &Caller,
) -> Result<AuthError, AuthError> {
    let subject = || Subject {
        phone: Some(&session.phone),
        user_id: Some(&session.user_id),
        detail: Some("password_check"),
    };
    audit::record(AuditEvent::LoginFailed, caller, subject());
    let attempts = &app.store.attempts;
    let failures = attempts.count_session_failure(&session.session_id).await?;
    if failures >= app.config.limits.session_password_max_failures {
        end_session(app, session, caller).await?;
        audit::record(AuditEvent::Lockout, caller, subject());
        return Ok(AuthError::SessionEnded);
    }
    Ok(AuthError::WrongPassword)
}

/// Gives back the password slot of a check that ended neither in a wrong password nor in the
/// transaction that releases it (a failed read, a refused change), so that such failures cannot
/// pile up into a session that may never check a password again. Best effort.
pub(crate) async fn give_back_password_slot(app: &App, session: &Session) {
    let release = app
        .store
        .attempts
        .release_session_slot(&session.session_id)
        .map(|write| Transaction::new().step((), write));
    let released = match release {
        Ok(release) => {
            app.store
                .apply(&release, |()| AuthError::InvalidToken)
                .await
        }
        Err(error) => Err(error),
    };
    if let Err(error) = released {
        tracing::warn!(%error, "could not give back a session's password slot");
    }
}

/// The write that ends the user's session `session_id` if it is still live (of the credentials
/// version of `session`, the caller's live one), for the transaction that records its end.
fn end_live(app: &App, session: &Session, session_id: &str) -> Result<Write, AuthError> {
    app.store.sessions.end_live(
        &session.user_id,
        session_id,
        session.credentials_version,
        app.config.session_max_seconds,
        app.clock.now(),
    )
}

/// Ends a session in which too many wrong passwords were entered.
async fn end_session(app: &App, session: &Session, caller: &Caller) -> Result<(), AuthError> {
    let own = &session.session_id;
    end_live_session(app, session, own, SessionEndReason::WrongPasswords, caller).await?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndStep {
    Session,
    Event,
}

/// Ends a session and records `event` in one transaction. `end` is refused when the session
/// had already ended: then false, and no event.
async fn end_with_event(
    app: &App,
    end: Write,
    event: Event<'_>,
    subject: EventSubject<'_>,
) -> Result<bool, AuthError> {
    let transaction = Transaction::new().step(EndStep::Session, end).step(
        EndStep::Event,
        event_write(app, event, subject, app.clock.now())?,
    );
    match app.store.commit(&transaction).await {
        Ok(()) => Ok(true),
        Err(refused) if refused.refused(EndStep::Session).is_some() => Ok(false),
        Err(TransactionError::Storage(error)) => Err(error),
        Err(TransactionError::Refused(_)) => Err(AuthError::internal("new event id already taken")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RotationStep {
    Spend,
    Extend,
    Store,
    Credentials,
}

/// Spends a refresh token for a new pair in one transaction. A token presented again within
/// `refresh_reuse_grace_seconds` of its first spend rotates again (two tabs refreshing at once,
/// or a retry after a lost answer, must not log the user out); presented later it is a replay
/// (the token leaked, or two clients share it): the whole session is revoked, so the thief and
/// the owner both have to log in again. A session never outlives `session_max_seconds` from its
/// login, nor a change of the password. The token is opaque (`refresh_tokens`; a legacy refresh
/// JWT until the last expires), and the new pair signs one token, the access token. A token of
/// a session live when an operator disabled the account is answered `AccountDisabled`, unless
/// it is a replay: that is reuse, as on any account.
pub async fn refresh(
    app: &App,
    refresh_token: &str,
    caller: &Caller,
) -> Result<TokenPair, AuthError> {
    let presented = refresh_tokens::read(&app.tokens, refresh_token).await?;
    let PresentedRefresh {
        user_id,
        session_id,
        id_hash,
    } = &presented;
    let now = app.clock.now();
    let max_age = app.config.session_max_seconds;
    let grace = app.config.refresh_reuse_grace_seconds;
    // Only a token issued to a live session gets as far as a signature.
    let found = app
        .store
        .sessions
        .live_for_refresh(&presented, (max_age, grace), now)
        .await?;
    let session = match found {
        RefreshStanding::Live(session) => session,
        RefreshStanding::Disabled {
            session,
            replayed: true,
        } => {
            end_reused(app, &session, caller).await?;
            return Err(AuthError::InvalidToken);
        }
        RefreshStanding::Disabled { .. } => return Err(AuthError::AccountDisabled),
        RefreshStanding::Ended => return Err(AuthError::InvalidToken),
    };
    let extra = extra_claims(app, &session, "refresh").await?;
    let issued = app.tokens.issue((user_id, session_id), &extra, now).await?;
    let [spend, extend, store, credentials] = app.store.sessions.rotate(
        &session,
        id_hash,
        &issued,
        session.created_at.saturating_add(max_age),
        grace,
        seen_from(caller, now),
    )?;
    let transaction = Transaction::new()
        .step(RotationStep::Spend, spend)
        .step(RotationStep::Extend, extend)
        .step(RotationStep::Store, store)
        .step(RotationStep::Credentials, credentials);
    match app.store.commit(&transaction).await {
        Ok(()) => {
            let subject = Subject {
                user_id: Some(user_id),
                ..Subject::default()
            };
            audit::record(AuditEvent::TokenRefreshed, caller, subject);
            Ok(issued.pair)
        }
        Err(TransactionError::Storage(error)) => Err(error),
        Err(refused) => {
            end_on_reuse(app, &refused, &session, caller).await?;
            Err(AuthError::InvalidToken)
        }
    }
}

/// After a refused rotation: a replay of this session's own spent token (past the grace
/// window) revokes the session; a token of another session relabelled with this one's id never
/// does.
async fn end_on_reuse(
    app: &App,
    refused: &TransactionError<RotationStep>,
    session: &Session,
    caller: &Caller,
) -> Result<(), AuthError> {
    let spent = match refused.refused(RotationStep::Spend) {
        Some(spend) => was_spent(spend.old_item(), &session.session_id)?,
        None => false,
    };
    if spent {
        end_reused(app, session, caller).await?;
    }
    Ok(())
}

/// Revokes a session whose spent refresh token was presented again (reuse), with its event and
/// audit line.
async fn end_reused(app: &App, session: &Session, caller: &Caller) -> Result<(), AuthError> {
    let end = end_live(app, session, &session.session_id)?;
    let reused = Event::SessionReuseDetected {
        session_id: &session.session_id,
    };
    end_with_event(app, end, reused, session_subject(session, caller)).await?;
    let subject = Subject {
        user_id: Some(&session.user_id),
        ..Subject::default()
    };
    audit::record(AuditEvent::TokenReuseDetected, caller, subject);
    Ok(())
}

/// The live session behind a bearer access token: its signature, type and expiry, and that the
/// session was not revoked, outlived, or left behind by a password change since it was issued.
pub async fn authenticate(app: &App, access_token: &str) -> Result<Session, AuthError> {
    let claims = app.tokens.verify(access_token, TokenType::Access).await?;
    app.store
        .sessions
        .live(
            &claims.sub,
            &claims.sid,
            app.config.session_max_seconds,
            app.clock.now(),
        )
        .await?
        .ok_or(AuthError::InvalidToken)
}

/// The user's live sessions, the caller's own marked by its id.
pub async fn list_sessions(app: &App, session: &Session) -> Result<Vec<SessionSummary>, AuthError> {
    app.store
        .sessions
        .list(
            &session.user_id,
            session.credentials_version,
            app.config.session_max_seconds,
            app.clock.now(),
        )
        .await
}

/// Ends one of the user's sessions (the caller's own included): its tokens stop working at
/// once. `NotFound` when the id names no session of this user.
pub async fn revoke_session(
    app: &App,
    session: &Session,
    session_id: &str,
    caller: &Caller,
) -> Result<(), AuthError> {
    let revoked = end_live_session(app, session, session_id, SessionEndReason::Revoked, caller);
    if !revoked.await? {
        return Err(AuthError::NotFound("No such session."));
    }
    tracing::info!(user_id = %session.user_id, "session revoked");
    Ok(())
}

/// Ends the caller's session, or all of the user's live sessions, each with its `session.ended`
/// event. A refresh token given along (one this service issued, spent or not, unexpired) ends
/// its session too, if it is the user's.
pub async fn logout(
    app: &App,
    session: &Session,
    (refresh_token, everywhere): (Option<&str>, bool),
    caller: &Caller,
) -> Result<(), AuthError> {
    if everywhere {
        return logout_everywhere(app, session, caller).await;
    }
    if let Some(token) = refresh_token {
        let presented = refresh_tokens::read(&app.tokens, token).await?;
        let issued = presented.user_id == session.user_id
            && app
                .store
                .sessions
                .issued(&presented, app.clock.now())
                .await?;
        if !issued {
            return Err(AuthError::InvalidToken);
        }
        if presented.session_id != session.session_id {
            let other = &presented.session_id;
            end_live_session(app, session, other, SessionEndReason::Logout, caller).await?;
        }
    }
    let own = &session.session_id;
    end_live_session(app, session, own, SessionEndReason::Logout, caller).await?;
    tracing::info!(user_id = %session.user_id, "logged out");
    Ok(())
}

/// How many sessions a logout everywhere ends at once: the user's sessions share one partition.
const LOGOUT_EVERYWHERE_AT_ONCE: usize = 8;

/// Ends every live session of the user, each in its own transaction with its event, a few at
/// once; every one is tried before a failure is answered, and the caller's own session ends
/// last, only once the others did, so a failure leaves the caller able to try again. A session
/// started meanwhile is not among them, as with any logout before a login.
async fn logout_everywhere(app: &App, session: &Session, caller: &Caller) -> Result<(), AuthError> {
    let live = list_sessions(app, session).await?;
    let mut others = Vec::new();
    for other in &live {
        if other.session_id != session.session_id {
            others.push(end_live_session(
                app,
                session,
                &other.session_id,
                SessionEndReason::LogoutEverywhere,
                caller,
            ));
        }
    }
    let ended: Vec<Result<bool, AuthError>> = futures_util::stream::iter(others)
        .buffer_unordered(LOGOUT_EVERYWHERE_AT_ONCE)
        .collect()
        .await;
    let revoked = ended
        .iter()
        .filter(|ended| matches!(ended, Ok(true)))
        .count();
    if let Some(Err(error)) = ended.into_iter().find(Result::is_err) {
        tracing::warn!(user_id = %session.user_id, revoked, "logout everywhere ended some sessions");
        return Err(error);
    }
    let own = &session.session_id;
    end_live_session(
        app,
        session,
        own,
        SessionEndReason::LogoutEverywhere,
        caller,
    )
    .await?;
    tracing::info!(user_id = %session.user_id, revoked, "logged out everywhere");
    Ok(())
}

/// Ends the user's session `session_id` for `reason` with its `session.ended` event, if it is
/// still live; false (and no event) when it had already ended, expired or outlived a change of
/// password.
async fn end_live_session(
    app: &App,
    session: &Session,
    session_id: &str,
    reason: SessionEndReason,
    caller: &Caller,
) -> Result<bool, AuthError> {
    let end = end_live(app, session, session_id)?;
    let ended = Event::SessionEnded { session_id, reason };
    end_with_event(app, end, ended, session_subject(session, caller)).await
}
