//! Accounts brought in from another system (issue 25, the `import-users` tool): each source row
//! is checked as the API checks what users type (the phone by the same parser, the names and
//! email by the same rules) and its password hash as login will verify it, so that nothing is
//! written that the service would not have accepted or could not use.

use crate::app_claims::AppClaims;
use crate::error::AuthError;
use crate::imported_hash::ImportedHash;
use crate::phone::{PhoneNumber, PhoneParser};
use crate::profile::{self, User, UserProfile};

/// One source row, its fields already picked out by name; `None` is absent (or null).
#[derive(Debug, Default, Clone)]
pub struct SourceRow {
    pub phone: Option<String>,
    pub password_hash: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    /// RFC 3339 (Django's `date_joined`) or epoch seconds; absent: the time of the import.
    pub created_at: Option<String>,
    /// `false` imports the account disabled (Django's `is_active`); absent: active.
    pub active: Option<String>,
    /// Whether the source system verified the number (read only when the import asks for it:
    /// `phone_verified`).
    pub phone_verified: Option<String>,
}

/// Why a row was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    InvalidPhone,
    /// The source never verified the number: its account here would be whoever holds it.
    UnverifiedPhone,
    /// Two or more rows of the source give this number once normalised: none of them is
    /// written, since the service cannot tell whose account it is.
    DuplicateInSource,
    /// An account holds the number already (imported earlier, or signed up here); it is kept.
    AlreadyPresent {
        user_id: String,
    },
    UnsupportedHash(String),
    InvalidProfile(String),
}

impl Rejection {
    /// The reason as a word for the rejects file.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidPhone => "invalid_phone",
            Self::UnverifiedPhone => "unverified_phone",
            Self::DuplicateInSource => "duplicate_after_normalising",
            Self::AlreadyPresent { .. } => "already_present",
            Self::UnsupportedHash(_) => "unsupported_hash",
            Self::InvalidProfile(_) => "invalid_profile",
        }
    }

    /// What to fix, in words.
    pub fn detail(&self) -> String {
        match self {
            Self::InvalidPhone => {
                "not a valid phone number as the API reads it (default region as configured)"
                    .to_owned()
            }
            Self::UnverifiedPhone => {
                "the source does not have this number as verified: whoever holds it could take \
                 the account by SMS"
                    .to_owned()
            }
            Self::DuplicateInSource => {
                "another row of the source is this number once normalised: neither is written"
                    .to_owned()
            }
            Self::AlreadyPresent { user_id } => {
                format!("an account holds this number already (id {user_id}); it is kept")
            }
            Self::UnsupportedHash(detail) | Self::InvalidProfile(detail) => detail.clone(),
        }
    }
}

/// The number of `row`, normalised as the API normalises what users type.
pub fn phone_of(row: &SourceRow, phones: &PhoneParser) -> Result<PhoneNumber, Rejection> {
    let raw = row.phone.as_deref().ok_or(Rejection::InvalidPhone)?;
    phones.parse(raw).map_err(|_| Rejection::InvalidPhone)
}

/// Whether the source verified the row's number (for imports that require it).
pub fn phone_verified(row: &SourceRow) -> Result<(), Rejection> {
    match truth(row.phone_verified.as_deref(), "phone_verified") {
        Ok(Some(true)) => Ok(()),
        _ => Err(Rejection::UnverifiedPhone),
    }
}

/// The account `row` describes under its number `phone` (`phone_of`) and a new id, as created
/// at `now` unless the row says when.
pub fn account(row: &SourceRow, phone: &PhoneNumber, now: u64) -> Result<User, Rejection> {
    let password_hash = usable_hash(row.password_hash.as_deref())?;
    Ok(User {
        profile: UserProfile {
            id: uuid::Uuid::new_v4().to_string(),
            phone: phone.as_str().to_owned(),
            first_name: optional(row.first_name.as_deref(), |raw| {
                profile::name("first_name", raw)
            })?,
            last_name: optional(row.last_name.as_deref(), |raw| {
                profile::name("last_name", raw)
            })?,
            email: optional(row.email.as_deref(), profile::email)?,
        },
        password_hash,
        created_at: created_at(row.created_at.as_deref(), now)?,
        credentials_version: 0,
        disabled: !active(row.active.as_deref())?,
        last_login_at: None,
        app_claims: AppClaims::default(),
    })
}

/// The stored hash, as the source stored it, if login can verify it within the work ceilings.
fn usable_hash(stored: Option<&str>) -> Result<String, Rejection> {
    let stored = stored.map(str::trim).unwrap_or_default();
    if stored.is_empty() {
        return Err(Rejection::UnsupportedHash("no password hash".to_owned()));
    }
    if stored.starts_with('!') {
        return Err(Rejection::UnsupportedHash(
            "Django's unusable password ('!'): there is no password to bring".to_owned(),
        ));
    }
    ImportedHash::parse(stored)
        .map(|_| stored.to_owned())
        .map_err(|unsupported| Rejection::UnsupportedHash(unsupported.to_string()))
}

/// A profile field: empty when the source has none, else checked as the API checks it.
fn optional(
    raw: Option<&str>,
    check: impl Fn(&str) -> Result<String, AuthError>,
) -> Result<String, Rejection> {
    match raw {
        Some(raw) if !raw.trim().is_empty() => {
            check(raw).map_err(|refused| Rejection::InvalidProfile(refused.to_string()))
        }
        _ => Ok(String::new()),
    }
}

fn created_at(raw: Option<&str>, now: u64) -> Result<u64, Rejection> {
    let raw = raw.map(str::trim).unwrap_or_default();
    if raw.is_empty() {
        return Ok(now);
    }
    let seconds = match raw.parse::<u64>() {
        Ok(seconds) => Some(seconds),
        Err(_) => humantime::parse_rfc3339_weak(raw)
            .ok()
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|since| since.as_secs()),
    };
    seconds.filter(|&seconds| seconds <= now).ok_or_else(|| {
        Rejection::InvalidProfile(format!(
            "Invalid field 'created_at': {raw:?} is no past time (RFC 3339 in UTC, or epoch seconds)."
        ))
    })
}

fn active(raw: Option<&str>) -> Result<bool, Rejection> {
    Ok(truth(raw, "active")?.unwrap_or(true))
}

/// A boolean as sources write it (JSON, Django's CSV `True`, `1`, `yes`); `None` when absent.
fn truth(raw: Option<&str>, field: &str) -> Result<Option<bool>, Rejection> {
    match raw.map(|raw| raw.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") => Ok(None),
        Some("true" | "t" | "1" | "yes") => Ok(Some(true)),
        Some("false" | "f" | "0" | "no") => Ok(Some(false)),
        Some(other) => Err(Rejection::InvalidProfile(format!(
            "Invalid field '{field}': {other:?} is no boolean."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonenumber::country;

    const DJANGO_PBKDF2: &str =
        "pbkdf2_sha256$870000$seasalt0123456789abc$5zF9IsNQDpP/iTgRXoPHDpEmj7hd6ORDYHrjjCbs5No=";

    fn parser() -> PhoneParser {
        PhoneParser::new(country::Id::IR, [])
    }

    fn account_of(source: &SourceRow, now: u64) -> Result<User, Rejection> {
        account(source, &phone_of(source, &parser())?, now)
    }

    fn row(phone: &str) -> SourceRow {
        SourceRow {
            phone: Some(phone.to_owned()),
            password_hash: Some(DJANGO_PBKDF2.to_owned()),
            ..SourceRow::default()
        }
    }

    #[test]
    fn a_row_becomes_an_account_as_the_api_would_store_it() {
        let source = SourceRow {
            first_name: Some(" Sara ".into()),
            email: Some("Sara@Example.COM".into()),
            created_at: Some("2024-01-02T03:04:05.678Z".into()),
            active: Some("False".into()),
            ..row("0912 123 4567")
        };
        let user = account_of(&source, 2_000_000_000).unwrap();
        assert_eq!(user.profile.phone, "+989121234567");
        assert_eq!(user.profile.first_name, "Sara");
        assert_eq!(user.profile.last_name, "");
        assert_eq!(user.profile.email, "Sara@example.com");
        assert_eq!(user.password_hash, DJANGO_PBKDF2);
        assert_eq!(user.created_at, 1_704_164_645);
        assert!(user.disabled);
        assert!(uuid::Uuid::parse_str(&user.profile.id).is_ok());
        assert_eq!(account_of(&row("+989121234567"), 7).unwrap().created_at, 7);
    }

    #[test]
    fn a_number_counts_as_verified_only_when_the_source_says_true() {
        for (flag, verified) in [
            (Some("True"), true),
            (Some("1"), true),
            (Some("false"), false),
            (Some("maybe"), false),
            (None, false),
        ] {
            let source = SourceRow {
                phone_verified: flag.map(str::to_owned),
                ..row("09121234567")
            };
            assert_eq!(phone_verified(&source).is_ok(), verified, "{flag:?}");
        }
    }

    #[test]
    fn rows_the_service_could_not_use_are_rejected_with_their_reason() {
        let reason = |source: SourceRow| account_of(&source, 2_000_000_000).unwrap_err();
        assert_eq!(reason(row("12")), Rejection::InvalidPhone);
        assert_eq!(
            reason(SourceRow {
                phone: None,
                ..row("")
            }),
            Rejection::InvalidPhone
        );
        for hash in [
            None,
            Some("!Xy1unusable"),
            Some("md5$salt$0123456789abcdef0123456789abcdef"),
            Some("pbkdf2_sha256$99999999$salt$5zF9IsNQDpP/iTgRXoPHDpEmj7hd6ORDYHrjjCbs5No="),
        ] {
            let rejection = reason(SourceRow {
                password_hash: hash.map(str::to_owned),
                ..row("09121234567")
            });
            assert_eq!(rejection.reason(), "unsupported_hash", "{hash:?}");
        }
        for bad in [
            SourceRow {
                email: Some("not an email".into()),
                ..row("09121234567")
            },
            SourceRow {
                created_at: Some("yesterday".into()),
                ..row("09121234567")
            },
            SourceRow {
                created_at: Some("4000000000".into()),
                ..row("09121234567")
            },
            SourceRow {
                active: Some("maybe".into()),
                ..row("09121234567")
            },
        ] {
            assert_eq!(reason(bad).reason(), "invalid_profile");
        }
    }
}
