//! The events table: an outbox. Each domain event is put here in the transaction of the change
//! it reports, and the table's stream (new images only) carries it to the publisher, so an
//! event exists if and only if its change committed. Items are never updated; they expire after
//! `EVENT_RETENTION_SECONDS`, long past the stream's 24 hours, so a batch that ended in the
//! dead-letter queue can still be read back and put again.

use aws_sdk_dynamodb::types::Put;
use serde::{Deserialize, Serialize};

use super::{Write, decode, encode};
use crate::error::AuthError;
use crate::events::OutboxEvent;
use crate::store::Item;

/// How long an event stays in the table (7 days).
pub const EVENT_RETENTION_SECONDS: u64 = 7 * 24 * 3600;

/// The stored form of an event, as the stream's new image shows it to the publisher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventItem {
    pub event_id: String,
    pub detail_type: String,
    /// The event's `detail`, as JSON text.
    pub detail: String,
    /// Epoch seconds: the event's EventBridge `time`.
    pub occurred_at: u64,
    pub expires_at: u64,
}

impl EventItem {
    /// An item as the stream (or a read) gives it; a corrupt one is an error, never skipped.
    pub fn from_item(item: Item) -> Result<Self, AuthError> {
        decode("events", item)
    }
}

#[derive(Clone)]
pub struct EventsTable {
    name: String,
}

impl EventsTable {
    pub fn new(name: String) -> Self {
        Self { name }
    }

    /// Puts `event` (for the transaction of the change it reports). Its id is new, so the
    /// condition only guards against a collision.
    pub fn record(&self, event: &OutboxEvent) -> Result<Write, AuthError> {
        let item = EventItem {
            event_id: event.event_id.clone(),
            detail_type: event.detail_type.to_owned(),
            detail: event.detail.clone(),
            occurred_at: event.occurred_at,
            expires_at: event.occurred_at.saturating_add(EVENT_RETENTION_SECONDS),
        };
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(encode(&item)?))
            .condition_expression("attribute_not_exists(event_id)")
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::put(put))
    }
}
