//! The per-account back-off across all IPs, on top of the per (phone, IP) lock-out.

use auth_tests::{Endpoint, PASSWORD, PHONE, PHONE_E164, TestApp, TestResponse, now, num};
use serde_json::json;

const ACCOUNT_KEY: &str = "acct#+989101234567";

async fn login_from(t: &TestApp, password: &str, ip: &str) -> TestResponse {
    t.post_from(
        Endpoint::Login,
        json!({ "phone": PHONE, "password": password }),
        ip,
    )
    .await
}

/// Ten wrong passwords from ten IPs: no pair reaches its own lock-out.
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

/// As if the last failure had happened `seconds_ago`.
async fn age_last_failure(t: &TestApp, seconds_ago: u64) {
    t.set_number(
        &t.tables().attempts,
        "pk",
        ACCOUNT_KEY,
        "last_failure_at",
        now() - seconds_ago,
    )
    .await;
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

    age_last_failure(&t, 31).await;
    assert_eq!(
        login_from(&t, "wrong again", "203.0.113.51").await.status,
        401
    );
    assert_backing_off(&login_from(&t, PASSWORD, "203.0.113.52").await, 60);

    age_last_failure(&t, 61).await;
    assert_eq!(
        login_from(&t, "wrong again", "203.0.113.53").await.status,
        401
    );
    assert_backing_off(&login_from(&t, PASSWORD, "203.0.113.54").await, 120);

    // The wait never exceeds an hour.
    t.set_number(&t.tables().attempts, "pk", ACCOUNT_KEY, "failures", 40)
        .await;
    age_last_failure(&t, 0).await;
    assert_backing_off(&login_from(&t, PASSWORD, "203.0.113.55").await, 3600);
}

#[tokio::test]
async fn the_owner_logs_in_as_soon_as_the_wait_passes_and_that_resets_it() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    fail_from_ten_networks(&t).await;
    age_last_failure(&t, 31).await;

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
async fn a_hundred_failures_lock_the_account_until_a_password_reset() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    fail_from_ten_networks(&t).await;
    t.set_number(&t.tables().attempts, "pk", ACCOUNT_KEY, "failures", 99)
        .await;
    age_last_failure(&t, 3601).await;
    assert_eq!(login_from(&t, "wrong", "203.0.113.70").await.status, 401);

    let locked = login_from(&t, PASSWORD, "203.0.113.71").await;

    assert_eq!(locked.status, 403);
    assert_eq!(
        locked.error(),
        "Account locked after too many failed attempts. Reset your password with a code by SMS."
    );
    let wait = locked.retry_after().unwrap();
    assert!(
        wait > 29 * 86_400,
        "until a reset (or 30 days without attempts): {wait}"
    );
    age_last_failure(&t, 86_400).await;
    assert_eq!(login_from(&t, PASSWORD, "203.0.113.72").await.status, 403);
    assert_eq!(account_failures(&t).await, 100);

    let requested = t
        .post(Endpoint::PasswordResetRequest, json!({ "phone": PHONE }))
        .await;
    assert_eq!(requested.status, 200);
    let code = t.last_code_for(PHONE_E164).unwrap();
    let reset = t
        .post(
            Endpoint::PasswordResetConfirm,
            json!({ "phone": PHONE, "code": code, "new_password": "after the lock" }),
        )
        .await;
    assert_eq!(reset.status, 204);
    assert_eq!(
        login_from(&t, "after the lock", "203.0.113.73")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn an_unknown_number_backs_off_like_a_registered_one() {
    let t = TestApp::new().await;
    fail_from_ten_networks(&t).await;
    assert_backing_off(&login_from(&t, PASSWORD, "203.0.113.80").await, 30);
}

#[tokio::test]
async fn a_wrong_password_on_account_deletion_counts_toward_the_back_off() {
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
    assert_backing_off(&login_from(&t, PASSWORD, "203.0.113.90").await, 30);
}
