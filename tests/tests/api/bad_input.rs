//! A corpus of hostile and malformed requests against every endpoint that reads a body: each
//! must get a 4xx JSON error (never a 5xx), and none may create or change stored state.

use std::collections::BTreeMap;

use auth_shared::store::Item;
use auth_tests::{Endpoint, PHONE, PHONE_E164, RawRequest, TestApp, TestResponse, text};
use serde_json::{Value, json};

/// A whole-body case: what it is, a text body or raw bytes (sent base64, as API Gateway does for
/// binary media), and the Content-Type.
type BodyCase<'a> = (&'a str, Option<String>, Option<Vec<u8>>, Option<&'a str>);

/// An endpoint, the method that reads a body, and a well-formed body that is still refused (so
/// that varying one field at a time can only make it worse).
fn refused_templates() -> Vec<(Endpoint, &'static str, Value)> {
    vec![
        (Endpoint::CheckPhone, "POST", json!({ "phone": "0912" })),
        (
            Endpoint::Verify,
            "POST",
            json!({ "phone": PHONE, "code": "000000" }),
        ),
        (
            Endpoint::Register,
            "POST",
            json!({ "registration_token": "unknown", "password": "long enough", "first_name": "A",
                    "last_name": "B", "email": "a@example.com" }),
        ),
        (
            Endpoint::Login,
            "POST",
            json!({ "phone": PHONE, "password": "not the password" }),
        ),
        (
            Endpoint::Refresh,
            "POST",
            json!({ "refresh": "not-a-token" }),
        ),
        (
            Endpoint::Logout,
            "POST",
            json!({ "refresh": "not-a-token" }),
        ),
        (
            Endpoint::Profile,
            "PATCH",
            json!({ "email": "not-an-email" }),
        ),
        (
            Endpoint::Profile,
            "DELETE",
            json!({ "password": "not the password" }),
        ),
        (
            Endpoint::PasswordChange,
            "POST",
            json!({ "old_password": "not the password", "new_password": "x" }),
        ),
        (
            Endpoint::PasswordResetRequest,
            "POST",
            json!({ "phone": "0912" }),
        ),
        (
            Endpoint::PasswordResetConfirm,
            "POST",
            json!({ "phone": PHONE, "code": "000000", "new_password": "long enough" }),
        ),
        (
            Endpoint::LoginOtpRequest,
            "POST",
            json!({ "phone": "0912" }),
        ),
        (
            Endpoint::LoginOtp,
            "POST",
            json!({ "phone": PHONE, "code": "000000" }),
        ),
        (
            Endpoint::PhoneChangeRequest,
            "POST",
            json!({ "new_phone": "0912", "password": "x" }),
        ),
        (
            Endpoint::PhoneChangeConfirm,
            "POST",
            json!({ "new_phone": "09121234567", "code": "000000" }),
        ),
    ]
}

/// Values that go where the template has a string.
fn hostile_values() -> Vec<Value> {
    vec![
        json!(9_101_234_567u64),
        json!(-1.5),
        json!(null),
        json!(true),
        json!(["09101234567"]),
        json!({ "$gt": "" }),
        json!({ "$ne": null }),
        json!(""),
        json!("😀😀😀😀😀😀😀😀"),
        json!("0910\u{0}1234567"),
        json!("\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}"),
        json!("' OR '1'='1' --"),
        json!("\"; DROP TABLE users; --"),
        json!("09१०1234567"),
        json!("１２３４５６"),
        json!("1".repeat(40)),
        json!("a".repeat(64 * 1024)),
    ]
}

/// Everything stored, but the failure counters that wrong passwords legitimately move (of the
/// login's pairs and account, and of the session's password checks).
async fn state(t: &TestApp) -> Vec<Vec<Item>> {
    let tables = t.tables();
    let mut snapshot = Vec::new();
    for table in [
        &tables.users,
        &tables.otps,
        &tables.registration_tokens,
        &tables.sessions,
        &tables.attempts,
    ] {
        let mut items: Vec<Item> = t
            .scan(table)
            .await
            .into_iter()
            .filter(|item| {
                text(item, "pk").is_none_or(|pk| {
                    !["fail#", "acct#", "sessfail#"]
                        .iter()
                        .any(|prefix| pk.starts_with(prefix))
                })
            })
            .collect();
        items.sort_by_key(|item| format!("{:?}", item.iter().collect::<BTreeMap<_, _>>()));
        snapshot.push(items);
    }
    snapshot
}

fn assert_refused(response: &TestResponse, what: &str) {
    assert!(
        (400..500).contains(&response.status),
        "{what}: {} {:?}",
        response.status,
        response.body
    );
    assert!(
        response.body["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{what}: {:?}",
        response.body
    );
}

#[tokio::test]
async fn the_bad_input_corpus_gets_4xx_json_everywhere_and_changes_nothing() {
    // Wrong passwords are no bad input: the session's own budget for them is not under test.
    let t = TestApp::with_env(&[("SESSION_PASSWORD_MAX_FAILURES", "1000")]).await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let access = registered.body["tokens"]["access"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = state(&t).await;
    let sms_before = t.sent_sms().len();
    let megabyte = format!("{{\"phone\": \"{}\"}}", "9".repeat(1024 * 1024));

    let mut sent = 0;
    for (endpoint, method, template) in refused_templates() {
        let send = |body: Option<String>, binary: Option<Vec<u8>>, content_type: Option<&str>| {
            let t = &t;
            let access = access.clone();
            let content_type = content_type.map(str::to_owned);
            async move {
                let request = RawRequest {
                    method,
                    body: body.as_deref(),
                    binary: binary.as_deref(),
                    content_type: content_type.as_deref(),
                    bearer: Some(&access),
                    ..RawRequest::default()
                };
                t.send(endpoint, request).await
            }
        };
        let json = Some("application/json");
        let template_text = template.to_string();
        let first_field = template.as_object().unwrap().keys().next().unwrap().clone();

        // Whole-body cases.
        let mut bodies: Vec<BodyCase<'_>> = vec![
            ("null", Some("null".into()), None, json),
            ("array", Some("[]".into()), None, json),
            (
                "array of one",
                Some(format!("[{template_text}]")),
                None,
                json,
            ),
            ("number", Some("42".into()), None, json),
            ("string", Some("\"09101234567\"".into()), None, json),
            (
                "truncated",
                Some(template_text[..template_text.len() - 1].into()),
                None,
                json,
            ),
            ("1 MB", Some(megabyte.clone()), None, json),
            (
                "invalid UTF-8",
                None,
                Some(b"{\"phone\": \"\xff\xfe\xfd\"}".to_vec()),
                json,
            ),
            (
                "NUL bytes",
                None,
                Some(b"{\"phone\"\x00: 1}".to_vec()),
                json,
            ),
            (
                "base64 of the template",
                None,
                Some(template_text.clone().into_bytes()),
                json,
            ),
            (
                "text/plain",
                Some(template_text.clone()),
                None,
                Some("text/plain"),
            ),
            (
                "form",
                Some("phone=09101234567".into()),
                None,
                Some("application/x-www-form-urlencoded"),
            ),
            ("no content type", Some(template_text.clone()), None, None),
            (
                "duplicate key",
                Some(format!(
                    "{{\"{first_field}\": \"a\", {}",
                    &template_text[1..]
                )),
                None,
                json,
            ),
            (
                "unknown field",
                Some(format!("{{\"is_admin\": true, {}", &template_text[1..])),
                None,
                json,
            ),
        ];
        if endpoint != Endpoint::Logout {
            // An empty body is a valid logout.
            bodies.push(("empty", None, None, json));
        }
        for (what, body, binary, content_type) in bodies {
            let response = send(body, binary, content_type).await;
            assert_refused(&response, &format!("{endpoint:?} {method} {what}"));
            sent += 1;
        }

        // One field at a time.
        for field in template.as_object().unwrap().keys() {
            for value in hostile_values() {
                let optional_fields = endpoint == Endpoint::Logout || method == "PATCH";
                if optional_fields && value.is_null() {
                    continue; // null is an absent optional field: a valid request.
                }
                let mut body = template.clone();
                body[field] = value.clone();
                let response = send(Some(body.to_string()), None, json).await;
                let label = format!(
                    "{endpoint:?} {method} {field}={}",
                    &value.to_string().chars().take(40).collect::<String>()
                );
                assert_refused(&response, &label);
                sent += 1;
            }
        }
    }

    assert!(sent > 400, "{sent} requests");
    assert_eq!(
        state(&t).await,
        before,
        "no request of the corpus changed stored state"
    );
    assert_eq!(t.sent_sms().len(), sms_before, "and none sent an SMS");
    let profile = t.authed(Endpoint::Profile, "GET", &access, None).await;
    assert_eq!(profile.status, 200, "the session survived the corpus");
}
