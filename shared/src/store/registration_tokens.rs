//! Registration tokens: proof that a phone was verified, keyed by the token's hash.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Delete, Put};

use serde::{Deserialize, Serialize};

use super::{Write, decode, encode, get_item, num, text};
use crate::error::AuthError;
use crate::phone::PhoneNumber;

/// The stored form of a registration token.
#[derive(Serialize, Deserialize)]
struct TokenItem {
    token_hash: String,
    phone: String,
    created_at: u64,
    expires_at: u64,
}

#[derive(Clone)]
pub struct RegistrationTokensTable {
    client: Client,
    name: String,
}

impl RegistrationTokensTable {
    pub fn new(client: Client, name: String) -> Self {
        Self { client, name }
    }

    /// The phone a live token was issued for.
    pub async fn phone_for(
        &self,
        token_hash: &str,
        now: u64,
    ) -> Result<Option<PhoneNumber>, AuthError> {
        let Some(item) = get_item(&self.client, &self.name, "token_hash", token_hash).await? else {
            return Ok(None);
        };
        let item: TokenItem = decode("registration tokens", item)?;
        Ok((item.expires_at > now).then(|| PhoneNumber::from_stored(item.phone)))
    }

    /// Stores a new token (for a transaction).
    pub fn create(
        &self,
        token_hash: &str,
        phone: &PhoneNumber,
        now: u64,
        expires_at: u64,
    ) -> Result<Write, AuthError> {
        let item = TokenItem {
            token_hash: token_hash.to_owned(),
            phone: phone.as_str().to_owned(),
            created_at: now,
            expires_at,
        };
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(encode(&item)?))
            .condition_expression("attribute_not_exists(token_hash)")
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::put(put))
    }

    /// Spends a live token bound to `phone` (for the transaction that creates the user), so one
    /// token registers at most one account.
    pub fn consume(
        &self,
        token_hash: &str,
        phone: &PhoneNumber,
        now: u64,
    ) -> Result<Write, AuthError> {
        let delete = Delete::builder()
            .table_name(&self.name)
            .key("token_hash", text(token_hash))
            .condition_expression("phone = :phone AND expires_at > :now")
            .expression_attribute_values(":phone", text(phone.as_str()))
            .expression_attribute_values(":now", num(now))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::delete(delete))
    }
}
