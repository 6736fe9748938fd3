//! `POST /auth/refresh/` and `POST /auth/logout/`

use auth_shared::refresh_tokens::{self, PresentedRefresh};
use auth_tests::{Endpoint, PHONE, PHONE_E164, RawRequest, TestApp, now, num, text};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

fn token(tokens: &Value, kind: &str) -> String {
    tokens[kind].as_str().unwrap().to_owned()
}

/// The secret part of an opaque refresh token (after the user and session ids).
fn secret(refresh: &str) -> &str {
    refresh.splitn(4, '_').nth(3).expect("a secret")
}

/// The session an opaque refresh token names, and the hash its item is stored under.
fn claims(refresh: &str) -> PresentedRefresh {
    refresh_tokens::parse(refresh).expect("an opaque refresh token")
}

#[tokio::test]
async fn a_refresh_token_is_spent_for_a_new_pair_in_the_same_session() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let first = token(&registered.body["tokens"], "refresh");
    let old_claims = claims(&first);

    let response = t.refresh(&first).await;

    assert_eq!(response.status, 200, "{:?}", response.body);
    let tokens = &response.body["tokens"];
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let second = token(tokens, "refresh");
    assert_ne!(second, first);
    let new_claims = claims(&second);
    assert_eq!(
        new_claims.session_id, old_claims.session_id,
        "same session (token family)"
    );
    assert_eq!(new_claims.user_id, old_claims.user_id);
    assert_eq!(t.profile_status(&token(tokens, "access")).await, 200);

    let user = &old_claims.user_id;
    let spent = t
        .session_item(user, &format!("refresh#{}", old_claims.id_hash))
        .await
        .unwrap();
    assert_eq!(spent.get("spent"), Some(&AttributeValue::Bool(true)));
    let fresh = t
        .session_item(user, &format!("refresh#{}", new_claims.id_hash))
        .await
        .unwrap();
    assert_eq!(fresh.get("spent"), Some(&AttributeValue::Bool(false)));
    assert!(
        t.scan(&t.tables().sessions).await.iter().all(|item| item
            .values()
            .all(|v| v.as_s().map_or(true, |s| !s.contains(secret(&first))
                && !s.contains(secret(&second))))),
        "only hashes of refresh token secrets are stored"
    );
    let session = t
        .session_item(user, &format!("session#{}", old_claims.session_id))
        .await
        .unwrap();
    let new_expiry = num(&fresh, "expires_at").unwrap();
    assert_eq!(num(&session, "expires_at"), Some(new_expiry));
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let first = token(&registered.body["tokens"], "refresh");
    let rotated = t.refresh(&first).await;
    let second = token(&rotated.body["tokens"], "refresh");
    let second_access = token(&rotated.body["tokens"], "access");
    t.app
        .clock
        .advance(t.app.config.refresh_reuse_grace_seconds + 1);

    let replay = t.refresh(&first).await;

    assert_eq!(replay.status, 401);
    assert_eq!(replay.body, json!({ "error": "Invalid or expired token." }));
    assert_eq!(
        t.refresh(&second).await.status,
        401,
        "the newer token dies too"
    );
    assert_eq!(
        t.profile_status(&second_access).await,
        401,
        "and the session's access"
    );
    let sid = claims(&second).session_id;
    let user = registered.body["user"]["id"].as_str().unwrap();
    assert!(
        t.session_item(user, &format!("session#{sid}"))
            .await
            .is_none()
    );

    // Other sessions of the user are not affected.
    let other = t.login(PHONE).await;
    assert_eq!(t.refresh(&token(&other, "refresh")).await.status, 200);
}

#[tokio::test]
async fn a_just_spent_refresh_token_rotates_again_inside_the_grace_window() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let first = token(&registered.body["tokens"], "refresh");
    let before_spend = t.app.clock.now();
    let rotated = t.refresh(&first).await;
    let after_spend = t.app.clock.now();
    assert_eq!(rotated.status, 200);
    let grace = t.app.config.refresh_reuse_grace_seconds;
    assert_eq!(grace, 10, "the default");
    // Well inside the window: the real clock also ticks, by seconds on a loaded machine.
    t.app.clock.advance(grace / 2);

    // A second tab (or a retry after a lost answer) presents the spent token.
    let again = t.refresh(&first).await;

    assert_eq!(again.status, 200, "{:?}", again.body);
    let first_claims = claims(&first);
    let again_refresh = token(&again.body["tokens"], "refresh");
    assert_eq!(
        claims(&again_refresh).session_id,
        first_claims.session_id,
        "same session"
    );
    for pair in [&rotated.body["tokens"], &again.body["tokens"]] {
        assert_eq!(t.profile_status(&token(pair, "access")).await, 200);
    }
    let spent = t
        .session_item(
            &first_claims.user_id,
            &format!("refresh#{}", first_claims.id_hash),
        )
        .await
        .unwrap();
    // The real clock may tick between the reads: the spend is within them.
    let spent_at = num(&spent, "spent_at").unwrap();
    assert!(
        (before_spend..=after_spend).contains(&spent_at),
        "the window is anchored at the first spend"
    );

    // Both successors keep rotating normally.
    assert_eq!(
        t.refresh(&token(&rotated.body["tokens"], "refresh"))
            .await
            .status,
        200
    );
    assert_eq!(t.refresh(&again_refresh).await.status, 200);

    // Past the window, the spent token is a replay: the session ends.
    t.app.clock.advance(grace);
    assert_eq!(t.refresh(&first).await.status, 401);
    assert_eq!(
        t.profile_status(&token(&again.body["tokens"], "access"))
            .await,
        401
    );
    assert!(
        t.session_item(
            &first_claims.user_id,
            &format!("session#{}", first_claims.session_id)
        )
        .await
        .is_none()
    );
}

#[tokio::test]
async fn without_a_grace_window_any_reuse_revokes_the_session() {
    let t = TestApp::with_env(&[("REFRESH_REUSE_GRACE_SECONDS", "0")]).await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let first = token(&registered.body["tokens"], "refresh");
    let rotated = t.refresh(&first).await;
    assert_eq!(rotated.status, 200);

    assert_eq!(t.refresh(&first).await.status, 401);
    assert_eq!(
        t.refresh(&token(&rotated.body["tokens"], "refresh"))
            .await
            .status,
        401,
        "the session was revoked"
    );
}

#[tokio::test]
async fn access_malformed_foreign_and_expired_tokens_are_refused_as_refresh() {
    let t = TestApp::with_env(&[("REFRESH_TOKEN_TTL_SECONDS", "1")]).await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let tokens = &registered.body["tokens"];
    let other_service = TestApp::with_env(&[(
        "LOCAL_JWT_SIGNING_KEY",
        "some-other-deployment-key-0123456789abcdef",
    )])
    .await;
    let foreign = other_service
        .app
        .tokens
        .issue(("someone", "some-session"), &Default::default(), now())
        .await
        .unwrap()
        .pair
        .refresh;

    // A refresh JWT (as issued before refresh tokens were opaque) of a key this service does not
    // know: the published keys are read again, and it is refused.
    let (foreign_legacy, _) = other_service
        .app
        .tokens
        .legacy_refresh_jwt("someone", "some-session", now())
        .await
        .unwrap();

    for bad in [
        token(tokens, "access"),
        "not.a.jwt".to_owned(),
        String::new(),
        foreign,
        foreign_legacy,
    ] {
        let response = t.refresh(&bad).await;
        assert_eq!(response.status, 401, "{bad}");
        assert_eq!(response.error(), "Invalid or expired token.");
    }

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let expired = t.refresh(&token(tokens, "refresh")).await;
    assert_eq!(expired.status, 401);
}

#[tokio::test]
async fn logout_ends_the_session_at_once_and_only_that_one() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let tokens = &registered.body["tokens"];
    let other = t.login(PHONE).await;

    let response = t
        .authed(Endpoint::Logout, "POST", &token(tokens, "access"), None)
        .await;

    assert_eq!(response.status, 204);
    assert_eq!(t.refresh(&token(tokens, "refresh")).await.status, 401);
    assert_eq!(
        t.profile_status(&token(tokens, "access")).await,
        401,
        "access refused at once"
    );
    assert_eq!(t.profile_status(&token(&other, "access")).await, 200);
    assert_eq!(t.refresh(&token(&other, "refresh")).await.status, 200);
}

#[tokio::test]
async fn logout_with_all_ends_every_session_of_the_user() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let sessions = [
        registered.body["tokens"].clone(),
        t.login(PHONE).await,
        t.login(PHONE).await,
    ];
    let stranger = t.registered_user("09121234567", "+989121234567").await;

    let response = t
        .authed(
            Endpoint::Logout,
            "POST",
            &token(&sessions[1], "access"),
            Some(json!({ "all": true })),
        )
        .await;

    assert_eq!(response.status, 204);
    for tokens in &sessions {
        assert_eq!(t.profile_status(&token(tokens, "access")).await, 401);
        assert_eq!(t.refresh(&token(tokens, "refresh")).await.status, 401);
    }
    let stranger_access = token(&stranger.body["tokens"], "access");
    assert_eq!(
        t.profile_status(&stranger_access).await,
        200,
        "other users keep theirs"
    );
}

#[tokio::test]
async fn logout_with_a_refresh_token_of_another_session_ends_both() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let current = &registered.body["tokens"];
    let other = t.login(PHONE).await;

    let response = t
        .authed(
            Endpoint::Logout,
            "POST",
            &token(current, "access"),
            Some(json!({ "refresh": token(&other, "refresh") })),
        )
        .await;

    assert_eq!(response.status, 204);
    assert_eq!(t.profile_status(&token(current, "access")).await, 401);
    assert_eq!(t.profile_status(&token(&other, "access")).await, 401);
}

#[tokio::test]
async fn logout_needs_a_valid_bearer_access_token() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let tokens = &registered.body["tokens"];

    let missing = t.send(Endpoint::Logout, RawRequest::default()).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.error(), "Missing bearer token.");
    assert_eq!(missing.headers.get("www-authenticate").unwrap(), "Bearer");

    let with_refresh = t
        .authed(Endpoint::Logout, "POST", &token(tokens, "refresh"), None)
        .await;
    assert_eq!(with_refresh.status, 401);
    assert_eq!(
        with_refresh.headers.get("www-authenticate").unwrap(),
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(
        t.profile_status(&token(tokens, "access")).await,
        200,
        "nothing was revoked"
    );
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_often_it_is_refreshed() {
    let t = TestApp::with_env(&[("SESSION_MAX_SECONDS", "86400")]).await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let refreshed = t
        .refresh(registered.body["tokens"]["refresh"].as_str().unwrap())
        .await;
    assert_eq!(refreshed.status, 200);
    let tokens = refreshed.body["tokens"].clone();
    let session = t
        .scan(&t.tables().sessions)
        .await
        .into_iter()
        .find(|item| text(item, "sk").unwrap().starts_with("session#"))
        .unwrap();
    let expires_at = num(&session, "expires_at").unwrap();
    assert!(
        expires_at <= now() + 86_400,
        "a refresh never extends the session past its lifetime"
    );

    // A day after the login (the access token itself has not expired by its own clock).
    t.app.clock.advance(86_400);

    assert_eq!(
        t.profile_status(tokens["access"].as_str().unwrap()).await,
        401
    );
    assert_eq!(
        t.refresh(tokens["refresh"].as_str().unwrap()).await.status,
        401
    );
}
