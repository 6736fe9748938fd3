//! What every endpoint does with requests it cannot accept: a JSON error with the right 4xx, never
//! a 500, and nothing written.

use auth_shared::config::Config;
use auth_tests::{Endpoint, PHONE, RawRequest, TestApp, base_env};
use serde_json::json;

async fn assert_nothing_stored(t: &TestApp) {
    for table in [
        &t.tables().users,
        &t.tables().otps,
        &t.tables().registration_tokens,
        &t.tables().attempts,
        &t.tables().sessions,
    ] {
        assert!(t.scan(table).await.is_empty(), "{table} must stay empty");
    }
    assert!(t.sent_sms().is_empty());
}

#[tokio::test]
async fn malformed_requests_get_a_json_4xx_on_every_endpoint() {
    let t = TestApp::new().await;
    let big = format!("{{\"phone\":\"{}\"}}", "9".repeat(17 * 1024));
    let request = |body: &'static str| RawRequest {
        body: Some(body),
        ..Default::default()
    };
    let cases: Vec<(RawRequest<'_>, u16, &str)> = vec![
        (
            RawRequest {
                method: "GET",
                ..Default::default()
            },
            405,
            "Method not allowed.",
        ),
        (
            RawRequest {
                method: "PUT",
                ..request("{}")
            },
            405,
            "Method not allowed.",
        ),
        (
            RawRequest {
                content_type: None,
                ..request("{}")
            },
            415,
            "Content-Type must be application/json.",
        ),
        (
            RawRequest {
                content_type: Some("text/plain"),
                ..request("{}")
            },
            415,
            "Content-Type must be application/json.",
        ),
        (
            RawRequest {
                body: Some(&big),
                ..Default::default()
            },
            413,
            "Request body is too large.",
        ),
        (RawRequest::default(), 400, "Request body is empty."),
        (request("{"), 400, "Request body is not valid JSON."),
        (request("{1: 2}"), 400, "Request body is not valid JSON."),
        (request("null"), 400, "Request body must be a JSON object."),
        (
            request("[\"09101234567\"]"),
            400,
            "Request body must be a JSON object.",
        ),
        (request("42"), 400, "Request body must be a JSON object."),
    ];
    for endpoint in Endpoint::JSON_POSTS {
        for (request, status, message) in &cases {
            let response = t.send(endpoint, *request).await;
            assert_eq!(
                response.status, *status,
                "{endpoint:?} {:?}: {:?}",
                request.body, response.body
            );
            assert_eq!(
                response.error(),
                *message,
                "{endpoint:?} {:?}",
                request.body
            );
        }
        // Field-level errors name the field: one that every endpoint's body has.
        let field = match endpoint {
            Endpoint::Register => "password",
            Endpoint::Refresh => "refresh",
            Endpoint::PasswordChange => "old_password",
            Endpoint::PhoneChangeRequest | Endpoint::PhoneChangeConfirm => "new_phone",
            _ => "phone",
        };
        let field_cases = [
            (
                format!("{{\"{field}\": 9101234567}}"),
                format!(
                    "Invalid field '{field}': invalid type: integer '9101234567', expected a string."
                ),
            ),
            (
                format!("{{\"{field}\": null}}"),
                format!("Invalid field '{field}': invalid type: null, expected a string."),
            ),
            (
                format!("{{\"{field}\": \"a\", \"{field}\": \"b\"}}"),
                format!("Invalid request: duplicate field '{field}'."),
            ),
            (
                format!("{{\"{field}\": \"a\", \"admin\": true}}"),
                "Invalid field 'admin': unknown field 'admin'".to_owned(),
            ),
        ];
        for (body, message) in &field_cases {
            let response = t
                .send(
                    endpoint,
                    RawRequest {
                        body: Some(body),
                        ..Default::default()
                    },
                )
                .await;
            assert_eq!(response.status, 400, "{endpoint:?} {body}");
            assert!(
                response.error().starts_with(message.as_str()),
                "{endpoint:?} {body}: {:?}",
                response.body
            );
        }
    }
    let not_allowed = t
        .send(
            Endpoint::Login,
            RawRequest {
                method: "GET",
                ..Default::default()
            },
        )
        .await;
    assert_eq!(not_allowed.headers.get("allow").unwrap(), "POST");
    assert_nothing_stored(&t).await;
}

#[tokio::test]
async fn a_missing_field_is_named() {
    let t = TestApp::new().await;
    let cases = [
        (Endpoint::CheckPhone, json!({}), "phone"),
        (Endpoint::Verify, json!({ "phone": PHONE }), "code"),
        (Endpoint::Login, json!({ "phone": PHONE }), "password"),
        (
            Endpoint::Register,
            json!({ "password": "x" }),
            "registration_token",
        ),
        (Endpoint::Refresh, json!({}), "refresh"),
        (
            Endpoint::PasswordChange,
            json!({ "old_password": "x" }),
            "new_password",
        ),
        (Endpoint::PasswordResetRequest, json!({}), "phone"),
        (
            Endpoint::PasswordResetConfirm,
            json!({ "phone": PHONE, "code": "123456" }),
            "new_password",
        ),
    ];
    for (endpoint, body, field) in cases {
        let response = t.post(endpoint, body).await;
        assert_eq!(response.status, 400);
        assert_eq!(
            response.error(),
            format!("Invalid request: missing field '{field}'."),
            "{endpoint:?}"
        );
    }
    assert_nothing_stored(&t).await;
}

#[tokio::test]
async fn base64_bodies_from_api_gateway_and_charset_parameters_are_accepted() {
    let t = TestApp::new().await;
    let body = json!({ "phone": PHONE }).to_string();
    let response = t
        .send(
            Endpoint::CheckPhone,
            RawRequest {
                body: Some(&body),
                base64: true,
                content_type: Some("application/json; charset=utf-8"),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(t.sent_sms().len(), 1);
}

#[tokio::test]
async fn invalid_utf8_and_hostile_strings_are_4xx() {
    let t = TestApp::new().await;
    let invalid_utf8 = t
        .send(
            Endpoint::CheckPhone,
            RawRequest {
                binary: Some(b"{\"phone\":\"\xff\xfe\"}"),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(invalid_utf8.status, 400);
    for phone in [
        "' OR 1=1 --",
        "{\"$gt\": \"\"}",
        "😀😀😀",
        "0910123456７",
        &"1".repeat(40),
    ] {
        let response = t
            .post(Endpoint::CheckPhone, json!({ "phone": phone }))
            .await;
        assert_eq!(response.status, 400, "{phone}");
        assert_eq!(response.error(), "Invalid phone number.");
    }
    assert_nothing_stored(&t).await;
}

#[tokio::test]
async fn dynamodb_unreachable_is_a_503_json_error() {
    let t = TestApp::new().await;
    // Same tables, but an SDK pointed at a port where nothing listens.
    let mut env = base_env(&[], &t.outbox);
    for (variable, table) in t.tables().variables() {
        env.insert(variable.into(), table.to_owned());
    }
    let config = Config::from_lookup(|name| env.get(name).cloned()).unwrap();
    let aws = auth_shared::load_aws_config().await;
    let unreachable = aws_sdk_dynamodb::config::Builder::from(&aws)
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let broken = TestApp::from_app(
        auth_shared::App::with_dynamodb(
            config,
            &aws,
            aws_sdk_dynamodb::Client::from_conf(unreachable),
        )
        .unwrap(),
        t.dynamodb.clone(),
        t.outbox.clone(),
    );
    let cases = [
        (Endpoint::CheckPhone, json!({ "phone": PHONE })),
        (
            Endpoint::Verify,
            json!({ "phone": PHONE, "code": "123456" }),
        ),
        (
            Endpoint::Login,
            json!({ "phone": PHONE, "password": "password123" }),
        ),
        (Endpoint::Register, auth_tests::register_body("some-token")),
        (Endpoint::PasswordResetRequest, json!({ "phone": PHONE })),
    ];
    for (endpoint, body) in cases {
        let response = broken.post(endpoint, body).await;
        assert_eq!(response.status, 503, "{endpoint:?}: {:?}", response.body);
        assert_eq!(
            response.error(),
            "Service temporarily unavailable. Try again shortly."
        );
        assert_eq!(response.retry_after(), Some(1));
    }
    assert_nothing_stored(&t).await;
}
