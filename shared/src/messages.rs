//! The text of a code SMS: one template per language (English and Persian built in, the
//! operator's JSON on top), the language a request asks for, and the autofill lines (WebOTP,
//! Android's SMS Retriever). Composing a message is a pure function of the settings and the code.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::config::ConfigError;
use crate::error::AuthError;
use crate::otp::OtpPurpose;
use crate::settings::Env;

/// The language of every request that asks for none the service has.
pub const FALLBACK_LANGUAGE: &str = "en";

/// BCP 47 asks implementations to accept tags of at least 35 characters; longer is no locale.
const MAX_LOCALE_CHARS: usize = 35;
/// Ten concatenated SMS segments of GSM text; a longer template is a mistake.
const MAX_TEMPLATE_CHARS: usize = 1530;
const MAX_PURPOSE_CHARS: usize = 64;

/// The digits `{minutes}` is written in. The code itself is always ASCII digits, which is what
/// the autofill of phones and browsers reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digits {
    Latin,
    /// Extended Arabic-Indic digits (۰۱۲۳۴۵۶۷۸۹), as Persian text writes numbers.
    Persian,
    /// Arabic-Indic digits (٠١٢٣٤٥٦٧٨٩).
    Arabic,
}

impl Digits {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "latin" => Some(Self::Latin),
            "persian" => Some(Self::Persian),
            "arabic" => Some(Self::Arabic),
            _ => None,
        }
    }

    fn write(self, number: u64) -> String {
        let zero = match self {
            Self::Latin => return number.to_string(),
            Self::Persian => 0x06F0,
            Self::Arabic => 0x0660,
        };
        number
            .to_string()
            .bytes()
            .filter_map(|digit| char::from_u32(zero + u32::from(digit - b'0')))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    Code,
    Minutes,
    Service,
    Purpose,
}

impl Placeholder {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "code" => Some(Self::Code),
            "minutes" => Some(Self::Minutes),
            "service" => Some(Self::Service),
            "purpose" => Some(Self::Purpose),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Slot(Placeholder),
}

/// A message template, parsed once at start: text and placeholders (`{code}`, `{minutes}`,
/// `{service}`, `{purpose}`; `{{` and `}}` for literal braces).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template(Vec<Piece>);

impl Template {
    fn parse(text: &str) -> Result<Self, String> {
        if text.chars().count() > MAX_TEMPLATE_CHARS {
            return Err(format!("is longer than {MAX_TEMPLATE_CHARS} characters"));
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err("has an unclosed '{' (write {{ for a brace)".to_owned());
                    }
                    let placeholder = Placeholder::parse(&name).ok_or_else(|| {
                        format!(
                            "has an unknown placeholder '{{{name}}}' (known: {{code}}, \
                             {{minutes}}, {{service}}, {{purpose}}; write {{{{ for a brace)"
                        )
                    })?;
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Slot(placeholder));
                }
                '}' => return Err("has a lone '}' (write }} for a brace)".to_owned()),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        if !pieces.contains(&Piece::Slot(Placeholder::Code)) {
            return Err("must contain {code}".to_owned());
        }
        Ok(Self(pieces))
    }

    fn uses(&self, placeholder: Placeholder) -> bool {
        self.0.contains(&Piece::Slot(placeholder))
    }
}

/// The messages of one language: the template, what each purpose is called, and the digits of
/// numbers.
const PURPOSES: usize = OtpPurpose::ALL.len();

#[derive(Debug, Clone)]
struct Language {
    template: Template,
    /// By `OtpPurpose::index`.
    purposes: [String; PURPOSES],
    digits: Digits,
}

impl Language {
    fn purpose(&self, purpose: OtpPurpose) -> &str {
        self.purposes
            .get(purpose.index())
            .map_or(purpose.as_str(), String::as_str)
    }
}

/// The built-in languages: English, and Persian with Persian digits for the minutes.
fn built_in(language: &str) -> Option<Language> {
    let (template, purposes, digits) = match language {
        "en" => (
            "{service}: your {purpose} code is {code}. It expires in {minutes} minutes. \
             Do not share it.",
            ["sign-up", "password reset", "login", "phone number change"],
            Digits::Latin,
        ),
        "fa" => (
            "{service}: کد {purpose} شما {code} است. این کد تا {minutes} دقیقه معتبر است؛ \
             آن را به کسی ندهید.",
            ["ثبت‌نام", "بازیابی رمز عبور", "ورود", "تغییر شماره تلفن"],
            Digits::Persian,
        ),
        _ => return None,
    };
    Some(Language {
        template: Template::parse(template).ok()?,
        purposes: purposes.map(str::to_owned),
        digits,
    })
}

const BUILT_IN: [&str; 2] = ["en", "fa"];

/// The notice to the old number after the account moved to `new_masked`, in `language` if it
/// is a built-in one (else English): no code, so no template of the operator's applies.
pub fn phone_changed_notice(language: &str, service: &str, new_masked: &str) -> String {
    match language {
        "fa" => format!(
            "{service}: شماره تلفن حساب شما به {new_masked} تغییر کرد. اگر این کار شما نبوده است، \
             فوراً با پشتیبانی تماس بگیرید."
        ),
        _ => format!(
            "{service}: the phone number of your account was changed to {new_masked}. If this \
             was not you, contact support at once."
        ),
    }
}

/// Lines that let phones and browsers fill the code in by themselves.
#[derive(Debug, Clone, Default)]
pub struct Autofill {
    /// WebOTP / origin-bound one-time codes: the last line is `@<domain> #<code>`.
    pub webotp_domain: Option<String>,
    /// Android SMS Retriever: the app's 11-character hash, on a line of its own.
    pub android_app_hash: Option<String>,
}

impl Autofill {
    /// `WEBOTP_DOMAIN`: a bare host name (`example.com`), lowercased; no scheme, port or path.
    pub fn parse_domain(raw: &str) -> Result<String, String> {
        let domain = raw.trim().to_ascii_lowercase();
        let label_ok = |label: &str| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if domain.len() > 253 || !domain.split('.').all(label_ok) {
            return Err(format!(
                "'{raw}' is not a host name such as example.com (no scheme, port or path)"
            ));
        }
        Ok(domain)
    }

    /// `ANDROID_APP_HASH`: exactly 11 characters of the base64 alphabet, as Play services
    /// computes it.
    pub fn parse_app_hash(raw: &str) -> Result<String, String> {
        let hash = raw.trim();
        let base64 = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
        if hash.len() != 11 || !hash.bytes().all(base64) {
            return Err("must be the app's 11-character hash ([A-Za-z0-9+/])".to_owned());
        }
        Ok(hash.to_owned())
    }
}

/// What one code SMS says, before it is put into words.
pub struct CodeMessage<'a> {
    pub service: &'a str,
    pub purpose: OtpPurpose,
    /// The code's ASCII digits.
    pub code: &'a str,
    pub minutes: u64,
}

/// Every language the service writes in, and the autofill lines.
#[derive(Debug, Clone)]
pub struct Messages {
    languages: BTreeMap<String, Language>,
    pub autofill: Autofill,
}

impl Default for Messages {
    fn default() -> Self {
        Self {
            languages: BUILT_IN
                .iter()
                .filter_map(|code| Some(((*code).to_owned(), built_in(code)?)))
                .collect(),
            autofill: Autofill::default(),
        }
    }
}

impl Messages {
    /// The built-in languages with the operator's templates on top. `json` is an object keyed by
    /// primary language subtag; each value is a template string, or an object with `message`,
    /// `purposes` (`signup`, `password_reset`, `login`, `phone_change`) and `digits` (`latin`, `persian`,
    /// `arabic`). A built-in language keeps what an override leaves out.
    pub fn with_overrides(json: &str) -> Result<Self, String> {
        let entries: BTreeMap<String, Entry> = serde_json::from_str(json).map_err(|error| {
            if error.is_data() {
                // Every entry parses (as `Entry::Other` at worst), so only the whole can mismatch.
                "must be a JSON object keyed by language, such as {\"en\": \"...\"}".to_owned()
            } else {
                format!("is not valid JSON: {error}")
            }
        })?;
        let mut messages = Self::default();
        for (key, entry) in entries {
            let language = key.to_ascii_lowercase();
            if !is_primary_subtag(&language) {
                return Err(format!(
                    "'{key}' is not a primary language subtag such as \"en\" or \"fa\""
                ));
            }
            let parsed = parse_language(&language, entry, built_in(&language))
                .map_err(|reason| format!("'{language}': {reason}"))?;
            messages.languages.insert(language, parsed);
        }
        Ok(messages)
    }

    /// The languages there are templates for.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.languages.keys().map(String::as_str)
    }

    /// The language of a request's SMS: the body's `locale` if it names a language there is a
    /// template for (any other well-formed tag: the fallback), else the best language of its
    /// `Accept-Language` there is a template for, else the fallback. Tags match by their primary
    /// subtag (`fa-IR` is `fa`).
    pub fn language_for(&self, locale: Option<&Locale>, accept_language: Option<&str>) -> &str {
        let known = |language: &str| self.languages.get_key_value(language).map(|(k, _)| k);
        let chosen = match locale {
            Some(locale) => known(&locale.0),
            None => accept_language
                .map(preferred_languages)
                .unwrap_or_default()
                .iter()
                .find_map(|language| known(language)),
        };
        chosen.map_or(FALLBACK_LANGUAGE, String::as_str)
    }

    /// The SMS body in `language`, with the autofill lines: the Android app hash on a line of
    /// its own, then the WebOTP line, which that format wants last.
    pub fn compose(&self, language: &str, message: &CodeMessage<'_>) -> String {
        let Some(words) = self
            .languages
            .get(language)
            .or_else(|| self.languages.get(FALLBACK_LANGUAGE))
        else {
            return message.code.to_owned();
        };
        let mut body = String::new();
        for piece in &words.template.0 {
            match piece {
                Piece::Text(text) => body.push_str(text),
                Piece::Slot(Placeholder::Code) => body.push_str(message.code),
                Piece::Slot(Placeholder::Minutes) => {
                    body.push_str(&words.digits.write(message.minutes));
                }
                Piece::Slot(Placeholder::Service) => body.push_str(message.service),
                Piece::Slot(Placeholder::Purpose) => body.push_str(words.purpose(message.purpose)),
            }
        }
        let mut body = body.trim_end().to_owned();
        if let Some(hash) = &self.autofill.android_app_hash {
            body.push('\n');
            body.push_str(hash);
        }
        if let Some(domain) = &self.autofill.webotp_domain {
            body.push_str(&format!("\n@{domain} #{}", message.code));
        }
        body
    }
}

/// One language of the operator's JSON, as given: a template string, or an object of fields.
#[derive(Deserialize)]
#[serde(untagged)]
enum Entry {
    Template(String),
    Fields(Fields),
    Other(IgnoredAny),
}

/// The fields of a language object; checked after parsing, so that each mistake is named.
#[derive(Deserialize)]
struct Fields {
    #[serde(default)]
    message: Field<String>,
    #[serde(default)]
    purposes: Field<BTreeMap<String, Field<String>>>,
    #[serde(default)]
    digits: Field<String>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

/// A field as given: absent, of the expected type, or of another one.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Field<T> {
    #[serde(skip)]
    #[default]
    Absent,
    Given(T),
    WrongType(IgnoredAny),
}

impl<T> Field<T> {
    /// The value, if given; `Err(())` if it had another type.
    fn given(self) -> Result<Option<T>, ()> {
        match self {
            Self::Absent => Ok(None),
            Self::Given(value) => Ok(Some(value)),
            Self::WrongType(_) => Err(()),
        }
    }
}

fn parse_language(
    language: &str,
    entry: Entry,
    base: Option<Language>,
) -> Result<Language, String> {
    let GivenLanguage {
        message,
        purposes,
        digits,
    } = GivenLanguage::from_entry(entry)?;
    let template = match (message, &base) {
        (Some(text), _) => {
            Template::parse(&text).map_err(|reason| format!("the message {reason}"))?
        }
        (None, Some(base)) => base.template.clone(),
        (None, None) => return Err("'message' is required for a new language".to_owned()),
    };
    let names = purpose_names(purposes.unwrap_or_default(), base.as_ref())?;
    // Unused words need not be given.
    if template.uses(Placeholder::Purpose) && names.iter().any(Option::is_none) {
        let [rest @ .., last] =
            OtpPurpose::ALL.map(|purpose| format!("purposes.{}", purpose.as_str()));
        return Err(format!(
            "the message uses {{purpose}}: give {} and {last} for '{language}'",
            rest.join(", ")
        ));
    }
    Ok(Language {
        template,
        purposes: names.map(Option::unwrap_or_default),
        digits: digits
            .or(base.map(|base| base.digits))
            .unwrap_or(Digits::Latin),
    })
}

/// What one language's entry gives, each part checked for its type.
struct GivenLanguage {
    message: Option<String>,
    purposes: Option<BTreeMap<String, Field<String>>>,
    digits: Option<Digits>,
}

impl GivenLanguage {
    fn from_entry(entry: Entry) -> Result<Self, String> {
        let fields = match entry {
            Entry::Template(message) => {
                return Ok(Self {
                    message: Some(message),
                    purposes: None,
                    digits: None,
                });
            }
            Entry::Fields(fields) => fields,
            Entry::Other(_) => return Err("must be a template string or an object".to_owned()),
        };
        let message = fields
            .message
            .given()
            .map_err(|()| "'message' must be a string".to_owned())?;
        let purposes = fields
            .purposes
            .given()
            .map_err(|()| "'purposes' must be an object".to_owned())?;
        let digits = match fields.digits.given() {
            Ok(None) => None,
            Ok(Some(name)) => Some(Digits::parse(&name).ok_or_else(|| {
                format!("'digits' is '{name}', not one of: latin, persian, arabic")
            })?),
            Err(()) => return Err("'digits' must be a string".to_owned()),
        };
        if let Some(unknown) = fields.unknown.keys().next() {
            return Err(format!(
                "unknown field '{unknown}' (known: message, purposes, digits)"
            ));
        }
        Ok(Self {
            message,
            purposes,
            digits,
        })
    }
}

/// The word for each purpose: the one given, else the base language's, else none.
fn purpose_names(
    mut given: BTreeMap<String, Field<String>>,
    base: Option<&Language>,
) -> Result<[Option<String>; PURPOSES], String> {
    let mut names: [Option<String>; PURPOSES] = Default::default();
    for (slot, purpose) in names.iter_mut().zip(OtpPurpose::ALL) {
        *slot = match given.remove(purpose.as_str()).map(Field::given) {
            Some(Ok(Some(name))) if !name.trim().is_empty() => {
                if name.chars().count() > MAX_PURPOSE_CHARS {
                    return Err(format!(
                        "purposes.{} is longer than {MAX_PURPOSE_CHARS} characters",
                        purpose.as_str()
                    ));
                }
                Some(name)
            }
            Some(_) => {
                return Err(format!(
                    "purposes.{} must be a non-empty string",
                    purpose.as_str()
                ));
            }
            None => base.map(|base| base.purpose(purpose).to_owned()),
        };
    }
    if let Some(unknown) = given.keys().next() {
        let known: Vec<&str> = OtpPurpose::ALL
            .iter()
            .map(|purpose| purpose.as_str())
            .collect();
        return Err(format!(
            "unknown purpose '{unknown}' (known: {})",
            known.join(", ")
        ));
    }
    Ok(names)
}

/// A language tag as a request gives it (`fa`, `fa-IR`, `en_US`): its primary subtag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locale(String);

impl Locale {
    /// The request body's `locale`: a well-formed language tag of at most 35 characters.
    pub fn parse(input: &str) -> Result<Self, AuthError> {
        // The limit counts what was sent, surrounding white space included (as the OpenAPI
        // spec's maxLength does).
        let within_limit = input.chars().count() <= MAX_LOCALE_CHARS;
        let language = language_of(input.trim()).filter(|_| within_limit);
        language.map(Self).ok_or_else(|| {
            AuthError::InvalidRequest(format!(
                "Invalid field 'locale': must be a language tag such as \"fa\" or \"fa-IR\" \
                 (at most {MAX_LOCALE_CHARS} characters)."
            ))
        })
    }
}

fn is_primary_subtag(tag: &str) -> bool {
    (2..=3).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_alphabetic())
}

/// The primary subtag of a well-formed tag (`ll[-subtag]*`, `-` or `_` between subtags),
/// lowercased; none for anything else.
fn language_of(tag: &str) -> Option<String> {
    if tag.is_empty() || tag.len() > MAX_LOCALE_CHARS {
        return None;
    }
    let mut subtags = tag.split(['-', '_']);
    let primary = subtags.next()?;
    let well_formed = is_primary_subtag(primary)
        && subtags.all(|subtag| {
            (1..=8).contains(&subtag.len()) && subtag.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    well_formed.then(|| primary.to_ascii_lowercase())
}

/// The languages of an `Accept-Language` header, most preferred first (RFC 9110 12.5.4):
/// ranges ordered by q-value, ties in the header's order; `q=0`, `*` and malformed entries are
/// left out, since a header is sent by browsers and never refused.
fn preferred_languages(header: &str) -> Vec<String> {
    let mut ranked: Vec<(u16, String)> = header
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let range = parts.next()?.trim();
            let mut weight = 1000;
            for parameter in parts {
                let (name, value) = parameter.split_once('=')?;
                if name.trim().eq_ignore_ascii_case("q") {
                    weight = q_value(value.trim())?;
                }
            }
            (weight > 0).then_some((weight, language_of(range)?))
        })
        .collect();
    // A stable sort keeps the header's order among equal weights.
    ranked.sort_by_key(|(weight, _)| std::cmp::Reverse(*weight));
    ranked.into_iter().map(|(_, language)| language).collect()
}

/// A q-value (`0`, `0.5`, `1.000`) in thousandths.
fn q_value(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{fraction:0<3}").parse().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

impl Messages {
    /// The SMS text: the built-in templates, with the operator's from `SMS_TEMPLATES` (JSON) or
    /// `SMS_TEMPLATES_FILE` (a JSON file; for templates beyond Lambda's 4 KB of environment), and
    /// the autofill settings.
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let inline = env.get("SMS_TEMPLATES")?;
        let file = env.get("SMS_TEMPLATES_FILE")?;
        let (name, json) = match (inline, file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    name: "SMS_TEMPLATES_FILE",
                    reason: "set SMS_TEMPLATES or SMS_TEMPLATES_FILE, not both".to_owned(),
                });
            }
            (Some(json), None) => ("SMS_TEMPLATES", Some(json)),
            (None, Some(path)) => (
                "SMS_TEMPLATES_FILE",
                Some(std::fs::read_to_string(path.trim()).map_err(|error| {
                    ConfigError::Invalid {
                        name: "SMS_TEMPLATES_FILE",
                        reason: format!("cannot read '{}': {error}", path.trim()),
                    }
                })?),
            ),
            (None, None) => ("SMS_TEMPLATES", None),
        };
        let mut messages = match json {
            Some(json) => Self::with_overrides(&json)
                .map_err(|reason| ConfigError::Invalid { name, reason })?,
            None => Self::default(),
        };
        messages.autofill = Autofill {
            webotp_domain: env.parsed_with("WEBOTP_DOMAIN", Autofill::parse_domain)?,
            android_app_hash: env.parsed_with("ANDROID_APP_HASH", Autofill::parse_app_hash)?,
        };
        Ok(messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(purpose: OtpPurpose) -> CodeMessage<'static> {
        CodeMessage {
            service: "Phone Auth",
            purpose,
            code: "012345",
            minutes: 15,
        }
    }

    fn locale(tag: &str) -> Locale {
        Locale::parse(tag).unwrap()
    }

    #[test]
    fn english_is_the_message_clients_have_always_had() {
        let messages = Messages::default();
        assert_eq!(
            messages.compose("en", &message(OtpPurpose::SignUp)),
            "Phone Auth: your sign-up code is 012345. It expires in 15 minutes. Do not share it."
        );
        assert!(
            messages
                .compose("en", &message(OtpPurpose::PasswordReset))
                .contains("your password reset code is 012345")
        );
    }

    #[test]
    fn persian_writes_minutes_in_persian_digits_and_the_code_in_ascii() {
        let body = Messages::default().compose("fa", &message(OtpPurpose::Login));
        assert_eq!(
            body,
            "Phone Auth: کد ورود شما 012345 است. این کد تا ۱۵ دقیقه معتبر است؛ آن را به کسی ندهید."
        );
        assert!(!body.contains("15"));
    }

    #[test]
    fn the_body_locale_wins_and_unknown_languages_fall_back_to_english() {
        let messages = Messages::default();
        assert_eq!(
            messages.language_for(Some(&locale("fa-IR")), Some("en")),
            "fa"
        );
        assert_eq!(messages.language_for(Some(&locale("FA_ir")), None), "fa");
        assert_eq!(messages.language_for(Some(&locale("de")), Some("fa")), "en");
        assert_eq!(messages.language_for(None, None), "en");
    }

    #[test]
    fn accept_language_is_read_by_q_value_and_primary_subtag() {
        let messages = Messages::default();
        let pick = |header| messages.language_for(None, Some(header));
        assert_eq!(pick("fa-IR,fa;q=0.9,en-US;q=0.8,en;q=0.7"), "fa");
        assert_eq!(pick("de-DE, en;q=0.5, fa;q=0.8"), "fa");
        assert_eq!(pick("en;q=0.2, fa;q=0.1"), "en");
        assert_eq!(pick("fa;q=0, en;q=0.1"), "en");
        assert_eq!(pick("fa;Q=1.000"), "fa");
        assert_eq!(pick("de, *;q=0.5"), "en");
        assert_eq!(pick("fa;q=2, fa;q=abc, 12, ,;"), "en");
        assert_eq!(pick("en, fa"), "en", "ties keep the header's order");
    }

    #[test]
    fn a_locale_must_be_a_language_tag() {
        for bad in [
            "",
            "f",
            "farsi-",
            "fa--IR",
            "12",
            "fa IR",
            "fa-IR-toolongsubtag",
            "😀",
        ] {
            assert!(Locale::parse(bad).is_err(), "{bad:?}");
        }
        assert!(
            Locale::parse(&format!("fa{}", "-abc".repeat(9))).is_err(),
            "too long"
        );
        // The limit counts what was sent, as the OpenAPI spec's maxLength does.
        assert!(Locale::parse(&format!(" fa{}", " ".repeat(33))).is_err());
        assert_eq!(locale(" fa "), Locale("fa".into()));
        assert_eq!(locale("zh-Hant-TW"), Locale("zh".into()));
    }

    #[test]
    fn autofill_puts_the_app_hash_before_the_webotp_line_which_comes_last() {
        let messages = Messages {
            autofill: Autofill {
                webotp_domain: Some(Autofill::parse_domain("Auth.Example.com").unwrap()),
                android_app_hash: Some(Autofill::parse_app_hash("FA+9qCX9VSu").unwrap()),
            },
            ..Messages::default()
        };
        let body = messages.compose("fa", &message(OtpPurpose::SignUp));
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1], "FA+9qCX9VSu");
        assert_eq!(lines[2], "@auth.example.com #012345");
    }

    #[test]
    fn autofill_settings_are_validated() {
        for bad in [
            "https://example.com",
            "example.com:443",
            "example.com/x",
            "",
            "-a.com",
            "a..b",
        ] {
            assert!(Autofill::parse_domain(bad).is_err(), "{bad:?}");
        }
        for bad in ["FA+9qCX9VS", "FA+9qCX9VSuu", "FA+9qCX9VS=", "FA-9qCX9VSu"] {
            assert!(Autofill::parse_app_hash(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn operators_override_and_add_languages() {
        let messages = Messages::with_overrides(
            r#"{
                "en": "{service} code: {code}",
                "fa": {"purposes": {"login": "ورود به حساب"}},
                "ar": {"message": "رمز {purpose}: {code} ({minutes} دقائق)", "digits": "arabic",
                       "purposes": {"signup": "التسجيل", "password_reset": "الاستعادة",
                                    "login": "الدخول", "phone_change": "تغيير الرقم"}},
                "DE": "Dein Code: {code}. {{gültig}}"
            }"#,
        )
        .unwrap();
        assert_eq!(
            messages.compose("en", &message(OtpPurpose::Login)),
            "Phone Auth code: 012345"
        );
        assert!(
            messages
                .compose("fa", &message(OtpPurpose::Login))
                .contains("کد ورود به حساب شما 012345 است")
        );
        assert_eq!(
            messages.compose("ar", &message(OtpPurpose::SignUp)),
            "رمز التسجيل: 012345 (١٥ دقائق)"
        );
        assert_eq!(
            messages.compose("de", &message(OtpPurpose::SignUp)),
            "Dein Code: 012345. {gültig}"
        );
        assert_eq!(messages.language_for(Some(&locale("de-AT")), None), "de");
        assert_eq!(
            messages.languages().collect::<Vec<_>>(),
            ["ar", "de", "en", "fa"]
        );
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        for (json, reason) in [
            (r#"{"en": "no code here"}"#, "must contain {code}"),
            (r#"{"en": "{code} {name}"}"#, "unknown placeholder '{name}'"),
            (r#"{"en": "{code} }"}"#, "lone '}'"),
            (r#"{"en": "{code} {minutes"}"#, "unclosed '{'"),
            (r#"{"de": "{purpose}: {code}"}"#, "give purposes.signup"),
            (r#"{"de": {"purposes": {}}}"#, "'message' is required"),
            (
                r#"{"en": {"message": "{code}", "color": "red"}}"#,
                "unknown field 'color'",
            ),
            (
                r#"{"en": {"purposes": {"signin": "x"}}}"#,
                "unknown purpose 'signin'",
            ),
            (
                r#"{"en": {"digits": "roman"}}"#,
                "not one of: latin, persian, arabic",
            ),
            (r#"{"en-US": "{code}"}"#, "not a primary language subtag"),
            (r#"["en"]"#, "must be a JSON object"),
            ("{", "not valid JSON"),
        ] {
            let error = Messages::with_overrides(json).unwrap_err();
            assert!(error.contains(reason), "{json}: {error}");
        }
        assert!(
            Messages::with_overrides(r#"{"de": "Code {code}"}"#).is_ok(),
            "no {{purpose}}"
        );
    }

    #[test]
    fn q_values_follow_the_grammar() {
        assert_eq!(q_value("0"), Some(0));
        assert_eq!(q_value("0.5"), Some(500));
        assert_eq!(q_value("0.123"), Some(123));
        assert_eq!(q_value("1"), Some(1000));
        assert_eq!(q_value("1.000"), Some(1000));
        for bad in ["1.5", "0.1234", "2", "", ".5", "0.x"] {
            assert_eq!(q_value(bad), None, "{bad:?}");
        }
    }
}
