//! Every endpoint with each function configured exactly as `template.yaml` deploys it
//! (`Stack`): the functions that only verify tokens have no signing key and read the
//! published keys, each function reads at cold start only the secrets the template passes it,
//! and only the sending functions have SMS settings. The calls land in the call record the
//! least-privilege test checks.

use auth_tests::policies::Policies;
use auth_tests::{Endpoint, PASSWORD, PHONE, PHONE_E164, Stack, register_body, tables};
use serde_json::{Value, json};

const NEW_PHONE: &str = "09351234567";
const NEW_PHONE_E164: &str = "+989351234567";
const NEW_PASSWORD: &str = "a brand new passphrase";
const RESET_PASSWORD: &str = "the password after a reset";

fn access(tokens: &Value) -> &str {
    tokens["access"].as_str().expect("an access token")
}

/// The session (`sid` claim) a token belongs to: the id the session list shows.
fn session_of(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url claims"),
    )
    .expect("JSON claims");
    claims["sid"].as_str().expect("a session id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_works_with_its_function_configured_as_the_template_deploys_it() {
    let stack = Stack::deploy(&[("SmsProvider", "outbox")], None).await;
    let outbox = stack.any();

    let sent = stack
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    let code = outbox.last_code_for(PHONE_E164).expect("the sign-up code");
    let verified = stack
        .post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
        .await;
    assert_eq!(verified.status, 200, "{:?}", verified.body);
    let token = verified.body["registration_token"].as_str().unwrap();
    let registered = stack.post(Endpoint::Register, register_body(token)).await;
    assert_eq!(registered.status, 201, "{:?}", registered.body);

    let login = stack
        .post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": PASSWORD }),
        )
        .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let refreshed = stack
        .post(
            Endpoint::Refresh,
            json!({ "refresh": login.body["tokens"]["refresh"] }),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
    let tokens = refreshed.body["tokens"].clone();

    let requested = stack
        .post(Endpoint::LoginOtpRequest, json!({ "phone": PHONE }))
        .await;
    assert_eq!(requested.status, 200, "{:?}", requested.body);
    let login_code = outbox.last_code_for(PHONE_E164).expect("the login code");
    let by_code = stack
        .post(
            Endpoint::LoginOtp,
            json!({ "phone": PHONE, "code": login_code,
                    "verification_id": requested.body["verification_id"] }),
        )
        .await;
    assert_eq!(by_code.status, 200, "{:?}", by_code.body);
    let code_tokens = by_code.body["tokens"].clone();

    // The verifying functions hold no signing key: they accept tokens signed by the three
    // signing functions through the keys those published.
    let sessions = stack
        .authed(Endpoint::Sessions, "GET", access(&code_tokens), None)
        .await;
    assert_eq!(sessions.status, 200, "{:?}", sessions.body);
    let listed = sessions.body["sessions"].as_array().expect("a list");
    assert_eq!(listed.len(), 3, "sign-up, password and code logins");
    let signed_up = session_of(access(&registered.body["tokens"]));
    assert!(
        listed
            .iter()
            .any(|session| session["id"] == signed_up.as_str())
    );
    let revoke = Endpoint::SessionRevoke;
    let revoked = stack
        .app(revoke)
        .send(
            revoke,
            auth_tests::RawRequest {
                method: "DELETE",
                path_id: Some(&signed_up),
                bearer: Some(access(&code_tokens)),
                ..auth_tests::RawRequest::default()
            },
        )
        .await;
    assert_eq!(revoked.status, 204, "{:?}", revoked.body);

    let profile = stack
        .authed(Endpoint::Profile, "GET", access(&tokens), None)
        .await;
    assert_eq!(profile.status, 200, "{:?}", profile.body);
    assert_eq!(profile.body["phone"], PHONE_E164);
    let edited = stack
        .authed(
            Endpoint::Profile,
            "PATCH",
            access(&tokens),
            Some(json!({ "first_name": "Sima" })),
        )
        .await;
    assert_eq!(edited.status, 200, "{:?}", edited.body);

    let change = stack
        .authed(
            Endpoint::PhoneChangeRequest,
            "POST",
            access(&code_tokens),
            Some(json!({ "new_phone": NEW_PHONE, "password": PASSWORD })),
        )
        .await;
    assert_eq!(change.status, 200, "{:?}", change.body);
    let change_code = outbox
        .last_code_for(NEW_PHONE_E164)
        .expect("the change code");
    let moved = stack
        .authed(
            Endpoint::PhoneChangeConfirm,
            "POST",
            access(&code_tokens),
            Some(json!({ "new_phone": NEW_PHONE, "code": change_code })),
        )
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    assert_eq!(moved.body["phone"], NEW_PHONE_E164);

    let changed = stack
        .authed(
            Endpoint::PasswordChange,
            "POST",
            access(&code_tokens),
            Some(json!({ "old_password": PASSWORD, "new_password": NEW_PASSWORD })),
        )
        .await;
    assert_eq!(changed.status, 204, "{:?}", changed.body);

    let reset = stack
        .post(
            Endpoint::PasswordResetRequest,
            json!({ "phone": NEW_PHONE }),
        )
        .await;
    assert_eq!(reset.status, 200, "{:?}", reset.body);
    let reset_code = outbox
        .last_code_for(NEW_PHONE_E164)
        .expect("the reset code");
    let confirmed = stack
        .post(
            Endpoint::PasswordResetConfirm,
            json!({ "phone": NEW_PHONE, "code": reset_code, "new_password": RESET_PASSWORD }),
        )
        .await;
    assert_eq!(confirmed.status, 204, "{:?}", confirmed.body);

    let jwks = stack
        .app(Endpoint::Jwks)
        .send(
            Endpoint::Jwks,
            auth_tests::RawRequest {
                method: "GET",
                ..auth_tests::RawRequest::default()
            },
        )
        .await;
    assert_eq!(jwks.status, 200, "{:?}", jwks.body);
    assert_eq!(
        jwks.body["keys"].as_array().map(Vec::len),
        Some(1),
        "the one key the signing functions derive from the one secret"
    );

    let relogin = |password: &'static str| {
        stack.post(
            Endpoint::Login,
            json!({ "phone": NEW_PHONE, "password": password }),
        )
    };
    let fresh = relogin(RESET_PASSWORD).await;
    assert_eq!(fresh.status, 200, "{:?}", fresh.body);
    let logout = stack
        .authed(
            Endpoint::Logout,
            "POST",
            access(&fresh.body["tokens"]),
            Some(json!({ "all": true })),
        )
        .await;
    assert_eq!(logout.status, 204, "{:?}", logout.body);
    let last = relogin(RESET_PASSWORD).await;
    assert_eq!(last.status, 200, "{:?}", last.body);
    let deleted = stack
        .authed(
            Endpoint::Profile,
            "DELETE",
            access(&last.body["tokens"]),
            Some(json!({ "password": RESET_PASSWORD })),
        )
        .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert!(outbox.user(NEW_PHONE_E164).await.is_none());

    // Cold starts: one read per secret the template passes a function, and no other.
    let policies = Policies::from_template(&tables::template_path()).expect("the template");
    // The parameters the stack was deployed with (JwtAlgorithm EdDSA: the Ed25519 secret).
    let parameters = stack.any().parameters.clone();
    let mut expected: Vec<String> = Vec::new();
    for endpoint in Endpoint::ALL {
        let env = policies
            .environment(endpoint.function(), &parameters, "us-east-1")
            .expect("the function's environment");
        for name in [
            "JWT_SIGNING_SECRET_ID",
            "KEY_PUBLICATION_SECRET_ID",
            "OTP_HMAC_SECRET_ID",
        ] {
            expected.extend(env.get(name).cloned());
        }
    }
    let mut read: Vec<String> = stack
        .secrets_manager
        .requests()
        .iter()
        .map(|request| request.json()["SecretId"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    read.sort();
    assert_eq!(read, expected);
}

#[tokio::test]
async fn only_the_functions_that_ask_for_the_bot_check_read_its_secret() {
    let captcha_secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:captcha-AbCdEf";
    let stack = Stack::deploy(
        &[
            ("SmsProvider", "outbox"),
            ("CaptchaProvider", "turnstile"),
            ("CaptchaSecretArn", captcha_secret),
        ],
        None,
    )
    .await;
    // Login asks before a step-up code.
    let asking = [
        Endpoint::CheckPhone,
        Endpoint::Login,
        Endpoint::PasswordResetRequest,
        Endpoint::LoginOtpRequest,
        Endpoint::PhoneChangeRequest,
    ];
    for &endpoint in Endpoint::ALL {
        assert_eq!(
            stack.app(endpoint).app.captcha.is_some(),
            asking.contains(&endpoint),
            "{endpoint:?}"
        );
    }
    let reads = stack
        .secrets_manager
        .requests()
        .iter()
        .filter(|request| request.json()["SecretId"] == captcha_secret)
        .count();
    assert_eq!(
        reads,
        asking.len(),
        "one read per function, at its cold start"
    );

    // Under pressure only (the default): an ordinary sign-up and reset need no token.
    let sent = stack
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    let reset = stack
        .post(Endpoint::PasswordResetRequest, json!({ "phone": PHONE }))
        .await;
    assert_eq!(reset.status, 200, "{:?}", reset.body);
}
