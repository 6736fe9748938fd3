//! Races settle in DynamoDB: conditional writes and transactions, never read-then-write.

use auth_tests::{Endpoint, PHONE, PHONE_E164, TestApp, register_body};
use futures::future::join_all;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_registrations_with_one_token_create_exactly_one_user() {
    let t = TestApp::new().await;
    let token = t.verified_token(PHONE, PHONE_E164).await;

    let responses =
        join_all((0..10).map(|_| t.post(Endpoint::Register, register_body(&token)))).await;

    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|&s| s == 201 || s == 403),
        "{statuses:?}"
    );
    assert_eq!(t.scan(&t.tables().users).await.len(), 1);
    assert!(t.scan(&t.tables().registration_tokens).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_verifies_of_one_code_give_exactly_one_token() {
    let t = TestApp::new().await;
    t.post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    let code = t.last_code_for(PHONE_E164).unwrap();

    let responses = join_all(
        (0..10).map(|_| t.post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))),
    )
    .await;

    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 400),
        "{statuses:?}"
    );
    assert_eq!(t.scan(&t.tables().registration_tokens).await.len(), 1);
    assert!(t.scan(&t.tables().otps).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_for_one_phone_send_one_sms_inside_the_cooldown() {
    let t = TestApp::new().await;

    let responses =
        join_all((0..10).map(|_| t.post(Endpoint::CheckPhone, json!({ "phone": PHONE })))).await;

    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 429),
        "{statuses:?}"
    );
    assert_eq!(t.sent_sms().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_refreshes_with_one_token_give_exactly_one_new_pair() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let refresh = registered.body["tokens"]["refresh"].clone();

    let responses =
        join_all((0..10).map(|_| t.post(Endpoint::Refresh, json!({ "refresh": refresh })))).await;

    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 401),
        "{statuses:?}"
    );
    let spent: Vec<_> = t
        .scan(&t.tables().sessions)
        .await
        .into_iter()
        .filter(|item| item.get("spent").is_some())
        .collect();
    assert_eq!(
        spent.len(),
        2,
        "the presented token and exactly one successor"
    );
}
