//! Phone numbers, normalised to E.164 at the edge.

use std::collections::HashSet;

use phonenumber::{Mode, Type, country};

use crate::error::AuthError;

/// Longest input worth handing to the parser; E.164 has at most 15 digits plus formatting.
const MAX_INPUT_CHARS: usize = 32;

/// A valid phone number in E.164 form (`+989101234567`). Only constructible through `parse`,
/// so every value of this type is normalised and valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses user input in national or international form. Persian and Arabic-Indic digits are
    /// read as their ASCII equivalents; anything but digits and the usual separators is refused.
    pub fn parse(input: &str, default_region: country::Id) -> Result<Self, AuthError> {
        Self::parse_allowing(input, default_region, |_| false)
    }

    /// As `parse`, but also accepts a well-formed number that libphonenumber deems invalid when
    /// `allowed` says so for its E.164 form (the fictional +1 555 01xx test numbers, say).
    pub fn parse_allowing(
        input: &str,
        default_region: country::Id,
        allowed: impl Fn(&str) -> bool,
    ) -> Result<Self, AuthError> {
        let ascii = to_ascii_number(input).ok_or(AuthError::InvalidPhone)?;
        let parsed = phonenumber::parse(Some(default_region), &ascii)
            .map_err(|_| AuthError::InvalidPhone)?;
        if parsed.extension().is_some() {
            return Err(AuthError::InvalidPhone);
        }
        let e164 = parsed.format().mode(Mode::E164).to_string();
        if !phonenumber::is_valid(&parsed) && !allowed(&e164) {
            return Err(AuthError::InvalidPhone);
        }
        Ok(Self(e164))
    }

    /// Wraps a number read back from storage, where only normalised numbers are written.
    pub(crate) fn from_stored(e164: String) -> Self {
        Self(e164)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The country calling code and whether libphonenumber counts the number as one that can
    /// receive SMS (mobile, or a range where fixed and mobile numbers cannot be told apart).
    pub fn sms_profile(&self) -> (u16, bool) {
        match phonenumber::parse(None, &self.0) {
            Ok(parsed) => {
                let kind = parsed.number_type(&phonenumber::metadata::DATABASE);
                let mobile = matches!(kind, Type::Mobile | Type::FixedLineOrMobile);
                (parsed.code().value(), mobile)
            }
            Err(_) => (0, false),
        }
    }

    /// For logs: the country code and first digits, and the last four (`+98912***4567`).
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        let shown_head = chars.len().saturating_sub(7).clamp(1, 6);
        let head: String = chars[..shown_head].iter().collect();
        let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
        format!("{head}***{tail}")
    }
}

/// Normalises the phone numbers of requests: national numbers in `default_region`, and the
/// configured test numbers accepted even where libphonenumber calls them invalid.
#[derive(Debug, Clone)]
pub struct PhoneParser {
    default_region: country::Id,
    accepted_anyway: HashSet<String>,
}

impl PhoneParser {
    pub fn new(
        default_region: country::Id,
        accepted_anyway: impl IntoIterator<Item = String>,
    ) -> Self {
        Self {
            default_region,
            accepted_anyway: accepted_anyway.into_iter().collect(),
        }
    }

    pub fn parse(&self, input: &str) -> Result<PhoneNumber, AuthError> {
        PhoneNumber::parse_allowing(input, self.default_region, |e164| {
            self.accepted_anyway.contains(e164)
        })
    }
}

impl std::fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Maps Persian/Arabic-Indic digits to ASCII and keeps `+`, spaces, dashes, dots and brackets.
/// Returns `None` for anything else (letters, control characters, other scripts) or overlong input.
fn to_ascii_number(input: &str) -> Option<String> {
    // The limit counts what was sent, surrounding white space included (as the OpenAPI spec's
    // maxLength does).
    if input.chars().count() > MAX_INPUT_CHARS {
        return None;
    }
    let input = input.trim();
    if input.is_empty() {
        return None;
    }
    input
        .chars()
        .map(|c| match c {
            '0'..='9' | '+' | ' ' | '-' | '.' | '(' | ')' => Some(c),
            _ => non_ascii_digit(c).map(|d| char::from(b'0' + d)),
        })
        .collect()
}

pub(crate) fn non_ascii_digit(c: char) -> Option<u8> {
    let base = match c {
        '\u{0660}'..='\u{0669}' => 0x0660, // Arabic-Indic
        '\u{06F0}'..='\u{06F9}' => 0x06F0, // Extended Arabic-Indic (Persian)
        _ => return None,
    };
    u8::try_from(u32::from(c) - base).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> Result<String, AuthError> {
        PhoneNumber::parse(input, country::Id::IR).map(|p| p.0)
    }

    #[test]
    fn national_international_and_persian_forms_normalise_to_one_number() {
        for input in [
            "09101234567",
            "+98 910 123 4567",
            "00989101234567",
            "۰۹۱۰۱۲۳۴۵۶۷",
            "٠٩١٠١٢٣٤٥٦٧",
            "09۱۰123۴۵۶۷",
            " 0910-123-4567 ",
        ] {
            assert_eq!(parse(input).unwrap(), "+989101234567", "input {input:?}");
        }
    }

    #[test]
    fn invalid_numbers_are_refused() {
        for input in [
            "",
            "0912",
            "hello",
            "0910123456a",
            "+98 910 123 4567 ext. 12",
            "0910\u{0}1234567",
            "1234567890123456789012345678901234567890",
            // The limit counts what was sent, as the OpenAPI spec's maxLength does.
            "09101234567                       ",
        ] {
            assert!(parse(input).is_err(), "input {input:?}");
        }
    }

    #[test]
    fn masking_keeps_the_prefix_and_the_last_four_digits() {
        let phone = PhoneNumber::parse("09121234567", country::Id::IR).unwrap();
        assert_eq!(phone.masked(), "+98912***4567");
        let us = PhoneNumber::parse("+1 650 253 0000", country::Id::IR).unwrap();
        assert_eq!(us.masked(), "+1650***0000");
    }

    #[test]
    fn sms_profile_tells_mobile_numbers_from_premium_and_fixed_lines() {
        let profile = |n: &str| {
            PhoneNumber::parse(n, country::Id::IR)
                .unwrap()
                .sms_profile()
        };
        assert_eq!(profile("09121234567"), (98, true));
        assert_eq!(profile("+19005550100"), (1, false), "premium rate");
        assert_eq!(profile("02188776655"), (98, false), "Tehran fixed line");
        assert_eq!(profile("+16502530000"), (1, true), "US: fixed or mobile");
        assert_eq!(
            profile("+989640"),
            (98, false),
            "Iranian short service number"
        );
    }

    #[test]
    fn numbers_of_other_regions_keep_their_country_code() {
        assert_eq!(parse("+1 650 253 0000").unwrap(), "+16502530000");
    }
}
