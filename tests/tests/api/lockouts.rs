//! The per-account back-off across all networks, on top of the per (phone, network) lock-out,
//! and the step-up that replaces a hard lock: after many failures the right password also needs
//! a code by SMS, which an attacker without the phone cannot get, and which keeps the owner out
//! no longer than the back-off cap.

use auth_tests::{
    Endpoint, PASSWORD, PHONE, PHONE_E164, TestApp, TestResponse, code_in, num, other_code,
};
use serde_json::{Value, json};

const ACCOUNT_KEY: &str = "acct#+989101234567";

async fn login_from(t: &TestApp, password: &str, ip: &str) -> TestResponse {
    login_with(t, json!({ "phone": PHONE, "password": password }), ip).await
}

async fn login_with(t: &TestApp, body: Value, ip: &str) -> TestResponse {
    t.post_from(Endpoint::Login, body, ip).await
}

/// Ten wrong passwords from ten networks: no pair reaches its own lock-out.
async fn fail_from_ten_networks(t: &TestApp) {
    for i in 0..10 {
        let response = login_from(t, "wrong password", &format!("198.51.100.{i}")).await;
        assert_eq!(response.status, 401, "{:?}", response.body);
    }
}

async fn account_failures(t: &TestApp) -> u64 {
    let item = t
        .get_item(&t.tables().attempts, "pk", ACCOUNT_KEY)
        .await
        .expect("an account failure record");
    num(&item, "failures").unwrap()
}

/// As if the current wait had passed.
/// As if the longest wait had passed: the app's clock moves on (nothing stored is edited).
fn end_the_wait(t: &TestApp) {
    t.app
        .clock
        .advance(t.app.config.limits.account_backoff_max_seconds + 1);
}

/// As if the account had had `failures` consecutive failures and no wait were pending.
async fn set_failures(t: &TestApp, failures: u64) {
    t.set_number(
        &t.tables().attempts,
        "pk",
        ACCOUNT_KEY,
        "failures",
        failures,
    )
    .await;
    end_the_wait(t);
}

fn assert_backing_off(response: &TestResponse, expected_wait: u64) {
    assert_eq!(response.status, 429, "{:?}", response.body);
    assert_eq!(
        response.error(),
        "Too many failed attempts for this account. Try again later."
    );
    let wait = response.retry_after().unwrap();
    assert!(
        (expected_wait - 2..=expected_wait).contains(&wait),
        "{wait} vs {expected_wait}"
    );
    assert_eq!(response.body["retry_after"], wait);
}

fn assert_code_required(response: &TestResponse) {
    assert_eq!(response.status, 401, "{:?}", response.body);
    assert_eq!(
        response.error(),
        "Enter the code sent to your phone by SMS to log in."
    );
    assert_eq!(response.body["code_required"], true);
}

#[tokio::test]
async fn ten_failures_from_anywhere_start_a_back_off_that_doubles() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    fail_from_ten_networks(&t).await;

    // Even the right password, from a new network, waits out the first 30 s.
    assert_backing_off(&login_from(&t, PASSWORD, "203.0.113.50").await, 30);
    assert_eq!(
        account_failures(&t).await,
        10,
        "a refused attempt is not evaluated"
    );

    end_the_wait(&t);
    assert_eq!(
        login_from(&t, "wrong again", "203.0.113.51").await.status,
        401
    );
    assert_backing_off(&login_from(&t, PASSWORD, "203.0.113.52").await, 60);

    end_the_wait(&t);
    assert_eq!(
        login_from(&t, "wrong again", "203.0.113.53").await.status,
        401
    );
    assert_backing_off(&login_from(&t, PASSWORD, "203.0.113.54").await, 120);

    // The wait never exceeds an hour.
    set_failures(&t, 40).await;
    assert_eq!(
        login_from(&t, "wrong again", "203.0.113.55").await.status,
        401
    );
    assert_backing_off(&login_from(&t, PASSWORD, "203.0.113.56").await, 3600);
}

#[tokio::test]
async fn the_owner_logs_in_as_soon_as_the_wait_passes_and_that_resets_it() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    fail_from_ten_networks(&t).await;
    end_the_wait(&t);

    let owner = login_from(&t, PASSWORD, "203.0.113.60").await;

    assert_eq!(owner.status, 200, "{:?}", owner.body);
    assert!(
        t.get_item(&t.tables().attempts, "pk", ACCOUNT_KEY)
            .await
            .is_none(),
        "a success resets the account's failures"
    );
    assert_eq!(login_from(&t, "wrong", "203.0.113.61").await.status, 401);
    assert_eq!(account_failures(&t).await, 1);
}

#[tokio::test]
async fn after_the_maximum_failures_the_right_password_needs_a_code_by_sms() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    fail_from_ten_networks(&t).await;
    set_failures(&t, 100).await;
    let sms_before = t.sent_sms().len();

    // A wrong password is a plain failure: no code, no SMS.
    assert_eq!(login_from(&t, "wrong", "203.0.113.70").await.status, 401);
    assert_eq!(t.sent_sms().len(), sms_before);

    end_the_wait(&t);
    let stepped_up = login_from(&t, PASSWORD, "203.0.113.71").await;
    assert_code_required(&stepped_up);
    let verification_id = stepped_up.body["verification_id"].as_str().unwrap();
    let sms = t.sent_sms();
    assert_eq!(sms.len(), sms_before + 1);
    let body = sms.last().unwrap()["body"].as_str().unwrap().to_owned();
    assert!(
        body.starts_with("Phone Auth: your login code is "),
        "{body}"
    );
    let code = code_in(&body).unwrap();

    // The code proves the phone: the back-off the last attempt started does not hold it.
    let logged_in = login_with(
        &t,
        json!({ "phone": PHONE, "password": PASSWORD, "code": code,
                "verification_id": verification_id }),
        "203.0.113.71",
    )
    .await;
    assert_eq!(logged_in.status, 200, "{:?}", logged_in.body);
    assert!(
        t.get_item(&t.tables().attempts, "pk", ACCOUNT_KEY)
            .await
            .is_none(),
        "the success clears the account's failures"
    );
    assert!(t.otp_for(PHONE_E164, "login").await.is_none(), "code spent");
    assert_eq!(login_from(&t, PASSWORD, "203.0.113.72").await.status, 200);
}

#[tokio::test]
async fn strangers_cannot_use_up_a_step_up_code_and_a_right_password_costs_the_owner_no_wait() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    fail_from_ten_networks(&t).await;
    set_failures(&t, 100).await;
    let stepped_up = login_from(&t, PASSWORD, "203.0.113.80").await;
    assert_code_required(&stepped_up);
    let verification_id = stepped_up.body["verification_id"].as_str().unwrap();
    let code = t.last_code_for(PHONE_E164).unwrap();
    let account = t
        .get_item(&t.tables().attempts, "pk", ACCOUNT_KEY)
        .await
        .unwrap();
    assert_eq!(
        num(&account, "failures"),
        Some(100),
        "the right password was refunded"
    );
    assert!(
        num(&account, "next_attempt_at").unwrap() < t.app.clock.now(),
        "and started no new wait"
    );

    // Strangers guessing without the verification id spend only the anonymous budget.
    for i in 0..3 {
        let guess = login_with(
            &t,
            json!({ "phone": PHONE, "password": "a guess", "code": other_code(&code) }),
            &format!("198.51.100.{}", 50 + i),
        )
        .await;
        assert_eq!(guess.status, 400, "{:?}", guess.body);
        assert_eq!(guess.error(), "Incorrect OTP.");
    }
    let exhausted = login_with(
        &t,
        json!({ "phone": PHONE, "password": PASSWORD, "code": code }),
        "198.51.100.60",
    )
    .await;
    assert_eq!(
        exhausted.error(),
        "Too many incorrect attempts for this code. Request a new code."
    );

    let owner = login_with(
        &t,
        json!({ "phone": PHONE, "password": PASSWORD, "code": code,
                "verification_id": verification_id }),
        "203.0.113.80",
    )
    .await;
    assert_eq!(owner.status, 200, "{:?}", owner.body);
}

#[tokio::test]
async fn a_right_step_up_code_with_a_wrong_password_is_spent_and_counted() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    fail_from_ten_networks(&t).await;
    set_failures(&t, 100).await;
    let stepped_up = login_from(&t, PASSWORD, "203.0.113.85").await;
    let verification_id = stepped_up.body["verification_id"].as_str().unwrap();
    let code = t.last_code_for(PHONE_E164).unwrap();

    let wrong_password = login_with(
        &t,
        json!({ "phone": PHONE, "password": "not it", "code": code,
                "verification_id": verification_id }),
        "203.0.113.86",
    )
    .await;

    assert_eq!(wrong_password.status, 401);
    assert_eq!(wrong_password.error(), "Invalid phone number or password.");
    assert!(
        t.otp_for(PHONE_E164, "login").await.is_none(),
        "one password guess per code, not one per code try"
    );
    assert_eq!(account_failures(&t).await, 101);
    let again = login_with(
        &t,
        json!({ "phone": PHONE, "password": PASSWORD, "code": code,
                "verification_id": verification_id }),
        "203.0.113.85",
    )
    .await;
    assert_eq!(
        again.error(),
        "No active OTP for this phone number. Request a new code."
    );
}

#[tokio::test]
async fn strangers_filling_the_phones_sms_caps_cannot_stop_the_step_up_code() {
    let t = TestApp::with_env(&[("OTP_RESEND_SECONDS", "0")]).await;
    t.registered_user(PHONE, PHONE_E164).await;
    // Reset requests from many networks use up the phone's hourly cap of codes.
    for i in 0..6 {
        t.post_from(
            Endpoint::PasswordResetRequest,
            json!({ "phone": PHONE }),
            &format!("198.51.100.{}", 100 + i),
        )
        .await;
    }
    fail_from_ten_networks(&t).await;
    set_failures(&t, 100).await;
    let sms_before = t.sent_sms().len();

    let stepped_up = login_from(&t, PASSWORD, "203.0.113.90").await;

    assert_code_required(&stepped_up);
    assert_eq!(t.sent_sms().len(), sms_before + 1, "the login code is sent");
    assert!(
        t.otp_for(PHONE_E164, "password_reset").await.is_some(),
        "and it replaced no reset code"
    );
}

#[tokio::test]
async fn no_wait_ever_exceeds_the_back_off_cap() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    fail_from_ten_networks(&t).await;
    set_failures(&t, 5000).await;
    for i in 0..3 {
        let response = login_from(&t, "wrong", &format!("203.0.113.{}", 100 + i)).await;
        assert!(matches!(response.status, 401 | 429), "{:?}", response.body);
        if let Some(wait) = response.retry_after() {
            assert!(wait <= 3600, "{wait}");
        }
    }
}

#[tokio::test]
async fn an_unknown_number_backs_off_like_a_registered_one() {
    let t = TestApp::new().await;
    fail_from_ten_networks(&t).await;
    assert_backing_off(&login_from(&t, PASSWORD, "203.0.113.80").await, 30);
}

#[tokio::test]
async fn a_wrong_password_on_account_deletion_counts_against_the_session_not_the_account() {
    let t = TestApp::with_env(&[("ACCOUNT_BACKOFF_AFTER_FAILURES", "2")]).await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let access = registered.body["tokens"]["access"]
        .as_str()
        .unwrap()
        .to_owned();
    for ip in ["198.51.100.1", "198.51.100.2"] {
        let body = json!({ "password": "wrong" }).to_string();
        let response = t
            .send(
                Endpoint::Profile,
                auth_tests::RawRequest {
                    method: "DELETE",
                    body: Some(&body),
                    bearer: Some(&access),
                    source_ip: ip,
                    ..Default::default()
                },
            )
            .await;
        assert_eq!(response.status, 401);
    }
    // The session's own budget counted them; strangers' login guesses and the owner's session
    // do not hold each other.
    assert!(
        t.get_item(&t.tables().attempts, "pk", ACCOUNT_KEY)
            .await
            .is_none()
    );
    assert_eq!(login_from(&t, PASSWORD, "203.0.113.90").await.status, 200);
}

#[tokio::test]
async fn the_owner_on_a_network_they_logged_in_from_is_not_held_by_the_back_off() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    let home = "203.0.113.20";
    assert_eq!(login_from(&t, PASSWORD, home).await.status, 200);
    fail_from_ten_networks(&t).await;

    // Strangers hold the account's back-off, and a new network waits it out...
    assert_backing_off(&login_from(&t, PASSWORD, "203.0.113.21").await, 30);
    // ...but the owner's own network is counted, not held: a typo there still counts.
    assert_eq!(login_from(&t, "a typo", home).await.status, 401);
    assert_eq!(account_failures(&t).await, 11);
    assert_eq!(login_from(&t, PASSWORD, home).await.status, 200);
    assert!(
        t.get_item(&t.tables().attempts, "pk", ACCOUNT_KEY)
            .await
            .is_none()
    );
}
