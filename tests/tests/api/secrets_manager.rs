//! Secrets read from AWS Secrets Manager at cold start, against a local stub of its
//! `GetSecretValue` (JSON protocol): each secret is read once, and its value is what the app
//! signs and hashes with.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use auth_shared::App;
use auth_shared::config::{Config, ConfigError};
use auth_shared::secrets::AppSecrets;
use auth_tests::{Endpoint, PHONE, PHONE_E164, TestApp, base_env, tables};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

const JWT_SECRET_ID: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt-AbCdEf";
const OTP_SECRET_ID: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:otp-GhIjKl";
const PUBLICATION_SECRET_ID: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:keys-MnOpQr";
const JWT_SECRET: &str = "jwt-seed-from-secrets-manager-0123456789abcdef";
const OTP_SECRET: &str = "otp-key-from-secrets-manager-0123456789abcdef";
const PUBLICATION_SECRET: &str = "key-publication-from-secrets-manager-0123456789";

/// A stand-in for Secrets Manager that serves `secrets` and records every `SecretId` asked for.
struct SecretsManagerStub {
    endpoint: String,
    requested: Arc<Mutex<Vec<String>>>,
}

impl SecretsManagerStub {
    async fn start(secrets: &[(&str, &str)]) -> Self {
        let secrets: Arc<HashMap<String, String>> = Arc::new(
            secrets
                .iter()
                .map(|(id, value)| ((*id).to_owned(), (*value).to_owned()))
                .collect(),
        );
        let requested = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let log = requested.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (secrets, log) = (secrets.clone(), log.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        get_secret_value(secrets.clone(), log.clone(), request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            endpoint,
            requested,
        }
    }

    fn requested(&self) -> Vec<String> {
        let mut ids = self.requested.lock().expect("log").clone();
        ids.sort();
        ids
    }

    fn client(&self, aws: &aws_config::SdkConfig) -> aws_sdk_secretsmanager::Client {
        let config = aws_sdk_secretsmanager::config::Builder::from(aws)
            .endpoint_url(&self.endpoint)
            .build();
        aws_sdk_secretsmanager::Client::from_conf(config)
    }
}

async fn get_secret_value(
    secrets: Arc<HashMap<String, String>>,
    requested: Arc<Mutex<Vec<String>>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = request
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default();
    let input: Value = serde_json::from_slice(&body).unwrap_or_default();
    let secret_id = input["SecretId"].as_str().unwrap_or_default().to_owned();
    requested.lock().expect("log").push(secret_id.clone());
    let (status, answer) = match secrets.get(&secret_id) {
        Some(value) if target.as_deref() == Some("secretsmanager.GetSecretValue") => (
            StatusCode::OK,
            json!({
                "ARN": secret_id,
                "Name": secret_id.rsplit(':').next(),
                "SecretString": value,
                "VersionId": "00000000-0000-0000-0000-000000000001",
                "VersionStages": ["AWSCURRENT"],
                "CreatedDate": 1_795_000_000.0
            }),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            json!({
                "__type": "ResourceNotFoundException",
                "Message": "Secrets Manager can't find the specified secret."
            }),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(answer.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        "application/x-amz-json-1.1".parse().expect("header"),
    );
    Ok(response)
}

/// The test environment on fresh tables, with the secrets named by id instead of given.
async fn config_with_secret_ids(
    dynamodb: &aws_sdk_dynamodb::Client,
    ids: &[(&str, &str)],
) -> (Config, std::path::PathBuf) {
    let prefix = format!("t{}-", uuid::Uuid::new_v4().simple());
    let created = tables::create_all(dynamodb, &prefix)
        .await
        .expect("create tables on DynamoDB Local");
    let outbox = std::env::temp_dir().join(format!("{prefix}sms-outbox.jsonl"));
    let mut env = base_env(&created, &outbox);
    env.remove("LOCAL_JWT_SIGNING_KEY");
    env.remove("LOCAL_KEY_PUBLICATION_SECRET");
    env.remove("LOCAL_OTP_HMAC_SECRET");
    for (name, id) in ids {
        env.insert((*name).to_owned(), (*id).to_owned());
    }
    let config = Config::from_lookup(|name| env.get(name).cloned()).expect("valid config");
    (config, outbox)
}

#[tokio::test]
async fn an_app_with_secret_ids_reads_each_secret_once_and_uses_it() {
    let stub = SecretsManagerStub::start(&[
        (JWT_SECRET_ID, JWT_SECRET),
        (OTP_SECRET_ID, OTP_SECRET),
        (PUBLICATION_SECRET_ID, PUBLICATION_SECRET),
    ])
    .await;
    let aws = auth_shared::load_aws_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let (config, outbox) = config_with_secret_ids(
        &dynamodb,
        &[
            ("JWT_SIGNING_SECRET_ID", JWT_SECRET_ID),
            ("OTP_HMAC_SECRET_ID", OTP_SECRET_ID),
            ("KEY_PUBLICATION_SECRET_ID", PUBLICATION_SECRET_ID),
        ],
    )
    .await;

    let secrets = AppSecrets::fetch(&config, &stub.client(&aws))
        .await
        .expect("secrets read");
    let app = App::with_secrets(config, secrets, &aws, dynamodb.clone()).expect("app");
    let t = TestApp::from_app(app, dynamodb, outbox);

    // Sign-up, login and an authenticated call: codes hashed and tokens signed with the
    // fetched secrets, and no further reads.
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let tokens = t.login(PHONE).await;
    let profile = t
        .authed(
            Endpoint::Profile,
            "GET",
            tokens["access"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(profile.status, 200, "{:?}", profile.body);
    assert_eq!(
        stub.requested(),
        [JWT_SECRET_ID, PUBLICATION_SECRET_ID, OTP_SECRET_ID],
        "one GetSecretValue per secret"
    );

    // The key is the one the secret's value derives: the same as the local fallback's.
    let local = TestApp::with_env(&[("LOCAL_JWT_SIGNING_KEY", JWT_SECRET)]).await;
    let local_access = local.registered_user(PHONE, PHONE_E164).await.body["tokens"]["access"]
        .as_str()
        .unwrap()
        .to_owned();
    let kid = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    assert_eq!(
        kid(registered.body["tokens"]["access"].as_str().unwrap()),
        kid(&local_access)
    );
}

#[tokio::test]
async fn an_app_reads_only_the_secrets_it_is_configured_with() {
    let stub =
        SecretsManagerStub::start(&[(JWT_SECRET_ID, JWT_SECRET), (OTP_SECRET_ID, OTP_SECRET)])
            .await;
    let aws = auth_shared::load_aws_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let (config, _) =
        config_with_secret_ids(&dynamodb, &[("OTP_HMAC_SECRET_ID", OTP_SECRET_ID)]).await;

    let secrets = AppSecrets::fetch(&config, &stub.client(&aws))
        .await
        .expect("secrets read");

    assert_eq!(stub.requested(), [OTP_SECRET_ID]);
    let app = App::with_secrets(config, secrets, &aws, dynamodb).expect("app");
    assert!(!app.tokens.can_sign());
    assert!(app.otp_hasher().is_ok());
}

#[tokio::test]
async fn an_unreadable_or_short_secret_stops_the_start_naming_its_variable() {
    let short = "too-short";
    let stub = SecretsManagerStub::start(&[(OTP_SECRET_ID, short)]).await;
    let aws = auth_shared::load_aws_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let client = stub.client(&aws);

    for (variable, id) in [
        (
            "JWT_SIGNING_SECRET_ID",
            "arn:aws:secretsmanager:us-east-1:1:secret:gone",
        ),
        ("OTP_HMAC_SECRET_ID", OTP_SECRET_ID),
    ] {
        let (config, _) = config_with_secret_ids(&dynamodb, &[(variable, id)]).await;
        let error = AppSecrets::fetch(&config, &client)
            .await
            .err()
            .expect("the start fails");
        let ConfigError::SecretUnreadable { name, .. } = &error else {
            panic!("{error}");
        };
        assert_eq!(*name, variable);
        assert!(!error.to_string().contains(short), "{error}");
    }
}

#[tokio::test]
async fn secret_ids_need_the_secrets_manager_path() {
    let aws = auth_shared::load_aws_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let (config, _) =
        config_with_secret_ids(&dynamodb, &[("JWT_SIGNING_SECRET_ID", JWT_SECRET_ID)]).await;
    assert!(matches!(
        App::new(config, &aws),
        Err(ConfigError::SecretUnreadable {
            name: "JWT_SIGNING_SECRET_ID",
            ..
        })
    ));
}

#[tokio::test]
async fn a_signer_without_the_key_publication_secret_stops_at_start() {
    let stub = SecretsManagerStub::start(&[(JWT_SECRET_ID, JWT_SECRET)]).await;
    let aws = auth_shared::load_aws_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let (config, _) =
        config_with_secret_ids(&dynamodb, &[("JWT_SIGNING_SECRET_ID", JWT_SECRET_ID)]).await;
    let secrets = AppSecrets::fetch(&config, &stub.client(&aws))
        .await
        .expect("secrets read");

    // It could sign tokens whose key no verifier would trust.
    assert!(matches!(
        App::with_secrets(config, secrets, &aws, dynamodb),
        Err(ConfigError::Missing("KEY_PUBLICATION_SECRET_ID"))
    ));
}
