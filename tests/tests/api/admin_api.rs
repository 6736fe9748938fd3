//! The admin API's routes (`/admin/...`), sent as API Gateway sends them: with the IAM identity
//! its `AWS_IAM` authorization adds (`requestContext.authorizer.iam`), and without it. Each
//! operation's answer, its effect on the stored state, its event and its audit line.

use auth_tests::{
    CapturedLogs, Endpoint, PASSWORD, PHONE, PHONE_E164, RawRequest, TestApp, TestResponse, text,
};
use futures::future::join_all;
use serde_json::{Value, json};

const OPERATOR: &str = "arn:aws:sts::123456789012:assumed-role/Support/alice";
const UNKNOWN_ID: &str = "00000000-0000-4000-8000-000000000000";

/// An admin request: `id` and `session_id` fill the path, `query` the query string; signed by
/// `OPERATOR` unless `iam` is false.
struct Admin<'a> {
    endpoint: Endpoint,
    method: &'a str,
    id: Option<&'a str>,
    session_id: Option<&'a str>,
    query: &'a [(&'a str, &'a str)],
    body: Option<Value>,
    iam: bool,
}

impl<'a> Admin<'a> {
    fn new(endpoint: Endpoint, method: &'a str) -> Self {
        Self {
            endpoint,
            method,
            id: None,
            session_id: None,
            query: &[],
            body: None,
            iam: true,
        }
    }

    fn id(mut self, id: &'a str) -> Self {
        self.id = Some(id);
        self
    }

    async fn send(self, t: &TestApp) -> TestResponse {
        let body = self.body.map(|body| body.to_string());
        t.send(
            self.endpoint,
            RawRequest {
                method: self.method,
                body: body.as_deref(),
                path_id: self.id,
                session_id: self.session_id,
                query: self.query,
                iam_arn: self.iam.then_some(OPERATOR),
                ..RawRequest::default()
            },
        )
        .await
    }
}

/// A registered user's id and the access and refresh tokens of `sessions` logins.
async fn user_with_sessions(t: &TestApp, sessions: usize) -> (String, Vec<(String, String)>) {
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let user_id = registered.body["user"]["id"].as_str().unwrap().to_owned();
    let mut tokens = Vec::new();
    for _ in 0..sessions {
        let pair = t.login(PHONE).await;
        tokens.push((
            pair["access"].as_str().unwrap().to_owned(),
            pair["refresh"].as_str().unwrap().to_owned(),
        ));
    }
    (user_id, tokens)
}

async fn find(t: &TestApp, query: &[(&str, &str)]) -> TestResponse {
    let mut request = Admin::new(Endpoint::AdminFindUsers, "GET");
    request.query = query;
    request.send(t).await
}

/// The id of the session `access` belongs to, from the owner's own session list.
async fn current_session(t: &TestApp, access: &str) -> String {
    let listed = t.authed(Endpoint::Sessions, "GET", access, None).await;
    listed.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|session| session["current"] == true)
        .and_then(|session| session["id"].as_str())
        .unwrap()
        .to_owned()
}

/// The accounts of the audit events `name` the operator caused.
fn operator_audit(logs: &CapturedLogs, name: &str) -> Vec<String> {
    logs.audit_events()
        .iter()
        .filter(|event| event["event"] == name && event["operator"] == OPERATOR)
        .map(|event| event["user_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn events_named(events: &[(String, Value)], detail_type: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|(kind, _)| kind == detail_type)
        .map(|(_, detail)| detail.clone())
        .collect()
}

#[tokio::test]
async fn every_admin_route_refuses_a_request_without_the_iam_identity_and_changes_nothing() {
    let t = TestApp::new().await;
    let (user_id, tokens) = user_with_sessions(&t, 1).await;
    let access = &tokens[0].0;
    let session_id = current_session(&t, access).await;
    let routes = [
        (Endpoint::AdminFindUsers, "GET", None),
        (Endpoint::AdminUser, "GET", None),
        (Endpoint::AdminUser, "DELETE", None),
        (
            Endpoint::AdminUserStatus,
            "PUT",
            Some(json!({ "disabled": true })),
        ),
        (Endpoint::AdminSessions, "GET", None),
        (Endpoint::AdminSessions, "DELETE", None),
        (Endpoint::AdminSessionRevoke, "DELETE", None),
        // A wrong body: the identity is asked for before anything else.
        (Endpoint::AdminUserStatus, "PUT", Some(json!({ "x": 1 }))),
    ];
    let jwt_claims = json!({ "claims": { "sub": user_id }, "scopes": null });
    for (endpoint, method, body) in routes {
        for with_jwt in [false, true] {
            let body = body.as_ref().map(Value::to_string);
            let response = t
                .send(
                    endpoint,
                    RawRequest {
                        method,
                        body: body.as_deref(),
                        path_id: Some(&user_id),
                        session_id: Some(&session_id),
                        query: &[("id", &user_id)],
                        // A JWT authorizer's context is no IAM identity.
                        authorizer_jwt: with_jwt.then_some(&jwt_claims),
                        ..RawRequest::default()
                    },
                )
                .await;
            assert_eq!(response.status, 403, "{endpoint:?} {method}: {response:?}");
            assert_eq!(
                response.body,
                json!({ "error": "This route takes AWS IAM (SigV4) authorization only." })
            );
        }
    }
    // Nothing changed: the account, its session and no event beyond the sign-up's and login's.
    let user = t
        .user(PHONE_E164)
        .await
        .expect("the account is still there");
    assert!(!user.contains_key("disabled"));
    assert_eq!(t.profile_status(access).await, 200);
    let mut kinds: Vec<String> = t.recorded_events().await.into_iter().map(|e| e.0).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "session.started.v1",
            "session.started.v1",
            "user.registered.v1"
        ]
    );
}

#[tokio::test]
async fn an_account_is_found_by_its_number_in_any_form_or_by_its_id_and_shows_no_secret() {
    let t = TestApp::new().await;
    let (user_id, _) = user_with_sessions(&t, 2).await;
    for form in [
        PHONE,
        PHONE_E164,
        "+98 910 123 4567",
        "0098 910 123 4567",
        "۰۹۱۰۱۲۳۴۵۶۷",
    ] {
        let found = find(&t, &[("phone", form)]).await;
        assert_eq!(found.status, 200, "{form}: {found:?}");
        let users = found.body["users"].as_array().unwrap();
        assert_eq!(users.len(), 1, "{form}");
        assert_eq!(users[0]["id"], user_id.as_str());
    }
    let by_id = Admin::new(Endpoint::AdminUser, "GET")
        .id(&user_id)
        .send(&t)
        .await;
    assert_eq!(by_id.status, 200, "{by_id:?}");
    let shown = &by_id.body;
    assert_eq!(shown["phone"], PHONE_E164);
    assert_eq!(shown["disabled"], false);
    // The registration's session and two logins.
    assert_eq!(shown["live_sessions"], 3);
    assert!(shown["last_login_at"].is_string(), "{shown}");
    let stored = t.user(PHONE_E164).await.unwrap();
    let hash = text(&stored, "password_hash").unwrap();
    assert!(!by_id.body.to_string().contains(hash));
    assert!(!by_id.body.to_string().contains("argon2"));

    // The same account through its id as a query.
    let found = find(&t, &[("id", &user_id)]).await;
    assert_eq!(found.body["users"][0], by_id.body);

    // Nobody: an empty list for a search, 404 for a path.
    let nobody = find(&t, &[("phone", "09121234567")]).await;
    assert_eq!((nobody.status, nobody.body), (200, json!({ "users": [] })));
    let unknown = Admin::new(Endpoint::AdminUser, "GET")
        .id(UNKNOWN_ID)
        .send(&t)
        .await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let not_an_id = Admin::new(Endpoint::AdminUser, "GET")
        .id("not-a-uuid")
        .send(&t)
        .await;
    assert_eq!(not_an_id.status, 404, "{not_an_id:?}");

    // Exactly one of the two parameters, each well formed.
    for query in [
        &[][..],
        &[("phone", PHONE), ("id", UNKNOWN_ID)][..],
        &[("id", "42")][..],
        &[("phone", "not a number")][..],
    ] {
        let refused = find(&t, query).await;
        assert_eq!(refused.status, 400, "{query:?}: {refused:?}");
    }
}

#[tokio::test]
async fn last_login_at_is_the_last_session_start() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let user_id = registered.body["user"]["id"].as_str().unwrap().to_owned();
    let registered_at = t.user(PHONE_E164).await.unwrap();
    let created = auth_tests::num(&registered_at, "created_at").unwrap();
    assert_eq!(
        auth_tests::num(&registered_at, "last_login_at"),
        Some(created)
    );
    t.app.clock.advance(3600);
    t.login(PHONE).await;
    let after = t.user(PHONE_E164).await.unwrap();
    let logged_in = auth_tests::num(&after, "last_login_at").unwrap();
    // The clock is real time plus the advance: a loaded machine may cross a second or two.
    assert!(
        (created + 3600..created + 3630).contains(&logged_in),
        "{logged_in} vs {created}"
    );
    let shown = Admin::new(Endpoint::AdminUser, "GET")
        .id(&user_id)
        .send(&t)
        .await;
    let expected = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(logged_in),
    )
    .to_string();
    assert_eq!(shown.body["last_login_at"], expected.as_str());
}

#[tokio::test]
async fn disable_and_enable_through_the_route() {
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::INFO);
    let t = TestApp::new().await;
    let (user_id, tokens) = user_with_sessions(&t, 1).await;
    let (access, _) = &tokens[0];
    let status = |disabled: Value| {
        let mut request = Admin::new(Endpoint::AdminUserStatus, "PUT").id(&user_id);
        request.body = Some(json!({ "disabled": disabled }));
        request.send(&t)
    };

    let disabled = status(json!(true)).await;
    assert_eq!(disabled.status, 200, "{disabled:?}");
    assert_eq!(disabled.body["disabled"], true);
    assert_eq!(disabled.body["live_sessions"], 0);
    assert_eq!(
        t.user(PHONE_E164).await.unwrap()["disabled"].as_bool(),
        Ok(&true)
    );
    let refused = t.authed(Endpoint::Profile, "GET", access, None).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.body["disabled"], true);

    let enabled = status(json!(false)).await;
    assert_eq!(enabled.status, 200, "{enabled:?}");
    assert_eq!(enabled.body["disabled"], false);
    assert!(!t.user(PHONE_E164).await.unwrap().contains_key("disabled"));
    let login = t
        .post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": PASSWORD }),
        )
        .await;
    assert_eq!(login.status, 200, "{login:?}");

    // A body that breaks the schema, for an account or not.
    for body in [json!("yes"), json!(null), json!(1)] {
        let refused = status(body.clone()).await;
        assert_eq!(refused.status, 400, "{body}: {refused:?}");
    }
    let mut unknown = Admin::new(Endpoint::AdminUserStatus, "PUT").id(UNKNOWN_ID);
    unknown.body = Some(json!({ "disabled": true }));
    assert_eq!(unknown.send(&t).await.status, 404);

    let audit: Vec<(String, String)> = logs
        .audit_events()
        .iter()
        .filter(|event| event.get("operator").is_some())
        .map(|event| {
            (
                event["event"].as_str().unwrap().to_owned(),
                event["operator"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        audit,
        [
            ("account_disabled".to_owned(), OPERATOR.to_owned()),
            ("account_enabled".to_owned(), OPERATOR.to_owned())
        ]
    );
}

#[tokio::test]
async fn the_session_list_comes_in_pages_that_together_hold_every_live_session_once() {
    let t = TestApp::new().await;
    let (user_id, tokens) = user_with_sessions(&t, 4).await;
    // One ended by its owner: not listed.
    t.authed(Endpoint::Logout, "POST", &tokens[0].0, None).await;
    let page = async |limit: &str, after: Option<String>| {
        let mut query = vec![("limit", limit)];
        if let Some(after) = after.as_deref() {
            query.push(("after", after));
        }
        let mut request = Admin::new(Endpoint::AdminSessions, "GET").id(&user_id);
        request.query = &query;
        request.send(&t).await
    };
    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let answer = page("2", after).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let sessions = answer.body["sessions"].as_array().unwrap();
        assert!(sessions.len() <= 2);
        seen.extend(
            sessions
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        match answer.body.get("next") {
            Some(next) => after = Some(next.as_str().unwrap().to_owned()),
            None => break,
        }
    }
    // The registration's session and three of the four logins; a full page promises more, so
    // the last may be empty.
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(pages, 3);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique, seen, "in the order of their ids, each once");
    let stored: Vec<String> = t
        .scan(&t.tables().sessions)
        .await
        .iter()
        .filter_map(|item| {
            text(item, "sk")?
                .strip_prefix("session#")
                .map(str::to_owned)
        })
        .collect();
    assert!(seen.iter().all(|id| stored.contains(id)));

    for limit in ["0", "101", "x"] {
        assert_eq!(page(limit, None).await.status, 400, "limit {limit}");
    }
    let bad_after = page("2", Some("not-a-uuid".to_owned())).await;
    assert_eq!(bad_after.status, 400);
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session_at_once_even_while_they_refresh() {
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::INFO);
    let t = TestApp::new().await;
    let (user_id, tokens) = user_with_sessions(&t, 6).await;
    // Every session refreshes while the operator signs the account out.
    let refreshes = tokens.iter().map(|(_, refresh)| t.refresh(refresh));
    let sign_out = Admin::new(Endpoint::AdminSessions, "DELETE")
        .id(&user_id)
        .send(&t);
    let (refreshed, signed_out) = tokio::join!(join_all(refreshes), sign_out);
    assert_eq!(signed_out.status, 204, "{signed_out:?}");

    // No token from before or from a refresh that raced it works.
    for (access, refresh) in &tokens {
        assert_eq!(t.profile_status(access).await, 401);
        assert_eq!(t.refresh(refresh).await.status, 401);
    }
    for answer in refreshed.iter().filter(|answer| answer.status == 200) {
        let access = answer.body["tokens"]["access"].as_str().unwrap();
        assert_eq!(t.profile_status(access).await, 401, "a raced refresh");
    }
    let listed = Admin::new(Endpoint::AdminSessions, "GET")
        .id(&user_id)
        .send(&t)
        .await;
    assert_eq!(listed.body, json!({ "sessions": [] }));
    let signed = events_named(&t.recorded_events().await, "user.signed_out.v1");
    assert_eq!(signed.len(), 1);
    assert_eq!(signed[0]["user_id"], user_id.as_str());
    assert!(signed[0].get("session_id").is_none());
    assert!(signed[0].get("client_network").is_none());
    assert_eq!(
        operator_audit(&logs, "signed_out_everywhere"),
        [user_id.as_str()]
    );

    // The owner can log in again.
    assert_eq!(t.login(PHONE).await["token_type"], "Bearer");
}

#[tokio::test]
async fn one_session_is_ended_and_the_others_live_on() {
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::INFO);
    let t = TestApp::new().await;
    let (user_id, tokens) = user_with_sessions(&t, 2).await;
    let (ended_access, ended_refresh) = &tokens[0];
    let (kept_access, _) = &tokens[1];
    let ended_id = current_session(&t, ended_access).await;
    let revoke = async |session_id: String| {
        let mut request = Admin::new(Endpoint::AdminSessionRevoke, "DELETE").id(&user_id);
        request.session_id = Some(&session_id);
        request.send(&t).await
    };
    let revoked = revoke(ended_id.clone()).await;
    assert_eq!(revoked.status, 204, "{revoked:?}");
    assert_eq!(t.profile_status(ended_access).await, 401);
    assert_eq!(t.refresh(ended_refresh).await.status, 401);
    assert_eq!(t.profile_status(kept_access).await, 200);
    assert!(
        t.session_item(&user_id, &format!("session#{ended_id}"))
            .await
            .is_none()
    );
    let signed = events_named(&t.recorded_events().await, "user.signed_out.v1");
    assert_eq!(signed.len(), 1);
    assert_eq!(signed[0]["session_id"], ended_id.as_str());
    assert_eq!(operator_audit(&logs, "session_revoked"), [user_id.as_str()]);

    // Again, or a session that is not one of its own: 404.
    assert_eq!(revoke(ended_id).await.status, 404);
    assert_eq!(revoke(UNKNOWN_ID.to_owned()).await.status, 404);
    assert_eq!(revoke("nope".to_owned()).await.status, 404);
}

#[tokio::test]
async fn an_operator_deletes_an_account_as_its_owner_would() {
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::INFO);
    let t = TestApp::new().await;
    let (user_id, tokens) = user_with_sessions(&t, 1).await;
    let (access, refresh) = &tokens[0];
    let deleted = Admin::new(Endpoint::AdminUser, "DELETE")
        .id(&user_id)
        .send(&t)
        .await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    assert!(t.user(PHONE_E164).await.is_none());
    assert_eq!(t.profile_status(access).await, 401);
    assert_eq!(t.refresh(refresh).await.status, 401);
    let events = events_named(&t.recorded_events().await, "user.deleted.v1");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["by"], "operator");
    assert!(events[0].get("client_network").is_none());
    // The number can sign up again.
    let checked = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    assert_eq!(checked.body["exists"], false, "{checked:?}");
    // Gone: 404 for every route.
    let again = Admin::new(Endpoint::AdminUser, "DELETE")
        .id(&user_id)
        .send(&t)
        .await;
    assert_eq!(again.status, 404);
    let audit = logs.audit_events();
    let deletion = audit
        .iter()
        .find(|event| event["event"] == "account_deleted")
        .expect("audited");
    assert_eq!(deletion["operator"], OPERATOR);
    assert_eq!(deletion["user_id"], user_id.as_str());
    assert_eq!(deletion["phone"], "+98910***4567");
}

#[tokio::test]
async fn every_read_is_audited_with_the_operator() {
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::INFO);
    let t = TestApp::new().await;
    let (user_id, _) = user_with_sessions(&t, 1).await;
    Admin::new(Endpoint::AdminUser, "GET")
        .id(&user_id)
        .send(&t)
        .await;
    Admin::new(Endpoint::AdminSessions, "GET")
        .id(&user_id)
        .send(&t)
        .await;
    find(&t, &[("phone", PHONE)]).await;
    let reads: Vec<Value> = logs
        .audit_events()
        .into_iter()
        .filter(|event| event["event"] == "account_read")
        .collect();
    assert_eq!(reads.len(), 3, "{reads:?}");
    for read in reads {
        assert_eq!(read["operator"], OPERATOR);
        assert_eq!(read["operator_id"], "AROAEXAMPLEEXAMPLE000:operator");
        assert_eq!(read["access_key"], "ASIAEXAMPLEEXAMPLE00");
        assert_eq!(read["user_id"], user_id.as_str());
        assert!(read["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    }
    // A search that finds nothing is on the record too: which number was looked up.
    find(&t, &[("phone", "09121234567")]).await;
    let events = logs.audit_events();
    let missed = events.last().unwrap();
    assert_eq!(missed["event"], "account_read");
    assert_eq!(missed["detail"], "no_account");
    assert_eq!(missed["phone"], "+98912***4567");
    assert!(missed.get("user_id").is_none_or(Value::is_null), "{missed}");
}

async fn app_claim(t: &TestApp, access: &str) -> Option<Value> {
    t.access_claims(access).await.app.map(Value::Object)
}

async fn set_claims(t: &TestApp, user_id: &str, claims: Value) -> TestResponse {
    let mut request = Admin::new(Endpoint::AdminUserClaims, "PUT").id(user_id);
    request.body = Some(json!({ "app_claims": claims }));
    request.send(t).await
}

#[tokio::test]
async fn app_claims_appear_in_the_next_access_token_of_a_login_or_refresh_and_not_before() {
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::INFO);
    let t = TestApp::new().await;
    let (user_id, tokens) = user_with_sessions(&t, 1).await;
    let (old_access, refresh) = &tokens[0];
    assert_eq!(app_claim(&t, old_access).await, None);

    let claims =
        json!({ "roles": ["support", "billing"], "tenant": "acme", "plan": { "seats": 5 } });
    let set = set_claims(&t, &user_id, claims.clone()).await;
    assert_eq!(
        (set.status, &set.body),
        (200, &json!({ "app_claims": claims }))
    );
    // Stored on the account and on the copy the refresh reads.
    let stored = t.user(PHONE_E164).await.unwrap();
    let on_account: Value = serde_json::from_str(text(&stored, "app_claims").unwrap()).unwrap();
    assert_eq!(on_account, claims);
    let credentials = t.session_item(&user_id, "credentials").await.unwrap();
    assert_eq!(
        text(&credentials, "app_claims"),
        text(&stored, "app_claims")
    );

    // A token issued before keeps what it carried; the next ones carry the claims.
    assert_eq!(app_claim(&t, old_access).await, None);
    let refreshed = t.refresh(refresh).await;
    let access = refreshed.body["tokens"]["access"].as_str().unwrap();
    assert_eq!(app_claim(&t, access).await, Some(claims.clone()));
    let logged_in = t.login(PHONE).await;
    let access = logged_in["access"].as_str().unwrap();
    assert_eq!(app_claim(&t, access).await, Some(claims.clone()));
    // Read back, and shown with the account.
    let read = Admin::new(Endpoint::AdminUserClaims, "GET")
        .id(&user_id)
        .send(&t)
        .await;
    assert_eq!(read.body, json!({ "app_claims": claims }));
    let shown = Admin::new(Endpoint::AdminUser, "GET")
        .id(&user_id)
        .send(&t)
        .await;
    assert_eq!(shown.body["app_claims"], claims);

    // `{}` removes them: from the items, and from the next token.
    let cleared = set_claims(&t, &user_id, json!({})).await;
    assert_eq!(cleared.body, json!({ "app_claims": {} }));
    assert!(!t.user(PHONE_E164).await.unwrap().contains_key("app_claims"));
    let credentials = t.session_item(&user_id, "credentials").await.unwrap();
    assert!(!credentials.contains_key("app_claims"));
    let logged_in = t.login(PHONE).await;
    assert_eq!(
        app_claim(&t, logged_in["access"].as_str().unwrap()).await,
        None
    );

    let changed = events_named(&t.recorded_events().await, "user.claims_changed.v1");
    assert_eq!(changed.len(), 2);
    assert_eq!(changed[0]["user_id"], user_id.as_str());
    let audited = logs
        .audit_events()
        .into_iter()
        .filter(|event| event["event"] == "claims_changed")
        .count();
    assert_eq!(audited, 2);
}

#[tokio::test]
async fn app_claims_that_break_the_rules_are_refused_and_nothing_is_stored() {
    let t = TestApp::new().await;
    let (user_id, _) = user_with_sessions(&t, 0).await;
    let limit = auth_shared::app_claims::MAX_APP_CLAIMS_BYTES;
    // `{"a":"…"}` of exactly the limit fits; one byte more does not.
    let fits = "x".repeat(limit - r#"{"a":""}"#.len());
    let over = format!("{fits}x");
    for name in auth_shared::app_claims::RESERVED_NAMES {
        let refused = set_claims(&t, &user_id, json!({ name: "x" })).await;
        assert_eq!(refused.status, 400, "{name}: {refused:?}");
        assert!(refused.error().contains(name), "{refused:?}");
    }
    for claims in [
        json!({ "a": over }),
        json!(["roles"]),
        json!("admin"),
        json!(null),
    ] {
        let refused = set_claims(&t, &user_id, claims.clone()).await;
        assert_eq!(refused.status, 400, "{claims}: {refused:?}");
    }
    assert!(!t.user(PHONE_E164).await.unwrap().contains_key("app_claims"));
    assert!(events_named(&t.recorded_events().await, "user.claims_changed.v1").is_empty());
    let taken = set_claims(&t, &user_id, json!({ "a": fits })).await;
    assert_eq!(taken.status, 200, "{taken:?}");
    let logged_in = t.login(PHONE).await;
    let access = logged_in["access"].as_str().unwrap();
    assert_eq!(app_claim(&t, access).await, Some(json!({ "a": fits })));
    let unknown = set_claims(&t, UNKNOWN_ID, json!({})).await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn app_claims_follow_the_account_to_a_new_number() {
    let t = TestApp::new().await;
    let (user_id, tokens) = user_with_sessions(&t, 1).await;
    // A float that need not print back as written: the move compares the stored text.
    let claims = json!({ "tenant": "acme", "weight": 2.5e-30 });
    set_claims(&t, &user_id, claims.clone()).await;
    let new_phone = "09121234567";
    let access = &tokens[0].0;
    let change = |endpoint, body| t.authed(endpoint, "POST", access, Some(body));
    let body = json!({ "new_phone": new_phone, "password": PASSWORD });
    assert_eq!(change(Endpoint::PhoneChangeRequest, body).await.status, 200);
    let code = t.last_code_for("+989121234567").unwrap();
    let body = json!({ "new_phone": new_phone, "code": code });
    assert_eq!(change(Endpoint::PhoneChangeConfirm, body).await.status, 200);
    let moved = t.user("+989121234567").await.unwrap();
    let stored = t.user(PHONE_E164).await;
    assert!(stored.is_none(), "moved away");
    let moved_claims: Value = serde_json::from_str(text(&moved, "app_claims").unwrap()).unwrap();
    assert_eq!(moved_claims, claims);
    let login = t
        .post(
            Endpoint::Login,
            json!({ "phone": new_phone, "password": PASSWORD }),
        )
        .await;
    let access = login.body["tokens"]["access"].as_str().unwrap();
    assert_eq!(app_claim(&t, access).await, Some(claims));
}

#[tokio::test]
async fn every_route_answers_an_unknown_account_with_404_or_an_empty_list() {
    let t = TestApp::new().await;
    let routes = [
        (Endpoint::AdminUser, "GET", None),
        (Endpoint::AdminUser, "DELETE", None),
        (
            Endpoint::AdminUserStatus,
            "PUT",
            Some(json!({ "disabled": true })),
        ),
        (Endpoint::AdminUserClaims, "GET", None),
        (
            Endpoint::AdminUserClaims,
            "PUT",
            Some(json!({ "app_claims": {} })),
        ),
        (Endpoint::AdminSessions, "GET", None),
        (Endpoint::AdminSessions, "DELETE", None),
        (Endpoint::AdminSessionRevoke, "DELETE", None),
    ];
    for (endpoint, method, body) in routes {
        let mut request = Admin::new(endpoint, method).id(UNKNOWN_ID);
        request.session_id = Some(UNKNOWN_ID);
        request.body = body;
        let answer = request.send(&t).await;
        assert_eq!(answer.status, 404, "{endpoint:?} {method}: {answer:?}");
        assert_eq!(answer.error(), "No account has this id or number.");
    }
    let found = find(&t, &[("id", UNKNOWN_ID)]).await;
    assert_eq!(found.body, json!({ "users": [] }));
    assert!(t.recorded_events().await.is_empty());
}

#[tokio::test]
async fn an_enable_through_the_route_deletes_the_codes_sent_before_the_disable() {
    let t = TestApp::new().await;
    let (user_id, _) = user_with_sessions(&t, 0).await;
    let sent = t
        .post(Endpoint::LoginOtpRequest, json!({ "phone": PHONE }))
        .await;
    assert_eq!(sent.status, 200, "{sent:?}");
    let code = t.last_code_for(PHONE_E164).unwrap();
    assert_eq!(t.codes_for(PHONE_E164, "login").await.len(), 1);
    for disabled in [true, false] {
        let mut status = Admin::new(Endpoint::AdminUserStatus, "PUT").id(&user_id);
        status.body = Some(json!({ "disabled": disabled }));
        assert_eq!(status.send(&t).await.status, 200);
    }
    assert!(t.codes_for(PHONE_E164, "login").await.is_empty());
    let login = t
        .post(Endpoint::LoginOtp, json!({ "phone": PHONE, "code": code }))
        .await;
    assert_eq!(login.status, 400, "{login:?}");
}
