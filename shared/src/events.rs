//! Domain events: what the rest of an app hears of (a sign-up, a new number, a session started
//! or ended). An event is written to the events table in the same transaction as the change it
//! reports (`store::events`), so it exists if and only if the change committed; the table's
//! stream feeds the publisher (`publisher.rs`), which puts it on EventBridge.
//!
//! The `detail` of each `detail-type` is the contract a consumer codes against: its JSON Schema
//! is in `schemas/events/`, and a test validates every event the suite produces against it.
//! Adding a field keeps the version; removing or renaming one is a new `detail-type` version.

use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use crate::config::ConfigError;
use crate::error::AuthError;
use crate::phone::PhoneNumber;
use crate::settings::Env;

/// The kinds of event, each a versioned EventBridge `detail-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    UserRegistered,
    UserPhoneChanged,
    UserPasswordChanged,
    UserDeleted,
    SessionStarted,
    SessionEnded,
    SessionReuseDetected,
    UserDisabled,
    UserEnabled,
    UserSignedOut,
    UserClaimsChanged,
}

impl EventKind {
    pub const ALL: [EventKind; 11] = [
        EventKind::UserRegistered,
        EventKind::UserPhoneChanged,
        EventKind::UserPasswordChanged,
        EventKind::UserDeleted,
        EventKind::SessionStarted,
        EventKind::SessionEnded,
        EventKind::SessionReuseDetected,
        EventKind::UserDisabled,
        EventKind::UserEnabled,
        EventKind::UserSignedOut,
        EventKind::UserClaimsChanged,
    ];

    /// The EventBridge `detail-type` (also the name of its schema file).
    pub fn detail_type(self) -> &'static str {
        match self {
            Self::UserRegistered => "user.registered.v1",
            Self::UserPhoneChanged => "user.phone_changed.v1",
            Self::UserPasswordChanged => "user.password_changed.v1",
            Self::UserDeleted => "user.deleted.v1",
            Self::SessionStarted => "session.started.v1",
            Self::SessionEnded => "session.ended.v1",
            Self::SessionReuseDetected => "session.reuse_detected.v1",
            Self::UserDisabled => "user.disabled.v1",
            Self::UserEnabled => "user.enabled.v1",
            Self::UserSignedOut => "user.signed_out.v1",
            Self::UserClaimsChanged => "user.claims_changed.v1",
        }
    }
}

/// How a session started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionMethod {
    /// The first session, started by registration.
    Registration,
    Password,
    /// A login code alone (passwordless).
    Code,
    /// A password and the code a step-up asked for.
    StepUp,
}

/// Why a session ended (its expiry is no event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEndReason {
    /// The user logged out of it (or named its refresh token when logging out of another).
    Logout,
    /// The user logged out of every session.
    LogoutEverywhere,
    /// The user revoked it from the session list.
    Revoked,
    /// Too many wrong passwords were entered in it.
    WrongPasswords,
}

/// Who deleted an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletedBy {
    /// Its owner, with the password.
    User,
    /// An operator, through the admin API.
    Operator,
}

/// How the password changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordChangedBy {
    /// From a session, with the old password.
    Change,
    /// By a reset code.
    Reset,
}

/// An event, by kind, with what only that kind carries.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    UserRegistered,
    /// `phone` of the subject is the new number.
    UserPhoneChanged {
        previous: &'a PhoneNumber,
    },
    UserPasswordChanged {
        by: PasswordChangedBy,
    },
    UserDeleted {
        by: DeletedBy,
    },
    SessionStarted {
        session_id: &'a str,
        method: SessionMethod,
    },
    SessionEnded {
        session_id: &'a str,
        reason: SessionEndReason,
    },
    /// A spent refresh token was presented again: the session was ended.
    SessionReuseDetected {
        session_id: &'a str,
    },
    /// An operator disabled the account (its sessions ended with it).
    UserDisabled,
    /// An operator enabled it again.
    UserEnabled,
    /// An operator ended the session `session_id`, or every session of the user (`None`).
    UserSignedOut {
        session_id: Option<&'a str>,
    },
    /// An operator set the user's app claims (shown in the next access token).
    UserClaimsChanged,
}

impl Event<'_> {
    pub fn kind(&self) -> EventKind {
        match self {
            Self::UserRegistered => EventKind::UserRegistered,
            Self::UserPhoneChanged { .. } => EventKind::UserPhoneChanged,
            Self::UserPasswordChanged { .. } => EventKind::UserPasswordChanged,
            Self::UserDeleted { .. } => EventKind::UserDeleted,
            Self::SessionStarted { .. } => EventKind::SessionStarted,
            Self::SessionEnded { .. } => EventKind::SessionEnded,
            Self::SessionReuseDetected { .. } => EventKind::SessionReuseDetected,
            Self::UserDisabled => EventKind::UserDisabled,
            Self::UserEnabled => EventKind::UserEnabled,
            Self::UserSignedOut { .. } => EventKind::UserSignedOut,
            Self::UserClaimsChanged => EventKind::UserClaimsChanged,
        }
    }
}

/// Whom an event is about, and where the request came from.
#[derive(Debug, Clone, Copy)]
pub struct EventSubject<'a> {
    pub user_id: &'a str,
    pub phone: &'a PhoneNumber,
    /// The client network (an address, or an IPv6 /64), when a request caused the event.
    pub network: Option<&'a str>,
}

/// What the events carry, read once at cold start.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventSettings {
    /// Full numbers in `phone` (and `previous_phone`), not only the masked ones.
    pub include_phone: bool,
}

/// An event ready for the events table: its id, `detail-type` and `detail` (JSON text).
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub event_id: String,
    pub detail_type: &'static str,
    pub detail: String,
    pub occurred_at: u64,
}

/// The `detail` every kind shares; `extra` holds what its kind adds.
#[derive(Serialize)]
struct Detail<'a> {
    event_id: &'a str,
    occurred_at: String,
    user_id: &'a str,
    phone_masked: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_network: Option<&'a str>,
    #[serde(flatten)]
    extra: Extra<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Extra<'a> {
    Nothing {},
    PhoneChanged {
        previous_phone_masked: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        previous_phone: Option<&'a str>,
    },
    PasswordChanged {
        by: PasswordChangedBy,
    },
    Deleted {
        by: DeletedBy,
    },
    SignedOut {
        #[serde(skip_serializing_if = "Option::is_none")]
        session_id: Option<&'a str>,
    },
    SessionStarted {
        session_id: &'a str,
        method: SessionMethod,
    },
    SessionEnded {
        session_id: &'a str,
        reason: SessionEndReason,
    },
    Session {
        session_id: &'a str,
    },
}

impl EventSettings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            include_phone: env.parse("EVENTS_INCLUDE_PHONE")?,
        })
    }

    /// The event with a new id, stamped `now` (epoch seconds).
    pub fn outbox_event(
        &self,
        event: Event<'_>,
        subject: EventSubject<'_>,
        now: u64,
    ) -> Result<OutboxEvent, AuthError> {
        let event_id = uuid::Uuid::new_v4().simple().to_string();
        let full = |phone: &'_ PhoneNumber| -> Option<String> {
            self.include_phone.then(|| phone.as_str().to_owned())
        };
        let phone = full(subject.phone);
        let previous_phone = match event {
            Event::UserPhoneChanged { previous } => full(previous),
            _ => None,
        };
        let extra = match event {
            Event::UserRegistered
            | Event::UserDisabled
            | Event::UserEnabled
            | Event::UserClaimsChanged => Extra::Nothing {},
            Event::UserDeleted { by } => Extra::Deleted { by },
            Event::UserSignedOut { session_id } => Extra::SignedOut { session_id },
            Event::UserPhoneChanged { previous } => Extra::PhoneChanged {
                previous_phone_masked: previous.masked(),
                previous_phone: previous_phone.as_deref(),
            },
            Event::UserPasswordChanged { by } => Extra::PasswordChanged { by },
            Event::SessionStarted { session_id, method } => {
                Extra::SessionStarted { session_id, method }
            }
            Event::SessionEnded { session_id, reason } => {
                Extra::SessionEnded { session_id, reason }
            }
            Event::SessionReuseDetected { session_id } => Extra::Session { session_id },
        };
        let detail = Detail {
            event_id: &event_id,
            occurred_at: rfc3339(now),
            user_id: subject.user_id,
            phone_masked: subject.phone.masked(),
            phone: phone.as_deref(),
            client_network: subject.network,
            extra,
        };
        let detail = serde_json::to_string(&detail).map_err(AuthError::internal)?;
        Ok(OutboxEvent {
            event_id,
            detail_type: event.kind().detail_type(),
            detail,
            occurred_at: now,
        })
    }
}

/// Epoch seconds as RFC 3339 in UTC (`2026-12-03T07:00:00Z`).
pub fn rfc3339(epoch_seconds: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(epoch_seconds);
    humantime::format_rfc3339_seconds(at).to_string()
}
