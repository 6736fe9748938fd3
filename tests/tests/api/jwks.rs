//! `GET /.well-known/jwks.json`, EdDSA signing and key rotation.

use auth_tests::{DynamoDbGate, Endpoint, PHONE, PHONE_E164, RawRequest, TestApp, TestResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::{Value, json};

const NEW_KEY: &str = "the-next-signing-key-0123456789abcdef0123";

async fn jwks(t: &TestApp) -> TestResponse {
    t.get(Endpoint::Jwks).await
}

/// The environment of another function on `t`'s tables (the published keys included), holding
/// no private key (only the key publication secret, from the base environment): a verify-only
/// function such as profile, logout or jwks.
fn verify_only_env(t: &TestApp) -> Vec<(&'static str, String)> {
    let tables = t.tables().variables();
    let tables = tables
        .iter()
        .map(|(name, table)| (*name, (*table).to_owned()));
    tables
        .chain([
            ("LOCAL_JWT_SIGNING_KEY", String::new()),
            ("LOCAL_OTP_HMAC_SECRET", String::new()),
        ])
        .collect()
}

async fn app_with(env: &[(&'static str, String)]) -> TestApp {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::with_env(&env).await
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
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
        .issue(("x", "y"), &Default::default(), auth_tests::now())
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

#[tokio::test]
async fn an_outside_verifier_accepts_access_tokens_and_refuses_refresh_tokens() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let access = registered.body["tokens"]["access"].as_str().unwrap();
    let refresh = registered.body["tokens"]["refresh"].as_str().unwrap();
    let key_set = jwks(&t).await.body;

    let access_header = jsonwebtoken::decode_header(access).unwrap();
    assert_eq!(access_header.typ.as_deref(), Some("at+jwt"), "RFC 9068");
    assert!(verify_with_jwks(&key_set, access).is_ok());

    // An opaque refresh token is no JWT: a verifier cannot even read a header.
    assert!(jsonwebtoken::decode_header(refresh).is_err(), "{refresh}");
    assert!(verify_with_jwks(&key_set, refresh).is_err());

    // A refresh JWT as issued before refresh tokens were opaque (valid until it expires).
    let (legacy, _) = t
        .app
        .tokens
        .legacy_refresh_jwt("user", "session", auth_tests::now())
        .await
        .unwrap();
    let refresh_header = jsonwebtoken::decode_header(&legacy).unwrap();
    assert_eq!(refresh_header.typ.as_deref(), Some("refresh+jwt"));
    let refused = verify_with_jwks(&key_set, &legacy).unwrap_err();
    assert_eq!(
        refused.kind(),
        &jsonwebtoken::errors::ErrorKind::InvalidAudience
    );
    let claims: Value = jsonwebtoken::dangerous::insecure_decode(&legacy)
        .unwrap()
        .claims;
    assert_eq!(claims["aud"], "phone-auth-clients#refresh");
}

/// A PKCS#8 Ed25519 key (`openssl genpkey -algorithm ed25519`), for tests that sign tokens
/// themselves with the service's key.
const PEM_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEICdu/Y7CTzCCkNC8VYYf13F3qbAVzxnzOtbhcDBn6Vj2
-----END PRIVATE KEY-----";

#[tokio::test]
async fn a_token_with_the_wrong_typ_header_is_refused_even_if_well_signed() {
    let t = TestApp::with_env(&[("LOCAL_JWT_SIGNING_KEY", PEM_KEY)]).await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let access = registered.body["tokens"]["access"].as_str().unwrap();
    let claims: Value = jsonwebtoken::dangerous::insecure_decode(access)
        .unwrap()
        .claims;
    let key = jsonwebtoken::EncodingKey::from_ed_pem(PEM_KEY.as_bytes()).unwrap();

    for typ in [None, Some("JWT"), Some("refresh+jwt")] {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = typ.map(str::to_owned);
        header.kid = Some(kid_of(access));
        let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
        let response = t.authed(Endpoint::Profile, "GET", &token, None).await;
        assert_eq!(response.status, 401, "{typ:?}");
    }
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(kid_of(access));
    let well_typed = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    let response = t.authed(Endpoint::Profile, "GET", &well_typed, None).await;
    assert_eq!(response.status, 200, "the same key and claims under at+jwt");
}

#[tokio::test]
async fn a_verify_only_app_verifies_with_the_published_keys_and_holds_no_private_key() {
    let signer = TestApp::new().await;
    let registered = signer.registered_user(PHONE, PHONE_E164).await;
    let access = registered.body["tokens"]["access"].as_str().unwrap();
    let refresh = registered.body["tokens"]["refresh"].as_str().unwrap();

    let verifier = app_with(&verify_only_env(&signer)).await;

    assert!(!verifier.app.tokens.can_sign());
    let profile = verifier
        .authed(Endpoint::Profile, "GET", access, None)
        .await;
    assert_eq!(profile.status, 200, "{:?}", profile.body);
    assert_eq!(profile.body["id"], registered.body["user"]["id"]);
    let as_access = verifier
        .authed(Endpoint::Profile, "GET", refresh, None)
        .await;
    assert_eq!(as_access.status, 401, "a refresh token is no access token");

    // What it serves at the JWKS endpoint is the signer's published key, and nothing private.
    let published = jwks(&verifier).await;
    assert_eq!(published.status, 200);
    assert_eq!(published.body, jwks(&signer).await.body);
    assert_eq!(published.body["keys"][0]["kid"], kid_of(access).as_str());
    assert!(published.body["keys"][0].get("d").is_none());

    // Routes that need a secret it lacks are a misconfiguration: 500, not a panic.
    let login = verifier
        .post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": auth_tests::PASSWORD }),
        )
        .await;
    assert_eq!(login.status, 500, "{:?}", login.body);
    let check = verifier
        .post(Endpoint::CheckPhone, json!({ "phone": "09121234567" }))
        .await;
    assert_eq!(check.status, 500, "{:?}", check.body);
}

#[tokio::test]
async fn a_signer_publishes_its_key_before_its_first_token_for_as_long_as_tokens_live() {
    let t = TestApp::new().await;
    assert!(t.scan(&t.tables().signing_keys).await.is_empty());

    let registered = t.registered_user(PHONE, PHONE_E164).await;

    let items = t.scan(&t.tables().signing_keys).await;
    assert_eq!(items.len(), 1);
    let kid = kid_of(registered.body["tokens"]["access"].as_str().unwrap());
    assert_eq!(auth_tests::text(&items[0], "kid"), Some(kid.as_str()));
    assert_eq!(
        auth_tests::text(&items[0], "x"),
        jwks(&t).await.body["keys"][0]["x"].as_str()
    );
    assert!(
        auth_tests::text(&items[0], "mac").is_some(),
        "sealed with the key publication secret"
    );
    let expires_at = auth_tests::num(&items[0], "expires_at").unwrap();
    let refresh_lifetime = 7 * 86_400;
    assert!(
        expires_at >= auth_tests::now() + refresh_lifetime,
        "{expires_at}"
    );
}

/// Sets a number attribute of the publication of `kid`.
async fn set_publication(t: &TestApp, kid: &str, attribute: &str, value: u64) {
    t.dynamodb
        .update_item()
        .table_name(&t.tables().signing_keys)
        .key("pk", AttributeValue::S("signing-key".to_owned()))
        .key("kid", AttributeValue::S(kid.to_owned()))
        .update_expression("SET #a = :v")
        .expression_attribute_names("#a", attribute)
        .expression_attribute_values(":v", AttributeValue::N(value.to_string()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_rotated_key_is_accepted_while_published_and_refused_once_its_publication_ends() {
    let old_signer = TestApp::new().await;
    let old_access = old_signer.registered_user(PHONE, PHONE_E164).await.body["tokens"]["access"]
        .as_str()
        .unwrap()
        .to_owned();
    // The old key was first published a day before the rotation.
    let old_kid = kid_of(&old_access);
    set_publication(
        &old_signer,
        &old_kid,
        "published_at",
        auth_tests::now() - 86_400,
    )
    .await;
    // A new secret, as after a rotation in Secrets Manager: new instances sign with it.
    let mut new_env = verify_only_env(&old_signer);
    new_env.retain(|(name, _)| *name != "LOCAL_JWT_SIGNING_KEY");
    new_env.push(("LOCAL_JWT_SIGNING_KEY", NEW_KEY.to_owned()));
    let new_signer = app_with(&new_env).await;
    let new_access = new_signer.login(PHONE).await["access"]
        .as_str()
        .unwrap()
        .to_owned();

    let verifier = app_with(&verify_only_env(&old_signer)).await;
    for token in [&old_access, &new_access] {
        let response = verifier.authed(Endpoint::Profile, "GET", token, None).await;
        assert_eq!(response.status, 200, "{:?}", response.body);
    }
    let keys = jwks(&verifier).await.body;
    let kids: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        [kid_of(&new_access), kid_of(&old_access)],
        "the newest key first"
    );

    // The old key's publication ends (no instance signs with it any more).
    set_publication(&old_signer, &old_kid, "expires_at", auth_tests::now() - 1).await;
    let later = app_with(&verify_only_env(&old_signer)).await;
    assert_eq!(
        later
            .authed(Endpoint::Profile, "GET", &old_access, None)
            .await
            .status,
        401
    );
    assert_eq!(
        later
            .authed(Endpoint::Profile, "GET", &new_access, None)
            .await
            .status,
        200
    );
    assert_eq!(jwks(&later).await.body["keys"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_kids_reread_the_published_keys_at_most_once_a_minute() {
    let signer = TestApp::new().await;
    let access = signer.registered_user(PHONE, PHONE_E164).await.body["tokens"]["access"]
        .as_str()
        .unwrap()
        .to_owned();
    let stranger = TestApp::with_env(&[("LOCAL_JWT_SIGNING_KEY", NEW_KEY)]).await;
    let foreign = stranger
        .app
        .tokens
        .issue(("x", "y"), &Default::default(), auth_tests::now())
        .await
        .unwrap()
        .pair
        .access;
    let gate = DynamoDbGate::counting();
    let verifier = app_with(&verify_only_env(&signer))
        .await
        .through(&gate)
        .await;

    let response = verifier
        .authed(Endpoint::Profile, "GET", &access, None)
        .await;
    assert_eq!(response.status, 200);
    let after_first = gate.seen();
    assert_eq!(after_first, 3, "the key set, the session, the user");

    for _ in 0..5 {
        let response = verifier
            .authed(Endpoint::Profile, "GET", &foreign, None)
            .await;
        assert_eq!(response.status, 401);
    }
    assert_eq!(
        gate.seen(),
        after_first,
        "no DynamoDB call for unknown kids within a minute"
    );
}
