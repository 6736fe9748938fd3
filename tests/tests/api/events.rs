//! Domain events (docs/events.md): each flow records exactly its events, in the transaction of
//! its change, and a refused change records none. Every event here is also checked against its
//! JSON Schema (`schemas/events/`) by the `jsonschema` package.

use auth_tests::{
    CLIENT_IP, Endpoint, PASSWORD, PHONE, PHONE_E164, RawRequest, TestApp, TestResponse,
    register_body, run_verifier,
};
use std::collections::HashSet;

use futures::future::join;
use serde_json::{Value, json};

const NEW_PHONE: &str = "09121234567";
const NEW_E164: &str = "+989121234567";

fn access(tokens: &Value) -> &str {
    tokens["access"].as_str().unwrap()
}

fn session_of(tokens: &Value) -> String {
    let refresh = tokens["refresh"].as_str().unwrap();
    auth_shared::refresh_tokens::parse(refresh)
        .expect("an opaque refresh token")
        .session_id
}

/// The events a test has seen so far, by id.
#[derive(Default)]
struct Seen(HashSet<String>);

impl Seen {
    /// The events recorded since the last look, each checked against its schema.
    async fn new_events(&mut self, t: &TestApp) -> Vec<(String, Value)> {
        let events = t.recorded_events().await;
        assert_schemas(&events).await;
        events
            .into_iter()
            .filter(|(_, detail)| {
                self.0
                    .insert(detail["event_id"].as_str().unwrap().to_owned())
            })
            .collect()
    }
}

async fn assert_schemas(events: &[(String, Value)]) {
    let input: Vec<Value> = events
        .iter()
        .map(|(detail_type, detail)| json!({ "detail_type": detail_type, "detail": detail }))
        .collect();
    let checked = run_verifier("event_schemas.py", &Value::from(input)).await;
    assert_eq!(checked["errors"], json!([]), "{events:?}");
    assert_eq!(checked["checked"], events.len());
}

fn types(events: &[(String, Value)]) -> Vec<&str> {
    let mut types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    types.sort_unstable();
    types
}

fn one<'a>(events: &'a [(String, Value)], detail_type: &str) -> &'a Value {
    let found: Vec<&Value> = events
        .iter()
        .filter(|(t, _)| t == detail_type)
        .map(|(_, detail)| detail)
        .collect();
    assert_eq!(found.len(), 1, "one {detail_type} in {events:?}");
    found[0]
}

async fn change_password(t: &TestApp, tokens: &Value) {
    let changed = t
        .authed(
            Endpoint::PasswordChange,
            "POST",
            access(tokens),
            Some(json!({ "old_password": PASSWORD, "new_password": "a new long password" })),
        )
        .await;
    assert_eq!(changed.status, 204, "{:?}", changed.body);
}

async fn registered(t: &TestApp) -> (Value, String) {
    let response = t.registered_user(PHONE, PHONE_E164).await;
    let user_id = response.body["user"]["id"].as_str().unwrap().to_owned();
    (response.body["tokens"].clone(), user_id)
}

#[tokio::test]
async fn registration_records_the_user_and_its_first_session() {
    let mut seen = Seen::default();
    let t = TestApp::new().await;
    let (tokens, user_id) = registered(&t).await;

    let events = seen.new_events(&t).await;
    assert_eq!(
        types(&events),
        ["session.started.v1", "user.registered.v1"],
        "check-phone and verify record nothing"
    );
    let user = one(&events, "user.registered.v1");
    assert_eq!(user["user_id"], user_id);
    assert_eq!(user["phone_masked"], "+98910***4567");
    assert_eq!(user["client_network"], CLIENT_IP);
    assert!(user.get("phone").is_none(), "no full number by default");
    let session = one(&events, "session.started.v1");
    assert_eq!(session["method"], "registration");
    assert_eq!(session["session_id"], session_of(&tokens));
    assert_eq!(session["user_id"], user_id);
    assert_ne!(user["event_id"], session["event_id"]);
}

#[tokio::test]
async fn a_refused_registration_records_nothing_and_a_race_records_one() {
    let mut seen = Seen::default();
    let t = TestApp::new().await;
    let token = t.verified_token(PHONE, PHONE_E164).await;
    let (first, second) = join(
        t.post(Endpoint::Register, register_body(&token)),
        t.post(Endpoint::Register, register_body(&token)),
    )
    .await;
    let mut statuses = [first.status, second.status];
    statuses.sort_unstable();
    assert_eq!(statuses[0], 201, "{:?} {:?}", first.body, second.body);
    assert!((400..500).contains(&statuses[1]), "{statuses:?}");

    let again = t.post(Endpoint::Register, register_body(&token)).await;
    assert!((400..500).contains(&again.status), "{:?}", again.body);
    let events = seen.new_events(&t).await;
    assert_eq!(types(&events), ["session.started.v1", "user.registered.v1"]);
}

#[tokio::test]
async fn each_way_of_logging_in_records_its_method_and_a_failure_records_nothing() {
    let mut seen = Seen::default();
    let t = TestApp::new().await;
    let (_, user_id) = registered(&t).await;
    seen.new_events(&t).await;

    let wrong = t
        .post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": "wrong password" }),
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(seen.new_events(&t).await, []);

    let tokens = t.login(PHONE).await;
    let requested = t
        .post(Endpoint::LoginOtpRequest, json!({ "phone": PHONE }))
        .await;
    let code = t.last_code_for(PHONE_E164).unwrap();
    let by_code = t
        .post(
            Endpoint::LoginOtp,
            json!({ "phone": PHONE, "code": code,
                    "verification_id": requested.body["verification_id"] }),
        )
        .await;
    assert_eq!(by_code.status, 200, "{:?}", by_code.body);

    let events = seen.new_events(&t).await;
    let mut methods: Vec<(&Value, &Value)> = events
        .iter()
        .map(|(t, detail)| {
            assert_eq!(t, "session.started.v1");
            assert_eq!(detail["user_id"], user_id);
            (&detail["method"], &detail["session_id"])
        })
        .collect();
    methods.sort_by_key(|(method, _)| method.as_str());
    assert_eq!(
        methods,
        [
            (&json!("code"), &json!(session_of(&by_code.body["tokens"]))),
            (&json!("password"), &json!(session_of(&tokens))),
        ]
    );
}

#[tokio::test]
async fn a_step_up_login_records_its_method() {
    let mut seen = Seen::default();
    let t = TestApp::new().await;
    registered(&t).await;
    // Failures from ten networks, as strangers guessing would leave them, then a long run.
    for i in 0..10 {
        let body = json!({ "phone": PHONE, "password": "wrong password" });
        let wrong = t
            .post_from(Endpoint::Login, body, &format!("198.51.100.{i}"))
            .await;
        assert_eq!(wrong.status, 401, "{:?}", wrong.body);
    }
    seen.new_events(&t).await;
    let account = "acct#+989101234567";
    t.set_number(&t.tables().attempts, "pk", account, "failures", 100)
        .await;
    t.app
        .clock
        .advance(t.app.config.limits.account_backoff_max_seconds + 1);
    let ip = "203.0.113.80";
    let body = json!({ "phone": PHONE, "password": PASSWORD });
    let stepped_up = t.post_from(Endpoint::Login, body, ip).await;
    assert_eq!(
        stepped_up.body["code_required"], true,
        "{:?}",
        stepped_up.body
    );
    assert_eq!(
        seen.new_events(&t).await,
        [],
        "a step-up asked for is no event"
    );
    let code = t.last_code_for(PHONE_E164).unwrap();
    let body = json!({ "phone": PHONE, "password": PASSWORD, "code": code,
                       "verification_id": stepped_up.body["verification_id"] });
    let logged_in = t.post_from(Endpoint::Login, body, ip).await;
    assert_eq!(logged_in.status, 200, "{:?}", logged_in.body);

    let events = seen.new_events(&t).await;
    let started = one(&events, "session.started.v1");
    assert_eq!(started["method"], "step_up");
    assert_eq!(started["client_network"], ip);
    assert_eq!(events.len(), 1);
}

async fn logout(t: &TestApp, tokens: &Value, body: Value) -> TestResponse {
    t.authed(Endpoint::Logout, "POST", access(tokens), Some(body))
        .await
}

#[tokio::test]
async fn logging_out_records_the_end_of_each_session_once() {
    let mut seen = Seen::default();
    let t = TestApp::new().await;
    let (first, _) = registered(&t).await;
    let second = t.login(PHONE).await;
    let third = t.login(PHONE).await;
    seen.new_events(&t).await;
    let refreshed = t.refresh(third["refresh"].as_str().unwrap()).await;
    assert_eq!(refreshed.status, 200);
    assert_eq!(seen.new_events(&t).await, [], "a refresh is no event");

    let out = logout(&t, &second, json!({ "refresh": first["refresh"] })).await;
    assert_eq!(out.status, 204, "{:?}", out.body);
    let events = seen.new_events(&t).await;
    let mut ended: Vec<(String, String)> = events
        .iter()
        .map(|(t, detail)| {
            assert_eq!(t, "session.ended.v1");
            (
                detail["session_id"].as_str().unwrap().to_owned(),
                detail["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    ended.sort();
    let mut expected = vec![
        (session_of(&first), "logout".to_owned()),
        (session_of(&second), "logout".to_owned()),
    ];
    expected.sort();
    assert_eq!(ended, expected);

    let everywhere = logout(&t, &refreshed.body["tokens"], json!({ "all": true })).await;
    assert_eq!(everywhere.status, 204, "{:?}", everywhere.body);
    let events = seen.new_events(&t).await;
    assert_eq!(
        events.len(),
        1,
        "only the one live session was left: {events:?}"
    );
    let last = one(&events, "session.ended.v1");
    assert_eq!(last["session_id"], session_of(&third));
    assert_eq!(last["reason"], "logout_everywhere");
}

#[tokio::test]
async fn logging_out_everywhere_records_one_end_per_live_session() {
    let mut seen = Seen::default();
    let t = TestApp::new().await;
    let (first, _) = registered(&t).await;
    let mut sessions = vec![session_of(&first)];
    // More sessions than are ended at once.
    for _ in 0..19 {
        sessions.push(session_of(&t.login(PHONE).await));
    }
    seen.new_events(&t).await;
    let everywhere = logout(&t, &first, json!({ "all": true })).await;
    assert_eq!(everywhere.status, 204, "{:?}", everywhere.body);

    let events = seen.new_events(&t).await;
    let mut ended: Vec<String> = events
        .iter()
        .map(|(t, detail)| {
            assert_eq!(t, "session.ended.v1");
            assert_eq!(detail["reason"], "logout_everywhere");
            detail["session_id"].as_str().unwrap().to_owned()
        })
        .collect();
    ended.sort();
    sessions.sort();
    assert_eq!(ended, sessions);
}

#[tokio::test]
async fn a_password_change_removes_the_older_sessions_items_and_keeps_the_callers() {
    let mut seen = Seen::default();
    let t = TestApp::new().await;
    let (tokens, _) = registered(&t).await;
    let other = t.login(PHONE).await;
    change_password(&t, &tokens).await;
    seen.new_events(&t).await;
    let sessions = t.scan(&t.tables().sessions).await;
    let has = |id: &str| {
        sessions.iter().any(|item| {
            item.get("sk").and_then(|v| v.as_s().ok()) == Some(&format!("session#{id}"))
        })
    };
    assert!(has(&session_of(&tokens)), "the caller's session stays");
    assert!(!has(&session_of(&other)), "the other one is removed");
}

#[tokio::test]
async fn revoking_a_session_records_its_end_and_a_second_revoke_records_nothing() {
    let mut seen = Seen::default();
    let t = TestApp::new().await;
    let (first, _) = registered(&t).await;
    let second = t.login(PHONE).await;
    seen.new_events(&t).await;
    let id = session_of(&second);
    let revoke = || {
        t.send(
            Endpoint::SessionRevoke,
            RawRequest {
                method: "DELETE",
                content_type: None,
                bearer: Some(access(&first)),
                path_id: Some(&id),
                ..RawRequest::default()
            },
        )
    };
    let (once, twice) = join(revoke(), revoke()).await;
    let mut statuses = [once.status, twice.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [204, 404], "{:?} {:?}", once.body, twice.body);

    let events = seen.new_events(&t).await;
    let ended = one(&events, "session.ended.v1");
    assert_eq!(ended["session_id"], id);
    assert_eq!(ended["reason"], "revoked");
    assert_eq!(events.len(), 1);
}

#[tokio::test]
async fn wrong_passwords_that_end_a_session_record_its_end() {
    let mut seen = Seen::default();
    let t = TestApp::new().await;
    let (tokens, _) = registered(&t).await;
    seen.new_events(&t).await;
    let max = t.app.config.limits.session_password_max_failures;
    for _ in 0..max {
        let wrong = t
            .authed(
                Endpoint::PasswordChange,
                "POST",
                access(&tokens),
                Some(
                    json!({ "old_password": "wrong password", "new_password": "another long one" }),
                ),
            )
            .await;
        assert!(
            wrong.status == 401 || wrong.status == 403,
            "{:?}",
            wrong.body
        );
    }
    let events = seen.new_events(&t).await;
    let ended = one(&events, "session.ended.v1");
    assert_eq!(ended["reason"], "wrong_passwords");
    assert_eq!(ended["session_id"], session_of(&tokens));
    assert_eq!(events.len(), 1);
}

#[tokio::test]
async fn a_replayed_refresh_token_records_the_reuse_once() {
    let mut seen = Seen::default();
    let t = TestApp::new().await;
    let (tokens, user_id) = registered(&t).await;
    seen.new_events(&t).await;
    let first = tokens["refresh"].as_str().unwrap();
    assert_eq!(t.refresh(first).await.status, 200);
    t.app
        .clock
        .advance(t.app.config.refresh_reuse_grace_seconds + 1);

    assert_eq!(t.refresh(first).await.status, 401);
    assert_eq!(t.refresh(first).await.status, 401);

    let events = seen.new_events(&t).await;
    let reused = one(&events, "session.reuse_detected.v1");
    assert_eq!(reused["session_id"], session_of(&tokens));
    assert_eq!(reused["user_id"], user_id);
    assert_eq!(events.len(), 1, "the replay after the end records nothing");
}

#[tokio::test]
async fn password_change_reset_and_deletion_record_theirs() {
    let mut seen = Seen::default();
    let t = TestApp::new().await;
    let (tokens, user_id) = registered(&t).await;
    seen.new_events(&t).await;
    change_password(&t, &tokens).await;
    let events = seen.new_events(&t).await;
    assert_eq!(one(&events, "user.password_changed.v1")["by"], "change");
    assert_eq!(events.len(), 1, "the other sessions end with no event each");

    let requested = t
        .post(Endpoint::PasswordResetRequest, json!({ "phone": PHONE }))
        .await;
    let code = t.last_code_for(PHONE_E164).unwrap();
    let reset = t
        .post(
            Endpoint::PasswordResetConfirm,
            json!({ "phone": PHONE, "code": code, "new_password": PASSWORD,
                    "verification_id": requested.body["verification_id"] }),
        )
        .await;
    assert_eq!(reset.status, 204, "{:?}", reset.body);
    let events = seen.new_events(&t).await;
    let reset = one(&events, "user.password_changed.v1");
    assert_eq!(reset["by"], "reset");
    assert_eq!(reset["user_id"], user_id);
    assert_eq!(events.len(), 1);

    let tokens = t.login(PHONE).await;
    seen.new_events(&t).await;
    let deleted = t
        .authed(
            Endpoint::Profile,
            "DELETE",
            access(&tokens),
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    let events = seen.new_events(&t).await;
    assert_eq!(one(&events, "user.deleted.v1")["user_id"], user_id);
    assert_eq!(events.len(), 1);
}

#[tokio::test]
async fn a_change_of_number_records_both_numbers_in_full_only_when_configured() {
    for include_phone in [false, true] {
        let mut seen = Seen::default();
        let setting = include_phone.to_string();
        let t = TestApp::with_env(&[("EVENTS_INCLUDE_PHONE", &setting)]).await;
        let (tokens, user_id) = registered(&t).await;
        seen.new_events(&t).await;
        let requested = t
            .authed(
                Endpoint::PhoneChangeRequest,
                "POST",
                access(&tokens),
                Some(json!({ "new_phone": NEW_PHONE, "password": PASSWORD })),
            )
            .await;
        assert_eq!(requested.status, 200, "{:?}", requested.body);
        let code = t.last_code_for(NEW_E164).unwrap();
        let moved = t
            .authed(
                Endpoint::PhoneChangeConfirm,
                "POST",
                access(&tokens),
                Some(json!({ "new_phone": NEW_PHONE, "code": code })),
            )
            .await;
        assert_eq!(moved.status, 200, "{:?}", moved.body);

        let events = seen.new_events(&t).await;
        assert_eq!(events.len(), 1, "{events:?}");
        let changed = one(&events, "user.phone_changed.v1");
        assert_eq!(changed["user_id"], user_id);
        assert_eq!(changed["phone_masked"], "+98912***4567");
        assert_eq!(changed["previous_phone_masked"], "+98910***4567");
        if include_phone {
            assert_eq!(changed["phone"], NEW_E164);
            assert_eq!(changed["previous_phone"], PHONE_E164);
            let registered = one(&t.recorded_events().await, "user.registered.v1").clone();
            assert_eq!(registered["phone"], PHONE_E164);
        } else {
            assert!(changed.get("phone").is_none());
            assert!(changed.get("previous_phone").is_none());
        }
    }
}
