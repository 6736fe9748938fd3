//! Audit events: what is logged for each security-relevant outcome, with the phone masked.

use auth_tests::{
    CLIENT_IP, CapturedLogs, Endpoint, PASSWORD, PHONE, PHONE_E164, TestApp, other_code,
    register_body,
};
use serde_json::json;

const MASKED: &str = "+98910***4567";

#[tokio::test]
async fn every_security_outcome_is_an_audit_event_with_the_phone_masked() {
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::INFO);

    let t = TestApp::new().await;
    t.post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    let code = t.last_code_for(PHONE_E164).unwrap();
    t.post(
        Endpoint::Verify,
        json!({ "phone": PHONE, "code": other_code(&code) }),
    )
    .await;
    let verified = t
        .post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
        .await;
    let token = verified.body["registration_token"].as_str().unwrap();
    t.post(Endpoint::Register, register_body(token)).await;
    for _ in 0..3 {
        t.post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": "wrong password" }),
        )
        .await;
    }
    let login = t
        .post_from(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": PASSWORD }),
            "198.51.100.5",
        )
        .await;
    let first = login.body["tokens"]["refresh"].clone();
    t.post(Endpoint::Refresh, json!({ "refresh": first })).await;
    // Past the grace window a spent token is a replay.
    t.app
        .clock
        .advance(t.app.config.refresh_reuse_grace_seconds + 1);
    t.post(Endpoint::Refresh, json!({ "refresh": first })).await;

    let events = logs.audit_events();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "otp_sent",
            "otp_failed",
            "otp_verified",
            "registered",
            "login_failed",
            "login_failed",
            "login_failed",
            "lockout",
            "login_succeeded",
            "token_refreshed",
            "token_reuse_detected",
        ]
    );
    let user_id = t
        .app
        .tokens
        .verify(
            login.body["tokens"]["access"].as_str().unwrap(),
            auth_shared::tokens::TokenType::Access,
        )
        .await
        .unwrap()
        .sub;
    for event in &events {
        let name = event["event"].as_str().unwrap();
        assert!(
            event["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "{event}"
        );
        let expected_ip = if name == "login_succeeded" {
            "198.51.100.5"
        } else {
            CLIENT_IP
        };
        assert_eq!(event["client_ip"], expected_ip, "{event}");
        if name.starts_with("token_") {
            assert_eq!(event["user_id"], user_id.as_str(), "{event}");
        } else {
            assert_eq!(event["phone"], MASKED, "{event}");
        }
        let fields = event.to_string();
        assert!(!fields.contains(&code) && !fields.contains(token) && !fields.contains(PASSWORD));
    }
    let text = logs.text();
    assert!(
        !text.contains(PHONE_E164),
        "the full phone number is never logged"
    );
    assert!(!text.contains(PASSWORD) && !text.contains(token));
}
