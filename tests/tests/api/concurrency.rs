//! Races settle in DynamoDB: conditional writes and transactions, never read-then-write.

use auth_tests::{
    Endpoint, PASSWORD, PHONE, PHONE_E164, TestApp, TestResponse, num, other_code, register_body,
    text,
};
use aws_sdk_dynamodb::types::AttributeValue;
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
    // Every attempt takes a slot of the pair before it is checked, right ones too, so beyond
    // three in flight at once the pair refuses (403) until the success clears it.
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 400 || s == 403),
        "{statuses:?}"
    );
    assert_eq!(t.scan(&t.tables().registration_tokens).await.len(), 1);
    assert!(t.codes_for(PHONE_E164, "signup").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_sends_for_one_phone_send_one_sms_inside_the_cooldown() {
    let t = TestApp::new().await;

    let responses =
        join_all((0..20).map(|_| t.post(Endpoint::CheckPhone, json!({ "phone": PHONE })))).await;

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

fn session_of(refresh: &str) -> String {
    let claims = auth_shared::refresh_tokens::parse(refresh);
    claims.expect("a valid refresh token").session_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_with_one_token_all_get_working_pairs_of_the_same_session() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let refresh = registered.body["tokens"]["refresh"].clone();

    // Tabs refreshing at once, inside the grace window: none of them logs the user out.
    let responses =
        join_all((0..10).map(|_| t.post(Endpoint::Refresh, json!({ "refresh": refresh })))).await;

    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let family = session_of(refresh.as_str().unwrap());
    for response in &responses {
        let tokens = &response.body["tokens"];
        assert_eq!(session_of(tokens["refresh"].as_str().unwrap()), family);
        let access = tokens["access"].as_str().unwrap();
        assert_eq!(
            t.authed(Endpoint::Profile, "GET", access, None)
                .await
                .status,
            200
        );
    }
    let refresh_items: Vec<_> = t
        .scan(&t.tables().sessions)
        .await
        .into_iter()
        .filter(|item| text(item, "sk").is_some_and(|sk| sk.starts_with("refresh#")))
        .collect();
    assert_eq!(
        refresh_items.len(),
        11,
        "the presented token and one successor per request"
    );
    assert_eq!(
        refresh_items
            .iter()
            .filter(|item| item.get("spent") == Some(&AttributeValue::Bool(true)))
            .count(),
        1,
        "only the presented token is spent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_wrong_codes_evaluate_at_most_five_and_the_block_holds() {
    let t = TestApp::new().await;
    t.post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    let code = t.last_code_for(PHONE_E164).unwrap();
    let wrong = other_code(&code);

    let responses = join_all(
        (0..50).map(|_| t.post(Endpoint::Verify, json!({ "phone": PHONE, "code": wrong }))),
    )
    .await;

    let incorrect = responses
        .iter()
        .filter(|r| r.status == 400 && r.error() == "Incorrect OTP.")
        .count() as u64;
    // The pair's limit (3) is below the code's (5): no more than three are ever compared.
    assert!(
        (1..=3).contains(&incorrect),
        "{incorrect} guesses were evaluated"
    );
    assert!(responses.iter().all(|r| r.status == 400 || r.status == 403));
    let shared = t.anonymous_guesses(PHONE_E164, "signup").await.unwrap();
    assert_eq!(
        num(&shared, "failed_attempts"),
        Some(incorrect),
        "no lost update"
    );
    let pair = t
        .scan(&t.tables().attempts)
        .await
        .into_iter()
        .find(|item| text(item, "pk").unwrap().starts_with("fail#verify#"))
        .unwrap();
    assert_eq!(num(&pair, "failures"), Some(incorrect));
    t.post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
        .await
        .assert_blocked_for_an_hour();
    assert!(t.scan(&t.tables().registration_tokens).await.is_empty());
}

/// How many of `responses` were evaluated (the password was checked and found wrong).
fn evaluated(responses: &[TestResponse]) -> usize {
    responses.iter().filter(|r| r.status == 401).count()
}

fn failures_of(counters: &[auth_shared::store::Item], prefix: &str) -> Option<u64> {
    counters
        .iter()
        .find(|item| text(item, "pk").unwrap().starts_with(prefix))
        .and_then(|item| num(item, "failures"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_wrong_logins_from_one_network_check_at_most_three_passwords() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;

    let responses = join_all((0..20).map(|_| {
        t.post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": "wrong password" }),
        )
    }))
    .await;

    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|&s| s == 401 || s == 403),
        "{statuses:?}"
    );
    let checked = evaluated(&responses);
    assert!(
        (1..=3).contains(&checked),
        "{checked} passwords were checked"
    );
    let counters = t.scan(&t.tables().attempts).await;
    assert_eq!(failures_of(&counters, "fail#login#"), Some(checked as u64));
    assert_eq!(failures_of(&counters, "acct#"), Some(checked as u64));
    t.post(
        Endpoint::Login,
        json!({ "phone": PHONE, "password": PASSWORD }),
    )
    .await
    .assert_blocked_for_an_hour();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_parallel_wrong_logins_from_thirty_networks_check_at_most_ten_passwords() {
    let t = TestApp::new().await.patient().await;
    t.registered_user(PHONE, PHONE_E164).await;

    let networks: Vec<String> = (0..30).map(|i| format!("198.51.100.{i}")).collect();
    let responses = join_all(networks.iter().map(|ip| {
        t.post_from(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": "wrong password" }),
            ip,
        )
    }))
    .await;

    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|&s| s == 401 || s == 429),
        "{statuses:?}"
    );
    let checked = evaluated(&responses);
    assert!(
        (1..=10).contains(&checked),
        "{checked} passwords were checked"
    );
    let counters = t.scan(&t.tables().attempts).await;
    assert_eq!(failures_of(&counters, "acct#"), Some(checked as u64));
}
