//! The events publisher (docs/events.md, "Delivery"): the events table's real stream on
//! DynamoDB Local, read as Lambda's event source mapping reads it, through the real handler into
//! a local EventBridge (`PutEventsStub`) that accepts, refuses entries, or fails as told; and a
//! redelivery from the sequence number the handler reports, as the mapping makes it.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Output;
use std::sync::Mutex;

use auth_shared::publisher::{MAX_RETRIES, PublisherSettings};
use auth_tests::publisher::{by_event_id, from_sequence_number, sequence_number};
use auth_tests::{
    CapturedLogs, Endpoint, PASSWORD, PHONE, PHONE_E164, PublishedEvent, PutEventsReply,
    PutEventsStub, TestApp,
};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

const PHONES: [(&str, &str); 6] = [
    ("09101234567", "+989101234567"),
    ("09121234567", "+989121234567"),
    ("09131234567", "+989131234567"),
    ("09141234567", "+989141234567"),
    ("09151234567", "+989151234567"),
    ("09161234567", "+989161234567"),
];

/// The bus the stack creates, as the publisher is configured with it (its ARN).
fn stack_bus() -> String {
    "arn:aws:events:us-east-1:123456789012:event-bus/phone-auth-events".to_owned()
}

/// The `event_id` in a Lambda stream record's new image.
fn record_event_id(record: &Value) -> String {
    record["dynamodb"]["NewImage"]["event_id"]["S"]
        .as_str()
        .expect("an event id")
        .to_owned()
}

/// `count` sign-ups: two events each (user.registered, session.started).
async fn sign_ups(app: &TestApp, count: usize) {
    for (phone, e164) in &PHONES[..count] {
        app.registered_user(phone, e164).await;
    }
}

/// The events the app recorded in its outbox, by id.
async fn recorded_ids(app: &TestApp) -> BTreeSet<String> {
    app.recorded_events()
        .await
        .into_iter()
        .map(|(_, detail)| detail["event_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The sequence numbers the publisher reported as failed (`batchItemFailures`).
fn failed_records(response: &DynamoDbEventResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.clone().expect("a sequence number"))
        .collect()
}

fn ids(events: &[PublishedEvent]) -> Vec<String> {
    events.iter().map(|e| e.event_id().to_owned()).collect()
}

#[tokio::test]
async fn a_flows_events_arrive_on_the_stacks_bus_with_its_source_and_time() {
    let app = TestApp::new().await;
    app.registered_user(PHONE, PHONE_E164).await;
    let published = app.published_events().await;
    let recorded = app.recorded_events().await;
    assert_eq!(published.len(), 2, "{published:?}");
    let kinds: BTreeSet<&str> = published.iter().map(|e| e.detail_type.as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["user.registered.v1", "session.started.v1"])
    );
    for event in &published {
        assert_eq!(event.source, "phone-auth");
        assert_eq!(event.event_bus_name, stack_bus());
        // The detail as recorded in the transaction, untouched; `time` is its `occurred_at`.
        let (detail_type, detail) = recorded
            .iter()
            .find(|(_, detail)| detail["event_id"] == event.detail["event_id"])
            .expect("a recorded event");
        assert_eq!(detail_type, &event.detail_type);
        assert_eq!(detail, &event.detail);
        let time = u64::try_from(event.time).unwrap();
        assert_eq!(
            auth_shared::events::rfc3339(time),
            event.detail["occurred_at"]
        );
    }

    // Only what is new: nothing, then a login's session.started.
    assert!(app.published_events().await.is_empty());
    app.login(PHONE).await;
    let login = app.published_events().await;
    assert_eq!(login.len(), 1, "{login:?}");
    assert_eq!(login[0].detail_type, "session.started.v1");
    assert_eq!(login[0].detail["method"], "password");
}

#[tokio::test]
async fn modify_and_remove_records_are_not_published() {
    let app = TestApp::new().await;
    app.registered_user(PHONE, PHONE_E164).await;
    let ids: Vec<String> = recorded_ids(&app).await.into_iter().collect();
    let table = app.tables().events.clone();
    // Items are never updated by the service; a TTL deletion is a REMOVE.
    app.dynamodb
        .update_item()
        .table_name(&table)
        .key("event_id", AttributeValue::S(ids[0].clone()))
        .update_expression("SET expires_at = :later")
        .expression_attribute_values(":later", AttributeValue::N("9999999999".to_owned()))
        .send()
        .await
        .expect("update an event item");
    app.dynamodb
        .delete_item()
        .table_name(&table)
        .key("event_id", AttributeValue::S(ids[1].clone()))
        .send()
        .await
        .expect("delete an event item");
    let records = app.stream_records().await;
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["INSERT", "INSERT", "MODIFY", "REMOVE"]);

    let stub = PutEventsStub::accepting().await;
    let publisher = app.publisher(&stub, &[]).await;
    let response = app.invoke_publisher(&publisher, &records, &[]).await;
    assert!(response.batch_item_failures.is_empty());
    let published = stub.published();
    assert_eq!(published.len(), 2);
    assert_eq!(
        ids_set(&published),
        ids.iter().cloned().collect::<BTreeSet<_>>()
    );

    // A batch of only MODIFY and REMOVE records makes no call.
    let response = app.invoke_publisher(&publisher, &records[2..], &[]).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(stub.requests().len(), 1);
}

fn ids_set(events: &[PublishedEvent]) -> BTreeSet<String> {
    ids(events).into_iter().collect()
}

#[tokio::test]
async fn refused_entries_are_put_again_alone_and_all_arrive_once() {
    let app = TestApp::new().await;
    sign_ups(&app, 2).await;
    let records = app.stream_records().await;
    assert_eq!(records.len(), 4);
    let refused: BTreeSet<String> = [record_event_id(&records[1]), record_event_id(&records[3])]
        .into_iter()
        .collect();
    // Each of those two refused the first two times it is put.
    let seen = Mutex::new(HashMap::<String, usize>::new());
    let refused_in_stub = refused.clone();
    let stub = PutEventsStub::start(move |_, entries| {
        let mut seen = seen.lock().unwrap();
        PutEventsReply::Entries(
            entries
                .iter()
                .map(|entry| {
                    let detail: Value =
                        serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap();
                    let id = detail["event_id"].as_str().unwrap().to_owned();
                    let times = seen.entry(id.clone()).or_default();
                    *times += 1;
                    (refused_in_stub.contains(&id) && *times <= 2).then_some("ThrottlingException")
                })
                .collect(),
        )
    })
    .await;
    let publisher = app.publisher(&stub, &[]).await;
    let response = app.invoke_publisher(&publisher, &records, &[]).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let requests = stub.requests();
    let sizes: Vec<usize> = requests.iter().map(Vec::len).collect();
    assert_eq!(sizes, [4, 2, 2], "only the refused entries are put again");
    let published = stub.published();
    assert_eq!(published.len(), 4, "each event once");
    assert_eq!(ids_set(&published), recorded_ids(&app).await);
    // Stream order among those accepted together.
    assert_eq!(
        ids(&published[..2]),
        [record_event_id(&records[0]), record_event_id(&records[2])]
    );
}

#[tokio::test]
async fn entries_refused_every_time_are_reported_from_the_earliest_and_a_redelivery_publishes_them()
{
    let app = TestApp::new().await;
    sign_ups(&app, 2).await;
    let records = app.stream_records().await;
    let stuck = record_event_id(&records[1]);
    let stuck_in_stub = stuck.clone();
    let stub = PutEventsStub::start(move |_, entries| {
        PutEventsReply::Entries(
            entries
                .iter()
                .map(|entry| {
                    let detail = entry["Detail"].as_str().unwrap();
                    detail.contains(&stuck_in_stub).then_some("InternalFailure")
                })
                .collect(),
        )
    })
    .await;
    let publisher = app.publisher(&stub, &[]).await;
    let response = app.invoke_publisher(&publisher, &records, &[]).await;
    let failed = failed_records(&response);
    assert_eq!(failed, [sequence_number(&records[1])]);
    let sizes: Vec<usize> = stub.requests().iter().map(Vec::len).collect();
    let mut expected = vec![4];
    expected.extend(std::iter::repeat_n(1, MAX_RETRIES as usize));
    assert_eq!(
        sizes, expected,
        "a bounded number of retries of the one entry"
    );
    assert!(!ids_set(&stub.published()).contains(&stuck));

    // The mapping starts again from the reported record; EventBridge is back.
    stub.behave(|_, entries| PutEventsReply::Entries(vec![None; entries.len()]));
    let again = from_sequence_number(&records, &failed[0]);
    assert_eq!(again.len(), 3);
    let response = app.invoke_publisher(&publisher, &again, &[]).await;
    assert!(response.batch_item_failures.is_empty());
    let published = stub.published();
    let by_id = by_event_id(&published);
    assert_eq!(
        by_id.keys().cloned().collect::<BTreeSet<_>>(),
        recorded_ids(&app).await,
        "every event arrived"
    );
    // The first arrived once; those after the stuck one twice (same event_id, same event).
    let count = |id: &str| published.iter().filter(|e| e.event_id() == id).count();
    assert_eq!(count(&record_event_id(&records[0])), 1);
    assert_eq!(count(&stuck), 1);
    assert_eq!(count(&record_event_id(&records[2])), 2);
}

#[tokio::test]
async fn an_eventbridge_failing_midway_through_a_batch_loses_nothing_when_it_comes_again() {
    let app = TestApp::new().await;
    sign_ups(&app, 6).await;
    let records = app.stream_records().await;
    assert_eq!(records.len(), 12);
    // The first call is answered; from the second on, EventBridge fails (500s).
    let stub = PutEventsStub::start(|n, entries| {
        if n == 1 {
            PutEventsReply::Entries(vec![None; entries.len()])
        } else {
            PutEventsReply::Status(500)
        }
    })
    .await;
    let publisher = app.publisher(&stub, &[]).await;
    let response = app.invoke_publisher(&publisher, &records, &[]).await;
    let failed = failed_records(&response);
    // The first call held 10 entries: the second call's first record is the earliest failed.
    assert_eq!(failed, [sequence_number(&records[10])]);
    assert_eq!(stub.requests()[0].len(), 10);
    assert_eq!(stub.published().len(), 10);

    stub.behave(|_, entries| PutEventsReply::Entries(vec![None; entries.len()]));
    let again = from_sequence_number(&records, &failed[0]);
    let response = app.invoke_publisher(&publisher, &again, &[]).await;
    assert!(response.batch_item_failures.is_empty());
    let published = stub.published();
    assert_eq!(
        published.len(),
        12,
        "nothing twice: the failed call put nothing"
    );
    assert_eq!(ids_set(&published), recorded_ids(&app).await);
    // In stream order.
    let in_stream: Vec<String> = records.iter().map(record_event_id).collect();
    assert_eq!(ids(&published), in_stream);
}

#[tokio::test]
async fn a_corrupt_item_is_reported_as_a_failure_and_nothing_after_it_is_lost() {
    let app = TestApp::new().await;
    app.registered_user(PHONES[0].0, PHONES[0].1).await;
    app.dynamodb
        .put_item()
        .table_name(&app.tables().events)
        .item("event_id", AttributeValue::S("corrupt".to_owned()))
        .item("detail_type", AttributeValue::N("5".to_owned()))
        .send()
        .await
        .expect("put a corrupt item");
    app.registered_user(PHONES[1].0, PHONES[1].1).await;
    let records = app.stream_records().await;
    assert_eq!(records.len(), 5);
    assert_eq!(record_event_id(&records[2]), "corrupt");

    let stub = PutEventsStub::accepting().await;
    let publisher = app.publisher(&stub, &[]).await;
    let response = app.invoke_publisher(&publisher, &records, &[]).await;
    let failed = failed_records(&response);
    assert_eq!(failed, [sequence_number(&records[2])]);
    assert_eq!(
        ids(&stub.published()),
        [record_event_id(&records[0]), record_event_id(&records[1])]
    );

    // Delivered again from it, it fails again, and puts nothing twice.
    let again = from_sequence_number(&records, &failed[0]);
    let response = app.invoke_publisher(&publisher, &again, &[]).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(stub.published().len(), 2);

    // Once the mapping has split the batch and given up on the corrupt record (into the
    // dead-letter queue), the records after it come on their own: all of them arrive.
    let response = app.invoke_publisher(&publisher, &records[3..], &[]).await;
    assert!(response.batch_item_failures.is_empty());
    let valid: BTreeSet<String> = records
        .iter()
        .map(record_event_id)
        .filter(|id| id != "corrupt")
        .collect();
    assert_eq!(ids_set(&stub.published()), valid);
    assert_eq!(stub.published().len(), 4);

    // The suite's schema check reads every events table afterwards: no corrupt item left.
    app.dynamodb
        .delete_item()
        .table_name(&app.tables().events)
        .key("event_id", AttributeValue::S("corrupt".to_owned()))
        .send()
        .await
        .expect("delete the corrupt item");
}

#[tokio::test]
async fn the_publisher_puts_on_a_bus_it_was_given_instead_of_its_own() {
    let app = TestApp::new().await;
    app.registered_user(PHONE, PHONE_E164).await;
    let given = [
        ("ExistingEventBusName", "shared-bus"),
        ("EventSource", "my-app.auth"),
    ];
    let stub = PutEventsStub::accepting().await;
    let publisher = app.publisher(&stub, &given).await;
    let records = app.stream_records().await;
    let response = app.invoke_publisher(&publisher, &records, &given).await;
    assert!(response.batch_item_failures.is_empty());
    for event in stub.published() {
        assert_eq!(
            event.event_bus_name,
            "arn:aws:events:us-east-1:123456789012:event-bus/shared-bus"
        );
        assert_eq!(event.source, "my-app.auth");
    }
    assert_eq!(stub.published().len(), 2);
}

/// With full numbers in the events, the publisher's own log lines (at TRACE) carry ids and
/// counts, never a detail, even when EventBridge refuses and the events are reported failed.
#[tokio::test(flavor = "current_thread")]
async fn the_publisher_logs_no_detail() {
    let app = TestApp::with_env(&[("EVENTS_INCLUDE_PHONE", "true")]).await;
    app.registered_user(PHONE, PHONE_E164).await;
    let response = app
        .post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": PASSWORD }),
        )
        .await;
    assert_eq!(response.status, 200);
    let records = app.stream_records().await;
    assert!(
        records.iter().any(|r| r.to_string().contains(PHONE_E164)),
        "the details carry the full number"
    );
    let stub = PutEventsStub::start(|n, entries| {
        if n == 1 {
            PutEventsReply::Entries(vec![Some("InternalFailure"); entries.len()])
        } else {
            PutEventsReply::Status(400)
        }
    })
    .await;
    let publisher = app.publisher(&stub, &[]).await;
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::TRACE);
    let response = app.invoke_publisher(&publisher, &records, &[]).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    let own: Vec<Value> = logs
        .text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| {
            line["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("auth_shared::publisher"))
        })
        .collect();
    assert!(own.len() >= 2, "{own:?}");
    let text = Value::from(own).to_string();
    for secret in [
        PHONE_E164,
        "9101234567",
        "phone_masked",
        "user_id",
        "occurred_at",
    ] {
        assert!(
            !text.contains(secret),
            "{secret} in the publisher's logs: {text}"
        );
    }
    assert!(
        text.contains(&record_event_id(&records[0])),
        "event ids are logged"
    );
}

/// `scripts/replay-events` (the AWS CLI, from `AWS_CLI_DIR` when set, and jq) over the last
/// five minutes of `app`'s events table, putting on `stub` (served by this test's runtime, so
/// awaited, never waited for) with the publisher's bus and source.
async fn replay_events(
    app: &TestApp,
    stub: &PutEventsStub,
    settings: &PublisherSettings,
) -> Output {
    let now = auth_tests::now();
    let path = match std::env::var("AWS_CLI_DIR") {
        Ok(dir) => format!("{dir}:{}", std::env::var("PATH").unwrap_or_default()),
        Err(_) => std::env::var("PATH").unwrap_or_default(),
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/replay-events");
    tokio::process::Command::new(script)
        .args([
            "unused-stack".to_owned(),
            (now - 300).to_string(),
            (now + 300).to_string(),
        ])
        .env("PATH", path)
        .env("EVENTS_TABLE", &app.tables().events)
        .env("EVENT_BUS_NAME", &settings.event_bus_name)
        .env("EVENT_SOURCE", &settings.source)
        .env("AWS_ENDPOINT_URL_DYNAMODB", auth_tests::dynamodb_endpoint())
        .env("AWS_ENDPOINT_URL_EVENTBRIDGE", &stub.endpoint)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .await
        .expect("run scripts/replay-events (needs the AWS CLI: scripts/test installs it)")
}

#[tokio::test]
async fn the_replay_script_puts_again_what_the_publisher_put_in_order() {
    let app = TestApp::new().await;
    sign_ups(&app, 2).await;
    let published = app.published_events().await;
    assert_eq!(published.len(), 4, "{published:?}");

    let stub = PutEventsStub::accepting().await;
    let settings = app.publisher(&stub, &[]).await.settings().clone();
    let replay = replay_events(&app, &stub, &settings).await;
    assert!(replay.status.success(), "{replay:?}");
    let replayed = stub.published();
    // The same entries: source, bus, detail type, detail and time.
    assert_eq!(by_event_id(&replayed), by_event_id(&published));
    // In the order they occurred (ties by event id), in one call of at most 10.
    let order: Vec<(i64, &str)> = replayed.iter().map(|e| (e.time, e.event_id())).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    assert_eq!(stub.requests().len(), 1);
}

#[tokio::test]
async fn the_replay_script_stops_at_a_refused_call_and_says_so() {
    let app = TestApp::new().await;
    sign_ups(&app, 6).await;
    let recorded = recorded_ids(&app).await;
    assert_eq!(recorded.len(), 12);

    // The first call (10 entries) is accepted, the second refuses its first entry.
    let stub = PutEventsStub::start(|n, entries| {
        let mut codes = vec![None; entries.len()];
        if n == 2 {
            codes[0] = Some("InternalFailure");
        }
        PutEventsReply::Entries(codes)
    })
    .await;
    let settings = app.publisher(&stub, &[]).await.settings().clone();
    let replay = replay_events(&app, &stub, &settings).await;
    assert_eq!(replay.status.code(), Some(1), "{replay:?}");
    let said = String::from_utf8_lossy(&replay.stderr);
    assert!(
        said.contains("PutEvents refused 1 of events 10..19") && said.contains("InternalFailure"),
        "{said}"
    );
    let requests = stub.requests();
    assert_eq!(
        requests.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![10, 2]
    );
    let put: BTreeSet<String> = requests
        .iter()
        .flatten()
        .map(|entry| {
            let detail: Value = serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap();
            detail["event_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(put, recorded);
}
