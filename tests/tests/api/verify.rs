//! `POST /auth/verify/`

use auth_shared::tokens::hash_opaque_token;
use auth_tests::{Endpoint, PHONE, PHONE_E164, TestApp, now, num, other_code, text};
use serde_json::json;

async fn sent_code(t: &TestApp) -> String {
    let sent = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    assert_eq!(sent.status, 200);
    t.last_code_for(PHONE_E164).unwrap()
}

#[tokio::test]
async fn the_right_code_gives_a_registration_token_stored_only_hashed() {
    let t = TestApp::new().await;
    let code = sent_code(&t).await;

    let response = t
        .post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
        .await;

    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(response.body["message"], "Phone verified.");
    assert_eq!(response.body["expires_in"], 600);
    let token = response.body["registration_token"].as_str().unwrap();
    assert!(token.len() >= 22, "at least 128 bits, base64url");

    assert!(t.otp(PHONE_E164).await.is_none(), "code spent");
    let stored = t.scan(&t.tables().registration_tokens).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        text(&stored[0], "token_hash"),
        Some(hash_opaque_token(token).as_str())
    );
    assert_eq!(text(&stored[0], "phone"), Some(PHONE_E164));
    assert!(
        stored[0]
            .values()
            .all(|v| v.as_s().map_or(true, |s| s != token))
    );
    let expires_at = num(&stored[0], "expires_at").unwrap();
    assert!((now() + 598..=now() + 600).contains(&expires_at));
}

#[tokio::test]
async fn a_used_code_cannot_be_verified_twice() {
    let t = TestApp::new().await;
    let code = sent_code(&t).await;
    let first = t
        .post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
        .await;
    assert_eq!(first.status, 200);

    let replay = t
        .post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
        .await;

    assert_eq!(replay.status, 400);
    assert_eq!(
        replay.body,
        json!({ "error": "No active OTP for this phone number. Request a new code." })
    );
    assert_eq!(t.scan(&t.tables().registration_tokens).await.len(), 1);
}

#[tokio::test]
async fn a_wrong_code_is_400_with_the_attempts_left() {
    let t = TestApp::with_env(&[("LOCKOUT_MAX_FAILURES", "10")]).await;
    let sent = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    let id = sent.body["verification_id"].as_str().unwrap().to_owned();
    let code = t.last_code_for(PHONE_E164).unwrap();

    for expected_left in [4, 3, 2, 1, 0] {
        let response = t
            .post(
                Endpoint::Verify,
                json!({ "phone": PHONE, "code": other_code(&code), "verification_id": id }),
            )
            .await;
        assert_eq!(response.status, 400);
        assert_eq!(
            response.body,
            json!({ "error": "Incorrect OTP.", "attempts_left": expected_left })
        );
    }
    let otp = t.otp(PHONE_E164).await.unwrap();
    assert_eq!(num(&otp, "failed_attempts"), Some(5));

    // Five wrong tries kill the code: even the right one is refused now.
    let dead = t
        .post(
            Endpoint::Verify,
            json!({ "phone": PHONE, "code": code, "verification_id": id }),
        )
        .await;
    assert_eq!(dead.status, 400);
    assert_eq!(
        dead.error(),
        "Too many incorrect attempts for this code. Request a new code."
    );
    assert!(t.scan(&t.tables().registration_tokens).await.is_empty());
}

#[tokio::test]
async fn without_the_verification_id_a_code_takes_three_wrong_tries() {
    let t = TestApp::with_env(&[("LOCKOUT_MAX_FAILURES", "10")]).await;
    let code = sent_code(&t).await;

    for expected_left in [2, 1, 0] {
        let response = t
            .post(
                Endpoint::Verify,
                json!({ "phone": PHONE, "code": other_code(&code) }),
            )
            .await;
        assert_eq!(
            response.body,
            json!({ "error": "Incorrect OTP.", "attempts_left": expected_left })
        );
    }
    let shared = t.anonymous_guesses(PHONE_E164, "signup").await.unwrap();
    assert_eq!(num(&shared, "failed_attempts"), Some(3));
    let otp = t.otp(PHONE_E164).await.unwrap();
    assert_eq!(
        num(&otp, "failed_attempts"),
        Some(0),
        "the shared budget counts them, not the code's own"
    );
    let spent = t
        .post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
        .await;
    assert_eq!(
        spent.error(),
        "Too many incorrect attempts for this code. Request a new code."
    );
}

#[tokio::test]
async fn attempts_left_also_reflects_the_lockout_of_the_phone_and_ip_pair() {
    let t = TestApp::new().await;
    let code = sent_code(&t).await;
    let mut left = Vec::new();
    for _ in 0..3 {
        let response = t
            .post(
                Endpoint::Verify,
                json!({ "phone": PHONE, "code": other_code(&code) }),
            )
            .await;
        assert_eq!(response.status, 400);
        left.push(response.body["attempts_left"].as_u64().unwrap());
    }
    assert_eq!(left, [2, 1, 0]);
}

#[tokio::test]
async fn three_failures_block_the_phone_and_ip_pair_for_an_hour() {
    let t = TestApp::new().await;
    let sent = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    let id = sent.body["verification_id"].clone();
    let code = t.last_code_for(PHONE_E164).unwrap();
    for _ in 0..3 {
        t.post(
            Endpoint::Verify,
            json!({ "phone": PHONE, "code": other_code(&code) }),
        )
        .await;
    }

    let blocked = t
        .post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
        .await;

    blocked.assert_blocked_for_an_hour();
    let shared = t.anonymous_guesses(PHONE_E164, "signup").await.unwrap();
    assert_eq!(
        num(&shared, "failed_attempts"),
        Some(3),
        "a blocked try is not evaluated"
    );

    // The block is per (phone, IP): the owner on another network can still verify, with the
    // tries of the verification id that strangers' guesses do not spend.
    let elsewhere = t
        .post_from(
            Endpoint::Verify,
            json!({ "phone": PHONE, "code": code, "verification_id": id }),
            "198.51.100.9",
        )
        .await;
    assert_eq!(elsewhere.status, 200, "{:?}", elsewhere.body);
}

#[tokio::test]
async fn a_phone_that_was_never_sent_a_code_has_no_active_otp() {
    let t = TestApp::new().await;
    let response = t
        .post(
            Endpoint::Verify,
            json!({ "phone": PHONE, "code": "123456" }),
        )
        .await;
    assert_eq!(response.status, 400);
    assert_eq!(
        response.error(),
        "No active OTP for this phone number. Request a new code."
    );
    assert!(
        t.scan(&t.tables().attempts).await.is_empty(),
        "nothing to guess, nothing counted"
    );
}

#[tokio::test]
async fn an_expired_code_is_refused_even_before_dynamodb_deletes_it() {
    let t = TestApp::new().await;
    let code = sent_code(&t).await;
    // Expired but not yet deleted by DynamoDB.
    t.app.clock.advance(t.app.config.otp_ttl_seconds + 1);

    let response = t
        .post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
        .await;

    assert_eq!(response.status, 400);
    assert_eq!(
        response.error(),
        "No active OTP for this phone number. Request a new code."
    );
    assert!(t.scan(&t.tables().registration_tokens).await.is_empty());
}

#[tokio::test]
async fn a_malformed_code_is_400_and_not_counted_as_a_guess() {
    let t = TestApp::new().await;
    sent_code(&t).await;
    for code in ["12ab56", "12345", "1234567", ""] {
        let response = t
            .post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
            .await;
        assert_eq!(response.status, 400);
        assert_eq!(response.error(), "Invalid field 'code': must be 6 digits.");
    }
    assert!(t.anonymous_guesses(PHONE_E164, "signup").await.is_none());
}

#[tokio::test]
async fn a_code_typed_in_persian_digits_verifies() {
    let t = TestApp::new().await;
    let code = sent_code(&t).await;
    let persian: String = code
        .chars()
        .map(|c| char::from_u32(0x06F0 + c.to_digit(10).unwrap()).unwrap())
        .collect();
    let response = t
        .post(
            Endpoint::Verify,
            json!({ "phone": "۰۹۱۰۱۲۳۴۵۶۷", "code": persian }),
        )
        .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
}

#[tokio::test]
async fn a_success_clears_earlier_failures_of_the_pair() {
    let t = TestApp::new().await;
    let code = sent_code(&t).await;
    t.post(
        Endpoint::Verify,
        json!({ "phone": PHONE, "code": other_code(&code) }),
    )
    .await;
    let failures = |items: Vec<auth_shared::store::Item>| {
        items
            .iter()
            .filter(|item| text(item, "pk").unwrap().starts_with("fail#"))
            .count()
    };
    assert_eq!(failures(t.scan(&t.tables().attempts).await), 1);

    let response = t
        .post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
        .await;

    assert_eq!(response.status, 200);
    assert_eq!(failures(t.scan(&t.tables().attempts).await), 0);
}

#[tokio::test]
async fn strangers_without_the_verification_id_cannot_use_up_the_owners_code() {
    let t = TestApp::new().await;
    let sent = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    let verification_id = sent.body["verification_id"].as_str().unwrap().to_owned();
    let code = t.last_code_for(PHONE_E164).unwrap();

    // Three wrong guesses from three networks, without the id: the anonymous budget is spent.
    for i in 0..3 {
        let guess = t
            .post_from(
                Endpoint::Verify,
                json!({ "phone": PHONE, "code": other_code(&code) }),
                &format!("198.51.100.{i}"),
            )
            .await;
        assert_eq!(guess.error(), "Incorrect OTP.");
    }
    let anonymous = t
        .post_from(
            Endpoint::Verify,
            json!({ "phone": PHONE, "code": code }),
            "198.51.100.9",
        )
        .await;
    assert_eq!(
        anonymous.error(),
        "Too many incorrect attempts for this code. Request a new code."
    );
    // A made-up id is no code at all, and is not counted against the real one.
    let forged = t
        .post_from(
            Endpoint::Verify,
            json!({ "phone": PHONE, "code": code, "verification_id": "made-up" }),
            "198.51.100.10",
        )
        .await;
    assert_eq!(
        forged.error(),
        "No active OTP for this phone number. Request a new code."
    );
    let otp = t.otp(PHONE_E164).await.unwrap();
    assert_eq!(num(&otp, "failed_attempts"), Some(0), "none named the code");
    let shared = t.anonymous_guesses(PHONE_E164, "signup").await.unwrap();
    assert_eq!(num(&shared, "failed_attempts"), Some(3));

    // The client that asked for the code still has every one of its tries (here the pair's
    // limit of three is the smaller).
    let wrong = t
        .post(
            Endpoint::Verify,
            json!({ "phone": PHONE, "code": other_code(&code), "verification_id": verification_id }),
        )
        .await;
    assert_eq!(wrong.body["attempts_left"], 2);
    let owner = t
        .post(
            Endpoint::Verify,
            json!({ "phone": PHONE, "code": code, "verification_id": verification_id }),
        )
        .await;
    assert_eq!(owner.status, 200, "{:?}", owner.body);
}

#[tokio::test]
async fn the_sms_names_the_service_and_what_the_code_is_for() {
    let t = TestApp::with_env(&[("SERVICE_NAME", "Acme")]).await;
    sent_code(&t).await;
    let body = t.sent_sms()[0]["body"].as_str().unwrap().to_owned();
    let code = t.last_code_for(PHONE_E164).unwrap();
    assert_eq!(
        body,
        format!("Acme: your sign-up code is {code}. It expires in 5 minutes. Do not share it.")
    );
}
