//! `CapacityMeter`: an SDK interceptor that counts the request units an on-demand table bills
//! for each operation, two ways: by DynamoDB's rules from the request (what the cost tables
//! use), and as DynamoDB Local reports them (`ReturnConsumedCapacity: TOTAL`), which undercounts
//! transactions and batches: it reports one transactional write per table, however many items,
//! and nothing for a key a batch read did not find.
//!
//! The rules (DynamoDB Developer Guide, "DynamoDB read and write operations" and "Capacity
//! management for transactions"): a strongly consistent read of an item up to 4 KB is 1 read
//! unit (an eventually consistent one 0.5), found or not, and a batch read counts each key so;
//! a write of an item up to 1 KB is 1 write unit, refused by its condition or not; each item of
//! a transaction (a condition check included) counts twice. Items are taken to be within those
//! sizes, which `largest_items` checks; a query is counted as DynamoDB Local reports it (by the
//! size it read).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextMut, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput};
use aws_sdk_dynamodb::operation::delete_item::{DeleteItemInput, DeleteItemOutput};
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsInput, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemInput, UpdateItemOutput};
use aws_sdk_dynamodb::types::{AttributeValue, ConsumedCapacity, ReturnConsumedCapacity};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Capacity units are fractional (0.5 for an eventually consistent read); kept in thousandths.
const MILLI: f64 = 1000.0;

#[derive(Debug, Clone, Default)]
pub struct CapacityMeter {
    /// As DynamoDB Local reports them.
    read_milli: Arc<AtomicU64>,
    write_milli: Arc<AtomicU64>,
    /// By DynamoDB's rules.
    priced_read_milli: Arc<AtomicU64>,
    priced_write_milli: Arc<AtomicU64>,
    /// Operations that reported no capacity: failures (a refused condition is billed but its
    /// error carries no figure) and operations this meter does not know.
    unreported: Arc<AtomicU64>,
}

/// What the meter has counted so far: request units by DynamoDB's rules, and as reported.
#[derive(Debug, Clone, Copy, Default)]
pub struct Units {
    pub read: f64,
    pub write: f64,
    pub reported_read: f64,
    pub reported_write: f64,
    pub unreported: u64,
}

impl std::ops::Sub for Units {
    type Output = Units;
    fn sub(self, earlier: Units) -> Units {
        Units {
            read: self.read - earlier.read,
            write: self.write - earlier.write,
            reported_read: self.reported_read - earlier.reported_read,
            reported_write: self.reported_write - earlier.reported_write,
            unreported: self.unreported - earlier.unreported,
        }
    }
}

impl CapacityMeter {
    pub fn units(&self) -> Units {
        let load = |counter: &AtomicU64| counter.load(Ordering::SeqCst) as f64 / MILLI;
        Units {
            read: load(&self.priced_read_milli),
            write: load(&self.priced_write_milli),
            reported_read: load(&self.read_milli),
            reported_write: load(&self.write_milli),
            unreported: self.unreported.load(Ordering::SeqCst),
        }
    }

    fn price(&self, read: f64, write: f64) {
        self.priced_read_milli
            .fetch_add((read * MILLI).round() as u64, Ordering::SeqCst);
        self.priced_write_milli
            .fetch_add((write * MILLI).round() as u64, Ordering::SeqCst);
    }

    /// The request units of `input` by DynamoDB's rules (queries: see `read_after_execution`).
    fn price_request(&self, input: &aws_smithy_runtime_api::client::interceptors::context::Input) {
        let read = |consistent: Option<bool>| if consistent == Some(true) { 1.0 } else { 0.5 };
        if let Some(get) = input.downcast_ref::<GetItemInput>() {
            self.price(read(get.consistent_read), 0.0);
        } else if let Some(batch) = input.downcast_ref::<BatchGetItemInput>() {
            let units = batch
                .request_items
                .iter()
                .flatten()
                .map(|(_, keys)| keys.keys.len() as f64 * read(keys.consistent_read))
                .sum();
            self.price(units, 0.0);
        } else if input.downcast_ref::<PutItemInput>().is_some()
            || input.downcast_ref::<UpdateItemInput>().is_some()
            || input.downcast_ref::<DeleteItemInput>().is_some()
        {
            self.price(0.0, 1.0);
        } else if let Some(batch) = input.downcast_ref::<BatchWriteItemInput>() {
            let items: usize = batch
                .request_items
                .iter()
                .flatten()
                .map(|(_, r)| r.len())
                .sum();
            self.price(0.0, items as f64);
        } else if let Some(transaction) = input.downcast_ref::<TransactWriteItemsInput>() {
            let items = transaction.transact_items.as_ref().map_or(0, Vec::len);
            self.price(0.0, 2.0 * items as f64);
        }
    }

    fn add(&self, capacities: &[ConsumedCapacity]) {
        for capacity in capacities {
            // Reads report read units, writes write units; a table may report only the total,
            // which then belongs to the kind of the operation (see `add_total`).
            let read = capacity.read_capacity_units.unwrap_or(0.0);
            let write = capacity.write_capacity_units.unwrap_or(0.0);
            self.read_milli
                .fetch_add((read * MILLI).round() as u64, Ordering::SeqCst);
            self.write_milli
                .fetch_add((write * MILLI).round() as u64, Ordering::SeqCst);
        }
    }

    /// For operations whose capacity came back as a total only.
    fn add_total(&self, capacities: &[ConsumedCapacity], write: bool) {
        for capacity in capacities {
            if capacity.read_capacity_units.is_some() || capacity.write_capacity_units.is_some() {
                self.add(std::slice::from_ref(capacity));
                continue;
            }
            let units = (capacity.capacity_units.unwrap_or(0.0) * MILLI).round() as u64;
            let counter = if write {
                &self.write_milli
            } else {
                &self.read_milli
            };
            counter.fetch_add(units, Ordering::SeqCst);
        }
    }
}

/// Sets `return_consumed_capacity` on whichever of these input types `$input` is.
macro_rules! ask_for_capacity {
    ($input:expr, $($type:ty),+) => {
        $(if let Some(input) = $input.downcast_mut::<$type>() {
            input.return_consumed_capacity = Some(ReturnConsumedCapacity::Total);
        })+
    };
}

impl Intercept for CapacityMeter {
    fn name(&self) -> &'static str {
        "CapacityMeter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input_mut();
        self.price_request(input);
        ask_for_capacity!(
            input,
            GetItemInput,
            PutItemInput,
            UpdateItemInput,
            DeleteItemInput,
            QueryInput,
            BatchGetItemInput,
            BatchWriteItemInput,
            TransactWriteItemsInput
        );
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Ok(output)) = context.output_or_error() else {
            self.unreported.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        };
        if let Some(out) = output.downcast_ref::<GetItemOutput>() {
            self.add_total(out.consumed_capacity.as_slice(), false);
        } else if let Some(out) = output.downcast_ref::<QueryOutput>() {
            self.add_total(out.consumed_capacity.as_slice(), false);
            let units = out
                .consumed_capacity
                .as_ref()
                .and_then(|c| c.capacity_units);
            self.price(units.unwrap_or(1.0), 0.0);
        } else if let Some(out) = output.downcast_ref::<BatchGetItemOutput>() {
            self.add_total(out.consumed_capacity(), false);
        } else if let Some(out) = output.downcast_ref::<PutItemOutput>() {
            self.add_total(out.consumed_capacity.as_slice(), true);
        } else if let Some(out) = output.downcast_ref::<UpdateItemOutput>() {
            self.add_total(out.consumed_capacity.as_slice(), true);
        } else if let Some(out) = output.downcast_ref::<DeleteItemOutput>() {
            self.add_total(out.consumed_capacity.as_slice(), true);
        } else if let Some(out) = output.downcast_ref::<BatchWriteItemOutput>() {
            self.add_total(out.consumed_capacity(), true);
        } else if let Some(out) = output.downcast_ref::<TransactWriteItemsOutput>() {
            self.add_total(out.consumed_capacity(), true);
        } else {
            self.unreported.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// The size of an item by DynamoDB's rules (attribute names and values; numbers roughly one
/// byte per two digits plus one), to check that items stay within 1 KB.
pub fn item_size(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|e| 1 + value_size(e)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, e)| 1 + k.len() + value_size(e))
                .sum::<usize>()
        }
        _ => 0,
    }
}

/// The largest item of each table after the pass (sampled from the first page of a scan).
pub async fn largest_items(t: &auth_tests::TestApp) -> Vec<(&'static str, usize)> {
    let tables = t.tables();
    let mut largest = Vec::new();
    for (name, table) in [
        ("users", &tables.users),
        ("otps", &tables.otps),
        ("registration tokens", &tables.registration_tokens),
        ("attempts", &tables.attempts),
        ("sessions", &tables.sessions),
        ("signing keys", &tables.signing_keys),
    ] {
        let size = t.scan(table).await.iter().map(item_size).max().unwrap_or(0);
        largest.push((name, size));
    }
    largest
}
