//! The OTP table: at most one live code per phone (a new code replaces the old one). Only the
//! code's keyed hash is stored.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    Delete, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

use super::{
    EXPIRES_AT, Item, ItemKey, condition_failed, get_num, get_text, is_live, num, text, unavailable,
};
use crate::error::AuthError;
use crate::otp::OtpPurpose;
use crate::phone::PhoneNumber;

#[derive(Debug, Clone)]
pub struct StoredOtp {
    pub code_hash: String,
    pub purpose: OtpPurpose,
    pub failed_attempts: u32,
    pub expires_at: u64,
}

pub struct NewOtp<'a> {
    pub phone: &'a PhoneNumber,
    pub code_hash: String,
    pub purpose: OtpPurpose,
    pub now: u64,
    pub expires_at: u64,
    pub resend_at: u64,
}

#[derive(Clone)]
pub struct OtpsTable {
    client: Client,
    name: String,
}

/// Outcome of counting a wrong guess.
pub enum WrongAttempt {
    /// Counted; this many wrong guesses have now been made on the code.
    Counted(u32),
    /// The code was replaced, used, expired or already out of attempts meanwhile.
    CodeGone,
}

impl OtpsTable {
    pub fn new(client: Client, name: String) -> Self {
        Self { client, name }
    }

    /// Where the code of `phone` is, for a batch read.
    pub fn item_key(&self, phone: &PhoneNumber) -> ItemKey {
        ItemKey::new(&self.name, "phone", phone.as_str())
    }

    /// The live code in `item`, if any (an expired item is treated as absent).
    pub fn live(item: Option<Item>, now: u64) -> Option<StoredOtp> {
        item.filter(|item| is_live(item, now))
            .as_ref()
            .and_then(from_item)
    }

    /// Stores a new code, replacing the old one, unless the old one is still inside its resend
    /// cooldown. On refusal the transaction reports the old item (to compute Retry-After).
    pub fn replace(&self, otp: NewOtp<'_>) -> Result<TransactWriteItem, AuthError> {
        let put = Put::builder()
            .table_name(&self.name)
            .item("phone", text(otp.phone.as_str()))
            .item("code_hash", text(otp.code_hash))
            .item("purpose", text(otp.purpose.as_str()))
            .item("failed_attempts", num(0))
            .item("sent_at", num(otp.now))
            .item("resend_at", num(otp.resend_at))
            .item(EXPIRES_AT, num(otp.expires_at))
            .condition_expression(
                "attribute_not_exists(phone) OR resend_at <= :now OR expires_at <= :now",
            )
            .expression_attribute_values(":now", num(otp.now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(AuthError::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Spends the code `code_hash` for `purpose` (for a transaction): fails if it was replaced,
    /// used, expired or ran out of attempts in the meantime, so one code yields one success.
    pub fn consume(
        &self,
        phone: &PhoneNumber,
        code_hash: &str,
        purpose: OtpPurpose,
        max_attempts: u32,
        now: u64,
    ) -> Result<TransactWriteItem, AuthError> {
        let delete = Delete::builder()
            .table_name(&self.name)
            .key("phone", text(phone.as_str()))
            .condition_expression(
                "code_hash = :hash AND purpose = :purpose AND failed_attempts < :max AND expires_at > :now",
            )
            .expression_attribute_values(":hash", text(code_hash))
            .expression_attribute_values(":purpose", text(purpose.as_str()))
            .expression_attribute_values(":max", num(max_attempts.into()))
            .expression_attribute_values(":now", num(now))
            .build()
            .map_err(AuthError::internal)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Counts one wrong guess against the code `code_hash`, atomically and only while the code
    /// has attempts left, so parallel guesses can never exceed `max_attempts`.
    pub async fn record_wrong_attempt(
        &self,
        phone: &PhoneNumber,
        code_hash: &str,
        max_attempts: u32,
        now: u64,
    ) -> Result<WrongAttempt, AuthError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("phone", text(phone.as_str()))
            .update_expression("ADD failed_attempts :one")
            .condition_expression(
                "code_hash = :hash AND failed_attempts < :max AND expires_at > :now",
            )
            .expression_attribute_values(":one", num(1))
            .expression_attribute_values(":hash", text(code_hash))
            .expression_attribute_values(":max", num(max_attempts.into()))
            .expression_attribute_values(":now", num(now))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let used = output
                    .attributes
                    .as_ref()
                    .and_then(|item| get_num(item, "failed_attempts"))
                    .unwrap_or(u64::from(max_attempts));
                Ok(WrongAttempt::Counted(
                    u32::try_from(used).unwrap_or(max_attempts),
                ))
            }
            Err(error) if condition_failed(&error) => Ok(WrongAttempt::CodeGone),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Removes the code of `phone` (used when the SMS could not be sent).
    pub async fn delete(&self, phone: &PhoneNumber) -> Result<(), AuthError> {
        self.client
            .delete_item()
            .table_name(&self.name)
            .key("phone", text(phone.as_str()))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// When the code in `old_item` allows a resend, in seconds from `now`.
pub fn resend_wait(old_item: Option<&Item>, now: u64) -> u64 {
    old_item
        .and_then(|item| get_num(item, "resend_at"))
        .map_or(1, |resend_at| resend_at.saturating_sub(now))
}

fn from_item(item: &Item) -> Option<StoredOtp> {
    Some(StoredOtp {
        code_hash: get_text(item, "code_hash")?,
        purpose: OtpPurpose::parse(&get_text(item, "purpose")?)?,
        failed_attempts: u32::try_from(get_num(item, "failed_attempts")?).ok()?,
        expires_at: get_num(item, EXPIRES_AT)?,
    })
}
