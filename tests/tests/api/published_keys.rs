//! Which published keys are trusted: only items of the signing keys table whose MAC under the
//! key publication secret verifies, besides the keys in the function's own configuration. A
//! table writer without the secret adds no key, and a corrupt item is skipped, never a 500.

use std::path::Path;

use auth_shared::key_publication::PublicationKey;
use auth_shared::store::signing_keys::KeyMaterial;
use auth_tests::{CapturedLogs, Endpoint, PHONE, PHONE_E164, TestApp, TestResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use serde_json::Value;

const DAY: u64 = 86_400;

/// The PKCS#8 v1 DER prefix of an Ed25519 private key; the 32-byte seed follows it.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A key pair the service never had: its private key, `kid` (RFC 7638 thumbprint) and JWK `x`.
struct ForeignKey {
    encoding: EncodingKey,
    kid: String,
    x: String,
}

impl ForeignKey {
    fn new(seed_byte: u8) -> Self {
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend([seed_byte; 32]);
        let encoding = EncodingKey::from_ed_der(&der);
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::EdDSA).unwrap();
        let AlgorithmParameters::OctetKeyPair(params) = &jwk.algorithm else {
            panic!("not an OKP key");
        };
        Self {
            kid: jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
            x: params.x.clone(),
            encoding,
        }
    }

    fn material(&self) -> KeyMaterial {
        KeyMaterial::Ed25519X(self.x.clone())
    }

    /// `genuine`'s claims (a real user's live session) under this key, as an access token.
    fn sign_like(&self, genuine: &str) -> String {
        let claims: Value = jsonwebtoken::dangerous::insecure_decode(genuine)
            .unwrap()
            .claims;
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }
}

/// The deployment's key publication secret (the tests' local fallback).
fn deployment_publication_key() -> PublicationKey {
    let env = auth_tests::base_env(&[], Path::new(""));
    PublicationKey::new(SecretString::from(
        env["LOCAL_KEY_PUBLICATION_SECRET"].clone(),
    ))
}

/// Writes a key item straight into `t`'s signing keys table, as anyone with write access can.
async fn put_key_item(t: &TestApp, kid: &str, attributes: Vec<(&str, AttributeValue)>) {
    let mut put = t
        .dynamodb
        .put_item()
        .table_name(&t.tables().signing_keys)
        .item("pk", AttributeValue::S("signing-key".to_owned()))
        .item("kid", AttributeValue::S(kid.to_owned()));
    for (name, value) in attributes {
        put = put.item(name, value);
    }
    put.send().await.unwrap();
}

/// The attributes of a well-formed publication of `key` until `expires_at`, with `mac` if any.
fn publication(
    key: &ForeignKey,
    expires_at: u64,
    mac: Option<String>,
) -> Vec<(&'static str, AttributeValue)> {
    let mut attributes = vec![
        ("x", AttributeValue::S(key.x.clone())),
        (
            "published_at",
            AttributeValue::N(auth_tests::now().to_string()),
        ),
        ("expires_at", AttributeValue::N(expires_at.to_string())),
    ];
    attributes.extend(mac.map(|mac| ("mac", AttributeValue::S(mac))));
    attributes
}

/// Another function (profile, jwks...) on `t`'s tables, with the key publication secret and no
/// private key; `overrides` change its settings.
async fn verifier_of(t: &TestApp, overrides: &[(&str, &str)]) -> TestApp {
    let mut settings = vec![("LOCAL_JWT_SIGNING_KEY", "")];
    settings.extend_from_slice(overrides);
    let verifier = t.reconfigured(&settings).await;
    assert!(!verifier.app.tokens.can_sign());
    verifier
}

async fn jwks(t: &TestApp) -> TestResponse {
    t.get(Endpoint::Jwks).await
}

fn kids(key_set: &Value) -> Vec<String> {
    key_set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn profile(t: &TestApp, token: &str) -> TestResponse {
    t.authed(Endpoint::Profile, "GET", token, None).await
}

fn assert_refused_as_invalid_token(response: &TestResponse, what: &str) {
    assert_eq!(response.status, 401, "{what}: {:?}", response.body);
    assert_eq!(
        response.body["error"], "Invalid or expired token.",
        "{what}"
    );
}

/// A signer with one registered user: the app and the user's access token.
async fn signed_in() -> (TestApp, String) {
    let signer = TestApp::new().await;
    let registered = signer.registered_user(PHONE, PHONE_E164).await;
    let access = registered.body["tokens"]["access"]
        .as_str()
        .unwrap()
        .to_owned();
    (signer, access)
}

#[tokio::test]
async fn a_key_written_into_the_table_without_the_secret_is_neither_published_nor_trusted() {
    let (signer, access) = signed_in().await;
    let items = signer.scan(&signer.tables().signing_keys).await;
    let genuine_mac = auth_tests::text(&items[0], "mac")
        .expect("the signer's publication carries a MAC")
        .to_owned();
    let until = auth_tests::now() + 7 * DAY;
    let guessed_secret = PublicationKey::new(SecretString::from(
        "not-the-deployments-key-publication-secret-0123".to_owned(),
    ));
    let guessed = ForeignKey::new(2);
    let guessed_mac = guessed_secret.seal(&guessed.kid, &guessed.material(), until);
    let forgeries = vec![
        ("no MAC", ForeignKey::new(1), None),
        ("a MAC under another secret", guessed, Some(guessed_mac)),
        (
            "the genuine key's MAC",
            ForeignKey::new(3),
            Some(genuine_mac),
        ),
        (
            "a MAC that is not base64",
            ForeignKey::new(4),
            Some("*".to_owned()),
        ),
    ];
    let mut forged_tokens = Vec::new();
    for (what, key, mac) in forgeries {
        put_key_item(&signer, &key.kid, publication(&key, until, mac)).await;
        forged_tokens.push((what, key.sign_like(&access)));
    }

    let verifier = verifier_of(&signer, &[]).await;
    for (what, token) in &forged_tokens {
        assert_refused_as_invalid_token(&profile(&verifier, token).await, what);
        assert_refused_as_invalid_token(&profile(&signer, token).await, what);
    }
    let genuine = profile(&verifier, &access).await;
    assert_eq!(genuine.status, 200, "{:?}", genuine.body);
    for app in [&verifier, &signer] {
        let published = jwks(app).await;
        assert_eq!(published.status, 200);
        assert_eq!(
            kids(&published.body),
            [kid_of(&access)],
            "only the signer's key"
        );
    }

    // The control: the same kind of item, sealed with the deployment's secret, is trusted.
    let sealed = ForeignKey::new(5);
    let mac = deployment_publication_key().seal(&sealed.kid, &sealed.material(), until);
    put_key_item(&signer, &sealed.kid, publication(&sealed, until, Some(mac))).await;
    let later = verifier_of(&signer, &[]).await;
    let response = profile(&later, &sealed.sign_like(&access)).await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    assert!(kids(&jwks(&later).await.body).contains(&sealed.kid));
}

#[tokio::test]
async fn a_table_writer_cannot_extend_a_publication_only_end_it() {
    let (signer, access) = signed_in().await;
    assert_eq!(
        profile(&verifier_of(&signer, &[]).await, &access)
            .await
            .status,
        200
    );

    // A longer publication than the signer wrote: its MAC no longer matches.
    signer
        .dynamodb
        .update_item()
        .table_name(&signer.tables().signing_keys)
        .key("pk", AttributeValue::S("signing-key".to_owned()))
        .key("kid", AttributeValue::S(kid_of(&access)))
        .update_expression("SET expires_at = :later")
        .expression_attribute_values(
            ":later",
            AttributeValue::N((auth_tests::now() + 365 * DAY).to_string()),
        )
        .send()
        .await
        .unwrap();

    let verifier = verifier_of(&signer, &[]).await;
    assert_refused_as_invalid_token(&profile(&verifier, &access).await, "tampered publication");
    let published = jwks(&verifier).await;
    assert_eq!(published.status, 200);
    assert!(kids(&published.body).is_empty(), "{:?}", published.body);
}

#[tokio::test]
async fn an_item_without_a_mac_under_the_signers_kid_does_not_keep_its_key_untrusted() {
    // The signer's key, published without a MAC (by an older version, or by a table writer)
    // for longer than the signer would publish it.
    let signer = TestApp::new().await;
    let x = jwks(&signer).await.body["keys"][0]["x"]
        .as_str()
        .unwrap()
        .to_owned();
    let kid = jwks(&signer).await.body["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let far = auth_tests::now() + 365 * DAY;
    put_key_item(
        &signer,
        &kid,
        vec![
            ("x", AttributeValue::S(x)),
            ("expires_at", AttributeValue::N(far.to_string())),
        ],
    )
    .await;

    let registered = signer.registered_user(PHONE, PHONE_E164).await;
    let access = registered.body["tokens"]["access"].as_str().unwrap();

    let verifier = verifier_of(&signer, &[]).await;
    let response = profile(&verifier, access).await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    let items = signer.scan(&signer.tables().signing_keys).await;
    assert!(auth_tests::text(&items[0], "mac").is_some());
    assert!(auth_tests::num(&items[0], "expires_at").unwrap() < far);
}

#[tokio::test]
async fn corrupt_key_items_are_skipped_and_logged_never_a_500() {
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::WARN);
    let (signer, access) = signed_in().await;
    let until = auth_tests::now() + 7 * DAY;
    let future = || AttributeValue::N(until.to_string());
    put_key_item(
        &signer,
        "x-is-not-text",
        vec![("x", AttributeValue::Bool(true)), ("expires_at", future())],
    )
    .await;
    put_key_item(&signer, "no-x", vec![("expires_at", future())]).await;
    put_key_item(
        &signer,
        "x-and-jwk",
        vec![
            ("x", AttributeValue::S("abc".to_owned())),
            ("jwk", AttributeValue::S("{}".to_owned())),
            ("expires_at", future()),
        ],
    )
    .await;
    put_key_item(
        &signer,
        "expiry-is-text",
        vec![
            ("x", AttributeValue::S("abc".to_owned())),
            ("expires_at", AttributeValue::S("tomorrow".to_owned())),
        ],
    )
    .await;
    // Even sealed with the deployment's secret, a value that is no Ed25519 key verifies nothing.
    let not_a_key_mac = deployment_publication_key().seal(
        "not-a-key",
        &KeyMaterial::Ed25519X("not a key".to_owned()),
        until,
    );
    put_key_item(
        &signer,
        "not-a-key",
        vec![
            ("x", AttributeValue::S("not a key".to_owned())),
            ("expires_at", future()),
            ("mac", AttributeValue::S(not_a_key_mac.clone())),
        ],
    )
    .await;

    // Sealed JWKs that are not keys this service signs with: not JSON, a symmetric key.
    for (kid, jwk) in [
        ("jwk-not-json", "not json"),
        (
            "jwk-symmetric",
            r#"{"kty":"oct","k":"c2VjcmV0LWtleS0wMTIzNDU2Nzg5","alg":"HS256"}"#,
        ),
    ] {
        let material = KeyMaterial::Jwk(jwk.to_owned());
        let mac = deployment_publication_key().seal(kid, &material, until);
        put_key_item(
            &signer,
            kid,
            vec![
                ("jwk", AttributeValue::S(jwk.to_owned())),
                ("expires_at", future()),
                ("mac", AttributeValue::S(mac)),
            ],
        )
        .await;
    }

    // A Bearer call that loads the keys: the valid token still verifies.
    let verifier = verifier_of(&signer, &[]).await;
    let response = profile(&verifier, &access).await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    // A JWKS endpoint's first read: served without the corrupt items.
    let fresh = verifier_of(&signer, &[]).await;
    for app in [&fresh, &verifier] {
        let published = jwks(app).await;
        assert_eq!(published.status, 200, "{:?}", published.body);
        assert_eq!(kids(&published.body), [kid_of(&access)]);
    }
    // A token naming a corrupt item's kid is refused like any unknown kid.
    let mut header = jsonwebtoken::decode_header(&access).unwrap();
    header.kid = Some("x-is-not-text".to_owned());
    let claims: Value = jsonwebtoken::dangerous::insecure_decode(&access)
        .unwrap()
        .claims;
    let named = jsonwebtoken::encode(&header, &claims, &ForeignKey::new(6).encoding).unwrap();
    assert_refused_as_invalid_token(&profile(&fresh, &named).await, "a corrupt item's kid");

    let text = logs.text();
    for kid in ["x-is-not-text", "no-x", "x-and-jwk", "expiry-is-text"] {
        assert!(
            text.lines()
                .any(|line| line.contains("skipped a corrupt item") && line.contains(kid)),
            "{kid} is logged: {text}"
        );
    }
    for kid in ["not-a-key", "jwk-not-json", "jwk-symmetric"] {
        assert!(
            text.lines().any(
                |line| line.contains("skipped a published key that is invalid")
                    && line.contains(kid)
            ),
            "{kid} is logged: {text}"
        );
    }
    assert!(!text.contains(&not_a_key_mac), "no MAC in the logs");
}

#[tokio::test]
async fn without_the_publication_secret_a_verifier_trusts_only_its_configured_keys() {
    let (signer, access) = signed_in().await;
    let x = jwks(&signer).await.body["keys"][0]["x"]
        .as_str()
        .unwrap()
        .to_owned();

    let unconfigured = verifier_of(&signer, &[("LOCAL_KEY_PUBLICATION_SECRET", "")]).await;
    assert_refused_as_invalid_token(&profile(&unconfigured, &access).await, "published only");
    let published = jwks(&unconfigured).await;
    assert_eq!(published.status, 200);
    assert!(kids(&published.body).is_empty());

    let configured = verifier_of(
        &signer,
        &[
            ("LOCAL_KEY_PUBLICATION_SECRET", ""),
            ("JWT_PREVIOUS_PUBLIC_KEY", &x),
        ],
    )
    .await;
    let response = profile(&configured, &access).await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(kids(&jwks(&configured).await.body), [kid_of(&access)]);
}
