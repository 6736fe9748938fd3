//! Secrets (codes, registration tokens, passwords, signing keys) never reach a log line, a
//! response other than the one that hands them out, or DynamoDB in plain text.

use auth_tests::{
    CapturedLogs, Endpoint, PASSWORD, PHONE, PHONE_E164, TestApp, other_code, register_body,
};
use serde_json::json;

/// True when `digits` stands in `text` as a whole run of digits (not inside a longer number such
/// as a timestamp, which would match by chance).
fn has_digit_run(text: &str, digits: &str) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .any(|run| run == digits)
}

#[tokio::test]
async fn secrets_appear_only_in_the_response_that_hands_them_out() {
    let (logs, _guard) = CapturedLogs::capture_text(tracing::Level::TRACE);

    let t = TestApp::new().await;
    let sent = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    let code = t.last_code_for(PHONE_E164).unwrap();
    let wrong = t
        .post(
            Endpoint::Verify,
            json!({ "phone": PHONE, "code": other_code(&code) }),
        )
        .await;
    let verified = t
        .post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
        .await;
    let token = verified.body["registration_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let registered = t.post(Endpoint::Register, register_body(&token)).await;
    let refused = t.post(Endpoint::Register, register_body(&token)).await;
    let failed_login = t
        .post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": "wrong password 123" }),
        )
        .await;
    let login = t
        .post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": PASSWORD }),
        )
        .await;
    assert_eq!(registered.status, 201);
    assert_eq!(login.status, 200);

    let jwt_secret = "test-jwt-secret-0123456789abcdef0123456789";
    let otp_secret = "test-otp-secret-0123456789abcdef0123456789";
    let log_text = logs.text();
    assert!(
        log_text.contains("otp_verified"),
        "the capture works: {log_text}"
    );
    for secret in [
        code.as_str(),
        token.as_str(),
        PASSWORD,
        "wrong password 123",
        jwt_secret,
        otp_secret,
    ] {
        assert!(
            !contains_standalone(&log_text, secret),
            "a secret reached the logs: {secret}"
        );
    }
    for access in [
        &registered.body["tokens"]["access"],
        &login.body["tokens"]["access"],
    ] {
        assert!(
            !log_text.contains(access.as_str().unwrap()),
            "a JWT reached the logs"
        );
    }
    // The secret of each opaque refresh token (after its user and session ids).
    let refresh_secrets: Vec<&str> = [
        &registered.body["tokens"]["refresh"],
        &login.body["tokens"]["refresh"],
    ]
    .into_iter()
    .map(|refresh| refresh.as_str().unwrap().splitn(4, '_').nth(3).unwrap())
    .collect();
    for secret in &refresh_secrets {
        assert!(
            !log_text.contains(secret),
            "a refresh token reached the logs"
        );
    }

    let responses = [
        &sent,
        &wrong,
        &verified,
        &registered,
        &refused,
        &failed_login,
        &login,
    ];
    for response in responses {
        let body = response.body.to_string();
        assert!(
            !has_digit_run(&body, &code),
            "the code is only ever sent by SMS"
        );
        assert!(!body.contains(PASSWORD));
        assert!(!body.contains("argon2"), "no password hash in a response");
        assert!(!body.contains(jwt_secret) && !body.contains(otp_secret));
    }
    let token_holders = responses
        .iter()
        .filter(|r| r.body.to_string().contains(&token))
        .count();
    assert_eq!(
        token_holders, 1,
        "the registration token is only in the verify response"
    );

    for table in [
        &t.tables().users,
        &t.tables().otps,
        &t.tables().registration_tokens,
        &t.tables().attempts,
    ] {
        for item in t.scan(table).await {
            let stored = format!("{item:?}");
            assert!(!has_digit_run(&stored, &code), "{table} holds the code");
            for secret in [token.as_str(), PASSWORD] {
                assert!(!stored.contains(secret), "{table} holds a plaintext secret");
            }
        }
    }
    let sessions = t.scan(&t.tables().sessions).await;
    assert!(!sessions.is_empty());
    for item in sessions {
        let stored = format!("{item:?}");
        for secret in &refresh_secrets {
            assert!(
                !stored.contains(secret),
                "a refresh token's secret is stored"
            );
        }
    }
}

/// Whether `secret` appears in `text` other than inside a longer run of letters and digits: a
/// six-digit code also turns up by chance inside a request id or a timestamp, which leaks
/// nothing.
fn contains_standalone(text: &str, secret: &str) -> bool {
    text.match_indices(secret).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + secret.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}
