//! Sending the code: Amazon SNS, AWS End User Messaging SMS or an operator's Lambda function in
//! AWS; a JSON-lines outbox file locally and in tests.
//!
//! No provider call is ever retried, by the SDK or here: none of them is idempotent, and a call
//! that timed out may still have sent the text. So a send has three outcomes: the provider took
//! it, the provider refused it (nothing was sent), or nobody knows (`Delivery::Unconfirmed`).

use std::path::PathBuf;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_sdk_pinpointsmsvoicev2::config::SharedInterceptor;
use aws_sdk_pinpointsmsvoicev2::error::{DisplayErrorContext, SdkError};
use aws_sdk_pinpointsmsvoicev2::types::MessageType;
use aws_sdk_sns::types::{MessageAttributeValue, builders::MessageAttributeValueBuilder};
use tokio::io::AsyncWriteExt;

use crate::config::ConfigError;
use crate::error::AuthError;
use crate::otp::{OtpCode, OtpPurpose};
use crate::phone::PhoneNumber;
use crate::settings::Env;

/// How long the provider's clients wait for a connection. A send that could not connect was
/// never made, so it is a refusal, not an unknown outcome.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub enum SmsProviderConfig {
    Sns,
    Outbox {
        path: PathBuf,
    },
    /// An operator-owned Lambda function sends the SMS (`SMS_HOOK_FUNCTION`: name or ARN).
    Lambda {
        function: String,
    },
    /// AWS End User Messaging SMS (`SendTextMessage`).
    EndUserMessaging {
        origination_identity: Option<String>,
        configuration_set: Option<String>,
    },
}

impl SmsProviderConfig {
    /// `SMS_PROVIDER` and the settings of the chosen provider (the others' are not read).
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        #[derive(Clone, Copy)]
        enum Provider {
            Sns,
            Outbox,
            Lambda,
            EndUserMessaging,
        }
        let provider = env.choice(
            "SMS_PROVIDER",
            &[
                ("sns", Provider::Sns),
                ("outbox", Provider::Outbox),
                ("lambda", Provider::Lambda),
                ("end-user-messaging", Provider::EndUserMessaging),
            ],
        )?;
        Ok(match provider {
            Provider::Sns => Self::Sns,
            Provider::Outbox => Self::Outbox {
                path: env.text("SMS_OUTBOX_PATH")?.into(),
            },
            Provider::Lambda => Self::Lambda {
                function: env.required("SMS_HOOK_FUNCTION")?.trim().to_owned(),
            },
            Provider::EndUserMessaging => Self::EndUserMessaging {
                origination_identity: env.get("SMS_ORIGINATION_IDENTITY")?,
                configuration_set: env.get("SMS_CONFIGURATION_SET")?,
            },
        })
    }
}

/// The bounds of `SMS_TIMEOUT_SECONDS`: long enough for a slow provider (or a cold hook function),
/// short enough that a sending function's worst case fits its Lambda timeout (template.yaml).
pub const SMS_TIMEOUT_SECONDS: std::ops::RangeInclusive<u64> = 1..=8;

/// `SMS_TIMEOUT_SECONDS`: how long one provider call may take before its outcome is taken as
/// unknown.
pub fn timeout_from_env(env: &Env<'_>) -> Result<Duration, ConfigError> {
    env.bounded("SMS_TIMEOUT_SECONDS", SMS_TIMEOUT_SECONDS, " seconds")
        .map(Duration::from_secs)
}

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

/// One SMS: a code, or a notice. Holds the code: handed to the provider, never logged (no
/// `Debug`).
pub struct Sms<'a> {
    pub to: &'a PhoneNumber,
    /// The composed text (`messages::Messages::compose`).
    pub body: &'a str,
    /// The code and what it is for; none for a notice (`NOTICE_PHONE_CHANGED`).
    pub code: Option<(&'a OtpCode, OtpPurpose)>,
    /// The language the body is in (`en`, `fa`, ...).
    pub language: &'a str,
    /// Whether End User Messaging is to wait for word that the code was entered (its message
    /// feedback, `report_received`): set for codes while the SMS breaker counts conversions.
    pub feedback: bool,
    /// When it is sent (the outbox records it).
    pub now: u64,
}

/// What became of a send the provider did not refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The provider took the message: End User Messaging names it, when its feedback was asked
    /// for (the id `report_received` takes).
    Accepted { message_id: Option<String> },
    /// No answer in time (or none that could be read): the text may well arrive, so the code
    /// must stay usable and the send counted.
    Unconfirmed,
}

/// Why a send failed, as far as anyone can tell.
enum Failure {
    /// Nothing was sent: the provider said no, or no request left.
    Refused(AuthError),
    /// The request may have reached the provider.
    Unknown(AuthError),
}

impl Failure {
    /// Sorts an SDK error: the SDK says a timeout, a dispatch failure and an unreadable answer
    /// "may have been sent"; a connection that was never made (the connect timeout) was not.
    fn of<E, R>(error: SdkError<E, R>) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let unknown = match &error {
            SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
            SdkError::DispatchFailure(failure) => !failure.is_timeout(),
            _ => false,
        };
        let error = AuthError::unavailable(error);
        if unknown {
            Self::Unknown(error)
        } else {
            Self::Refused(error)
        }
    }
}

impl SmsSender {
    /// The sender `config` names, with its client built from `aws` but for its timeouts and
    /// retries (`provider_client_settings`).
    pub fn new(config: &SmsProviderConfig, timeout: Duration, aws: &SdkConfig) -> Self {
        Self::with_interceptors(config, timeout, aws, &[])
    }

    /// As `new`, with `interceptors` on the provider's SDK client. Only code can pass them (no
    /// setting does): the tests record every AWS call a function makes with one.
    pub fn with_interceptors(
        config: &SmsProviderConfig,
        timeout: Duration,
        aws: &SdkConfig,
        interceptors: &[SharedInterceptor],
    ) -> Self {
        let aws = &provider_client_settings(aws, timeout);
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
                let mut lambda = aws_sdk_lambda::config::Builder::from(aws);
                for interceptor in interceptors {
                    lambda.push_interceptor(interceptor.clone());
                }
                Self::Lambda {
                    client: aws_sdk_lambda::Client::from_conf(lambda.build()),
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
                    client: aws_sdk_pinpointsmsvoicev2::Client::from_conf(messaging.build()),
                    origination_identity: origination_identity.clone(),
                    configuration_set: configuration_set.clone(),
                }
            }
        }
    }

    /// Sends `sms` once. `Err` means nothing was sent (a 503 for the caller); a send whose
    /// outcome is unknown is `Ok(Delivery::Unconfirmed)`, logged as `sms_send_uncertain`.
    pub async fn send(&self, sms: &Sms<'_>) -> Result<Delivery, AuthError> {
        let sent = match self {
            Self::Sns(client) => client
                .publish()
                .phone_number(sms.to.as_str())
                .message(sms.body)
                .message_attributes("AWS.SNS.SMS.SMSType", transactional()?)
                .send()
                .await
                .map(|_| None)
                .map_err(Failure::of),
            Self::Outbox { path } => append_to_outbox(path, sms)
                .await
                .map(|()| None)
                .map_err(|error| Failure::Refused(AuthError::unavailable(error))),
            Self::Lambda { client, function } => {
                invoke_hook(client, function, sms).await.map(|()| None)
            }
            Self::EndUserMessaging {
                client,
                origination_identity,
                configuration_set,
            } => client
                .send_text_message()
                .destination_phone_number(sms.to.as_str())
                .message_body(sms.body)
                // OTPs must not be dropped or delayed as marketing traffic.
                .message_type(MessageType::Transactional)
                .set_origination_identity(origination_identity.clone())
                .set_configuration_set_name(configuration_set.clone())
                .set_message_feedback_enabled(sms.feedback.then_some(true))
                .send()
                .await
                .map(|sent| sent.message_id.filter(|_| sms.feedback))
                .map_err(Failure::of),
        };
        match sent {
            Ok(message_id) => {
                tracing::info!(provider = self.name(), language = sms.language, "sms sent");
                Ok(Delivery::Accepted { message_id })
            }
            Err(Failure::Refused(error)) => Err(error),
            Err(Failure::Unknown(error)) => {
                // The SDK's errors name the failure, never the request's body (the code).
                tracing::warn!(
                    provider = self.name(),
                    language = sms.language,
                    error = %DisplayErrorContext(&error),
                    "sms_send_uncertain: no answer from the provider in time; the code stays \
                     usable and the send counted"
                );
                Ok(Delivery::Unconfirmed)
            }
        }
    }

    /// Tells End User Messaging that the code of message `message_id` was entered (its message
    /// feedback `RECEIVED`), so that its own fraud protection learns which messages convert; a
    /// message it hears nothing of is marked failed an hour after its send. Other providers
    /// have no such call.
    pub async fn report_received(&self, message_id: &str) -> Result<(), AuthError> {
        let Self::EndUserMessaging { client, .. } = self else {
            return Ok(());
        };
        client
            .put_message_feedback()
            .message_id(message_id)
            .message_feedback_status(
                aws_sdk_pinpointsmsvoicev2::types::MessageFeedbackStatus::Received,
            )
            .send()
            .await
            .map(drop)
            .map_err(|error| AuthError::unavailable(DisplayErrorContext(&error).to_string()))
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

/// What an operator's function is told a notice is for (`purpose`, with `code` null).
pub const NOTICE_PHONE_CHANGED: &str = "phone_changed_notice";

/// Invokes the operator's function synchronously with `{"to", "body", "code", "purpose",
/// "locale"}` (a notice: `code` null, `purpose` `phone_changed_notice`). An error it raised (`X-Amz-Function-Error`) or a status other than 2xx is a
/// failure; what it answered is not read (nor logged: it may echo the code).
async fn invoke_hook(
    client: &aws_sdk_lambda::Client,
    function: &str,
    sms: &Sms<'_>,
) -> Result<(), Failure> {
    let payload = serde_json::json!({
        "to": sms.to.as_str(),
        "body": sms.body,
        "code": sms.code.map(|(code, _)| code.expose()),
        "purpose": sms.code.map_or(NOTICE_PHONE_CHANGED, |(_, purpose)| purpose.as_str()),
        "locale": sms.language,
    });
    let output = client
        .invoke()
        .function_name(function)
        .invocation_type(InvocationType::RequestResponse)
        .payload(Blob::new(payload.to_string()))
        .send()
        .await
        .map_err(Failure::of)?;
    // The hook answered: what it says is definite.
    if let Some(kind) = output.function_error() {
        return Err(Failure::Refused(AuthError::unavailable(format!(
            "the SMS hook function failed ({kind})"
        ))));
    }
    if !(200..300).contains(&output.status_code()) {
        return Err(Failure::Refused(AuthError::unavailable(format!(
            "the SMS hook invocation answered status {}",
            output.status_code()
        ))));
    }
    Ok(())
}

/// The provider clients' settings: `aws` with one attempt per call (no retry: a retried send
/// may text the code twice or three times) and `timeout` for the whole call.
pub(crate) fn provider_client_settings(aws: &SdkConfig, timeout: Duration) -> SdkConfig {
    aws.to_builder()
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(timeout)
                .operation_timeout(timeout)
                .build(),
        )
        .build()
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
