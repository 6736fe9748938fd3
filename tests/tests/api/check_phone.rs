//! `POST /auth/check-phone/`

use auth_tests::{
    CLIENT_IP, CapturedLogs, DynamoDbGate, Endpoint, PHONE, PHONE_E164, TestApp, code_in, now, num,
    text,
};
use serde_json::json;

#[tokio::test]
async fn a_new_phone_gets_a_code_by_sms_and_only_its_hash_is_stored() {
    let t = TestApp::new().await;
    let response = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;

    assert_eq!(response.status, 200);
    let verification_id = response.body["verification_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        response.body,
        json!({ "exists": false, "message": "OTP sent successfully.", "expires_in": 300,
                "resend_after": 60, "verification_id": verification_id })
    );
    let sms = t.sent_sms();
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0]["to"], PHONE_E164);
    let code = code_in(sms[0]["body"].as_str().unwrap()).unwrap();

    let otp = t.otp(PHONE_E164).await.unwrap();
    let stored_hash = text(&otp, "code_hash").unwrap();
    assert!(
        !stored_hash.contains(&code),
        "the code is stored only as a keyed hash"
    );
    assert!(
        otp.values()
            .all(|v| v.as_s().map_or(true, |s| !s.contains(&code)))
    );
    assert_eq!(text(&otp, "purpose"), Some("signup"));
    assert_eq!(num(&otp, "failed_attempts"), Some(0));
    assert_ne!(
        text(&otp, "verification"),
        Some(verification_id.as_str()),
        "the verification id is stored hashed"
    );
    let expires_at = num(&otp, "expires_at").unwrap();
    assert!((now() + 298..=now() + 300).contains(&expires_at));

    let counters = t.scan(&t.tables().attempts).await;
    let mut scopes: Vec<&str> = counters
        .iter()
        .map(|c| text(c, "pk").unwrap().split('#').nth(1).unwrap())
        // The SMS breaker's conversion counters (tests/tests/api/sms_breaker.rs).
        .filter(|scope| !scope.contains(':'))
        .collect();
    scopes.sort();
    assert_eq!(
        scopes,
        [
            "country",
            "global",
            "ip",
            "lookup",
            "phone",
            "phone-day",
            "phone-net",
            "range"
        ]
    );
    assert!(
        counters
            .iter()
            .all(|c| num(c, "hits").or(num(c, "sent")) == Some(1))
    );
    assert!(
        counters
            .iter()
            .all(|c| num(c, "expires_at").unwrap() <= now() + 86_400)
    );
}

#[tokio::test]
async fn persian_and_international_forms_reach_the_same_number() {
    let t = TestApp::with_env(&[("OTP_RESEND_SECONDS", "0")]).await;
    for phone in ["۰۹۱۰۱۲۳۴۵۶۷", "+98 910 123 4567", "٠٩١٠١٢٣٤٥٦٧"] {
        let response = t
            .post(Endpoint::CheckPhone, json!({ "phone": phone }))
            .await;
        assert_eq!(response.status, 200, "{phone}: {:?}", response.body);
    }
    assert!(t.sent_sms().iter().all(|sms| sms["to"] == PHONE_E164));
    assert_eq!(t.codes_for(PHONE_E164, "signup").await.len(), 3);
}

#[tokio::test]
async fn a_registered_phone_is_reported_and_gets_no_sms() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    let sms_before = t.sent_sms().len();

    let response = t
        .post(Endpoint::CheckPhone, json!({ "phone": "+989101234567" }))
        .await;

    assert_eq!(response.status, 200);
    assert_eq!(response.body, json!({ "exists": true }));
    assert_eq!(t.sent_sms().len(), sms_before);
    assert!(t.otp(PHONE_E164).await.is_none(), "no code stored");
}

#[tokio::test]
async fn an_invalid_number_is_refused_without_any_write() {
    let t = TestApp::new().await;
    for phone in [
        "0912",
        "not a phone",
        "+98 910 123 4567 8901",
        "0910\u{0}1234567",
    ] {
        let response = t
            .post(Endpoint::CheckPhone, json!({ "phone": phone }))
            .await;
        assert_eq!(response.status, 400, "{phone:?}");
        assert_eq!(response.body, json!({ "error": "Invalid phone number." }));
    }
    assert!(t.sent_sms().is_empty());
    assert!(t.scan(&t.tables().otps).await.is_empty());
    assert!(t.scan(&t.tables().attempts).await.is_empty());
}

#[tokio::test]
async fn a_resend_inside_the_cooldown_is_429_and_keeps_the_code() {
    let t = TestApp::new().await;
    t.post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    let before = t.otp(PHONE_E164).await.unwrap();

    let response = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;

    assert_eq!(response.status, 429);
    assert_eq!(
        response.error(),
        "Please wait before requesting a new code."
    );
    let wait = response.retry_after().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(response.body["retry_after"], wait);
    assert_eq!(t.sent_sms().len(), 1);
    let after = t.otp(PHONE_E164).await.unwrap();
    assert_eq!(before, after);
    let counters = t.scan(&t.tables().attempts).await;
    assert!(
        counters
            .iter()
            .filter(|c| !text(c, "pk").unwrap().starts_with("send#lookup#"))
            .all(|c| num(c, "hits").or(num(c, "sent")) == Some(1)),
        "a refused send is not counted"
    );
}

#[tokio::test]
async fn a_resend_after_the_cooldown_leaves_the_earlier_code_live() {
    let t = TestApp::new().await;
    t.post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    let old_code = t.last_code_for(PHONE_E164).unwrap();
    t.end_resend_cooldown();

    let response = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    assert_eq!(response.status, 200);
    let new_code = t.last_code_for(PHONE_E164).unwrap();
    assert_eq!(t.sent_sms().len(), 2);

    assert_eq!(t.codes_for(PHONE_E164, "signup").await.len(), 2);
    // A later request, whoever makes it, does not void a code already sent.
    let old = t
        .post(
            Endpoint::Verify,
            json!({ "phone": PHONE, "code": old_code }),
        )
        .await;
    assert_eq!(old.status, 200, "{:?}", old.body);
    assert_eq!(t.codes_for(PHONE_E164, "signup").await.len(), 1);
    if old_code != new_code {
        let new = t
            .post(
                Endpoint::Verify,
                json!({ "phone": PHONE, "code": new_code }),
            )
            .await;
        assert_eq!(new.status, 200, "{:?}", new.body);
    }
}

#[tokio::test]
async fn sends_per_phone_are_capped_per_window() {
    // The hourly cap of the phone, not the daily one of the (phone, network) pair.
    let t = TestApp::with_env(&[
        ("OTP_RESEND_SECONDS", "0"),
        ("OTP_SENDS_PER_PHONE_NETWORK_PER_DAY", "50"),
    ])
    .await;
    for _ in 0..5 {
        let response = t
            .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
            .await;
        assert_eq!(response.status, 200, "{:?}", response.body);
    }
    let otp_before = t.otp(PHONE_E164).await;

    let response = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;

    assert_eq!(response.status, 429);
    assert_eq!(response.error(), "Too many requests. Try again later.");
    assert!((1..=3600).contains(&response.retry_after().unwrap()));
    assert_eq!(t.sent_sms().len(), 5);
    assert_eq!(t.otp(PHONE_E164).await, otp_before);
}

#[tokio::test]
async fn sends_per_client_ip_are_capped_per_window() {
    let t = TestApp::new().await;
    for i in 0..10 {
        let phone = format!("0912000000{i}");
        let response = t
            .post(Endpoint::CheckPhone, json!({ "phone": phone }))
            .await;
        assert_eq!(response.status, 200, "{phone}: {:?}", response.body);
    }
    let refused = t
        .post(Endpoint::CheckPhone, json!({ "phone": "09121111111" }))
        .await;
    assert_eq!(refused.status, 429);
    assert!(refused.retry_after().is_some());
    assert!(t.otp("+989121111111").await.is_none());

    let other_ip = t
        .post_from(
            Endpoint::CheckPhone,
            json!({ "phone": "09121111111" }),
            "198.51.100.20",
        )
        .await;
    assert_eq!(other_ip.status, 200, "the cap is per client IP");
    assert_ne!(CLIENT_IP, "198.51.100.20");
}

#[tokio::test]
async fn a_configured_test_number_gets_its_fixed_code_and_no_sms() {
    // +1 555 555 0100 is fictional (libphonenumber calls it invalid): accepted only when listed.
    let t = TestApp::with_env(&[(
        "TEST_OTP_NUMBERS",
        "+15555550100=246810, 09121112233=135790",
    )])
    .await;
    for (phone, code) in [("+1 555-555-0100", "246810"), ("09121112233", "135790")] {
        let response = t
            .post(Endpoint::CheckPhone, json!({ "phone": phone }))
            .await;
        assert_eq!(response.status, 200, "{phone}: {:?}", response.body);
        let verified = t
            .post(Endpoint::Verify, json!({ "phone": phone, "code": code }))
            .await;
        assert_eq!(verified.status, 200, "{phone}: {:?}", verified.body);
    }
    assert!(t.sent_sms().is_empty());

    let unlisted = TestApp::new().await;
    let response = unlisted
        .post(Endpoint::CheckPhone, json!({ "phone": "+15555550100" }))
        .await;
    assert_eq!(
        response.status, 400,
        "fictional numbers are refused unless configured"
    );
}

#[tokio::test]
async fn an_sms_failure_is_503_and_leaves_no_code_behind() {
    let t = TestApp::with_env(&[("SMS_OUTBOX_PATH", "/proc/no-such-dir/outbox.jsonl")]).await;
    let response = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;

    assert_eq!(response.status, 503);
    assert_eq!(
        response.error(),
        "Service temporarily unavailable. Try again shortly."
    );
    assert!(response.retry_after().is_some());
    assert!(
        t.scan(&t.tables().otps).await.is_empty(),
        "the unsent code was taken back"
    );
}

#[tokio::test]
async fn a_code_to_a_new_number_takes_three_dynamodb_requests_and_a_registered_number_two() {
    const OTHER: &str = "09127654321";
    const OTHER_E164: &str = "+989127654321";
    let t = TestApp::new().await;
    t.registered_user(OTHER, OTHER_E164).await;
    let gate = DynamoDbGate::counting();
    let counted = t.through(&gate).await;

    let response = counted
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(response.body["exists"], false);
    assert!(t.last_sms_to(PHONE_E164).is_some());
    assert_eq!(
        gate.seen(),
        3,
        "the lookup count beside one batch read (the user and the budgets the send draws on), \
         then the send transaction; the pressure report needs no read of its own"
    );

    let response = counted
        .post(Endpoint::CheckPhone, json!({ "phone": OTHER }))
        .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(response.body["exists"], true);
    assert_eq!(gate.seen(), 3 + 2, "the lookup count beside the batch read");
}

#[tokio::test]
async fn a_corrupt_send_counter_is_an_error_never_zero() {
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::ERROR);
    let t = TestApp::new().await;
    let first = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    assert_eq!(first.status, 200);
    t.overwrite_attempts_item("send#range#", "hits", "many")
        .await;

    // Another number of the range: its lookup reads the range's counter.
    let response = t
        .post(Endpoint::CheckPhone, json!({ "phone": "09101234568" }))
        .await;
    assert_eq!(response.status, 500, "{:?}", response.body);
    assert_eq!(response.error(), "Internal server error.");
    assert_eq!(t.sent_sms().len(), 1, "nothing sent on a corrupt counter");
    assert!(
        logs.text()
            .contains("a corrupt counter in the attempts table"),
        "{}",
        logs.text()
    );
}
