//! DynamoDB going away in the middle of a request: every step of every flow answers 503 JSON
//! with Retry-After, leaves nothing half-created, and the same request succeeds once DynamoDB is
//! back.

use auth_tests::{
    DynamoDbGate, Endpoint, PASSWORD, PHONE, PHONE_E164, TestApp, TestResponse, register_body, text,
};
use serde_json::{Value, json};

fn assert_unavailable(response: &TestResponse, step: usize) {
    assert_eq!(
        response.status, 503,
        "after {step} operations: {:?}",
        response.body
    );
    assert_eq!(
        response.error(),
        "Service temporarily unavailable. Try again shortly."
    );
    assert_eq!(response.retry_after(), Some(1));
}

/// Sends `body` to `endpoint` with DynamoDB failing after 0, 1, 2, ... operations, running
/// `untouched` after each failure, until the request gets through (or succeeds with only
/// best-effort work after it failing); returns that response and how many failing steps there
/// were.
async fn fail_at_every_step<F>(
    t: &TestApp,
    endpoint: Endpoint,
    body: Value,
    untouched: impl Fn() -> F,
) -> (TestResponse, usize)
where
    F: std::future::Future<Output = ()>,
{
    for allowed in 0..10 {
        let gate = DynamoDbGate::failing_after(allowed);
        let response = t.through(&gate).await.post(endpoint, body.clone()).await;
        if gate.seen() <= allowed || response.status < 300 {
            return (response, allowed);
        }
        assert_unavailable(&response, allowed);
        untouched().await;
    }
    panic!("{endpoint:?} never got through");
}

#[tokio::test]
async fn check_phone_stores_no_code_and_counts_nothing_when_dynamodb_fails() {
    let t = TestApp::new().await;
    let (response, steps) = fail_at_every_step(
        &t,
        Endpoint::CheckPhone,
        json!({ "phone": PHONE }),
        || async {
            assert!(t.scan(&t.tables().otps).await.is_empty());
            assert!(
                t.scan(&t.tables().attempts)
                    .await
                    .iter()
                    .all(|item| text(item, "pk").unwrap().starts_with("send#lookup#")),
                "no send is counted (the lookups are)"
            );
            assert!(t.sent_sms().is_empty());
        },
    )
    .await;
    assert_eq!(
        steps, 3,
        "lookup count, user read, then one transaction (the budgets' pressure read after it is \
         best effort)"
    );
    assert_eq!(response.status, 200);
    assert_eq!(t.sent_sms().len(), 1);
}

#[tokio::test]
async fn verify_keeps_the_code_and_creates_no_token_when_dynamodb_fails() {
    let t = TestApp::new().await;
    t.post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    let code = t.last_code_for(PHONE_E164).unwrap();
    let stored = t.otp(PHONE_E164).await.unwrap();
    let body = json!({ "phone": PHONE, "code": code });
    let (response, steps) = fail_at_every_step(&t, Endpoint::Verify, body, || async {
        let otp = t.otp(PHONE_E164).await.expect("the code is not spent");
        assert_eq!(text(&otp, "code_hash"), text(&stored, "code_hash"));
        assert!(t.scan(&t.tables().registration_tokens).await.is_empty());
    })
    .await;
    assert_eq!(
        steps, 4,
        "the pair record (a batch read) and the live codes (a query) side by side, the slot, \
         the spending transaction"
    );
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn register_creates_no_half_account_and_keeps_the_token_when_dynamodb_fails() {
    let t = TestApp::new().await;
    let token = t.verified_token(PHONE, PHONE_E164).await;
    let (response, steps) =
        fail_at_every_step(&t, Endpoint::Register, register_body(&token), || async {
            assert!(t.scan(&t.tables().users).await.is_empty());
            assert!(t.scan(&t.tables().sessions).await.is_empty());
            assert_eq!(t.scan(&t.tables().registration_tokens).await.len(), 1);
        })
        .await;
    // Each try is a fresh instance: its first token publishes its signing key first.
    assert_eq!(
        steps, 3,
        "token read, key publication, then one transaction"
    );
    assert_eq!(response.status, 201);
    assert_eq!(t.scan(&t.tables().users).await.len(), 1);
}

#[tokio::test]
async fn login_starts_no_session_when_dynamodb_fails() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    let sessions_before = t.scan(&t.tables().sessions).await.len();
    let body = json!({ "phone": PHONE, "password": PASSWORD });
    let (response, steps) = fail_at_every_step(&t, Endpoint::Login, body, || async {
        assert_eq!(t.scan(&t.tables().sessions).await.len(), sessions_before);
    })
    .await;
    assert_eq!(
        steps, 4,
        "one batch read (guards and account), the slot, key publication (a fresh instance), \
         the session transaction"
    );
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn refresh_spends_nothing_when_dynamodb_fails() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let refresh = registered.body["tokens"]["refresh"].clone();
    let before = t.scan(&t.tables().sessions).await.len();
    let (response, steps) = fail_at_every_step(
        &t,
        Endpoint::Refresh,
        json!({ "refresh": refresh }),
        || async {
            assert_eq!(t.scan(&t.tables().sessions).await.len(), before);
        },
    )
    .await;
    assert_eq!(
        steps, 3,
        "the session read, key publication (a fresh instance), one transaction"
    );
    assert_eq!(
        response.status, 200,
        "the token was not spent by the failed attempts"
    );
}

/// After a password change or reset that DynamoDB interrupted at any step: either nothing
/// changed (503: the old password and every session still work), or the new password is in
/// force and every older session is dead at once, even when the clean-up of their items failed.
async fn credentials_change_is_all_or_nothing(
    t: &TestApp,
    other_access: &str,
    mut attempt: impl AsyncFnMut(&TestApp) -> TestResponse,
    new_password: &str,
) {
    for allowed in 0..12 {
        let gate = DynamoDbGate::failing_after(allowed);
        let response = attempt(&t.through(&gate).await).await;
        let login = |password: &str| {
            t.post(
                Endpoint::Login,
                json!({ "phone": PHONE, "password": password }),
            )
        };
        let other = t.authed(Endpoint::Profile, "GET", other_access, None).await;
        if response.status == 503 {
            assert_unavailable(&response, allowed);
            assert_eq!(other.status, 200, "after {allowed}: nothing changed");
            assert_eq!(login(PASSWORD).await.status, 200, "after {allowed}");
            continue;
        }
        assert_eq!(response.status, 204, "after {allowed}: {:?}", response.body);
        assert_eq!(other.status, 401, "the older session ended with the change");
        assert_eq!(login(PASSWORD).await.status, 401);
        assert_eq!(login(new_password).await.status, 200);
        return;
    }
    panic!("the change never got through");
}

#[tokio::test]
async fn an_interrupted_password_change_leaves_no_old_session_alive() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let current = registered.body["tokens"]["access"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = t.login(PHONE).await["access"].as_str().unwrap().to_owned();
    let body = json!({ "old_password": PASSWORD, "new_password": "the next passphrase" });
    credentials_change_is_all_or_nothing(
        &t,
        &other,
        async |app: &TestApp| {
            app.authed(
                Endpoint::PasswordChange,
                "POST",
                &current,
                Some(body.clone()),
            )
            .await
        },
        "the next passphrase",
    )
    .await;
}

#[tokio::test]
async fn an_interrupted_password_reset_leaves_no_old_session_alive() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let other = registered.body["tokens"]["access"]
        .as_str()
        .unwrap()
        .to_owned();
    t.post(Endpoint::PasswordResetRequest, json!({ "phone": PHONE }))
        .await;
    let code = t.last_code_for(PHONE_E164).unwrap();
    let body = json!({ "phone": PHONE, "code": code, "new_password": "the next passphrase" });
    credentials_change_is_all_or_nothing(
        &t,
        &other,
        async |app: &TestApp| app.post(Endpoint::PasswordResetConfirm, body.clone()).await,
        "the next passphrase",
    )
    .await;
}
