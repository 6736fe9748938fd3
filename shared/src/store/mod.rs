//! DynamoDB storage: one module per table, the `Store` that owns the client, and the pieces they
//! share. No DynamoDB type leaves this module: writes travel as opaque `Write` steps of a
//! `Transaction`, a refused step comes back by name with a `Snapshot` of the item, and reads that
//! span tables are `Store` methods returning domain records.
//!
//! Real DynamoDB deletes TTL-expired items up to days late, so every read here treats an item
//! whose `expires_at` has passed as absent, and every conditional write repeats that check.

pub mod attempts;
pub mod events;
pub mod otps;
pub mod registration_tokens;
pub mod sessions;
pub mod signing_keys;
pub mod users;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};

use crate::config::Tables;
use crate::error::AuthError;
use crate::limits::{AccountRecord, PairRecord, SendCounter};
use crate::otp::OtpPurpose;
use crate::phone::PhoneNumber;
use crate::profile::User;
use attempts::{AttemptsTable, FailureKind};
use events::EventsTable;
use otps::{CodeTarget, GuessBudget, OtpsTable};
use registration_tokens::RegistrationTokensTable;
use sessions::SessionsTable;
use users::UsersTable;

pub type Item = HashMap<String, AttributeValue>;

/// The TTL attribute of every table (epoch seconds).
pub const EXPIRES_AT: &str = "expires_at";

/// Reads an item into its typed form. A corrupt item is an error (a 500 that names the table),
/// never "absent"; its content stays out of the message, which could hold hashes.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    table: &'static str,
    item: Item,
) -> Result<T, AuthError> {
    serde_dynamo::from_item(item)
        .map_err(|_| AuthError::internal(format!("a corrupt item in the {table} table")))
}

/// The item of a typed value.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<Item, AuthError> {
    serde_dynamo::to_item(value).map_err(AuthError::internal)
}

/// One write of a transaction, built by a table module.
#[derive(Debug, Clone)]
pub struct Write(TransactWriteItem);

impl Write {
    pub(crate) fn put(put: Put) -> Self {
        Self(TransactWriteItem::builder().put(put).build())
    }

    pub(crate) fn update(update: Update) -> Self {
        Self(TransactWriteItem::builder().update(update).build())
    }

    pub(crate) fn delete(delete: Delete) -> Self {
        Self(TransactWriteItem::builder().delete(delete).build())
    }

    pub(crate) fn check(check: ConditionCheck) -> Self {
        Self(TransactWriteItem::builder().condition_check(check).build())
    }
}

/// An item as a refused transaction step (or a read) found it; only the table modules read it.
#[derive(Debug, Clone)]
pub struct Snapshot(Item);

/// Everything the store holds: the client and one module per table.
pub struct Store {
    client: Client,
    pub users: UsersTable,
    pub otps: OtpsTable,
    pub registration_tokens: RegistrationTokensTable,
    pub attempts: AttemptsTable,
    pub sessions: SessionsTable,
    pub events: EventsTable,
}

/// What a login reads before it takes its slot, in one round trip.
pub struct LoginRecords {
    pub pair: Option<PairRecord>,
    pub account: Option<AccountRecord>,
    /// The account logged in from the caller's network recently.
    pub known_network: bool,
    /// The owner proved the number lately (`AttemptsTable::mark_proof`).
    pub proved_recently: bool,
    pub user: Option<User>,
}

/// What a request for a code to a registered number reads, in one round trip.
pub struct AccountCodeRecords {
    /// The number has an account, and it is not disabled: a code may open it.
    pub registered: bool,
    /// The caller's network is one the number's owner proved it from.
    pub known_network: bool,
    /// The owner proved the number lately (`AttemptsTable::mark_proof`).
    pub proved_recently: bool,
}

/// What a lookup of a number reads, in one round trip: whether it has an account, and the
/// sends counted so far in the budgets a code to it would draw on (in the order asked).
pub struct LookupRecords {
    pub registered: bool,
    pub budget_sends: Vec<u64>,
}

/// What a code check reads, in one round trip (two at once for a guess without an id).
pub struct CodeRecords {
    pub pair: Option<PairRecord>,
    pub target: CodeTarget,
}

impl Store {
    pub fn new(client: Client, tables: &Tables) -> Self {
        Self {
            users: UsersTable::new(client.clone(), tables.users.clone()),
            otps: OtpsTable::new(client.clone(), tables.otps.clone()),
            registration_tokens: RegistrationTokensTable::new(
                client.clone(),
                tables.registration_tokens.clone(),
            ),
            attempts: AttemptsTable::new(client.clone(), tables.attempts.clone()),
            sessions: SessionsTable::new(client.clone(), tables.sessions.clone()),
            events: EventsTable::new(tables.events.clone()),
            client,
        }
    }

    /// Runs `transaction` as one all-or-nothing `TransactWriteItems`.
    pub async fn commit<S: Copy>(
        &self,
        transaction: &Transaction<S>,
    ) -> Result<(), TransactionError<S>> {
        transaction.commit(&self.client).await
    }

    /// Runs `transaction`; a refused step is answered with `refused(step)` (the first refused
    /// one, in the order given): the one place a refused step becomes an error. (A guarded write
    /// that plans again from a refusal goes through `guard::commit_planned` instead.)
    pub async fn apply<S: Copy>(
        &self,
        transaction: &Transaction<S>,
        refused: impl FnOnce(S) -> AuthError,
    ) -> Result<(), AuthError> {
        match self.commit(transaction).await {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(error)) => Err(error),
            Err(TransactionError::Refused(refusals)) => match refusals.into_iter().next() {
                Some(refusal) => Err(refused(refusal.step)),
                None => Err(AuthError::internal("a transaction refused no step")),
            },
        }
    }

    pub async fn login_records(
        &self,
        phone: &PhoneNumber,
        network: &str,
        now: u64,
    ) -> Result<LoginRecords, AuthError> {
        let [pair, account, known, proved, user] = get_items(
            &self.client,
            [
                self.attempts
                    .pair_item_key(FailureKind::Login, phone, network),
                self.attempts.account_item_key(phone),
                self.attempts.known_network_item_key(phone, network),
                self.attempts.proved_item_key(phone),
                self.users.item_key(phone),
            ],
        )
        .await?;
        Ok(LoginRecords {
            pair: AttemptsTable::pair_record(pair.map(Snapshot), now)?,
            account: AttemptsTable::account_record(account.map(Snapshot), now)?,
            known_network: AttemptsTable::live_mark(known, now)?,
            proved_recently: AttemptsTable::live_mark(proved, now)?,
            user: UsersTable::user(user)?,
        })
    }

    pub async fn account_code_records(
        &self,
        phone: &PhoneNumber,
        network: &str,
        now: u64,
    ) -> Result<AccountCodeRecords, AuthError> {
        let [user, known, proved] = get_items(
            &self.client,
            [
                self.users.item_key(phone),
                self.attempts.known_network_item_key(phone, network),
                self.attempts.proved_item_key(phone),
            ],
        )
        .await?;
        Ok(AccountCodeRecords {
            registered: UsersTable::user(user)?.is_some_and(|user| !user.disabled),
            known_network: AttemptsTable::live_mark(known, now)?,
            proved_recently: AttemptsTable::live_mark(proved, now)?,
        })
    }

    pub async fn lookup_records(
        &self,
        phone: &PhoneNumber,
        budgets: &[SendCounter],
    ) -> Result<LookupRecords, AuthError> {
        // The budgets' use only feeds the pressure report: a moment's lag is harmless there.
        let budget_keys = budgets
            .iter()
            .map(|counter| self.attempts.counter_item_key(counter).eventually());
        let keys: Vec<ItemKey> = std::iter::once(self.users.item_key(phone))
            .chain(budget_keys)
            .collect();
        let mut items = get_item_list(&self.client, &keys).await?.into_iter();
        let user = UsersTable::user(items.next().flatten())?;
        let budget_sends = items
            .map(|item| AttemptsTable::sends_in(item.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(LookupRecords {
            registered: user.is_some(),
            budget_sends,
        })
    }

    /// The (phone, network) pair's failures at code checks and the codes `budget` may guess.
    pub async fn code_records(
        &self,
        phone: &PhoneNumber,
        network: &str,
        purpose: OtpPurpose,
        budget: &GuessBudget,
        now: u64,
    ) -> Result<CodeRecords, AuthError> {
        let pair_key = self
            .attempts
            .pair_item_key(FailureKind::Verify, phone, network);
        let (pair, target) = match budget {
            GuessBudget::Verified(hash) => {
                let [pair, code] = get_items(
                    &self.client,
                    [pair_key, self.otps.item_key(phone, purpose, hash)],
                )
                .await?;
                let target = CodeTarget::Verified {
                    verification_hash: hash.clone(),
                    code: OtpsTable::live(code.map(Snapshot), now)?,
                };
                (pair, target)
            }
            GuessBudget::Anonymous => {
                let (pair, target) = tokio::join!(
                    get_items(&self.client, [pair_key]),
                    self.otps.anonymous_target(phone, purpose, now),
                );
                let [pair] = pair?;
                (pair, target?)
            }
        };
        Ok(CodeRecords {
            pair: AttemptsTable::pair_record(pair.map(Snapshot), now)?,
            target,
        })
    }

    /// The codes `budget` may guess of `phone` for `purpose`.
    pub async fn code_target(
        &self,
        phone: &PhoneNumber,
        purpose: OtpPurpose,
        budget: &GuessBudget,
        now: u64,
    ) -> Result<CodeTarget, AuthError> {
        match budget {
            GuessBudget::Verified(hash) => {
                let [code] =
                    get_items(&self.client, [self.otps.item_key(phone, purpose, hash)]).await?;
                Ok(CodeTarget::Verified {
                    verification_hash: hash.clone(),
                    code: OtpsTable::live(code.map(Snapshot), now)?,
                })
            }
            GuessBudget::Anonymous => self.otps.anonymous_target(phone, purpose, now).await,
        }
    }
}

/// A storage failure: the cause (with the SDK's context) goes to the log, the client gets a 503.
pub(crate) fn unavailable<E, R>(error: SdkError<E, R>) -> AuthError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    AuthError::unavailable(DisplayErrorContext(error).to_string())
}

pub(crate) fn num(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn text(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn get_text(item: &Item, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

pub(crate) fn get_num(item: &Item, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// A strongly consistent read of one item (limits and single-use rules need the latest write).
pub(crate) async fn get_item(
    client: &Client,
    table: &str,
    key: &str,
    value: &str,
) -> Result<Option<Item>, AuthError> {
    let output = client
        .get_item()
        .table_name(table)
        .key(key, text(value))
        .consistent_read(true)
        .send()
        .await
        .map_err(unavailable)?;
    Ok(output.item)
}

/// The table and key of one item to read in a batch.
#[derive(Debug, Clone)]
pub struct ItemKey {
    table: String,
    key: Item,
    /// Read strongly consistent (the default), as limits and single-use rules need.
    consistent: bool,
}

impl ItemKey {
    pub(crate) fn new(table: &str, name: &str, value: &str) -> Self {
        Self {
            table: table.to_owned(),
            key: Item::from([(name.to_owned(), text(value))]),
            consistent: true,
        }
    }

    /// The same item read eventually consistent (half the read units), for a figure that may
    /// lag the latest writes by a moment; a batch reads a table so only if all its keys allow.
    pub(crate) fn eventually(self) -> Self {
        Self {
            consistent: false,
            ..self
        }
    }

    /// The key of an item in a table with a partition and a sort key.
    pub(crate) fn composite(table: &str, partition: (&str, &str), sort: (&str, &str)) -> Self {
        Self {
            table: table.to_owned(),
            key: Item::from([
                (partition.0.to_owned(), text(partition.1)),
                (sort.0.to_owned(), text(sort.1)),
            ]),
            consistent: true,
        }
    }
}

/// Reads of several items, from any tables, in one `BatchGetItem` round trip, strongly
/// consistent unless every key of a table says otherwise; the answer is in the order of `keys`.
pub(crate) async fn get_items<const N: usize>(
    client: &Client,
    keys: [ItemKey; N],
) -> Result<[Option<Item>; N], AuthError> {
    let found = get_item_list(client, &keys).await?;
    found
        .try_into()
        .map_err(|_| AuthError::internal("a batch read answered another number of items"))
}

/// As `get_items`, for a number of keys known only at run time (at most 100).
pub(crate) async fn get_item_list(
    client: &Client,
    keys: &[ItemKey],
) -> Result<Vec<Option<Item>>, AuthError> {
    let mut found: Vec<Option<Item>> = vec![None; keys.len()];
    let mut request: HashMap<String, KeysAndAttributes> = HashMap::new();
    for key in keys {
        let consistent = keys
            .iter()
            .any(|other| other.table == key.table && other.consistent);
        let entry = request.remove(&key.table).map_or_else(
            || KeysAndAttributes::builder().consistent_read(consistent),
            |existing| {
                KeysAndAttributes::builder()
                    .consistent_read(consistent)
                    .set_keys(Some(existing.keys))
            },
        );
        let entry = entry
            .keys(key.key.clone())
            .build()
            .map_err(AuthError::internal)?;
        request.insert(key.table.clone(), entry);
    }
    // DynamoDB may leave keys unprocessed under load: ask again for those.
    for _ in 0..5 {
        let output = client
            .batch_get_item()
            .set_request_items(Some(request))
            .send()
            .await
            .map_err(unavailable)?;
        for (table, items) in output.responses.unwrap_or_default() {
            for item in items {
                let position = keys.iter().position(|key| {
                    key.table == table
                        && key
                            .key
                            .iter()
                            .all(|(name, value)| item.get(name) == Some(value))
                });
                if let Some(position) = position {
                    found[position] = Some(item);
                }
            }
        }
        request = output.unprocessed_keys.unwrap_or_default();
        if request.is_empty() {
            return Ok(found);
        }
    }
    Err(AuthError::unavailable("batch read left keys unprocessed"))
}

/// True when a single-item write was refused by its condition (as opposed to failing).
pub(crate) fn condition_failed<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

/// Whether a single-item write met a transaction in flight on its item.
pub(crate) fn transaction_conflict<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
        == Some("TransactionConflictException")
}

/// A step of a transaction whose condition was refused, and the item as it was (when the step
/// asked for it with `ReturnValuesOnConditionCheckFailure::AllOld`).
#[derive(Debug)]
pub struct Refusal<S> {
    pub step: S,
    pub old_item: Option<Snapshot>,
}

impl<S> Refusal<S> {
    /// The refused item as it was, if the step asked for it (and it existed).
    pub fn old_item(&self) -> Option<&Snapshot> {
        self.old_item.as_ref()
    }
}

/// Why a transaction did not commit.
#[derive(Debug)]
pub enum TransactionError<S> {
    /// These steps' conditions failed (every one that failed, in the order given).
    Refused(Vec<Refusal<S>>),
    Storage(AuthError),
}

impl<S: PartialEq> TransactionError<S> {
    /// The refusal of `step`, when that step was refused.
    pub fn refused(&self, step: S) -> Option<&Refusal<S>> {
        match self {
            Self::Refused(refusals) => refusals.iter().find(|refusal| refusal.step == step),
            Self::Storage(_) => None,
        }
    }
}

/// An all-or-nothing write as a list of named steps, so that a refusal is reported by name and
/// reordering the steps cannot change what a refusal means.
pub struct Transaction<S> {
    steps: Vec<(S, Write)>,
}

impl<S: Copy> Transaction<S> {
    pub fn new() -> Self {
        Self { steps: Vec::new() }
    }

    pub fn step(mut self, name: S, item: Write) -> Self {
        self.steps.push((name, item));
        self
    }

    pub fn steps(mut self, name: S, items: impl IntoIterator<Item = Write>) -> Self {
        self.steps
            .extend(items.into_iter().map(|item| (name, item)));
        self
    }

    async fn commit(&self, client: &Client) -> Result<(), TransactionError<S>> {
        let items: Vec<TransactWriteItem> =
            self.steps.iter().map(|(_, item)| item.0.clone()).collect();
        transact(client, items).await.map_err(|error| match error {
            RawTransactionError::Refused(refusals) => TransactionError::Refused(
                refusals
                    .into_iter()
                    .filter_map(|(index, old_item)| {
                        let (step, _) = self.steps.get(index)?;
                        Some(Refusal {
                            step: *step,
                            old_item: old_item.map(Snapshot),
                        })
                    })
                    .collect(),
            ),
            RawTransactionError::Storage(error) => TransactionError::Storage(error),
        })
    }
}

impl<S: Copy> Default for Transaction<S> {
    fn default() -> Self {
        Self::new()
    }
}

enum RawTransactionError {
    Refused(Vec<(usize, Option<Item>)>),
    Storage(AuthError),
}

/// How often a transaction that collided with another one in flight is tried again.
const CONFLICT_RETRIES: u32 = 4;

/// The wait before try `attempt` (from 1) of a transaction that collided: doubling from 40 ms,
/// half of it at random, so that a burst of requests on one item spreads out instead of
/// colliding again in step (at most 600 ms over the four retries).
pub(crate) fn conflict_backoff(attempt: u32) -> Duration {
    let ceiling = 20u64 << attempt.min(8);
    let half = ceiling / 2;
    Duration::from_millis(half + rand::random::<u64>() % half)
}

async fn transact(
    client: &Client,
    items: Vec<TransactWriteItem>,
) -> Result<(), RawTransactionError> {
    let mut attempt = 0;
    loop {
        let result = client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            error.as_service_error()
        {
            let reasons = cancelled.cancellation_reasons();
            let refused: Vec<(usize, Option<Item>)> = reasons
                .iter()
                .enumerate()
                .filter(|(_, reason)| reason.code() == Some("ConditionalCheckFailed"))
                .map(|(index, reason)| (index, reason.item().cloned()))
                .collect();
            if !refused.is_empty() {
                return Err(RawTransactionError::Refused(refused));
            }
            // Another transaction on the same items was in flight: settle after it does.
            let conflicted = reasons
                .iter()
                .any(|reason| reason.code() == Some("TransactionConflict"));
            if conflicted && attempt < CONFLICT_RETRIES {
                attempt += 1;
                tokio::time::sleep(conflict_backoff(attempt)).await;
                continue;
            }
        }
        return Err(RawTransactionError::Storage(unavailable(error)));
    }
}
