//! Sending the code: Amazon SNS, AWS End User Messaging SMS or an operator's Lambda function in
//! AWS; a JSON-lines outbox file locally and in tests.

use std::path::PathBuf;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_sdk_pinpointsmsvoicev2::config::SharedInterceptor;
use aws_sdk_pinpointsmsvoicev2::types::MessageType;
use aws_sdk_sns::types::{MessageAttributeValue, builders::MessageAttributeValueBuilder};
use tokio::io::AsyncWriteExt;

use crate::config::SmsProviderConfig;
use crate::error::AuthError;
use crate::otp::{OtpCode, OtpPurpose};
use crate::phone::PhoneNumber;

/// How long the operator's function may take: it may start cold and then call an SMS gateway,
/// and the request still has to answer within the function timeout (15 s).
const HOOK_TIMEOUT: Duration = Duration::from_secs(8);

pub enum SmsSender {
    Sns(aws_sdk_sns::Client),
    Outbox {
        path: PathBuf,
    },
    Lambda {
        client: aws_sdk_lambda::Client,
        function: String,
    },
    EndUserMessaging {
        client: aws_sdk_pinpointsmsvoicev2::Client,
        origination_identity: Option<String>,
        configuration_set: Option<String>,
    },
}

/// One code SMS. Holds the code: handed to the provider, never logged (no `Debug`).
pub struct Sms<'a> {
    pub to: &'a PhoneNumber,
    /// The composed text (`messages::Messages::compose`).
    pub body: &'a str,
    pub code: &'a OtpCode,
    pub purpose: OtpPurpose,
    /// The language the body is in (`en`, `fa`, ...).
    pub language: &'a str,
    /// When it is sent (the outbox records it).
    pub now: u64,
}

impl SmsSender {
    /// The sender `config` names, with its client built from `aws`.
    pub fn new(config: &SmsProviderConfig, aws: &SdkConfig) -> Self {
        Self::with_interceptors(config, aws, &[])
    }

    /// As `new`, with `interceptors` on the provider's SDK client. Only code can pass them (no
    /// setting does): the tests record every AWS call a function makes with one.
    pub fn with_interceptors(
        config: &SmsProviderConfig,
        aws: &SdkConfig,
        interceptors: &[SharedInterceptor],
    ) -> Self {
        match config {
            SmsProviderConfig::Sns => {
                let mut sns = aws_sdk_sns::config::Builder::from(aws);
                for interceptor in interceptors {
                    sns.push_interceptor(interceptor.clone());
                }
                Self::Sns(aws_sdk_sns::Client::from_conf(sns.build()))
            }
            SmsProviderConfig::Outbox { path } => Self::Outbox { path: path.clone() },
            SmsProviderConfig::Lambda { function } => {
                // No retry: an invocation that failed or timed out may still have sent the SMS,
                // and a second one would send it again.
                let mut lambda = aws_sdk_lambda::config::Builder::from(aws);
                for interceptor in interceptors {
                    lambda.push_interceptor(interceptor.clone());
                }
                let lambda = lambda
                    .retry_config(RetryConfig::disabled())
                    .timeout_config(
                        TimeoutConfig::builder()
                            .connect_timeout(Duration::from_millis(500))
                            .operation_attempt_timeout(HOOK_TIMEOUT)
                            .operation_timeout(HOOK_TIMEOUT)
                            .build(),
                    )
                    .build();
                Self::Lambda {
                    client: aws_sdk_lambda::Client::from_conf(lambda),
                    function: function.clone(),
                }
            }
            SmsProviderConfig::EndUserMessaging {
                origination_identity,
                configuration_set,
            } => {
                let mut messaging = aws_sdk_pinpointsmsvoicev2::config::Builder::from(aws);
                for interceptor in interceptors {
                    messaging.push_interceptor(interceptor.clone());
                }
                Self::EndUserMessaging {
                    // No retry, for the same reason as the hook: `SendTextMessage` is not
                    // idempotent.
                    client: aws_sdk_pinpointsmsvoicev2::Client::from_conf(
                        messaging.retry_config(RetryConfig::disabled()).build(),
                    ),
                    origination_identity: origination_identity.clone(),
                    configuration_set: configuration_set.clone(),
                }
            }
        }
    }

    pub async fn send(&self, sms: &Sms<'_>) -> Result<(), AuthError> {
        match self {
            Self::Sns(client) => {
                client
                    .publish()
                    .phone_number(sms.to.as_str())
                    .message(sms.body)
                    .message_attributes("AWS.SNS.SMS.SMSType", transactional()?)
                    .send()
                    .await
                    .map_err(AuthError::unavailable)?;
            }
            Self::Outbox { path } => append_to_outbox(path, sms)
                .await
                .map_err(AuthError::unavailable)?,
            Self::Lambda { client, function } => invoke_hook(client, function, sms).await?,
            Self::EndUserMessaging {
                client,
                origination_identity,
                configuration_set,
            } => {
                client
                    .send_text_message()
                    .destination_phone_number(sms.to.as_str())
                    .message_body(sms.body)
                    // OTPs must not be dropped or delayed as marketing traffic.
                    .message_type(MessageType::Transactional)
                    .set_origination_identity(origination_identity.clone())
                    .set_configuration_set_name(configuration_set.clone())
                    .send()
                    .await
                    .map_err(AuthError::unavailable)?;
            }
        }
        tracing::info!(provider = self.name(), language = sms.language, "sms sent");
        Ok(())
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Sns(_) => "sns",
            Self::Outbox { .. } => "outbox",
            Self::Lambda { .. } => "lambda",
            Self::EndUserMessaging { .. } => "end-user-messaging",
        }
    }
}

/// OTPs must not be dropped as marketing traffic.
fn transactional() -> Result<MessageAttributeValue, AuthError> {
    MessageAttributeValueBuilder::default()
        .data_type("String")
        .string_value("Transactional")
        .build()
        .map_err(AuthError::internal)
}

/// Invokes the operator's function synchronously with `{"to", "body", "code", "purpose",
/// "locale"}`. An error it raised (`X-Amz-Function-Error`) or a status other than 2xx is a
/// failure; what it answered is not read (nor logged: it may echo the code).
async fn invoke_hook(
    client: &aws_sdk_lambda::Client,
    function: &str,
    sms: &Sms<'_>,
) -> Result<(), AuthError> {
    let payload = serde_json::json!({
        "to": sms.to.as_str(),
        "body": sms.body,
        "code": sms.code.expose(),
        "purpose": sms.purpose.as_str(),
        "locale": sms.language,
    });
    let output = client
        .invoke()
        .function_name(function)
        .invocation_type(InvocationType::RequestResponse)
        .payload(Blob::new(payload.to_string()))
        .send()
        .await
        .map_err(AuthError::unavailable)?;
    if let Some(kind) = output.function_error() {
        return Err(AuthError::unavailable(format!(
            "the SMS hook function failed ({kind})"
        )));
    }
    if !(200..300).contains(&output.status_code()) {
        return Err(AuthError::unavailable(format!(
            "the SMS hook invocation answered status {}",
            output.status_code()
        )));
    }
    Ok(())
}

async fn append_to_outbox(path: &PathBuf, sms: &Sms<'_>) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut line =
        serde_json::json!({ "to": sms.to.as_str(), "body": sms.body, "sent_at": sms.now })
            .to_string();
    line.push('\n');
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await?;
    // One write of the whole line: O_APPEND keeps concurrent writers' lines whole.
    file.write_all(line.as_bytes()).await?;
    file.flush().await
}
