//! The account of a logged-in user, and password recovery by OTP.

use crate::App;
use crate::audit::{self, AuditEvent, Caller, Subject};
use crate::error::AuthError;
use crate::limits::{self, SendScope};
use crate::otp::{OtpCode, OtpPurpose};
use crate::password::{self, Password};
use crate::phone::PhoneNumber;
use crate::service::codes::{SendRefusal, match_code, send_otp};
use crate::store::sessions::Session;
use crate::store::users::{ProfileChanges, User, UsersTable};
use crate::store::{self, TransactionError, now};

/// The account behind a live session (gone if it was deleted meanwhile).
pub async fn current_user(app: &App, session: &Session) -> Result<User, AuthError> {
    app.users
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
    app.users
        .update_profile(&session.phone, &session.user_id, changes)
        .await?
        .ok_or(AuthError::InvalidToken)
}

/// Checks the user's current password under the login guards: a blocked (phone, IP) pair or an
/// account in back-off is refused, a wrong password counts as a failed login.
async fn confirm_password(
    app: &App,
    session: &Session,
    password: Password,
    caller: &Caller,
) -> Result<User, AuthError> {
    let now = now();
    let guard = app.password_guard(&session.phone, &caller.ip);
    let [pair_key, account_key] = guard.item_keys();
    let keys = [pair_key, account_key, app.users.item_key(&session.phone)];
    let [pair, account, user] = store::get_items(&app.dynamodb, keys).await?;
    let prior = guard.ensure_allowed(pair, account, now)?;
    let user = UsersTable::user(user)
        .filter(|user| user.profile.id == session.user_id)
        .ok_or(AuthError::InvalidToken)?;
    if !password::verify(password, Some(user.password_hash.clone())).await? {
        let locked_out = guard.record_failure(now).await?;
        let subject = || Subject {
            phone: Some(&session.phone),
            user_id: Some(&session.user_id),
            detail: Some("password_check"),
        };
        audit::record(AuditEvent::LoginFailed, caller, subject());
        if locked_out {
            audit::record(AuditEvent::Lockout, caller, subject());
        }
        return Err(AuthError::WrongPassword);
    }
    guard.record_success(prior).await;
    Ok(user)
}

/// Deletes the account and ends all its sessions; the phone can register again.
pub async fn delete_account(
    app: &App,
    session: &Session,
    password: Password,
    caller: &Caller,
) -> Result<(), AuthError> {
    confirm_password(app, session, password, caller).await?;
    if !app.users.delete(&session.phone, &session.user_id).await? {
        return Err(AuthError::InvalidToken);
    }
    app.sessions.revoke_all(&session.user_id, None).await?;
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
    confirm_password(app, session, old_password, caller).await?;
    let hash = password::hash(new_password).await?;
    let update = app
        .users
        .set_password(&session.phone, &session.user_id, hash)?;
    store::transact(&app.dynamodb, vec![update])
        .await
        .map_err(|error| match error {
            TransactionError::ConditionFailed { .. } => AuthError::InvalidToken,
            TransactionError::Storage(error) => error,
        })?;
    let revoked = app
        .sessions
        .revoke_all(&session.user_id, Some(&session.session_id))
        .await?;
    tracing::info!(user_id = %session.user_id, revoked, "password changed");
    Ok(())
}

/// Sends a reset code if `phone` has an account. The caller answers the same either way, so
/// the answer must not depend on the account either: the phone's cooldown and cap silently
/// skip the SMS, and every request counts once against the client IP's cap, which alone may
/// refuse (429) since it says nothing about the number.
pub async fn request_password_reset(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
) -> Result<(), AuthError> {
    // Before the account lookup, so that the answer is the same with or without an account.
    limits::ensure_sms_allowed(&app.config, phone)?;
    if app.users.get(phone).await?.is_some() {
        match send_otp(app, phone, caller, OtpPurpose::PasswordReset).await? {
            Ok(()) => return Ok(()),
            Err(
                refusal @ SendRefusal::Cap {
                    scope: SendScope::ClientIp,
                    ..
                },
            ) => return Err(refusal.into()),
            // Refused for the phone alone: count the IP as an unknown number would.
            Err(_) => tracing::info!("reset code not sent: phone cooldown or cap"),
        }
    }
    let count = limits::client_ip_send_count(&app.attempts, &app.config.limits, &caller.ip, now())?;
    match store::transact(&app.dynamodb, vec![count.update]).await {
        Ok(()) => Ok(()),
        Err(TransactionError::ConditionFailed { .. }) => Err(AuthError::RateLimited {
            retry_after: count.retry_after,
        }),
        Err(TransactionError::Storage(error)) => Err(error),
    }
}

/// Sets a new password with a reset code (same wrong-code rules and lock-outs as sign-up
/// verification) and ends every session of the account.
pub async fn confirm_password_reset(
    app: &App,
    phone: &PhoneNumber,
    code: &OtpCode,
    new_password: Password,
    caller: &Caller,
) -> Result<(), AuthError> {
    let matched = match_code(app, phone, code, caller, OtpPurpose::PasswordReset).await?;
    let user = app.users.get(phone).await?.ok_or(AuthError::NoActiveOtp)?;
    let hash = password::hash(new_password).await?;
    let now = now();
    let items = vec![
        matched.consume(app, phone, now)?,
        app.users.set_password(phone, &user.profile.id, hash)?,
    ];
    match store::transact(&app.dynamodb, items).await {
        Ok(()) => {}
        Err(TransactionError::ConditionFailed { .. }) => return Err(AuthError::NoActiveOtp),
        Err(TransactionError::Storage(error)) => return Err(error),
    }
    matched.forget_failures().await;
    // A reset is what unlocks an account the back-off locked.
    app.account_backoff(phone).clear().await?;
    let revoked = app.sessions.revoke_all(&user.profile.id, None).await?;
    let subject = Subject {
        phone: Some(phone),
        user_id: Some(&user.profile.id),
        detail: Some(OtpPurpose::PasswordReset.as_str()),
    };
    audit::record(AuditEvent::OtpVerified, caller, subject);
    tracing::info!(user_id = %user.profile.id, revoked, "password reset");
    Ok(())
}
