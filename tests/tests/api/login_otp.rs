//! `POST /auth/login/otp/request/` and `POST /auth/login/otp/`: passwordless login by code.

use auth_tests::{Endpoint, PASSWORD, PHONE, PHONE_E164, TestApp, TestResponse, num, other_code};
use serde_json::{Value, json};

const CODE_SENT: &str = "If this number has an account, a login code has been sent to it.";

async fn request_code(t: &TestApp, phone: &str) -> TestResponse {
    t.post(Endpoint::LoginOtpRequest, json!({ "phone": phone }))
        .await
}

async fn login_with(t: &TestApp, body: Value) -> TestResponse {
    t.post(Endpoint::LoginOtp, body).await
}

#[tokio::test]
async fn a_registered_number_logs_in_with_the_code_alone() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let user_id = registered.body["user"]["id"].as_str().unwrap().to_owned();
    let sessions_before = t.scan(&t.tables().sessions).await.len();

    let requested = request_code(&t, PHONE).await;
    assert_eq!(requested.status, 200, "{:?}", requested.body);
    let id = requested.body["verification_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        requested.body,
        json!({ "message": CODE_SENT, "expires_in": 300, "resend_after": 60, "verification_id": id })
    );
    let sms = t.sent_sms();
    let body = sms.last().unwrap()["body"].as_str().unwrap().to_owned();
    assert!(
        body.starts_with("Phone Auth: your login code is "),
        "{body}"
    );
    let code = t.last_code_for(PHONE_E164).unwrap();

    let logged_in = login_with(
        &t,
        json!({ "phone": PHONE, "code": code, "verification_id": id }),
    )
    .await;

    assert_eq!(logged_in.status, 200, "{:?}", logged_in.body);
    assert_eq!(logged_in.body["message"], "Login successful.");
    let access = logged_in.body["tokens"]["access"].as_str().unwrap();
    let profile = t.authed(Endpoint::Profile, "GET", access, None).await;
    assert_eq!(
        profile.body["id"],
        user_id.as_str(),
        "a session of the account"
    );
    assert_eq!(
        t.scan(&t.tables().sessions).await.len(),
        sessions_before + 2,
        "a new session and its refresh token"
    );
    assert!(t.otp_for(PHONE_E164, "login").await.is_none(), "code spent");
    let again = login_with(&t, json!({ "phone": PHONE, "code": code })).await;
    assert_eq!(
        again.error(),
        "No active OTP for this phone number. Request a new code."
    );
}

#[tokio::test]
async fn the_request_answers_the_same_for_unknown_numbers_and_sends_them_nothing() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    let sms_before = t.sent_sms().len();

    let known = request_code(&t, PHONE).await;
    let unknown = request_code(&t, "09129998877").await;

    for answer in [&known, &unknown] {
        assert_eq!(answer.status, 200);
        let id = answer.body["verification_id"].as_str().unwrap();
        assert_eq!(
            answer.body,
            json!({ "message": CODE_SENT, "expires_in": 300, "resend_after": 60,
                    "verification_id": id })
        );
    }
    assert_eq!(
        t.sent_sms().len(),
        sms_before + 1,
        "only the account's phone"
    );
    // The unknown number's id names a stand-in no code matches, so that guesses are answered
    // alike, with or without the id.
    let decoy = t.otp_for("+989129998877", "login").await.unwrap();
    assert_eq!(
        decoy.get("decoy").and_then(|v| v.as_bool().ok()),
        Some(&true)
    );
    let code = t.last_code_for(PHONE_E164).unwrap();
    for verified in [true, false] {
        let answers: Vec<Value> = [
            (PHONE, &known, other_code(&code)),
            ("09129998877", &unknown, code.clone()),
        ]
        .into_iter()
        .map(|(phone, request, guess)| {
            let mut body = json!({ "phone": phone, "code": guess });
            if verified {
                body["verification_id"] = request.body["verification_id"].clone();
            }
            body
        })
        .collect();
        let known_answer = login_with(&t, answers[0].clone()).await;
        let unknown_answer = login_with(&t, answers[1].clone()).await;
        assert_eq!(known_answer.status, 400, "{:?}", known_answer.body);
        assert_eq!(
            known_answer.body, unknown_answer.body,
            "verified: {verified}"
        );
        assert_eq!(known_answer.error(), "Incorrect OTP.");
    }
    assert_eq!(request_code(&t, "0912").await.status, 400);
}

#[tokio::test]
async fn wrong_codes_follow_the_verify_rules_and_lockouts() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    request_code(&t, PHONE).await;
    let code = t.last_code_for(PHONE_E164).unwrap();

    let mut left = Vec::new();
    for _ in 0..3 {
        let wrong = login_with(&t, json!({ "phone": PHONE, "code": other_code(&code) })).await;
        assert_eq!(wrong.status, 400);
        assert_eq!(wrong.error(), "Incorrect OTP.");
        left.push(wrong.body["attempts_left"].as_u64().unwrap());
    }
    assert_eq!(left, [2, 1, 0]);
    login_with(&t, json!({ "phone": PHONE, "code": code }))
        .await
        .assert_blocked_for_an_hour();
    let shared = t.anonymous_guesses(PHONE_E164, "login").await.unwrap();
    assert_eq!(num(&shared, "failed_attempts"), Some(3));
}

#[tokio::test]
async fn an_owner_held_by_the_password_back_off_logs_in_with_a_code() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    for i in 0..10 {
        let wrong = t
            .post_from(
                Endpoint::Login,
                json!({ "phone": PHONE, "password": "wrong password" }),
                &format!("198.51.100.{i}"),
            )
            .await;
        assert_eq!(wrong.status, 401);
    }
    let held = t
        .post_from(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": PASSWORD }),
            "203.0.113.40",
        )
        .await;
    assert_eq!(
        held.status, 429,
        "the password back-off holds a new network"
    );

    let requested = t
        .post_from(
            Endpoint::LoginOtpRequest,
            json!({ "phone": PHONE }),
            "203.0.113.40",
        )
        .await;
    let id = requested.body["verification_id"].clone();
    let code = t.last_code_for(PHONE_E164).unwrap();
    let logged_in = t
        .post_from(
            Endpoint::LoginOtp,
            json!({ "phone": PHONE, "code": code, "verification_id": id }),
            "203.0.113.40",
        )
        .await;

    assert_eq!(logged_in.status, 200, "{:?}", logged_in.body);
    assert!(
        t.get_item(&t.tables().attempts, "pk", "acct#+989101234567")
            .await
            .is_none(),
        "the success clears the account's failed logins"
    );
    let password_again = t
        .post_from(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": PASSWORD }),
            "203.0.113.41",
        )
        .await;
    assert_eq!(password_again.status, 200);
}
