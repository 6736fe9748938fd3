//! The SMS circuit breaker (docs/security.md, "The SMS circuit breaker"): conversion counted per
//! range and country in the send's and the spend's transactions, states decided by the review
//! the attempts table's stream runs, and enforced on sends.

use std::collections::BTreeSet;

use auth_shared::breaker::{Change, Counts, Destination, Level};
use auth_tests::{
    CapturedLogs, DynamoDbGate, Endpoint, HttpStub, PASSWORD, PHONE, PHONE_E164, StubAnswer,
    TestApp, TestResponse, text,
};
use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::join_all;
use serde_json::{Value, json};

const SECRET: &str = "captcha-secret-0123456789abcdef0123456789";

/// The `i`th number of range A (PHONE's range, `+98910123`), as entered and in E.164.
fn in_a(i: usize) -> (String, String) {
    (format!("0910123{i:04}"), format!("+98910123{i:04}"))
}

/// The `i`th number of range B (`+98912456`).
fn in_b(i: usize) -> (String, String) {
    (format!("0912456{i:04}"), format!("+98912456{i:04}"))
}

/// A number of a range of its own (`+989130<i>…`), for honest traffic elsewhere in the country.
fn apart(i: usize) -> (String, String) {
    (format!("09130{i:02}1234"), format!("+989130{i:02}1234"))
}

fn range(name: &str) -> Destination {
    Destination::Range(name.to_owned())
}

const IRAN: Destination = Destination::Country(98);

/// A network (and /24 block) of its own for the `i`th request, so that only the budgets of
/// destinations bind.
fn network(i: usize) -> String {
    format!("198.{}.{}.1", 18 + i / 250, i % 250)
}

/// A bot check that accepts every token, asked for only under pressure, and the breaker on.
async fn enforcing(stub: &HttpStub, more: &[(&str, &str)]) -> TestApp {
    let mut env = vec![
        ("CAPTCHA_PROVIDER", "turnstile"),
        ("CAPTCHA_VERIFY_URL", stub.endpoint.as_str()),
        ("LOCAL_CAPTCHA_SECRET", SECRET),
        ("SMS_BREAKER_MODE", "enforce"),
        ("OTP_SENDS_PER_RANGE_PER_HOUR", "100"),
    ];
    env.extend_from_slice(more);
    TestApp::with_env(&env).await
}

async fn accepting_captcha() -> HttpStub {
    HttpStub::start(StubAnswer::json(
        200,
        "application/json",
        &json!({ "success": true }),
    ))
    .await
}

async fn check_phone(t: &TestApp, phone: &str, i: usize, token: Option<&str>) -> TestResponse {
    let mut body = json!({ "phone": phone });
    if let Some(token) = token {
        body["captcha_token"] = Value::from(token);
    }
    t.post_from(Endpoint::CheckPhone, body, &network(i)).await
}

/// Enters the last code texted to `e164`.
async fn enter(t: &TestApp, (phone, e164): &(String, String), i: usize) -> TestResponse {
    let code = t.last_code_for(e164).expect("a code texted");
    let body = json!({ "phone": phone, "code": code });
    t.post_from(Endpoint::Verify, body, &network(i)).await
}

/// Sends a sign-up code to each number (from networks `first..`), all answered 200.
async fn send_all(t: &TestApp, numbers: &[(String, String)], first: usize, token: Option<&str>) {
    for (offset, (phone, _)) in numbers.iter().enumerate() {
        let response = check_phone(t, phone, first + offset, token).await;
        assert_eq!(response.status, 200, "{phone}: {:?}", response.body);
    }
}

/// Honest traffic elsewhere in the country: `sent` codes to numbers of ranges of their own,
/// `entered` of them entered.
async fn honest_elsewhere(t: &TestApp, sent: usize, entered: usize) {
    let numbers: Vec<_> = (0..sent).map(apart).collect();
    send_all(t, &numbers, 500, None).await;
    for (i, number) in numbers.iter().take(entered).enumerate() {
        assert_eq!(enter(t, number, 500 + i).await.status, 200);
    }
}

/// A destination's counts over the window now, and the level its stored state has now.
async fn view(t: &TestApp, destination: &Destination) -> (Counts, Level) {
    let now = t.app.clock.now();
    let (counts, stored) = t
        .app
        .store
        .attempts
        .breaker_view(&t.app.config.sms_breaker, destination, now)
        .await
        .expect("the breaker's view");
    (counts, stored.state.level_at(now))
}

async fn counts(t: &TestApp, destination: &Destination) -> Counts {
    view(t, destination).await.0
}

async fn level(t: &TestApp, destination: &Destination) -> Level {
    view(t, destination).await.1
}

async fn review(t: &TestApp, destinations: &[Destination]) -> Vec<(String, Level, Level)> {
    let destinations: BTreeSet<Destination> = destinations.iter().cloned().collect();
    t.breaker_review(&destinations)
        .await
        .into_iter()
        .map(
            |Change {
                 destination,
                 old,
                 new,
                 ..
             }| (destination.name(), old, new),
        )
        .collect()
}

fn changed(destination: &str, old: Level, new: Level) -> (String, Level, Level) {
    (destination.to_owned(), old, new)
}

fn assert_captcha_required(response: &TestResponse) {
    assert_eq!(response.status, 400, "{:?}", response.body);
    assert_eq!(
        response.body["captcha_required"], true,
        "{:?}",
        response.body
    );
}

#[tokio::test]
async fn parallel_sends_and_entries_leave_exact_counts() {
    let t = TestApp::with_env(&[("OTP_SENDS_PER_RANGE_PER_HOUR", "100")])
        .await
        .patient()
        .await;
    let numbers: Vec<_> = (0..24).map(in_a).collect();
    let sent = join_all(
        numbers
            .iter()
            .enumerate()
            .map(|(i, (phone, _))| check_phone(&t, phone, i, None)),
    )
    .await;
    assert!(sent.iter().all(|response| response.status == 200));
    // Twelve codes, each entered twice at once: one entry each succeeds, and counts.
    let entries = join_all(
        numbers
            .iter()
            .take(12)
            .flat_map(|number| [number, number])
            .enumerate()
            .map(|(i, number)| enter(&t, number, 100 + i)),
    )
    .await;
    let successes = entries.iter().filter(|r| r.status == 200).count();
    assert_eq!(successes, 12);

    let exact = Counts {
        sent: 24,
        sent_to_new: 24,
        verified: 12,
        verified_new: 12,
    };
    assert_eq!(counts(&t, &range("+98910123")).await, exact);
    assert_eq!(counts(&t, &IRAN).await, exact);
    assert_eq!(counts(&t, &range("+98912456")).await, Counts::default());
    // The country's counts are spread over its shards.
    let country_items = t
        .scan(&t.tables().attempts)
        .await
        .iter()
        .filter(|item| text(item, "pk").is_some_and(|pk| pk.starts_with("conv#country:98~")))
        .count();
    assert!(country_items > 1, "{country_items} country item(s)");
}

#[tokio::test]
async fn a_code_entered_later_counts_in_the_bucket_of_its_send() {
    let t = TestApp::new().await;
    let number = in_a(1);
    // Sent a minute before a bucket (a quarter of the window) ends, entered two minutes later.
    let bucket = 3600 / 4;
    t.app
        .clock
        .advance((2 * bucket - 60 - t.app.clock.now() % bucket) % bucket);
    let sent_bucket = t.app.clock.now() / bucket;
    send_all(&t, std::slice::from_ref(&number), 0, None).await;
    t.app.clock.advance(120);
    assert_eq!(enter(&t, &number, 1).await.status, 200);
    let buckets: BTreeSet<String> = t
        .scan(&t.tables().attempts)
        .await
        .iter()
        .filter_map(|item| text(item, "pk"))
        .filter(|pk| pk.starts_with("conv#range:+98910123~"))
        .filter_map(|pk| pk.rsplit_once('#').map(|(_, bucket)| bucket.to_owned()))
        .collect();
    assert_eq!(buckets, BTreeSet::from([sent_bucket.to_string()]));
    assert_eq!(
        counts(&t, &range("+98910123")).await,
        Counts {
            sent: 1,
            sent_to_new: 1,
            verified: 1,
            verified_new: 1,
        }
    );
}

#[tokio::test]
async fn test_numbers_refused_sends_and_off_count_nothing() {
    let t = TestApp::with_env(&[("TEST_OTP_NUMBERS", "+989101230001=123456")]).await;
    send_all(&t, &[in_a(1)], 0, None).await;
    let body = json!({ "phone": in_a(1).0, "code": "123456" });
    assert_eq!(t.post(Endpoint::Verify, body).await.status, 200);
    // Refused by the cooldown: counted nowhere.
    send_all(&t, &[in_a(2)], 1, None).await;
    assert_eq!(check_phone(&t, &in_a(2).0, 1, None).await.status, 429);
    assert_eq!(
        counts(&t, &range("+98910123")).await,
        Counts {
            sent: 1,
            sent_to_new: 1,
            verified: 0,
            verified_new: 0,
        },
        "the test number's code counts neither as sent nor entered"
    );

    let off = TestApp::with_env(&[("SMS_BREAKER_MODE", "off")]).await;
    send_all(&off, &[in_a(3)], 0, None).await;
    assert_eq!(enter(&off, &in_a(3), 0).await.status, 200);
    let conversions = off
        .scan(&off.tables().attempts)
        .await
        .iter()
        .filter(|item| text(item, "pk").is_some_and(|pk| pk.starts_with("conv#")))
        .count();
    assert_eq!(conversions, 0);
}

#[tokio::test]
async fn an_honest_mix_never_leaves_normal() {
    let stub = accepting_captcha().await;
    let t = enforcing(&stub, &[]).await;
    // Forty codes to one range in an hour, four in five entered, reviewed as they come.
    let numbers: Vec<_> = (0..40).map(in_a).collect();
    for (batch, chunk) in numbers.chunks(5).enumerate() {
        send_all(&t, chunk, batch * 5, None).await;
        for (i, number) in chunk.iter().take(4).enumerate() {
            assert_eq!(enter(&t, number, batch * 5 + i).await.status, 200);
        }
        assert_eq!(review(&t, &[range("+98910123"), IRAN]).await, []);
    }
    assert_eq!(level(&t, &range("+98910123")).await, Level::Normal);
    assert_eq!(level(&t, &IRAN).await, Level::Normal);
    assert!(
        stub.requests().is_empty(),
        "no send asked for the bot check"
    );
}

#[tokio::test]
async fn a_pumped_range_is_challenged_then_blocked_and_others_stay_normal() {
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::INFO);
    let stub = accepting_captcha().await;
    let t = enforcing(&stub, &[]).await;
    honest_elsewhere(&t, 40, 32).await;
    let destinations = [range("+98910123"), range("+98912456"), IRAN];

    // Ten codes to range A, none entered: the minimum volume, and challenged.
    let pumped: Vec<_> = (0..30).map(in_a).collect();
    send_all(&t, &pumped[..10], 0, None).await;
    assert_eq!(
        review(&t, &destinations).await,
        [changed("range:+98910123", Level::Normal, Level::Challenge)]
    );
    assert_captcha_required(&check_phone(&t, &pumped[10].0, 10, None).await);
    // Range B and the country's other ranges need no check.
    send_all(&t, &[in_b(1)], 40, None).await;

    // With the bot check solved, ten more; still none entered: blocked.
    send_all(&t, &pumped[10..20], 10, Some("solved")).await;
    assert_eq!(
        review(&t, &destinations).await,
        [changed("range:+98910123", Level::Challenge, Level::Blocked)]
    );
    let refused = check_phone(&t, &pumped[20].0, 20, Some("solved")).await;
    assert_eq!(refused.status, 429, "{:?}", refused.body);
    let wait = refused.retry_after().expect("Retry-After");
    assert!((3500..=3600).contains(&wait), "{wait}");
    assert_eq!(
        t.sent_sms()
            .iter()
            .filter(|sms| sms["to"]
                .as_str()
                .is_some_and(|to| to.starts_with("+98910123")))
            .count(),
        20,
        "twenty pumped SMS went out before the block"
    );
    assert_eq!(level(&t, &range("+98912456")).await, Level::Normal);
    assert_eq!(level(&t, &IRAN).await, Level::Normal);
    send_all(&t, &[in_b(2)], 41, None).await;

    let reported: Vec<Value> = logs
        .audit_events()
        .into_iter()
        .filter(|event| event["event"] == "sms_breaker_changed")
        .collect();
    assert_eq!(reported.len(), 2, "{reported:?}");
    assert_eq!(reported[1]["destination"], "range:+98910123");
    assert_eq!(reported[1]["old_state"], "challenge");
    assert_eq!(reported[1]["new_state"], "blocked");
    assert_eq!(reported[1]["sent"], 20);
    assert_eq!(reported[1]["verified"], 0);
    assert_eq!(reported[1]["window_seconds"], 3600);
    assert_eq!(reported[1]["enforced"], true);
}

#[tokio::test]
async fn a_country_wide_run_challenges_the_country_and_never_blocks_it() {
    let stub = accepting_captcha().await;
    let t = enforcing(&stub, &[("ALLOWED_COUNTRY_CODES", "98,44")]).await;
    // One code to each of twenty ranges: no range reaches the minimum, the country does.
    let pumped: Vec<_> = (0..20).map(apart).collect();
    send_all(&t, &pumped, 0, None).await;
    let ranges: Vec<Destination> = pumped
        .iter()
        .map(|(_, e164)| range(&e164[..e164.len() - 4]))
        .collect();
    let mut destinations = ranges.clone();
    destinations.push(IRAN);
    assert_eq!(
        review(&t, &destinations).await,
        [changed("country:98", Level::Normal, Level::Challenge)]
    );
    for destination in &ranges {
        assert_eq!(level(&t, destination).await, Level::Normal);
    }
    assert_captcha_required(&check_phone(&t, &in_b(1).0, 30, None).await);
    let checked = check_phone(&t, &in_b(1).0, 31, Some("solved")).await;
    assert_eq!(checked.status, 200, "{:?}", checked.body);
    let elsewhere = check_phone(&t, "+44 7400 123456", 32, None).await;
    assert_eq!(elsewhere.status, 200, "another country is not held");
    // Past the blocking volume, still never entered: challenged, not blocked.
    let more: Vec<_> = (20..40).map(apart).collect();
    send_all(&t, &more, 40, Some("solved")).await;
    assert_eq!(review(&t, &[IRAN]).await, []);
    assert_eq!(level(&t, &IRAN).await, Level::Challenge);
}

#[tokio::test]
async fn returning_conversions_and_time_recover_a_destination() {
    let stub = accepting_captcha().await;
    let t = enforcing(&stub, &[]).await;
    honest_elsewhere(&t, 40, 32).await;
    let numbers: Vec<_> = (0..40).map(in_a).collect();
    send_all(&t, &numbers[..10], 0, None).await;
    review(&t, &[range("+98910123")]).await;
    assert_eq!(level(&t, &range("+98910123")).await, Level::Challenge);

    // Real users pass the check and enter their codes: half the window's codes entered.
    send_all(&t, &numbers[10..20], 10, Some("solved")).await;
    for (i, number) in numbers[10..20].iter().enumerate() {
        assert_eq!(enter(&t, number, 10 + i).await.status, 200);
    }
    assert_eq!(
        review(&t, &[range("+98910123")]).await,
        [changed("range:+98910123", Level::Challenge, Level::Normal)]
    );
    send_all(&t, &numbers[20..21], 20, None).await;

    // Blocked, with no review after it: it lapses to challenge after a window, then to normal.
    let pumped: Vec<_> = (0..22).map(in_b).collect();
    send_all(&t, &pumped[..20], 21, None).await;
    review(&t, &[range("+98912456")]).await;
    assert_eq!(level(&t, &range("+98912456")).await, Level::Blocked);
    assert_eq!(
        check_phone(&t, &pumped[20].0, 41, Some("solved"))
            .await
            .status,
        429
    );
    t.app.clock.advance(3600);
    assert_captcha_required(&check_phone(&t, &pumped[20].0, 42, None).await);
    send_all(&t, &pumped[20..21], 43, Some("solved")).await;
    t.app.clock.advance(3600);
    send_all(&t, &pumped[21..22], 44, None).await;
}

#[tokio::test]
async fn observe_refuses_nothing_but_reports() {
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::INFO);
    let stub = accepting_captcha().await;
    let t = enforcing(&stub, &[("SMS_BREAKER_MODE", "observe")]).await;
    honest_elsewhere(&t, 40, 32).await;
    let pumped: Vec<_> = (0..25).map(in_a).collect();
    send_all(&t, &pumped[..20], 0, None).await;
    assert_eq!(
        review(&t, &[range("+98910123"), IRAN]).await,
        [changed("range:+98910123", Level::Normal, Level::Blocked)]
    );
    // Blocked in observe: sent all the same, without a check.
    send_all(&t, &pumped[20..], 20, None).await;
    assert!(stub.requests().is_empty());
    let reported = logs
        .audit_events()
        .into_iter()
        .filter(|event| event["event"] == "sms_breaker_changed")
        .collect::<Vec<_>>();
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0]["enforced"], false);
}

async fn reset(t: &TestApp, phone: &str, token: Option<&str>) -> TestResponse {
    let mut body = json!({ "phone": phone });
    if let Some(token) = token {
        body["captcha_token"] = Value::from(token);
    }
    t.post_from(Endpoint::PasswordResetRequest, body, &network(60))
        .await
}

#[tokio::test]
async fn registered_numbers_keep_their_allowance_in_a_blocked_range() {
    let stub = accepting_captcha().await;
    let t = enforcing(&stub, &[]).await;
    t.registered_user(PHONE, PHONE_E164).await;
    honest_elsewhere(&t, 40, 32).await;
    let pumped: Vec<_> = (0..20).map(in_a).collect();
    send_all(&t, &pumped, 0, None).await;
    review(&t, &[range("+98910123")]).await;
    assert_eq!(level(&t, &range("+98910123")).await, Level::Blocked);

    // A reset code: the check is asked for, for a registered number as for any other, so the
    // answer tells nothing about the account.
    assert_captcha_required(&reset(&t, PHONE, None).await);
    assert_captcha_required(&reset(&t, "09101230999", None).await);
    let before = t.sent_sms().len();
    assert_eq!(reset(&t, PHONE, Some("solved")).await.status, 200);
    assert_eq!(t.sent_sms().len(), before + 1, "the owner gets the code");
    assert!(t.last_sms_to(PHONE_E164).is_some());
    assert_eq!(reset(&t, "09101230999", Some("solved")).await.status, 200);
    assert_eq!(
        t.sent_sms().len(),
        before + 1,
        "no SMS to a number without an account"
    );
    // Logging in with the password still works.
    assert_eq!(t.login_with(PHONE, PASSWORD).await.status, 200);
}

#[tokio::test]
async fn stand_ins_for_numbers_without_accounts_challenge_a_range_at_most() {
    let stub = accepting_captcha().await;
    let t = enforcing(&stub, &[]).await;
    honest_elsewhere(&t, 40, 32).await;
    // Honest sign-ups in range A: twenty codes, twelve entered.
    let honest: Vec<_> = (0..20).map(in_a).collect();
    send_all(&t, &honest, 0, None).await;
    for (i, number) in honest.iter().take(12).enumerate() {
        assert_eq!(enter(&t, number, i).await.status, 200);
    }
    let sms_before = t.sent_sms().len();
    // 110 reset requests for numbers of range A without an account, from as many networks: no
    // SMS, no budget of the range spent, but counted as sent (as a real code would be), which
    // takes the range's ratio below the blocking 10%.
    for i in 100..210 {
        let body = json!({ "phone": in_a(i).0 });
        let answer = t
            .post_from(Endpoint::PasswordResetRequest, body, &network(i))
            .await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    assert_eq!(t.sent_sms().len(), sms_before, "no SMS");
    let range_a = range("+98910123");
    assert_eq!(
        counts(&t, &range_a).await,
        Counts {
            sent: 130,
            sent_to_new: 20,
            verified: 12,
            verified_new: 12,
        }
    );
    assert_eq!(
        review(&t, &[range_a.clone(), IRAN]).await,
        [changed("range:+98910123", Level::Normal, Level::Challenge)],
        "a block is decided on codes to new numbers alone"
    );
    // Sign-ups there need the bot check, and pass with it.
    assert_captcha_required(&check_phone(&t, &in_a(40).0, 300, None).await);
    assert_eq!(
        check_phone(&t, &in_a(40).0, 301, Some("solved"))
            .await
            .status,
        200
    );
    assert_eq!(level(&t, &range_a).await, Level::Challenge);
}

#[tokio::test]
async fn a_review_that_meets_an_outage_is_logged_and_the_next_batch_reviews_again() {
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::INFO);
    let stub = accepting_captcha().await;
    let t = enforcing(&stub, &[]).await;
    let pumped: Vec<_> = (0..10).map(in_a).collect();
    send_all(&t, &pumped, 0, None).await;
    let batch = t.attempts_stream_records().await;

    // DynamoDB unreachable: the function logs it and fails no batch (run_sms_breaker would
    // panic on an error), and no state is written.
    let down = t.through(&DynamoDbGate::failing_after(0)).await;
    down.run_sms_breaker(batch).await;
    assert!(
        logs.text().contains("breaker review failed"),
        "{}",
        logs.text()
    );
    assert_eq!(level(&t, &range("+98910123")).await, Level::Normal);

    // The next count's batch reviews the range again, on the same counts and one more.
    send_all(&t, &[in_a(10)], 10, Some("solved")).await;
    let next = t.attempts_stream_records().await;
    t.run_sms_breaker(next).await;
    assert_eq!(level(&t, &range("+98910123")).await, Level::Challenge);

    // A review cut off after the state's first shard: the next one writes the others again.
    let shard = |n: u32| format!("breaker#range:+98910123~{n}");
    let attempts = &t.tables().attempts;
    assert!(
        t.get_item(attempts, "pk", &shard(3)).await.is_some(),
        "every shard written"
    );
    t.dynamodb
        .delete_item()
        .table_name(attempts)
        .key("pk", AttributeValue::S(shard(3)))
        .send()
        .await
        .expect("delete a shard");
    assert_eq!(
        review(&t, &[range("+98910123")]).await,
        [],
        "no change to report"
    );
    let state_of = |item: Option<auth_shared::store::Item>| {
        let mut item = item.expect("the shard's item");
        item.remove("pk");
        item
    };
    let first = state_of(t.get_item(attempts, "pk", &shard(0)).await);
    assert_eq!(state_of(t.get_item(attempts, "pk", &shard(3)).await), first);
    assert_eq!(text(&first, "level"), Some("challenge"));
}

#[tokio::test]
async fn a_stream_batch_names_the_destinations_it_counted_in() {
    let t = TestApp::new().await;
    send_all(&t, &[in_a(1), in_b(1)], 0, None).await;
    let records = t.attempts_stream_records().await;
    let event: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_value(json!({ "Records": records })).expect("a stream batch");
    let touched = auth_shared::breaker::touched_destinations(&event);
    let expected: BTreeSet<Destination> = [range("+98910123"), range("+98912456"), IRAN].into();
    assert_eq!(touched, expected, "send counters and codes are passed over");
    // Reviewed as the function does it: too few codes for a decision.
    assert_eq!(t.breaker_review(&touched).await, []);
}
