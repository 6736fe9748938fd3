//! Changing the account's phone number: a code to the new number, then one transaction that
//! moves the account to it.

use crate::App;
use crate::audit::{self, AuditEvent, Subject};
use crate::error::AuthError;
use crate::events::{Event, EventSubject};
use crate::http::Caller;
use crate::limits::{self, SendPool};
use crate::messages;
use crate::otp::OtpPurpose;
use crate::password::Password;
use crate::phone::PhoneNumber;
use crate::profile::User;
use crate::service::account::current_user;
use crate::service::codes::{
    CodeGuess, CodeToSend, MatchedCode, SentCode, check_bot, match_owned_code, send_code,
};
use crate::service::event_write;
use crate::service::sessions::{confirm_password, mark_proof};
use crate::service::signup::check_phone_lookup;
use crate::sms::Sms;
use crate::store::Transaction;
use crate::store::sessions::Session;

/// A change of number moves the account to whoever holds the new one: only a session whose
/// login is recent may ask, so a token stolen from an older session cannot.
fn ensure_recent_login(app: &App, session: &Session) -> Result<(), AuthError> {
    let logged_in_for = app.clock.now().saturating_sub(session.created_at);
    if logged_in_for > app.config.recent_login_seconds {
        return Err(AuthError::RecentLoginRequired);
    }
    Ok(())
}

/// A request to move the account to another number.
pub struct PhoneChangeRequest<'a> {
    pub new_phone: &'a PhoneNumber,
    /// The account's password: a session alone (a login by code, say, from one intercepted
    /// SMS) never moves an account.
    pub password: Password,
    pub captcha_token: Option<&'a str>,
    /// The language of the code's SMS.
    pub language: &'a str,
}

/// Sends a code to the new number, bound to the session's account, once the session's login is
/// recent and the password right (`confirm_password`: the session's own wrong-password budget,
/// not the login back-off). A number that has an account (the caller's own included) is refused
/// with 409; the lookup counts against the client network's lookup cap, as check-phone's does,
/// so logged-in users cannot enumerate numbers faster. The new number's send limits apply as to
/// any code.
pub async fn request_phone_change(
    app: &App,
    session: &Session,
    request: PhoneChangeRequest<'_>,
    caller: &Caller,
) -> Result<SentCode, AuthError> {
    let PhoneChangeRequest {
        new_phone,
        password,
        captcha_token,
        language,
    } = request;
    ensure_recent_login(app, session)?;
    // Side by side where nothing depends on the other, to keep the sequence of calls inside
    // the function's time budget (template.yaml).
    let (confirmed, bot) = tokio::join!(
        confirm_password(app, session, password, caller),
        check_bot(app, new_phone, SendPool::NewNumbers, captcha_token, caller),
    );
    let release = Transaction::new().steps((), confirmed?.clear_counters);
    let (released, lookup) = tokio::join!(
        app.store.apply(&release, |()| AuthError::InvalidToken),
        check_phone_lookup(app, new_phone, caller),
    );
    released?;
    let lookup = lookup?;
    if lookup.registered {
        return Err(AuthError::PhoneAlreadyRegistered);
    }
    let bot = bot?;
    bot.ensure_passed()?;
    let send = CodeToSend {
        owner: Some(&session.user_id),
        budgets: Some(lookup.budgets),
        ..CodeToSend::new(OtpPurpose::PhoneChange, SendPool::NewNumbers, bot)
    };
    send_code(app, new_phone, caller, send, language)
        .await?
        .sent()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MoveStep {
    Code,
    OldNumber,
    NewNumber,
    Sessions,
    Proof,
}

/// Moves the account to `new_phone` once `guess` matches the code sent there for it (the wrong-
/// code rules and lock-outs of sign-up verification). One transaction spends the code, deletes
/// the account under the old number (only if nothing in it changed since it was read), creates
/// it under the new one (only if no account holds that number: a sign-up racing for it leaves
/// exactly one winner) and points the user's sessions at the new number, so they stay valid.
pub async fn confirm_phone_change(
    app: &App,
    session: &Session,
    (new_phone, guess): (&PhoneNumber, &CodeGuess),
    caller: &Caller,
    language: &str,
) -> Result<User, AuthError> {
    ensure_recent_login(app, session)?;
    let purpose = OtpPurpose::PhoneChange;
    let owner = Some(session.user_id.as_str());
    let matched = match_owned_code(app, new_phone, guess, caller, purpose, owner).await?;
    let user = current_user(app, session).await?;
    let mut moved = user.clone();
    moved.profile.phone = new_phone.as_str().to_owned();
    let transaction = move_account(app, (&user, &moved), (new_phone, &matched), caller)?;
    app.store
        .apply(&transaction, |step| match step {
            MoveStep::Code => AuthError::NoActiveOtp,
            MoveStep::NewNumber => AuthError::PhoneAlreadyRegistered,
            MoveStep::OldNumber | MoveStep::Sessions | MoveStep::Proof => {
                AuthError::Conflict("The account changed meanwhile; try again.")
            }
        })
        .await?;
    let new_masked = new_phone.masked();
    let subject = Subject {
        phone: Some(&session.phone),
        user_id: Some(&user.profile.id),
        detail: Some(&new_masked),
    };
    audit::record(AuditEvent::PhoneChanged, caller, subject);
    notify_old_number(app, &session.phone, &new_masked, language).await;
    Ok(moved)
}

/// The move's transaction: the code spent, `user` deleted under its old number and created as
/// `moved` under `new_phone`, the sessions following it, the event and the proof of the number.
fn move_account(
    app: &App,
    (user, moved): (&User, &User),
    (new_phone, matched): (&PhoneNumber, &MatchedCode),
    caller: &Caller,
) -> Result<Transaction<MoveStep>, AuthError> {
    let now = app.clock.now();
    let old_phone = PhoneNumber::from_stored(user.profile.phone.clone());
    let moved_event = event_write(
        app,
        Event::UserPhoneChanged {
            previous: &old_phone,
        },
        EventSubject {
            user_id: &user.profile.id,
            phone: new_phone,
            network: Some(&caller.network),
        },
        now,
    )?;
    Ok(Transaction::new()
        .steps(MoveStep::Code, matched.spend(app, new_phone, caller, now)?)
        .step(MoveStep::OldNumber, app.store.users.delete_unchanged(user)?)
        .step(MoveStep::NewNumber, app.store.users.create(moved)?)
        .step(MoveStep::Proof, moved_event)
        .step(
            MoveStep::Sessions,
            app.store.sessions.follow_phone(
                &user.profile.id,
                user.credentials_version,
                new_phone,
            )?,
        )
        .steps(MoveStep::Proof, mark_proof(app, new_phone, caller, now)?))
}

/// Tells the old number that the account moved (by SMS, best effort: the move stands if the
/// provider fails). Whoever moved it without the owner's knowledge is found out, and the owner
/// learns to act while the old number still reaches them. Not counted against the send budgets:
/// one per completed move, which the new number's code already paid for. A test number gets no
/// SMS.
async fn notify_old_number(app: &App, old_phone: &PhoneNumber, new_masked: &str, language: &str) {
    let no_sms = app.config.test_otp_numbers.contains_key(old_phone.as_str())
        || limits::ensure_sms_allowed(&app.config, old_phone).is_err();
    if no_sms {
        return;
    }
    let body = messages::phone_changed_notice(language, &app.config.service_name, new_masked);
    let notice = Sms {
        to: old_phone,
        body: &body,
        code: None,
        language,
        now: app.clock.now(),
        feedback: false,
    };
    if let Err(error) = app.sms.send(&notice).await {
        tracing::warn!(%error, "could not send the old number its notice of the move");
    }
}
