//! The events publisher: the events table's stream in, EventBridge `PutEvents` out.
//!
//! Lambda's event source mapping hands the function the stream's records in order; the
//! publisher puts the events of the `INSERT` records on the bus (a `MODIFY` never happens and
//! a `REMOVE` is a TTL deletion), in calls of at most `MAX_ENTRIES_PER_CALL` entries and
//! `MAX_CALL_BYTES`. Entries EventBridge refuses are put again, a bounded number of times with
//! jittered back-off, while the invocation has time left. Whatever still failed, or a record
//! that cannot be read, is answered as a batch item failure naming the EARLIEST such record:
//! the mapping then starts again from it, so nothing after it is lost, and what followed it and
//! was already put is put again (consumers de-duplicate on the detail's `event_id`).
//!
//! Event details may carry a full phone number (`EVENTS_INCLUDE_PHONE`): nothing here logs a
//! detail, an error message EventBridge wrote about one, or a record; only ids and counts.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use lambda_http::lambda_runtime::LambdaEvent;

use crate::AWS_CALL_TIMEOUT;
use crate::config::ConfigError;
use crate::settings::{Env, process_variable};
use crate::store::events::EventItem;

/// PutEvents takes at most 10 entries a call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;

/// PutEvents takes at most 256 KB a call, entries counted as EventBridge counts them
/// (`entry_size`).
pub const MAX_CALL_BYTES: usize = 256 * 1024;

/// How many times refused entries are put again after the first call (so at most four calls
/// per group of entries).
pub const MAX_RETRIES: u32 = 3;

/// The first back-off; each retry doubles it (full jitter: a random wait up to it).
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);

/// What a call needs to be worth starting: its own time limit and a margin for the answer to
/// the mapping. Past that, the rest is reported as failed rather than cut off by Lambda's
/// timeout (which would fail the whole batch, and with it what was already put).
pub const CALL_RESERVE: Duration = AWS_CALL_TIMEOUT.saturating_add(Duration::from_secs(1));

/// The publisher's settings, read by the publisher alone (the other functions never need them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherSettings {
    /// The bus, by name or ARN.
    pub event_bus_name: String,
    /// The events' `source`.
    pub source: String,
}

impl PublisherSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(process_variable)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(&lookup);
        Ok(Self {
            event_bus_name: env.required("EVENT_BUS_NAME")?,
            source: env.text("EVENT_SOURCE")?,
        })
    }
}

/// The publisher: its settings and EventBridge client, built once per cold start.
pub struct Publisher {
    settings: PublisherSettings,
    eventbridge: aws_sdk_eventbridge::Client,
}

/// One event ready to put, with the stream record it came from.
struct Pending {
    sequence_number: String,
    event_id: String,
    entry: PutEventsRequestEntry,
}

impl Publisher {
    pub fn new(settings: PublisherSettings, eventbridge: aws_sdk_eventbridge::Client) -> Self {
        Self {
            settings,
            eventbridge,
        }
    }

    /// Reads the settings and builds the client with the service's AWS settings (timeouts).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let settings = PublisherSettings::from_env()?;
        let aws = crate::load_aws_config().await;
        Ok(Self::new(settings, aws_sdk_eventbridge::Client::new(&aws)))
    }

    pub fn settings(&self) -> &PublisherSettings {
        &self.settings
    }

    /// The Lambda handler: never an error, so that what was put stays put; failures are
    /// reported as `batchItemFailures`.
    pub async fn handle(
        &self,
        event: LambdaEvent<Event>,
    ) -> Result<DynamoDbEventResponse, lambda_http::Error> {
        let deadline = deadline_of(event.context.deadline);
        Ok(self.publish(&event.payload, deadline).await)
    }

    /// Puts the batch's events on the bus, in stream order, until `deadline`.
    pub async fn publish(&self, event: &Event, deadline: Instant) -> DynamoDbEventResponse {
        let (pending, unreadable) = self.read(&event.records);
        let mut failed = unreadable;
        for group in groups(&pending) {
            if let Some(index) = self.put_group(group, deadline).await {
                // Everything from here on comes again; no use putting the rest now.
                failed = Some(group[index].sequence_number.clone());
                break;
            }
        }
        let mut response = DynamoDbEventResponse::default();
        if let Some(sequence_number) = failed {
            tracing::warn!(
                records = event.records.len(),
                sequence_number,
                "events left for the stream to deliver again"
            );
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence_number);
            response.batch_item_failures.push(failure);
        } else {
            tracing::info!(
                records = event.records.len(),
                published = pending.len(),
                "events published"
            );
        }
        response
    }

    /// The events of the INSERT records up to the first record that cannot be read (whose
    /// sequence number is returned; nothing after it is put now, it all comes again).
    fn read(&self, records: &[EventRecord]) -> (Vec<Pending>, Option<String>) {
        let mut pending = Vec::new();
        for record in records {
            if record.event_name != "INSERT" {
                continue;
            }
            let sequence_number = record.change.sequence_number.clone();
            let item = serde_dynamo::from_item::<_, EventItem>(record.change.new_image.clone());
            match (sequence_number, item) {
                (Some(sequence_number), Ok(item)) => {
                    pending.push(self.pending(sequence_number, item))
                }
                (Some(sequence_number), Err(_)) => {
                    tracing::error!(
                        stream_event_id = record.event_id,
                        sequence_number,
                        "a stream record is not an event"
                    );
                    return (pending, Some(sequence_number));
                }
                (None, _) => {
                    // Lambda always sends one; without it the record cannot be named, so the
                    // batch is failed from its first record.
                    tracing::error!(
                        stream_event_id = record.event_id,
                        "a stream record without a sequence number"
                    );
                    let first = records
                        .iter()
                        .find_map(|record| record.change.sequence_number.clone())
                        .unwrap_or_default();
                    return (Vec::new(), Some(first));
                }
            }
        }
        (pending, None)
    }

    fn pending(&self, sequence_number: String, item: EventItem) -> Pending {
        let entry = PutEventsRequestEntry::builder()
            .source(&self.settings.source)
            .detail_type(item.detail_type)
            .detail(item.detail)
            .event_bus_name(&self.settings.event_bus_name)
            .time(DateTime::from_secs(
                i64::try_from(item.occurred_at).unwrap_or(i64::MAX),
            ))
            .build();
        Pending {
            sequence_number,
            event_id: item.event_id,
            entry,
        }
    }

    /// Puts `group` (one call's worth), putting again what EventBridge refused; the index of
    /// the first entry that still failed, if any.
    async fn put_group(&self, group: &[Pending], deadline: Instant) -> Option<usize> {
        let mut unsent: Vec<usize> = (0..group.len()).collect();
        for attempt in 0..=MAX_RETRIES {
            if attempt > 0 {
                let wait = backoff(attempt);
                if Instant::now() + wait + CALL_RESERVE > deadline {
                    tracing::warn!(unsent = unsent.len(), "no time left to put events again");
                    break;
                }
                tokio::time::sleep(wait).await;
            } else if Instant::now() + CALL_RESERVE > deadline {
                tracing::warn!(unsent = unsent.len(), "no time left to put events");
                break;
            }
            unsent = self.put(group, &unsent).await;
            if unsent.is_empty() {
                return None;
            }
        }
        unsent.first().copied()
    }

    /// One PutEvents call of `group`'s entries at `indexes`; the indexes it did not put.
    async fn put(&self, group: &[Pending], indexes: &[usize]) -> Vec<usize> {
        let entries: Vec<PutEventsRequestEntry> =
            indexes.iter().map(|&i| group[i].entry.clone()).collect();
        let output = self
            .eventbridge
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await;
        match output {
            Err(error) => {
                // The code only: a message might quote the request.
                tracing::warn!(
                    entries = indexes.len(),
                    error = error.code().unwrap_or("no answer"),
                    "PutEvents failed as a whole"
                );
                indexes.to_vec()
            }
            Ok(output) if output.entries().len() != indexes.len() => {
                tracing::warn!(
                    entries = indexes.len(),
                    answered = output.entries().len(),
                    "PutEvents answered another number of entries"
                );
                indexes.to_vec()
            }
            Ok(output) => indexes
                .iter()
                .zip(output.entries())
                .filter_map(|(&i, result)| {
                    let code = result.error_code()?;
                    tracing::warn!(
                        event_id = group[i].event_id,
                        error_code = code,
                        "EventBridge refused an event"
                    );
                    Some(i)
                })
                .collect(),
        }
    }
}

/// Lambda's deadline (epoch milliseconds) as an instant; without one (0), a minute from now.
fn deadline_of(epoch_millis: u64) -> Instant {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let left = match epoch_millis {
        0 => Duration::from_secs(60),
        millis => Duration::from_millis(millis).saturating_sub(now),
    };
    Instant::now() + left
}

/// The wait before retry `attempt` (1-based): random, up to `BACKOFF_BASE` · 2^(attempt-1)
/// ("full jitter"), so that functions refused together do not all come back together.
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE.saturating_mul(1 << attempt.saturating_sub(1).min(10));
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::random_range(0..=millis))
}

/// The size EventBridge counts for an entry: its text fields' bytes, and 14 for a time
/// (<https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html>).
pub fn entry_size(entry: &PutEventsRequestEntry) -> usize {
    let text = [
        entry.source(),
        entry.detail_type(),
        entry.detail(),
        entry.event_bus_name(),
    ]
    .into_iter()
    .flatten()
    .map(str::len)
    .sum::<usize>();
    let resources: usize = entry.resources().iter().map(String::len).sum();
    text + resources + if entry.time().is_some() { 14 } else { 0 }
}

/// `pending` cut, in order, into calls of at most `MAX_ENTRIES_PER_CALL` entries and
/// `MAX_CALL_BYTES` (an entry larger than that alone goes alone, and EventBridge refuses it).
fn groups(pending: &[Pending]) -> Vec<&[Pending]> {
    let mut groups = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, event) in pending.iter().enumerate() {
        let size = entry_size(&event.entry);
        if i > start && (i - start == MAX_ENTRIES_PER_CALL || bytes + size > MAX_CALL_BYTES) {
            groups.push(&pending[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < pending.len() {
        groups.push(&pending[start..]);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(detail_bytes: usize) -> Pending {
        Pending {
            sequence_number: "1".to_owned(),
            event_id: "e".to_owned(),
            entry: PutEventsRequestEntry::builder()
                .source("phone-auth")
                .detail_type("user.registered.v1")
                .detail("x".repeat(detail_bytes))
                .build(),
        }
    }

    #[test]
    fn calls_take_at_most_ten_entries_and_256_kb_in_order() {
        let small: Vec<Pending> = (0..23).map(|_| pending(100)).collect();
        let sizes: Vec<usize> = groups(&small).iter().map(|g| g.len()).collect();
        assert_eq!(sizes, [10, 10, 3]);
        // 100 KB each: two fit in a call, a third does not.
        let large: Vec<Pending> = (0..5).map(|_| pending(100 * 1024)).collect();
        let sizes: Vec<usize> = groups(&large).iter().map(|g| g.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        // One too large for any call goes alone.
        let huge = vec![pending(10), pending(300 * 1024), pending(10)];
        let sizes: Vec<usize> = groups(&huge).iter().map(|g| g.len()).collect();
        assert_eq!(sizes, [1, 1, 1]);
        assert!(groups(&[]).is_empty());
    }

    #[test]
    fn an_entry_is_counted_as_eventbridge_counts_it() {
        let entry = PutEventsRequestEntry::builder()
            .source("ab")
            .detail_type("cde")
            .detail("{}")
            .event_bus_name("bus")
            .time(DateTime::from_secs(0))
            .build();
        assert_eq!(entry_size(&entry), 2 + 3 + 2 + 3 + 14);
    }

    #[test]
    fn back_off_is_jittered_below_a_doubling_ceiling() {
        for attempt in 1..=MAX_RETRIES {
            let ceiling = BACKOFF_BASE * (1 << (attempt - 1));
            for _ in 0..50 {
                assert!(backoff(attempt) <= ceiling);
            }
        }
    }

    #[test]
    fn the_publishers_settings_are_its_own() {
        let lookup = |name: &str| (name == "EVENT_BUS_NAME").then(|| "bus".to_owned());
        let settings = PublisherSettings::from_lookup(lookup).unwrap();
        assert_eq!(settings.event_bus_name, "bus");
        assert_eq!(settings.source, "phone-auth");
        assert!(matches!(
            PublisherSettings::from_lookup(|_| None),
            Err(ConfigError::Missing("EVENT_BUS_NAME"))
        ));
    }
}
