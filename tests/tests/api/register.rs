//! `POST /auth/register/`

use auth_shared::tokens::TokenType;
use auth_tests::{Endpoint, PASSWORD, PHONE, PHONE_E164, TestApp, now, num, register_body, text};
use serde_json::json;

#[tokio::test]
async fn a_verified_phone_registers_and_gets_tokens() {
    let t = TestApp::new().await;
    let token = t.verified_token(PHONE, PHONE_E164).await;

    let response = t.post(Endpoint::Register, register_body(&token)).await;

    assert_eq!(response.status, 201, "{:?}", response.body);
    let body = &response.body;
    assert_eq!(body["message"], "User registered successfully!");
    let user_id = body["user"]["id"].as_str().unwrap();
    assert_eq!(
        body["user"],
        json!({
            "id": user_id,
            "phone": PHONE_E164,
            "first_name": "Sara",
            "last_name": "Ahmadi",
            "email": "sara@example.com",
        })
    );
    assert_eq!(body["tokens"]["token_type"], "Bearer");
    assert_eq!(body["tokens"]["expires_in"], 900);

    let access = t
        .app
        .tokens
        .verify(
            body["tokens"]["access"].as_str().unwrap(),
            TokenType::Access,
        )
        .await
        .unwrap();
    assert_eq!(
        access.sub, user_id,
        "the subject is the user id, not the phone"
    );
    assert_eq!(access.exp, access.iat + 900);
    // The refresh token is opaque: it names the session, and its item holds its expiry.
    let refresh = body["tokens"]["refresh"].as_str().unwrap();
    assert!(
        jsonwebtoken::decode_header(refresh).is_err(),
        "not a JWT: {refresh}"
    );
    let refresh = auth_shared::refresh_tokens::parse(refresh).expect("an opaque refresh token");
    assert_eq!(
        (&refresh.user_id, &refresh.session_id),
        (&access.sub, &access.sid)
    );
    let refresh_item = t
        .scan(&t.tables().sessions)
        .await
        .into_iter()
        .find(|item| text(item, "sk") == Some(&format!("refresh#{}", refresh.id_hash)))
        .expect("the refresh token's item");
    assert_eq!(num(&refresh_item, "expires_at"), Some(access.iat + 604_800));

    let user = t.user(PHONE_E164).await.unwrap();
    assert_eq!(text(&user, "user_id"), Some(user_id));
    let hash = text(&user, "password_hash").unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert!(
        user.values()
            .all(|v| v.as_s().map_or(true, |s| !s.contains(PASSWORD)))
    );
    assert!(num(&user, "created_at").unwrap() <= now());
    assert!(
        t.scan(&t.tables().registration_tokens).await.is_empty(),
        "token spent"
    );
}

#[tokio::test]
async fn tokens_of_one_type_are_refused_as_the_other() {
    let t = TestApp::new().await;
    let response = t.registered_user(PHONE, PHONE_E164).await;
    let access = response.body["tokens"]["access"].as_str().unwrap();
    let refresh = response.body["tokens"]["refresh"].as_str().unwrap();
    assert!(
        t.app
            .tokens
            .verify(access, TokenType::Refresh)
            .await
            .is_err()
    );
    assert!(
        t.app
            .tokens
            .verify(refresh, TokenType::Access)
            .await
            .is_err()
    );
    assert!(auth_shared::refresh_tokens::parse(access).is_none());
    let tampered = format!("{}x", &access[..access.len() - 1]);
    assert!(
        t.app
            .tokens
            .verify(&tampered, TokenType::Access)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_reg_token_field_name_of_existing_clients_is_accepted() {
    let t = TestApp::new().await;
    let token = t.verified_token(PHONE, PHONE_E164).await;
    let mut body = register_body(&token);
    let object = body.as_object_mut().unwrap();
    object.remove("registration_token");
    object.insert("reg_token".into(), json!(token));

    let response = t.post(Endpoint::Register, body).await;

    assert_eq!(response.status, 201, "{:?}", response.body);
}

#[tokio::test]
async fn an_unknown_or_used_token_is_403() {
    let t = TestApp::new().await;
    let unknown = t
        .post(Endpoint::Register, register_body("not-a-token"))
        .await;
    assert_eq!(unknown.status, 403);
    assert_eq!(
        unknown.body,
        json!({ "error": "Invalid, expired or already used registration token." })
    );

    let token = t.verified_token(PHONE, PHONE_E164).await;
    assert_eq!(
        t.post(Endpoint::Register, register_body(&token))
            .await
            .status,
        201
    );
    let reused = t.post(Endpoint::Register, register_body(&token)).await;
    assert_eq!(reused.status, 403);
    assert_eq!(t.scan(&t.tables().users).await.len(), 1);
}

#[tokio::test]
async fn an_expired_token_is_403_even_before_dynamodb_deletes_it() {
    let t = TestApp::new().await;
    let token = t.verified_token(PHONE, PHONE_E164).await;
    // Expired but not yet deleted by DynamoDB.
    t.app
        .clock
        .advance(t.app.config.registration_token_ttl_seconds + 1);

    let response = t.post(Endpoint::Register, register_body(&token)).await;

    assert_eq!(response.status, 403);
    assert!(t.scan(&t.tables().users).await.is_empty());
}

#[tokio::test]
async fn a_phone_registered_meanwhile_is_409_and_the_first_account_stays() {
    let t = TestApp::new().await;
    let first = t.verified_token(PHONE, PHONE_E164).await;
    let second = t.verified_token(PHONE, PHONE_E164).await;
    let created = t.post(Endpoint::Register, register_body(&first)).await;
    assert_eq!(created.status, 201);

    let mut body = register_body(&second);
    body["first_name"] = json!("Mallory");
    let conflict = t.post(Endpoint::Register, body).await;

    assert_eq!(conflict.status, 409);
    assert_eq!(
        conflict.body,
        json!({ "error": "This phone number is already registered." })
    );
    let user = t.user(PHONE_E164).await.unwrap();
    assert_eq!(text(&user, "first_name"), Some("Sara"));
    assert_eq!(t.scan(&t.tables().users).await.len(), 1);
}

#[tokio::test]
async fn invalid_fields_are_400_naming_the_field_and_do_not_burn_the_token() {
    let t = TestApp::new().await;
    let token = t.verified_token(PHONE, PHONE_E164).await;
    let cases = [
        (
            "password",
            json!("short"),
            "Invalid field 'password': must be 8 to 128 characters.",
        ),
        (
            "password",
            json!("x".repeat(129)),
            "Invalid field 'password': must be 8 to 128 characters.",
        ),
        (
            "email",
            json!("not-an-email"),
            "Invalid field 'email': not a valid email address.",
        ),
        (
            "first_name",
            json!("  "),
            "Invalid field 'first_name': must be 1 to 100 characters without control characters.",
        ),
        (
            "last_name",
            json!("a\u{7}b"),
            "Invalid field 'last_name': must be 1 to 100 characters without control characters.",
        ),
        (
            "email",
            json!(42),
            "Invalid field 'email': invalid type: integer '42', expected a string.",
        ),
    ];
    for (field, value, message) in cases {
        let mut body = register_body(&token);
        body[field] = value;
        let response = t.post(Endpoint::Register, body).await;
        assert_eq!(response.status, 400, "{field}");
        assert_eq!(response.body, json!({ "error": message }));
    }
    let mut missing = register_body(&token);
    missing.as_object_mut().unwrap().remove("last_name");
    let response = t.post(Endpoint::Register, missing).await;
    assert_eq!(response.status, 400);
    assert_eq!(
        response.error(),
        "Invalid request: missing field 'last_name'."
    );

    assert!(t.scan(&t.tables().users).await.is_empty());
    let ok = t.post(Endpoint::Register, register_body(&token)).await;
    assert_eq!(ok.status, 201, "the token survived the refused attempts");
}

#[tokio::test]
async fn a_password_of_128_non_latin_characters_is_accepted() {
    let t = TestApp::new().await;
    let token = t.verified_token(PHONE, PHONE_E164).await;
    let mut body = register_body(&token);
    body["password"] = json!("گ".repeat(128));
    let response = t.post(Endpoint::Register, body).await;
    assert_eq!(response.status, 201, "{:?}", response.body);
}

#[tokio::test]
async fn a_common_password_is_400_and_nothing_is_stored() {
    let t = TestApp::new().await;
    let token = t.verified_token(PHONE, PHONE_E164).await;
    for common in [
        "password",
        "12345678",
        "Password123",
        "QWERTYUIOP",
        " iloveyou ",
    ] {
        let mut body = register_body(&token);
        body["password"] = json!(common);
        let response = t.post(Endpoint::Register, body).await;
        assert_eq!(response.status, 400, "{common:?}");
        assert_eq!(
            response.body,
            json!({ "error": "Invalid field 'password': this password is too common; choose a less common one." })
        );
    }
    assert!(t.scan(&t.tables().users).await.is_empty());
    assert!(t.scan(&t.tables().sessions).await.is_empty());
    assert_eq!(
        t.scan(&t.tables().registration_tokens).await.len(),
        1,
        "the token is not spent"
    );
    let ok = t.post(Endpoint::Register, register_body(&token)).await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);
}
