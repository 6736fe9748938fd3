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

pub const OTP_DIGITS: usize = 6;

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
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignUp => "signup",
            Self::PasswordReset => "password_reset",
            Self::Login => "login",
            Self::PhoneChange => "phone_change",
        }
    }

    /// How the SMS names what the code is for.
    pub fn described(self) -> &'static str {
        match self {
            Self::SignUp => "sign-up",
            Self::PasswordReset => "password reset",
            Self::Login => "login",
            Self::PhoneChange => "phone number change",
        }
    }
}

/// A six-digit code. Deliberately not `Debug`/`Display`, so it cannot end up in a log line.
pub struct OtpCode(String);

impl OtpCode {
    /// Six uniformly random digits from the thread-local CSPRNG (ChaCha, seeded by the OS).
    pub fn generate() -> Self {
        let value: u32 = rand::rng().random_range(0..1_000_000);
        Self(format!("{value:06}"))
    }

    /// Accepts ASCII, Persian or Arabic-Indic digits, as users type them.
    pub fn parse(input: &str) -> Result<Self, AuthError> {
        let digits: Option<String> = input
            .trim()
            .chars()
            .map(|c| match c {
                '0'..='9' => Some(c),
                _ => non_ascii_digit(c).map(|d| char::from(b'0' + d)),
            })
            .collect();
        match digits {
            Some(code) if code.len() == OTP_DIGITS => Ok(Self(code)),
            _ => Err(AuthError::InvalidRequest(format!(
                "Invalid field 'code': must be {OTP_DIGITS} digits."
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
    fn generated_codes_are_six_digits() {
        for _ in 0..1000 {
            let code = OtpCode::generate();
            assert_eq!(code.expose().len(), 6);
            assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn persian_digits_are_accepted_and_other_input_is_not() {
        assert_eq!(OtpCode::parse("۱۲۳۴۵۶").unwrap().expose(), "123456");
        for bad in ["12345", "1234567", "12a456", "", "１２３４５６"] {
            assert!(OtpCode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hash_is_keyed_and_bound_to_the_phone() {
        let hasher = OtpHasher::new("k".repeat(32).into());
        let code = OtpCode::parse("123456").unwrap();
        let hash = hasher.hash(&phone(), &code);
        assert!(hasher.matches(&phone(), &code, &hash));
        assert!(!hasher.matches(&phone(), &OtpCode::parse("123457").unwrap(), &hash));
        let other_phone = PhoneNumber::parse("09121234567", country::Id::IR).unwrap();
        assert!(!hasher.matches(&other_phone, &code, &hash));
        let other_key = OtpHasher::new("x".repeat(32).into());
        assert!(!other_key.matches(&phone(), &code, &hash));
        assert!(!hash.contains("123456"));
    }
}
