//! One-time codes: generation, parsing and keyed hashing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use rand::RngExt;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::error::AuthError;
use crate::phone::{PhoneNumber, non_ascii_digit};

type HmacSha256 = hmac::Hmac<Sha256>;

/// The range `OTP_LENGTH` may take: fewer than 4 digits is guessable within the attempt
/// limits, more than 10 is a chore to type.
pub const OTP_LENGTHS: std::ops::RangeInclusive<usize> = 4..=10;

/// Why a code was sent. Codes are stored per phone and purpose, so that a code for one purpose
/// can never be spent on another, nor be replaced by a code for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpPurpose {
    SignUp,
    PasswordReset,
    /// The second factor of a login after too many failed passwords (step-up).
    Login,
    /// Proves a new number before the account moves to it (sent to the new number).
    PhoneChange,
}

impl OtpPurpose {
    /// Every purpose, in `index` order, for the checks that each language names them all.
    pub const ALL: [Self; 4] = [
        Self::SignUp,
        Self::PasswordReset,
        Self::Login,
        Self::PhoneChange,
    ];

    /// The purpose's place in `ALL` (a new purpose must be added to both, and named in every
    /// built-in SMS language).
    pub fn index(self) -> usize {
        match self {
            Self::SignUp => 0,
            Self::PasswordReset => 1,
            Self::Login => 2,
            Self::PhoneChange => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignUp => "signup",
            Self::PasswordReset => "password_reset",
            Self::Login => "login",
            Self::PhoneChange => "phone_change",
        }
    }
}

/// A code of `OTP_LENGTH` digits. Deliberately not `Debug`/`Display`, so it cannot end up in a
/// log line.
pub struct OtpCode(String);

impl OtpCode {
    /// `length` uniformly random digits from the thread-local CSPRNG (ChaCha, seeded by the OS).
    pub fn generate(length: usize) -> Self {
        // 10^10 fits a u64; `random_range` draws without modulo bias.
        let bound = 10u64.pow(u32::try_from(length).unwrap_or(u32::MAX).min(19));
        let value: u64 = rand::rng().random_range(0..bound);
        Self(format!("{value:0length$}"))
    }

    /// Accepts exactly `length` ASCII, Persian or Arabic-Indic digits, as users type them.
    pub fn parse(input: &str, length: usize) -> Result<Self, AuthError> {
        let digits: Option<String> = input
            .trim()
            .chars()
            .map(|c| match c {
                '0'..='9' => Some(c),
                _ => non_ascii_digit(c).map(|d| char::from(b'0' + d)),
            })
            .collect();
        match digits {
            Some(code) if code.len() == length => Ok(Self(code)),
            _ => Err(AuthError::InvalidRequest(format!(
                "Invalid field 'code': must be {length} digits."
            ))),
        }
    }

    pub(crate) fn from_configured(code: &str) -> Self {
        Self(code.to_owned())
    }

    /// The only way to read the digits: when composing the SMS.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// HMAC-SHA256 of (phone, code) under a server secret: a leaked table does not reveal codes,
/// and the million possible codes cannot be brute-forced offline without the key.
pub struct OtpHasher {
    key: SecretString,
}

impl OtpHasher {
    pub fn new(key: SecretString) -> Self {
        Self { key }
    }

    fn mac(&self, phone: &PhoneNumber, code: &OtpCode) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(self.key.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(phone.as_str().as_bytes());
        mac.update(b":");
        mac.update(code.0.as_bytes());
        mac
    }

    pub fn hash(&self, phone: &PhoneNumber, code: &OtpCode) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(phone, code).finalize().into_bytes())
    }

    /// Constant-time comparison against a stored hash.
    pub fn matches(&self, phone: &PhoneNumber, code: &OtpCode, stored_hash: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(stored_hash) {
            Ok(expected) => self.mac(phone, code).verify_slice(&expected).is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonenumber::country;

    fn phone() -> PhoneNumber {
        PhoneNumber::parse("09101234567", country::Id::IR).unwrap()
    }

    #[test]
    fn generated_codes_have_the_configured_length() {
        for length in OTP_LENGTHS {
            for _ in 0..500 {
                let code = OtpCode::generate(length);
                assert_eq!(code.expose().len(), length);
                assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }

    #[test]
    fn every_digit_appears_in_every_position() {
        // A loose uniformity check: 2,000 four-digit codes leave no digit out of any position
        // (each is missing with probability 0.9^2000).
        let mut seen = [[false; 10]; 4];
        for _ in 0..2000 {
            for (position, digit) in OtpCode::generate(4).expose().bytes().enumerate() {
                seen[position][usize::from(digit - b'0')] = true;
            }
        }
        assert!(seen.iter().flatten().all(|&seen| seen));
    }

    #[test]
    fn every_purpose_is_listed_at_its_index() {
        for (index, purpose) in OtpPurpose::ALL.into_iter().enumerate() {
            assert_eq!(purpose.index(), index, "{}", purpose.as_str());
        }
    }

    #[test]
    fn persian_digits_are_accepted_and_other_input_is_not() {
        assert_eq!(OtpCode::parse("۱۲۳۴۵۶", 6).unwrap().expose(), "123456");
        for bad in ["12345", "1234567", "12a456", "", "１２３４５６"] {
            assert!(OtpCode::parse(bad, 6).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn codes_are_exactly_the_configured_length() {
        assert_eq!(OtpCode::parse("0123", 4).unwrap().expose(), "0123");
        assert_eq!(
            OtpCode::parse("0123456789", 10).unwrap().expose(),
            "0123456789"
        );
        let Err(error) = OtpCode::parse("123456", 4) else {
            panic!("six digits are not a four-digit code");
        };
        assert_eq!(error.to_string(), "Invalid field 'code': must be 4 digits.");
        assert!(OtpCode::parse("012345678", 10).is_err());
    }

    #[test]
    fn hash_is_keyed_and_bound_to_the_phone() {
        let hasher = OtpHasher::new("k".repeat(32).into());
        let code = OtpCode::parse("123456", 6).unwrap();
        let hash = hasher.hash(&phone(), &code);
        assert!(hasher.matches(&phone(), &code, &hash));
        assert!(!hasher.matches(&phone(), &OtpCode::parse("123457", 6).unwrap(), &hash));
        let other_phone = PhoneNumber::parse("09121234567", country::Id::IR).unwrap();
        assert!(!hasher.matches(&other_phone, &code, &hash));
        let other_key = OtpHasher::new("x".repeat(32).into());
        assert!(!other_key.matches(&phone(), &code, &hash));
        assert!(!hash.contains("123456"));
    }
}
