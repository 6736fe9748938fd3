//! The OTP table: at most one live code per phone and purpose (a new code replaces the old one
//! of the same purpose only; a flood of reset codes cannot replace a login code). Only the code's
//! keyed hash and the hash of its verification id are stored.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Delete, Put, ReturnValuesOnConditionCheckFailure, Update};

use super::{
    EXPIRES_AT, Item, ItemKey, Snapshot, Write, get_num, get_text, is_live, num, text, unavailable,
};
use crate::error::AuthError;
use crate::otp::OtpPurpose;
use crate::phone::PhoneNumber;

#[derive(Debug, Clone)]
pub struct StoredOtp {
    pub code_hash: String,
    pub verification_hash: Option<String>,
    /// Guesses counted against the code, with or without its verification id.
    pub failed_attempts: u32,
    /// The part of them made without a verification id (clients that do not send one, or
    /// strangers).
    pub anonymous_failed_attempts: u32,
    pub expires_at: u64,
}

pub struct NewOtp<'a> {
    pub phone: &'a PhoneNumber,
    pub purpose: OtpPurpose,
    pub code_hash: String,
    pub verification_hash: String,
    pub now: u64,
    pub expires_at: u64,
    pub resend_at: u64,
}

/// How a guess is counted against a code: every guess against the code's total budget, and a
/// guess without the verification id also against the smaller anonymous budget, so strangers
/// (who have no id) can never spend the whole of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuessBudget {
    /// The guess carried this verification id (hashed): the client that asked for the code.
    Verified(String),
    /// No verification id.
    Anonymous,
}

#[derive(Clone)]
pub struct OtpsTable {
    client: Client,
    name: String,
}

fn key(phone: &PhoneNumber, purpose: OtpPurpose) -> String {
    format!("{phone}#{}", purpose.as_str())
}

impl OtpsTable {
    pub fn new(client: Client, name: String) -> Self {
        Self { client, name }
    }

    /// Where the code of `phone` for `purpose` is, for a batch read.
    pub fn item_key(&self, phone: &PhoneNumber, purpose: OtpPurpose) -> ItemKey {
        ItemKey::new(&self.name, "phone", &key(phone, purpose))
    }

    /// The live code in `item`, if any (an expired item is treated as absent).
    pub fn live(item: Option<&Snapshot>, now: u64) -> Option<StoredOtp> {
        item.map(|snapshot| &snapshot.0)
            .filter(|item| is_live(item, now))
            .and_then(from_item)
    }

    /// Stores a new code, replacing the old one of its purpose, unless the old one is still
    /// inside its resend cooldown. On refusal the transaction reports the old item (to compute
    /// Retry-After).
    pub fn replace(&self, otp: NewOtp<'_>) -> Result<Write, AuthError> {
        let put = Put::builder()
            .table_name(&self.name)
            .item("phone", text(key(otp.phone, otp.purpose)))
            .item("code_hash", text(otp.code_hash))
            .item("verification_hash", text(otp.verification_hash))
            .item("purpose", text(otp.purpose.as_str()))
            .item("failed_attempts", num(0))
            .item("anonymous_failed_attempts", num(0))
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
        Ok(Write::put(put))
    }

    /// Counts one guess against the code before it is compared (for the transaction that takes
    /// the slot): refused once `max_attempts` guesses were counted (or `max_anonymous` without
    /// the id), the code is gone or expired, or the verification id is not the code's, so
    /// parallel guesses can never exceed the budgets. A right guess spends its slot too;
    /// `consume` then deletes the code.
    pub fn take_guess_slot(
        &self,
        phone: &PhoneNumber,
        purpose: OtpPurpose,
        budget: &GuessBudget,
        (max_attempts, max_anonymous): (u32, u32),
        now: u64,
    ) -> Result<Write, AuthError> {
        let update = Update::builder()
            .table_name(&self.name)
            .key("phone", text(key(phone, purpose)))
            .expression_attribute_values(":one", num(1))
            .expression_attribute_values(":max", num(max_attempts.into()))
            .expression_attribute_values(":now", num(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let update = match budget {
            GuessBudget::Verified(verification_hash) => update
                .update_expression("ADD failed_attempts :one")
                .condition_expression(
                    "verification_hash = :id AND failed_attempts < :max AND expires_at > :now",
                )
                .expression_attribute_values(":id", text(verification_hash)),
            GuessBudget::Anonymous => update
                .update_expression("ADD failed_attempts :one, anonymous_failed_attempts :one")
                .condition_expression(
                    "anonymous_failed_attempts < :anonymous AND failed_attempts < :max \
                     AND expires_at > :now",
                )
                .expression_attribute_values(":anonymous", num(max_anonymous.into())),
        };
        let update = update.build().map_err(AuthError::internal)?;
        Ok(Write::update(update))
    }

    /// Spends the code `code_hash` (for a transaction): fails if it was replaced, used or
    /// expired in the meantime, so one code yields one success.
    pub fn consume(
        &self,
        phone: &PhoneNumber,
        purpose: OtpPurpose,
        code_hash: &str,
        now: u64,
    ) -> Result<Write, AuthError> {
        let delete = Delete::builder()
            .table_name(&self.name)
            .key("phone", text(key(phone, purpose)))
            .condition_expression("code_hash = :hash AND expires_at > :now")
            .expression_attribute_values(":hash", text(code_hash))
            .expression_attribute_values(":now", num(now))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::delete(delete))
    }

    /// Removes the code of `phone` for `purpose` (used when the SMS could not be sent).
    pub async fn delete(&self, phone: &PhoneNumber, purpose: OtpPurpose) -> Result<(), AuthError> {
        self.client
            .delete_item()
            .table_name(&self.name)
            .key("phone", text(key(phone, purpose)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// When the code in `old_item` allows a resend, in seconds from `now`.
pub fn resend_wait(old_item: Option<&Snapshot>, now: u64) -> u64 {
    old_item
        .and_then(|snapshot| get_num(&snapshot.0, "resend_at"))
        .map_or(1, |resend_at| resend_at.saturating_sub(now))
}

fn count(item: &Item, name: &str) -> Option<u32> {
    u32::try_from(get_num(item, name).unwrap_or_default()).ok()
}

fn from_item(item: &Item) -> Option<StoredOtp> {
    Some(StoredOtp {
        code_hash: get_text(item, "code_hash")?,
        verification_hash: get_text(item, "verification_hash"),
        failed_attempts: count(item, "failed_attempts")?,
        anonymous_failed_attempts: count(item, "anonymous_failed_attempts")?,
        expires_at: get_num(item, EXPIRES_AT)?,
    })
}
