//! The users table: one item per phone number, which is what makes "one account per phone" an
//! invariant DynamoDB enforces (a conditional put on the key).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::Serialize;

use super::{Item, get_item, get_num, get_text, num, text};
use crate::error::AuthError;
use crate::phone::PhoneNumber;

/// The public profile: what responses may show.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserProfile {
    pub id: String,
    pub phone: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
}

#[derive(Debug, Clone)]
pub struct User {
    pub profile: UserProfile,
    /// argon2id PHC string; never serialised into a response.
    pub password_hash: String,
    pub created_at: u64,
}

#[derive(Clone)]
pub struct UsersTable {
    client: Client,
    name: String,
}

impl UsersTable {
    pub fn new(client: Client, name: String) -> Self {
        Self { client, name }
    }

    pub async fn get(&self, phone: &PhoneNumber) -> Result<Option<User>, AuthError> {
        let item = get_item(&self.client, &self.name, "phone", phone.as_str()).await?;
        Ok(item.as_ref().and_then(from_item))
    }

    /// A put that only succeeds if no account holds the phone yet (for a transaction).
    pub fn create(&self, user: &User) -> Result<TransactWriteItem, AuthError> {
        let profile = &user.profile;
        let put = Put::builder()
            .table_name(&self.name)
            .item("phone", text(&profile.phone))
            .item("user_id", text(&profile.id))
            .item("first_name", text(&profile.first_name))
            .item("last_name", text(&profile.last_name))
            .item("email", text(&profile.email))
            .item("password_hash", text(&user.password_hash))
            .item("created_at", num(user.created_at))
            .condition_expression("attribute_not_exists(phone)")
            .build()
            .map_err(AuthError::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

fn from_item(item: &Item) -> Option<User> {
    Some(User {
        profile: UserProfile {
            id: get_text(item, "user_id")?,
            phone: get_text(item, "phone")?,
            first_name: get_text(item, "first_name")?,
            last_name: get_text(item, "last_name")?,
            email: get_text(item, "email")?,
        },
        password_hash: get_text(item, "password_hash")?,
        created_at: get_num(item, "created_at")?,
    })
}
