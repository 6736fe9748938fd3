//! `POST /auth/password/change/`, `/auth/password/reset/request/` and `/auth/password/reset/confirm/`

use auth_tests::{
    Endpoint, PASSWORD, PHONE, PHONE_E164, TestApp, TestResponse, num, other_code, text,
};
use serde_json::{Value, json};

const NEW_PASSWORD: &str = "a brand new passphrase";
const RESET_SENT: &str = "If this number has an account, a reset code has been sent to it.";

fn access(tokens: &Value) -> String {
    tokens["access"].as_str().unwrap().to_owned()
}

async fn login_status(t: &TestApp, password: &str) -> u16 {
    t.post(
        Endpoint::Login,
        json!({ "phone": PHONE, "password": password }),
    )
    .await
    .status
}

async fn change(t: &TestApp, access: &str, old: &str, new: &str) -> TestResponse {
    t.authed(
        Endpoint::PasswordChange,
        "POST",
        access,
        Some(json!({ "old_password": old, "new_password": new })),
    )
    .await
}

async fn reset_request(t: &TestApp, phone: &str) -> TestResponse {
    t.post(Endpoint::PasswordResetRequest, json!({ "phone": phone }))
        .await
}

async fn reset_confirm(t: &TestApp, code: &str, new_password: &str) -> TestResponse {
    t.post(
        Endpoint::PasswordResetConfirm,
        json!({ "phone": PHONE, "code": code, "new_password": new_password }),
    )
    .await
}

#[tokio::test]
async fn a_password_change_keeps_this_session_and_ends_the_others() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let current = &registered.body["tokens"];
    let other = t.login(PHONE).await;

    let response = change(&t, &access(current), PASSWORD, NEW_PASSWORD).await;

    assert_eq!(response.status, 204, "{:?}", response.body);
    assert_eq!(login_status(&t, PASSWORD).await, 401);
    assert_eq!(login_status(&t, NEW_PASSWORD).await, 200);
    let profile = t
        .authed(Endpoint::Profile, "GET", &access(current), None)
        .await;
    assert_eq!(profile.status, 200, "the session that changed it stays");
    let refresh = t
        .post(Endpoint::Refresh, json!({ "refresh": current["refresh"] }))
        .await;
    assert_eq!(refresh.status, 200);
    let ended = t
        .authed(Endpoint::Profile, "GET", &access(&other), None)
        .await;
    assert_eq!(ended.status, 401, "other sessions end");
    let stored = t.user(PHONE_E164).await.unwrap();
    assert!(
        text(&stored, "password_hash")
            .unwrap()
            .starts_with("$argon2id$")
    );
}

#[tokio::test]
async fn a_password_change_checks_the_old_password_and_the_new_one() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let token = access(&registered.body["tokens"]);
    let before = t.user(PHONE_E164).await;

    let wrong_old = change(&t, &token, "not my password", NEW_PASSWORD).await;
    assert_eq!(wrong_old.status, 401);
    assert_eq!(wrong_old.error(), "Wrong password.");
    let short = change(&t, &token, PASSWORD, "short").await;
    assert_eq!(short.status, 400);
    assert_eq!(
        short.error(),
        "Invalid field 'password': must be 8 to 128 characters."
    );
    let unauthenticated = t
        .post(
            Endpoint::PasswordChange,
            json!({ "old_password": PASSWORD, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(unauthenticated.status, 401);

    assert_eq!(t.user(PHONE_E164).await, before);
    assert_eq!(login_status(&t, PASSWORD).await, 200);
}

#[tokio::test]
async fn a_reset_request_answers_the_same_for_registered_and_unknown_numbers() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    let sms_before = t.sent_sms().len();

    let known = reset_request(&t, PHONE).await;
    let unknown = reset_request(&t, "09129998877").await;

    assert_eq!((known.status, unknown.status), (200, 200));
    for answer in [&known, &unknown] {
        let id = answer.body["verification_id"].as_str().unwrap();
        assert_eq!(id.len(), 43, "a verification id either way");
        assert_eq!(
            answer.body,
            json!({ "message": RESET_SENT, "verification_id": id })
        );
    }
    assert_ne!(
        known.body["verification_id"],
        unknown.body["verification_id"]
    );
    let sms = t.sent_sms();
    assert_eq!(
        sms.len(),
        sms_before + 1,
        "only the registered number gets a code"
    );
    assert_eq!(sms.last().unwrap()["to"], PHONE_E164);
    let otp = t.otp(PHONE_E164).await.unwrap();
    assert_eq!(text(&otp, "purpose"), Some("password_reset"));
    // The unknown number's id names a stand-in that no code matches.
    let decoy = t.otp("+989129998877").await.unwrap();
    assert_eq!(
        decoy.get("decoy").and_then(|v| v.as_bool().ok()),
        Some(&true)
    );

    // Inside the cooldown the registered number still gets the same answer, and no SMS.
    let again = reset_request(&t, PHONE).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["message"], RESET_SENT);
    assert!(again.body["verification_id"].is_string());
    assert_eq!(t.sent_sms().len(), sms_before + 1);

    let invalid = reset_request(&t, "0912").await;
    assert_eq!(invalid.status, 400);
}

#[tokio::test]
async fn reset_requests_count_against_the_client_ip_cap_either_way() {
    let t = TestApp::with_env(&[("OTP_SENDS_PER_IP", "2")]).await;
    t.registered_user(PHONE, PHONE_E164).await; // one send from this IP
    assert_eq!(reset_request(&t, "09129998877").await.status, 200); // counted, nothing sent
    let refused = reset_request(&t, "09129998866").await;
    assert_eq!(refused.status, 429);
    assert!(refused.retry_after().is_some());
}

#[tokio::test]
async fn a_reset_sets_the_new_password_and_ends_every_session() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let session = &registered.body["tokens"];
    reset_request(&t, PHONE).await;
    let code = t.last_code_for(PHONE_E164).unwrap();

    let response = reset_confirm(&t, &code, NEW_PASSWORD).await;

    assert_eq!(response.status, 204, "{:?}", response.body);
    assert_eq!(login_status(&t, NEW_PASSWORD).await, 200);
    assert_eq!(login_status(&t, PASSWORD).await, 401);
    assert_eq!(
        t.authed(Endpoint::Profile, "GET", &access(session), None)
            .await
            .status,
        401
    );
    assert!(t.otp(PHONE_E164).await.is_none(), "code spent");
    let replay = reset_confirm(&t, &code, "yet another password").await;
    assert_eq!(replay.status, 400);
}

#[tokio::test]
async fn an_invalid_new_password_is_refused_before_the_code_is_looked_at() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    reset_request(&t, PHONE).await;
    let code = t.last_code_for(PHONE_E164).unwrap();

    let short = reset_confirm(&t, &code, "short").await;

    assert_eq!(short.status, 400);
    assert_eq!(
        short.error(),
        "Invalid field 'password': must be 8 to 128 characters."
    );
    assert!(
        t.anonymous_guesses(PHONE_E164, "password_reset")
            .await
            .is_none(),
        "no guess was counted"
    );
    assert_eq!(reset_confirm(&t, &code, NEW_PASSWORD).await.status, 204);
}

#[tokio::test]
async fn a_wrong_reset_code_follows_the_verify_rules_and_lockouts() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    reset_request(&t, PHONE).await;
    let code = t.last_code_for(PHONE_E164).unwrap();
    let before = t.user(PHONE_E164).await;

    let mut left = Vec::new();
    for _ in 0..3 {
        let response = reset_confirm(&t, &other_code(&code), NEW_PASSWORD).await;
        assert_eq!(response.status, 400);
        assert_eq!(response.error(), "Incorrect OTP.");
        left.push(response.body["attempts_left"].as_u64().unwrap());
    }
    assert_eq!(left, [2, 1, 0]);
    reset_confirm(&t, &code, NEW_PASSWORD)
        .await
        .assert_blocked_for_an_hour();
    assert_eq!(t.user(PHONE_E164).await, before);
    let shared = t
        .anonymous_guesses(PHONE_E164, "password_reset")
        .await
        .unwrap();
    assert_eq!(num(&shared, "failed_attempts"), Some(3));
}

#[tokio::test]
async fn a_sign_up_code_cannot_reset_a_password_nor_a_reset_code_verify_a_phone() {
    let t = TestApp::new().await;
    // A sign-up code still live for a number that meanwhile registered.
    let token = t.verified_token(PHONE, PHONE_E164).await;
    t.end_resend_cooldown();
    t.post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    let signup_code = t.last_code_for(PHONE_E164).unwrap();
    let registered = t
        .post(Endpoint::Register, auth_tests::register_body(&token))
        .await;
    assert_eq!(registered.status, 201);

    let refused = reset_confirm(&t, &signup_code, NEW_PASSWORD).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.error(),
        "No active OTP for this phone number. Request a new code."
    );
    assert_eq!(login_status(&t, PASSWORD).await, 200);

    reset_request(&t, PHONE).await;
    let reset_code = t.last_code_for(PHONE_E164).unwrap();
    let verify = t
        .post(
            Endpoint::Verify,
            json!({ "phone": PHONE, "code": reset_code }),
        )
        .await;
    // Codes are kept per purpose: the reset code is compared with the sign-up code, not taken.
    assert_eq!(verify.status, 400);
    assert_eq!(verify.error(), "Incorrect OTP.");
    assert!(t.scan(&t.tables().registration_tokens).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_that_read_the_old_password_before_a_reset_starts_no_session() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let user_id = registered.body["user"]["id"].as_str().unwrap().to_owned();
    // The login reads the account (0), takes its slot (1) and checks the old password, then
    // waits before its session transaction (2) while the password is reset.
    let (gate, pause) = auth_tests::DynamoDbGate::pausing_before(2);
    let racing = std::sync::Arc::new(t.through(&gate).await);
    let login = tokio::spawn({
        let racing = std::sync::Arc::clone(&racing);
        async move {
            racing
                .post(
                    Endpoint::Login,
                    json!({ "phone": PHONE, "password": PASSWORD }),
                )
                .await
        }
    });
    pause.reached().await;

    reset_request(&t, PHONE).await;
    let code = t.last_code_for(PHONE_E164).unwrap();
    assert_eq!(reset_confirm(&t, &code, NEW_PASSWORD).await.status, 204);
    pause.release();
    let login = login.await.unwrap();

    assert_eq!(login.status, 401, "{:?}", login.body);
    assert_eq!(login.error(), "Invalid phone number or password.");
    let sessions: Vec<_> = t
        .scan(&t.tables().sessions)
        .await
        .into_iter()
        .filter(|item| text(item, "sk").unwrap().starts_with("session#"))
        .collect();
    assert!(
        sessions.is_empty(),
        "no session survives the reset: {sessions:?}"
    );
    assert_eq!(login_status(&t, NEW_PASSWORD).await, 200);
    assert!(!user_id.is_empty());
}

#[tokio::test]
async fn a_session_started_before_a_reset_dies_even_if_its_item_is_left_behind() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let tokens = registered.body["tokens"].clone();
    let user_id = registered.body["user"]["id"].as_str().unwrap().to_owned();
    let before = t.scan(&t.tables().sessions).await;

    reset_request(&t, PHONE).await;
    let code = t.last_code_for(PHONE_E164).unwrap();
    assert_eq!(reset_confirm(&t, &code, NEW_PASSWORD).await.status, 204);
    // As if the clean-up after the reset had failed: put the old session items back.
    for item in before {
        t.dynamodb
            .put_item()
            .table_name(&t.tables().sessions)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }

    let profile = t
        .authed(Endpoint::Profile, "GET", &access(&tokens), None)
        .await;
    assert_eq!(profile.status, 401, "the credentials version ended it");
    let refresh = t
        .post(Endpoint::Refresh, json!({ "refresh": tokens["refresh"] }))
        .await;
    assert_eq!(refresh.status, 401);
    let marker = t
        .dynamodb
        .get_item()
        .table_name(&t.tables().sessions)
        .key(
            "user_id",
            aws_sdk_dynamodb::types::AttributeValue::S(user_id),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("credentials".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(num(&marker, "version"), Some(1));
    assert_eq!(
        num(&t.user(PHONE_E164).await.unwrap(), "credentials_version"),
        Some(1)
    );
}
