//! `GET /auth/sessions/` and `DELETE /auth/sessions/{id}/`

use auth_tests::{
    CLIENT_IP, Endpoint, PASSWORD, PHONE, PHONE_E164, RawRequest, TestApp, TestResponse,
};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

const OTHER_PHONE: &str = "09121234567";
const OTHER_E164: &str = "+989121234567";

/// Logs `phone` in from `ip` with `user_agent`; returns the tokens.
async fn login_from(t: &TestApp, phone: &str, ip: &str, user_agent: &str) -> Value {
    let body = json!({ "phone": phone, "password": PASSWORD }).to_string();
    let response = t
        .send(
            Endpoint::Login,
            RawRequest {
                body: Some(&body),
                source_ip: ip,
                user_agent: Some(user_agent),
                ..RawRequest::default()
            },
        )
        .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    response.body["tokens"].clone()
}

fn access(tokens: &Value) -> &str {
    tokens["access"].as_str().unwrap()
}

fn session_id(tokens: &Value) -> String {
    let refresh = tokens["refresh"].as_str().unwrap();
    let claims = auth_shared::refresh_tokens::parse(refresh);
    claims.expect("an opaque refresh token").session_id
}

async fn list(t: &TestApp, tokens: &Value) -> TestResponse {
    t.authed(Endpoint::Sessions, "GET", access(tokens), None)
        .await
}

async fn revoke(t: &TestApp, tokens: &Value, id: &str) -> TestResponse {
    t.send(
        Endpoint::SessionRevoke,
        RawRequest {
            method: "DELETE",
            content_type: None,
            bearer: Some(access(tokens)),
            path_id: Some(id),
            ..RawRequest::default()
        },
    )
    .await
}

async fn profile_status(t: &TestApp, tokens: &Value) -> u16 {
    t.authed(Endpoint::Profile, "GET", access(tokens), None)
        .await
        .status
}

#[tokio::test]
async fn the_list_shows_every_live_session_with_where_it_was_last_used() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let signed_up = registered.body["tokens"].clone();
    let long_agent = "Mozilla/5.0 ".repeat(40);
    let laptop = login_from(&t, PHONE, "198.51.100.20", &long_agent).await;
    t.app.clock.advance(60);
    let phone = login_from(&t, PHONE, "2001:db8::1", "AuthApp/2.1 (Android 15)").await;

    let response = list(&t, &laptop).await;

    assert_eq!(response.status, 200, "{:?}", response.body);
    let sessions = response.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3, "{sessions:?}");
    let by_id = |id: &str| {
        sessions
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("session {id} listed"))
            .clone()
    };
    let laptop_view = by_id(&session_id(&laptop));
    assert_eq!(laptop_view["current"], true);
    assert_eq!(laptop_view["ip"], "198.51.100.20");
    let agent = laptop_view["user_agent"].as_str().unwrap();
    assert_eq!(agent.chars().count(), 256, "cut to 256 characters");
    assert!(long_agent.starts_with(agent));
    let phone_view = by_id(&session_id(&phone));
    assert_eq!(phone_view["current"], false);
    assert_eq!(phone_view["ip"], "2001:db8::1");
    assert_eq!(phone_view["user_agent"], "AuthApp/2.1 (Android 15)");
    assert_eq!(sessions[0], phone_view, "most recently used first");
    let signup_view = by_id(&session_id(&signed_up));
    assert_eq!(signup_view["ip"], CLIENT_IP);
    assert_eq!(signup_view["user_agent"], Value::Null);
    for view in sessions {
        let keys: Vec<&str> = view
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "created_at",
                "current",
                "id",
                "ip",
                "last_used_at",
                "user_agent"
            ],
            "nothing else (no token, no hash)"
        );
        assert!(view["created_at"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);

    // A refresh from elsewhere moves the session's IP, agent and last use.
    t.app.clock.advance(60);
    let body = json!({ "refresh": laptop["refresh"] }).to_string();
    let refreshed = t
        .send(
            Endpoint::Refresh,
            RawRequest {
                body: Some(&body),
                source_ip: "192.0.2.99",
                user_agent: Some("curl/8"),
                ..RawRequest::default()
            },
        )
        .await;
    assert_eq!(refreshed.status, 200);
    let after = list(&t, &phone).await;
    let sessions = after.body["sessions"].as_array().unwrap();
    let moved = &sessions[0];
    assert_eq!(moved["id"], laptop_view["id"]);
    assert_eq!(moved["ip"], "192.0.2.99");
    assert_eq!(moved["user_agent"], "curl/8");
    assert_eq!(moved["created_at"], laptop_view["created_at"]);
    assert_ne!(moved["last_used_at"], laptop_view["last_used_at"]);
}

#[tokio::test]
async fn ended_sessions_are_not_listed() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let first = registered.body["tokens"].clone();
    let second = t.login(PHONE).await;
    let logout = t
        .authed(Endpoint::Logout, "POST", access(&second), None)
        .await;
    assert_eq!(logout.status, 204);

    let response = list(&t, &first).await;

    let ids: Vec<&Value> = response.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["id"])
        .collect();
    assert_eq!(ids, [&json!(session_id(&first))]);

    // A password change ends the others; their items may linger until tidied, never listed.
    let third = t.login(PHONE).await;
    let change = t
        .authed(
            Endpoint::PasswordChange,
            "POST",
            access(&third),
            Some(json!({ "old_password": PASSWORD, "new_password": "a new long passphrase" })),
        )
        .await;
    assert_eq!(change.status, 204, "{:?}", change.body);
    let after = list(&t, &third).await;
    assert_eq!(after.status, 200);
    let sessions = after.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["current"], true);
}

#[tokio::test]
async fn deleting_a_session_ends_its_tokens_at_once_and_only_its_own() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let mine = registered.body["tokens"].clone();
    let lost_phone = t.login(PHONE).await;
    let lost_id = session_id(&lost_phone);

    let response = revoke(&t, &mine, &lost_id).await;

    assert_eq!(response.status, 204, "{:?}", response.body);
    assert_eq!(profile_status(&t, &lost_phone).await, 401);
    let replay = t
        .post(
            Endpoint::Refresh,
            json!({ "refresh": lost_phone["refresh"] }),
        )
        .await;
    assert_eq!(replay.status, 401);
    assert_eq!(profile_status(&t, &mine).await, 200, "the caller's stays");
    let user_id = registered.body["user"]["id"].as_str().unwrap();
    let item = t
        .dynamodb
        .get_item()
        .table_name(&t.tables().sessions)
        .key("user_id", AttributeValue::S(user_id.to_owned()))
        .key("sk", AttributeValue::S(format!("session#{lost_id}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item;
    assert!(item.is_none(), "the session item is gone");

    let again = revoke(&t, &mine, &lost_id).await;
    assert_eq!(again.status, 404);
    assert_eq!(again.body, json!({ "error": "No such session." }));

    // Deleting the caller's own session is a logout.
    let own_id = session_id(&mine);
    assert_eq!(revoke(&t, &mine, &own_id).await.status, 204);
    assert_eq!(profile_status(&t, &mine).await, 401);
}

#[tokio::test]
async fn another_users_session_is_not_found_and_stays() {
    let t = TestApp::new().await;
    let mine = t.registered_user(PHONE, PHONE_E164).await.body["tokens"].clone();
    let theirs = t.registered_user(OTHER_PHONE, OTHER_E164).await.body["tokens"].clone();
    let their_id = session_id(&theirs);

    for id in [
        their_id.as_str(),
        "7d444840-9dc0-11d1-b245-5ffdce74fad2",
        "not-a-session-id",
        "session%23x",
    ] {
        let response = revoke(&t, &mine, id).await;
        assert_eq!(response.status, 404, "{id}: {:?}", response.body);
        assert_eq!(response.body, json!({ "error": "No such session." }));
    }
    assert_eq!(profile_status(&t, &theirs).await, 200);
    let their_list = list(&t, &theirs).await;
    assert_eq!(their_list.body["sessions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_session_endpoints_need_a_bearer_token_and_their_method() {
    let t = TestApp::new().await;
    let mine = t.registered_user(PHONE, PHONE_E164).await.body["tokens"].clone();
    let id = session_id(&mine);

    let unauthenticated = t
        .send(
            Endpoint::Sessions,
            RawRequest {
                method: "GET",
                content_type: None,
                ..RawRequest::default()
            },
        )
        .await;
    assert_eq!(unauthenticated.status, 401);
    assert_eq!(
        unauthenticated.headers.get("www-authenticate").unwrap(),
        "Bearer"
    );
    let no_bearer = t
        .send(
            Endpoint::SessionRevoke,
            RawRequest {
                method: "DELETE",
                content_type: None,
                path_id: Some(&id),
                ..RawRequest::default()
            },
        )
        .await;
    assert_eq!(no_bearer.status, 401);

    let posted = t
        .authed(Endpoint::Sessions, "POST", access(&mine), None)
        .await;
    assert_eq!(posted.status, 405);
    assert_eq!(posted.headers.get("allow").unwrap(), "GET");
    let got = t
        .send(
            Endpoint::SessionRevoke,
            RawRequest {
                method: "GET",
                bearer: Some(access(&mine)),
                path_id: Some(&id),
                ..RawRequest::default()
            },
        )
        .await;
    assert_eq!(got.status, 405);
    assert_eq!(got.headers.get("allow").unwrap(), "DELETE");
    assert_eq!(profile_status(&t, &mine).await, 200, "nothing was revoked");
}

#[tokio::test]
async fn a_session_past_its_lifetime_is_neither_listed_nor_deletable() {
    let t = TestApp::with_env(&[("SESSION_MAX_SECONDS", "100")]).await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let old = registered.body["tokens"].clone();
    let old_id = session_id(&old);
    t.app.clock.advance(90);
    let fresh = t.login(PHONE).await;
    t.app.clock.advance(20);

    let listed = list(&t, &fresh).await;
    let sessions = listed.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["current"], true);
    let response = revoke(&t, &fresh, &old_id).await;
    assert_eq!(response.status, 404, "{:?}", response.body);
}
