//! What operators do to accounts (the admin API, behind IAM): find one by number or id,
//! disable and enable it. A disabled account cannot log in in any way, refresh, or use a live
//! access token, and its sessions end; enabling it does not bring them back, nor the login and
//! reset codes sent before. Every action is in the audit log with the operator's IAM identity.

use crate::App;
use crate::app_claims::AppClaims;
use crate::audit::{self, AuditEvent, Subject};
use crate::error::AuthError;
use crate::events::{DeletedBy, Event, EventSubject};
use crate::http::Caller;
use crate::otp::OtpPurpose;
use crate::phone::PhoneNumber;
use crate::profile::User;
use crate::service::account::tidy_sessions;
use crate::service::event_write;
use crate::store::sessions::SessionSummary;
use crate::store::{Transaction, Write};

/// Who made an admin request: the IAM identity API Gateway authenticated, and the request's id.
#[derive(Debug, Clone, Default)]
pub struct Operator {
    /// The caller's ARN (for a role, its session name is the caller's choice).
    pub arn: String,
    /// The principal's unique id (`AROA...:session` for a role), which the caller cannot choose.
    pub principal_id: Option<String>,
    /// The access key the request was signed with.
    pub access_key: Option<String>,
    pub request_id: String,
}

/// The account of `phone`.
pub async fn find_by_phone(app: &App, phone: &PhoneNumber) -> Result<User, AuthError> {
    app.store.users.get(phone).await?.ok_or(NO_ACCOUNT)
}

/// The account whose id is `user_id`.
pub async fn find_by_id(app: &App, user_id: &str) -> Result<User, AuthError> {
    let indexed = app.store.users.indexed_phone(user_id).await?;
    find_by_id_from(app, user_id, indexed).await
}

/// The account `user_id`, starting from the phone the users index named for it (`indexed`).
/// The index is eventually consistent: just after a change of number it may still name the old
/// phone, which then holds no account or another's. Then the phone the sessions table's
/// credentials item holds (strongly consistent, written in the change of number's own
/// transaction) is read instead.
pub async fn find_by_id_from(
    app: &App,
    user_id: &str,
    indexed: Option<PhoneNumber>,
) -> Result<User, AuthError> {
    let users = &app.store.users;
    if let Some(phone) = &indexed
        && let Some(user) = users.get_of(phone, user_id).await?
    {
        return Ok(user);
    }
    let current = app.store.sessions.account_phone(user_id).await?;
    let Some(phone) = current.filter(|phone| Some(phone) != indexed.as_ref()) else {
        return Err(NO_ACCOUNT);
    };
    users.get_of(&phone, user_id).await?.ok_or(NO_ACCOUNT)
}

pub const NO_ACCOUNT: AuthError = AuthError::NotFound("No account has this id or number.");

/// Disables the account (`disabled`) or enables it again; every session ends either way. The
/// account as it is now; one already so is left as it is (no event, its sessions untouched).
///
/// The sessions live at the disable are answered `AccountDisabled` while it lasts, so their
/// items stay (the disable removes only those already dead before it); the enable ends them
/// for good (their version is no longer the one disabled at) and removes them. The enable also
/// deletes the number's login and reset codes, in its own transaction: none is sent while the
/// account is disabled, so every code it finds was sent before the disable (or raced it).
pub async fn set_disabled(
    app: &App,
    user_id: &str,
    disabled: bool,
    operator: &Operator,
) -> Result<User, AuthError> {
    let mut user = find_by_id(app, user_id).await?;
    if user.disabled == disabled {
        let phone = PhoneNumber::from_stored(user.profile.phone.clone());
        let unchanged = Subject {
            detail: Some("unchanged"),
            ..account(&phone, user_id)
        };
        audit::by_operator(status_event(disabled), operator, unchanged);
        return Ok(user);
    }
    let version = user.credentials_version;
    let phone = PhoneNumber::from_stored(user.profile.phone.clone());
    let event = if disabled {
        Event::UserDisabled
    } else {
        Event::UserEnabled
    };
    let mut writes = vec![
        app.store.users.set_disabled(&user, disabled)?,
        app.store
            .sessions
            .set_disabled(user_id, version, disabled)?,
    ];
    if !disabled {
        writes.extend(outstanding_codes(app, &phone, app.clock.now()).await?);
    }
    let action = (event, status_event(disabled));
    operator_change(app, (&user, operator), writes, action, changed_meanwhile).await?;
    // Disabled: only what was dead before (the sessions live at it are told they are disabled).
    let live_from = if disabled { version } else { version + 1 };
    tidy_sessions(app, user_id, live_from).await;
    user.disabled = disabled;
    user.credentials_version = version + 1;
    Ok(user)
}

/// The deletes of the number's live login and reset codes (for the enable's transaction),
/// read strongly consistently. DynamoDB takes 100 writes in a transaction: codes beyond what
/// fits beside the enable's own writes (only with send caps raised far above the defaults) are
/// deleted first, before the account can use any.
async fn outstanding_codes(
    app: &App,
    phone: &PhoneNumber,
    now: u64,
) -> Result<Vec<Write>, AuthError> {
    const ROOM: usize = 90;
    let otps = &app.store.otps;
    let (login, reset) = tokio::join!(
        otps.anonymous_target(phone, OtpPurpose::Login, now),
        otps.anonymous_target(phone, OtpPurpose::PasswordReset, now),
    );
    let mut deletes = Vec::new();
    for (purpose, target) in [
        (OtpPurpose::Login, login?),
        (OtpPurpose::PasswordReset, reset?),
    ] {
        for code in target.codes() {
            deletes.push(otps.delete_code(phone, purpose, code)?);
        }
    }
    while deletes.len() > ROOM {
        let excess = deletes.split_off(deletes.len().saturating_sub(ROOM).max(ROOM));
        let transaction = Transaction::new().steps((), excess);
        app.store
            .apply(&transaction, |()| {
                AuthError::internal("a delete was refused")
            })
            .await?;
    }
    Ok(deletes)
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

/// An account as an operator reads it: the account and how many live sessions it has.
pub struct AccountOverview {
    pub user: User,
    pub live_sessions: usize,
}

/// The account `user` as an operator reads it, audited as read by `operator`.
pub async fn read(
    app: &App,
    user: User,
    operator: &Operator,
) -> Result<AccountOverview, AuthError> {
    let overview = overview(app, user).await?;
    audit_read(&overview.user, operator);
    Ok(overview)
}

/// The account `user_id` alone (no session count: one request fewer), audited as read.
pub async fn read_account(
    app: &App,
    user_id: &str,
    operator: &Operator,
) -> Result<User, AuthError> {
    let user = find_by_id(app, user_id).await?;
    audit_read(&user, operator);
    Ok(user)
}

fn audit_read(user: &User, operator: &Operator) {
    let phone = PhoneNumber::from_stored(user.profile.phone.clone());
    let subject = account(&phone, &user.profile.id);
    audit::by_operator(AuditEvent::AccountRead, operator, subject);
}

/// The account `user` with its live sessions counted.
pub async fn overview(app: &App, user: User) -> Result<AccountOverview, AuthError> {
    let live = app
        .store
        .sessions
        .list(
            &user.profile.id,
            user.credentials_version,
            app.config.session_max_seconds,
            app.clock.now(),
        )
        .await?;
    Ok(AccountOverview {
        user,
        live_sessions: live.len(),
    })
}

/// A page of at most `limit` of the account's live sessions (in the order of their ids) after
/// the session `after`, and the id to continue after when more may follow; audited as a read.
pub async fn sessions_page(
    app: &App,
    user_id: &str,
    (limit, after): (usize, Option<&str>),
    operator: &Operator,
) -> Result<(Vec<SessionSummary>, Option<String>), AuthError> {
    let user = find_by_id(app, user_id).await?;
    let phone = PhoneNumber::from_stored(user.profile.phone.clone());
    audit::by_operator(AuditEvent::AccountRead, operator, account(&phone, user_id));
    let liveness = (
        user.credentials_version,
        app.config.session_max_seconds,
        app.clock.now(),
    );
    app.store
        .sessions
        .page(user_id, liveness, limit, after)
        .await
}

/// Ends every session of the account at once (its credentials version moves on, as a change of
/// password does), so that a refresh in flight cannot keep one alive. A login after it starts
/// a new session: to keep someone out, disable the account or have its password reset.
pub async fn sign_out_everywhere(
    app: &App,
    user_id: &str,
    operator: &Operator,
) -> Result<(), AuthError> {
    let user = find_by_id(app, user_id).await?;
    let version = user.credentials_version;
    let writes = vec![
        app.store.users.bump_credentials(&user)?,
        app.store.sessions.bump_credentials(user_id, version)?,
    ];
    let signed_out = Event::UserSignedOut { session_id: None };
    let action = (signed_out, AuditEvent::SignedOutEverywhere);
    operator_change(app, (&user, operator), writes, action, changed_meanwhile).await?;
    tidy_sessions(app, user_id, version + 1).await;
    Ok(())
}

/// Ends the account's live session `session_id`; `NotFound` when it names none.
pub async fn revoke_session(
    app: &App,
    user_id: &str,
    session_id: &str,
    operator: &Operator,
) -> Result<(), AuthError> {
    let user = find_by_id(app, user_id).await?;
    let end = app.store.sessions.end_live(
        user_id,
        session_id,
        user.credentials_version,
        app.config.session_max_seconds,
        app.clock.now(),
    )?;
    let signed_out = Event::UserSignedOut {
        session_id: Some(session_id),
    };
    let action = (signed_out, AuditEvent::SessionRevoked);
    operator_change(app, (&user, operator), vec![end], action, || {
        AuthError::NotFound("No such session.")
    })
    .await
}

/// Deletes the account as its owner's deletion does: its sessions end, its number can register
/// again, and the number's failure counters are cleared for the next owner.
pub async fn delete_account(
    app: &App,
    user_id: &str,
    operator: &Operator,
) -> Result<(), AuthError> {
    let user = find_by_id(app, user_id).await?;
    let version = user.credentials_version;
    let phone = PhoneNumber::from_stored(user.profile.phone.clone());
    let writes = vec![
        app.store.users.delete(&phone, user_id)?,
        app.store.sessions.bump_credentials(user_id, version)?,
        app.store.attempts.clear_account(&phone)?,
    ];
    let deleted = Event::UserDeleted {
        by: DeletedBy::Operator,
    };
    let action = (deleted, AuditEvent::AccountDeleted);
    operator_change(app, (&user, operator), writes, action, changed_meanwhile).await?;
    tidy_sessions(app, user_id, version + 1).await;
    Ok(())
}

/// Sets the account's app claims (`claims`; empty: none), which every access token issued from
/// then on carries under `app`: at the next login or refresh, not in tokens already issued.
pub async fn set_app_claims(
    app: &App,
    user_id: &str,
    claims: AppClaims,
    operator: &Operator,
) -> Result<User, AuthError> {
    let mut user = find_by_id(app, user_id).await?;
    let writes = vec![
        app.store.users.set_app_claims(&user, &claims)?,
        app.store.sessions.set_app_claims(user_id, &claims)?,
    ];
    let action = (Event::UserClaimsChanged, AuditEvent::ClaimsChanged);
    operator_change(app, (&user, operator), writes, action, changed_meanwhile).await?;
    user.app_claims = claims;
    Ok(user)
}

/// An operator's change of `user`: `writes` and the domain event of `action` in one
/// transaction (a refusal is `refused()`), then the audit line of `action`, before anything
/// else can fail.
async fn operator_change(
    app: &App,
    (user, operator): (&User, &Operator),
    writes: Vec<Write>,
    (event, audited): (Event<'_>, AuditEvent),
    refused: fn() -> AuthError,
) -> Result<(), AuthError> {
    let phone = PhoneNumber::from_stored(user.profile.phone.clone());
    let subject = operator_subject(user, &phone);
    let transaction = Transaction::new()
        .steps((), writes)
        .step((), event_write(app, event, subject, app.clock.now())?);
    app.store.apply(&transaction, |()| refused()).await?;
    audit::by_operator(audited, operator, account(&phone, &user.profile.id));
    Ok(())
}

fn changed_meanwhile() -> AuthError {
    AuthError::Conflict("The account changed meanwhile; try again.")
}

/// The audit subject of an operator's action on the account `user_id` of `phone`.
fn account<'a>(phone: &'a PhoneNumber, user_id: &'a str) -> Subject<'a> {
    Subject {
        phone: Some(phone),
        user_id: Some(user_id),
        detail: None,
    }
}

fn status_event(disabled: bool) -> AuditEvent {
    if disabled {
        AuditEvent::AccountDisabled
    } else {
        AuditEvent::AccountEnabled
    }
}

/// A search that found no account, audited as a read (`detail` `no_account`): which numbers
/// an operator looked up is part of the record.
pub fn searched_in_vain(operator: &Operator, phone: Option<&PhoneNumber>) {
    let subject = Subject {
        phone,
        user_id: None,
        detail: Some("no_account"),
    };
    audit::by_operator(AuditEvent::AccountRead, operator, subject);
}

/// The subject of an event an operator caused: no client network.
fn operator_subject<'a>(user: &'a User, phone: &'a PhoneNumber) -> EventSubject<'a> {
    EventSubject {
        user_id: &user.profile.id,
        phone,
        network: None,
    }
}
