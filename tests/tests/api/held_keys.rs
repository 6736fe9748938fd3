//! RS256 and ES256 under a private key the signing functions hold (`JwtSigningSecretArn`, a
//! Secrets Manager secret read at cold start) instead of KMS: no KMS call per token, so no KMS
//! quota on logins and refreshes. The verifying functions never read the secret: they learn the
//! public key from the signing keys table, where the signers publish it under the key
//! publication secret's MAC. Deployed as the template deploys it (`Stack`), verified by PyJWT
//! through discovery and by API Gateway's JWT-authorizer rules; and a move from a KMS key to a
//! held one, the held key published first (`JwtPreviousPublicKey`, a PEM public key).

use std::process::{Command, Stdio};

use auth_tests::kms::create_key;
use auth_tests::{Endpoint, Listener, ServedDeployments, ServedStack, Stack, run_verifier};
use aws_sdk_kms::types::KeySpec;
use serde_json::{Value, json};

use crate::authorizer::authorize;
use crate::kms::{access, get, header, sign_in_every_way};

const SECRET_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt-private-key-AbCdEf";
const AUDIENCE: &str = "phone-auth-clients";

/// A fresh PKCS#8 PEM private key for `algorithm` (as docs/operations.md makes one) and its
/// PEM public key.
fn key_pair(algorithm: &str) -> (String, String) {
    let options: &[&str] = match algorithm {
        "RS256" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        _ => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    };
    let made = Command::new("openssl")
        .arg("genpkey")
        .args(options)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{made:?}");
    let private = String::from_utf8(made.stdout).expect("a PEM key");
    let mut public = Command::new("openssl")
        .args(["pkey", "-pubout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl");
    use std::io::Write as _;
    public
        .stdin
        .take()
        .expect("stdin")
        .write_all(private.as_bytes())
        .expect("the private key");
    let public = public.wait_with_output().expect("openssl");
    assert!(public.status.success(), "{public:?}");
    (
        private,
        String::from_utf8(public.stdout).expect("a PEM key"),
    )
}

fn secret_ids_read(stack: &Stack) -> Vec<String> {
    stack
        .secrets_manager
        .requests()
        .iter()
        .map(|request| request.json()["SecretId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_held_in_a_secret_signs_without_kms_and_its_tokens_verify_through_discovery() {
    for (algorithm, kty) in [("RS256", "RSA"), ("ES256", "EC")] {
        let (private, _) = key_pair(algorithm);
        let listener = Listener::bind().await;
        let issuer = listener.base_url.clone();
        let stack = Stack::deploy_with_secrets(
            &[
                ("SmsProvider", "outbox"),
                ("JwtAlgorithm", algorithm),
                ("JwtSigningSecretArn", SECRET_ARN),
                ("JwtIssuer", &issuer),
            ],
            None,
            &[(SECRET_ARN, &private)],
        )
        .await;
        // No function has a KMS key, so no function can sign there (nor may it: the
        // least-privilege test holds every recorded call to the template's policies).
        for endpoint in Endpoint::ALL {
            let config = &stack.app(*endpoint).app.config;
            assert_eq!(config.jwt_asymmetric_key, None, "{endpoint:?}");
        }
        let signed = sign_in_every_way(&stack, SECRET_ARN, "09101234567", "+989101234567").await;
        // Only the four signing functions read the private key.
        let read = secret_ids_read(&stack);
        let private_reads = read.iter().filter(|id| *id == SECRET_ARN).count();
        assert_eq!(
            private_reads, 4,
            "register, login, login-otp, refresh: {read:?}"
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
        // A verifier, which holds no key: the published one.
        let profile = stack
            .authed(Endpoint::Profile, "GET", access(&signed.login_otp), None)
            .await;
        assert_eq!(profile.status, 200, "{:?}", profile.body);
        let expired = stack
            .app(Endpoint::Login)
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
        // The same claims under a key of the same kind the service never had.
        let (stranger_key, _) = key_pair(algorithm);
        let stranger = Stack::deploy_with_secrets(
            &[
                ("SmsProvider", "outbox"),
                ("JwtAlgorithm", algorithm),
                ("JwtSigningSecretArn", SECRET_ARN),
                ("JwtIssuer", &issuer),
            ],
            None,
            &[(SECRET_ARN, &stranger_key)],
        )
        .await;
        let unknown_kid = stranger
            .app(Endpoint::Login)
            .app
            .tokens
            .issue(("user", "session"), &Default::default(), auth_tests::now())
            .await
            .unwrap()
            .pair
            .access;

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
        let case = |name: &str, token: &str, audience: &str| json!({ "name": name, "token": token, "audience": audience });
        let verdict = run_verifier(
            "discovery_pyjwt.py",
            &json!({
                "issuer": served.base_url,
                "cases": [
                    case("register", access(&signed.register), AUDIENCE),
                    case("login", access(&signed.login), AUDIENCE),
                    case("refresh", access(&signed.refresh), AUDIENCE),
                    case("login-otp", access(&signed.login_otp), AUDIENCE),
                    case("wrong audience", access(&signed.login), "another-service"),
                    case("expired", &expired, AUDIENCE),
                    case("refresh as access", signed.login["refresh"].as_str().unwrap(), AUDIENCE),
                    case("unknown kid", &unknown_kid, AUDIENCE),
                ],
            }),
        )
        .await;
        let results = &verdict["results"];
        for name in ["register", "login", "refresh", "login-otp"] {
            assert_eq!(results[name]["ok"], true, "{algorithm} {name}: {verdict}");
        }
        for (name, error) in [
            ("wrong audience", "InvalidAudienceError"),
            ("expired", "ExpiredSignatureError"),
            ("refresh as access", "DecodeError"),
            ("unknown kid", "PyJWKClientError"),
        ] {
            assert_eq!(
                (&results[name]["ok"], &results[name]["error"]),
                (&json!(false), &json!(error)),
                "{algorithm} {name}: {verdict}"
            );
        }
        // API Gateway's HTTP API JWT authorizer takes RSA only: RS256 from a secret as from KMS.
        let authorizer = authorize(
            &served.base_url,
            &["profile"],
            &[("access", access(&signed.login))],
        )
        .await;
        let expected = if algorithm == "RS256" {
            json!({ "allow": true })
        } else {
            json!({ "allow": false, "rule": "alg" })
        };
        for (field, value) in expected.as_object().unwrap() {
            assert_eq!(
                &authorizer["access"][field], value,
                "{algorithm}: {authorizer}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_from_kms_to_a_held_key_publishes_it_first_and_keeps_old_tokens_valid() {
    // docs/operations.md, "Keep the RS256 key in a secret": the held key's public half is
    // published first (JwtPreviousPublicKey, a PEM public key on one line), then the held key
    // signs with the KMS key kept published (JwtPreviousKmsKeyId).
    let kms_key = create_key(KeySpec::Rsa2048).await;
    let (private, public) = key_pair("RS256");
    let public_on_one_line = public.split_whitespace().collect::<Vec<_>>().join(" ");
    let listener = Listener::bind().await;
    let issuer = listener.base_url.clone();

    // 1. KMS signs; the held key is published.
    let first = Stack::deploy(
        &[
            ("SmsProvider", "outbox"),
            ("JwtAlgorithm", "RS256"),
            ("JwtKmsKeyId", &kms_key),
            ("JwtPreviousPublicKey", &public_on_one_line),
            ("JwtIssuer", &issuer),
        ],
        None,
    )
    .await;
    let old = sign_in_every_way(&first, &kms_key, "09101234567", "+989101234567").await;
    assert_eq!(old.signatures, [1, 1, 1, 1]);
    let served = ServedDeployments::serve(listener, first);
    let first_keys = served
        .current()
        .app(Endpoint::Jwks)
        .get(Endpoint::Jwks)
        .await;

    // 2. The held key signs; the KMS key stays published.
    let second = served
        .current()
        .redeploy_with_secrets(
            &[
                ("SmsProvider", "outbox"),
                ("JwtAlgorithm", "RS256"),
                ("JwtSigningSecretArn", SECRET_ARN),
                ("JwtPreviousKmsKeyId", &kms_key),
                ("JwtIssuer", &issuer),
            ],
            &[(SECRET_ARN, &private)],
        )
        .await;
    let second = served.replace(second);
    let refreshed = second
        .post(
            Endpoint::Refresh,
            json!({ "refresh": old.login_otp["refresh"] }),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
    let new_access = refreshed.body["tokens"]["access"].as_str().unwrap();
    let old_access = access(&old.login);
    let profile = second
        .authed(Endpoint::Profile, "GET", old_access, None)
        .await;
    assert_eq!(profile.status, 200, "{:?}", profile.body);
    let second_keys = second.app(Endpoint::Jwks).get(Endpoint::Jwks).await;
    let verdict = authorize(
        &served.base_url,
        &["profile"],
        &[("old", old_access), ("new", new_access)],
    )
    .await;

    let (old_kid, new_kid) = (
        header(old_access).kid.unwrap(),
        header(new_access).kid.unwrap(),
    );
    assert_ne!(old_kid, new_kid);
    let kids = |keys: &Value| -> Vec<String> {
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        kids(&first_keys.body),
        [old_kid.clone(), new_kid.clone()],
        "published before it signs"
    );
    assert_eq!(kids(&second_keys.body), [new_kid, old_kid]);
    assert_eq!(verdict["old"]["allow"], true, "{verdict}");
    assert_eq!(verdict["new"]["allow"], true, "{verdict}");
}
