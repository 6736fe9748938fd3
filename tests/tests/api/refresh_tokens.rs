//! Opaque refresh tokens (`auth_shared::refresh_tokens`): never taken for access tokens nor
//! access tokens for them, only their hash stored, a forged one ending nothing; and the refresh
//! JWTs issued before them, which refresh until they expire, into opaque tokens, with their
//! reuse still detected.

use auth_shared::refresh_tokens::{self, PresentedRefresh};
use auth_tests::{
    Endpoint, PASSWORD, PHONE, PHONE_E164, RawRequest, TestApp, TestResponse, num, text,
};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

fn token(tokens: &Value, kind: &str) -> String {
    tokens[kind].as_str().unwrap().to_owned()
}

fn session_of(refresh: &str) -> PresentedRefresh {
    refresh_tokens::parse(refresh).expect("an opaque refresh token")
}

fn assert_invalid_token(response: &TestResponse, what: &str) {
    assert_eq!(response.status, 401, "{what}: {:?}", response.body);
    assert_eq!(response.error(), "Invalid or expired token.", "{what}");
}

/// Every route that takes a Bearer token, as the API answers them (a request without one is
/// `Missing bearer token.`), and what a refresh token presented there as the Bearer token gets.
#[tokio::test]
async fn a_refresh_token_presented_as_an_access_token_is_refused_by_every_bearer_route() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let tokens = &registered.body["tokens"];
    let refresh_token = token(tokens, "refresh");
    let own_session = session_of(&refresh_token).session_id;

    let mut bearer_routes = Vec::new();
    for &endpoint in Endpoint::ALL {
        for method in ["GET", "POST", "PATCH", "DELETE"] {
            // A body the route accepts, where it reads one before the Bearer token.
            let body = match (endpoint, method) {
                (Endpoint::Profile, "DELETE") => json!({ "password": PASSWORD }),
                (Endpoint::PhoneChangeRequest, _) => {
                    json!({ "new_phone": "09121234567", "password": PASSWORD })
                }
                (Endpoint::PhoneChangeConfirm, _) => {
                    json!({ "new_phone": "09121234567", "code": "123456" })
                }
                (Endpoint::PasswordChange, _) => {
                    json!({ "old_password": PASSWORD, "new_password": "a new horse battery 42" })
                }
                _ => json!({}),
            }
            .to_string();
            let request = |bearer| RawRequest {
                method,
                body: Some(&body),
                bearer,
                path_id: Some(&own_session),
                ..RawRequest::default()
            };
            let without = t.send(endpoint, request(None)).await;
            if without.status != 401 || without.error() != "Missing bearer token." {
                continue;
            }
            bearer_routes.push((endpoint, method));
            let with_refresh = t.send(endpoint, request(Some(&refresh_token))).await;
            let what = format!("{method} {}", endpoint.path());
            assert_invalid_token(&with_refresh, &what);
            let challenge = with_refresh.headers.get("www-authenticate");
            assert_eq!(
                challenge.and_then(|value| value.to_str().ok()),
                Some("Bearer error=\"invalid_token\""),
                "{what}"
            );
        }
    }

    assert_eq!(
        bearer_routes,
        [
            (Endpoint::Logout, "POST"),
            (Endpoint::Profile, "GET"),
            (Endpoint::Profile, "PATCH"),
            (Endpoint::Profile, "DELETE"),
            (Endpoint::PhoneChangeRequest, "POST"),
            (Endpoint::PhoneChangeConfirm, "POST"),
            (Endpoint::Sessions, "GET"),
            (Endpoint::SessionRevoke, "DELETE"),
            (Endpoint::PasswordChange, "POST"),
            // The example route: API Gateway's authorizer refuses a refresh token (it is no
            // JWT), and the function refuses whatever arrives without the authorizer's claims.
            (Endpoint::Hello, "GET"),
        ]
    );
    // Nothing was ended, deleted or changed: the pair still works.
    assert_eq!(t.profile_status(&token(tokens, "access")).await, 200);
    assert_eq!(t.refresh(&refresh_token).await.status, 200);
}

#[tokio::test]
async fn an_access_token_presented_as_a_refresh_token_is_refused() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let tokens = &registered.body["tokens"];
    let access = token(tokens, "access");
    let other = t.login(PHONE).await;

    assert_invalid_token(&t.refresh(&access).await, "refresh");
    let logout = t
        .authed(
            Endpoint::Logout,
            "POST",
            &token(&other, "access"),
            Some(json!({ "refresh": access })),
        )
        .await;
    assert_invalid_token(&logout, "logout");

    assert_eq!(t.profile_status(&access).await, 200, "nothing ended");
    assert_eq!(t.profile_status(&token(&other, "access")).await, 200);
}

#[tokio::test]
async fn a_forged_refresh_token_naming_a_live_session_is_refused_and_ends_nothing() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let tokens = &registered.body["tokens"];
    let genuine = token(tokens, "refresh");
    let session = session_of(&genuine);
    // The session's ids (the access token carries them too) with a secret of one's own.
    let forged = format!(
        "rt1_{}_{}_{}",
        session.user_id,
        session.session_id,
        "A".repeat(43)
    );
    assert!(refresh_tokens::parse(&forged).is_some(), "well formed");
    let other = t.login(PHONE).await;

    assert_invalid_token(&t.refresh(&forged).await, "refresh");
    let logout = t
        .authed(
            Endpoint::Logout,
            "POST",
            &token(&other, "access"),
            Some(json!({ "refresh": forged })),
        )
        .await;
    assert_invalid_token(&logout, "logout");

    // Not mistaken for a replay: the session lives on and its own token rotates.
    assert_eq!(t.profile_status(&token(tokens, "access")).await, 200);
    assert_eq!(t.refresh(&genuine).await.status, 200);
    assert_eq!(t.profile_status(&token(&other, "access")).await, 200);
}

/// A forged token is refused by its one batch read: no signature, no transaction (each would
/// cost the attacker nothing and the service a KMS request and a write).
#[tokio::test]
async fn a_forged_refresh_token_costs_one_read_and_nothing_more() {
    let gate = auth_tests::DynamoDbGate::counting();
    let t = TestApp::new().await.through(&gate).await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let session = session_of(&token(&registered.body["tokens"], "refresh"));
    let forged = format!(
        "rt1_{}_{}_{}",
        session.user_id,
        session.session_id,
        "A".repeat(43)
    );

    let before = gate.seen();
    assert_invalid_token(&t.refresh(&forged).await, "refresh");
    assert_eq!(gate.seen() - before, 1, "the batch read alone");
}

/// A spent token of one session, relabelled with the id of another session of the same user
/// (every access token of that session carries it as `sid`), is refused and ends nothing: reuse
/// revokes only the session the token was issued to.
#[tokio::test]
async fn a_spent_token_relabelled_with_another_sessions_id_ends_nothing() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let first = token(&registered.body["tokens"], "refresh");
    assert_eq!(t.refresh(&first).await.status, 200, "spent");
    let victim = t.login(PHONE).await;
    let victim_session = session_of(&token(&victim, "refresh"));
    let secret = first.rsplit('_').next().unwrap();
    let relabelled = format!(
        "rt1_{}_{}_{secret}",
        victim_session.user_id, victim_session.session_id
    );

    assert_invalid_token(&t.refresh(&relabelled).await, "refresh");
    assert_eq!(t.profile_status(&token(&victim, "access")).await, 200);
    assert_eq!(t.refresh(&token(&victim, "refresh")).await.status, 200);
}

/// A refresh JWT of the session of `tokens`, signed at `issued_at` exactly as the service
/// issued them before refresh tokens were opaque, and the item it then wrote beside it
/// (`refresh#<sha256(jti)>`, in the stored form the sessions table still reads).
async fn legacy_refresh_token(t: &TestApp, tokens: &Value, issued_at: u64) -> (String, String) {
    let session = session_of(&token(tokens, "refresh"));
    let (jwt, id_hash) = t
        .app
        .tokens
        .legacy_refresh_jwt(&session.user_id, &session.session_id, issued_at)
        .await
        .unwrap();
    let sk = format!("refresh#{id_hash}");
    let ttl = t.app.config.refresh_token_ttl_seconds;
    t.dynamodb
        .put_item()
        .table_name(&t.tables().sessions)
        .item("user_id", AttributeValue::S(session.user_id.clone()))
        .item("sk", AttributeValue::S(sk.clone()))
        .item("sid", AttributeValue::S(session.session_id.clone()))
        .item("spent", AttributeValue::Bool(false))
        .item(
            "expires_at",
            AttributeValue::N((issued_at + ttl).to_string()),
        )
        .send()
        .await
        .unwrap();
    (jwt, sk)
}

#[tokio::test]
async fn a_legacy_refresh_jwt_refreshes_once_into_an_opaque_token_and_its_replay_ends_the_session()
{
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let tokens = &registered.body["tokens"];
    let session = session_of(&token(tokens, "refresh"));
    let (legacy, legacy_sk) = legacy_refresh_token(&t, tokens, t.app.clock.now()).await;
    assert_eq!(
        jsonwebtoken::decode_header(&legacy).unwrap().typ.as_deref(),
        Some("refresh+jwt")
    );

    let rotated = t.refresh(&legacy).await;

    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let new_tokens = &rotated.body["tokens"];
    let successor = token(new_tokens, "refresh");
    assert!(successor.starts_with("rt1_"), "{successor}");
    assert_eq!(session_of(&successor).session_id, session.session_id);
    assert_eq!(t.profile_status(&token(new_tokens, "access")).await, 200);
    let spent = t.session_item(&session.user_id, &legacy_sk).await.unwrap();
    assert_eq!(spent.get("spent"), Some(&AttributeValue::Bool(true)));
    let session_item = format!("session#{}", session.session_id);
    let extended = t
        .session_item(&session.user_id, &session_item)
        .await
        .unwrap();
    assert!(num(&extended, "last_used_at").is_some());
    assert_eq!(text(&extended, "sk"), Some(session_item.as_str()));

    // The successor rotates as any opaque token.
    let next = t.refresh(&successor).await;
    assert_eq!(next.status, 200, "{:?}", next.body);

    // Past the grace window, the spent JWT is a replay: the whole session ends.
    t.app
        .clock
        .advance(t.app.config.refresh_reuse_grace_seconds + 1);
    assert_invalid_token(&t.refresh(&legacy).await, "replay");
    assert!(
        t.session_item(&session.user_id, &session_item)
            .await
            .is_none()
    );
    assert_eq!(
        t.profile_status(&token(&next.body["tokens"], "access"))
            .await,
        401
    );
    assert_eq!(
        t.refresh(&token(&next.body["tokens"], "refresh"))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn an_expired_legacy_refresh_jwt_is_refused() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let tokens = &registered.body["tokens"];
    let ttl = t.app.config.refresh_token_ttl_seconds;
    let (expired, _) = legacy_refresh_token(&t, tokens, t.app.clock.now() - ttl - 1).await;

    assert_invalid_token(&t.refresh(&expired).await, "expired");

    // Refused for its age alone: the session lives on.
    assert_eq!(t.profile_status(&token(tokens, "access")).await, 200);
    assert_eq!(t.refresh(&token(tokens, "refresh")).await.status, 200);
}

#[tokio::test]
async fn logout_with_a_legacy_refresh_jwt_of_another_session_ends_both() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let current = &registered.body["tokens"];
    let other = t.login(PHONE).await;
    let (legacy, _) = legacy_refresh_token(&t, &other, t.app.clock.now()).await;

    let response = t
        .authed(
            Endpoint::Logout,
            "POST",
            &token(current, "access"),
            Some(json!({ "refresh": legacy })),
        )
        .await;

    assert_eq!(response.status, 204, "{:?}", response.body);
    assert_eq!(t.profile_status(&token(current, "access")).await, 401);
    assert_eq!(t.profile_status(&token(&other, "access")).await, 401);
}
