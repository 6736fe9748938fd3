//! The OTP table: every code request is its own item, under the phone and purpose (partition
//! key `phone`, `<e164>#<purpose>`) and the hash of its verification id (sort key
//! `verification`). A later request, whoever makes it, never replaces or weakens a live code:
//! each code counts the guesses that name it. Beside the codes, the partition holds the shared
//! budget of guesses without a verification id (`anonymous`) and each client network's resend
//! cooldown (`resend#<network>`). Only keyed hashes of codes and ids are stored.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Delete, Put, ReturnValuesOnConditionCheckFailure, Update};

use serde::{Deserialize, Serialize};

use super::{
    EXPIRES_AT, ItemKey, Snapshot, Write, condition_failed, decode, encode, num, text, unavailable,
};
use crate::error::AuthError;
use crate::otp::OtpPurpose;
use crate::phone::PhoneNumber;

/// The sort key of the shared budget of guesses without a verification id.
const ANONYMOUS: &str = "anonymous";
/// The sort key prefix of the resend cooldowns.
const RESEND: &str = "resend#";

/// A live code, as read.
#[derive(Debug, Clone)]
pub struct StoredOtp {
    pub verification_hash: String,
    pub code_hash: String,
    /// Guesses counted against the code by its verification id.
    pub failed_attempts: u32,
    pub expires_at: u64,
    /// The account a code was sent for, when it is not the phone's own (a change of number).
    pub owner: Option<String>,
    /// When it was sent: its entry counts in the breaker's bucket of its send.
    pub sent_at: u64,
    /// The SMS provider's id of its message, when the provider waits for word that the code was
    /// entered (End User Messaging's message feedback).
    pub message_id: Option<String>,
}

/// The live shared budget of guesses without a verification id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnonymousRecord {
    pub failed_attempts: u32,
    pub expires_at: u64,
}

/// A new code, for the transaction that sends it.
#[derive(Clone)]
pub struct NewOtp<'a> {
    pub phone: &'a PhoneNumber,
    pub purpose: OtpPurpose,
    pub owner: Option<&'a str>,
    pub code_hash: String,
    pub verification_hash: String,
    /// The client network that asked: its resend cooldown, not anyone else's, is set.
    pub network: &'a str,
    pub now: u64,
    pub expires_at: u64,
    pub resend_at: u64,
    /// A stand-in for a code not sent: `code_hash` is random, so that no guess matches it.
    pub decoy: bool,
}

/// How a guess is counted: against the code its verification id names, or, without an id,
/// against the small budget the phone's codes of that purpose share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuessBudget {
    /// The guess carried this verification id (hashed): the client that asked for the code.
    Verified(String),
    /// No verification id: compared with every live code, counted in the shared budget.
    Anonymous,
}

/// The codes a guess may match, as read before its slot is taken.
#[derive(Debug, Clone)]
pub enum CodeTarget {
    /// The live code the guess's verification id names, if any.
    Verified {
        verification_hash: String,
        code: Option<StoredOtp>,
    },
    /// Every live code of the phone and purpose, and the shared budget's live record.
    Anonymous {
        codes: Vec<StoredOtp>,
        record: Option<AnonymousRecord>,
    },
}

impl CodeTarget {
    /// Keeps only the codes sent for `owner` (`None`: the phone's own codes): a code sent for
    /// another account is no code at all for this one.
    pub fn owned_by(mut self, owner: Option<&str>) -> Self {
        let mine = |code: &StoredOtp| code.owner.as_deref() == owner;
        match &mut self {
            Self::Verified { code, .. } => *code = code.take().filter(mine),
            Self::Anonymous { codes, .. } => codes.retain(mine),
        }
        self
    }

    /// The codes the guess is compared with.
    pub fn codes(&self) -> &[StoredOtp] {
        match self {
            Self::Verified { code, .. } => code.as_slice(),
            Self::Anonymous { codes, .. } => codes,
        }
    }
}

/// The stored form of a code: its attribute names are written here once.
#[derive(Serialize, Deserialize)]
struct OtpItem {
    /// `<e164>#<purpose>`.
    phone: String,
    /// The hash of the code's verification id.
    verification: String,
    code_hash: String,
    purpose: String,
    failed_attempts: u32,
    sent_at: u64,
    expires_at: u64,
    /// The user id a phone-change code was sent for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    /// A stand-in that no code matches, stored when a request for a number without an account
    /// (or one the caps kept from an SMS) sends nothing, so that the answers to guesses do not
    /// tell the two apart.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    decoy: bool,
    /// The provider's id of the SMS, when its feedback was asked for (`set_message_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_id: Option<String>,
}

/// The stored form of the shared budget and of a resend cooldown.
#[derive(Deserialize)]
struct CounterItem {
    #[serde(default)]
    failed_attempts: u32,
    #[serde(default)]
    resend_at: u64,
    expires_at: u64,
}

#[derive(Clone)]
pub struct OtpsTable {
    client: Client,
    name: String,
}

fn key(phone: &PhoneNumber, purpose: OtpPurpose) -> String {
    format!("{phone}#{}", purpose.as_str())
}

fn resend_key(network: &str) -> String {
    format!("{RESEND}{network}")
}

fn live_code(item: OtpItem, now: u64) -> Option<StoredOtp> {
    (item.expires_at > now).then_some(StoredOtp {
        verification_hash: item.verification,
        code_hash: item.code_hash,
        failed_attempts: item.failed_attempts,
        expires_at: item.expires_at,
        owner: item.owner,
        sent_at: item.sent_at,
        message_id: item.message_id,
    })
}

impl OtpsTable {
    pub fn new(client: Client, name: String) -> Self {
        Self { client, name }
    }

    /// Where the code of `phone` for `purpose` with this verification id hash is, for a batch
    /// read.
    pub fn item_key(
        &self,
        phone: &PhoneNumber,
        purpose: OtpPurpose,
        verification_hash: &str,
    ) -> ItemKey {
        ItemKey::composite(
            &self.name,
            ("phone", &key(phone, purpose)),
            ("verification", verification_hash),
        )
    }

    /// The live code in `item`, if any (an expired item is treated as absent).
    pub fn live(item: Option<Snapshot>, now: u64) -> Result<Option<StoredOtp>, AuthError> {
        let Some(snapshot) = item else {
            return Ok(None);
        };
        Ok(live_code(decode("otps", snapshot.0)?, now))
    }

    /// The live shared budget record in `item`, if any.
    pub fn anonymous_record(
        item: Option<Snapshot>,
        now: u64,
    ) -> Result<Option<AnonymousRecord>, AuthError> {
        let Some(snapshot) = item else {
            return Ok(None);
        };
        let item: CounterItem = decode("otps", snapshot.0)?;
        Ok((item.expires_at > now).then_some(AnonymousRecord {
            failed_attempts: item.failed_attempts,
            expires_at: item.expires_at,
        }))
    }

    /// Every live code of `phone` for `purpose` and the shared budget of guesses without an id,
    /// in one strongly consistent query of the partition.
    pub async fn anonymous_target(
        &self,
        phone: &PhoneNumber,
        purpose: OtpPurpose,
        now: u64,
    ) -> Result<CodeTarget, AuthError> {
        // The phone's send caps bound its codes (stand-ins included) to a few dozen a day, far
        // below one page (1 MB); the cap on pages bounds the read whatever the table holds.
        const MAX_PAGES: usize = 2;
        let mut codes = Vec::new();
        let mut record = None;
        let mut start = None;
        let mut pages = 0;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.name)
                .key_condition_expression("phone = :phone")
                // Expired items linger until DynamoDB's TTL deletes them: leave them out.
                .filter_expression("expires_at > :now")
                .expression_attribute_values(":phone", text(key(phone, purpose)))
                .expression_attribute_values(":now", num(now))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in output.items.unwrap_or_default() {
                let sort = item.get("verification").and_then(|v| v.as_s().ok());
                match sort.map(String::as_str) {
                    Some(ANONYMOUS) => {
                        record = Self::anonymous_record(Some(Snapshot(item)), now)?;
                    }
                    Some(sort) if sort.starts_with(RESEND) => {}
                    _ => codes.extend(live_code(decode("otps", item)?, now)),
                }
            }
            start = output.last_evaluated_key;
            pages += 1;
            if start.is_none() || pages == MAX_PAGES {
                if start.is_some() {
                    tracing::warn!("a number's codes span more pages than are read");
                }
                return Ok(CodeTarget::Anonymous { codes, record });
            }
        }
    }

    /// The writes that store a new code, or a stand-in for one (for the transaction): the
    /// caller's network's resend cooldown, refused while it runs (the refusal reports it, for
    /// Retry-After), and the code itself under its own verification id, beside any other live
    /// code. A stand-in answers guesses as a code would, and no guess matches it.
    pub fn store(&self, otp: &NewOtp<'_>) -> Result<[Write; 2], AuthError> {
        let partition = key(otp.phone, otp.purpose);
        let cooldown = Put::builder()
            .table_name(&self.name)
            .item("phone", text(&partition))
            .item("verification", text(resend_key(otp.network)))
            .item("resend_at", num(otp.resend_at))
            .item(EXPIRES_AT, num(otp.resend_at))
            .condition_expression("attribute_not_exists(phone) OR resend_at <= :now")
            .expression_attribute_values(":now", num(otp.now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(AuthError::internal)?;
        let code = self.put_code(OtpItem {
            phone: partition,
            verification: otp.verification_hash.clone(),
            code_hash: otp.code_hash.clone(),
            purpose: otp.purpose.as_str().to_owned(),
            failed_attempts: 0,
            sent_at: otp.now,
            expires_at: otp.expires_at,
            owner: otp.owner.map(str::to_owned),
            decoy: otp.decoy,
            message_id: None,
        })?;
        Ok([Write::put(cooldown), code])
    }

    fn put_code(&self, item: OtpItem) -> Result<Write, AuthError> {
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(encode(&item)?))
            // Verification ids are random: a collision is a bug, never an overwrite.
            .condition_expression("attribute_not_exists(phone)")
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::put(put))
    }

    /// Counts one guess before it is compared (for the transaction that takes the slot): against
    /// the named code, refused once `max_attempts` were counted or the code is gone or expired;
    /// or, without an id, against the shared budget (`max_anonymous` guesses in a code's
    /// lifetime), refused when its state moved on from `target`'s record. Parallel guesses can
    /// therefore never exceed the budgets. A right guess spends its slot too; `consume` then
    /// deletes the code.
    pub fn take_guess_slot(
        &self,
        phone: &PhoneNumber,
        purpose: OtpPurpose,
        target: &CodeTarget,
        (max_attempts, max_anonymous): (u32, u32),
        (now, lifetime): (u64, u64),
    ) -> Result<Write, AuthError> {
        let update = Update::builder()
            .table_name(&self.name)
            .key("phone", text(key(phone, purpose)))
            .expression_attribute_values(":one", num(1))
            .expression_attribute_values(":now", num(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let update = match target {
            CodeTarget::Verified {
                verification_hash, ..
            } => update
                .key("verification", text(verification_hash))
                .update_expression("ADD failed_attempts :one")
                .condition_expression("failed_attempts < :max AND expires_at > :now")
                .expression_attribute_values(":max", num(max_attempts.into())),
            CodeTarget::Anonymous { record: None, .. } => update
                .key("verification", text(ANONYMOUS))
                .update_expression("SET failed_attempts = :one, expires_at = :end")
                .condition_expression("attribute_not_exists(phone) OR expires_at <= :now")
                .expression_attribute_values(":end", num(now + lifetime)),
            CodeTarget::Anonymous {
                record: Some(_), ..
            } => update
                .key("verification", text(ANONYMOUS))
                .update_expression("ADD failed_attempts :one")
                .condition_expression("failed_attempts < :max AND expires_at > :now")
                .expression_attribute_values(":max", num(max_anonymous.into())),
        };
        let update = update.build().map_err(AuthError::internal)?;
        Ok(Write::update(update))
    }

    /// Spends the code `code_hash` (for a transaction): fails if it was used or expired in the
    /// meantime, so one code yields one success.
    pub fn consume(
        &self,
        phone: &PhoneNumber,
        purpose: OtpPurpose,
        code: &StoredOtp,
        now: u64,
    ) -> Result<Write, AuthError> {
        let delete = Delete::builder()
            .table_name(&self.name)
            .key("phone", text(key(phone, purpose)))
            .key("verification", text(&code.verification_hash))
            .condition_expression("code_hash = :hash AND expires_at > :now")
            .expression_attribute_values(":hash", text(&code.code_hash))
            .expression_attribute_values(":now", num(now))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::delete(delete))
    }

    /// Deletes the code `code` whatever its state (for the transaction that enables an account
    /// again: a code sent before its disable must not outlive it).
    pub fn delete_code(
        &self,
        phone: &PhoneNumber,
        purpose: OtpPurpose,
        code: &StoredOtp,
    ) -> Result<Write, AuthError> {
        let delete = Delete::builder()
            .table_name(&self.name)
            .key("phone", text(key(phone, purpose)))
            .key("verification", text(&code.verification_hash))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::delete(delete))
    }

    /// Ends `network`'s resend cooldown (for the transaction that spends a code guessed from
    /// there: the code did its job, and the next one may come at once).
    pub fn end_cooldown(
        &self,
        phone: &PhoneNumber,
        purpose: OtpPurpose,
        network: &str,
    ) -> Result<Write, AuthError> {
        let delete = Delete::builder()
            .table_name(&self.name)
            .key("phone", text(key(phone, purpose)))
            .key("verification", text(resend_key(network)))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::delete(delete))
    }

    /// Notes the provider's id of the code's SMS on the code (while it is still this send's), so
    /// that its entry can be reported to the provider. Best effort: the caller logs a failure.
    pub async fn set_message_id(
        &self,
        otp: &NewOtp<'_>,
        message_id: &str,
    ) -> Result<(), AuthError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("phone", text(key(otp.phone, otp.purpose)))
            .key("verification", text(&otp.verification_hash))
            .update_expression("SET message_id = :id")
            .condition_expression("code_hash = :hash")
            .expression_attribute_values(":id", text(message_id))
            .expression_attribute_values(":hash", text(&otp.code_hash))
            .send()
            .await;
        match result {
            // Spent (or gone) already: nothing to note.
            Err(error) if condition_failed(&error) => Ok(()),
            Err(error) => Err(unavailable(error)),
            Ok(_) => Ok(()),
        }
    }

    /// Removes the code of this verification id (its SMS was refused by the provider), and the
    /// network's cooldown it set, so that asking again is not held to a cooldown for a message
    /// never sent.
    pub async fn delete_unsent(&self, otp: &NewOtp<'_>) -> Result<(), AuthError> {
        let partition = key(otp.phone, otp.purpose);
        let delete = |sort: String, condition: &'static str, value| {
            self.client
                .delete_item()
                .table_name(&self.name)
                .key("phone", text(&partition))
                .key("verification", text(sort))
                .condition_expression(condition)
                .expression_attribute_values(":value", value)
                .send()
        };
        // Side by side: one round trip of the failure path's time budget.
        let (code, cooldown) = tokio::join!(
            delete(
                otp.verification_hash.clone(),
                "code_hash = :value",
                text(&otp.code_hash)
            ),
            delete(
                resend_key(otp.network),
                "resend_at = :value",
                num(otp.resend_at)
            ),
        );
        for deleted in [code, cooldown] {
            match deleted {
                Ok(_) => {}
                Err(error) if condition_failed(&error) => {}
                Err(error) => return Err(unavailable(error)),
            }
        }
        Ok(())
    }
}

/// Seconds from `now` until the cooldown in a refused send's old item lets the network ask again.
pub fn resend_wait(old_item: Option<&Snapshot>, now: u64) -> u64 {
    old_item
        .and_then(|snapshot| decode::<CounterItem>("otps", snapshot.0.clone()).ok())
        .map_or(1, |item| item.resend_at.saturating_sub(now).max(1))
}
