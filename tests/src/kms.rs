//! The KMS of the tests: a moto server (`scripts/test` starts it and exports its endpoint as
//! `KMS_TEST_ENDPOINT`), which signs with real RSA and ECDSA keys. Clients record their calls
//! and count the `Sign` calls made with each key.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use aws_config::SdkConfig;
use aws_sdk_kms::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_kms::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_kms::operation::sign::SignInput;
use aws_sdk_kms::types::{KeySpec, KeyUsageType};

use crate::calls::CallRecorder;

/// The variable naming the KMS emulator's endpoint.
pub const ENDPOINT_VARIABLE: &str = "KMS_TEST_ENDPOINT";

/// The emulator's endpoint; the tests that need it fail without it.
pub fn endpoint() -> String {
    std::env::var(ENDPOINT_VARIABLE).unwrap_or_else(|_| {
        panic!("{ENDPOINT_VARIABLE} is not set: run the tests with scripts/test, which starts moto")
    })
}

/// A KMS client as the functions build theirs (`jwt_keys::kms_client`), sent to the emulator
/// when there is one, and recording its calls.
pub fn client(aws: &SdkConfig) -> aws_sdk_kms::Client {
    let mut config = auth_shared::jwt_keys::kms_config(aws)
        .interceptor(CallRecorder)
        .interceptor(SignCounter);
    if let Ok(endpoint) = std::env::var(ENDPOINT_VARIABLE) {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_kms::Client::from_conf(config.build())
}

/// A new asymmetric signing key (`RSA_2048` or `ECC_NIST_P256`) in the emulator; its ARN.
pub async fn create_key(spec: KeySpec) -> String {
    let aws = auth_shared::load_aws_config().await;
    let config = aws_sdk_kms::config::Builder::from(&aws)
        .endpoint_url(endpoint())
        .build();
    aws_sdk_kms::Client::from_conf(config)
        .create_key()
        .key_spec(spec)
        .key_usage(KeyUsageType::SignVerify)
        .description("a token signing key of the tests")
        .send()
        .await
        .expect("CreateKey on the KMS emulator")
        .key_metadata
        .and_then(|key| key.arn)
        .expect("the new key's ARN")
}

/// The `Sign` calls made so far, by the key id they named (each test creates its own keys, so
/// tests running at once do not count each other's).
fn sign_calls_by_key() -> &'static Mutex<HashMap<String, usize>> {
    static CALLS: OnceLock<Mutex<HashMap<String, usize>>> = OnceLock::new();
    CALLS.get_or_init(Mutex::default)
}

/// How many `Sign` calls named `key_id` (as configured: the ARN `create_key` returns), through
/// any client `client` built.
pub fn sign_calls(key_id: &str) -> usize {
    let calls = sign_calls_by_key().lock().expect("the sign counter");
    calls.get(key_id).copied().unwrap_or(0)
}

/// Counts each `Sign` operation once (before serialisation: retries are not counted).
#[derive(Debug, Clone, Copy)]
struct SignCounter;

impl Intercept for SignCounter {
    fn name(&self) -> &'static str {
        "SignCounter"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(key_id) = context
            .input()
            .downcast_ref::<SignInput>()
            .and_then(SignInput::key_id)
        {
            let mut calls = sign_calls_by_key().lock().map_err(|_| "the sign counter")?;
            *calls.entry(key_id.to_owned()).or_default() += 1;
        }
        Ok(())
    }
}
