//! `POST /auth/login/`

use std::time::{Duration, Instant};

use auth_shared::tokens::TokenType;
use auth_tests::{CapturedLogs, Endpoint, PASSWORD, PHONE, PHONE_E164, RawRequest, TestApp, text};
use serde_json::json;

const WRONG_CREDENTIALS: &str = "Invalid phone number or password.";

#[tokio::test]
async fn the_right_password_gives_tokens_for_the_user() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let user_id = registered.body["user"]["id"].as_str().unwrap();

    let response = t
        .post(
            Endpoint::Login,
            json!({ "phone": "+98 910 123 4567", "password": PASSWORD }),
        )
        .await;

    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(response.body["message"], "Login successful.");
    let tokens = &response.body["tokens"];
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let claims = t
        .app
        .tokens
        .verify(tokens["access"].as_str().unwrap(), TokenType::Access)
        .await
        .unwrap();
    assert_eq!(claims.sub, user_id);
    assert_eq!(claims.iss, "phone-auth");
    assert_eq!(claims.aud, "phone-auth-clients");
    let refresh = auth_shared::refresh_tokens::parse(tokens["refresh"].as_str().unwrap())
        .expect("an opaque refresh token");
    assert_eq!(refresh.session_id, claims.sid);
}

#[tokio::test]
async fn an_unknown_phone_looks_like_a_wrong_password() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;

    let wrong_password = t
        .post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": "not the password" }),
        )
        .await;
    let unknown_phone = t
        .post(
            Endpoint::Login,
            json!({ "phone": "09129999999", "password": PASSWORD }),
        )
        .await;

    assert_eq!(wrong_password.status, 401);
    assert_eq!(unknown_phone.status, 401);
    assert_eq!(wrong_password.body, json!({ "error": WRONG_CREDENTIALS }));
    assert_eq!(unknown_phone.body, wrong_password.body);
}

#[tokio::test]
async fn an_unknown_phone_costs_the_same_argon2_work_as_a_wrong_password() {
    let t = TestApp::with_env(&[("LOCKOUT_MAX_FAILURES", "100")]).await;
    t.registered_user(PHONE, PHONE_E164).await;
    let median = |mut times: Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        t.post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": "wrong password" }),
        )
        .await;
        known.push(start.elapsed());
        let start = Instant::now();
        t.post(
            Endpoint::Login,
            json!({ "phone": "09129999999", "password": "wrong password" }),
        )
        .await;
        unknown.push(start.elapsed());
    }
    let (known, unknown) = (median(known), median(unknown));
    // Without the dummy hash an unknown phone would answer in a few DynamoDB round trips, about
    // a tenth of an argon2id verification; the margin absorbs noise from tests running alongside.
    assert!(
        unknown * 3 > known,
        "unknown phone {unknown:?} vs wrong password {known:?}"
    );
}

#[tokio::test]
async fn three_failures_block_the_phone_and_ip_pair() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    for _ in 0..3 {
        let response = t
            .post(
                Endpoint::Login,
                json!({ "phone": PHONE, "password": "wrong password" }),
            )
            .await;
        assert_eq!(response.status, 401);
    }

    let blocked = t
        .post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": PASSWORD }),
        )
        .await;

    blocked.assert_blocked_for_an_hour();
    let counters = t.scan(&t.tables().attempts).await;
    let failures = counters
        .iter()
        .find(|c| text(c, "pk").unwrap().starts_with("fail#login#"))
        .unwrap();
    assert_eq!(auth_tests::num(failures, "failures"), Some(3));

    let elsewhere = t
        .post_from(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": PASSWORD }),
            "198.51.100.9",
        )
        .await;
    assert_eq!(elsewhere.status, 200, "the block is per (phone, IP) pair");
}

#[tokio::test]
async fn a_successful_login_resets_the_failure_count() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    let attempt = |password: &'static str| {
        let t = &t;
        async move {
            t.post(
                Endpoint::Login,
                json!({ "phone": PHONE, "password": password }),
            )
            .await
            .status
        }
    };
    assert_eq!(attempt("wrong password").await, 401);
    assert_eq!(attempt("wrong password").await, 401);
    assert_eq!(attempt(PASSWORD).await, 200);
    assert_eq!(attempt("wrong password").await, 401);
    assert_eq!(attempt("wrong password").await, 401);
    assert_eq!(
        attempt(PASSWORD).await,
        200,
        "two fresh failures do not block"
    );
}

#[tokio::test]
async fn an_expired_failure_window_starts_afresh() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    for _ in 0..2 {
        t.post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": "wrong password" }),
        )
        .await;
    }
    let counters = t.scan(&t.tables().attempts).await;
    let key = counters
        .iter()
        .map(|c| text(c, "pk").unwrap().to_owned())
        .find(|pk| pk.starts_with("fail#login#"))
        .unwrap();
    // Expired but not yet deleted by DynamoDB: must count as absent.
    t.app.clock.advance(t.app.config.limits.lockout_seconds + 1);

    let response = t
        .post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": "wrong password" }),
        )
        .await;

    assert_eq!(response.status, 401);
    let item = t.get_item(&t.tables().attempts, "pk", &key).await.unwrap();
    assert_eq!(auth_tests::num(&item, "failures"), Some(1));
}

#[tokio::test]
async fn the_client_ip_comes_from_api_gateway_never_from_x_forwarded_for() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    let wrong = json!({ "phone": PHONE, "password": "wrong password" }).to_string();
    let right = json!({ "phone": PHONE, "password": PASSWORD }).to_string();
    for spoofed in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        let request = RawRequest {
            body: Some(&wrong),
            forwarded_for: Some(spoofed),
            ..Default::default()
        };
        assert_eq!(t.send(Endpoint::Login, request).await.status, 401);
    }
    let request = RawRequest {
        body: Some(&right),
        forwarded_for: Some("10.0.0.4"),
        ..Default::default()
    };
    let response = t.send(Endpoint::Login, request).await;
    assert_eq!(
        response.status, 403,
        "a new X-Forwarded-For does not escape the block"
    );
    let keys: Vec<String> = t
        .scan(&t.tables().attempts)
        .await
        .iter()
        .filter_map(|item| text(item, "pk").map(str::to_owned))
        .filter(|pk| pk.starts_with("fail#login#"))
        .collect();
    assert_eq!(
        keys,
        [format!("fail#login#{PHONE_E164}#{}", auth_tests::CLIENT_IP)]
    );
}

#[tokio::test]
async fn a_corrupt_proof_mark_is_an_error_never_absent() {
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::ERROR);
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    let mark = format!("proved#{PHONE_E164}");
    t.overwrite_attempts_item(&mark, "expires_at", "later")
        .await;

    let response = t
        .post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": PASSWORD }),
        )
        .await;
    assert_eq!(response.status, 500, "{:?}", response.body);
    assert_eq!(response.error(), "Internal server error.");
    assert!(
        logs.text().contains("a corrupt item in the attempts table"),
        "{}",
        logs.text()
    );
}
