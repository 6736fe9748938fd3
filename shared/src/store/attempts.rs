//! Attempt counters: failure records of (phone, network) pairs and of accounts, and fixed-window
//! send and lookup counters. Every change is one conditional write, so counts hold across any
//! number of concurrent Lambda instances; the rules that plan the writes are in `limits`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, Update,
};

use serde::Deserialize;

use super::{
    EXPIRES_AT, ItemKey, Snapshot, Write, condition_failed, decode, get_item_list, get_num, num,
    text, transaction_conflict, unavailable,
};
use crate::breaker::{
    Breaker, BreakerState, Conversion, ConversionCounter, Counts, Destination, Level, StoredState,
};
use crate::config::Limits;
use crate::error::AuthError;
use crate::limits::{
    AccountRecord, AccountSlot, PairRecord, PairSlot, SendCounter, SendScope, Window,
};
use crate::phone::PhoneNumber;

/// Whether a logged-in session may check a password now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionSlot {
    Taken,
    /// Its checks still running fill its slots: try again in a moment.
    Busy,
    /// Its wrong passwords spent its budget: the session must end.
    Spent,
}

/// What a pair's failures are failures of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Wrong codes (sign-up verification, password reset).
    Verify,
    /// Wrong passwords (login, and password checks of a logged-in user).
    Login,
}

#[derive(Clone)]
pub struct AttemptsTable {
    client: Client,
    name: String,
    marked: Arc<Mutex<HashSet<String>>>,
}

fn pair_key(kind: FailureKind, phone: &PhoneNumber, network: &str) -> String {
    let kind = match kind {
        FailureKind::Verify => "verify",
        FailureKind::Login => "login",
    };
    format!("fail#{kind}#{phone}#{network}")
}

fn account_key(phone: &PhoneNumber) -> String {
    format!("acct#{phone}")
}

fn known_key(phone: &PhoneNumber, network: &str) -> String {
    format!("known#{phone}#{network}")
}

/// The mark that the owner of `phone` proved it (a code, or a password login) recently.
fn proved_key(phone: &PhoneNumber) -> String {
    format!("proved#{phone}")
}

fn session_key(session_id: &str) -> String {
    format!("sessfail#{session_id}")
}

fn send_key(scope: SendScope, subject: &str, window: Window) -> String {
    format!("send#{}#{subject}#{}", scope.name(), window.index)
}

fn counter_key(counter: &SendCounter) -> String {
    match counter.shard {
        Some(shard) => send_key(
            counter.scope,
            &format!("{}~{shard}", counter.subject),
            counter.window,
        ),
        None => send_key(counter.scope, &counter.subject, counter.window),
    }
}

/// The item of a shard of a destination's conversion in one bucket.
fn conversion_key(counter: &ConversionCounter) -> String {
    let destination = counter.destination.name();
    format!("conv#{destination}~{}#{}", counter.shard, counter.bucket)
}

/// The destination whose conversion the item `key` counts, if it is such an item.
pub(crate) fn conversion_destination(key: &str) -> Option<Destination> {
    let (destination, _bucket) = key.strip_prefix("conv#")?.rsplit_once('#')?;
    let (destination, _shard) = destination.rsplit_once('~')?;
    Destination::parse(destination)
}

/// The note that the code of SMS `message_id` was entered, for the provider's feedback.
fn feedback_key(message_id: &str) -> String {
    format!("feedback#{message_id}")
}

/// The SMS whose entered code the item `key` notes (`AttemptsTable::note_entered`), if it is such
/// an item.
pub(crate) fn feedback_message(key: &str) -> Option<&str> {
    key.strip_prefix("feedback#")
}

/// `template` (`{}` standing for the attribute) written for each of `attributes`, joined by
/// `separator`: the clauses of an update or a condition over several counters of one item.
fn each(attributes: &[&str], template: &str, separator: &str) -> String {
    attributes
        .iter()
        .map(|attribute| template.replace("{}", attribute))
        .collect::<Vec<_>>()
        .join(separator)
}

/// Puts a shard of a breaker state, again while it meets a send's transaction on its item;
/// false when its condition refused it (a parallel or later review wrote it).
async fn put_state_shard(
    put: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
) -> Result<bool, AuthError> {
    let mut attempt = 0;
    loop {
        match put.clone().send().await {
            Ok(_) => return Ok(true),
            Err(error) if condition_failed(&error) => return Ok(false),
            Err(error) if transaction_conflict(&error) && attempt < STATE_WRITE_RETRIES => {
                attempt += 1;
                tokio::time::sleep(super::conflict_backoff(attempt)).await;
            }
            Err(error) => return Err(unavailable(error)),
        }
    }
}

/// How often a breaker state item is written again after meeting a send's transaction on it
/// (about 2.5 s at most: the review has the function's minute).
const STATE_WRITE_RETRIES: u32 = 6;

/// The item of a shard of a destination's breaker state (a review writes them all alike).
fn breaker_key(destination: &Destination, shard: u32) -> String {
    format!("breaker#{}~{shard}", destination.name())
}

/// The stored form of a breaker state.
#[derive(Deserialize)]
struct BreakerItem {
    level: String,
    #[serde(default)]
    challenge_until: u64,
    #[serde(default)]
    blocked_until: u64,
    #[serde(default)]
    version: u64,
}

impl BreakerItem {
    fn stored(self) -> Result<StoredState, AuthError> {
        let decided = Level::parse(&self.level)
            .ok_or_else(|| AuthError::internal("a corrupt breaker state"))?;
        Ok(StoredState {
            decided: Some(decided),
            state: BreakerState {
                challenge_until: self.challenge_until,
                blocked_until: self.blocked_until,
            },
            version: self.version,
            stale_shards: false,
        })
    }
}

/// The breaker state in `item` (the default, normal, without one).
fn stored_state(item: Option<super::Item>) -> Result<StoredState, AuthError> {
    item.map_or(Ok(StoredState::default()), |item| {
        decode::<BreakerItem>("attempts", item)?.stored()
    })
}

/// The mark that a budget (all its shards) reached `level` percent in its window.
fn pressure_key(counter: &SendCounter, level: u32) -> String {
    format!(
        "pressure#{}#{}#{}#{level}",
        counter.scope.name(),
        counter.subject,
        counter.window.index
    )
}

/// Pressure marks this instance wrote or found, so it asks DynamoDB about each at most once;
/// cleared when it grows past this many (old windows' marks are never asked about again).
const REMEMBERED_MARKS: usize = 1_000;

/// One more hit in a fixed-window counter, refused at its limit.
const COUNT_HIT: &str = "ADD hits :one SET expires_at = :end";
const UNDER_LIMIT: &str = "attribute_not_exists(hits) OR hits < :limit";
/// The condition of a counter whose limit is 0: nothing is ever under it.
const NO_LIMIT_LEFT: &str = "attribute_exists(hits) AND hits < :limit";

/// The condition that one more hit stays within `limit`.
fn under_limit(limit: u32) -> &'static str {
    if limit == 0 {
        NO_LIMIT_LEFT
    } else {
        UNDER_LIMIT
    }
}

/// The stored form of a failure record (a pair's or an account's).
#[derive(Deserialize)]
struct FailuresItem {
    failures: u32,
    /// Accounts only: no attempt is evaluated before this time.
    #[serde(default)]
    next_attempt_at: u64,
    expires_at: u64,
}

/// The sends a counter item holds: none before its first hit; a value that is not a number is a
/// corrupt item, an error (never taken for 0).
fn hits_of(item: &super::Item) -> Result<u64, AuthError> {
    count_of(item, "hits")
}

/// The count `name` of an item: none before its first hit; a value that is not a number is a
/// corrupt item, an error (never taken for 0).
fn count_of(item: &super::Item, name: &str) -> Result<u64, AuthError> {
    match item.get(name) {
        None => Ok(0),
        Some(_) => get_num(item, name)
            .ok_or_else(|| AuthError::internal("a corrupt counter in the attempts table")),
    }
}

/// The stored form of a mark (a known network, a proved number).
#[derive(Deserialize)]
struct MarkItem {
    expires_at: u64,
}

/// The live failure record in `item` (none when absent or expired).
fn live_failures(item: Option<Snapshot>, now: u64) -> Result<Option<FailuresItem>, AuthError> {
    let Some(snapshot) = item else {
        return Ok(None);
    };
    let record: FailuresItem = decode("attempts", snapshot.0)?;
    Ok((record.expires_at > now).then_some(record))
}

impl AttemptsTable {
    pub fn new(client: Client, name: String) -> Self {
        Self {
            client,
            name,
            marked: Arc::default(),
        }
    }

    pub fn pair_item_key(&self, kind: FailureKind, phone: &PhoneNumber, network: &str) -> ItemKey {
        ItemKey::new(&self.name, "pk", &pair_key(kind, phone, network))
    }

    pub fn account_item_key(&self, phone: &PhoneNumber) -> ItemKey {
        ItemKey::new(&self.name, "pk", &account_key(phone))
    }

    /// Where the mark that `phone` logged in from `network` is, for a batch read.
    pub fn known_network_item_key(&self, phone: &PhoneNumber, network: &str) -> ItemKey {
        ItemKey::new(&self.name, "pk", &known_key(phone, network))
    }

    /// Where the mark that the owner of `phone` proved it recently is, for a batch read.
    pub fn proved_item_key(&self, phone: &PhoneNumber) -> ItemKey {
        ItemKey::new(&self.name, "pk", &proved_key(phone))
    }

    /// After a proof of the account from `network` (a registration, a login by password or by
    /// code, a reset, a change of number), for its transaction: marks `network` as the owner's
    /// (its login attempts are not held by the account back-off, its code requests not by the
    /// phone-wide send caps) and the number as proved recently, both for `memory_seconds`.
    pub fn mark_proof(
        &self,
        phone: &PhoneNumber,
        network: &str,
        memory_seconds: u64,
        now: u64,
    ) -> Result<[Write; 2], AuthError> {
        let mark = |key: String| {
            aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.name)
                .item("pk", text(key))
                .item(EXPIRES_AT, num(now + memory_seconds))
                .build()
                .map(Write::put)
                .map_err(AuthError::internal)
        };
        Ok([mark(known_key(phone, network))?, mark(proved_key(phone))?])
    }

    /// Whether the mark in `item` (`mark_proof`) is live: absent or expired, it is not; a mark
    /// without its end is a corrupt item, an error.
    pub(crate) fn live_mark(item: Option<super::Item>, now: u64) -> Result<bool, AuthError> {
        let Some(item) = item else {
            return Ok(false);
        };
        let mark: MarkItem = decode("attempts", item)?;
        Ok(mark.expires_at > now)
    }

    /// The live pair record in `item` (none when absent or expired).
    pub fn pair_record(item: Option<Snapshot>, now: u64) -> Result<Option<PairRecord>, AuthError> {
        Ok(live_failures(item, now)?.map(|record| PairRecord {
            failures: record.failures,
            expires_at: record.expires_at,
        }))
    }

    /// The live account record in `item` (none when absent or expired).
    pub fn account_record(
        item: Option<Snapshot>,
        now: u64,
    ) -> Result<Option<AccountRecord>, AuthError> {
        Ok(live_failures(item, now)?.map(|record| AccountRecord {
            failures: record.failures,
            next_attempt_at: record.next_attempt_at,
            expires_at: record.expires_at,
        }))
    }

    fn update(&self, key: String) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder()
            .table_name(&self.name)
            .key("pk", text(key))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
    }

    /// Counts one attempt of the pair (for the transaction that takes the slot). Every counted
    /// attempt moves the record's end to `lockout_seconds` from now, so a pair that reaches its
    /// limit is refused for that long after its last failure. Refused when the record is no
    /// longer in the state `slot` was planned from (its old item then tells the new state).
    pub fn take_pair_slot(
        &self,
        kind: FailureKind,
        phone: &PhoneNumber,
        network: &str,
        slot: PairSlot,
        limits: &Limits,
        now: u64,
    ) -> Result<Write, AuthError> {
        let update = self
            .update(pair_key(kind, phone, network))
            .expression_attribute_values(":one", num(1))
            .expression_attribute_values(":now", num(now))
            .expression_attribute_values(":end", num(now + limits.lockout_seconds));
        let update = match slot {
            PairSlot::Restart => update
                .update_expression("SET failures = :one, expires_at = :end")
                .condition_expression("attribute_not_exists(pk) OR expires_at <= :now"),
            PairSlot::Add => update
                .update_expression("ADD failures :one SET expires_at = :end")
                .condition_expression("failures < :max AND expires_at > :now")
                .expression_attribute_values(":max", num(limits.lockout_max_failures.into())),
        };
        let update = update.build().map_err(AuthError::internal)?;
        Ok(Write::update(update))
    }

    /// Counts one attempt of the account (for the transaction that takes the slot); refused
    /// when the record is no longer in the state `slot` was planned from.
    pub fn take_account_slot(
        &self,
        phone: &PhoneNumber,
        slot: AccountSlot,
        limits: &Limits,
        now: u64,
    ) -> Result<Write, AuthError> {
        let update = self
            .update(account_key(phone))
            .expression_attribute_values(":now", num(now))
            .expression_attribute_values(":end", num(now + limits.account_failure_memory_seconds));
        let update = match slot {
            AccountSlot::Restart { next_attempt_at } => update
                .update_expression(
                    "SET failures = :one, next_attempt_at = :next, expires_at = :end",
                )
                .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
                .expression_attribute_values(":one", num(1))
                .expression_attribute_values(":next", num(next_attempt_at)),
            AccountSlot::Free => update
                .update_expression("ADD failures :one SET expires_at = :end")
                .condition_expression(
                    "failures < :free AND next_attempt_at <= :now AND expires_at > :now",
                )
                .expression_attribute_values(":one", num(1))
                .expression_attribute_values(
                    ":free",
                    num(limits
                        .account_backoff_after_failures
                        .saturating_sub(1)
                        .into()),
                ),
            AccountSlot::Gated {
                expected,
                next_attempt_at,
            } => update
                .update_expression(
                    "SET failures = :counted, next_attempt_at = :next, expires_at = :end",
                )
                .condition_expression(
                    "failures = :expected AND next_attempt_at <= :now AND expires_at > :now",
                )
                .expression_attribute_values(":expected", num(expected.into()))
                .expression_attribute_values(":counted", num(u64::from(expected) + 1))
                .expression_attribute_values(":next", num(next_attempt_at)),
            AccountSlot::Counted => update
                .update_expression("ADD failures :one SET expires_at = :end")
                .condition_expression("expires_at > :now")
                .expression_attribute_values(":one", num(1)),
        };
        let update = update.build().map_err(AuthError::internal)?;
        Ok(Write::update(update))
    }

    /// Undoes the count of an attempt that turned out not to be a guess (a right password that
    /// only earned a step-up code): puts the account back as it was `before`, unless another
    /// attempt was counted since (its count is then no longer `counted`). Best effort.
    pub async fn refund_account_slot(
        &self,
        phone: &PhoneNumber,
        before: Option<AccountRecord>,
        counted: u32,
    ) -> Result<(), AuthError> {
        let key = text(account_key(phone));
        let counted = num(counted.into());
        let refused = match before {
            None => self
                .client
                .delete_item()
                .table_name(&self.name)
                .key("pk", key)
                .condition_expression("failures = :counted")
                .expression_attribute_values(":counted", counted)
                .send()
                .await
                .err()
                .map(|error| {
                    let moved_on = error
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception());
                    (moved_on, unavailable(error))
                }),
            Some(before) => self
                .client
                .update_item()
                .table_name(&self.name)
                .key("pk", key)
                .update_expression("SET failures = :failures, next_attempt_at = :next")
                .condition_expression("failures = :counted")
                .expression_attribute_values(":counted", counted)
                .expression_attribute_values(":failures", num(before.failures.into()))
                .expression_attribute_values(":next", num(before.next_attempt_at))
                .send()
                .await
                .err()
                .map(|error| (condition_failed(&error), unavailable(error))),
        };
        match refused {
            // Another attempt was counted since: its count stands.
            None | Some((true, _)) => Ok(()),
            Some((false, error)) => Err(error),
        }
    }

    fn delete(&self, key: String) -> Result<Write, AuthError> {
        let delete = Delete::builder()
            .table_name(&self.name)
            .key("pk", text(key))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::delete(delete))
    }

    /// Forgets the pair's failures (in the transaction of a success).
    pub fn clear_pair(
        &self,
        kind: FailureKind,
        phone: &PhoneNumber,
        network: &str,
    ) -> Result<Write, AuthError> {
        self.delete(pair_key(kind, phone, network))
    }

    /// Forgets the account's failures (in the transaction of a success or a password reset).
    pub fn clear_account(&self, phone: &PhoneNumber) -> Result<Write, AuthError> {
        self.delete(account_key(phone))
    }

    /// Takes a slot for one password check of a logged-in session before it runs: refused
    /// while `max` checks are wrong or still running (a wrong one keeps its slot, a right one
    /// gives it back with `release_session_slot`). The count lives as long as the session can.
    pub async fn take_session_slot(
        &self,
        session_id: &str,
        max: u32,
        expires_at: u64,
    ) -> Result<SessionSlot, AuthError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("pk", text(session_key(session_id)))
            .update_expression("ADD checks :one SET expires_at = if_not_exists(expires_at, :end)")
            .condition_expression("attribute_not_exists(checks) OR checks < :max")
            .expression_attribute_values(":one", num(1))
            .expression_attribute_values(":end", num(expires_at))
            .expression_attribute_values(":max", num(max.into()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(SessionSlot::Taken),
            Err(error) if condition_failed(&error) => {
                let refused = error.as_service_error().and_then(|error| match error {
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(
                        refused,
                    ) => refused.item(),
                    _ => None,
                });
                // No wrong password yet: the slots are all taken by checks still running.
                let wrong = refused.map_or(Ok(0), |item| count_of(item, "wrong"))?;
                Ok(if wrong >= u64::from(max) {
                    SessionSlot::Spent
                } else {
                    SessionSlot::Busy
                })
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Records that the check of a taken session slot found a wrong password (it keeps its
    /// slot); the session's wrong passwords so far.
    pub async fn count_session_failure(&self, session_id: &str) -> Result<u32, AuthError> {
        let output = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("pk", text(session_key(session_id)))
            .update_expression("ADD wrong :one")
            .expression_attribute_values(":one", num(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(unavailable)?;
        let wrong = output
            .attributes
            .as_ref()
            .and_then(|item| get_num(item, "wrong"))
            .ok_or_else(|| AuthError::internal("a session count without its failures"))?;
        Ok(u32::try_from(wrong).unwrap_or(u32::MAX))
    }

    /// Gives back the slot of a session's check that found the right password (for the
    /// transaction that acts on it).
    pub fn release_session_slot(&self, session_id: &str) -> Result<Write, AuthError> {
        let update = self
            .update(session_key(session_id))
            .update_expression("ADD checks :minus_one")
            .expression_attribute_values(":minus_one", AttributeValue::N("-1".to_owned()))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::update(update))
    }

    /// Counts one send in a fixed window (for a transaction): refused once `limit` sends (the
    /// counter's, or less) were counted in the window, which the key names, so no reset is ever
    /// needed. A refusal reports the count (`send_hits`).
    pub fn count_send(&self, counter: &SendCounter, limit: u32) -> Result<Write, AuthError> {
        let update = self
            .update(counter_key(counter))
            .update_expression(COUNT_HIT)
            .condition_expression(under_limit(limit))
            .expression_attribute_values(":one", num(1))
            .expression_attribute_values(":end", num(counter.window.ends_at))
            .expression_attribute_values(":limit", num(limit.into()))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::update(update))
    }

    /// The sends counted in a refused counter's old item (none yet without the item).
    pub fn send_hits(old_item: Option<&Snapshot>) -> Result<u64, AuthError> {
        old_item.map_or(Ok(0), |snapshot| hits_of(&snapshot.0))
    }

    /// Takes back one send counted (one the provider failed), never below zero.
    pub async fn refund_send(&self, counter: &SendCounter) -> Result<(), AuthError> {
        self.take_back(counter_key(counter), &["hits"]).await
    }

    /// Takes one back from each of `attributes` of item `key`, unless one is already at zero
    /// (or the item gone with its window: nothing to take back).
    async fn take_back(&self, key: String, attributes: &[&str]) -> Result<(), AuthError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("pk", text(key))
            .update_expression(format!("ADD {}", each(attributes, "{} :minus_one", ", ")))
            .condition_expression(each(attributes, "{} > :zero", " AND "))
            .expression_attribute_values(":minus_one", AttributeValue::N("-1".to_owned()))
            .expression_attribute_values(":zero", num(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if condition_failed(&error) => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// The sends counted so far in each of `counters` (0 for a counter not written yet).
    pub async fn send_counts(&self, counters: &[SendCounter]) -> Result<Vec<u64>, AuthError> {
        let keys: Vec<ItemKey> = counters
            .iter()
            .map(|counter| self.counter_item_key(counter))
            .collect();
        let items = get_item_list(&self.client, &keys).await?;
        items
            .iter()
            .map(|item| Self::sends_in(item.as_ref()))
            .collect()
    }

    /// The key of a send counter's item, for a read in a batch.
    pub(crate) fn counter_item_key(&self, counter: &SendCounter) -> ItemKey {
        ItemKey::new(&self.name, "pk", &counter_key(counter))
    }

    /// The sends a counter's item holds (0 without the item); a corrupt one is an error.
    pub(crate) fn sends_in(item: Option<&super::Item>) -> Result<u64, AuthError> {
        item.map_or(Ok(0), hits_of)
    }

    /// Whether any of the budgets of `counters` reached `level` percent in its window (its
    /// pressure mark exists), or any of the breaker states `challenged` (destinations, with the
    /// shard to read) is challenged or blocked at `now`: one batch read of both.
    pub async fn any_under_pressure(
        &self,
        counters: &[SendCounter],
        level: u32,
        (challenged, now): (&[(Destination, u32)], u64),
    ) -> Result<bool, AuthError> {
        let keys: Vec<String> = counters
            .iter()
            .map(|counter| pressure_key(counter, level))
            .collect();
        if self.remembers_any(&keys) {
            return Ok(true);
        }
        let mut items = get_item_list(
            &self.client,
            &keys
                .iter()
                .map(|key| ItemKey::new(&self.name, "pk", key))
                .chain(
                    challenged
                        .iter()
                        .map(|(destination, shard)| self.breaker_item_key(destination, *shard)),
                )
                .collect::<Vec<_>>(),
        )
        .await?;
        let states = items.split_off(keys.len());
        let found: Vec<String> = keys
            .into_iter()
            .zip(items)
            .filter_map(|(key, item)| item.map(|_| key))
            .collect();
        let mut any = !found.is_empty();
        self.remember(found);
        for item in states {
            any |= stored_state(item)?.state.level_at(now) != Level::Normal;
        }
        Ok(any)
    }

    /// Marks that the budget of `counter` reached `level` percent in its window: true only for
    /// the one call that wrote the mark (so the event is reported once per window), false when
    /// it was there already.
    pub async fn mark_pressure(
        &self,
        counter: &SendCounter,
        level: u32,
    ) -> Result<bool, AuthError> {
        let key = pressure_key(counter, level);
        if self.remembers_any(std::slice::from_ref(&key)) {
            return Ok(false);
        }
        let result = self
            .client
            .put_item()
            .table_name(&self.name)
            .item("pk", text(key.clone()))
            .item(EXPIRES_AT, num(counter.window.ends_at))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        let first = match result {
            Ok(_) => true,
            Err(error) if condition_failed(&error) => false,
            Err(error) => return Err(unavailable(error)),
        };
        self.remember([key]);
        Ok(first)
    }

    fn remembers_any(&self, keys: &[String]) -> bool {
        self.marked
            .lock()
            .is_ok_and(|marked| keys.iter().any(|key| marked.contains(key)))
    }

    fn remember(&self, keys: impl IntoIterator<Item = String>) {
        if let Ok(mut marked) = self.marked.lock() {
            if marked.len() >= REMEMBERED_MARKS {
                marked.clear();
            }
            marked.extend(keys);
        }
    }

    /// Counts one lookup by `network` in `window`; false when `limit` were already counted.
    pub async fn count_lookup(
        &self,
        network: &str,
        limit: u32,
        window: Window,
    ) -> Result<bool, AuthError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("pk", text(send_key(SendScope::Lookup, network, window)))
            .update_expression(COUNT_HIT)
            .condition_expression(under_limit(limit))
            .expression_attribute_values(":one", num(1))
            .expression_attribute_values(":end", num(window.ends_at))
            .expression_attribute_values(":limit", num(limit.into()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if condition_failed(&error) => Ok(false),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Counts one code sent or entered in a destination's bucket (for the transaction of the
    /// send or of the spend): never refused.
    pub fn count_conversion(
        &self,
        counter: &ConversionCounter,
        conversion: Conversion,
    ) -> Result<Write, AuthError> {
        let update = Update::builder()
            .table_name(&self.name)
            .key("pk", text(conversion_key(counter)))
            .update_expression(format!(
                "ADD {} SET expires_at = :end",
                each(conversion.attributes(), "{} :one", ", ")
            ))
            .expression_attribute_values(":one", num(1))
            .expression_attribute_values(":end", num(counter.expires_at))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::update(update))
    }

    /// Notes that the code of the provider's SMS `message_id` was entered (for the transaction
    /// of the spend): the breaker's function, which reads the table's stream, reports it to the
    /// provider (`SmsSender::report_received`), so the verify path waits on no provider. Kept a
    /// day, for a batch handed again.
    pub fn note_entered(&self, message_id: &str, now: u64) -> Result<Write, AuthError> {
        let put = Put::builder()
            .table_name(&self.name)
            .item("pk", text(feedback_key(message_id)))
            .item(EXPIRES_AT, num(now + 86_400))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::put(put))
    }

    /// Takes back one code counted as sent (one the provider refused), never below zero.
    pub async fn refund_conversion(
        &self,
        counter: &ConversionCounter,
        sent: Conversion,
    ) -> Result<(), AuthError> {
        self.take_back(conversion_key(counter), sent.attributes())
            .await
    }

    /// A destination's counts over the window at `now` and its state, in one consistent batch
    /// read (every bucket and shard of the window, and every shard of the state: the first is the
    /// state, and the others' disagreeing with it marks them stale).
    pub async fn breaker_view(
        &self,
        breaker: &Breaker,
        destination: &Destination,
        now: u64,
    ) -> Result<(Counts, StoredState), AuthError> {
        let counters = breaker.window_counters(destination, now);
        let mut keys: Vec<ItemKey> = counters
            .iter()
            .map(|counter| ItemKey::new(&self.name, "pk", &conversion_key(counter)))
            .collect();
        keys.extend((0..breaker.shards).map(|shard| self.breaker_item_key(destination, shard)));
        let mut items = get_item_list(&self.client, &keys).await?;
        let state_items = items.split_off(counters.len());
        let mut shards = state_items.into_iter().map(stored_state);
        let mut state = shards
            .next()
            .unwrap_or_else(|| Ok(StoredState::default()))?;
        for shard in shards {
            state.stale_shards |= shard? != state;
        }
        let mut counts = Counts::default();
        for item in items.iter().flatten() {
            counts.sent += count_of(item, "sent")?;
            counts.sent_to_new += count_of(item, "sent_new")?;
            counts.verified += count_of(item, "verified")?;
            counts.verified_new += count_of(item, "verified_new")?;
        }
        Ok((counts, state))
    }

    /// Writes a destination's decided level, if its state is still at `version`; false when a
    /// parallel review changed it first. Shard 0, which reviews read, is written first, on the
    /// condition of the version read; then the other shards, one `PutItem` each: one transaction
    /// of every shard would collide with any send checking one of them, so a flood of sends
    /// could keep a state from ever being written. A write that meets a send in flight on its
    /// item is tried again.
    pub async fn write_breaker_state(
        &self,
        breaker: &Breaker,
        destination: &Destination,
        level: Level,
        state: BreakerState,
        (version, now): (u64, u64),
    ) -> Result<bool, AuthError> {
        let expires_at =
            state.challenge_until.max(state.blocked_until).max(now) + breaker.window_seconds;
        let put = |shard| {
            let put = self
                .client
                .put_item()
                .table_name(&self.name)
                .item("pk", text(breaker_key(destination, shard)))
                .item("level", text(level.name()))
                .item("challenge_until", num(state.challenge_until))
                .item("blocked_until", num(state.blocked_until))
                .item("version", num(version + 1))
                .item(EXPIRES_AT, num(expires_at));
            // The first on the version read; the others never over a later review's.
            match (shard, version) {
                (0, 0) => put.condition_expression("attribute_not_exists(pk)"),
                (0, _) => put
                    .condition_expression("version = :version")
                    .expression_attribute_values(":version", num(version)),
                _ => put
                    .condition_expression("attribute_not_exists(pk) OR version <= :version")
                    .expression_attribute_values(":version", num(version)),
            }
        };
        if !put_state_shard(put(0)).await? {
            return Ok(false);
        }
        // The first is written: the decision stands. The others side by side; one not written
        // leaves the shards out of step, and the next review writes them again.
        let others = (1..breaker.shards).map(|shard| put_state_shard(put(shard)));
        for result in futures_util::future::join_all(others).await {
            if let Err(error) = result {
                tracing::error!(%error, "breaker state shard not written");
            }
        }
        Ok(true)
    }

    /// The check of a send to a new number (for its transaction): refused while `destination`
    /// is blocked, or challenged and the send passed no bot check (`checked` false); the
    /// refusal's old item tells which (`breaker_refusal`).
    pub fn check_breaker(
        &self,
        destination: &Destination,
        shard: u32,
        checked: bool,
        now: u64,
    ) -> Result<Write, AuthError> {
        let condition = if checked {
            "attribute_not_exists(pk) OR blocked_until <= :now"
        } else {
            "attribute_not_exists(pk) OR (blocked_until <= :now AND challenge_until <= :now)"
        };
        let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.name)
            .key("pk", text(breaker_key(destination, shard)))
            .condition_expression(condition)
            .expression_attribute_values(":now", num(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::check(check))
    }

    /// The state in a refused breaker check's old item.
    pub fn breaker_refusal(old_item: Option<&Snapshot>) -> Result<BreakerState, AuthError> {
        Ok(stored_state(old_item.map(|snapshot| snapshot.0.clone()))?.state)
    }

    /// Where a destination's state item (of `shard`) is, for a batch read.
    fn breaker_item_key(&self, destination: &Destination, shard: u32) -> ItemKey {
        ItemKey::new(&self.name, "pk", &breaker_key(destination, shard))
    }
}
