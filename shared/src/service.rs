//! The four flows of the service on validated inputs: send a code, verify it, register, log in.
//! Handlers translate HTTP to these calls and back.

use crate::App;
use crate::error::AuthError;
use crate::limits::{self, FailureCounter, FailureKind};
use crate::otp::{OtpCode, OtpPurpose};
use crate::password::{self, Password};
use crate::phone::PhoneNumber;
use crate::store::otps::{NewOtp, WrongAttempt, resend_wait};
use crate::store::users::{User, UserProfile};
use crate::store::{self, TransactionError, now};
use crate::tokens::{TokenPair, hash_opaque_token, new_opaque_token};

/// Stores a fresh code for `phone` and sends it by SMS. The code, the resend cooldown and the
/// send counters are written in one transaction, so a refused send changes nothing.
pub async fn send_otp(
    app: &App,
    phone: &PhoneNumber,
    client_ip: &str,
    purpose: OtpPurpose,
) -> Result<(), AuthError> {
    let config = &app.config;
    let now = now();
    let fixed_code = config.test_otp_numbers.get(phone.as_str());
    let code = fixed_code.map_or_else(OtpCode::generate, |code| OtpCode::from_configured(code));

    let counts = limits::send_counts(&app.attempts, &config.limits, phone, client_ip, now)?;
    let mut items = vec![app.otps.replace(NewOtp {
        phone,
        code_hash: app.otp_hasher.hash(phone, &code),
        purpose,
        now,
        expires_at: now + config.otp_ttl_seconds,
        resend_at: now + config.otp_resend_seconds,
    })?];
    let waits: Vec<u64> = counts.iter().map(|count| count.retry_after).collect();
    items.extend(counts.into_iter().map(|count| count.update));
    match store::transact(&app.dynamodb, items).await {
        Ok(()) => {}
        Err(TransactionError::ConditionFailed { index: 0, old_item }) => {
            return Err(AuthError::ResendTooSoon {
                retry_after: resend_wait(old_item.as_ref(), now),
            });
        }
        Err(TransactionError::ConditionFailed { index, .. }) => {
            return Err(AuthError::RateLimited {
                retry_after: waits.get(index - 1).copied().unwrap_or(1),
            });
        }
        Err(TransactionError::Storage(error)) => return Err(error),
    }

    if fixed_code.is_some() {
        tracing::info!("otp stored for a configured test number; no sms sent");
        return Ok(());
    }
    let minutes = config.otp_ttl_seconds.div_ceil(60);
    let body = format!(
        "Your verification code is {}. It expires in {minutes} minutes. Do not share it.",
        code.expose()
    );
    if let Err(error) = app.sms.send(phone, &body).await {
        // Take the code back so the user is not held to a cooldown for a message never sent.
        if let Err(cleanup) = app.otps.delete(phone).await {
            tracing::warn!(error = %cleanup, "could not remove an unsent otp");
        }
        return Err(error);
    }
    Ok(())
}

/// Checks `code` for `phone`. Success spends the code and creates a registration token in one
/// transaction, so one code yields at most one token; a wrong code counts against both the code
/// and the (phone, IP) pair.
pub async fn verify_otp(
    app: &App,
    phone: &PhoneNumber,
    code: &OtpCode,
    client_ip: &str,
) -> Result<String, AuthError> {
    let config = &app.config;
    let now = now();
    let counter = FailureCounter::new(
        &app.attempts,
        &config.limits,
        FailureKind::Verify,
        phone,
        client_ip,
    );
    let failures = counter.ensure_not_blocked(now).await?;
    let otp = app
        .otps
        .get(phone, now)
        .await?
        .filter(|otp| otp.purpose == OtpPurpose::SignUp)
        .ok_or(AuthError::NoActiveOtp)?;
    let max_attempts = config.otp_max_attempts;
    if otp.failed_attempts >= max_attempts {
        return Err(AuthError::OtpAttemptsExhausted);
    }

    if !app.otp_hasher.matches(phone, code, &otp.code_hash) {
        let used = match app
            .otps
            .record_wrong_attempt(phone, &otp.code_hash, max_attempts, now)
            .await?
        {
            WrongAttempt::Counted(used) => used,
            WrongAttempt::CodeGone => return Err(AuthError::NoActiveOtp),
        };
        let left_for_pair = counter.record(now).await?;
        tracing::info!("otp verification failed");
        return Err(AuthError::IncorrectOtp {
            attempts_left: max_attempts.saturating_sub(used).min(left_for_pair),
        });
    }

    let token = new_opaque_token()?;
    let items = vec![
        app.otps.consume(phone, &otp.code_hash, max_attempts, now)?,
        app.registration_tokens.create(
            &hash_opaque_token(&token),
            phone,
            now,
            now + config.registration_token_ttl_seconds,
        )?,
    ];
    match store::transact(&app.dynamodb, items).await {
        Ok(()) => {}
        Err(TransactionError::ConditionFailed { .. }) => return Err(AuthError::NoActiveOtp),
        Err(TransactionError::Storage(error)) => return Err(error),
    }
    forget_failures(&counter, failures).await;
    tracing::info!("otp verified");
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

/// Creates the account of the phone the token was issued for. The token is spent in the same
/// transaction that creates the user: two registrations with one token create one account, and
/// a refused registration leaves the token usable.
pub async fn register(
    app: &App,
    registration: Registration,
) -> Result<(UserProfile, TokenPair), AuthError> {
    let now = now();
    let token_hash = hash_opaque_token(&registration.registration_token);
    let phone = app
        .registration_tokens
        .phone_for(&token_hash, now)
        .await?
        .ok_or(AuthError::InvalidRegistrationToken)?;
    let user = User {
        profile: UserProfile {
            id: uuid::Uuid::new_v4().to_string(),
            phone: phone.as_str().to_owned(),
            first_name: registration.first_name,
            last_name: registration.last_name,
            email: registration.email,
        },
        password_hash: password::hash(registration.password).await?,
        created_at: now,
    };
    let items = vec![
        app.registration_tokens.consume(&token_hash, &phone, now)?,
        app.users.create(&user)?,
    ];
    match store::transact(&app.dynamodb, items).await {
        Ok(()) => {}
        Err(TransactionError::ConditionFailed { index: 0, .. }) => {
            return Err(AuthError::InvalidRegistrationToken);
        }
        Err(TransactionError::ConditionFailed { .. }) => {
            return Err(AuthError::PhoneAlreadyRegistered);
        }
        Err(TransactionError::Storage(error)) => return Err(error),
    }
    tracing::info!(user_id = %user.profile.id, "user registered");
    let tokens = app.tokens.issue_pair(&user.profile.id, now)?;
    Ok((user.profile, tokens))
}

/// Checks phone and password. An unknown phone and a wrong password cost the same argon2 work
/// and give the same error; both count against the (phone, IP) pair.
pub async fn login(
    app: &App,
    phone: &PhoneNumber,
    password: Password,
    client_ip: &str,
) -> Result<TokenPair, AuthError> {
    let now = now();
    let counter = FailureCounter::new(
        &app.attempts,
        &app.config.limits,
        FailureKind::Login,
        phone,
        client_ip,
    );
    let failures = counter.ensure_not_blocked(now).await?;
    let user = app.users.get(phone).await?;
    let stored_hash = user.as_ref().map(|user| user.password_hash.clone());
    let matches = password::verify(password, stored_hash).await?;
    let Some(user) = user.filter(|_| matches) else {
        counter.record(now).await?;
        tracing::info!("login failed");
        return Err(AuthError::InvalidCredentials);
    };
    forget_failures(&counter, failures).await;
    tracing::info!(user_id = %user.profile.id, "login succeeded");
    app.tokens.issue_pair(&user.profile.id, now)
}

/// Clearing old failures after a success is best effort: failing it must not fail the success.
async fn forget_failures(counter: &FailureCounter<'_>, failures: store::attempts::Failures) {
    if let Err(error) = counter.clear(failures).await {
        tracing::warn!(%error, "could not clear failure counter");
    }
}
