//! The events publisher under test: the events table's real stream on DynamoDB Local, read as
//! Lambda's event source mapping reads it (DescribeStream, GetShardIterator, GetRecords, with
//! the publisher's role: the calls are recorded as the publisher's), turned into the JSON
//! Lambda hands the function, and the real handler putting the events on `PutEventsStub`, a
//! local EventBridge that answers `PutEvents` as told.
//!
//! `TestApp::published_events` is the one-call form: everything new in the stream, through the
//! handler, into a stub that accepts all; what PutEvents received, in order.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};

use auth_shared::publisher::{Publisher, PublisherSettings};
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use lambda_http::lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

use crate::TestApp;
use crate::calls::{self, CallContext, CallRecorder, Phase};
use crate::policies::Policies;
use crate::tables::template_path;

/// The function the publisher's calls are recorded under (its binary).
pub const PUBLISHER: &str = "events-publisher";

/// The SMS breaker's function (the attempts table's stream invokes it).
pub const BREAKER: &str = "sms-breaker";

/// An event as PutEvents received it.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedEvent {
    pub detail_type: String,
    pub source: String,
    pub detail: Value,
    pub event_bus_name: String,
    /// Epoch seconds.
    pub time: i64,
}

impl PublishedEvent {
    pub fn event_id(&self) -> &str {
        self.detail["event_id"].as_str().unwrap_or_default()
    }
}

/// What the stub answers one PutEvents request: an error code (or none) per entry, or an HTTP
/// status with an AWS error, the whole call failing.
#[derive(Debug, Clone)]
pub enum PutEventsReply {
    Entries(Vec<Option<&'static str>>),
    Status(u16),
}

/// Decides the answer to request number `n` (1-based, every HTTP request, SDK retries
/// included) from its entries.
pub type Behaviour = dyn Fn(usize, &[Value]) -> PutEventsReply + Send + Sync;

/// A local EventBridge `PutEvents` (awsJson1.1, `X-Amz-Target: AWSEvents.PutEvents`).
pub struct PutEventsStub {
    pub endpoint: String,
    state: Arc<Mutex<StubState>>,
}

struct StubState {
    behaviour: Arc<Behaviour>,
    /// Every request's entries, in order.
    requests: Vec<Vec<Value>>,
    /// The entries answered without an error code, in order.
    accepted: Vec<PublishedEvent>,
}

impl PutEventsStub {
    /// A stub that accepts every entry.
    pub async fn accepting() -> Self {
        Self::start(|_, entries| PutEventsReply::Entries(vec![None; entries.len()])).await
    }

    pub async fn start(
        behaviour: impl Fn(usize, &[Value]) -> PutEventsReply + Send + Sync + 'static,
    ) -> Self {
        let state = Arc::new(Mutex::new(StubState {
            behaviour: Arc::new(behaviour),
            requests: Vec::new(),
            accepted: Vec::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(state.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { endpoint, state }
    }

    /// From now on, answer by `behaviour` (request numbers go on counting).
    pub fn behave(
        &self,
        behaviour: impl Fn(usize, &[Value]) -> PutEventsReply + Send + Sync + 'static,
    ) {
        self.state.lock().expect("stub").behaviour = Arc::new(behaviour);
    }

    /// Every request's entries, in order.
    pub fn requests(&self) -> Vec<Vec<Value>> {
        self.state.lock().expect("stub").requests.clone()
    }

    /// Every entry answered without an error code, in order.
    pub fn published(&self) -> Vec<PublishedEvent> {
        self.state.lock().expect("stub").accepted.clone()
    }
}

async fn answer(
    state: Arc<Mutex<StubState>>,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|body| body.to_bytes().to_vec())
        .unwrap_or_default();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok());
    assert_eq!(
        target,
        Some("AWSEvents.PutEvents"),
        "only PutEvents is stubbed"
    );
    let request: Value = serde_json::from_slice(&body).expect("a JSON PutEvents request");
    let entries = request["Entries"].as_array().cloned().unwrap_or_default();
    let (status, body) = {
        let mut state = state.lock().expect("stub");
        state.requests.push(entries.clone());
        let reply = (state.behaviour)(state.requests.len(), &entries);
        match reply {
            PutEventsReply::Status(status) => (
                status,
                json!({ "__type": "InternalException", "message": "stubbed failure" }),
            ),
            PutEventsReply::Entries(codes) => {
                assert_eq!(codes.len(), entries.len(), "one answer per entry");
                let mut results = Vec::new();
                for (entry, code) in entries.iter().zip(&codes) {
                    match code {
                        Some(code) => results.push(json!({
                            "ErrorCode": code,
                            "ErrorMessage": "stubbed refusal",
                        })),
                        None => {
                            state.accepted.push(published(entry));
                            results.push(json!({ "EventId": uuid::Uuid::new_v4().to_string() }));
                        }
                    }
                }
                let failed = codes.iter().filter(|code| code.is_some()).count();
                (
                    200,
                    json!({ "FailedEntryCount": failed, "Entries": results }),
                )
            }
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).expect("a status");
    response.headers_mut().insert(
        "content-type",
        "application/x-amz-json-1.1".parse().expect("a header"),
    );
    Ok(response)
}

fn published(entry: &Value) -> PublishedEvent {
    let text = |name: &str| entry[name].as_str().unwrap_or_default().to_owned();
    PublishedEvent {
        detail_type: text("DetailType"),
        source: text("Source"),
        detail: serde_json::from_str(&text("Detail")).expect("a JSON detail"),
        event_bus_name: text("EventBusName"),
        time: entry["Time"].as_f64().expect("an epoch-seconds Time") as i64,
    }
}

/// Where each test app's reading of its stream has got to: its events table's name → shard id
/// → the last sequence number read. Keyed by the table (unique per test app), so tests in
/// parallel never share an entry.
fn cursors() -> &'static Mutex<HashMap<String, HashMap<String, String>>> {
    static CURSORS: OnceLock<Mutex<HashMap<String, HashMap<String, String>>>> = OnceLock::new();
    CURSORS.get_or_init(Mutex::default)
}

/// A DynamoDB stream record as Lambda hands it to a function: the JSON of the stream event.
pub fn lambda_record(record: &Record, stream_arn: &str) -> Value {
    let change = record.dynamodb().expect("a stream record's dynamodb");
    let image = |item: Option<&HashMap<String, AttributeValue>>| {
        item.map(|item| {
            Value::Object(
                item.iter()
                    .map(|(name, value)| (name.clone(), attribute_json(value)))
                    .collect(),
            )
        })
    };
    let mut dynamodb = serde_json::Map::new();
    if let Some(at) = change.approximate_creation_date_time() {
        dynamodb.insert("ApproximateCreationDateTime".into(), json!(at.secs()));
    }
    for (name, value) in [
        ("Keys", image(change.keys())),
        ("NewImage", image(change.new_image())),
        ("OldImage", image(change.old_image())),
    ] {
        if let Some(value) = value {
            dynamodb.insert(name.into(), value);
        }
    }
    dynamodb.insert(
        "SequenceNumber".into(),
        json!(change.sequence_number().expect("a sequence number")),
    );
    dynamodb.insert("SizeBytes".into(), json!(change.size_bytes().unwrap_or(0)));
    if let Some(view) = change.stream_view_type() {
        dynamodb.insert("StreamViewType".into(), json!(view.as_str()));
    }
    let mut lambda = json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|name| name.as_str()),
        "eventVersion": record.event_version(),
        "eventSource": record.event_source(),
        "awsRegion": record.aws_region(),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    });
    if let Some(identity) = record.user_identity() {
        lambda["userIdentity"] =
            json!({ "type": identity.r#type(), "principalId": identity.principal_id() });
    }
    lambda
}

/// An attribute value in DynamoDB's JSON (`{"S": ...}`, `{"N": ...}`, binary in base64).
fn attribute_json(value: &AttributeValue) -> Value {
    let base64 = |blob: &aws_smithy_types::Blob| {
        base64::engine::general_purpose::STANDARD.encode(blob.as_ref())
    };
    match value {
        AttributeValue::S(text) => json!({ "S": text }),
        AttributeValue::N(number) => json!({ "N": number }),
        AttributeValue::B(blob) => json!({ "B": base64(blob) }),
        AttributeValue::Bool(flag) => json!({ "BOOL": flag }),
        AttributeValue::Null(flag) => json!({ "NULL": flag }),
        AttributeValue::Ss(texts) => json!({ "SS": texts }),
        AttributeValue::Ns(numbers) => json!({ "NS": numbers }),
        AttributeValue::Bs(blobs) => json!({ "BS": blobs.iter().map(base64).collect::<Vec<_>>() }),
        AttributeValue::L(items) => {
            json!({ "L": items.iter().map(attribute_json).collect::<Vec<_>>() })
        }
        AttributeValue::M(map) => json!({
            "M": map
                .iter()
                .map(|(name, value)| (name.clone(), attribute_json(value)))
                .collect::<serde_json::Map<_, _>>()
        }),
        other => panic!("an attribute type the stream reader does not know: {other:?}"),
    }
}

impl TestApp {
    /// Who the publisher is, for the call record (the stack's parameters, and `extra`).
    fn publisher_context(&self, phase: Phase, extra: &[(&str, &str)]) -> CallContext {
        let mut parameters = self.parameters.clone();
        for (name, value) in extra {
            parameters.insert((*name).to_owned(), (*value).to_owned());
        }
        CallContext {
            function: PUBLISHER.to_owned(),
            parameters,
            phase,
        }
    }

    /// The stream records written since the last call (all of them the first time), as the
    /// JSON Lambda gives the publisher, in stream order.
    pub async fn stream_records(&self) -> Vec<Value> {
        let table = self.tables().events.clone();
        let context = self.publisher_context(Phase::EventSource, &[]);
        self.records_of_stream(table, context).await
    }

    /// As `stream_records`, for the attempts table's stream, read for the SMS breaker.
    pub async fn attempts_stream_records(&self) -> Vec<Value> {
        let table = self.tables().attempts.clone();
        let context = CallContext {
            function: BREAKER.to_owned(),
            parameters: self.parameters.clone(),
            phase: Phase::EventSource,
        };
        self.records_of_stream(table, context).await
    }

    /// The `sms-breaker` function run on a batch of the attempts table's stream (`records`, as
    /// `attempts_stream_records` gives them), its calls recorded under it.
    pub async fn run_sms_breaker(&self, records: Vec<Value>) {
        let event: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_value(serde_json::json!({ "Records": records }))
                .expect("a stream batch");
        let context = CallContext {
            function: BREAKER.to_owned(),
            parameters: self.parameters.clone(),
            phase: Phase::Request,
        };
        let invocation = LambdaEvent::new(event, invocation_context(BREAKER));
        calls::attributed(context, auth_shared::breaker::handle(&self.app, invocation))
            .await
            .expect("the sms-breaker function's run");
    }

    /// The SMS breaker's review of `destinations`, as its function runs it (its calls recorded
    /// under it).
    pub async fn breaker_review(
        &self,
        destinations: &std::collections::BTreeSet<auth_shared::breaker::Destination>,
    ) -> Vec<auth_shared::breaker::Change> {
        let context = CallContext {
            function: BREAKER.to_owned(),
            parameters: self.parameters.clone(),
            phase: Phase::Request,
        };
        calls::attributed(
            context,
            auth_shared::breaker::review(&self.app, destinations),
        )
        .await
    }

    /// The records of `table`'s stream written since the last call, read as `context`.
    async fn records_of_stream(&self, table: String, context: CallContext) -> Vec<Value> {
        let stream_arn = self
            .dynamodb
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .expect("describe the events table")
            .table
            .and_then(|table| table.latest_stream_arn)
            .expect("the events table has a stream");
        let aws = auth_shared::load_aws_config().await;
        let streams = aws_sdk_dynamodbstreams::Client::from_conf(
            aws_sdk_dynamodbstreams::config::Builder::from(&aws)
                // DynamoDB Local serves its streams on its one endpoint.
                .endpoint_url(crate::dynamodb_endpoint())
                .interceptor(CallRecorder)
                .build(),
        );
        let read = async {
            let shards = streams
                .describe_stream()
                .stream_arn(&stream_arn)
                .send()
                .await
                .expect("DescribeStream")
                .stream_description
                .map(|description| description.shards.unwrap_or_default())
                .unwrap_or_default();
            let mut records = Vec::new();
            for shard in shards {
                let shard_id = shard.shard_id().expect("a shard id").to_owned();
                let after = cursors()
                    .lock()
                    .expect("cursors")
                    .get(&table)
                    .and_then(|shards| shards.get(&shard_id).cloned());
                let request = streams
                    .get_shard_iterator()
                    .stream_arn(&stream_arn)
                    .shard_id(&shard_id);
                let request = match &after {
                    Some(sequence_number) => request
                        .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                        .sequence_number(sequence_number),
                    None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
                };
                let mut iterator = request
                    .send()
                    .await
                    .expect("GetShardIterator")
                    .shard_iterator;
                while let Some(current) = iterator {
                    let page = streams
                        .get_records()
                        .shard_iterator(current)
                        .send()
                        .await
                        .expect("GetRecords");
                    let batch = page.records.unwrap_or_default();
                    if batch.is_empty() {
                        break;
                    }
                    for record in &batch {
                        let sequence_number = record
                            .dynamodb()
                            .and_then(|change| change.sequence_number())
                            .expect("a sequence number")
                            .to_owned();
                        cursors()
                            .lock()
                            .expect("cursors")
                            .entry(table.clone())
                            .or_default()
                            .insert(shard_id.clone(), sequence_number);
                        records.push(lambda_record(record, &stream_arn));
                    }
                    iterator = page.next_shard_iterator;
                }
            }
            records
        };
        // Lambda's event source mapping reads the stream with the function's role.
        calls::attributed(context, read).await
    }

    /// The publisher as `template.yaml` configures it (its own variables, resolved under this
    /// app's parameters and `extra`), putting events on `stub`.
    pub async fn publisher(&self, stub: &PutEventsStub, extra: &[(&str, &str)]) -> Publisher {
        let aws = auth_shared::load_aws_config().await;
        let region = aws.region().map_or("us-east-1", |r| r.as_ref()).to_owned();
        let context = self.publisher_context(Phase::Request, extra);
        let variables = Policies::from_template(&template_path())
            .expect("the template")
            .environment(PUBLISHER, &context.parameters, &region)
            .unwrap_or_else(|e| panic!("{e}"));
        let settings = PublisherSettings::from_lookup(|name| variables.get(name).cloned())
            .expect("the publisher's settings");
        let client = aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(&aws)
                .endpoint_url(&stub.endpoint)
                .interceptor(CallRecorder)
                .build(),
        );
        Publisher::new(settings, client)
    }

    /// One invocation of the publisher's handler with `records` (Lambda's JSON), as Lambda
    /// makes it: the event deserialized from that JSON, a deadline `timeout_seconds` away.
    pub async fn invoke_publisher(
        &self,
        publisher: &Publisher,
        records: &[Value],
        extra: &[(&str, &str)],
    ) -> DynamoDbEventResponse {
        let event: Event = serde_json::from_value(json!({ "Records": records }))
            .expect("Lambda's DynamoDB stream event");
        let context = invocation_context(PUBLISHER);
        let response = Box::pin(calls::attributed(
            self.publisher_context(Phase::Request, extra),
            publisher.handle(LambdaEvent::new(event, context)),
        ))
        .await
        .expect("the publisher's handler never errs");
        // What Lambda reads back: the response as JSON.
        let answer = serde_json::to_value(&response).expect("a JSON response");
        assert!(answer["batchItemFailures"].is_array(), "{answer}");
        response
    }

    /// Everything new in the events table's stream, through the publisher, into a stub that
    /// accepts every entry: what PutEvents received, in order.
    pub async fn published_events(&self) -> Vec<PublishedEvent> {
        let stub = PutEventsStub::accepting().await;
        let records = self.stream_records().await;
        if records.is_empty() {
            return Vec::new();
        }
        let publisher = self.publisher(&stub, &[]).await;
        let response = self.invoke_publisher(&publisher, &records, &[]).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "{:?}",
            response.batch_item_failures
        );
        stub.published()
    }
}

/// The sequence number of a Lambda stream record.
pub fn sequence_number(record: &Value) -> &str {
    record["dynamodb"]["SequenceNumber"]
        .as_str()
        .expect("a sequence number")
}

/// The records from the one with `sequence_number` on: what the mapping delivers again after
/// that record was reported failed.
pub fn from_sequence_number(records: &[Value], sequence_number: &str) -> Vec<Value> {
    let start = records
        .iter()
        .position(|record| self::sequence_number(record) == sequence_number)
        .expect("the failed record is in the batch");
    records[start..].to_vec()
}

/// Events by id, each id's copies (a redelivery's duplicates) checked identical.
pub fn by_event_id(events: &[PublishedEvent]) -> BTreeMap<String, PublishedEvent> {
    let mut by_id: BTreeMap<String, PublishedEvent> = BTreeMap::new();
    for event in events {
        if let Some(earlier) = by_id.insert(event.event_id().to_owned(), event.clone()) {
            assert_eq!(&earlier, event, "two different events with one event_id");
        }
    }
    by_id
}

/// Lambda's context of an invocation of `function`: its deadline the function's timeout in the
/// template away.
fn invocation_context(function: &str) -> Context {
    let mut context = Context::default();
    let timeout = Policies::from_template(&template_path())
        .expect("the template")
        .function(function)
        .expect("the function in the template")
        .timeout_seconds;
    context.deadline = u64::try_from(
        (std::time::SystemTime::now() + std::time::Duration::from_secs(timeout))
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("milliseconds");
    context
}
