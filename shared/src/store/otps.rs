//! The OTP table: at most one live code per phone and purpose (a new code replaces the old one
//! of the same purpose only; a flood of reset codes cannot replace a login code). Only the code's
//! keyed hash and the hash of its verification id are stored.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Delete, Put, ReturnValuesOnConditionCheckFailure, Update};

use serde::{Deserialize, Serialize};

use super::{ItemKey, Snapshot, Write, condition_failed, decode, encode, num, text, unavailable};
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
    /// The account a code was sent for, when it is not the phone's own (a change of number).
    pub owner: Option<String>,
}

#[derive(Clone)]
pub struct NewOtp<'a> {
    pub phone: &'a PhoneNumber,
    pub purpose: OtpPurpose,
    pub owner: Option<&'a str>,
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

/// The stored form of a code: its attribute names are written here once.
#[derive(Serialize, Deserialize)]
struct OtpItem {
    /// `<e164>#<purpose>`.
    phone: String,
    code_hash: String,
    #[serde(default)]
    verification_hash: Option<String>,
    purpose: String,
    failed_attempts: u32,
    #[serde(default)]
    anonymous_failed_attempts: u32,
    sent_at: u64,
    resend_at: u64,
    expires_at: u64,
    /// The user id a phone-change code was sent for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
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
    pub fn live(item: Option<Snapshot>, now: u64) -> Result<Option<StoredOtp>, AuthError> {
        let Some(snapshot) = item else {
            return Ok(None);
        };
        let item: OtpItem = decode("otps", snapshot.0)?;
        Ok((item.expires_at > now).then_some(StoredOtp {
            code_hash: item.code_hash,
            verification_hash: item.verification_hash,
            failed_attempts: item.failed_attempts,
            anonymous_failed_attempts: item.anonymous_failed_attempts,
            expires_at: item.expires_at,
            owner: item.owner,
        }))
    }

    /// Stores a new code, replacing the old one of its purpose, unless the old one is still
    /// inside its resend cooldown, or, for a code bound to an account, is a live code of another
    /// account (which must not be able to void it). On refusal the transaction reports the old
    /// item (to compute Retry-After).
    pub fn replace(&self, otp: NewOtp<'_>) -> Result<Write, AuthError> {
        let item = OtpItem {
            phone: key(otp.phone, otp.purpose),
            code_hash: otp.code_hash,
            verification_hash: Some(otp.verification_hash),
            purpose: otp.purpose.as_str().to_owned(),
            failed_attempts: 0,
            anonymous_failed_attempts: 0,
            sent_at: otp.now,
            resend_at: otp.resend_at,
            expires_at: otp.expires_at,
            owner: otp.owner.map(str::to_owned),
        };
        let owner = otp.owner;
        let replaceable = match owner {
            None => "resend_at <= :now",
            // `owner` is a reserved word in expressions.
            Some(_) => "resend_at <= :now AND (attribute_not_exists(#owner) OR #owner = :owner)",
        };
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(encode(&item)?))
            .condition_expression(format!(
                "attribute_not_exists(phone) OR expires_at <= :now OR ({replaceable})"
            ))
            .set_expression_attribute_names(
                owner.map(|_| [("#owner".to_owned(), "owner".to_owned())].into()),
            )
            .set_expression_attribute_values(Some(
                [(":now".to_owned(), num(otp.now))]
                    .into_iter()
                    .chain(owner.map(|owner| (":owner".to_owned(), text(owner))))
                    .collect(),
            ))
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

    /// Removes the code `code_hash` of `phone` for `purpose` (its SMS could not be sent); a newer
    /// code stored meanwhile is left alone.
    pub async fn delete_unsent(
        &self,
        phone: &PhoneNumber,
        purpose: OtpPurpose,
        code_hash: &str,
    ) -> Result<(), AuthError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.name)
            .key("phone", text(key(phone, purpose)))
            .condition_expression("code_hash = :hash")
            .expression_attribute_values(":hash", text(code_hash))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(error) if condition_failed(&error) => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }
}

/// When the code in `old_item` allows a new one for `owner`, in seconds from `now`: after its
/// resend cooldown, or, when it is bound to another account, once it expires.
pub fn resend_wait(old_item: Option<&Snapshot>, owner: Option<&str>, now: u64) -> u64 {
    let Some(item) =
        old_item.and_then(|snapshot| decode::<OtpItem>("otps", snapshot.0.clone()).ok())
    else {
        return 1;
    };
    let foreign = item.owner.is_some() && item.owner.as_deref() != owner;
    let until = if foreign {
        item.expires_at
    } else {
        item.resend_at
    };
    until.saturating_sub(now)
}
