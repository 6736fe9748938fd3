//! Refresh sessions. One partition per user holds:
//! - `session#<sid>`: one per login (the token family), with the phone; live while present and
//!   unexpired. Deleting it revokes the session: its refresh tokens stop rotating and its access
//!   tokens stop passing `live`.
//! - `refresh#<sha256(jti)>`: one per issued refresh token, `spent` once rotated. Presenting a
//!   spent one again is reuse, which revokes its family.
//!
//! Keeping a user's sessions in one partition makes "all sessions of a user" a strongly
//! consistent query, so logout-all and password changes never miss a session just created.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update, WriteRequest,
};

use super::{EXPIRES_AT, Item, get_text, is_live, num, text, unavailable};
use crate::error::AuthError;
use crate::phone::PhoneNumber;
use crate::tokens::IssuedTokens;

/// A live session, as protected endpoints see it.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub session_id: String,
    pub phone: PhoneNumber,
}

#[derive(Clone)]
pub struct SessionsTable {
    client: Client,
    name: String,
}

fn session_key(session_id: &str) -> String {
    format!("session#{session_id}")
}

fn refresh_key(refresh_id_hash: &str) -> String {
    format!("refresh#{refresh_id_hash}")
}

/// BatchWriteItem takes at most this many requests.
const BATCH_LIMIT: usize = 25;

impl SessionsTable {
    pub fn new(client: Client, name: String) -> Self {
        Self { client, name }
    }

    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, AuthError> {
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(AuthError::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn refresh_item(&self, user_id: &str, session_id: &str, issued: &IssuedTokens) -> Item {
        Item::from([
            ("user_id".to_owned(), text(user_id)),
            ("sk".to_owned(), text(refresh_key(&issued.refresh_id_hash))),
            ("sid".to_owned(), text(session_id)),
            ("spent".to_owned(), AttributeValue::Bool(false)),
            (EXPIRES_AT.to_owned(), num(issued.refresh_expires_at)),
        ])
    }

    /// A new session and its first refresh token (for a transaction).
    pub fn start(
        &self,
        session: &Session,
        issued: &IssuedTokens,
        now: u64,
    ) -> Result<Vec<TransactWriteItem>, AuthError> {
        let family = Item::from([
            ("user_id".to_owned(), text(&session.user_id)),
            ("sk".to_owned(), text(session_key(&session.session_id))),
            ("phone".to_owned(), text(session.phone.as_str())),
            ("created_at".to_owned(), num(now)),
            (EXPIRES_AT.to_owned(), num(issued.refresh_expires_at)),
        ]);
        Ok(vec![
            self.put(family, Some("attribute_not_exists(sk)"))?,
            self.put(
                self.refresh_item(&session.user_id, &session.session_id, issued),
                None,
            )?,
        ])
    }

    /// Rotation (for one transaction): spends the presented refresh token, extends the live
    /// session and stores the new token. Item 0 fails when the presented token is unknown,
    /// expired or already spent (its old state is returned to tell reuse apart); item 1 when the
    /// session was revoked or expired.
    pub fn rotate(
        &self,
        user_id: &str,
        session_id: &str,
        presented_id_hash: &str,
        issued: &IssuedTokens,
        now: u64,
    ) -> Result<Vec<TransactWriteItem>, AuthError> {
        let spend = Update::builder()
            .table_name(&self.name)
            .key("user_id", text(user_id))
            .key("sk", text(refresh_key(presented_id_hash)))
            .update_expression("SET spent = :true")
            .condition_expression("spent = :false AND sid = :sid AND expires_at > :now")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":sid", text(session_id))
            .expression_attribute_values(":now", num(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(AuthError::internal)?;
        let extend = Update::builder()
            .table_name(&self.name)
            .key("user_id", text(user_id))
            .key("sk", text(session_key(session_id)))
            .update_expression("SET expires_at = :until")
            .condition_expression("expires_at > :now")
            .expression_attribute_values(":until", num(issued.refresh_expires_at))
            .expression_attribute_values(":now", num(now))
            .build()
            .map_err(AuthError::internal)?;
        Ok(vec![
            TransactWriteItem::builder().update(spend).build(),
            TransactWriteItem::builder().update(extend).build(),
            self.put(self.refresh_item(user_id, session_id, issued), None)?,
        ])
    }

    /// The session, while it is live.
    pub async fn live(
        &self,
        user_id: &str,
        session_id: &str,
        now: u64,
    ) -> Result<Option<Session>, AuthError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .key("user_id", text(user_id))
            .key("sk", text(session_key(session_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output
            .item
            .filter(|item| is_live(item, now))
            .and_then(|item| get_text(&item, "phone"))
            .map(|phone| Session {
                user_id: user_id.to_owned(),
                session_id: session_id.to_owned(),
                phone: PhoneNumber::from_stored(phone),
            }))
    }

    /// Revokes one session.
    pub async fn revoke(&self, user_id: &str, session_id: &str) -> Result<(), AuthError> {
        self.client
            .delete_item()
            .table_name(&self.name)
            .key("user_id", text(user_id))
            .key("sk", text(session_key(session_id)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Revokes every session of the user but `keep`; returns how many were revoked.
    pub async fn revoke_all(&self, user_id: &str, keep: Option<&str>) -> Result<usize, AuthError> {
        let keep = keep.map(session_key);
        let mut doomed = Vec::new();
        let mut start_key = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.name)
                .key_condition_expression("user_id = :user AND begins_with(sk, :prefix)")
                .expression_attribute_values(":user", text(user_id))
                .expression_attribute_values(":prefix", text("session#"))
                .projection_expression("sk")
                .consistent_read(true)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(unavailable)?;
            doomed.extend(
                page.items()
                    .iter()
                    .filter_map(|item| get_text(item, "sk"))
                    .filter(|sk| Some(sk) != keep.as_ref()),
            );
            start_key = page.last_evaluated_key;
            if start_key.is_none() {
                break;
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

/// True when a refresh token's old state shows it was already spent: a replay.
pub fn was_spent(old_item: Option<&Item>) -> bool {
    matches!(
        old_item.and_then(|item| item.get("spent")),
        Some(AttributeValue::Bool(true))
    )
}
