//! The token hook (`TOKEN_HOOK_FUNCTION`) against a local stub of Lambda's `Invoke`: its claims
//! in every access token (registration, every kind of login, refresh), what it is told, and
//! that any failure of it (an error, Lambda failing, too slow, claims that break the rules)
//! issues no token and writes nothing.

use std::time::{Duration, Instant};

use auth_tests::{
    Endpoint, HttpStub, PASSWORD, PHONE, PHONE_E164, StubAnswer, TestApp, TestResponse,
    register_body,
};
use serde_json::{Value, json};

const HOOK: &[(&str, &str)] = &[("TOKEN_HOOK_FUNCTION", "token-hook")];

fn hook_answers(answer: &Value) -> StubAnswer {
    StubAnswer::json(200, "application/json", answer)
        .with_header("x-amz-executed-version", "$LATEST")
}

async fn claims_of(t: &TestApp, tokens: &Value) -> Value {
    let access = tokens["access"].as_str().expect("an access token");
    serde_json::to_value(t.access_claims(access).await).unwrap()
}

async fn password_login(t: &TestApp) -> TestResponse {
    t.post(
        Endpoint::Login,
        json!({ "phone": PHONE, "password": PASSWORD }),
    )
    .await
}

async fn session_items(t: &TestApp) -> usize {
    t.scan(&t.tables().sessions)
        .await
        .iter()
        .filter(|item| auth_tests::text(item, "sk").is_some_and(|sk| sk.starts_with("session#")))
        .count()
}

#[tokio::test]
async fn the_hooks_claims_are_in_every_access_token_and_it_is_told_why() {
    let stub = HttpStub::start(hook_answers(
        &json!({ "claims": { "tenant": "acme", "roles": ["admin"] } }),
    ))
    .await;
    let t = TestApp::with_sms_endpoint(HOOK, &stub.endpoint).await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let user_id = registered.body["user"]["id"].as_str().unwrap().to_owned();
    let mut answers = vec![registered.body["tokens"].clone()];
    answers.push(password_login(&t).await.body["tokens"].clone());
    t.post(Endpoint::LoginOtpRequest, json!({ "phone": PHONE }))
        .await;
    let code = t.last_code_for(PHONE_E164).unwrap();
    let by_code = t
        .post(Endpoint::LoginOtp, json!({ "phone": PHONE, "code": code }))
        .await;
    answers.push(by_code.body["tokens"].clone());
    let refresh = answers[1]["refresh"].as_str().unwrap();
    answers.push(t.refresh(refresh).await.body["tokens"].clone());

    let mut sessions = Vec::new();
    for tokens in &answers {
        let claims = claims_of(&t, tokens).await;
        assert_eq!(claims["tenant"], "acme", "{claims}");
        assert_eq!(claims["roles"], json!(["admin"]));
        assert_eq!(
            claims["sub"],
            user_id.as_str(),
            "the token's own claims stay"
        );
        sessions.push(claims["sid"].as_str().unwrap().to_owned());
    }
    let requests = stub.requests();
    let told: Vec<Value> = requests.iter().map(|request| request.json()).collect();
    assert_eq!(requests.len(), 4);
    assert!(
        requests
            .iter()
            .all(|r| r.path == "/2015-03-31/functions/token-hook/invocations")
    );
    let triggers: Vec<&str> = told
        .iter()
        .map(|t| t["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(triggers, ["registration", "login", "login", "refresh"]);
    for (request, session) in told.iter().zip(&sessions) {
        assert_eq!(
            request,
            &json!({
                "trigger": request["trigger"],
                "user_id": user_id,
                "session_id": session,
                "app_claims": {}
            })
        );
    }
}

#[tokio::test]
async fn any_failure_of_the_hook_issues_no_token_and_writes_nothing() {
    let fine = hook_answers(&json!({ "claims": { "tenant": "acme" } }));
    let stub = HttpStub::start(fine.clone()).await;
    let t = TestApp::with_sms_endpoint(HOOK, &stub.endpoint).await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let refresh = registered.body["tokens"]["refresh"]
        .as_str()
        .unwrap()
        .to_owned();
    let sessions_before = session_items(&t).await;

    let raised = StubAnswer::json(
        200,
        "application/json",
        &json!({ "errorMessage": "boom", "errorType": "Error" }),
    )
    .with_header("x-amz-function-error", "Unhandled");
    let lambda_failed = StubAnswer::json(
        500,
        "application/json",
        &json!({ "Type": "Service", "message": "internal failure" }),
    )
    .with_header("x-amzn-errortype", "ServiceException");
    let too_big =
        json!({ "claims": { "a": "x".repeat(auth_shared::token_hook::MAX_HOOK_CLAIMS_BYTES) } });
    let failures = [
        ("raised", raised),
        ("lambda failed", lambda_failed),
        (
            "reserved",
            hook_answers(&json!({ "claims": { "sub": "someone else" } })),
        ),
        (
            "reserved app",
            hook_answers(&json!({ "claims": { "app": {} } })),
        ),
        ("too big", hook_answers(&too_big)),
        ("no object", hook_answers(&json!({ "claims": ["admin"] }))),
        ("no JSON", hook_answers(&json!("text"))),
    ];
    for (what, answer) in failures {
        stub.answer_with(answer);
        let login = password_login(&t).await;
        assert_eq!(login.status, 503, "{what}: {login:?}");
        let refreshed = t.refresh(&refresh).await;
        assert_eq!(refreshed.status, 503, "{what}: {refreshed:?}");
    }
    // Too slow: refused at the hook's 1 s, not at API Gateway's 30 (the stub answers after 10;
    // the bound leaves room for a loaded machine's argon2 and requests).
    stub.answer_with(fine.clone());
    stub.delay_answers(Duration::from_secs(10));
    let started = Instant::now();
    assert_eq!(password_login(&t).await.status, 503);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A registration that failed keeps its token for the retry.
    let token = t.verified_token("09121234567", "+989121234567").await;
    let refused = t.post(Endpoint::Register, register_body(&token)).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(t.user("+989121234567").await.is_none());

    // Nothing was written: no session, the refresh token unspent, and the right passwords left
    // no failure on the pair or the account.
    assert_eq!(session_items(&t).await, sessions_before);
    let counted: Vec<String> = t
        .scan(&t.tables().attempts)
        .await
        .iter()
        .filter_map(|item| auth_tests::text(item, "pk").map(str::to_owned))
        .filter(|pk| pk.starts_with("fail#login#") || pk.starts_with("acct#"))
        .collect();
    assert!(counted.is_empty(), "{counted:?}");
    stub.delay_answers(Duration::ZERO);
    let refreshed = t.refresh(&refresh).await;
    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    let login = password_login(&t).await;
    assert_eq!(login.status, 200, "no step-up or back-off: {login:?}");
    assert_eq!(claims_of(&t, &login.body["tokens"]).await["tenant"], "acme");
    let registered = t.post(Endpoint::Register, register_body(&token)).await;
    assert_eq!(registered.status, 201, "{registered:?}");
}
