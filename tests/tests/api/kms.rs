//! RS256 and ES256 tokens signed in KMS (a moto server, `auth_tests::kms`), with every function
//! configured as the template deploys it: verified by PyJWT through discovery and refused when
//! they should be; both keys trusted and published while rotating; a local PEM key for local
//! runs. Only the signing functions sign: their calls go to the record the least-privilege test
//! holds against template.yaml, where only they may `kms:Sign`.

use auth_tests::kms::{create_key, signs_with};
use auth_tests::{
    Endpoint, Listener, PASSWORD, Served, ServedStack, Stack, TestApp, register_body, run_verifier,
};
use aws_sdk_kms::types::KeySpec;
use serde_json::{Value, json};

/// The tokens of one user, one from each signing function.
pub(crate) struct Signed {
    pub(crate) register: Value,
    pub(crate) login: Value,
    pub(crate) refresh: Value,
    pub(crate) login_otp: Value,
    /// The KMS `Sign` calls of the sign-up, the login, the refresh and the login by code.
    pub(crate) signatures: [usize; 4],
}

pub(crate) fn access(tokens: &Value) -> &str {
    tokens["access"].as_str().expect("an access token")
}

pub(crate) fn header(token: &str) -> jsonwebtoken::Header {
    jsonwebtoken::decode_header(token).expect("a JWT header")
}

/// Sign-up, login, refresh and login by code of `phone` (a 0910 number): every signing function
/// signs once, with `key`.
pub(crate) async fn sign_in_every_way(stack: &Stack, key: &str, phone: &str, e164: &str) -> Signed {
    let outbox = stack.any();
    let mut signatures = [0; 4];
    let mut counted = signs_with(key);
    let mut count = |step: usize| {
        let now = signs_with(key);
        signatures[step] = now - counted;
        counted = now;
    };
    let sent = stack
        .post(Endpoint::CheckPhone, json!({ "phone": phone }))
        .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    let code = outbox.last_code_for(e164).expect("the sign-up code");
    let verified = stack
        .post(Endpoint::Verify, json!({ "phone": phone, "code": code }))
        .await;
    assert_eq!(verified.status, 200, "{:?}", verified.body);
    let token = verified.body["registration_token"].as_str().unwrap();
    let register = stack.post(Endpoint::Register, register_body(token)).await;
    assert_eq!(register.status, 201, "{:?}", register.body);
    count(0);
    let login = stack
        .post(
            Endpoint::Login,
            json!({ "phone": phone, "password": PASSWORD }),
        )
        .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    count(1);
    let refresh = stack
        .post(
            Endpoint::Refresh,
            json!({ "refresh": login.body["tokens"]["refresh"] }),
        )
        .await;
    assert_eq!(refresh.status, 200, "{:?}", refresh.body);
    count(2);
    outbox.end_resend_cooldown();
    let requested = stack
        .post(Endpoint::LoginOtpRequest, json!({ "phone": phone }))
        .await;
    assert_eq!(requested.status, 200, "{:?}", requested.body);
    let login_code = outbox.last_code_for(e164).expect("the login code");
    let login_otp = stack
        .post(
            Endpoint::LoginOtp,
            json!({ "phone": phone, "code": login_code,
                    "verification_id": requested.body["verification_id"] }),
        )
        .await;
    assert_eq!(login_otp.status, 200, "{:?}", login_otp.body);
    count(3);
    Signed {
        register: register.body["tokens"].clone(),
        login: login.body["tokens"].clone(),
        refresh: refresh.body["tokens"].clone(),
        login_otp: login_otp.body["tokens"].clone(),
        signatures,
    }
}

pub(crate) async fn get(served: &ServedStack, endpoint: Endpoint) -> Value {
    let response = served
        .stack
        .app(endpoint)
        .send(
            endpoint,
            auth_tests::RawRequest {
                method: "GET",
                ..Default::default()
            },
        )
        .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    response.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_signed_in_kms_verify_with_pyjwt_through_discovery_and_the_wrong_ones_do_not() {
    for (algorithm, spec, kty) in [
        ("RS256", KeySpec::Rsa2048, "RSA"),
        ("ES256", KeySpec::EccNistP256, "EC"),
    ] {
        let key = create_key(spec.clone()).await;
        let listener = Listener::bind().await;
        let issuer = listener.base_url.clone();
        // The template's own key (JwtSigningKey), which moto names.
        let stack = Stack::deploy(
            &[
                ("SmsProvider", "outbox"),
                ("JwtAlgorithm", algorithm),
                ("JwtSigningKey.Arn", &key),
                ("JwtIssuer", &issuer),
            ],
            None,
        )
        .await;
        let signed = sign_in_every_way(&stack, &key, "09101234567", "+989101234567").await;
        // One token signed each time: the access token (refresh tokens are opaque).
        assert_eq!(
            signed.signatures,
            [1, 1, 1, 1],
            "{algorithm}: sign-up, login, refresh, login by code"
        );
        // No function reads the Ed25519 secret, nor does any signing function but refresh (which
        // verifies refresh tokens) read the key publication secret.
        let read: Vec<String> = stack
            .secrets_manager
            .requests()
            .iter()
            .map(|request| request.json()["SecretId"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            !read.iter().any(|id| id.ends_with(":JwtSigningSecret")),
            "{read:?}"
        );
        let publication = read
            .iter()
            .filter(|id| id.ends_with(":KeyPublicationSecret"));
        assert_eq!(
            publication.count(),
            10,
            "the nine verifiers and refresh: {read:?}"
        );
        for tokens in [
            &signed.register,
            &signed.login,
            &signed.refresh,
            &signed.login_otp,
        ] {
            assert_eq!(format!("{:?}", header(access(tokens)).alg), algorithm);
        }
        let kid = header(access(&signed.login)).kid.expect("a kid");
        // The verifying functions read the public key from KMS at their cold start.
        let profile = stack
            .authed(Endpoint::Profile, "GET", access(&signed.login_otp), None)
            .await;
        assert_eq!(profile.status, 200, "{:?}", profile.body);

        let signer = &stack.app(Endpoint::Login).app.tokens;
        let expired = signer
            .issue(
                ("user", "session"),
                &Default::default(),
                auth_tests::now() - 8 * 86_400,
            )
            .await
            .unwrap()
            .pair
            .access;
        let (legacy_refresh, _) = signer
            .legacy_refresh_jwt("user", "session", auth_tests::now())
            .await
            .unwrap();
        // Signed under another KMS key, which this service does not publish.
        let other = create_key(spec).await;
        let stranger = TestApp::with_env(&[
            ("JWT_ALGORITHM", algorithm),
            ("JWT_KMS_KEY_ID", &other),
            ("JWT_ISSUER", &issuer),
        ])
        .await;
        let unknown_kid = stranger.access_token().await;

        let served = ServedStack::serve(listener, stack);
        let keys = get(&served, Endpoint::Jwks).await;
        assert_eq!(keys["keys"].as_array().map(Vec::len), Some(1), "{keys}");
        let jwk = &keys["keys"][0];
        assert_eq!(
            (&jwk["kty"], &jwk["kid"], &jwk["alg"], &jwk["use"]),
            (&json!(kty), &json!(kid), &json!(algorithm), &json!("sig"))
        );
        let discovery = get(&served, Endpoint::OpenIdConfiguration).await;
        assert_eq!(
            discovery["id_token_signing_alg_values_supported"],
            json!([algorithm])
        );

        let audience = "phone-auth-clients";
        let case = |name: &str, token: &str, audience: &str| json!({ "name": name, "token": token, "audience": audience });
        let verdict = run_verifier(
            "discovery_pyjwt.py",
            &json!({
                "issuer": served.base_url,
                "cases": [
                    case("register", access(&signed.register), audience),
                    case("login", access(&signed.login), audience),
                    case("refresh", access(&signed.refresh), audience),
                    case("login-otp", access(&signed.login_otp), audience),
                    case("wrong audience", access(&signed.login), "another-service"),
                    case("expired", &expired, audience),
                    case("refresh as access", signed.login["refresh"].as_str().unwrap(), audience),
                    case("legacy refresh as access", &legacy_refresh, audience),
                    case("unknown kid", &unknown_kid, audience),
                ],
            }),
        )
        .await;
        let results = &verdict["results"];
        for name in ["register", "login", "refresh", "login-otp"] {
            assert_eq!(results[name]["ok"], true, "{algorithm} {name}: {verdict}");
            assert_eq!(results[name]["claims"]["iss"], served.base_url.as_str());
        }
        for (name, error) in [
            ("wrong audience", "InvalidAudienceError"),
            ("expired", "ExpiredSignatureError"),
            // Opaque: not a JWT at all.
            ("refresh as access", "DecodeError"),
            ("legacy refresh as access", "InvalidAudienceError"),
            ("unknown kid", "PyJWKClientError"),
        ] {
            assert_eq!(results[name]["ok"], false, "{algorithm} {name}: {verdict}");
            assert_eq!(
                results[name]["error"], error,
                "{algorithm} {name}: {verdict}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_rotating_to_a_new_kms_key_both_keys_verify_and_are_published() {
    // From RS256 under the stack's key to ES256 under a key of one's own (JwtKmsKeyId), the
    // old one kept as JwtPreviousKmsKeyId: a rotation and a change of algorithm at once.
    let old_key = create_key(KeySpec::Rsa2048).await;
    let new_key = create_key(KeySpec::EccNistP256).await;
    let listener = Listener::bind().await;
    let issuer = listener.base_url.clone();
    let before = Stack::deploy(
        &[
            ("SmsProvider", "outbox"),
            ("JwtAlgorithm", "RS256"),
            ("JwtSigningKey.Arn", &old_key),
            ("JwtIssuer", &issuer),
        ],
        None,
    )
    .await;
    let old = sign_in_every_way(&before, &old_key, "09101234567", "+989101234567").await;
    assert_eq!(old.signatures, [1, 1, 1, 1]);
    let after = before
        .redeploy(&[
            ("SmsProvider", "outbox"),
            ("JwtAlgorithm", "ES256"),
            ("JwtKmsKeyId", &new_key),
            ("JwtPreviousKmsKeyId", &old_key),
            ("JwtIssuer", &issuer),
        ])
        .await;
    // Old tokens keep working: the access token where the user is served, the refresh token
    // for a new pair, signed under the new key.
    let profile = after
        .authed(Endpoint::Profile, "GET", access(&old.login_otp), None)
        .await;
    assert_eq!(profile.status, 200, "{:?}", profile.body);
    let refreshed = after
        .post(
            Endpoint::Refresh,
            json!({ "refresh": old.login_otp["refresh"] }),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
    let new_access = refreshed.body["tokens"]["access"].as_str().unwrap();
    assert_eq!(header(new_access).alg, jsonwebtoken::Algorithm::ES256);
    let new = sign_in_every_way(&after, &new_key, "09101234568", "+989101234568").await;
    assert_eq!(new.signatures, [1, 1, 1, 1]);

    let served = ServedStack::serve(listener, after);
    let keys = get(&served, Endpoint::Jwks).await;
    let kids: Vec<&Value> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["kid"])
        .collect();
    let new_kid = header(new_access).kid.unwrap();
    let old_kid = header(access(&old.login)).kid.unwrap();
    assert_eq!(
        kids,
        [&json!(new_kid), &json!(old_kid)],
        "current first: {keys}"
    );
    let discovery = get(&served, Endpoint::OpenIdConfiguration).await;
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        json!(["ES256", "RS256"])
    );
    let audience = "phone-auth-clients";
    let verdict = run_verifier(
        "discovery_pyjwt.py",
        &json!({
            "issuer": served.base_url,
            "cases": [
                { "name": "old", "token": access(&old.login), "audience": audience },
                { "name": "new", "token": access(&new.login), "audience": audience },
            ],
        }),
    )
    .await;
    assert_eq!(verdict["results"]["old"]["ok"], true, "{verdict}");
    assert_eq!(verdict["results"]["new"]["ok"], true, "{verdict}");
}

#[tokio::test]
async fn a_local_pem_key_signs_rs256_and_es256_without_aws() {
    let dir = std::env::temp_dir().join(format!("kms-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    for (algorithm, options) in [
        (
            "RS256",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"][..],
        ),
        (
            "ES256",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"][..],
        ),
    ] {
        let path = dir.join(format!("{algorithm}.pem"));
        let made = std::process::Command::new("openssl")
            .arg("genpkey")
            .args(options)
            .arg("-out")
            .arg(&path)
            .output()
            .expect("openssl");
        assert!(made.status.success(), "{made:?}");
        let path = path.display().to_string();
        let served = Served::start(&[
            ("JWT_ALGORITHM", algorithm),
            ("LOCAL_JWT_PRIVATE_KEY_FILE", &path),
        ])
        .await;
        let t = &served.app;
        let registered = t
            .registered_user(auth_tests::PHONE, auth_tests::PHONE_E164)
            .await;
        let tokens = &registered.body["tokens"];
        assert_eq!(format!("{:?}", header(access(tokens)).alg), algorithm);
        let profile = t
            .authed(Endpoint::Profile, "GET", access(tokens), None)
            .await;
        assert_eq!(profile.status, 200, "{:?}", profile.body);
        let verdict = run_verifier(
            "discovery_pyjwt.py",
            &json!({
                "issuer": served.base_url,
                "cases": [{ "name": "access", "token": access(tokens), "audience": "phone-auth-clients" }],
            }),
        )
        .await;
        assert_eq!(
            verdict["results"]["access"]["ok"], true,
            "{algorithm}: {verdict}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
