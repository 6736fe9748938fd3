//! `CallRecorder`: an SDK interceptor that records every AWS call a function makes (the IAM
//! action and the resource it is authorised against), for the least-privilege test
//! (`tests/tests/least_privilege.rs`), which holds the record against `template.yaml`.
//!
//! Calls are attributed by a task-local `CallContext` (which function, under which template
//! parameters) that `TestApp::send` sets around the handler, so one app, one client and many
//! parallel tests need no bookkeeping of their own. Calls outside any context (the tests'
//! own reads and table set-up) are not recorded. The record is written, one JSON object a line
//! and each distinct call once, to the file `AWS_CALL_RECORD` names; without it nothing is kept.
//!
//! Beside it (`chain_record_path`), each distinct `RecordedChain`: the longest run of calls a
//! request (or a cold start) made one after another, for the time-budget test.

use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use auth_shared::AWS_CALL_TIMEOUT;
use auth_shared::sms::SMS_TIMEOUT_SECONDS;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{
    ConfigBag, Intercept, Region, RuntimeComponents, SharedInterceptor,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The account every ARN of the record is in, and the `AWS::AccountId` the checker resolves.
pub const TEST_ACCOUNT: &str = "123456789012";

/// The variable naming the file the record is appended to.
pub const RECORD_VARIABLE: &str = "AWS_CALL_RECORD";

/// Who is calling: a function (its binary name) under the template parameters its
/// configuration corresponds to (the ones the template's Conditions and `!Sub`s read), and when.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CallContext {
    pub function: String,
    pub parameters: BTreeMap<String, String>,
    pub phase: Phase,
}

/// When a function calls: at its cold start, before the handler (Lambda's init phase, with a
/// limit of its own), or while answering a request (within the function's timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    ColdStart,
    Request,
    /// Lambda's event source mapping reading a stream with the function's role, before it
    /// invokes the function (not the function's time).
    EventSource,
}

/// The longest run of calls one request or cold start made one after another (calls made side
/// by side count once, as the longest of them): what the time-budget test holds against the
/// function's timeout.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordedChain {
    pub function: String,
    pub phase: Phase,
    /// `service:operation`, in order, e.g. `DynamoDB:TransactWriteItems`.
    pub chain: Vec<String>,
}

impl RecordedChain {
    /// The longest this chain may take: each call's time limit, one after another.
    pub fn time_limit(&self) -> Duration {
        self.chain.iter().map(|call| call_time_limit(call)).sum()
    }
}

/// The most one call may take: an SMS provider's (Amazon SNS, End User Messaging, or a Lambda
/// hook) as long as `SMS_TIMEOUT_SECONDS` allows at most, a Cognito pool's (users moved on
/// login) `COGNITO_CALL_TIMEOUT`, every other AWS call `AWS_CALL_TIMEOUT`, retries included.
pub fn call_time_limit(call: &str) -> Duration {
    let service = call.split_once(':').map_or(call, |(service, _)| service);
    match service {
        "SNS" | "Pinpoint SMS Voice V2" | "Lambda" => {
            Duration::from_secs(*SMS_TIMEOUT_SECONDS.end())
        }
        "Cognito Identity Provider" => auth_shared::cognito::COGNITO_CALL_TIMEOUT,
        _ => AWS_CALL_TIMEOUT,
    }
}

/// The calls of the request or cold start under way, as they start and end.
type Timeline = Arc<Mutex<Vec<TimedCall>>>;

struct TimedCall {
    call: String,
    started: Instant,
    ended: Option<Instant>,
}

/// Where in the task's timeline an operation's call is (kept in the operation's config bag).
#[derive(Debug, Clone, Copy)]
struct TimelineIndex(usize);

impl Storable for TimelineIndex {
    type Storer = StoreReplace<Self>;
}

/// One AWS call as IAM sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordedCall {
    pub function: String,
    pub parameters: BTreeMap<String, String>,
    /// The IAM action, e.g. `dynamodb:GetItem`.
    pub action: String,
    /// The ARN the call is authorised against; `None` when the request names none (an SMS to
    /// a phone number), which only `Resource: "*"` allows.
    pub resource: Option<String>,
}

tokio::task_local! {
    static CONTEXT: CallContext;
    static TIMELINE: Timeline;
}

/// Runs `future` with its AWS calls attributed to `context`, and records its longest chain.
pub async fn attributed<F: Future>(context: CallContext, future: F) -> F::Output {
    let timeline = Timeline::default();
    let output = CONTEXT
        .scope(context.clone(), TIMELINE.scope(timeline.clone(), future))
        .await;
    let calls = std::mem::take(&mut *timeline.lock().expect("call timeline"));
    record_chain(RecordedChain {
        function: context.function,
        phase: context.phase,
        chain: longest_chain(calls),
    });
    output
}

/// The heaviest run of calls each starting after the one before ended (by `call_time_limit`).
fn longest_chain(mut calls: Vec<TimedCall>) -> Vec<String> {
    calls.sort_by_key(|call| call.started);
    // best[i]: the heaviest chain ending with call i, as (weight, previous call).
    let mut best: Vec<(Duration, Option<usize>)> = Vec::with_capacity(calls.len());
    for (i, call) in calls.iter().enumerate() {
        let before = (0..i)
            .filter(|&j| calls[j].ended.is_some_and(|ended| ended <= call.started))
            .max_by_key(|&j| best[j].0);
        let weight = before.map_or(Duration::ZERO, |j| best[j].0) + call_time_limit(&call.call);
        best.push((weight, before));
    }
    let mut chain = Vec::new();
    let mut at = (0..calls.len()).max_by_key(|&i| best[i].0);
    while let Some(i) = at {
        chain.push(calls[i].call.clone());
        at = best[i].1;
    }
    chain.reverse();
    chain
}

/// The interceptor; add `CallRecorder::shared()` to every client an app uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallRecorder;

impl CallRecorder {
    pub fn shared() -> SharedInterceptor {
        SharedInterceptor::new(CallRecorder)
    }
}

impl Intercept for CallRecorder {
    fn name(&self) -> &'static str {
        "CallRecorder"
    }

    // Not `read_before_execution`: a client's interceptors run that before the operation has put
    // its `Metadata` in the bag.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let Ok(caller) = CONTEXT.try_with(CallContext::clone) else {
            return Ok(());
        };
        let Some(operation) = cfg.load::<Metadata>() else {
            return Err("an AWS operation without Metadata cannot be attributed".into());
        };
        let region = cfg.load::<Region>().map_or("us-east-1", Region::as_ref);
        for (action, resource) in authorised(operation, context.input(), region) {
            record(RecordedCall {
                function: caller.function.clone(),
                parameters: caller.parameters.clone(),
                action,
                resource,
            });
        }
        let call = format!("{}:{}", operation.service(), operation.name());
        let _ = TIMELINE.try_with(|timeline| {
            let mut timeline = timeline.lock().expect("call timeline");
            cfg.interceptor_state()
                .store_put(TimelineIndex(timeline.len()));
            timeline.push(TimedCall {
                call,
                started: Instant::now(),
                ended: None,
            });
        });
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(&TimelineIndex(index)) = cfg.load::<TimelineIndex>() {
            let _ = TIMELINE.try_with(|timeline| {
                if let Some(call) = timeline.lock().expect("call timeline").get_mut(index) {
                    call.ended = Some(Instant::now());
                }
            });
        }
        Ok(())
    }
}

type Authorised = Vec<(String, Option<String>)>;

/// The (IAM action, resource) pairs an operation is authorised as. Operations this list does
/// not know come out under their API name with an unknown resource, which no policy but `*`
/// allows: the test then names them, and they get a line here.
fn authorised(
    operation: &Metadata,
    input: &aws_smithy_runtime_api::client::interceptors::context::Input,
    region: &str,
) -> Authorised {
    let table = |name: &str| Some(table_arn(region, name));
    match operation.service() {
        "DynamoDB" => dynamodb(operation.name(), input, &table),
        "SNS" => {
            use aws_sdk_sns::operation::publish::PublishInput;
            match input.downcast_ref::<PublishInput>() {
                // A topic is a resource; an SMS to a phone number is not.
                Some(publish) => vec![(
                    "sns:Publish".to_owned(),
                    publish
                        .topic_arn()
                        .or(publish.target_arn())
                        .map(str::to_owned),
                )],
                None => unknown("sns", operation),
            }
        }
        "Lambda" => {
            use aws_sdk_lambda::operation::invoke::InvokeInput;
            match input.downcast_ref::<InvokeInput>() {
                Some(invoke) => vec![(
                    "lambda:InvokeFunction".to_owned(),
                    invoke
                        .function_name()
                        .map(|name| function_arn(region, name)),
                )],
                None => unknown("lambda", operation),
            }
        }
        "Pinpoint SMS Voice V2" => {
            use aws_sdk_pinpointsmsvoicev2::operation::send_text_message::SendTextMessageInput;
            match input.downcast_ref::<SendTextMessageInput>() {
                Some(send) => {
                    let mut resources: Vec<String> = Vec::new();
                    if let Some(identity) = send.origination_identity() {
                        resources.push(sms_voice_arn(region, identity, origination_kind(identity)));
                    }
                    if let Some(set) = send.configuration_set_name() {
                        resources.push(sms_voice_arn(region, set, "configuration-set"));
                    }
                    let action = "sms-voice:SendTextMessage".to_owned();
                    if resources.is_empty() {
                        vec![(action, None)]
                    } else {
                        resources
                            .into_iter()
                            .map(|resource| (action.clone(), Some(resource)))
                            .collect()
                    }
                }
                None => unknown("sms-voice", operation),
            }
        }
        "Secrets Manager" => {
            use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueInput;
            match input.downcast_ref::<GetSecretValueInput>() {
                Some(get) => vec![(
                    "secretsmanager:GetSecretValue".to_owned(),
                    get.secret_id().map(|id| {
                        if id.starts_with("arn:") {
                            id.to_owned()
                        } else {
                            format!("arn:aws:secretsmanager:{region}:{TEST_ACCOUNT}:secret:{id}")
                        }
                    }),
                )],
                None => unknown("secretsmanager", operation),
            }
        }
        "KMS" => {
            use aws_sdk_kms::operation::get_public_key::GetPublicKeyInput;
            use aws_sdk_kms::operation::sign::SignInput;
            let key = |id: Option<&str>| id.map(|id| kms_key_arn(region, id));
            if let Some(sign) = input.downcast_ref::<SignInput>() {
                vec![("kms:Sign".to_owned(), key(sign.key_id()))]
            } else if let Some(get) = input.downcast_ref::<GetPublicKeyInput>() {
                vec![("kms:GetPublicKey".to_owned(), key(get.key_id()))]
            } else {
                unknown("kms", operation)
            }
        }
        "EventBridge" => {
            use aws_sdk_eventbridge::operation::put_events::PutEventsInput;
            match input.downcast_ref::<PutEventsInput>() {
                // Authorised against each bus an entry names (the default bus without one).
                Some(put) => {
                    let mut buses: Vec<String> = put
                        .entries()
                        .iter()
                        .map(|entry| event_bus_arn(region, entry.event_bus_name()))
                        .collect();
                    buses.sort();
                    buses.dedup();
                    buses
                        .into_iter()
                        .map(|bus| ("events:PutEvents".to_owned(), Some(bus)))
                        .collect()
                }
                None => unknown("events", operation),
            }
        }
        "Cognito Identity Provider" => {
            use aws_sdk_cognitoidentityprovider::operation::{
                admin_get_user::AdminGetUserInput, admin_initiate_auth::AdminInitiateAuthInput,
            };
            let pool = if let Some(i) = input.downcast_ref::<AdminInitiateAuthInput>() {
                i.user_pool_id()
            } else if let Some(i) = input.downcast_ref::<AdminGetUserInput>() {
                i.user_pool_id()
            } else {
                return unknown("cognito-idp", operation);
            };
            vec![(
                format!("cognito-idp:{}", operation.name()),
                pool.map(|pool| {
                    format!("arn:aws:cognito-idp:{region}:{TEST_ACCOUNT}:userpool/{pool}")
                }),
            )]
        }
        "DynamoDB Streams" => dynamodb_streams(operation, input, region),
        service => unknown(service, operation),
    }
}

/// The ARN of an event bus named by name or ARN (`None`: the account's default bus).
fn event_bus_arn(region: &str, bus: Option<&str>) -> String {
    match bus {
        Some(arn) if arn.starts_with("arn:") => arn.to_owned(),
        Some(name) => format!("arn:aws:events:{region}:{TEST_ACCOUNT}:event-bus/{name}"),
        None => format!("arn:aws:events:{region}:{TEST_ACCOUNT}:event-bus/default"),
    }
}

/// DynamoDB Streams' IAM actions (`dynamodb:` ones), on the stream: named by the request, or
/// by the shard iterator of a GetRecords, which begins with its stream's ARN.
fn dynamodb_streams(
    operation: &Metadata,
    input: &aws_smithy_runtime_api::client::interceptors::context::Input,
    region: &str,
) -> Authorised {
    use aws_sdk_dynamodbstreams::operation::{
        describe_stream::DescribeStreamInput, get_records::GetRecordsInput,
        get_shard_iterator::GetShardIteratorInput,
    };
    let stream = if let Some(i) = input.downcast_ref::<DescribeStreamInput>() {
        i.stream_arn()
    } else if let Some(i) = input.downcast_ref::<GetShardIteratorInput>() {
        i.stream_arn()
    } else if let Some(i) = input.downcast_ref::<GetRecordsInput>() {
        i.shard_iterator()
            .and_then(|iterator| iterator.split('|').next())
    } else {
        return unknown("dynamodb", operation);
    };
    vec![(
        format!("dynamodb:{}", operation.name()),
        Some(
            stream
                .and_then(|arn| stream_arn(region, arn))
                .unwrap_or_else(|| "<stream not known to CallRecorder>".to_owned()),
        ),
    )]
}

/// A stream's ARN with its table named by logical id, as `table_arn` names tables:
/// `arn:aws:dynamodb:<region>:<account>:table/<LogicalId>/stream/<label>`.
fn stream_arn(region: &str, arn: &str) -> Option<String> {
    let (_, path) = arn.split_once(":table/")?;
    let (table, label) = path.split_once("/stream/")?;
    Some(format!("{}/stream/{label}", table_arn(region, table)))
}

/// The ARN IAM authorises a KMS call against: the key's (an alias would be authorised against
/// its key, which this record cannot know, so aliases are named as given).
fn kms_key_arn(region: &str, id: &str) -> String {
    if id.starts_with("arn:") {
        id.to_owned()
    } else if id.starts_with("alias/") {
        format!("arn:aws:kms:{region}:{TEST_ACCOUNT}:{id}")
    } else {
        format!("arn:aws:kms:{region}:{TEST_ACCOUNT}:key/{id}")
    }
}

fn unknown(prefix: &str, operation: &Metadata) -> Authorised {
    vec![(
        format!("{prefix}:{}", operation.name()),
        Some("<resource not known to CallRecorder>".to_owned()),
    )]
}

/// DynamoDB's IAM actions: one per operation, except that a transaction is authorised item
/// by item as the single-item action on that item's table
/// (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html>).
fn dynamodb(
    name: &str,
    input: &aws_smithy_runtime_api::client::interceptors::context::Input,
    table: &dyn Fn(&str) -> Option<String>,
) -> Authorised {
    use aws_sdk_dynamodb::operation::{
        batch_get_item::BatchGetItemInput, batch_write_item::BatchWriteItemInput,
        delete_item::DeleteItemInput, get_item::GetItemInput, put_item::PutItemInput,
        query::QueryInput, scan::ScanInput, transact_get_items::TransactGetItemsInput,
        transact_write_items::TransactWriteItemsInput, update_item::UpdateItemInput,
    };
    let action = |verb: &str| format!("dynamodb:{verb}");
    let single = |table_name: Option<&str>| vec![(action(name), table_name.and_then(table))];
    if let Some(i) = input.downcast_ref::<GetItemInput>() {
        single(i.table_name())
    } else if let Some(i) = input.downcast_ref::<PutItemInput>() {
        single(i.table_name())
    } else if let Some(i) = input.downcast_ref::<UpdateItemInput>() {
        single(i.table_name())
    } else if let Some(i) = input.downcast_ref::<DeleteItemInput>() {
        single(i.table_name())
    } else if let Some(i) = input.downcast_ref::<QueryInput>() {
        vec![(
            action(name),
            index_or_table(i.table_name(), i.index_name(), table),
        )]
    } else if let Some(i) = input.downcast_ref::<ScanInput>() {
        vec![(
            action(name),
            index_or_table(i.table_name(), i.index_name(), table),
        )]
    } else if let Some(i) = input.downcast_ref::<BatchGetItemInput>() {
        i.request_items()
            .into_iter()
            .flat_map(|items| items.keys())
            .map(|t| (action(name), table(t)))
            .collect()
    } else if let Some(i) = input.downcast_ref::<BatchWriteItemInput>() {
        i.request_items()
            .into_iter()
            .flat_map(|items| items.keys())
            .map(|t| (action(name), table(t)))
            .collect()
    } else if let Some(i) = input.downcast_ref::<TransactWriteItemsInput>() {
        i.transact_items()
            .iter()
            .filter_map(|item| {
                if let Some(put) = item.put() {
                    Some(("PutItem", put.table_name()))
                } else if let Some(update) = item.update() {
                    Some(("UpdateItem", update.table_name()))
                } else if let Some(delete) = item.delete() {
                    Some(("DeleteItem", delete.table_name()))
                } else {
                    item.condition_check()
                        .map(|check| ("ConditionCheckItem", check.table_name()))
                }
            })
            .map(|(verb, t)| (action(verb), table(t)))
            .collect()
    } else if let Some(i) = input.downcast_ref::<TransactGetItemsInput>() {
        i.transact_items()
            .iter()
            .filter_map(|item| item.get())
            .map(|get| (action("GetItem"), table(get.table_name())))
            .collect()
    } else {
        vec![(
            action(name),
            Some("<resource not known to CallRecorder>".to_owned()),
        )]
    }
}

fn index_or_table(
    table_name: Option<&str>,
    index: Option<&str>,
    table: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let arn = table(table_name?)?;
    Some(match index {
        Some(index) => format!("{arn}/index/{index}"),
        None => arn,
    })
}

/// The ARN of a table. The tests name each table `<prefix><LogicalId>` (`tables::create_all`;
/// the prefix ends with `-`, and CloudFormation logical ids have none), and the record names it
/// by its logical id: the name the checker gives a table's `!Ref` and `!GetAtt`.
fn table_arn(region: &str, name: &str) -> String {
    let logical_id = name.rsplit('-').next().unwrap_or(name);
    format!("arn:aws:dynamodb:{region}:{TEST_ACCOUNT}:table/{logical_id}")
}

/// The ARN Lambda authorises an `Invoke` of `name` (a name, a partial or a full ARN) against.
fn function_arn(region: &str, name: &str) -> String {
    if name.starts_with("arn:") {
        name.to_owned()
    } else if let Some((account, rest)) = name.split_once(":function:") {
        format!("arn:aws:lambda:{region}:{account}:function:{rest}")
    } else {
        format!("arn:aws:lambda:{region}:{TEST_ACCOUNT}:function:{name}")
    }
}

/// The kind of End User Messaging resource an origination identity id names (its resource
/// types: phone-number, pool, sender-id).
fn origination_kind(identity: &str) -> &'static str {
    if identity.starts_with("pool-") {
        "pool"
    } else if identity.starts_with("phone-") || identity.starts_with('+') {
        "phone-number"
    } else {
        "sender-id"
    }
}

fn sms_voice_arn(region: &str, id: &str, kind: &str) -> String {
    if id.starts_with("arn:") {
        id.to_owned()
    } else {
        format!("arn:aws:sms-voice:{region}:{TEST_ACCOUNT}:{kind}/{id}")
    }
}

/// Each distinct call once per process, appended to the record file.
fn record(call: RecordedCall) {
    static CALLS: OnceLock<Option<RecordFile<RecordedCall>>> = OnceLock::new();
    if let Some(file) = CALLS.get_or_init(|| record_path().map(RecordFile::open)) {
        file.append_once(call);
    }
}

/// Each distinct chain once per process, appended to the chain record.
fn record_chain(chain: RecordedChain) {
    static CHAINS: OnceLock<Option<RecordFile<RecordedChain>>> = OnceLock::new();
    let open = || Some(RecordFile::open(chain_record_path(&record_path()?)));
    if let Some(file) = CHAINS.get_or_init(open) {
        file.append_once(chain);
    }
}

fn record_path() -> Option<PathBuf> {
    std::env::var_os(RECORD_VARIABLE).map(PathBuf::from)
}

/// The chain record beside the call record `record`: `aws-calls.jsonl` → `aws-calls.chains.jsonl`.
pub fn chain_record_path(record: &Path) -> PathBuf {
    record.with_extension("chains.jsonl")
}

/// A record file: one JSON line per distinct entry, appended.
struct RecordFile<T> {
    seen: Mutex<HashSet<T>>,
    file: Mutex<std::fs::File>,
}

impl<T: Serialize + Eq + Hash + Clone> RecordFile<T> {
    fn open(path: PathBuf) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{RECORD_VARIABLE}: cannot open {path:?}: {e}"));
        Self {
            seen: Mutex::default(),
            file: Mutex::new(file),
        }
    }

    fn append_once(&self, entry: T) {
        let new = self.seen.lock().expect("record").insert(entry.clone());
        if new {
            let mut line = serde_json::to_string(&entry).expect("a record entry is JSON");
            line.push('\n');
            // One write of the whole line: O_APPEND keeps the lines of parallel processes whole.
            self.file
                .lock()
                .expect("record file")
                .write_all(line.as_bytes())
                .expect("append to the record");
        }
    }
}

/// Every entry of the record file at `path` (calls, or chains at `chain_record_path`).
pub fn read_record<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).map_err(|e| format!("{line}: {e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
    use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem, Update};
    use aws_smithy_runtime_api::client::interceptors::context::Input;

    use super::*;

    fn as_recorded(service: &'static str, operation: &'static str, input: Input) -> Authorised {
        authorised(&Metadata::new(operation, service), &input, "eu-west-1")
    }

    #[test]
    fn a_transaction_is_authorised_item_by_item_on_each_items_table_by_logical_id() {
        let transaction = TransactWriteItemsInput::builder()
            .transact_items(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name("t42-UsersTable")
                            .set_item(Some(Default::default()))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name("t42-SessionsTable")
                            .set_key(Some(Default::default()))
                            .update_expression("SET a = b")
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .condition_check(
                        ConditionCheck::builder()
                            .table_name("local-UsersTable")
                            .set_key(Some(Default::default()))
                            .condition_expression("attribute_exists(a)")
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build()
            .unwrap();
        let table = |name: &str| {
            Some(format!(
                "arn:aws:dynamodb:eu-west-1:{TEST_ACCOUNT}:table/{name}"
            ))
        };
        assert_eq!(
            as_recorded("DynamoDB", "TransactWriteItems", Input::erase(transaction)),
            vec![
                ("dynamodb:PutItem".to_owned(), table("UsersTable")),
                ("dynamodb:UpdateItem".to_owned(), table("SessionsTable")),
                (
                    "dynamodb:ConditionCheckItem".to_owned(),
                    table("UsersTable")
                ),
            ]
        );
    }

    #[test]
    fn an_sms_to_a_number_names_no_resource_and_a_topic_does() {
        use aws_sdk_sns::operation::publish::PublishInput;
        let sms = PublishInput::builder()
            .phone_number("+989101234567")
            .message("hi")
            .build()
            .unwrap();
        assert_eq!(
            as_recorded("SNS", "Publish", Input::erase(sms)),
            vec![("sns:Publish".to_owned(), None)]
        );
        let topic = "arn:aws:sns:eu-west-1:123456789012:alerts";
        let to_topic = PublishInput::builder()
            .topic_arn(topic)
            .message("hi")
            .build()
            .unwrap();
        assert_eq!(
            as_recorded("SNS", "Publish", Input::erase(to_topic)),
            vec![("sns:Publish".to_owned(), Some(topic.to_owned()))]
        );
    }

    #[test]
    fn an_invoke_is_authorised_against_the_functions_arn_in_its_account() {
        use aws_sdk_lambda::operation::invoke::InvokeInput;
        let arn = |name: &str| {
            let invoke = InvokeInput::builder().function_name(name).build().unwrap();
            as_recorded("Lambda", "Invoke", Input::erase(invoke))
                .remove(0)
                .1
                .unwrap()
        };
        assert_eq!(
            arn("sms-hook"),
            format!("arn:aws:lambda:eu-west-1:{TEST_ACCOUNT}:function:sms-hook")
        );
        assert_eq!(
            arn("999999999999:function:hook"),
            "arn:aws:lambda:eu-west-1:999999999999:function:hook"
        );
        let full = "arn:aws:lambda:us-east-1:999999999999:function:hook";
        assert_eq!(arn(full), full);
    }

    #[test]
    fn a_text_is_authorised_against_its_identity_and_configuration_set_or_nothing() {
        use aws_sdk_pinpointsmsvoicev2::operation::send_text_message::SendTextMessageInput;
        let send = SendTextMessageInput::builder()
            .destination_phone_number("+989101234567")
            .origination_identity("pool-0123")
            .configuration_set_name("otp")
            .build()
            .unwrap();
        let sms_voice =
            |kind: &str| Some(format!("arn:aws:sms-voice:eu-west-1:{TEST_ACCOUNT}:{kind}"));
        assert_eq!(
            as_recorded(
                "Pinpoint SMS Voice V2",
                "SendTextMessage",
                Input::erase(send)
            ),
            vec![
                (
                    "sms-voice:SendTextMessage".to_owned(),
                    sms_voice("pool/pool-0123")
                ),
                (
                    "sms-voice:SendTextMessage".to_owned(),
                    sms_voice("configuration-set/otp")
                ),
            ]
        );
        let bare = SendTextMessageInput::builder()
            .destination_phone_number("+989101234567")
            .build()
            .unwrap();
        assert_eq!(
            as_recorded(
                "Pinpoint SMS Voice V2",
                "SendTextMessage",
                Input::erase(bare)
            ),
            vec![("sms-voice:SendTextMessage".to_owned(), None)]
        );
    }

    #[test]
    fn an_operation_the_recorder_does_not_know_is_recorded_so_that_no_policy_allows_it() {
        use aws_sdk_dynamodb::operation::describe_table::DescribeTableInput;
        let describe = DescribeTableInput::builder()
            .table_name("t1-UsersTable")
            .build()
            .unwrap();
        let recorded = as_recorded("DynamoDB", "DescribeTable", Input::erase(describe));
        assert_eq!(recorded[0].0, "dynamodb:DescribeTable");
        assert!(!recorded[0].1.as_deref().unwrap().starts_with("arn:"));
    }
}
