//! The KMS of the tests: a moto server (`scripts/test` starts it and exports its endpoint as
//! `KMS_TEST_ENDPOINT`), which signs with real RSA and ECDSA keys. Clients record their calls.

use aws_config::SdkConfig;
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
    let mut config = auth_shared::jwt_keys::kms_config(aws).interceptor(CallRecorder);
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
