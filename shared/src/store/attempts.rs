//! Attempt counters: failure counters with blocks, and fixed-window send counters. Every change
//! is an atomic update, so counts hold across any number of concurrent Lambda instances.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{ReturnValue, TransactWriteItem, Update};

use super::{
    EXPIRES_AT, Item, ItemKey, condition_failed, get_num, is_live, num, text, unavailable,
};
use crate::error::AuthError;

/// Consecutive failed password checks of one account, from any IP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountFailures {
    pub count: u32,
    pub last_failure_at: u64,
    pub expires_at: u64,
}

/// The failures recorded for one key inside its window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures {
    pub count: u32,
    /// Set once the count reached the threshold.
    pub blocked_until: Option<u64>,
}

#[derive(Clone)]
pub struct AttemptsTable {
    client: Client,
    name: String,
}

/// A lost race with a concurrent reset is retried this often before giving up with a 503.
const RESET_RACE_RETRIES: usize = 3;

impl AttemptsTable {
    pub fn new(client: Client, name: String) -> Self {
        Self { client, name }
    }

    /// Where the record `key` is, for a batch read.
    pub fn item_key(&self, key: &str) -> ItemKey {
        ItemKey::new(&self.name, "pk", key)
    }

    /// The live failure record in `item` (none when absent or expired).
    pub fn live_failures(item: Option<Item>, now: u64) -> Option<Failures> {
        item.filter(|item| is_live(item, now))
            .map(|item| failures_from(&item))
    }

    /// The live account failure record in `item`.
    pub fn live_account_failures(item: Option<Item>, now: u64) -> Option<AccountFailures> {
        item.filter(|item| is_live(item, now))
            .map(|item| account_failures_from(&item))
    }

    /// Adds one failure to `key`. The window of `window_seconds` starts at the first failure;
    /// an expired record is restarted atomically (never read-then-write). When the count reaches
    /// `threshold`, the key is blocked for `block_seconds` from now.
    pub async fn record_failure(
        &self,
        key: &str,
        now: u64,
        window_seconds: u64,
        threshold: u32,
        block_seconds: u64,
    ) -> Result<Failures, AuthError> {
        let mut failures = None;
        for _ in 0..RESET_RACE_RETRIES {
            let counted = self
                .update_failures(
                    key,
                    "ADD failures :one SET expires_at = if_not_exists(expires_at, :end)",
                    "attribute_not_exists(pk) OR expires_at > :now",
                    now,
                    now + window_seconds,
                )
                .await?;
            if counted.is_some() {
                failures = counted;
                break;
            }
            // The record exists but has expired (DynamoDB has not deleted it yet): restart it,
            // unless a concurrent request restarted it first, in which case count again.
            let restarted = self
                .update_failures(
                    key,
                    "SET failures = :one, expires_at = :end REMOVE blocked_until",
                    "expires_at <= :now",
                    now,
                    now + window_seconds,
                )
                .await?;
            if restarted.is_some() {
                failures = restarted;
                break;
            }
        }
        let Some(mut failures) = failures else {
            return Err(AuthError::unavailable(
                "failure counter kept changing under concurrent resets",
            ));
        };
        if failures.count >= threshold {
            let until = now + block_seconds;
            self.client
                .update_item()
                .table_name(&self.name)
                .key("pk", text(key))
                .update_expression("SET blocked_until = :until, expires_at = :until")
                .expression_attribute_values(":until", num(until))
                .send()
                .await
                .map_err(unavailable)?;
            failures.blocked_until = Some(until);
        }
        Ok(failures)
    }

    /// Adds one failure to the account record `key`, which is forgotten `memory_seconds` after
    /// the last failure. An expired record restarts at one, atomically as in `record_failure`.
    pub async fn record_account_failure(
        &self,
        key: &str,
        now: u64,
        memory_seconds: u64,
    ) -> Result<u32, AuthError> {
        for _ in 0..RESET_RACE_RETRIES {
            for (update, condition) in [
                (
                    "ADD failures :one SET last_failure_at = :now, expires_at = :end",
                    "attribute_not_exists(pk) OR expires_at > :now",
                ),
                (
                    "SET failures = :one, last_failure_at = :now, expires_at = :end",
                    "expires_at <= :now",
                ),
            ] {
                if let Some(failures) = self
                    .update_failures(key, update, condition, now, now + memory_seconds)
                    .await?
                {
                    return Ok(failures.count);
                }
            }
        }
        Err(AuthError::unavailable(
            "account failure counter kept changing under concurrent resets",
        ))
    }

    /// Runs one conditional update; `None` when its condition did not hold.
    async fn update_failures(
        &self,
        key: &str,
        update: &str,
        condition: &str,
        now: u64,
        window_end: u64,
    ) -> Result<Option<Failures>, AuthError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("pk", text(key))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_values(":one", num(1))
            .expression_attribute_values(":now", num(now))
            .expression_attribute_values(":end", num(window_end))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(
                output
                    .attributes
                    .as_ref()
                    .map(failures_from)
                    .unwrap_or_default(),
            )),
            Err(error) if condition_failed(&error) => Ok(None),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Forgets the failures of `key` (after a success).
    pub async fn clear(&self, key: &str) -> Result<(), AuthError> {
        self.client
            .delete_item()
            .table_name(&self.name)
            .key("pk", text(key))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Counts one send in a fixed window (for a transaction): refused once `limit` sends were
    /// counted under `key`, which names the window, so no reset is ever needed.
    pub fn count_send(
        &self,
        key: &str,
        limit: u32,
        window_end: u64,
    ) -> Result<TransactWriteItem, AuthError> {
        let update = Update::builder()
            .table_name(&self.name)
            .key("pk", text(key))
            .update_expression("ADD hits :one SET expires_at = :end")
            .condition_expression("attribute_not_exists(hits) OR hits < :limit")
            .expression_attribute_values(":one", num(1))
            .expression_attribute_values(":end", num(window_end))
            .expression_attribute_values(":limit", num(limit.into()))
            .build()
            .map_err(AuthError::internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

fn account_failures_from(item: &Item) -> AccountFailures {
    AccountFailures {
        count: failures_from(item).count,
        last_failure_at: get_num(item, "last_failure_at").unwrap_or_default(),
        expires_at: get_num(item, EXPIRES_AT).unwrap_or_default(),
    }
}

fn failures_from(item: &Item) -> Failures {
    Failures {
        count: get_num(item, "failures")
            .and_then(|count| u32::try_from(count).ok())
            .unwrap_or(u32::MAX),
        blocked_until: get_num(item, "blocked_until"),
    }
}
