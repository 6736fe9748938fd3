//! The tokens as API Gateway's HTTP API JWT authorizer sees them, and the example route behind
//! it (`GET /hello`, template parameter `ExampleProtectedRoute`). API Gateway does not run
//! here: `tests/verifiers/apigw_jwt_authorizer.py` applies its documented rules ("Control
//! access to HTTP APIs with JWT authorizers in API Gateway",
//! https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html:
//! keys through `{issuer}/.well-known/openid-configuration`, a `kid` that names one, RSA
//! algorithms only, `iss`, `aud`/`client_id`, `exp`/`nbf`/`iat`, the route's scopes) with PyJWT
//! to real tokens of the stack as the template deploys it (RS256 in KMS: a moto server), and
//! hands what it accepts to the function as API Gateway does
//! (`requestContext.authorizer.jwt.claims`). A key rotation is followed through the same rules.

use auth_tests::kms::create_key;
use auth_tests::{
    Endpoint, Listener, PHONE, PHONE_E164, RawRequest, ServedDeployments, ServedStack, Stack,
    TestApp, TestResponse, register_body, run_verifier,
};
use aws_sdk_kms::types::KeySpec;
use serde_json::{Value, json};

const AUDIENCE: &str = "phone-auth-clients";

/// Sign-up of `phone` through the stack's functions: the register function's tokens.
async fn signed_up(stack: &Stack, phone: &str, e164: &str) -> Value {
    let sent = stack
        .post(Endpoint::CheckPhone, json!({ "phone": phone }))
        .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    let code = stack.any().last_code_for(e164).expect("the sign-up code");
    let verified = stack
        .post(Endpoint::Verify, json!({ "phone": phone, "code": code }))
        .await;
    assert_eq!(verified.status, 200, "{:?}", verified.body);
    let token = verified.body["registration_token"].as_str().unwrap();
    let registered = stack.post(Endpoint::Register, register_body(token)).await;
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    registered.body
}

/// The emulated authorizer of a route requiring `scopes`, configured with `issuer` and the
/// template's audience, applied to each (name, token) sent as `Authorization: Bearer <token>`.
pub(crate) async fn authorize(issuer: &str, scopes: &[&str], cases: &[(&str, &str)]) -> Value {
    let cases: Vec<Value> = cases
        .iter()
        .map(|(name, token)| json!({ "name": name, "authorization": format!("Bearer {token}") }))
        .collect();
    let verdict = run_verifier(
        "apigw_jwt_authorizer.py",
        &json!({ "issuer": issuer, "audience": [AUDIENCE], "scopes": scopes, "cases": cases }),
    )
    .await;
    verdict["results"].clone()
}

/// `GET /hello` as API Gateway calls the function: with the authorizer's context, if any.
async fn hello(stack: &Stack, token: Option<&str>, jwt: Option<&Value>) -> TestResponse {
    stack
        .app(Endpoint::Hello)
        .send(
            Endpoint::Hello,
            RawRequest {
                method: "GET",
                content_type: None,
                bearer: token,
                authorizer_jwt: jwt,
                ..RawRequest::default()
            },
        )
        .await
}

/// A token signed under KMS key `key_id` by an app of another configuration (`env`), with
/// `issuer` unless `env` names another.
async fn token_of(algorithm: &str, key_id: &str, issuer: &str, env: &[(&str, &str)]) -> String {
    let mut settings = vec![
        ("JWT_ALGORITHM", algorithm),
        ("JWT_KMS_KEY_ID", key_id),
        ("JWT_ISSUER", issuer),
    ];
    settings.extend_from_slice(env);
    TestApp::with_env(&settings).await.access_token().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwt_authorizer_accepts_the_stacks_rs256_tokens_and_the_example_route_answers_their_claims()
 {
    let rsa = create_key(KeySpec::Rsa2048).await;
    // Published beside it but never signing (as the next key before a rotation): its ES256
    // tokens have a kid the JWKS names, and are refused for their algorithm alone.
    let ec = create_key(KeySpec::EccNistP256).await;
    let listener = Listener::bind().await;
    let issuer = listener.base_url.clone();
    let stack = Stack::deploy(
        &[
            ("SmsProvider", "outbox"),
            ("JwtAlgorithm", "RS256"),
            ("JwtSigningKey.Arn", &rsa),
            ("JwtPreviousKmsKeyId", &ec),
            ("JwtIssuer", &issuer),
        ],
        None,
    )
    .await;
    let registered = signed_up(&stack, PHONE, PHONE_E164).await;
    let access = registered["tokens"]["access"].as_str().unwrap().to_owned();
    let refresh = registered["tokens"]["refresh"].as_str().unwrap().to_owned();
    // One token (the access token; refresh tokens are opaque), one KMS Sign call, per sign-up,
    // login or refresh (the KMS quota in BENCHMARKS.md divides by this).
    assert_eq!(auth_tests::kms::signs_with(&rsa), 1, "a sign-up");
    let login = stack
        .post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": auth_tests::PASSWORD }),
        )
        .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    assert_eq!(auth_tests::kms::signs_with(&rsa), 2, "and a login");
    let refreshed = stack
        .post(
            Endpoint::Refresh,
            json!({ "refresh": login.body["tokens"]["refresh"] }),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
    assert_eq!(auth_tests::kms::signs_with(&rsa), 3, "and a refresh");
    let signer = &stack.app(Endpoint::Register).app.tokens;
    let now = auth_tests::now();
    let expired = signer
        .issue(("user", "session"), &Default::default(), now - 8 * 86_400)
        .await
        .unwrap()
        .pair
        .access;
    let not_yet_valid = signer
        .issue(("user", "session"), &Default::default(), now + 600)
        .await
        .unwrap()
        .pair
        .access;
    let es256 = token_of("ES256", &ec, &issuer, &[]).await;
    let wrong_audience = token_of("RS256", &rsa, &issuer, &[("JWT_AUDIENCE", "another")]).await;
    let wrong_issuer = token_of("RS256", &rsa, "https://auth.example.com", &[]).await;
    let other_scope = token_of("RS256", &rsa, &issuer, &[("SCOPES_DEFAULT", "orders:read")]).await;
    let unknown_kid = token_of("RS256", &create_key(KeySpec::Rsa2048).await, &issuer, &[]).await;
    let served = ServedStack::serve(listener, stack);

    // The template's route: the first scope of ScopesDefault ("profile").
    let results = authorize(
        &served.base_url,
        &["profile"],
        &[
            ("rs256", &access),
            ("es256", &es256),
            ("refresh", &refresh),
            ("wrong audience", &wrong_audience),
            ("wrong issuer", &wrong_issuer),
            ("expired", &expired),
            ("not yet valid", &not_yet_valid),
            ("unknown kid", &unknown_kid),
            ("without the scope", &other_scope),
        ],
    )
    .await;
    assert_eq!(results["rs256"]["allow"], true, "{results}");
    for (name, status, rule) in [
        ("es256", 401, "alg"),
        ("refresh", 401, "decode"),
        ("wrong audience", 401, "aud"),
        ("wrong issuer", 401, "iss"),
        ("expired", 401, "exp"),
        ("not yet valid", 401, "nbf"),
        ("unknown kid", 401, "kid"),
        ("without the scope", 403, "scope"),
    ] {
        assert_eq!(
            (
                &results[name]["allow"],
                &results[name]["status"],
                &results[name]["rule"]
            ),
            (&json!(false), &json!(status), &json!(rule)),
            "{name}: {results}"
        );
    }

    // What the authorizer accepted reaches the function, which answers the caller's claims.
    let jwt = &results["rs256"]["jwt"];
    let claims: Value = jsonwebtoken::dangerous::insecure_decode(&access)
        .unwrap()
        .claims;
    assert_eq!(jwt["claims"]["sub"], registered["user"]["id"]);
    assert_eq!(jwt["claims"]["exp"], claims["exp"].to_string(), "a string");
    let stack = &served.stack;
    let answer = hello(stack, Some(&access), Some(jwt)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let exp =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(claims["exp"].as_u64().unwrap());
    assert_eq!(
        answer.body,
        json!({
            "sub": registered["user"]["id"],
            "scope": "profile",
            "expires_at": humantime::format_rfc3339_seconds(exp).to_string(),
        })
    );
}

#[tokio::test]
async fn the_example_route_refuses_a_request_the_authorizer_did_not_pass() {
    let stack = Stack::deploy(&[("SmsProvider", "outbox")], None).await;
    let token = TestApp::new().await.access_token().await;

    // A route without the authorizer: the token is never read by the function itself.
    let no_context = hello(&stack, Some(&token), None).await;
    assert_eq!(no_context.status, 401, "{:?}", no_context.body);
    assert_eq!(no_context.error(), "Invalid or expired token.");
    let no_token = hello(&stack, None, None).await;
    assert_eq!(no_token.status, 401, "{:?}", no_token.body);
    assert_eq!(no_token.error(), "Missing bearer token.");
    // Claims without a subject or a numeric expiry are no authorizer's.
    for claims in [
        json!({ "exp": "1900000000", "scope": "profile" }),
        json!({ "sub": "", "exp": "1900000000" }),
        json!({ "sub": "user", "exp": "soon" }),
    ] {
        let jwt = json!({ "claims": claims, "scopes": ["profile"] });
        let answer = hello(&stack, Some(&token), Some(&jwt)).await;
        assert_eq!(answer.status, 401, "{claims}: {:?}", answer.body);
    }
    let post = stack
        .app(Endpoint::Hello)
        .send(Endpoint::Hello, RawRequest::default())
        .await;
    assert_eq!(post.status, 405);
    assert_eq!(post.headers.get("allow").unwrap(), "GET");
}

/// The template parameters of one phase of a rotation: `signing` signs, `published` (if any)
/// is published and verifies but does not sign.
fn rotation_phase(issuer: &str, signing: &str, published: Option<&str>) -> Vec<(String, String)> {
    let mut parameters = vec![
        ("SmsProvider", "outbox"),
        ("JwtAlgorithm", "RS256"),
        ("JwtIssuer", issuer),
        ("JwtKmsKeyId", signing),
    ];
    if let Some(published) = published {
        parameters.push(("JwtPreviousKmsKeyId", published));
    }
    parameters
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

fn as_refs(parameters: &[(String, String)]) -> Vec<(&str, &str)> {
    parameters
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

/// The kids of the JWKS the current deployment serves, in order.
async fn published_kids(stack: &Stack) -> Vec<String> {
    let keys = stack.app(Endpoint::Jwks).get(Endpoint::Jwks).await.body;
    keys["keys"]
        .as_array()
        .expect("a key set")
        .iter()
        .map(|key| key["kid"].as_str().expect("a kid").to_owned())
        .collect()
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWT")
        .kid
        .expect("a kid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kms_key_rotation_keeps_every_token_valid_until_the_old_key_is_dropped() {
    // docs/operations.md, "Rotate the signing key" (scripts/rotate-key): the new key is
    // published first (JwtPreviousKmsKeyId), then signs (JwtKmsKeyId) with the old one kept
    // published, then the old one is dropped. Each phase is an update of the stack served at
    // the same URL (the issuer); the emulated JWT authorizer reads the keys anew each time
    // (API Gateway caches them up to two hours: the reason for the wait before the drop).
    let old_key = create_key(KeySpec::Rsa2048).await;
    let new_key = create_key(KeySpec::Rsa2048).await;
    let listener = Listener::bind().await;
    let issuer = listener.base_url.clone();
    let phase =
        |signing: &str, published: Option<&str>| rotation_phase(&issuer, signing, published);

    // 1. The new key published before it signs.
    let first = Stack::deploy(&as_refs(&phase(&old_key, Some(&new_key))), None).await;
    let old = signed_up(&first, PHONE, PHONE_E164).await;
    let old_access = old["tokens"]["access"].as_str().unwrap().to_owned();
    let served = ServedDeployments::serve(listener, first);
    let first_kids = published_kids(&served.current()).await;
    let first_verdict = authorize(&served.base_url, &["profile"], &[("old", &old_access)]).await;

    // 2. The new key signs; the old one stays published.
    let second = served
        .current()
        .redeploy(&as_refs(&phase(&new_key, Some(&old_key))))
        .await;
    let second = served.replace(second);
    let new = signed_up(&second, "09101234568", "+989101234568").await;
    let new_access = new["tokens"]["access"].as_str().unwrap().to_owned();
    let second_kids = published_kids(&second).await;
    let second_verdict = authorize(
        &served.base_url,
        &["profile"],
        &[("old", &old_access), ("new", &new_access)],
    )
    .await;
    for token in [&old_access, &new_access] {
        let profile = second.authed(Endpoint::Profile, "GET", token, None).await;
        assert_eq!(profile.status, 200, "{:?}", profile.body);
    }

    // 3. The old key dropped (once its last access token expired, plus the two hours).
    let third = served
        .current()
        .redeploy(&as_refs(&phase(&new_key, None)))
        .await;
    let third = served.replace(third);
    let third_kids = published_kids(&third).await;
    let third_verdict = authorize(
        &served.base_url,
        &["profile"],
        &[("old", &old_access), ("new", &new_access)],
    )
    .await;
    let old_profile = third
        .authed(Endpoint::Profile, "GET", &old_access, None)
        .await;
    let new_profile = third
        .authed(Endpoint::Profile, "GET", &new_access, None)
        .await;

    let (old_kid, new_kid) = (kid(&old_access), kid(&new_access));
    assert_ne!(old_kid, new_kid);
    assert_eq!(
        first_kids,
        [old_kid.clone(), new_kid.clone()],
        "signing key first"
    );
    assert_eq!(second_kids, [new_kid.clone(), old_kid.clone()]);
    assert_eq!(third_kids, [new_kid]);
    assert_eq!(first_verdict["old"]["allow"], true, "{first_verdict}");
    assert_eq!(second_verdict["old"]["allow"], true, "{second_verdict}");
    assert_eq!(second_verdict["new"]["allow"], true, "{second_verdict}");
    assert_eq!(third_verdict["new"]["allow"], true, "{third_verdict}");
    assert_eq!(
        (
            &third_verdict["old"]["allow"],
            &third_verdict["old"]["rule"]
        ),
        (&json!(false), &json!("kid")),
        "{third_verdict}"
    );
    assert_eq!(old_profile.status, 401, "{:?}", old_profile.body);
    assert_eq!(new_profile.status, 200, "{:?}", new_profile.body);
}
