//! Sessions: log in, rotate refresh tokens (with reuse detection), authenticate requests, log out.

use crate::App;
use crate::audit::{self, AuditEvent, Subject};
use crate::error::AuthError;
use crate::http::Caller;
use crate::limits::{self, SendPool};
use crate::otp::OtpPurpose;
use crate::password::{self, Password};
use crate::phone::PhoneNumber;
use crate::profile::User;
use crate::refresh_tokens::{self, PresentedRefresh};
use crate::service::codes::{
    CodeGuess, CodeToSend, SendOutcome, SendRefusal, check_bot, match_account_code, matching_code,
    send_code,
};
use crate::service::guard::{self, AccountGuard, CodeSlot, Guards, Taken};
use crate::store::attempts::{FailureKind, SessionSlot};
use crate::store::sessions::{SeenFrom, Session, SessionSummary, was_spent};
use crate::store::{LoginRecords, Transaction, TransactionError, Write};
use crate::tokens::{TokenPair, TokenType};

/// Tokens for a new session of `user`, started by `caller`, and the writes that create the
/// session (for the caller's transaction).
pub async fn new_session(
    app: &App,
    user: &User,
    caller: &Caller,
    now: u64,
) -> Result<(Vec<Write>, TokenPair), AuthError> {
    let session = Session {
        user_id: user.profile.id.clone(),
        session_id: uuid::Uuid::new_v4().to_string(),
        phone: PhoneNumber::from_stored(user.profile.phone.clone()),
        credentials_version: user.credentials_version,
        created_at: now,
    };
    let issued = app
        .tokens
        .issue(&session.user_id, &session.session_id, now)
        .await?;
    let items = app
        .store
        .sessions
        .start(&session, &issued, seen_from(caller, now))?;
    Ok((items, issued.pair))
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

/// The one credentials check, of login, account deletion and password change, once the attempt
/// has its slot: argon2 against `user`'s hash (a dummy hash for no user, so that both cost the
/// same), and a wrong password audited as a failed login (and a lock-out when it blocked the pair
/// or put the account into back-off). The caller clears the counters on success.
async fn password_matches<'a>(
    app: &App,
    user: Option<&User>,
    password: Password,
    taken: &Taken,
    caller: &Caller,
    subject: impl Fn() -> Subject<'a>,
) -> Result<bool, AuthError> {
    // No account: a dummy hash is verified instead, and never matches.
    let matches = password::verify(password, user.map(|u| u.password_hash.clone())).await?;
    if !matches {
        audit::record(AuditEvent::LoginFailed, caller, subject());
        if limits::is_lockout(&app.config.limits, taken.pair_left, taken.account_failures) {
            audit::record(AuditEvent::Lockout, caller, subject());
        }
    }
    Ok(matches)
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
    let LoginAttempt {
        phone,
        password,
        code,
        captcha_token,
        language,
    } = attempt;
    let now = app.clock.now();
    let limits = &app.config.limits;
    let budget = code.as_ref().map(CodeGuess::budget);
    // The step-up code is read beside the login's records, only when one was entered.
    let (records, target) = tokio::join!(
        app.store.login_records(phone, &caller.network, now),
        async {
            match &budget {
                Some(budget) => app
                    .store
                    .code_target(phone, OtpPurpose::Login, budget, now)
                    .await
                    .map(Some),
                None => Ok(None),
            }
        },
    );
    let LoginRecords {
        pair,
        account,
        known_network,
        proved_recently,
        user,
    } = records?;
    // A blocked pair is told so before anything about the account or a code.
    limits::pair_slot(limits, pair, now)?;
    let step_up = limits::step_up_required(limits, account);
    let code_slot = match (target?, step_up) {
        (Some(target), true) => {
            let target = target.owned_by(None);
            guard::admit_guess(&target, app.config.otp_max_attempts)?;
            Some(CodeSlot {
                purpose: OtpPurpose::Login,
                target,
            })
        }
        _ => None,
    };
    let codes = code_slot.as_ref().map(|slot| slot.target.codes().to_vec());
    let taken = guard::take_slot(
        app,
        Guards {
            phone,
            network: &caller.network,
            kind: FailureKind::Login,
            pair,
            account: AccountGuard::Counted {
                record: account,
                // A step-up code proves the phone; a known network is the owner's usual one.
                exempt_from_wait: code_slot.is_some() || known_network,
            },
            code: code_slot,
        },
        now,
    )
    .await?;
    let subject = || Subject {
        phone: Some(phone),
        ..Subject::default()
    };
    let step_up_code = match (&code, codes) {
        (Some(guess), Some(codes)) => match matching_code(app, phone, guess, codes)? {
            Some(matched) => Some(matched),
            None => {
                let subject = Subject {
                    detail: Some(OtpPurpose::Login.as_str()),
                    ..subject()
                };
                audit::record(AuditEvent::OtpFailed, caller, subject);
                return Err(AuthError::IncorrectOtp {
                    attempts_left: taken.code_left.unwrap_or(0).min(taken.pair_left),
                });
            }
        },
        _ => None,
    };
    let matches = password_matches(app, user.as_ref(), password, &taken, caller, subject).await?;
    let Some(user) = user.filter(|_| matches) else {
        if let Some(matched) = &step_up_code {
            // A right code with a wrong password: the code is spent, so that whoever reads the
            // SMS (a SIM swap, say) gets one password guess from it, not one per code try.
            let spend = app
                .store
                .otps
                .consume(phone, OtpPurpose::Login, matched, now)?;
            let spend = Transaction::new().step((), spend);
            if let Err(TransactionError::Storage(error)) = app.store.commit(&spend).await {
                tracing::warn!(%error, "could not spend a step-up code");
            }
        }
        return Err(AuthError::InvalidCredentials);
    };
    if step_up && step_up_code.is_none() {
        audit::record(AuditEvent::StepUpRequired, caller, subject());
        // The right password was no guess: it must not start a new wait for the owner (the
        // code, when sent, is then entered without being held by the back-off anyway).
        if let Some(counted) = taken.account_failures
            && let Err(error) = app
                .store
                .attempts
                .refund_account_slot(phone, taken.account_before, counted)
                .await
        {
            tracing::warn!(%error, "could not refund the step-up attempt");
        }
        let step_up = StepUp {
            known_network,
            proved_recently,
            captcha_token,
            language,
        };
        return Err(send_step_up_code(app, phone, caller, step_up).await?);
    }
    let (session_items, tokens) = new_session(app, &user, caller, now).await?;
    let mut transaction = Transaction::new()
        .steps(LoginStep::Session, session_items)
        .step(
            LoginStep::Credentials,
            app.store.users.credentials_unchanged(&user)?,
        )
        .step(
            LoginStep::Clear,
            app.store
                .attempts
                .clear_pair(FailureKind::Login, phone, &caller.network)?,
        )
        .step(LoginStep::Clear, app.store.attempts.clear_account(phone)?)
        .steps(LoginStep::Clear, mark_proof(app, phone, caller, now)?);
    if let Some(matched) = &step_up_code {
        transaction = transaction.step(
            LoginStep::Code,
            app.store
                .otps
                .consume(phone, OtpPurpose::Login, matched, now)?,
        );
    }
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
    let subject = Subject {
        user_id: Some(&user.profile.id),
        ..subject()
    };
    audit::record(AuditEvent::LoginSucceeded, caller, subject);
    Ok(tokens)
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
    let (session_items, tokens) = new_session(app, &user, caller, now).await?;
    let transaction = Transaction::new()
        .steps(CodeLoginStep::Code, matched.spend(app, phone, caller, now)?)
        .steps(CodeLoginStep::Session, session_items)
        .step(
            CodeLoginStep::Credentials,
            app.store.users.credentials_unchanged(&user)?,
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
    let max = app.config.limits.session_password_max_failures;
    let session_ends = session
        .created_at
        .saturating_add(app.config.session_max_seconds);
    let (user, slot) = tokio::join!(
        app.store.users.get(&session.phone),
        app.store
            .attempts
            .take_session_slot(&session.session_id, max, session_ends),
    );
    let subject = || Subject {
        phone: Some(&session.phone),
        user_id: Some(&session.user_id),
        detail: Some("password_check"),
    };
    match slot? {
        SessionSlot::Taken => {}
        SessionSlot::Busy => return Err(AuthError::RateLimited { retry_after: 1 }),
        // An earlier check spent the budget; it ended the session, or should have.
        SessionSlot::Spent => {
            end_session(app, session).await?;
            return Err(AuthError::SessionEnded);
        }
    }
    // From here the slot is this check's: only a wrong password keeps it.
    let checked = async {
        let user = user?
            .filter(|user| user.profile.id == session.user_id)
            .ok_or(AuthError::InvalidToken)?;
        let matches = password::verify(password, Some(user.password_hash.clone())).await?;
        Ok::<_, AuthError>((user, matches))
    };
    let (user, matches) = match checked.await {
        Ok(checked) => checked,
        Err(error) => {
            give_back_password_slot(app, session).await;
            return Err(error);
        }
    };
    if !matches {
        audit::record(AuditEvent::LoginFailed, caller, subject());
        let failures = app
            .store
            .attempts
            .count_session_failure(&session.session_id)
            .await?;
        if failures >= max {
            end_session(app, session).await?;
            audit::record(AuditEvent::Lockout, caller, subject());
            return Err(AuthError::SessionEnded);
        }
        return Err(AuthError::WrongPassword);
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

async fn end_session(app: &App, session: &Session) -> Result<(), AuthError> {
    app.store
        .sessions
        .revoke(&session.user_id, &session.session_id)
        .await
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
/// JWT until the last expires), and the new pair signs one token, the access token.
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
    let session = app
        .store
        .sessions
        .live(user_id, session_id, max_age, now)
        .await?
        .ok_or(AuthError::InvalidToken)?;
    let issued = app.tokens.issue(user_id, session_id, now).await?;
    let [spend, extend, store, credentials] = app.store.sessions.rotate(
        &session,
        id_hash,
        &issued,
        session.created_at.saturating_add(max_age),
        app.config.refresh_reuse_grace_seconds,
        seen_from(caller, now),
    )?;
    let transaction = Transaction::new()
        .step(RotationStep::Spend, spend)
        .step(RotationStep::Extend, extend)
        .step(RotationStep::Store, store)
        .step(RotationStep::Credentials, credentials);
    let subject = || Subject {
        user_id: Some(user_id),
        ..Subject::default()
    };
    match app.store.commit(&transaction).await {
        Ok(()) => {
            audit::record(AuditEvent::TokenRefreshed, caller, subject());
            Ok(issued.pair)
        }
        Err(TransactionError::Storage(error)) => Err(error),
        Err(refused) => {
            let spend = refused.refused(RotationStep::Spend);
            if spend.is_some_and(|spend| was_spent(spend.old_item())) {
                app.store.sessions.revoke(user_id, session_id).await?;
                audit::record(AuditEvent::TokenReuseDetected, caller, subject());
            }
            Err(AuthError::InvalidToken)
        }
    }
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
) -> Result<(), AuthError> {
    let revoked = app
        .store
        .sessions
        .revoke_live(
            &session.user_id,
            session_id,
            session.credentials_version,
            app.config.session_max_seconds,
            app.clock.now(),
        )
        .await?;
    if !revoked {
        return Err(AuthError::NotFound("No such session."));
    }
    tracing::info!(user_id = %session.user_id, "session revoked");
    Ok(())
}

/// Ends the caller's session, or all of the user's sessions. A refresh token given along (one
/// this service issued, spent or not, unexpired) is revoked too, if it is the user's.
pub async fn logout(
    app: &App,
    session: &Session,
    refresh_token: Option<&str>,
    everywhere: bool,
) -> Result<(), AuthError> {
    if everywhere {
        let revoked = app
            .store
            .sessions
            .revoke_all(&session.user_id, None)
            .await?;
        tracing::info!(user_id = %session.user_id, revoked, "logged out everywhere");
        return Ok(());
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
            app.store
                .sessions
                .revoke(&presented.user_id, &presented.session_id)
                .await?;
        }
    }
    app.store
        .sessions
        .revoke(&session.user_id, &session.session_id)
        .await?;
    tracing::info!(user_id = %session.user_id, "logged out");
    Ok(())
}
