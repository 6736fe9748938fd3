//! SMS pumping and toll-fraud guards: send budgets, the country allow-list, number types.

use auth_tests::{Endpoint, PHONE, PHONE_E164, TestApp, TestResponse, num, text};
use futures::future::join_all;
use serde_json::json;

async fn send(t: &TestApp, phone: &str, ip: &str) -> TestResponse {
    t.post_from(Endpoint::CheckPhone, json!({ "phone": phone }), ip)
        .await
}

/// The `hits` of the counters whose key starts with `prefix`.
async fn hits(t: &TestApp, prefix: &str) -> Vec<u64> {
    t.scan(&t.tables().attempts)
        .await
        .iter()
        .filter(|item| text(item, "pk").is_some_and(|pk| pk.starts_with(prefix)))
        .filter_map(|item| num(item, "hits"))
        .collect()
}

fn assert_budget_refusal(response: &TestResponse) {
    assert_eq!(response.status, 429, "{:?}", response.body);
    assert_eq!(response.error(), "Too many requests. Try again later.");
    let wait = response.retry_after().expect("Retry-After");
    assert_eq!(response.body["retry_after"], wait);
}

#[tokio::test]
async fn a_phone_gets_at_most_ten_codes_a_day() {
    let t = TestApp::with_env(&[("OTP_RESEND_SECONDS", "0"), ("OTP_SENDS_PER_PHONE", "100")]).await;
    for i in 0..10 {
        // Different IPs, so that only the phone's daily budget can refuse.
        let response = send(&t, "09121234567", &format!("198.51.100.{i}")).await;
        assert_eq!(response.status, 200, "{:?}", response.body);
    }
    let refused = send(&t, "09121234567", "198.51.100.99").await;
    assert_budget_refusal(&refused);
    assert!(refused.retry_after().unwrap() <= 86_400);
    assert_eq!(t.sent_sms().len(), 10, "no SMS once the budget is spent");
}

#[tokio::test]
async fn a_country_has_a_daily_budget() {
    let t = TestApp::with_env(&[
        ("OTP_SENDS_PER_COUNTRY_PER_DAY", "3"),
        ("ALLOWED_COUNTRY_CODES", "98,44"),
    ])
    .await;
    for phone in ["09121234561", "09121234562", "09121234563"] {
        assert_eq!(send(&t, phone, "198.51.100.1").await.status, 200);
    }
    assert_budget_refusal(&send(&t, "09121234564", "198.51.100.2").await);
    assert_eq!(
        send(&t, "+44 7400 123456", "198.51.100.3").await.status,
        200,
        "other countries keep their own budget"
    );
    assert_eq!(t.sent_sms().len(), 4);
}

#[tokio::test]
async fn the_whole_service_has_an_hourly_cap() {
    let t = TestApp::with_env(&[
        ("OTP_SENDS_GLOBAL_PER_HOUR", "2"),
        ("ALLOWED_COUNTRY_CODES", "98,44"),
    ])
    .await;
    assert_eq!(send(&t, "09121234561", "198.51.100.1").await.status, 200);
    assert_eq!(
        send(&t, "+44 7400 123456", "198.51.100.2").await.status,
        200
    );
    let refused = send(&t, "09121234563", "198.51.100.3").await;
    assert_budget_refusal(&refused);
    assert!(refused.retry_after().unwrap() <= 3600);
    assert_eq!(t.sent_sms().len(), 2);
    assert!(
        t.otp("+989121234563").await.is_none(),
        "a refused send stores no code"
    );
}

#[tokio::test]
async fn only_numbers_of_allowed_countries_get_codes() {
    let default = TestApp::new().await;
    for phone in ["+44 7400 123456", "+1 650 253 0000"] {
        let response = send(&default, phone, "198.51.100.1").await;
        assert_eq!(response.status, 400, "{phone}");
        assert_eq!(
            response.error(),
            "SMS codes are not available for this country."
        );
        let reset = default
            .post(Endpoint::PasswordResetRequest, json!({ "phone": phone }))
            .await;
        assert_eq!(reset.status, 400, "the same answer on the reset path");
    }
    assert!(default.sent_sms().is_empty());
    assert!(
        default
            .scan(&default.tables().attempts)
            .await
            .iter()
            .all(|item| text(item, "pk").unwrap().starts_with("send#lookup#")),
        "only the lookups are counted, no send"
    );

    let widened = TestApp::with_env(&[("ALLOWED_COUNTRY_CODES", "+98, 44")]).await;
    assert_eq!(
        send(&widened, "+44 7400 123456", "198.51.100.1")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn premium_shared_cost_and_fixed_line_numbers_are_refused() {
    let t = TestApp::with_env(&[("ALLOWED_COUNTRY_CODES", "98,1,44,33,34,49")]).await;
    for phone in [
        "+1 900 555 0100",  // premium rate
        "+44 845 464 0000", // premium rate (UK 084x)
        "+33 810 123 456",  // shared cost
        "+34 901 123 456",  // shared cost
        "+49 800 1234567",  // toll free
        "021 8877 6655",    // a Tehran fixed line
    ] {
        let response = send(&t, phone, "198.51.100.1").await;
        assert_eq!(response.status, 400, "{phone}: {:?}", response.body);
        assert_eq!(
            response.error(),
            "This number cannot receive SMS codes; use a mobile number."
        );
    }
    assert!(t.sent_sms().is_empty());
    assert!(t.scan(&t.tables().otps).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fourteen_parallel_sends_from_one_ipv6_64_stop_at_the_network_cap() {
    let t = TestApp::new().await;

    let t = &t;
    let responses = join_all((0..14).map(|i| async move {
        // Fourteen addresses and numbers, one /64.
        let ip = format!("2001:db8:1:2:{:x}::1", i + 1);
        let phone = format!("0912{:07}", 1_000_000 + i);
        send(t, &phone, &ip).await
    }))
    .await;

    let sent = responses.iter().filter(|r| r.status == 200).count();
    assert_eq!(sent, 10, "the cap of one network");
    for refused in responses.iter().filter(|r| r.status != 200) {
        assert_budget_refusal(refused);
    }
    assert_eq!(t.sent_sms().len(), 10);
    assert_eq!(
        hits(t, "send#ip#2001:db8:1:2::/64#").await,
        vec![10],
        "one counter for the whole /64, no lost update"
    );
    let codes = t
        .scan(&t.tables().otps)
        .await
        .into_iter()
        .filter(|item| item.contains_key("code_hash"))
        .count();
    assert_eq!(codes, 10, "no code for a refused send");
    // Another /64 is another network.
    assert_eq!(send(t, "09121999999", "2001:db8:1:3::1").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn check_phone_lookups_are_capped_per_network_even_in_parallel() {
    let t = TestApp::new().await.patient().await;
    t.registered_user(PHONE, PHONE_E164).await;

    let responses = join_all((0..150).map(|_| send(&t, PHONE, "198.51.100.7"))).await;

    let answered = responses.iter().filter(|r| r.status == 200).count();
    let refusals: Vec<_> = responses
        .iter()
        .filter(|r| r.status != 200)
        .map(|r| (r.status, r.body.to_string()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        answered, 100,
        "CHECK_PHONE_LOOKUPS_PER_IP; refusals: {refusals:?}"
    );
    for answer in responses.iter().filter(|r| r.status == 200) {
        assert_eq!(answer.body, json!({ "exists": true }));
    }
    for refused in responses.iter().filter(|r| r.status != 200) {
        assert_budget_refusal(refused);
        assert!(
            refused.body.get("exists").is_none(),
            "a refusal says nothing"
        );
    }
    assert_eq!(
        hits(&t, "send#lookup#198.51.100.7#").await,
        vec![100],
        "a refused lookup is not counted"
    );
    assert_eq!(send(&t, PHONE, "198.51.100.8").await.status, 200);
}
