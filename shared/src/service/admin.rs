//! What operators do to accounts (the admin API, behind IAM): find one by number or id,
//! disable and enable it. A disabled account cannot log in in any way, refresh, or use a live
//! access token, and its sessions end; enabling it does not bring them back. Every action is
//! in the audit log with the operator's IAM identity.

use crate::App;
use crate::audit::{self, AuditEvent, Subject};
use crate::error::AuthError;
use crate::events::{Event, EventSubject};
use crate::http::Caller;
use crate::phone::PhoneNumber;
use crate::profile::User;
use crate::service::account::tidy_sessions;
use crate::service::event_write;
use crate::store::Transaction;

/// Who made an admin request: the IAM identity API Gateway authenticated (its ARN), and the
/// request's id.
#[derive(Debug, Clone)]
pub struct Operator {
    pub arn: String,
    pub request_id: String,
}

/// The account of `phone`.
pub async fn find_by_phone(app: &App, phone: &PhoneNumber) -> Result<User, AuthError> {
    app.store.users.get(phone).await?.ok_or(NO_ACCOUNT)
}

/// The account whose id is `user_id`.
pub async fn find_by_id(app: &App, user_id: &str) -> Result<User, AuthError> {
    app.store.users.find_by_id(user_id).await?.ok_or(NO_ACCOUNT)
}

const NO_ACCOUNT: AuthError = AuthError::NotFound("No account has this id or number.");

/// Disables the account (`disabled`) or enables it again; every session ends either way. The
/// account as it is now; one already so is left as it is (no event, its sessions untouched).
pub async fn set_disabled(
    app: &App,
    user_id: &str,
    disabled: bool,
    operator: &Operator,
) -> Result<User, AuthError> {
    let mut user = find_by_id(app, user_id).await?;
    if user.disabled == disabled {
        return Ok(user);
    }
    let version = user.credentials_version;
    let phone = PhoneNumber::from_stored(user.profile.phone.clone());
    let event = if disabled {
        Event::UserDisabled
    } else {
        Event::UserEnabled
    };
    let subject = EventSubject {
        user_id,
        phone: &phone,
        network: None,
    };
    let transaction = Transaction::new()
        .step((), app.store.users.set_disabled(&user, disabled)?)
        .step(
            (),
            app.store
                .sessions
                .set_disabled(user_id, version, disabled)?,
        )
        .step((), event_write(app, event, subject, app.clock.now())?);
    app.store
        .apply(&transaction, |()| {
            AuthError::Conflict("The account changed meanwhile; try again.")
        })
        .await?;
    tidy_sessions(app, user_id, version + 1).await;
    let audit_event = if disabled {
        AuditEvent::AccountDisabled
    } else {
        AuditEvent::AccountEnabled
    };
    audit::by_operator(audit_event, operator, Some(&phone), user_id);
    user.disabled = disabled;
    user.credentials_version = version + 1;
    Ok(user)
}

/// The refusal of a login (by password or code) that proved its credential on a disabled
/// account, audited as a failed login.
pub(crate) fn disabled_login(phone: &PhoneNumber, user: &User, caller: &Caller) -> AuthError {
    let subject = Subject {
        phone: Some(phone),
        user_id: Some(&user.profile.id),
        detail: Some("disabled"),
    };
    audit::record(AuditEvent::LoginFailed, caller, subject);
    AuthError::AccountDisabled
}
