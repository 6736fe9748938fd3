//! SMS pumping defence: the bot check before a code, the reserve for registered numbers, the
//! per-range budget, the sharded country and global budgets, and the pressure events.

use auth_tests::{
    CLIENT_IP, CapturedLogs, Endpoint, HttpStub, PASSWORD, PHONE, PHONE_E164, StubAnswer, TestApp,
    TestResponse, num, text,
};
use futures::future::join_all;
use serde_json::{Value, json};

const SECRET: &str = "captcha-secret-0123456789abcdef0123456789";

fn verdict(success: bool) -> StubAnswer {
    StubAnswer::json(200, "application/json", &json!({ "success": success }))
}

/// The settings of the bot check (`when`: `always` or `under-pressure`) against `stub`.
fn captcha<'a>(stub: &'a HttpStub, when: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("CAPTCHA_PROVIDER", "turnstile"),
        ("CAPTCHA_VERIFY_URL", stub.endpoint.as_str()),
        ("CAPTCHA_WHEN", when),
        ("LOCAL_CAPTCHA_SECRET", SECRET),
    ]
}

/// A test app with the bot check on.
async fn with_captcha(stub: &HttpStub, when: &str, more: &[(&str, &str)]) -> TestApp {
    let mut env = captcha(stub, when).to_vec();
    env.extend_from_slice(more);
    TestApp::with_env(&env).await
}

async fn check_phone(t: &TestApp, phone: &str, token: Option<&str>, ip: &str) -> TestResponse {
    let mut body = json!({ "phone": phone });
    if let Some(token) = token {
        body["captcha_token"] = Value::from(token);
    }
    t.post_from(Endpoint::CheckPhone, body, ip).await
}

/// A sign-up code to the `i`th new number, in a range of its own, from a network of its own:
/// only the shared budgets bind.
async fn send_apart(t: &TestApp, i: usize, token: Option<&str>) -> TestResponse {
    check_phone(
        t,
        &format!("0912{i:03}0000"),
        token,
        &format!("203.0.113.{i}"),
    )
    .await
}

fn assert_captcha_required(response: &TestResponse, error: &str) {
    assert_eq!(response.status, 400, "{:?}", response.body);
    assert_eq!(
        response.body,
        json!({ "error": error, "captcha_required": true })
    );
}

const MISSING: &str = "Complete the captcha and send its token as 'captcha_token'.";
const REFUSED: &str = "The captcha was not accepted. Solve it again and send the new token.";

/// The attempts table's items whose key starts with `prefix`.
async fn items(t: &TestApp, prefix: &str) -> Vec<aws_sdk_dynamodb::types::AttributeValue> {
    t.scan(&t.tables().attempts)
        .await
        .into_iter()
        .filter_map(|item| item.get("pk").cloned())
        .filter(|pk| pk.as_s().is_ok_and(|pk| pk.starts_with(prefix)))
        .collect()
}

/// Two registered users (`PHONE` and `OTHER`), then an app over their tables with `overrides`.
/// One budget shard in both, so that they count the global budgets in the same items.
async fn two_users_then(overrides: &[(&str, &str)]) -> TestApp {
    let plain = TestApp::with_env(&[("OTP_SEND_BUDGET_SHARDS", "1")]).await;
    plain.registered_user(PHONE, PHONE_E164).await;
    plain.registered_user(OTHER, OTHER_E164).await;
    let mut env = vec![("OTP_SEND_BUDGET_SHARDS", "1")];
    env.extend_from_slice(overrides);
    plain.reconfigured(&env).await
}

const OTHER: &str = "09127654321";
const OTHER_E164: &str = "+989127654321";

/// The sum of the hits of the counters whose key starts with `prefix`.
async fn hits(t: &TestApp, prefix: &str) -> u64 {
    t.scan(&t.tables().attempts)
        .await
        .iter()
        .filter(|item| text(item, "pk").is_some_and(|pk| pk.starts_with(prefix)))
        .filter_map(|item| num(item, "hits"))
        .sum()
}

#[tokio::test]
async fn with_the_check_always_on_a_new_number_needs_an_accepted_token() {
    let stub = HttpStub::start(verdict(true)).await;
    let t = with_captcha(&stub, "always", &[]).await;

    assert_captcha_required(&check_phone(&t, PHONE, None, "198.51.100.1").await, MISSING);
    assert_captcha_required(
        &check_phone(&t, PHONE, Some(" "), "198.51.100.1").await,
        MISSING,
    );
    assert!(stub.requests().is_empty(), "nothing to verify");
    assert!(items(&t, "send#phone").await.is_empty(), "no send counted");

    let sent = check_phone(&t, PHONE, Some("token-1"), "198.51.100.1").await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    assert_eq!(t.sent_sms().len(), 1);
    let verified = stub.requests();
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].method, "POST");
    assert_eq!(
        String::from_utf8_lossy(&verified[0].body),
        format!("secret={SECRET}&response=token-1&remoteip=198.51.100.1")
    );

    // A registered number needs no token: nothing is sent to it.
    let plain = t.reconfigured(&[]).await;
    plain.registered_user(OTHER, OTHER_E164).await;
    let known = check_phone(&t, OTHER, None, "198.51.100.1").await;
    assert_eq!(known.status, 200);
    assert_eq!(known.body, json!({ "exists": true }));
}

#[tokio::test]
async fn a_refused_token_spends_no_counter_and_sends_nothing() {
    let stub = HttpStub::start(verdict(false)).await;
    let t = with_captcha(&stub, "always", &[]).await;
    let refused = check_phone(&t, PHONE, Some("bot-token"), "198.51.100.1").await;
    assert_captcha_required(&refused, REFUSED);
    let too_long = check_phone(&t, PHONE, Some(&"x".repeat(4097)), "198.51.100.1").await;
    assert_eq!(too_long.status, 400);
    assert_eq!(
        too_long.error(),
        "Invalid field 'captcha_token': at most 4096 characters."
    );
    assert_eq!(
        stub.requests().len(),
        1,
        "an over-long token is not sent on"
    );
    assert!(t.sent_sms().is_empty());
    assert!(
        t.scan(&t.tables().attempts).await.is_empty(),
        "checked before any counter, the lookup's included"
    );
    assert!(t.scan(&t.tables().otps).await.is_empty());
}

#[tokio::test]
async fn the_provider_down_or_failing_is_a_503_and_no_sms() {
    let stub = HttpStub::start(StubAnswer::json(500, "text/plain", &json!("oops"))).await;
    let t = with_captcha(&stub, "always", &[]).await;
    let failing = check_phone(&t, PHONE, Some("token"), "198.51.100.1").await;
    assert_eq!(failing.status, 503, "{:?}", failing.body);
    assert_eq!(failing.retry_after(), Some(1));

    stub.answer_with(StubAnswer::json(
        200,
        "application/json",
        &json!({ "success": false, "error-codes": ["invalid-input-secret"] }),
    ));
    let misconfigured = check_phone(&t, PHONE, Some("token"), "198.51.100.1").await;
    assert_eq!(
        misconfigured.status, 503,
        "our secret refused is not the user's fault"
    );

    // Nothing listens on port 9 of this machine.
    let down = TestApp::with_env(&[
        ("CAPTCHA_PROVIDER", "hcaptcha"),
        ("CAPTCHA_VERIFY_URL", "http://127.0.0.1:9/siteverify"),
        ("CAPTCHA_WHEN", "always"),
        ("LOCAL_CAPTCHA_SECRET", SECRET),
    ])
    .await;
    let unreachable = check_phone(&down, PHONE, Some("token"), "198.51.100.1").await;
    assert_eq!(unreachable.status, 503);
    for app in [&t, &down] {
        assert!(app.sent_sms().is_empty());
        assert!(app.scan(&app.tables().otps).await.is_empty());
    }
}

#[tokio::test]
async fn reset_and_login_code_requests_need_the_token_whether_or_not_the_number_has_an_account() {
    let stub = HttpStub::start(verdict(true)).await;
    let plain = TestApp::new().await;
    plain.registered_user(PHONE, PHONE_E164).await;
    let before = plain.sent_sms().len();
    let t = plain.reconfigured(&captcha(&stub, "always")).await;
    for endpoint in [Endpoint::PasswordResetRequest, Endpoint::LoginOtpRequest] {
        for phone in [PHONE, OTHER] {
            let response = t.post(endpoint, json!({ "phone": phone })).await;
            assert_captcha_required(&response, MISSING);
        }
    }
    assert_eq!(t.sent_sms().len(), before);
    let sent = t
        .post(
            Endpoint::PasswordResetRequest,
            json!({ "phone": PHONE, "captcha_token": "token" }),
        )
        .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    assert_eq!(t.sent_sms().len(), before + 1);
}

#[tokio::test]
async fn a_change_of_number_needs_the_token() {
    let stub = HttpStub::start(verdict(true)).await;
    let plain = TestApp::new().await;
    plain.registered_user(PHONE, PHONE_E164).await;
    let t = plain.reconfigured(&captcha(&stub, "always")).await;
    let tokens = t.login(PHONE).await;
    let access = tokens["access"].as_str().unwrap();
    let body = json!({ "new_phone": OTHER, "password": PASSWORD });
    let refused = t
        .authed(Endpoint::PhoneChangeRequest, "POST", access, Some(body))
        .await;
    assert_captcha_required(&refused, MISSING);
    let body = json!({ "new_phone": OTHER, "password": PASSWORD, "captcha_token": "token" });
    let sent = t
        .authed(Endpoint::PhoneChangeRequest, "POST", access, Some(body))
        .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    assert!(t.last_sms_to(OTHER_E164).is_some());
}

#[tokio::test]
async fn under_pressure_the_check_starts_once_a_budget_is_half_used() {
    let stub = HttpStub::start(verdict(true)).await;
    let t = with_captcha(
        &stub,
        "under-pressure",
        &[("OTP_SENDS_GLOBAL_PER_HOUR", "10")],
    )
    .await;
    // A registered user first (one send), then four numbers in four ranges from four networks:
    // only the global budget is shared, and is half used.
    t.registered_user(PHONE, PHONE_E164).await;
    for i in 1..5 {
        let phone = format!("0912{i}001234");
        let response = check_phone(&t, &phone, None, &format!("198.51.100.{i}")).await;
        assert_eq!(response.status, 200, "ordinary users see no check");
    }
    assert!(stub.requests().is_empty());
    let pressed = check_phone(&t, "09129001234", None, "198.51.100.9").await;
    assert_captcha_required(&pressed, MISSING);
    let passed = check_phone(&t, "09129001234", Some("token"), "198.51.100.9").await;
    assert_eq!(passed.status, 200, "{:?}", passed.body);
    assert_eq!(stub.requests().len(), 1);
    assert_eq!(t.sent_sms().len(), 6);

    // Codes to registered numbers draw on the reserve, which is not under pressure.
    let reset = t
        .post(Endpoint::PasswordResetRequest, json!({ "phone": PHONE }))
        .await;
    assert_eq!(reset.status, 200, "{:?}", reset.body);
    assert!(t.last_sms_to(PHONE_E164).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_parallel_sends_to_one_range_stop_at_its_budget() {
    let t = TestApp::new().await.patient().await;
    let t = &t;
    // A registered user of the range (one send), then thirty numbers of it from thirty networks.
    t.registered_user("09123459999", "+989123459999").await;
    let responses = join_all((0..30).map(|i| async move {
        let phone = format!("09123450{i:03}");
        check_phone(t, &phone, None, &format!("203.0.113.{i}")).await
    }))
    .await;
    let sent = responses.iter().filter(|r| r.status == 200).count();
    assert_eq!(sent, 19, "OTP_SENDS_PER_RANGE_PER_HOUR is 20");
    for refused in responses.iter().filter(|r| r.status != 200) {
        assert_eq!(refused.status, 429, "{:?}", refused.body);
    }
    assert_eq!(hits(t, "send#range#+98912345#").await, 20);
    assert_eq!(t.sent_sms().len(), 20);

    // The next range, and a code to a registered number of this one, are not held.
    let next = check_phone(t, "09123460001", None, "203.0.113.200").await;
    assert_eq!(next.status, 200, "{:?}", next.body);
    let reset = t
        .post_from(
            Endpoint::PasswordResetRequest,
            json!({ "phone": "09123459999" }),
            "203.0.113.201",
        )
        .await;
    assert_eq!(reset.status, 200);
    assert!(
        t.last_sms_to("+989123459999").is_some(),
        "strangers filling a range cannot keep its registered users out"
    );
}

#[tokio::test]
async fn registered_users_still_get_codes_when_new_numbers_spent_the_budgets() {
    // No floor for recently proved numbers here: the reserve alone is under test.
    let t = two_users_then(&[
        ("OTP_SENDS_GLOBAL_PER_HOUR", "4"),
        ("OTP_RESERVED_SENDS_GLOBAL_PER_HOUR", "1"),
        ("OTP_PROVEN_FLOOR_PER_DAY", "0"),
    ])
    .await;
    let before = t.sent_sms().len();
    for (i, phone) in ["09121110000", "09122220000"].iter().enumerate() {
        let ip = format!("198.51.100.{i}");
        assert_eq!(check_phone(&t, phone, None, &ip).await.status, 200);
    }
    let spent = check_phone(&t, "09123330000", None, "198.51.100.3").await;
    assert_eq!(spent.status, 429, "the new numbers' global budget is spent");

    let reset = t
        .post(Endpoint::PasswordResetRequest, json!({ "phone": PHONE }))
        .await;
    assert_eq!(reset.status, 200);
    assert!(t.last_sms_to(PHONE_E164).is_some(), "the reserve sends it");
    assert_eq!(t.sent_sms().len(), before + 3);
    assert_eq!(hits(&t, "send#reserved-global#").await, 1);

    // The reserve has a budget of its own: spent, it sends nothing more (the answer stays the
    // same, since it must not tell whether the number has an account).
    let again = t
        .post(Endpoint::PasswordResetRequest, json!({ "phone": OTHER }))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(
        t.sent_sms().len(),
        before + 3,
        "no SMS from a spent reserve"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sharded_budget_holds_in_total_under_a_parallel_burst() {
    let t = TestApp::with_env(&[
        ("OTP_SENDS_GLOBAL_PER_HOUR", "40"),
        ("OTP_SEND_BUDGET_SHARDS", "4"),
        ("OTP_SENDS_PER_COUNTRY_PER_DAY", "1000"),
    ])
    .await
    .patient()
    .await;
    let t = &t;
    // Eighty numbers in eighty ranges from eighty networks: only the global budget binds.
    let responses = join_all((0..80).map(|i| send_apart(t, i, None))).await;
    let sent = responses.iter().filter(|r| r.status == 200).count();
    for refused in responses.iter().filter(|r| r.status != 200) {
        assert_eq!(refused.status, 429, "{:?}", refused.body);
    }
    assert!(sent <= 40, "{sent} sent: more than the budget");
    assert_eq!(t.sent_sms().len(), sent);
    let shards = items(t, "send#global#all~").await;
    assert_eq!(shards.len(), 4, "four shards of ten: {shards:?}");
    assert_eq!(hits(t, "send#global#all~").await, sent as u64);

    // Sent one after another until refused twice in a row: the whole budget is usable.
    let mut total = sent;
    let mut refused_in_a_row = 0;
    for i in 80..200 {
        match send_apart(t, i, None).await.status {
            200 => {
                total += 1;
                refused_in_a_row = 0;
            }
            _ => refused_in_a_row += 1,
        }
        if total == 40 || refused_in_a_row == 10 {
            break;
        }
    }
    assert_eq!(total, 40, "every shard's share is usable");
    assert_eq!(hits(t, "send#global#all~").await, 40);
}

#[tokio::test]
async fn budget_pressure_is_reported_at_half_and_nine_tenths_once_per_window() {
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::INFO);
    let t = TestApp::with_env(&[
        ("OTP_SENDS_GLOBAL_PER_HOUR", "10"),
        ("OTP_SENDS_PER_IP", "100"),
    ])
    .await;
    for i in 0..10 {
        let phone = format!("0912{i}001234");
        assert_eq!(
            check_phone(&t, &phone, None, "198.51.100.1").await.status,
            200
        );
    }
    assert_eq!(
        check_phone(&t, "09129991234", None, "198.51.100.1")
            .await
            .status,
        429
    );
    let pressure: Vec<Value> = logs
        .audit_events()
        .into_iter()
        .filter(|event| event["event"] == "sms_budget_pressure")
        .collect();
    let reported: Vec<(String, u64)> = pressure
        .iter()
        .map(|event| {
            (
                event["budget"].as_str().unwrap().to_owned(),
                event["percent"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reported,
        [("global".to_owned(), 50), ("global".to_owned(), 90)],
        "{pressure:?}"
    );
    assert_eq!(pressure[0]["budget_subject"], "all");
    assert_eq!(pressure[0]["client_ip"], "198.51.100.1");
    assert_eq!(items(&t, "pressure#global#all#").await.len(), 2);
}

#[tokio::test]
async fn every_function_that_sends_codes_reports_the_pressure_it_causes() {
    let plain = TestApp::with_env(&[("OTP_SEND_BUDGET_SHARDS", "1")]).await;
    plain.registered_user(PHONE, PHONE_E164).await;
    let tokens = plain.login(PHONE).await;
    let small = [
        ("OTP_SEND_BUDGET_SHARDS", "1"),
        ("OTP_SENDS_GLOBAL_PER_HOUR", "4"),
        ("OTP_RESERVED_SENDS_GLOBAL_PER_HOUR", "2"),
    ];
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::INFO);
    // Each function in an instance of its own, as deployed.
    let reset = plain.reconfigured(&small).await;
    let body = json!({ "phone": PHONE });
    assert_eq!(
        reset
            .post(Endpoint::PasswordResetRequest, body.clone())
            .await
            .status,
        200
    );
    let login_code = plain.reconfigured(&small).await;
    assert_eq!(
        login_code
            .post(Endpoint::LoginOtpRequest, body)
            .await
            .status,
        200
    );
    let change = plain.reconfigured(&small).await;
    let access = tokens["access"].as_str().unwrap();
    let body = json!({ "new_phone": OTHER, "password": PASSWORD });
    let moved = change
        .authed(Endpoint::PhoneChangeRequest, "POST", access, Some(body))
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);

    let reported: Vec<(String, u64)> = logs
        .audit_events()
        .into_iter()
        .filter(|event| event["event"] == "sms_budget_pressure")
        .map(|event| {
            let budget = event["budget"].as_str().unwrap().to_owned();
            (budget, event["percent"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        reported,
        [
            ("reserved-global".to_owned(), 50),
            ("reserved-global".to_owned(), 90),
            ("global".to_owned(), 50),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parallel_burst_cannot_pass_the_unchecked_half_without_tokens() {
    let stub = HttpStub::start(verdict(true)).await;
    let t = with_captcha(
        &stub,
        "under-pressure",
        &[("OTP_SENDS_GLOBAL_PER_HOUR", "10")],
    )
    .await
    .patient()
    .await;
    let t = &t;
    // Thirty numbers in thirty ranges from thirty networks, all at once, at a window's start.
    let responses = join_all((0..30).map(|i| send_apart(t, i, None))).await;
    let sent = responses.iter().filter(|r| r.status == 200).count();
    assert_eq!(sent, 5, "half of the budget, counted atomically");
    for asked in responses.iter().filter(|r| r.status != 200) {
        assert_captcha_required(asked, MISSING);
    }
    assert_eq!(hits(t, "send#global#").await, 5);

    // With tokens, the other half.
    let responses = join_all((30..45).map(|i| send_apart(t, i, Some("token")))).await;
    assert_eq!(responses.iter().filter(|r| r.status == 200).count(), 5);
    for refused in responses.iter().filter(|r| r.status != 200) {
        assert_eq!(refused.status, 429, "spent: no token helps");
    }
    assert_eq!(t.sent_sms().len(), 10);
}

#[tokio::test]
async fn a_step_up_code_is_sent_when_strangers_spent_the_reserve() {
    let t = two_users_then(&[
        ("OTP_RESERVED_SENDS_GLOBAL_PER_HOUR", "1"),
        ("ACCOUNT_MAX_FAILURES", "2"),
        ("LOCKOUT_MAX_FAILURES", "100"),
    ])
    .await;
    // A stranger spends the reserve on another user's reset.
    let reset = t
        .post(Endpoint::PasswordResetRequest, json!({ "phone": OTHER }))
        .await;
    assert_eq!(reset.status, 200);
    assert_eq!(hits(&t, "send#reserved-global#").await, 1);
    // Strangers' wrong passwords put the owner's account into step-up.
    for _ in 0..2 {
        let wrong = t
            .post(
                Endpoint::Login,
                json!({ "phone": PHONE, "password": "not the password" }),
            )
            .await;
        assert_eq!(wrong.status, 401);
    }
    let before = t.sent_sms().len();
    let owner = t
        .post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": auth_tests::PASSWORD }),
        )
        .await;
    assert_eq!(owner.status, 401, "{:?}", owner.body);
    assert_eq!(owner.body["code_required"], true);
    assert_eq!(t.sent_sms().len(), before + 1, "the step-up code is sent");
}

/// Step-up after three failures, no back-off on the way there.
const STEP_UP_AFTER_THREE: [(&str, &str); 2] = [
    ("ACCOUNT_MAX_FAILURES", "3"),
    ("ACCOUNT_BACKOFF_AFTER_FAILURES", "50"),
];

/// Puts `PHONE`'s account into step-up with wrong passwords from three networks.
async fn push_into_step_up(t: &TestApp) {
    for i in 0..3 {
        let body = json!({ "phone": PHONE, "password": "a stranger's guess" });
        let wrong = t
            .post_from(Endpoint::Login, body, &format!("192.0.2.{i}"))
            .await;
        assert_eq!(wrong.status, 401, "{:?}", wrong.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn step_up_codes_ask_the_bot_check_and_stop_at_the_accounts_allowance() {
    let stub = HttpStub::start(verdict(true)).await;
    let t = with_captcha(&stub, "always", &STEP_UP_AFTER_THREE)
        .await
        .patient()
        .await;
    let token = "token";
    let registered = check_phone(&t, PHONE, Some(token), "203.0.113.1").await;
    let code = t.last_code_for(PHONE_E164).unwrap();
    let body = json!({ "phone": PHONE, "code": code, "verification_id": registered.body["verification_id"] });
    let verified = t.post_from(Endpoint::Verify, body, "203.0.113.1").await;
    let token_body =
        auth_tests::register_body(verified.body["registration_token"].as_str().unwrap());
    assert_eq!(
        t.post_from(Endpoint::Register, token_body, "203.0.113.1")
            .await
            .status,
        201
    );
    push_into_step_up(&t).await;
    let sent_before = t.sent_sms().len();

    // Without a token: the check is asked for, nothing is sent.
    let login = json!({ "phone": PHONE, "password": PASSWORD });
    assert_captcha_required(&t.post(Endpoint::Login, login.clone()).await, MISSING);
    assert_eq!(t.sent_sms().len(), sent_before);

    // With one, from eight networks at once: the account's allowance (2 a day) holds.
    let mut with_token = login.clone();
    with_token["captcha_token"] = json!(token);
    let t = &t;
    let answers = join_all((0..8).map(|i| {
        let body = with_token.clone();
        async move {
            t.post_from(Endpoint::Login, body, &format!("198.51.100.{}", 40 + i))
                .await
        }
    }))
    .await;
    let required = answers
        .iter()
        .filter(|answer| answer.status == 401 && answer.body["code_required"] == true)
        .count();
    let refused = answers.iter().filter(|answer| answer.status == 429).count();
    assert_eq!((required, refused), (2, 6), "{answers:?}");
    assert_eq!(t.sent_sms().len(), sent_before + 2);
    assert_eq!(hits(t, "send#step-up#").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_every_shared_budget_spent_step_up_codes_stay_within_the_allowance() {
    let stub = HttpStub::start(verdict(true)).await;
    let mut env = STEP_UP_AFTER_THREE.to_vec();
    env.extend([
        ("OTP_RESERVED_SENDS_GLOBAL_PER_HOUR", "0"),
        ("OTP_SENDS_GLOBAL_PER_HOUR", "0"),
        ("OTP_PROVEN_FLOOR_PER_DAY", "5"),
        ("OTP_RESEND_SECONDS", "0"),
    ]);
    let plain = TestApp::new().await;
    // The owner signs up from CLIENT_IP, before the budgets are spent.
    plain.registered_user(PHONE, PHONE_E164).await;
    let mut settings = captcha(&stub, "always").to_vec();
    settings.extend(env);
    let t = plain.reconfigured(&settings).await;
    push_into_step_up(&t).await;
    let sent_before = t.sent_sms().len();
    let login = json!({ "phone": PHONE, "password": PASSWORD, "captcha_token": "token" });
    let t = &t;
    let burst = |ips: Vec<String>| {
        let login = login.clone();
        async move {
            join_all(ips.into_iter().map(|ip| {
                let body = login.clone();
                async move { t.post_from(Endpoint::Login, body, &ip).await }
            }))
            .await
        }
    };

    // From networks that never proved the number: the reserve is spent and no floor is theirs.
    let strangers = burst((0..8).map(|i| format!("198.51.100.{}", 40 + i)).collect()).await;
    assert!(
        strangers.iter().all(|answer| answer.status == 429),
        "{strangers:?}"
    );
    assert_eq!(
        t.sent_sms().len(),
        sent_before,
        "nothing outside the ceilings"
    );
    // From the owner's own network, eight at once: the floor would allow five, the account's
    // allowance allows two.
    let owners = burst(vec![auth_tests::CLIENT_IP.to_owned(); 8]).await;
    let required = owners
        .iter()
        .filter(|answer| answer.status == 401 && answer.body["code_required"] == true)
        .count();
    assert_eq!(required, 2, "{owners:?}");
    assert_eq!(t.sent_sms().len(), sent_before + 2);
}

#[tokio::test]
async fn a_spent_reserve_stops_step_up_codes_too() {
    let t = two_users_then(&[
        ("OTP_RESERVED_SENDS_GLOBAL_PER_HOUR", "0"),
        ("OTP_PROVEN_FLOOR_PER_DAY", "0"),
        STEP_UP_AFTER_THREE[0],
        STEP_UP_AFTER_THREE[1],
    ])
    .await;
    push_into_step_up(&t).await;
    let sent_before = t.sent_sms().len();

    let login = t
        .post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": PASSWORD }),
        )
        .await;

    assert_eq!(login.status, 429, "{:?}", login.body);
    assert_eq!(
        t.sent_sms().len(),
        sent_before,
        "no SMS outside the ceilings"
    );
}

#[tokio::test]
async fn a_number_proved_lately_keeps_a_small_floor_when_the_reserve_is_spent() {
    let t = TestApp::with_env(&[
        ("OTP_RESERVED_SENDS_GLOBAL_PER_HOUR", "0"),
        ("OTP_RESEND_SECONDS", "0"),
        ("OTP_SEND_BUDGET_SHARDS", "1"),
    ])
    .await;
    // One owner last proved the number 31 days ago, the other just now.
    t.registered_user(OTHER, OTHER_E164).await;
    t.app.clock.advance(31 * 86_400);
    t.registered_user(PHONE, PHONE_E164).await;
    let sent_before = t.sent_sms().len();

    let t = &t;
    let reset = |phone: &'static str, ip: &'static str| async move {
        let answer = t
            .post_from(
                Endpoint::PasswordResetRequest,
                json!({ "phone": phone }),
                ip,
            )
            .await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    };
    // Both signed up from CLIENT_IP; the older proof (and its network's mark) has lapsed.
    reset(OTHER, CLIENT_IP).await;
    assert_eq!(t.sent_sms().len(), sent_before, "the reserve is spent");
    // A stranger naming the active number does not reach its floor.
    reset(PHONE, "198.51.100.9").await;
    assert_eq!(
        t.sent_sms().len(),
        sent_before,
        "not from a stranger's network"
    );
    for _ in 0..3 {
        reset(PHONE, CLIENT_IP).await;
    }
    assert_eq!(
        t.sent_sms().len(),
        sent_before + 2,
        "OTP_PROVEN_FLOOR_PER_DAY, then nothing"
    );
    assert_eq!(hits(t, "send#floor#").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strangers_filling_the_phones_caps_leave_the_owners_network_its_codes() {
    let t = TestApp::with_env(&[("OTP_RESEND_SECONDS", "0")])
        .await
        .patient()
        .await;
    // The owner signed up from CLIENT_IP, which proved the number.
    t.registered_user(PHONE, PHONE_E164).await;
    let sent_before = t.sent_sms().len();

    // Strangers ask for reset and login codes to the number from five networks at once.
    let t = &t;
    let requests = (0..20).map(|i| async move {
        let endpoint = if i % 2 == 0 {
            Endpoint::PasswordResetRequest
        } else {
            Endpoint::LoginOtpRequest
        };
        let ip = format!("198.51.100.{}", i % 5);
        let answer = t.post_from(endpoint, json!({ "phone": PHONE }), &ip).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    });
    join_all(requests).await;
    assert_eq!(
        t.sent_sms().len(),
        sent_before + 4,
        "the phone's hourly ceiling for networks that never proved it (5, the sign-up's among them)"
    );

    let owner = t
        .post(Endpoint::PasswordResetRequest, json!({ "phone": PHONE }))
        .await;
    assert_eq!(owner.status, 200);
    assert_eq!(
        t.sent_sms().len(),
        sent_before + 5,
        "the owner's request sends"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reset_and_login_code_requests_are_capped_per_ipv4_24_and_ipv6_48() {
    let t = TestApp::with_env(&[("OTP_SENDS_PER_IP_BLOCK_PER_HOUR", "5")]).await;
    let t = &t;
    for addresses in [
        (0..8)
            .map(|i| format!("198.51.100.{}", 10 + i))
            .collect::<Vec<_>>(),
        (0..8)
            .map(|i| format!("2001:db8:77:{:x}::1", i + 1))
            .collect(),
    ] {
        // Eight networks of one block, at once, each for a number of its own.
        let answers = join_all(addresses.iter().enumerate().map(|(i, ip)| async move {
            let phone = format!("0912555{i:04}");
            t.post_from(
                Endpoint::PasswordResetRequest,
                json!({ "phone": phone }),
                ip,
            )
            .await
        }))
        .await;
        let statuses: Vec<u16> = answers.iter().map(|answer| answer.status).collect();
        assert_eq!(
            statuses.iter().filter(|&&s| s == 200).count(),
            5,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|&&s| s == 429).count(),
            3,
            "{statuses:?}"
        );
    }
    let other_block = t
        .post_from(
            Endpoint::LoginOtpRequest,
            json!({ "phone": PHONE }),
            "198.51.101.10",
        )
        .await;
    assert_eq!(other_block.status, 200, "another /24 is another block");
}

/// A parallel burst whose budget reads were all taken before any of its sends counted still
/// reports the budget's pressure: the sends it left refused report what their refusals showed
/// (the estimate of a counted send, its read plus one, may lag the burst).
#[tokio::test]
async fn a_parallel_burst_that_fills_a_budget_still_reports_its_pressure() {
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::INFO);
    let t = TestApp::with_env(&[
        ("OTP_SENDS_GLOBAL_PER_HOUR", "10"),
        ("OTP_SEND_BUDGET_SHARDS", "1"),
    ])
    .await
    .patient()
    .await;
    let t = &t;

    let responses = join_all((0..30).map(|i| send_apart(t, i, None))).await;

    let sent = responses.iter().filter(|r| r.status == 200).count();
    assert!(sent <= 10, "{sent} sent past a budget of 10");
    assert!(
        responses.iter().any(|r| r.status == 429),
        "the budget refused the rest"
    );
    let mut reported: Vec<u64> = logs
        .audit_events()
        .into_iter()
        .filter(|event| event["event"] == "sms_budget_pressure" && event["budget"] == "global")
        .filter_map(|event| event["percent"].as_u64())
        .collect();
    reported.sort_unstable();
    assert_eq!(reported, [50, 90], "each level once");
}
