// The properties the fuzz targets check, shared word for word with the regression test that
// replays `fuzz/regressions/` (`shared/tests/fuzz_regressions.rs` includes this file).

use auth_shared::AuthError;
use auth_shared::http::parse_json_object;
use auth_shared::phone::PhoneNumber;
use phonenumber::country::Id;
use serde::Deserialize;

/// Phone normalisation never panics; whatever it accepts is E.164 and normalises to itself.
pub fn check_phone(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for region in [Id::IR, Id::US, Id::DE] {
        if let Ok(phone) = PhoneNumber::parse(text, region) {
            let again = PhoneNumber::parse(phone.as_str(), region).expect("E.164 is accepted");
            assert_eq!(again, phone);
            assert!(phone.as_str().starts_with('+'));
            let _ = (phone.sms_profile(), phone.masked());
        }
    }
}

/// The shapes the handlers use: strings, optional fields, a flag, an alias, no unknown fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Request {
    #[serde(alias = "reg_token")]
    registration_token: String,
    phone: Option<String>,
    all: Option<bool>,
    #[serde(default)]
    flag: bool,
}

/// Any bytes are either a request or a 400, never a panic or another error.
pub fn check_body(data: &[u8]) {
    match parse_json_object::<Request>(data) {
        Ok(_) | Err(AuthError::InvalidRequest(_)) => {}
        Err(other) => panic!("unexpected error: {other:?}"),
    }
}
