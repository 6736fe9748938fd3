//! The users table: one item per phone number, which is what makes "one account per phone" an
//! invariant DynamoDB enforces (a conditional put on the key).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnConsumedCapacity, ReturnValue,
    ReturnValuesOnConditionCheckFailure, Update,
};
use serde::{Deserialize, Serialize};

use super::{
    Item, ItemKey, Write, condition_failed, decode, encode, get_item, num, text, unavailable,
};
use crate::app_claims::AppClaims;
use crate::error::AuthError;
use crate::phone::PhoneNumber;
use crate::profile::{ProfileChanges, User, UserProfile};

/// The stored form of an account: its attribute names are written here once.
#[derive(Serialize, Deserialize)]
struct UserItem {
    phone: String,
    user_id: String,
    first_name: String,
    last_name: String,
    email: String,
    password_hash: String,
    created_at: u64,
    /// Accounts created before versions existed are at version 0.
    #[serde(default)]
    credentials_version: u64,
    /// Set while an operator has the account disabled (the admin API).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    disabled: bool,
    /// The last login's time (any kind); absent before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_login_at: Option<u64>,
    /// The app claims as compact JSON (`AppClaims`); absent when none are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app_claims: Option<String>,
}

impl From<&User> for UserItem {
    fn from(user: &User) -> Self {
        let profile = &user.profile;
        Self {
            phone: profile.phone.clone(),
            user_id: profile.id.clone(),
            first_name: profile.first_name.clone(),
            last_name: profile.last_name.clone(),
            email: profile.email.clone(),
            password_hash: user.password_hash.clone(),
            created_at: user.created_at,
            credentials_version: user.credentials_version,
            disabled: user.disabled,
            last_login_at: user.last_login_at,
            app_claims: user.app_claims.to_stored(),
        }
    }
}

impl From<UserItem> for User {
    fn from(item: UserItem) -> Self {
        Self {
            profile: UserProfile {
                id: item.user_id,
                phone: item.phone,
                first_name: item.first_name,
                last_name: item.last_name,
                email: item.email,
            },
            password_hash: item.password_hash,
            created_at: item.created_at,
            credentials_version: item.credentials_version,
            disabled: item.disabled,
            last_login_at: item.last_login_at,
            app_claims: AppClaims::from_stored(item.app_claims),
        }
    }
}

fn user_from(item: Item) -> Result<User, AuthError> {
    decode::<UserItem>("users", item).map(User::from)
}

/// The index of the users table by account id (`template.yaml`).
pub const USER_ID_INDEX: &str = "by-user-id";

#[derive(Clone)]
pub struct UsersTable {
    client: Client,
    name: String,
}

impl UsersTable {
    pub fn new(client: Client, name: String) -> Self {
        Self { client, name }
    }

    /// Where the account of `phone` is, for a batch read.
    pub fn item_key(&self, phone: &PhoneNumber) -> ItemKey {
        ItemKey::new(&self.name, "phone", phone.as_str())
    }

    /// The account in `item`, if any.
    pub(crate) fn user(item: Option<Item>) -> Result<Option<User>, AuthError> {
        item.map(user_from).transpose()
    }

    pub async fn get(&self, phone: &PhoneNumber) -> Result<Option<User>, AuthError> {
        Self::user(get_item(&self.client, &self.name, "phone", phone.as_str()).await?)
    }

    /// A put that only succeeds if no account holds the phone yet (for a transaction).
    pub fn create(&self, user: &User) -> Result<Write, AuthError> {
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(encode(&UserItem::from(user))?))
            .condition_expression("attribute_not_exists(phone)")
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::put(put))
    }
}

/// What an import's write of one account did.
#[derive(Debug, Clone, PartialEq)]
pub enum Imported {
    /// Written, for this many write units (the table's and its index's).
    Written { write_units: f64 },
    /// An account holds the number: nothing was written.
    Present { user_id: String },
}

impl UsersTable {
    /// Writes an imported account unless an account holds its number (never overwritten).
    pub async fn import(&self, user: &User) -> Result<Imported, AuthError> {
        let written = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(encode(&UserItem::from(user))?))
            .condition_expression("attribute_not_exists(phone)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match written {
            Ok(output) => Ok(Imported::Written {
                write_units: output
                    .consumed_capacity
                    .and_then(|consumed| consumed.capacity_units)
                    .unwrap_or_default(),
            }),
            Err(error) if condition_failed(&error) => {
                let holder = error
                    .as_service_error()
                    .and_then(|refusal| match refusal {
                        PutItemError::ConditionalCheckFailedException(refusal) => {
                            refusal.item.as_ref()
                        }
                        _ => None,
                    })
                    .and_then(|item| super::get_text(item, "user_id"));
                Ok(Imported::Present {
                    user_id: holder.unwrap_or_default(),
                })
            }
            Err(error) => Err(unavailable(error)),
        }
    }
}

impl UsersTable {
    /// Applies `changes` to the account of `phone` if it still belongs to `user_id`; returns
    /// the updated user, or `None` when the account is gone.
    pub async fn update_profile(
        &self,
        phone: &PhoneNumber,
        user_id: &str,
        changes: ProfileChanges,
    ) -> Result<Option<User>, AuthError> {
        let fields = [
            ("first_name", changes.first_name),
            ("last_name", changes.last_name),
            ("email", changes.email),
        ];
        let mut request = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("phone", text(phone.as_str()))
            .condition_expression("user_id = :user")
            .expression_attribute_values(":user", text(user_id))
            .return_values(ReturnValue::AllNew);
        let mut assignments = Vec::new();
        for (name, value) in fields {
            if let Some(value) = value {
                assignments.push(format!("{name} = :{name}"));
                request = request.expression_attribute_values(format!(":{name}"), text(value));
            }
        }
        if assignments.is_empty() {
            return Ok(self
                .get(phone)
                .await?
                .filter(|user| user.profile.id == user_id));
        }
        match request
            .update_expression(format!("SET {}", assignments.join(", ")))
            .send()
            .await
        {
            Ok(output) => Self::user(output.attributes),
            Err(error) if condition_failed(&error) => Ok(None),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// An update of the account of `user` (for a transaction), provided it is still the one of
    /// `user_id` at the credentials version the caller read, and `also` (` AND ...`) holds.
    fn guarded_update(&self, user: &User, also: &str) -> UpdateBuilder {
        let (condition, version) = same_credentials(user.credentials_version);
        Update::builder()
            .table_name(&self.name)
            .key("phone", text(&user.profile.phone))
            .condition_expression(format!("user_id = :user AND {condition}{also}"))
            .expression_attribute_values(":user", text(&user.profile.id))
            .expression_attribute_values(":version", version)
    }

    /// `guarded_update` that also moves the credentials version on: every session of the
    /// version read is dead from the commit on.
    fn bumping_update(&self, user: &User) -> UpdateBuilder {
        self.guarded_update(user, "")
            .expression_attribute_values(":next", num(user.credentials_version + 1))
    }

    /// Replaces the password hash of the account and bumps its credentials version (for a
    /// transaction).
    pub fn set_password(&self, user: &User, password_hash: String) -> Result<Write, AuthError> {
        let update = self
            .bumping_update(user)
            .update_expression("SET password_hash = :hash, credentials_version = :next")
            .expression_attribute_values(":hash", text(password_hash));
        write(update)
    }

    /// Disables (or enables) the account of `user` and bumps its credentials version (for a
    /// transaction): a login that read the account before cannot start a session after.
    pub fn set_disabled(&self, user: &User, disabled: bool) -> Result<Write, AuthError> {
        let update = self.bumping_update(user);
        let update = if disabled {
            update
                .update_expression("SET disabled = :true, credentials_version = :next")
                .expression_attribute_values(":true", AttributeValue::Bool(true))
        } else {
            update.update_expression("SET credentials_version = :next REMOVE disabled")
        };
        write(update)
    }

    /// Sets the app claims of the account of `user` (for a transaction; none: removed).
    pub fn set_app_claims(&self, user: &User, claims: &AppClaims) -> Result<Write, AuthError> {
        let update = self.guarded_update(user, "");
        let update = match claims.to_stored() {
            Some(stored) => update
                .update_expression("SET app_claims = :claims")
                .expression_attribute_values(":claims", text(stored)),
            None => update.update_expression("REMOVE app_claims"),
        };
        write(update)
    }

    /// Bumps the credentials version of the account of `user` (for the transaction in which an
    /// operator signs it out everywhere).
    pub fn bump_credentials(&self, user: &User) -> Result<Write, AuthError> {
        write(
            self.bumping_update(user)
                .update_expression("SET credentials_version = :next"),
        )
    }

    /// The phone the table's `by-user-id` index names for the account `user_id` (the key of its
    /// item). The index is eventually consistent: just after a change of number it may still
    /// name the old phone (`service::admin::find_by_id` reads on from there).
    pub async fn indexed_phone(&self, user_id: &str) -> Result<Option<PhoneNumber>, AuthError> {
        let found = self
            .client
            .query()
            .table_name(&self.name)
            .index_name(USER_ID_INDEX)
            .key_condition_expression("user_id = :user")
            .expression_attribute_values(":user", text(user_id))
            .limit(1)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(found
            .items()
            .first()
            .and_then(|item| item.get("phone"))
            .and_then(|phone| phone.as_s().ok())
            .map(|phone| PhoneNumber::from_stored(phone.clone())))
    }

    /// The account of `phone`, when it is still the account `user_id`.
    pub async fn get_of(
        &self,
        phone: &PhoneNumber,
        user_id: &str,
    ) -> Result<Option<User>, AuthError> {
        let user = self.get(phone).await?;
        Ok(user.filter(|user| user.profile.id == user_id))
    }

    /// Records a login at `now` (for the transaction that starts its session), provided the
    /// account of `user` still has the credentials the caller verified: a session must never be
    /// created from a password that was replaced. Costs what a condition check would. With
    /// `upgraded`, the hash the login verified (an imported one) is replaced by it, if it is
    /// still the stored one; the credentials version stays, so no other session ends.
    pub fn record_login(
        &self,
        user: &User,
        now: u64,
        upgraded: Option<&str>,
    ) -> Result<Write, AuthError> {
        let update = match upgraded {
            None => self
                .guarded_update(user, "")
                .update_expression("SET last_login_at = :now"),
            Some(hash) => self
                .guarded_update(user, " AND password_hash = :old")
                .update_expression("SET last_login_at = :now, password_hash = :hash")
                .expression_attribute_values(":hash", text(hash))
                .expression_attribute_values(":old", text(&user.password_hash)),
        };
        write(update.expression_attribute_values(":now", num(now)))
    }

    /// Deletes the account of `user` if every stored field is still as `user` shows it (for the
    /// transaction that moves the account to a new number): a profile edit or password change
    /// that landed after the read refuses the move instead of being lost.
    pub fn delete_unchanged(&self, user: &User) -> Result<Write, AuthError> {
        let (credentials, version) = same_credentials(user.credentials_version);
        let profile = &user.profile;
        let stored_claims = user.app_claims.to_stored();
        let claims = match stored_claims {
            Some(_) => "app_claims = :claims",
            None => "attribute_not_exists(app_claims)",
        };
        let mut delete = Delete::builder()
            .table_name(&self.name)
            .key("phone", text(&profile.phone))
            .condition_expression(format!(
                "user_id = :user AND password_hash = :hash AND first_name = :first \
                 AND last_name = :last AND email = :email AND {credentials} AND {claims}"
            ))
            .expression_attribute_values(":user", text(&profile.id))
            .expression_attribute_values(":hash", text(&user.password_hash))
            .expression_attribute_values(":first", text(&profile.first_name))
            .expression_attribute_values(":last", text(&profile.last_name))
            .expression_attribute_values(":email", text(&profile.email))
            .expression_attribute_values(":version", version);
        if let Some(stored) = stored_claims {
            delete = delete.expression_attribute_values(":claims", text(stored));
        }
        Ok(Write::delete(delete.build().map_err(AuthError::internal)?))
    }

    /// Deletes the account of `phone` if it is still the one of `user_id` (for a transaction).
    pub fn delete(&self, phone: &PhoneNumber, user_id: &str) -> Result<Write, AuthError> {
        let delete = Delete::builder()
            .table_name(&self.name)
            .key("phone", text(phone.as_str()))
            .condition_expression("user_id = :user")
            .expression_attribute_values(":user", text(user_id))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Write::delete(delete))
    }
}

fn write(update: UpdateBuilder) -> Result<Write, AuthError> {
    Ok(Write::update(update.build().map_err(AuthError::internal)?))
}

/// The condition that the stored credentials version is `version` (absent counts as 0), and the
/// value it compares with.
fn same_credentials(version: u64) -> (&'static str, aws_sdk_dynamodb::types::AttributeValue) {
    let condition = if version == 0 {
        "(attribute_not_exists(credentials_version) OR credentials_version = :version)"
    } else {
        "credentials_version = :version"
    };
    (condition, num(version))
}
