//! Sending the code: Amazon SNS in AWS, a JSON-lines outbox file locally and in tests.

use std::path::PathBuf;

use aws_sdk_sns::types::{MessageAttributeValue, builders::MessageAttributeValueBuilder};
use tokio::io::AsyncWriteExt;

use crate::error::AuthError;
use crate::phone::PhoneNumber;

pub enum SmsSender {
    Sns(aws_sdk_sns::Client),
    Outbox { path: PathBuf },
}

impl SmsSender {
    /// `body` holds the code: it is handed to the provider and never logged here.
    /// `now` is when it is sent (the outbox records it).
    pub async fn send(&self, to: &PhoneNumber, body: &str, now: u64) -> Result<(), AuthError> {
        match self {
            Self::Sns(client) => {
                client
                    .publish()
                    .phone_number(to.as_str())
                    .message(body)
                    .message_attributes("AWS.SNS.SMS.SMSType", transactional()?)
                    .send()
                    .await
                    .map_err(AuthError::unavailable)?;
            }
            Self::Outbox { path } => append_to_outbox(path, to, body, now)
                .await
                .map_err(AuthError::unavailable)?,
        }
        tracing::info!(provider = self.name(), "sms sent");
        Ok(())
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Sns(_) => "sns",
            Self::Outbox { .. } => "outbox",
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

async fn append_to_outbox(
    path: &PathBuf,
    to: &PhoneNumber,
    body: &str,
    sent_at: u64,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut line =
        serde_json::json!({ "to": to.as_str(), "body": body, "sent_at": sent_at }).to_string();
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
