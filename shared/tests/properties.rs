//! Property tests: phone normalisation and request-body parsing never panic, normalisation is
//! idempotent, and every accepted number round-trips through libphonenumber as E.164.

use auth_shared::AuthError;
use auth_shared::http::parse_json_object;
use auth_shared::phone::PhoneNumber;
use phonenumber::country::Id;
use proptest::prelude::*;
use serde::Deserialize;

fn persian(ascii: &str) -> String {
    ascii
        .chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_u32(0x06F0 + d).unwrap_or(c),
            None => c,
        })
        .collect()
}

/// Iranian mobile numbers in the forms people type them.
fn iranian_mobile() -> impl Strategy<Value = String> {
    ("9[0-9]{2}", "[0-9]{3}", "[0-9]{4}", 0..4usize).prop_map(|(a, b, c, form)| match form {
        0 => format!("0{a}{b}{c}"),
        1 => format!("+98 {a} {b} {c}"),
        2 => format!("0098{a}{b}{c}"),
        _ => format!("0{a}-{b}-{c}"),
    })
}

fn assert_e164(phone: &PhoneNumber) {
    let text = phone.as_str();
    assert!(text.starts_with('+'), "{text}");
    assert!(text[1..].bytes().all(|b| b.is_ascii_digit()), "{text}");
    // E.164 allows at most 15 digits; libphonenumber accepts some short national numbers
    // (Iran's 4-digit service numbers: +989640), which SMS then refuses as not mobile.
    assert!((4..=16).contains(&text.len()), "{text}");
    let reparsed = phonenumber::parse(None, text).expect("E.164 parses");
    assert_eq!(
        reparsed.format().mode(phonenumber::Mode::E164).to_string(),
        text
    );
}

proptest! {
    #[test]
    fn any_input_is_accepted_as_e164_or_refused_without_panic(input in "\\PC{0,40}") {
        if let Ok(phone) = PhoneNumber::parse(&input, Id::IR) {
            assert_e164(&phone);
        }
    }

    #[test]
    fn digit_and_separator_soup_never_panics(input in "[0-9+() .\\-۰-۹٠-٩]{0,40}") {
        if let Ok(phone) = PhoneNumber::parse(&input, Id::IR) {
            assert_e164(&phone);
        }
    }

    #[test]
    fn normalisation_is_idempotent(input in "[0-9+ ]{0,20}", region in prop::sample::select(vec![Id::IR, Id::US, Id::GB, Id::DE])) {
        if let Ok(phone) = PhoneNumber::parse(&input, region) {
            let again = PhoneNumber::parse(phone.as_str(), region).expect("E.164 is accepted");
            prop_assert_eq!(again, phone);
        }
    }

    #[test]
    fn iranian_mobiles_are_accepted_in_any_form_and_digit_script(number in iranian_mobile()) {
        let ascii = PhoneNumber::parse(&number, Id::IR);
        let in_persian = PhoneNumber::parse(&persian(&number), Id::IR);
        prop_assert_eq!(&ascii.as_ref().ok(), &in_persian.as_ref().ok());
        if let Ok(phone) = ascii {
            assert_e164(&phone);
            prop_assert!(phone.as_str().starts_with("+989"));
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Body {
    phone: String,
    code: Option<String>,
    all: Option<bool>,
}

fn assert_parsed_or_refused(bytes: &[u8]) {
    match parse_json_object::<Body>(bytes) {
        Ok(_) | Err(AuthError::InvalidRequest(_)) => {}
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

/// Arbitrary JSON documents, nested a few levels.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("phone".to_owned()),
                    Just("code".to_owned()),
                    Just("all".to_owned()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..4
            )
            .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_are_parsed_or_refused_as_400(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        assert_parsed_or_refused(&bytes);
    }

    #[test]
    fn arbitrary_json_is_parsed_or_refused_as_400(value in json_value()) {
        assert_parsed_or_refused(value.to_string().as_bytes());
    }

    #[test]
    fn a_body_with_a_phone_string_parses(phone in "\\PC{0,30}", code in proptest::option::of("[0-9]{6}")) {
        let body = serde_json::json!({ "phone": phone, "code": code });
        let parsed = parse_json_object::<Body>(body.to_string().as_bytes());
        prop_assert!(parsed.is_ok(), "{:?}", parsed.err());
    }
}
