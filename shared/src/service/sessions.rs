//! Sessions: log in, rotate refresh tokens (with reuse detection), authenticate requests, log out.

use aws_sdk_dynamodb::types::TransactWriteItem;

use crate::App;
use crate::audit::{self, AuditEvent, Caller, Subject};
use crate::error::AuthError;
use crate::password::{self, Password};
use crate::phone::PhoneNumber;
use crate::store::sessions::{Session, was_spent};
use crate::store::users::UsersTable;
use crate::store::{self, TransactionError, now};
use crate::tokens::{TokenPair, TokenType, hash_opaque_token};

/// Tokens for a new session of `user_id`, and the writes that create the session (for the
/// caller's transaction).
pub async fn new_session(
    app: &App,
    user_id: &str,
    phone: &PhoneNumber,
    now: u64,
) -> Result<(Vec<TransactWriteItem>, TokenPair), AuthError> {
    let session = Session {
        user_id: user_id.to_owned(),
        session_id: uuid::Uuid::new_v4().to_string(),
        phone: phone.clone(),
    };
    let issued = app.tokens.issue(user_id, &session.session_id, now).await?;
    let items = app.sessions.start(&session, &issued, now)?;
    Ok((items, issued.pair))
}

/// Checks phone and password and starts a session. An unknown phone and a wrong password cost
/// the same argon2 work and give the same error; both count against the (phone, IP) pair and
/// the account's back-off.
pub async fn login(
    app: &App,
    phone: &PhoneNumber,
    password: Password,
    caller: &Caller,
) -> Result<TokenPair, AuthError> {
    let now = now();
    let guard = app.password_guard(phone, &caller.ip);
    // Both guards' records and the account in one round trip.
    let [pair_key, account_key] = guard.item_keys();
    let [pair, account, user] = store::get_items(
        &app.dynamodb,
        [pair_key, account_key, app.users.item_key(phone)],
    )
    .await?;
    let prior = guard.ensure_allowed(pair, account, now)?;
    let user = UsersTable::user(user);
    let stored_hash = user.as_ref().map(|user| user.password_hash.clone());
    let matches = password::verify(password, stored_hash).await?;
    let Some(user) = user.filter(|_| matches) else {
        let locked_out = guard.record_failure(now).await?;
        let subject = || Subject {
            phone: Some(phone),
            ..Subject::default()
        };
        audit::record(AuditEvent::LoginFailed, caller, subject());
        if locked_out {
            audit::record(AuditEvent::Lockout, caller, subject());
        }
        return Err(AuthError::InvalidCredentials);
    };
    let (items, tokens) = new_session(app, &user.profile.id, phone, now).await?;
    store::transact(&app.dynamodb, items)
        .await
        .map_err(|error| match error {
            TransactionError::Storage(error) => error,
            TransactionError::ConditionFailed { .. } => {
                AuthError::internal("new session id already taken")
            }
        })?;
    guard.record_success(prior).await;
    let subject = Subject {
        phone: Some(phone),
        user_id: Some(&user.profile.id),
        ..Subject::default()
    };
    audit::record(AuditEvent::LoginSucceeded, caller, subject);
    Ok(tokens)
}

/// Spends a refresh token for a new pair in one transaction. A token presented again after it
/// was spent is a replay (the token leaked, or two clients share it): the whole session is
/// revoked, so the thief and the owner both have to log in again.
pub async fn refresh(
    app: &App,
    refresh_token: &str,
    caller: &Caller,
) -> Result<TokenPair, AuthError> {
    let claims = app.tokens.verify(refresh_token, TokenType::Refresh).await?;
    let now = now();
    let issued = app.tokens.issue(&claims.sub, &claims.sid, now).await?;
    let items = app.sessions.rotate(
        &claims.sub,
        &claims.sid,
        &hash_opaque_token(&claims.jti),
        &issued,
        now,
    )?;
    let subject = || Subject {
        user_id: Some(&claims.sub),
        ..Subject::default()
    };
    match store::transact(&app.dynamodb, items).await {
        Ok(()) => {
            audit::record(AuditEvent::TokenRefreshed, caller, subject());
            Ok(issued.pair)
        }
        Err(TransactionError::ConditionFailed { index: 0, old_item })
            if was_spent(old_item.as_ref()) =>
        {
            app.sessions.revoke(&claims.sub, &claims.sid).await?;
            audit::record(AuditEvent::TokenReuseDetected, caller, subject());
            Err(AuthError::InvalidToken)
        }
        Err(TransactionError::ConditionFailed { .. }) => Err(AuthError::InvalidToken),
        Err(TransactionError::Storage(error)) => Err(error),
    }
}

/// The live session behind a bearer access token: its signature, type and expiry, and that the
/// session was not revoked since it was issued.
pub async fn authenticate(app: &App, access_token: &str) -> Result<Session, AuthError> {
    let claims = app.tokens.verify(access_token, TokenType::Access).await?;
    app.sessions
        .live(&claims.sub, &claims.sid, now())
        .await?
        .ok_or(AuthError::InvalidToken)
}

/// Ends the caller's session, or all of the user's sessions. A refresh token given along is
/// revoked too, if it is the user's.
pub async fn logout(
    app: &App,
    session: &Session,
    refresh_token: Option<&str>,
    everywhere: bool,
) -> Result<(), AuthError> {
    if everywhere {
        let revoked = app.sessions.revoke_all(&session.user_id, None).await?;
        tracing::info!(user_id = %session.user_id, revoked, "logged out everywhere");
        return Ok(());
    }
    if let Some(token) = refresh_token {
        let claims = app.tokens.verify(token, TokenType::Refresh).await?;
        if claims.sub != session.user_id {
            return Err(AuthError::InvalidToken);
        }
        if claims.sid != session.session_id {
            app.sessions.revoke(&claims.sub, &claims.sid).await?;
        }
    }
    app.sessions
        .revoke(&session.user_id, &session.session_id)
        .await?;
    tracing::info!(user_id = %session.user_id, "logged out");
    Ok(())
}
