//! `CapacityMeter`: an SDK interceptor that asks DynamoDB for the capacity each operation
//! consumes (`ReturnConsumedCapacity: TOTAL`) and adds it up, read and write units apart: the
//! request units an on-demand table bills.

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
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Capacity units are fractional (0.5 for an eventually consistent read); kept in thousandths.
const MILLI: f64 = 1000.0;

#[derive(Debug, Clone, Default)]
pub struct CapacityMeter {
    read_milli: Arc<AtomicU64>,
    write_milli: Arc<AtomicU64>,
    /// Operations that reported no capacity: failures (a refused condition is billed but its
    /// error carries no figure) and operations this meter does not know.
    unreported: Arc<AtomicU64>,
}

/// What the meter has counted so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Units {
    pub read: f64,
    pub write: f64,
    pub unreported: u64,
}

impl std::ops::Sub for Units {
    type Output = Units;
    fn sub(self, earlier: Units) -> Units {
        Units {
            read: self.read - earlier.read,
            write: self.write - earlier.write,
            unreported: self.unreported - earlier.unreported,
        }
    }
}

impl CapacityMeter {
    pub fn units(&self) -> Units {
        Units {
            read: self.read_milli.load(Ordering::SeqCst) as f64 / MILLI,
            write: self.write_milli.load(Ordering::SeqCst) as f64 / MILLI,
            unreported: self.unreported.load(Ordering::SeqCst),
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
