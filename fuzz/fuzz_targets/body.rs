//! Request-body parsing: any bytes are either a request or a 400, never a panic or another error.
#![no_main]

use auth_shared::AuthError;
use auth_shared::http::parse_json_object;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

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

fuzz_target!(|data: &[u8]| {
    match parse_json_object::<Request>(data) {
        Ok(_) | Err(AuthError::InvalidRequest(_)) => {}
        Err(other) => panic!("unexpected error: {other:?}"),
    }
});
