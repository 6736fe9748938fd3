//! `GET | PATCH | DELETE /auth/profile/`

use auth_tests::{Endpoint, PASSWORD, PHONE, PHONE_E164, RawRequest, TestApp, text};
use serde_json::{Value, json};

fn access(tokens: &Value) -> String {
    tokens["access"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_profile_shows_the_account_and_never_the_password_hash() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;

    let response = t
        .authed(
            Endpoint::Profile,
            "GET",
            &access(&registered.body["tokens"]),
            None,
        )
        .await;

    assert_eq!(response.status, 200, "{:?}", response.body);
    let created_at = response.body["created_at"].as_str().unwrap().to_owned();
    assert_eq!(
        response.body,
        json!({
            "id": registered.body["user"]["id"],
            "phone": PHONE_E164,
            "first_name": "Sara",
            "last_name": "Ahmadi",
            "email": "sara@example.com",
            "created_at": created_at,
        })
    );
    assert!(
        created_at.starts_with("20") && created_at.ends_with('Z'),
        "{created_at}"
    );
    assert!(!response.body.to_string().contains("argon2"));
}

#[tokio::test]
async fn the_profile_needs_a_live_access_token() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let tokens = &registered.body["tokens"];

    let missing = t
        .send(
            Endpoint::Profile,
            RawRequest {
                method: "GET",
                ..Default::default()
            },
        )
        .await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.error(), "Missing bearer token.");

    for bad in [tokens["refresh"].as_str().unwrap(), "garbage", "a.b.c"] {
        let response = t.authed(Endpoint::Profile, "GET", bad, None).await;
        assert_eq!(response.status, 401, "{bad}");
        assert_eq!(response.error(), "Invalid or expired token.");
    }

    let post = t
        .authed(Endpoint::Profile, "POST", &access(tokens), Some(json!({})))
        .await;
    assert_eq!(post.status, 405);
    assert_eq!(post.headers.get("allow").unwrap(), "GET, PATCH, DELETE");
}

#[tokio::test]
async fn patch_updates_only_the_given_fields() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let token = access(&registered.body["tokens"]);

    let response = t
        .authed(
            Endpoint::Profile,
            "PATCH",
            &token,
            Some(json!({ "last_name": " Karimi ", "email": "Sara@Example.ORG" })),
        )
        .await;

    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(response.body["first_name"], "Sara");
    assert_eq!(response.body["last_name"], "Karimi");
    assert_eq!(response.body["email"], "Sara@example.org");
    let stored = t.user(PHONE_E164).await.unwrap();
    assert_eq!(text(&stored, "last_name"), Some("Karimi"));
    assert_eq!(text(&stored, "email"), Some("Sara@example.org"));
    assert_eq!(text(&stored, "first_name"), Some("Sara"));

    let unchanged = t
        .authed(Endpoint::Profile, "PATCH", &token, Some(json!({})))
        .await;
    assert_eq!(unchanged.status, 200);
    assert_eq!(unchanged.body["last_name"], "Karimi");
}

#[tokio::test]
async fn patch_validates_like_registration_and_refuses_unknown_fields() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let token = access(&registered.body["tokens"]);
    let before = t.user(PHONE_E164).await;

    let cases = [
        (
            json!({ "email": "nope" }),
            "Invalid field 'email': not a valid email address.",
        ),
        (
            json!({ "first_name": "" }),
            "Invalid field 'first_name': must be 1 to 100 characters without control characters.",
        ),
        (
            json!({ "phone": "+989121234567" }),
            "Invalid field 'phone': unknown field 'phone'",
        ),
        (
            json!({ "password_hash": "x" }),
            "Invalid field 'password_hash': unknown field",
        ),
    ];
    for (body, message) in cases {
        let response = t
            .authed(Endpoint::Profile, "PATCH", &token, Some(body))
            .await;
        assert_eq!(response.status, 400);
        assert!(response.error().starts_with(message), "{:?}", response.body);
    }
    assert_eq!(t.user(PHONE_E164).await, before);
}

#[tokio::test]
async fn delete_with_a_wrong_password_is_401_and_does_not_block_the_login() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let token = access(&registered.body["tokens"]);
    for _ in 0..3 {
        let response = t
            .authed(
                Endpoint::Profile,
                "DELETE",
                &token,
                Some(json!({ "password": "wrong password" })),
            )
            .await;
        assert_eq!(response.status, 401);
        assert_eq!(response.body, json!({ "error": "Wrong password." }));
    }
    let login = t
        .post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": PASSWORD }),
        )
        .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    assert!(t.user(PHONE_E164).await.is_some());
}

#[tokio::test]
async fn delete_removes_the_account_ends_all_sessions_and_frees_the_phone() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let token = access(&registered.body["tokens"]);
    let other = t.login(PHONE).await;

    let response = t
        .authed(
            Endpoint::Profile,
            "DELETE",
            &token,
            Some(json!({ "password": PASSWORD })),
        )
        .await;

    assert_eq!(response.status, 204);
    assert!(t.user(PHONE_E164).await.is_none());
    let sessions_left: Vec<_> = t
        .scan(&t.tables().sessions)
        .await
        .into_iter()
        .filter(|item| text(item, "sk").unwrap().starts_with("session#"))
        .collect();
    assert!(sessions_left.is_empty());
    assert_eq!(
        t.authed(Endpoint::Profile, "GET", &access(&other), None)
            .await
            .status,
        401
    );
    let refresh = t
        .post(Endpoint::Refresh, json!({ "refresh": other["refresh"] }))
        .await;
    assert_eq!(refresh.status, 401);

    let again = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["exists"], false, "the phone can register again");
}
