//! Sign-up: a verified phone gets a registration token, which creates the account.

use crate::App;
use crate::app_claims::AppClaims;
use crate::audit::{self, AuditEvent, Subject};
use crate::error::AuthError;
use crate::events::{Event, EventSubject, SessionMethod};
use crate::http::Caller;
use crate::limits::{self, SendPool, SendScope};
use crate::otp::OtpPurpose;
use crate::password::{self, Password};
use crate::phone::PhoneNumber;
use crate::profile::{User, UserProfile};
use crate::service::codes::{
    BudgetReading, CodeGuess, CodeToSend, SentCode, check_bot, match_code, send_code,
};
use crate::service::sessions;
use crate::service::{event_write, guard};
use crate::store::attempts::FailureKind;
use crate::store::{Transaction, Write};
use crate::tokens::{TokenPair, hash_opaque_token, new_opaque_token};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VerifyStep {
    Code,
    Token,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegisterStep {
    Token,
    User,
    Session,
    Proof,
}

/// Exchanges a right sign-up code for a registration token. The code is spent and the token
/// created in one transaction, so one code yields at most one token.
pub async fn verify_phone(
    app: &App,
    phone: &PhoneNumber,
    guess: &CodeGuess,
    caller: &Caller,
) -> Result<String, AuthError> {
    let matched = match_code(app, phone, guess, caller, OtpPurpose::SignUp).await?;
    let now = app.clock.now();
    let token = new_opaque_token()?;
    let transaction = Transaction::new()
        .steps(VerifyStep::Code, matched.spend(app, phone, caller, now)?)
        .step(
            VerifyStep::Token,
            app.store.registration_tokens.create(
                &hash_opaque_token(&token),
                phone,
                now,
                now + app.config.registration_token_ttl_seconds,
            )?,
        );
    app.store
        .apply(&transaction, |step| match step {
            // Spent, replaced or expired meanwhile.
            VerifyStep::Code => AuthError::NoActiveOtp,
            VerifyStep::Token => AuthError::internal("new registration token already taken"),
        })
        .await?;
    let subject = Subject {
        phone: Some(phone),
        detail: Some(OtpPurpose::SignUp.as_str()),
        ..Subject::default()
    };
    audit::record(AuditEvent::OtpVerified, caller, subject);
    Ok(token)
}

/// A registration request that passed validation.
pub struct Registration {
    pub registration_token: String,
    pub password: Password,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
}

/// Creates the account of the phone the token was issued for, and its first session. The token
/// is spent in the same transaction that creates the user: two registrations with one token
/// create one account, and a refused registration leaves the token usable.
pub async fn register(
    app: &App,
    registration: Registration,
    caller: &Caller,
) -> Result<(UserProfile, TokenPair), AuthError> {
    let now = app.clock.now();
    let token_hash = hash_opaque_token(&registration.registration_token);
    let phone = app
        .store
        .registration_tokens
        .phone_for(&token_hash, now)
        .await?
        .ok_or(AuthError::InvalidRegistrationToken)?;
    let user = new_user(registration, &phone, now).await?;
    let method = SessionMethod::Registration;
    let (session_items, tokens) = sessions::new_session(app, (&user, method), caller, now).await?;
    let spend = app
        .store
        .registration_tokens
        .consume(&token_hash, &phone, now)?;
    commit_registration(app, &phone, (spend, &user, session_items), caller, now).await?;
    let subject = Subject {
        phone: Some(&phone),
        user_id: Some(&user.profile.id),
        ..Subject::default()
    };
    audit::record(AuditEvent::Registered, caller, subject);
    Ok((user.profile, tokens))
}

/// The account a registration creates, its password hashed.
async fn new_user(
    registration: Registration,
    phone: &PhoneNumber,
    now: u64,
) -> Result<User, AuthError> {
    Ok(User {
        profile: UserProfile {
            id: uuid::Uuid::new_v4().to_string(),
            phone: phone.as_str().to_owned(),
            first_name: registration.first_name,
            last_name: registration.last_name,
            email: registration.email,
        },
        password_hash: password::hash(registration.password).await?,
        created_at: now,
        credentials_version: 0,
        disabled: false,
        // Registering starts the account's first session.
        last_login_at: Some(now),
        app_claims: AppClaims::default(),
    })
}

/// Spends the token, creates the user and its first session in one transaction. Failed logins
/// recorded on the number before it had an account are strangers', and the network that proved
/// the number is the owner's: both are written down in the same transaction.
async fn commit_registration(
    app: &App,
    phone: &PhoneNumber,
    (spend_token, user, session_items): (Write, &User, Vec<Write>),
    caller: &Caller,
    now: u64,
) -> Result<(), AuthError> {
    let attempts = &app.store.attempts;
    let subject = EventSubject {
        user_id: &user.profile.id,
        phone,
        network: Some(&caller.network),
    };
    let transaction = Transaction::new()
        .step(RegisterStep::Token, spend_token)
        .step(RegisterStep::User, app.store.users.create(user)?)
        .step(
            RegisterStep::Session,
            event_write(app, Event::UserRegistered, subject, now)?,
        )
        .steps(RegisterStep::Session, session_items)
        .step(RegisterStep::Proof, attempts.clear_account(phone)?)
        .step(
            RegisterStep::Proof,
            attempts.clear_pair(FailureKind::Login, phone, &caller.network)?,
        )
        .steps(
            RegisterStep::Proof,
            sessions::mark_proof(app, phone, caller, now)?,
        );
    app.store
        .apply(&transaction, |step| match step {
            RegisterStep::Token => AuthError::InvalidRegistrationToken,
            RegisterStep::User => AuthError::PhoneAlreadyRegistered,
            RegisterStep::Session | RegisterStep::Proof => {
                AuthError::internal("new session id already taken")
            }
        })
        .await
}

/// What check-phone found.
pub enum PhoneCheck {
    /// The number has an account (no code sent).
    Registered,
    /// It has none: a sign-up code was sent.
    Unregistered(SentCode),
}

/// `check-phone`: whether `phone` has an account (a lookup, counted against the client network's
/// lookup cap), and if not a sign-up code to it. A bot token is verified before any counter is
/// spent; only a new number needs one.
pub async fn check_phone(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
    captcha_token: Option<&str>,
    language: &str,
) -> Result<PhoneCheck, AuthError> {
    let pool = SendPool::NewNumbers;
    let bot = check_bot(app, phone, pool, captcha_token, caller).await?;
    let lookup = check_phone_lookup(app, phone, caller).await?;
    if lookup.registered {
        return Ok(PhoneCheck::Registered);
    }
    bot.ensure_passed()?;
    let send = CodeToSend {
        budgets: Some(lookup.budgets),
        ..CodeToSend::new(OtpPurpose::SignUp, pool, bot)
    };
    let sent = send_code(app, phone, caller, send, language)
        .await?
        .sent()?;
    Ok(PhoneCheck::Unregistered(sent))
}

/// What a lookup found: whether the number has an account, and the new numbers' budgets a code
/// to it would draw on, as read beside it.
pub(crate) struct Lookup {
    pub registered: bool,
    pub budgets: BudgetReading,
}

/// Whether `phone` has an account, for `check-phone` and a change of number. Each lookup counts
/// against the client network's lookup cap, so numbers cannot be enumerated faster than that;
/// the account is read in the same round trip (with the budgets a code to a new number draws
/// on, so that its send needs no read of its own), and told only when the count was accepted.
pub(crate) async fn check_phone_lookup(
    app: &App,
    phone: &PhoneNumber,
    caller: &Caller,
) -> Result<Lookup, AuthError> {
    let now = app.clock.now();
    let limits = &app.config.limits;
    let (limit, window) = limits::send_limit(limits, SendScope::Lookup, now);
    let pool = SendPool::NewNumbers;
    let budgets = limits::budget_counters(limits, pool, phone, now, guard::random_shard);
    let (counted, records) = tokio::join!(
        app.store
            .attempts
            .count_lookup(&caller.network, limit, window),
        app.store.lookup_records(phone, &budgets),
    );
    if !counted? {
        return Err(AuthError::RateLimited {
            retry_after: window.ends_at - now,
        });
    }
    let records = records?;
    Ok(Lookup {
        registered: records.registered,
        budgets: BudgetReading {
            counters: budgets,
            sends: records.budget_sends,
        },
    })
}
