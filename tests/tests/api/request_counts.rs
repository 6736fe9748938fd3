//! The DynamoDB requests of each call, as docs/storage.md ("DynamoDB requests per call") states
//! them: every call below is made through a counting gate and its count held against the first
//! number of the page's row, so the page cannot go stale unnoticed.

use auth_tests::{DynamoDbGate, Endpoint, PASSWORD, PHONE, PHONE_E164, TestApp, TestResponse};
use serde_json::{Value, json};

/// The first number of the row of docs/storage.md's requests table whose first cell is `call`.
fn documented(call: &str) -> usize {
    let page =
        std::fs::read_to_string(auth_tests::routes::workspace_root().join("docs/storage.md"))
            .expect("docs/storage.md");
    let row = page
        .lines()
        .find_map(|line| line.strip_prefix(&format!("| {call} | ")))
        .unwrap_or_else(|| panic!("docs/storage.md has no row {call:?}"));
    let digits: String = row.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("the row {call:?} starts with no count: {row}"))
}

/// The requests `gate` saw during `call`, checked against the page's row.
async fn assert_counted<F: Future<Output = TestResponse>>(
    gate: &DynamoDbGate,
    row: &str,
    status: u16,
    call: F,
) -> TestResponse {
    let before = gate.seen();
    let response = call.await;
    assert_eq!(response.status, status, "{row}: {:?}", response.body);
    assert_eq!(
        gate.seen() - before,
        documented(row),
        "{row}: DynamoDB requests (docs/storage.md)"
    );
    response
}

fn refresh_token(response: &TestResponse) -> String {
    response.body["tokens"]["refresh"]
        .as_str()
        .expect("a refresh token")
        .to_owned()
}

fn access_token(response: &TestResponse) -> String {
    response.body["tokens"]["access"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

#[tokio::test]
async fn each_call_makes_the_requests_docs_storage_md_states() {
    let gate = DynamoDbGate::counting();
    let t = TestApp::new().await.through(&gate).await;
    // A first sign-up publishes the instance's signing key (one request more, once a day).
    t.registered_user("09121111111", "+989121111111").await;

    let sent = assert_counted(
        &gate,
        "check-phone, new number",
        200,
        t.post(Endpoint::CheckPhone, json!({ "phone": PHONE })),
    )
    .await;
    let verification_id = sent.body["verification_id"].clone();
    let code = t.last_code_for(PHONE_E164).expect("the code");
    let wrong = if code.starts_with('0') { "1" } else { "0" }.repeat(code.len());
    let guess =
        |code: &str| json!({ "phone": PHONE, "code": code, "verification_id": verification_id });
    assert_counted(
        &gate,
        "verify, wrong code",
        400,
        t.post(Endpoint::Verify, guess(&wrong)),
    )
    .await;
    let verified = assert_counted(
        &gate,
        "verify, right code",
        200,
        t.post(Endpoint::Verify, guess(&code)),
    )
    .await;
    let registration_token = verified.body["registration_token"].clone();
    let registered = assert_counted(
        &gate,
        "register",
        201,
        t.post(
            Endpoint::Register,
            auth_tests::register_body(registration_token.as_str().expect("a token")),
        ),
    )
    .await;

    assert_counted(
        &gate,
        "check-phone, registered",
        200,
        t.post(Endpoint::CheckPhone, json!({ "phone": PHONE })),
    )
    .await;
    let login = |password: &str| json!({ "phone": PHONE, "password": password });
    assert_counted(
        &gate,
        "login, wrong password",
        401,
        t.post(Endpoint::Login, login("not the password at all")),
    )
    .await;
    let logged_in = assert_counted(
        &gate,
        "login, right password",
        200,
        t.post(Endpoint::Login, login(PASSWORD)),
    )
    .await;

    let refreshed = assert_counted(
        &gate,
        "refresh",
        200,
        t.post(
            Endpoint::Refresh,
            json!({ "refresh": refresh_token(&logged_in) }),
        ),
    )
    .await;
    let access = access_token(&refreshed);
    assert_counted(
        &gate,
        "profile GET / PATCH",
        200,
        t.authed(Endpoint::Profile, "GET", &access, None),
    )
    .await;
    assert_counted(
        &gate,
        "session list",
        200,
        t.authed(Endpoint::Sessions, "GET", &access, None),
    )
    .await;
    assert_counted(
        &gate,
        "logout",
        204,
        t.authed(
            Endpoint::Logout,
            "POST",
            &access_token(&registered),
            None::<Value>,
        ),
    )
    .await;
}
