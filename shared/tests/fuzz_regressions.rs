//! Replays every input saved under `fuzz/regressions/` (crashes that `scripts/fuzz` found, and
//! hand-picked tricky inputs) through the checks of the matching fuzz target.

use std::path::Path;

use auth_shared::AuthError;
use auth_shared::http::parse_json_object;
use auth_shared::phone::PhoneNumber;
use phonenumber::country::Id;
use serde::Deserialize;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("regression input"))
        })
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn phone_regressions_normalise_or_are_refused() {
    let inputs = inputs("phone");
    assert!(!inputs.is_empty());
    for (name, data) in inputs {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        for region in [Id::IR, Id::US, Id::DE] {
            if let Ok(phone) = PhoneNumber::parse(text, region) {
                let again = PhoneNumber::parse(phone.as_str(), region);
                assert_eq!(again.ok().as_ref(), Some(&phone), "{name}");
            }
        }
    }
}

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

#[test]
fn body_regressions_are_parsed_or_refused_as_400() {
    let inputs = inputs("body");
    assert!(!inputs.is_empty());
    for (name, data) in inputs {
        match parse_json_object::<Request>(&data) {
            Ok(_) | Err(AuthError::InvalidRequest(_)) => {}
            Err(other) => panic!("{name}: unexpected error {other:?}"),
        }
    }
}
