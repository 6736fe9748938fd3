//! `GET /.well-known/openid-configuration`, and the claims verifiers check: tokens verified by
//! an independent library (PyJWT) that finds the keys through discovery, as other services do.

use auth_tests::{Endpoint, PHONE, PHONE_E164, RawRequest, Served, TestApp, TestResponse};
use serde_json::{Value, json};

async fn discovery(t: &TestApp) -> TestResponse {
    t.send(
        Endpoint::OpenIdConfiguration,
        RawRequest {
            method: "GET",
            ..Default::default()
        },
    )
    .await
}

#[tokio::test]
async fn the_discovery_document_names_the_issuer_its_key_set_and_scopes() {
    let t = TestApp::with_env(&[
        ("JWT_ISSUER", "https://auth.example.com/"),
        ("SCOPES_DEFAULT", "profile orders:read"),
    ])
    .await;

    let response = discovery(&t).await;

    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(
        response.headers.get("cache-control").unwrap(),
        "public, max-age=300"
    );
    assert_eq!(
        response.body,
        json!({
            "issuer": "https://auth.example.com/",
            "jwks_uri": "https://auth.example.com/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "subject_types_supported": ["public"],
            "scopes_supported": ["profile", "orders:read"],
            "claims_supported": ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid", "scope", "token_type"],
        })
    );
    let post = t
        .send(Endpoint::OpenIdConfiguration, RawRequest::default())
        .await;
    assert_eq!(post.status, 405);
    assert_eq!(post.headers.get("allow").unwrap(), "GET");
}

#[tokio::test]
async fn an_issuer_that_is_not_a_url_has_no_discovery_document() {
    let t = TestApp::new().await; // JWT_ISSUER=phone-auth, as deployments before discovery
    let response = discovery(&t).await;
    assert_eq!(response.status, 404, "{:?}", response.body);
}

#[tokio::test]
async fn without_jwt_issuer_the_issuer_is_the_apis_own_url() {
    // The template's default: JWT_ISSUER empty; Lambda sets AWS_REGION.
    let t = TestApp::with_env(&[("JWT_ISSUER", ""), ("AWS_REGION", "eu-west-1")]).await;
    // The test events come through API Gateway API "api".
    let url = "https://api.execute-api.eu-west-1.amazonaws.com";

    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let access = registered.body["tokens"]["access"].as_str().unwrap();

    let claims: Value = jsonwebtoken::dangerous::insecure_decode(access)
        .unwrap()
        .claims;
    assert_eq!(claims["iss"], url);
    let document = discovery(&t).await.body;
    assert_eq!(document["issuer"], url);
    assert_eq!(document["jwks_uri"], format!("{url}/.well-known/jwks.json"));
    let profile = t.authed(Endpoint::Profile, "GET", access, None).await;
    assert_eq!(profile.status, 200, "{:?}", profile.body);
}

#[test]
fn only_an_api_id_and_a_region_make_an_api_url() {
    use auth_shared::tokens::api_url;
    assert_eq!(
        api_url("abc123defg", "eu-west-1").as_deref(),
        Some("https://abc123defg.execute-api.eu-west-1.amazonaws.com")
    );
    assert_eq!(
        api_url("abc123defg", "cn-north-1").as_deref(),
        Some("https://abc123defg.execute-api.cn-north-1.amazonaws.com.cn")
    );
    for (id, region) in [
        ("", "eu-west-1"),
        ("evil.com/x", "eu-west-1"),
        ("ABC", "eu-west-1"),
        ("abc", "eu-west-1.evil.com"),
    ] {
        assert_eq!(api_url(id, region), None, "{id} {region}");
    }
}

#[tokio::test]
async fn access_tokens_carry_nbf_and_the_default_scopes_and_refresh_tokens_no_scope() {
    let t = TestApp::with_env(&[("SCOPES_DEFAULT", "profile orders:read")]).await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let tokens = &registered.body["tokens"];
    let claims = |name: &str| -> Value {
        jsonwebtoken::dangerous::insecure_decode(tokens[name].as_str().unwrap())
            .unwrap()
            .claims
    };
    let access = claims("access");
    assert_eq!(access["scope"], "profile orders:read");
    assert_eq!(access["nbf"], access["iat"]);
    // A refresh token is opaque: it carries no claims at all, a scope least of all.
    let refresh = tokens["refresh"].as_str().unwrap();
    assert!(
        jsonwebtoken::dangerous::insecure_decode::<Value>(refresh).is_err(),
        "{refresh}"
    );
}

#[tokio::test]
async fn a_token_not_yet_valid_is_refused() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    let later = t
        .app
        .tokens
        .issue(
            ("user", "session"),
            &Default::default(),
            auth_tests::now() + 600,
        )
        .await
        .unwrap()
        .pair
        .access;
    let response = t.authed(Endpoint::Profile, "GET", &later, None).await;
    assert_eq!(response.status, 401);
}

#[tokio::test]
async fn pyjwt_verifies_access_tokens_through_discovery_and_refuses_the_rest() {
    let served = Served::start(&[]).await;
    let t = &served.app;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let access = registered.body["tokens"]["access"].as_str().unwrap();
    let refresh = registered.body["tokens"]["refresh"].as_str().unwrap();
    // Signed under the same key 8 days ago: expired.
    let expired = t
        .app
        .tokens
        .issue(
            ("user", "session"),
            &Default::default(),
            auth_tests::now() - 8 * 86_400,
        )
        .await
        .unwrap()
        .pair
        .access;
    // A refresh JWT as issued before refresh tokens were opaque, still valid.
    let (legacy_refresh, _) = t
        .app
        .tokens
        .legacy_refresh_jwt("user", "session", auth_tests::now())
        .await
        .unwrap();
    // Signed under a key this service does not publish.
    let stranger = TestApp::with_env(&[
        (
            "LOCAL_JWT_SIGNING_KEY",
            "a-stranger-signing-key-0123456789abcdef",
        ),
        ("JWT_ISSUER", &served.base_url),
    ])
    .await;
    let unknown_kid = stranger.access_token().await;
    let audience = "phone-auth-clients";
    let case = |name: &str, token: &str, audience: &str| json!({ "name": name, "token": token, "audience": audience });

    let verdict = auth_tests::run_verifier(
        "discovery_pyjwt.py",
        &json!({
            "issuer": served.base_url,
            "cases": [
                case("access", access, audience),
                case("wrong audience", access, "another-service"),
                case("expired", &expired, audience),
                case("refresh as access", refresh, audience),
                case("legacy refresh as access", &legacy_refresh, audience),
                case("unknown kid", &unknown_kid, audience),
            ],
        }),
    )
    .await;

    let results = &verdict["results"];
    assert_eq!(results["access"]["ok"], true, "{verdict}");
    let claims = &results["access"]["claims"];
    assert_eq!(claims["sub"], registered.body["user"]["id"]);
    assert_eq!(claims["iss"], served.base_url.as_str());
    assert_eq!(claims["scope"], "profile");
    for (name, error) in [
        ("wrong audience", "InvalidAudienceError"),
        ("expired", "ExpiredSignatureError"),
        // Not a JWT: refused before any key is looked up.
        ("refresh as access", "DecodeError"),
        ("legacy refresh as access", "InvalidAudienceError"),
        ("unknown kid", "PyJWKClientError"),
    ] {
        assert_eq!(results[name]["ok"], false, "{name}: {verdict}");
        assert_eq!(results[name]["error"], error, "{name}: {verdict}");
    }
}
