//! Accounts and their profiles: the domain types, and the validation of the fields users type in.

use email_address::EmailAddress;

use crate::app_claims::AppClaims;
use crate::error::AuthError;

/// The public part of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    pub id: String,
    pub phone: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
}

#[derive(Debug, Clone)]
pub struct User {
    pub profile: UserProfile,
    /// argon2id PHC string; never shown.
    pub password_hash: String,
    pub created_at: u64,
    /// Bumped by every password change or reset; a session of an older version is dead.
    pub credentials_version: u64,
    /// An operator disabled the account: it cannot log in, refresh or use its tokens.
    pub disabled: bool,
    /// When it last logged in (any kind), if ever.
    pub last_login_at: Option<u64>,
    /// What its access tokens carry under `app` (set by operators).
    pub app_claims: AppClaims,
}

/// Profile fields to change; `None` keeps the stored value.
#[derive(Debug, Default)]
pub struct ProfileChanges {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
}

pub const MAX_NAME_CHARS: usize = 100;
/// RFC 5321's limit on a forward path.
pub const MAX_EMAIL_CHARS: usize = 254;

/// A first or last name: at most 100 characters as sent (the OpenAPI spec's maxLength), at
/// least 1 once trimmed, no control characters.
pub fn name(field: &str, raw: &str) -> Result<String, AuthError> {
    let trimmed = raw.trim();
    if trimmed.is_empty()
        || raw.chars().count() > MAX_NAME_CHARS
        || trimmed.chars().any(char::is_control)
    {
        return Err(AuthError::InvalidRequest(format!(
            "Invalid field '{field}': must be 1 to {MAX_NAME_CHARS} characters without control characters."
        )));
    }
    Ok(trimmed.to_owned())
}

/// An email address as RFC 5322 allows it (checked by the `email_address` crate), without a
/// display name, stored with the domain lowercased.
pub fn email(raw: &str) -> Result<String, AuthError> {
    let invalid =
        || AuthError::InvalidRequest("Invalid field 'email': not a valid email address.".into());
    let trimmed = raw.trim();
    if raw.chars().count() > MAX_EMAIL_CHARS || trimmed.contains(['<', '>']) {
        return Err(invalid());
    }
    let address: EmailAddress = trimmed.parse().map_err(|_| invalid())?;
    Ok(format!(
        "{}@{}",
        address.local_part(),
        address.domain().to_lowercase()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("first_name", "  Sara ").unwrap(), "Sara");
        assert_eq!(name("first_name", "سارا").unwrap(), "سارا");
        assert!(name("first_name", "   ").is_err());
        assert!(name("first_name", "a\u{0}b").is_err());
        assert!(name("first_name", &"a".repeat(101)).is_err());
        // The limit counts what was sent, as the OpenAPI spec's maxLength does.
        assert!(name("first_name", &format!("a{}", " ".repeat(100))).is_err());
        assert_eq!(
            name("first_name", &format!("{} a", "ب".repeat(98)))
                .unwrap()
                .chars()
                .count(),
            100
        );
    }

    #[test]
    fn emails_are_checked_and_domain_lowercased() {
        assert_eq!(email(" Sara@Example.COM ").unwrap(), "Sara@example.com");
        for bad in [
            "",
            "sara",
            "sara@",
            "@example.com",
            "Sara <sara@example.com>",
            "a b@c.d",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }
}
