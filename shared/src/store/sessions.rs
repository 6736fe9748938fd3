//! Refresh sessions. One partition per user holds:
//! - `session#<sid>`: one per login (the token family), with the phone; live while present and
//!   unexpired. Deleting it revokes the session: its refresh tokens stop rotating and its access
//!   tokens stop passing `live`.
//!   It also records where it was last seen (IP, user agent, time: at login and each refresh)
//!   for the session list.
//! - `refresh#<hash>`: one per issued refresh token, `hash` the SHA-256 of its secret (of its
//!   `jti` for the refresh JWTs issued before opaque tokens), `spent` (at `spent_at`) once
//!   rotated. Presenting a spent one again after the grace window is reuse, which revokes its
//!   family; inside the window it rotates again (two tabs refreshing at once).
//! - `credentials`: the user's credentials version (absent: 0), bumped in the transaction that
//!   changes or resets the password. A session lives only while its version is the current one,
//!   so a credential change ends every older session at once, before any clean-up runs. It also
//!   holds the account's phone once the number was changed, so the sessions follow the account,
//!   and, while an operator has the account disabled, the version it was disabled at: the
//!   sessions live at the disable are told so (and stay until the enable ends them for good).
//!
//! Keeping a user's sessions in one partition makes "all sessions of a user" a strongly
//! consistent query, so logout-all and password changes never miss a session just created.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, Put,
    ReturnValuesOnConditionCheckFailure, Update, WriteRequest,
};

use serde::{Deserialize, Serialize};

use super::{Item, ItemKey, Snapshot, Write, decode, encode, get_items, num, text, unavailable};
use crate::app_claims::AppClaims;
use crate::error::AuthError;
use crate::phone::PhoneNumber;
use crate::refresh_tokens::PresentedRefresh;
use crate::tokens::IssuedTokens;

/// A live session, as protected endpoints see it.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub session_id: String,
    pub phone: PhoneNumber,
    /// The credentials version the session was started (or last kept) under.
    pub credentials_version: u64,
    pub created_at: u64,
    /// What its access tokens carry under `app`: the user's app claims as last read.
    pub app_claims: AppClaims,
}

/// Where a session was used from: its login, then each refresh.
#[derive(Debug, Clone, Copy)]
pub struct SeenFrom<'a> {
    pub ip: &'a str,
    pub user_agent: Option<&'a str>,
    pub at: u64,
}

/// A live session as the session list shows it.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    pub session_id: String,
    pub created_at: u64,
    pub last_used_at: u64,
    pub user_agent: Option<String>,
    /// Sessions started before the list existed have no IP recorded.
    pub ip: Option<String>,
}

/// The stored form of a session (`sk` = `session#<sid>`).
#[derive(Serialize, Deserialize)]
struct SessionItem {
    user_id: String,
    sk: String,
    phone: String,
    created_at: u64,
    /// Sessions started before versions existed are at version 0.
    #[serde(default)]
    credentials_version: u64,
    expires_at: u64,
    #[serde(default)]
    last_used_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
}

impl SessionItem {
    fn is_live(&self, credentials_version: u64, max_age: u64, now: u64) -> bool {
        self.expires_at > now
            && self.credentials_version == credentials_version
            && self.created_at.saturating_add(max_age) > now
    }
}

/// The stored form of an issued refresh token (`sk` = `refresh#<hash>`, see `refresh_tokens`).
#[derive(Serialize, Deserialize)]
struct RefreshItem {
    user_id: String,
    sk: String,
    sid: String,
    spent: bool,
    /// When it was first spent (tokens spent before the grace window existed have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spent_at: Option<u64>,
    expires_at: u64,
}

/// The stored form of a user's credentials version (`sk` = `credentials`).
#[derive(Deserialize)]
struct CredentialsItem {
    /// Absent when only the phone was ever set.
    #[serde(default)]
    version: u64,
    /// The account's phone since its last change of number.
    #[serde(default)]
    phone: Option<String>,
    /// Set while an operator has the account disabled.
    #[serde(default)]
    disabled: bool,
    /// While disabled: the version the account was disabled at. The sessions live under it at
    /// the disable are answered `AccountDisabled` (every other token as on any account). Absent
    /// on an item disabled before it was recorded: no session is told (they were deleted then).
    #[serde(default)]
    disabled_version: Option<u64>,
    /// A copy of the user's app claims (`AppClaims`, compact JSON) for the refresh, which reads
    /// this item and not the account.
    #[serde(default)]
    app_claims: Option<String>,
}

impl CredentialsItem {
    /// The item in `credentials`, absent: version 0, never changed, never disabled.
    fn read(credentials: Option<Item>) -> Result<Self, AuthError> {
        match credentials {
            Some(item) => decode("sessions", item),
            None => Ok(Self {
                version: 0,
                phone: None,
                disabled: false,
                disabled_version: None,
                app_claims: None,
            }),
        }
    }

    /// The version whose live sessions an operator's disable holds (told `AccountDisabled`).
    fn held_version(&self) -> Option<u64> {
        self.disabled_version.filter(|_| self.disabled)
    }
}

/// What a presented token's session is, under the user's credentials item.
enum Standing {
    /// Live: the token works.
    Live(Session),
    /// Was live when an operator disabled the account, and would be live still: its tokens are
    /// answered `AccountDisabled` until the account is enabled (which ends it).
    Disabled(Session),
    /// Revoked, expired, outlived or of older credentials: as on any account.
    Ended,
}

/// What a presented refresh token finds (`SessionsTable::live_for_refresh`).
pub enum RefreshStanding {
    /// A live session the token was issued to (spent or not: the rotation decides).
    Live(Session),
    /// A session live when an operator disabled the account. `replayed` when the token was
    /// spent before the grace window (the rotation would have refused it as reuse): then it is
    /// reuse as on any account, else the answer is `AccountDisabled`.
    Disabled { session: Session, replayed: bool },
    /// No live session: a made-up, expired or foreign token, or its session ended.
    Ended,
}

#[derive(Clone)]
pub struct SessionsTable {
    client: Client,
    name: String,
}

fn session_key(session_id: &str) -> String {
    format!("session#{session_id}")
}

impl From<SessionItem> for SessionSummary {
    fn from(item: SessionItem) -> Self {
        let session_id = item.sk.strip_prefix("session#").unwrap_or(&item.sk);
        Self {
            session_id: session_id.to_owned(),
            created_at: item.created_at,
            last_used_at: item.last_used_at.unwrap_or(item.created_at),
            user_agent: item.user_agent,
            ip: item.ip,
        }
    }
}

fn refresh_key(refresh_id_hash: &str) -> String {
    format!("refresh#{refresh_id_hash}")
}

const CREDENTIALS_KEY: &str = "credentials";

/// The condition that `attribute` holds `version` (absent counts as 0).
fn is_version(attribute: &str, version: u64) -> String {
    if version == 0 {
        format!("(attribute_not_exists({attribute}) OR {attribute} = :version)")
    } else {
        format!("{attribute} = :version")
    }
}

/// BatchWriteItem takes at most this many requests.
const BATCH_LIMIT: usize = 25;

impl SessionsTable {
    pub fn new(client: Client, name: String) -> Self {
        Self { client, name }
    }

    fn put(&self, item: Item, condition: Option<&str>) -> Result<Write, AuthError> {
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::put(put))
    }

    fn refresh_item(
        &self,
        user_id: &str,
        session_id: &str,
        issued: &IssuedTokens,
    ) -> Result<Item, AuthError> {
        encode(&RefreshItem {
            user_id: user_id.to_owned(),
            sk: refresh_key(&issued.refresh_id_hash),
            sid: session_id.to_owned(),
            spent: false,
            spent_at: None,
            expires_at: issued.refresh_expires_at,
        })
    }

    fn item_key(&self, user_id: &str, sk: &str) -> ItemKey {
        ItemKey::composite(&self.name, ("user_id", user_id), ("sk", sk))
    }

    /// A new session and its first refresh token (for a transaction).
    pub fn start(
        &self,
        session: &Session,
        issued: &IssuedTokens,
        seen: SeenFrom<'_>,
    ) -> Result<Vec<Write>, AuthError> {
        let family = encode(&SessionItem {
            user_id: session.user_id.clone(),
            sk: session_key(&session.session_id),
            phone: session.phone.as_str().to_owned(),
            created_at: session.created_at,
            credentials_version: session.credentials_version,
            expires_at: issued.refresh_expires_at,
            last_used_at: Some(seen.at),
            ip: Some(seen.ip.to_owned()),
            user_agent: seen.user_agent.map(str::to_owned),
        })?;
        Ok(vec![
            self.put(family, Some("attribute_not_exists(sk)"))?,
            self.put(
                self.refresh_item(&session.user_id, &session.session_id, issued)?,
                None,
            )?,
        ])
    }

    /// Rotation (for one transaction): spends the presented refresh token, extends the live
    /// session (never past `session_ends_at`, its absolute end), records where it was used from
    /// and stores the new token. A token spent less than `grace` seconds ago is accepted again
    /// (its first spend time is kept, so the window does not slide). The step `Spend` fails
    /// when the presented token is unknown, expired, or spent longer ago (its old state is
    /// returned to tell reuse apart); `Extend` when the session was revoked, expired or
    /// outlived its credentials.
    pub fn rotate(
        &self,
        session: &Session,
        presented_id_hash: &str,
        issued: &IssuedTokens,
        session_ends_at: u64,
        grace: u64,
        seen: SeenFrom<'_>,
    ) -> Result<[Write; 4], AuthError> {
        let user_id = session.user_id.as_str();
        Ok([
            self.spend_refresh(session, presented_id_hash, grace, seen.at)?,
            self.extend_session(
                session,
                issued.refresh_expires_at.min(session_ends_at),
                seen,
            )?,
            self.put(
                self.refresh_item(user_id, &session.session_id, issued)?,
                None,
            )?,
            self.credentials_are(user_id, session.credentials_version)?,
        ])
    }

    /// `rotate`'s `Spend`: the presented refresh token marked spent, if it is live and unspent
    /// or was spent less than `grace` seconds ago.
    fn spend_refresh(
        &self,
        session: &Session,
        presented_id_hash: &str,
        grace: u64,
        now: u64,
    ) -> Result<Write, AuthError> {
        // `spent_at > :cutoff` is false when absent: tokens spent before grace existed never get it.
        let spend = Update::builder()
            .table_name(&self.name)
            .key("user_id", text(&session.user_id))
            .key("sk", text(refresh_key(presented_id_hash)))
            .update_expression("SET spent = :true, spent_at = if_not_exists(spent_at, :now)")
            .condition_expression(
                "(spent = :false OR spent_at > :cutoff) AND sid = :sid AND expires_at > :now",
            )
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":cutoff", num(now.saturating_sub(grace)))
            .expression_attribute_values(":sid", text(&session.session_id))
            .expression_attribute_values(":now", num(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::update(spend))
    }

    /// `rotate`'s `Extend`: the live session's end moved to `until`, where it was used from
    /// recorded, if its credentials are still the ones it was started with.
    fn extend_session(
        &self,
        session: &Session,
        until: u64,
        seen: SeenFrom<'_>,
    ) -> Result<Write, AuthError> {
        let agent = if seen.user_agent.is_some() {
            ", user_agent = :agent"
        } else {
            " REMOVE user_agent"
        };
        let values = [
            (":until".to_owned(), num(until)),
            (":now".to_owned(), num(seen.at)),
            (":ip".to_owned(), text(seen.ip)),
            (":version".to_owned(), num(session.credentials_version)),
        ]
        .into_iter()
        .chain(
            seen.user_agent
                .map(|agent| (":agent".to_owned(), text(agent))),
        )
        .collect();
        let extend = Update::builder()
            .table_name(&self.name)
            .key("user_id", text(&session.user_id))
            .key("sk", text(session_key(&session.session_id)))
            .update_expression(format!(
                "SET expires_at = :until, last_used_at = :now, ip = :ip{agent}"
            ))
            .condition_expression(format!(
                "expires_at > :now AND {}",
                is_version("credentials_version", session.credentials_version)
            ))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::update(extend))
    }

    /// Creates the user's credentials item at version 0, if the id never had one (for the
    /// transaction that creates an account under an id from elsewhere: a Cognito `sub`). Any
    /// account that was ever under the id and changed its number, credentials or status, or
    /// was deleted, left one; a moved account creates one: so an id is moved once.
    pub fn claim_credentials(&self, user_id: &str) -> Result<Write, AuthError> {
        let item = Item::from([
            ("user_id".to_owned(), text(user_id)),
            ("sk".to_owned(), text(CREDENTIALS_KEY)),
            ("version".to_owned(), num(0)),
        ]);
        self.put(item, Some("attribute_not_exists(user_id)"))
    }

    /// A check (for a transaction) that the user's credentials version is still `version`.
    pub fn credentials_are(&self, user_id: &str, version: u64) -> Result<Write, AuthError> {
        let check = ConditionCheck::builder()
            .table_name(&self.name)
            .key("user_id", text(user_id))
            .key("sk", text(CREDENTIALS_KEY))
            .condition_expression(is_version("version", version))
            .expression_attribute_values(":version", num(version))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::check(check))
    }

    /// Sets the copy of the user's app claims the refresh reads (for the transaction that sets
    /// them on the account; none: removed).
    pub fn set_app_claims(&self, user_id: &str, claims: &AppClaims) -> Result<Write, AuthError> {
        let update = Update::builder()
            .table_name(&self.name)
            .key("user_id", text(user_id))
            .key("sk", text(CREDENTIALS_KEY));
        let update = match claims.to_stored() {
            Some(stored) => update
                .update_expression("SET app_claims = :claims")
                .expression_attribute_values(":claims", text(stored)),
            None => update.update_expression("REMOVE app_claims"),
        };
        Ok(Write::update(update.build().map_err(AuthError::internal)?))
    }

    /// Moves the user's credentials version from `from` to `from + 1` (for the transaction that
    /// changes the password): every session of the older version is dead from then on.
    pub fn bump_credentials(&self, user_id: &str, from: u64) -> Result<Write, AuthError> {
        let update = Update::builder()
            .table_name(&self.name)
            .key("user_id", text(user_id))
            .key("sk", text(CREDENTIALS_KEY))
            .update_expression("SET version = :next")
            .condition_expression(is_version("version", from))
            .expression_attribute_values(":version", num(from))
            .expression_attribute_values(":next", num(from + 1))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::update(update))
    }

    /// Disables (or enables) the user's tokens and moves the credentials version from `from` to
    /// `from + 1` (for the transaction that disables or enables the account): every session
    /// ends either way. While disabled, the sessions live under `from` (the version disabled
    /// at, kept as `disabled_version`) are told so; the enable removes it, and they are dead.
    pub fn set_disabled(
        &self,
        user_id: &str,
        from: u64,
        disabled: bool,
    ) -> Result<Write, AuthError> {
        let flag = if disabled {
            "SET version = :next, disabled = :true, disabled_version = :version"
        } else {
            "SET version = :next REMOVE disabled, disabled_version"
        };
        let mut update = Update::builder()
            .table_name(&self.name)
            .key("user_id", text(user_id))
            .key("sk", text(CREDENTIALS_KEY))
            .update_expression(flag)
            .condition_expression(is_version("version", from))
            .expression_attribute_values(":version", num(from))
            .expression_attribute_values(":next", num(from + 1));
        if disabled {
            update = update.expression_attribute_values(":true", AttributeValue::Bool(true));
        }
        Ok(Write::update(update.build().map_err(AuthError::internal)?))
    }

    /// Moves one live session to credentials version `to` (for the transaction that changes
    /// the password, so that the session that made the change stays).
    pub fn keep_under(&self, session: &Session, to: u64) -> Result<Write, AuthError> {
        let update = Update::builder()
            .table_name(&self.name)
            .key("user_id", text(&session.user_id))
            .key("sk", text(session_key(&session.session_id)))
            .update_expression("SET credentials_version = :next")
            .condition_expression(format!(
                "attribute_exists(sk) AND {}",
                is_version("credentials_version", session.credentials_version)
            ))
            .expression_attribute_values(":version", num(session.credentials_version))
            .expression_attribute_values(":next", num(to))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::update(update))
    }

    /// The session, while it is live: present, unexpired, younger than `max_age` and of the
    /// user's current credentials version (one batch read of the session and the version).
    /// `AccountDisabled` when it was live at an operator's disable and the account still is.
    pub async fn live(
        &self,
        user_id: &str,
        session_id: &str,
        max_age: u64,
        now: u64,
    ) -> Result<Option<Session>, AuthError> {
        let [session, credentials] = get_items(
            &self.client,
            [
                self.item_key(user_id, &session_key(session_id)),
                self.item_key(user_id, CREDENTIALS_KEY),
            ],
        )
        .await?;
        match standing(user_id, session_id, session, credentials, max_age, now)? {
            Standing::Live(session) => Ok(Some(session)),
            Standing::Disabled(_) => Err(AuthError::AccountDisabled),
            Standing::Ended => Ok(None),
        }
    }

    /// The account's phone as the credentials item holds it (strongly consistent): set by each
    /// change of number in the transaction that moves the account, absent before the first.
    pub async fn account_phone(&self, user_id: &str) -> Result<Option<PhoneNumber>, AuthError> {
        let [credentials] =
            get_items(&self.client, [self.item_key(user_id, CREDENTIALS_KEY)]).await?;
        let credentials = CredentialsItem::read(credentials)?;
        Ok(credentials.phone.map(PhoneNumber::from_stored))
    }

    /// The live session `presented` names, when the token was issued to it and has not expired
    /// (spent or not: the rotation decides), read with the session in one batch. A made-up
    /// secret, another session's token or an expired one finds none, so it costs no signature
    /// and no write. A session held by a disable is told apart, with whether the token is a
    /// replay (spent more than `grace` seconds ago).
    pub async fn live_for_refresh(
        &self,
        presented: &PresentedRefresh,
        (max_age, grace): (u64, u64),
        now: u64,
    ) -> Result<RefreshStanding, AuthError> {
        let PresentedRefresh {
            user_id,
            session_id,
            id_hash,
        } = presented;
        let [session, credentials, token] = get_items(
            &self.client,
            [
                self.item_key(user_id, &session_key(session_id)),
                self.item_key(user_id, CREDENTIALS_KEY),
                self.item_key(user_id, &refresh_key(id_hash)),
            ],
        )
        .await?;
        let Some(token) = issued_token(token, presented, now)? else {
            return Ok(RefreshStanding::Ended);
        };
        Ok(
            match standing(user_id, session_id, session, credentials, max_age, now)? {
                Standing::Live(session) => RefreshStanding::Live(session),
                Standing::Disabled(session) => RefreshStanding::Disabled {
                    session,
                    replayed: token.is_replay(grace, now),
                },
                Standing::Ended => RefreshStanding::Ended,
            },
        )
    }

    /// The user's live sessions under `credentials_version` (the current one, as the caller's
    /// own live session shows), most recently used first.
    pub async fn list(
        &self,
        user_id: &str,
        credentials_version: u64,
        max_age: u64,
        now: u64,
    ) -> Result<Vec<SessionSummary>, AuthError> {
        let mut sessions = Vec::new();
        for item in self.session_items(user_id).await? {
            let item: SessionItem = decode("sessions", item)?;
            if item.is_live(credentials_version, max_age, now) {
                sessions.push(item.into());
            }
        }
        sessions.sort_by_key(|session: &SessionSummary| std::cmp::Reverse(session.last_used_at));
        Ok(sessions)
    }

    /// Up to `limit` of the user's live sessions under `credentials_version`, in the order of
    /// their ids, after the session `after` (for an operator's paginated list), and the id to
    /// continue after when more may follow.
    pub async fn page(
        &self,
        user_id: &str,
        (credentials_version, max_age, now): (u64, u64, u64),
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<SessionSummary>, Option<String>), AuthError> {
        let mut sessions: Vec<SessionSummary> = Vec::new();
        let mut start_key = after.map(|id| {
            HashMap::from([
                ("user_id".to_owned(), text(user_id)),
                ("sk".to_owned(), text(session_key(id))),
            ])
        });
        loop {
            let wanted = limit - sessions.len();
            let page = self
                .session_query(user_id, start_key)
                .limit(i32::try_from(wanted).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(unavailable)?;
            start_key = page.last_evaluated_key;
            for item in page.items.unwrap_or_default() {
                let item: SessionItem = decode("sessions", item)?;
                if item.is_live(credentials_version, max_age, now) {
                    sessions.push(item.into());
                }
            }
            if start_key.is_none() {
                return Ok((sessions, None));
            }
            if sessions.len() == limit {
                let next = sessions.last().map(|session| session.session_id.clone());
                return Ok((sessions, next));
            }
        }
    }

    /// A strongly consistent query of the user's session items, from `start_key`.
    fn session_query(
        &self,
        user_id: &str,
        start_key: Option<HashMap<String, AttributeValue>>,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.name)
            .key_condition_expression("user_id = :user AND begins_with(sk, :prefix)")
            .expression_attribute_values(":user", text(user_id))
            .expression_attribute_values(":prefix", text("session#"))
            .consistent_read(true)
            .set_exclusive_start_key(start_key)
    }

    /// Every session item of the user (live or not), in one strongly consistent query.
    async fn session_items(&self, user_id: &str) -> Result<Vec<Item>, AuthError> {
        let mut items = Vec::new();
        let mut start_key = None;
        loop {
            let page = self
                .session_query(user_id, start_key)
                .send()
                .await
                .map_err(unavailable)?;
            start_key = page.last_evaluated_key;
            items.extend(page.items.unwrap_or_default());
            if start_key.is_none() {
                return Ok(items);
            }
        }
    }

    /// Whether `presented` is a refresh token this service issued to its session (spent or not)
    /// and not yet expired: its item, found by the hash of its secret, names that session.
    pub async fn issued(&self, presented: &PresentedRefresh, now: u64) -> Result<bool, AuthError> {
        let [item] = get_items(
            &self.client,
            [self.item_key(&presented.user_id, &refresh_key(&presented.id_hash))],
        )
        .await?;
        Ok(issued_token(item, presented, now)?.is_some())
    }

    /// Ends the user's session `session_id` (for the transaction that records its end):
    /// refused unless it is live (unexpired, younger than `max_age`, of `credentials_version`,
    /// the current one).
    pub fn end_live(
        &self,
        user_id: &str,
        session_id: &str,
        credentials_version: u64,
        max_age: u64,
        now: u64,
    ) -> Result<Write, AuthError> {
        let delete = Delete::builder()
            .table_name(&self.name)
            .key("user_id", text(user_id))
            .key("sk", text(session_key(session_id)))
            .condition_expression(format!(
                "attribute_exists(sk) AND expires_at > :now AND created_at > :oldest AND {}",
                is_version("credentials_version", credentials_version)
            ))
            .expression_attribute_values(":now", num(now))
            .expression_attribute_values(":oldest", num(now.saturating_sub(max_age)))
            .expression_attribute_values(":version", num(credentials_version))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::delete(delete))
    }

    /// Points every session of the user at `phone` (for the transaction that moves the account
    /// to a new number), provided the credentials are still at `version`: sessions stay valid.
    pub fn follow_phone(
        &self,
        user_id: &str,
        version: u64,
        phone: &PhoneNumber,
    ) -> Result<Write, AuthError> {
        let update = Update::builder()
            .table_name(&self.name)
            .key("user_id", text(user_id))
            .key("sk", text(CREDENTIALS_KEY))
            .update_expression("SET phone = :phone")
            .condition_expression(is_version("version", version))
            .expression_attribute_values(":version", num(version))
            .expression_attribute_values(":phone", text(phone.as_str()))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::update(update))
    }

    /// Deletes the user's session items of a credentials version below `current` (dead since
    /// the change of credentials); returns how many.
    pub async fn remove_stale(&self, user_id: &str, current: u64) -> Result<usize, AuthError> {
        let mut doomed = Vec::new();
        for item in self.session_items(user_id).await? {
            let session: SessionItem = decode("sessions", item)?;
            if session.credentials_version < current {
                doomed.push(session.sk);
            }
        }
        for chunk in doomed.chunks(BATCH_LIMIT) {
            let mut requests = chunk
                .iter()
                .map(|sk| {
                    let delete = DeleteRequest::builder()
                        .key("user_id", text(user_id))
                        .key("sk", text(sk))
                        .build()
                        .map_err(AuthError::internal)?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<Vec<_>, AuthError>>()?;
            // DynamoDB may hand back part of a batch under load; send it again until done.
            for _ in 0..5 {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.name, requests)
                    .send()
                    .await
                    .map_err(unavailable)?;
                requests = output
                    .unprocessed_items
                    .and_then(|mut unprocessed| unprocessed.remove(&self.name))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
            }
            if !requests.is_empty() {
                return Err(AuthError::unavailable("sessions could not all be revoked"));
            }
        }
        Ok(doomed.len())
    }
}

/// True when a refresh token's old state shows it was already spent by `session_id` (outside
/// the grace window, or the rotation would have accepted it): a replay. A corrupt item is an
/// error, not "unspent".
pub fn was_spent(old_item: Option<&Snapshot>, session_id: &str) -> Result<bool, AuthError> {
    let Some(snapshot) = old_item else {
        return Ok(false);
    };
    let item: RefreshItem = decode("sessions", snapshot.0.clone())?;
    Ok(item.spent && item.sid == session_id)
}

/// The refresh token item `item` (found by the hash of the presented secret), when it was
/// issued to the session `presented` names and has not expired.
fn issued_token(
    item: Option<Item>,
    presented: &PresentedRefresh,
    now: u64,
) -> Result<Option<RefreshItem>, AuthError> {
    let Some(item) = item else {
        return Ok(None);
    };
    let item: RefreshItem = decode("sessions", item)?;
    Ok((item.sid == presented.session_id && item.expires_at > now).then_some(item))
}

impl RefreshItem {
    /// Whether presenting it now is a replay: spent, and not less than `grace` seconds ago (the
    /// refusal of `spend_refresh`'s condition, which a spent token without `spent_at` fails).
    fn is_replay(&self, grace: u64, now: u64) -> bool {
        self.spent
            && self
                .spent_at
                .is_none_or(|spent_at| spent_at <= now.saturating_sub(grace))
    }
}

/// What the session of `session_item` is under the user's `credentials` item: live under the
/// current version, held by a disable (it would be live under the version disabled at), or
/// ended.
fn standing(
    user_id: &str,
    session_id: &str,
    session_item: Option<Item>,
    credentials: Option<Item>,
    max_age: u64,
    now: u64,
) -> Result<Standing, AuthError> {
    let credentials = CredentialsItem::read(credentials)?;
    let Some(item) = session_item else {
        return Ok(Standing::Ended);
    };
    let item: SessionItem = decode("sessions", item)?;
    let held = credentials
        .held_version()
        .is_some_and(|version| item.is_live(version, max_age, now));
    if !held && !item.is_live(credentials.version, max_age, now) {
        return Ok(Standing::Ended);
    }
    let session = Session {
        user_id: user_id.to_owned(),
        session_id: session_id.to_owned(),
        // A session started before a change of number follows the account to the new one.
        phone: PhoneNumber::from_stored(credentials.phone.unwrap_or(item.phone)),
        credentials_version: item.credentials_version,
        created_at: item.created_at,
        app_claims: AppClaims::from_stored(credentials.app_claims),
    };
    Ok(if held {
        Standing::Disabled(session)
    } else {
        Standing::Live(session)
    })
}
