//! `GET /.well-known/jwks.json`, EdDSA signing and key rotation.

use auth_tests::{Endpoint, PHONE, PHONE_E164, RawRequest, TestApp, TestResponse};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::{Value, json};

const NEW_KEY: &str = "the-next-signing-key-0123456789abcdef0123";

async fn jwks(t: &TestApp) -> TestResponse {
    t.send(
        Endpoint::Jwks,
        RawRequest {
            method: "GET",
            ..Default::default()
        },
    )
    .await
}

/// Verifies `token` the way another service would: with nothing but the published key set.
fn verify_with_jwks(key_set: &Value, token: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let set: JwkSet = serde_json::from_value(key_set.clone()).expect("a JWK set");
    let kid = jsonwebtoken::decode_header(token)?
        .kid
        .expect("a kid header");
    let jwk = set.find(&kid).expect("the kid is published");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&["phone-auth"]);
    validation.set_audience(&["phone-auth-clients"]);
    Ok(jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, &validation)?.claims)
}

#[tokio::test]
async fn the_published_keys_verify_a_fresh_access_token_independently() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let access = registered.body["tokens"]["access"].as_str().unwrap();

    let response = jwks(&t).await;

    assert_eq!(response.status, 200);
    assert_eq!(
        response.headers.get("cache-control").unwrap(),
        "public, max-age=300"
    );
    let keys = response.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(
        (&key["kty"], &key["crv"], &key["alg"], &key["use"]),
        (
            &json!("OKP"),
            &json!("Ed25519"),
            &json!("EdDSA"),
            &json!("sig")
        )
    );
    assert!(
        key["kid"].as_str().is_some_and(|kid| kid.len() == 43),
        "RFC 7638 thumbprint"
    );
    assert!(key.get("d").is_none(), "no private part");

    let header = jsonwebtoken::decode_header(access).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    let claims = verify_with_jwks(&response.body, access).unwrap();
    assert_eq!(claims["sub"], registered.body["user"]["id"]);
    assert_eq!(claims["token_type"], "access");
    assert!(claims["sid"].as_str().is_some());
}

#[tokio::test]
async fn a_previous_key_stays_accepted_and_published_until_removed() {
    let old = TestApp::new().await;
    let registered = old.registered_user(PHONE, PHONE_E164).await;
    let old_access = registered.body["tokens"]["access"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_keys = jwks(&old).await.body;
    let old_x = old_keys["keys"][0]["x"].as_str().unwrap();
    let tables = old.tables().clone();
    let same_tables = [
        ("USERS_TABLE", tables.users.as_str()),
        ("OTPS_TABLE", tables.otps.as_str()),
        (
            "REGISTRATION_TOKENS_TABLE",
            tables.registration_tokens.as_str(),
        ),
        ("ATTEMPTS_TABLE", tables.attempts.as_str()),
        ("SESSIONS_TABLE", tables.sessions.as_str()),
    ];

    let mut rotating_env = same_tables.to_vec();
    rotating_env.extend([
        ("LOCAL_JWT_SIGNING_KEY", NEW_KEY),
        ("JWT_PREVIOUS_PUBLIC_KEY", old_x),
    ]);
    let rotating = TestApp::with_env(&rotating_env).await;
    let published = jwks(&rotating).await.body;
    assert_eq!(published["keys"].as_array().unwrap().len(), 2);
    assert_eq!(
        published["keys"][1], old_keys["keys"][0],
        "the old key, unchanged"
    );
    let profile = rotating
        .authed(Endpoint::Profile, "GET", &old_access, None)
        .await;
    assert_eq!(
        profile.status, 200,
        "tokens signed before the rotation still work"
    );
    let new_access = rotating.login(PHONE).await["access"]
        .as_str()
        .unwrap()
        .to_owned();
    let new_kid = jsonwebtoken::decode_header(&new_access)
        .unwrap()
        .kid
        .unwrap();
    assert_eq!(
        published["keys"][0]["kid"],
        new_kid.as_str(),
        "new tokens use the new key"
    );

    let mut rotated_env = same_tables.to_vec();
    rotated_env.push(("LOCAL_JWT_SIGNING_KEY", NEW_KEY));
    let rotated = TestApp::with_env(&rotated_env).await;
    assert_eq!(
        jwks(&rotated).await.body["keys"].as_array().unwrap().len(),
        1
    );
    let refused = rotated
        .authed(Endpoint::Profile, "GET", &old_access, None)
        .await;
    assert_eq!(
        refused.status, 401,
        "once removed, the old key verifies nothing"
    );
    assert_eq!(
        rotated
            .authed(Endpoint::Profile, "GET", &new_access, None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn tokens_with_another_algorithm_or_unknown_kid_are_refused() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let access = registered.body["tokens"]["access"].as_str().unwrap();
    let claims: Value = jsonwebtoken::dangerous::insecure_decode(access)
        .unwrap()
        .claims;
    let kid = jsonwebtoken::decode_header(access).unwrap().kid.unwrap();

    // HS256 "signed" with the public key (the classic algorithm-confusion forgery).
    let x = jwks(&t).await.body["keys"][0]["x"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid);
    let forged = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(x.as_bytes()),
    )
    .unwrap();
    // Unsigned, and signed by a key this service does not publish.
    let unsigned = format!("{}.", access.rsplit_once('.').unwrap().0);
    let stranger = TestApp::with_env(&[("LOCAL_JWT_SIGNING_KEY", NEW_KEY)]).await;
    let foreign = stranger
        .app
        .tokens
        .issue("x", "y", auth_tests::now())
        .await
        .unwrap()
        .pair
        .access;

    for token in [forged, unsigned, foreign] {
        let response = t.authed(Endpoint::Profile, "GET", &token, None).await;
        assert_eq!(response.status, 401, "{token}");
    }
}

#[tokio::test]
async fn the_key_set_is_read_only() {
    let t = TestApp::new().await;
    let response = t.send(Endpoint::Jwks, RawRequest::default()).await;
    assert_eq!(response.status, 405);
    assert_eq!(response.headers.get("allow").unwrap(), "GET");
}
