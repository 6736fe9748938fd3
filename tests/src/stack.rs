//! `Stack`: the functions as `template.yaml` deploys them, in-process: one app per function,
//! each configured with the variables the template gives that function (so the verifying
//! functions hold no signing key and only the sending ones have SMS settings), its secrets
//! read at its "cold start" from a Secrets Manager stub by the ARNs the template passes, all
//! over one set of fresh tables. Every AWS call, cold start included, goes to the call record.

use std::collections::BTreeMap;

use auth_shared::App;
use auth_shared::config::Config;
use auth_shared::jwt_keys::AsymmetricKeys;
use auth_shared::secrets::AppSecrets;
use aws_sdk_dynamodb::Client;
use serde_json::{Value, json};

use crate::app::with_recorded_providers;
use crate::calls::{self, CallContext, CallRecorder, Phase};
use crate::policies::Policies;
use crate::{Endpoint, HttpStub, StubAnswer, TestApp, TestResponse, base_env, tables};

/// The value the Secrets Manager stub gives every secret.
const SECRET_VALUE: &str = "a-secret-from-the-secrets-manager-stub-0123456789abcdef";

pub struct Stack {
    apps: BTreeMap<&'static str, TestApp>,
    /// Answers every `GetSecretValue`; its requests are the functions' cold-start reads.
    pub secrets_manager: HttpStub,
    /// The tables (variable, name) and outbox, which a redeployment keeps.
    tables: Vec<(String, String)>,
    outbox: std::path::PathBuf,
}

impl Stack {
    /// The stack deployed with `parameters` (template parameter values; the SMS provider's
    /// clients go to `sms_endpoint` when given). `JwtAlgorithm` is EdDSA unless given (the
    /// template's default, RS256, needs the KMS emulator and a key: see `kms`); a KMS key the
    /// template creates is named by the parameter `JwtSigningKey.Arn`.
    pub async fn deploy(parameters: &[(&str, &str)], sms_endpoint: Option<&str>) -> Self {
        Self::deploy_with_secrets(parameters, sms_endpoint, &[]).await
    }

    /// As `deploy`, with the Secrets Manager stub giving the secret of each (id, value) of
    /// `secrets` its own value (every other secret gets the stub's one value).
    pub async fn deploy_with_secrets(
        parameters: &[(&str, &str)],
        sms_endpoint: Option<&str>,
        secrets: &[(&str, &str)],
    ) -> Self {
        let aws = auth_shared::load_aws_config().await;
        let prefix = format!("t{}-", uuid::Uuid::new_v4().simple());
        let created = tables::create_all(&Client::new(&aws), &prefix)
            .await
            .expect("create tables on DynamoDB Local");
        let outbox = std::env::temp_dir().join(format!("{prefix}sms-outbox.jsonl"));
        Self::deploy_on(created, outbox, parameters, sms_endpoint, secrets).await
    }

    /// The stack deployed again with `parameters`, over the same tables and outbox (an update
    /// of the stack: new instances, the same data).
    pub async fn redeploy(&self, parameters: &[(&str, &str)]) -> Self {
        self.redeploy_with_secrets(parameters, &[]).await
    }

    /// As `redeploy`, with secrets of their own values (`deploy_with_secrets`).
    pub async fn redeploy_with_secrets(
        &self,
        parameters: &[(&str, &str)],
        secrets: &[(&str, &str)],
    ) -> Self {
        let (tables, outbox) = (self.tables.clone(), self.outbox.clone());
        Self::deploy_on(tables, outbox, parameters, None, secrets).await
    }

    async fn deploy_on(
        created: Vec<(String, String)>,
        outbox: std::path::PathBuf,
        parameters: &[(&str, &str)],
        sms_endpoint: Option<&str>,
        secrets: &[(&str, &str)],
    ) -> Self {
        let mut parameters: BTreeMap<String, String> = parameters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        parameters
            .entry("JwtAlgorithm".to_owned())
            .or_insert_with(|| "EdDSA".to_owned());
        let secret = |arn: &str, value: &str| {
            StubAnswer::json(
                200,
                "application/x-amz-json-1.1",
                &json!({ "ARN": arn, "Name": "stub", "SecretString": value }),
            )
        };
        let stub_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:stub";
        let secrets_manager = HttpStub::start(secret(stub_arn, SECRET_VALUE)).await;
        for (id, value) in secrets {
            // The JSON string of the id, as it is in the request.
            let id_in_request = serde_json::to_string(id).expect("an id");
            secrets_manager.answer_when_body_contains(&id_in_request, secret(id, value));
        }
        let aws = auth_shared::load_aws_config().await;
        let region = aws.region().map_or("us-east-1", |r| r.as_ref()).to_owned();
        let dynamodb = Client::new(&aws);
        let kms = crate::kms::client(&aws);
        let policies = Policies::from_template(&tables::template_path()).expect("the template");
        let secrets_client = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(&aws)
                .endpoint_url(&secrets_manager.endpoint)
                .interceptor(CallRecorder)
                .build(),
        );
        let sms_aws = match sms_endpoint {
            Some(endpoint) => aws.to_builder().endpoint_url(endpoint).build(),
            None => aws.clone(),
        };
        let recorded_dynamodb = Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&aws)
                .interceptor(CallRecorder)
                .build(),
        );

        let mut apps = BTreeMap::new();
        for endpoint in Endpoint::ALL {
            let function = endpoint.function();
            // What every function gets (Globals: the tables), without what only some do.
            let mut env = base_env(&created, &outbox);
            for name in [
                "LOCAL_JWT_SIGNING_KEY",
                "LOCAL_KEY_PUBLICATION_SECRET",
                "LOCAL_OTP_HMAC_SECRET",
                "SMS_PROVIDER",
                "JWT_ISSUER",
            ] {
                env.remove(name);
            }
            // Lambda sets it in every function.
            env.insert("AWS_REGION".to_owned(), region.clone());
            env.extend(
                policies
                    .environment(function, &parameters, &region)
                    .unwrap_or_else(|e| panic!("{e}")),
            );
            // Globals variables (`environment` reads the function's own), when the test names
            // their parameter: the issuer it serves the stack at, a published public key.
            for (parameter, variable) in [
                ("JwtIssuer", "JWT_ISSUER"),
                ("JwtPreviousPublicKey", "JWT_PREVIOUS_PUBLIC_KEY"),
            ] {
                if let Some(value) = parameters.get(parameter) {
                    env.insert(variable.to_owned(), value.clone());
                }
            }
            let config = Config::from_lookup(|name| env.get(name).cloned())
                .unwrap_or_else(|e| panic!("{function}'s configuration: {e}"));
            let cold_start = CallContext {
                function: function.to_owned(),
                parameters: parameters.clone(),
                phase: Phase::ColdStart,
            };
            let (secrets, keys) = calls::attributed(cold_start, async {
                tokio::join!(
                    AppSecrets::fetch(&config, &secrets_client),
                    AsymmetricKeys::fetch(&config, &kms)
                )
            })
            .await;
            let secrets = secrets.unwrap_or_else(|e| panic!("{function}'s secrets: {e}"));
            let keys = keys.unwrap_or_else(|e| panic!("{function}'s KMS keys: {e}"));
            let app = App::with_keys(config, secrets, keys, &sms_aws, recorded_dynamodb.clone())
                .unwrap_or_else(|e| panic!("{function}: {e}"));
            let mut test_app = TestApp::from_app(
                with_recorded_providers(app, &sms_aws),
                dynamodb.clone(),
                outbox.clone(),
            );
            test_app.parameters = parameters.clone();
            apps.insert(function, test_app);
        }
        Self {
            apps,
            secrets_manager,
            tables: created,
            outbox,
        }
    }

    /// The app of the function that serves `endpoint`.
    pub fn app(&self, endpoint: Endpoint) -> &TestApp {
        &self.apps[endpoint.function()]
    }

    /// Any function's app, for reading the shared tables and outbox.
    pub fn any(&self) -> &TestApp {
        self.app(Endpoint::CheckPhone)
    }

    pub async fn post(&self, endpoint: Endpoint, body: Value) -> TestResponse {
        self.app(endpoint).post(endpoint, body).await
    }

    pub async fn authed(
        &self,
        endpoint: Endpoint,
        method: &str,
        access_token: &str,
        body: Option<Value>,
    ) -> TestResponse {
        self.app(endpoint)
            .authed(endpoint, method, access_token, body)
            .await
    }
}
