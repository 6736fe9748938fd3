//! A Cognito user pool on moto's `cognito-idp` emulator (the same moto server as the KMS
//! tests' one, started by `scripts/test`), for the tests of moving users on their first login.

use auth_shared::cognito::CognitoMigrationConfig;
use aws_config::SdkConfig;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, ExplicitAuthFlowsType, MessageActionType, UsernameAttributeType,
};

/// `aws` sent to the emulator.
pub fn emulated(aws: &SdkConfig) -> SdkConfig {
    aws.to_builder()
        .endpoint_url(crate::kms::endpoint())
        .build()
}

/// One user of a pool: its number (the user name), password and attributes.
pub struct PoolUser<'a> {
    pub phone: &'a str,
    pub password: &'a str,
    /// Whether the pool has the number as verified.
    pub verified: bool,
    pub given_name: Option<&'a str>,
    pub email: Option<&'a str>,
}

/// A new pool whose users sign in with their phone number, an app client of it for
/// `ADMIN_USER_PASSWORD_AUTH` without a secret, and `users` with their passwords set; the
/// settings that name them, and each user's `sub`.
pub async fn pool_with(users: &[PoolUser<'_>]) -> (CognitoMigrationConfig, Vec<String>) {
    let aws = emulated(&auth_shared::load_aws_config().await);
    let cognito = Client::new(&aws);
    let pool = cognito
        .create_user_pool()
        .pool_name(format!("moved-{}", uuid::Uuid::new_v4().simple()))
        .username_attributes(UsernameAttributeType::PhoneNumber)
        .send()
        .await
        .expect("a user pool on the emulator");
    let pool_id = pool
        .user_pool()
        .and_then(|p| p.id())
        .expect("its id")
        .to_owned();
    let client = cognito
        .create_user_pool_client()
        .user_pool_id(&pool_id)
        .client_name("migration")
        .generate_secret(false)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
        .send()
        .await
        .expect("an app client");
    let client_id = client
        .user_pool_client()
        .and_then(|c| c.client_id())
        .expect("its id")
        .to_owned();
    let mut subs = Vec::new();
    for user in users {
        let attribute = |name: &str, value: &str| {
            AttributeType::builder()
                .name(name)
                .value(value)
                .build()
                .expect("an attribute")
        };
        let mut attributes = vec![attribute(
            "phone_number_verified",
            if user.verified { "true" } else { "false" },
        )];
        if let Some(name) = user.given_name {
            attributes.push(attribute("given_name", name));
        }
        if let Some(email) = user.email {
            attributes.push(attribute("email", email));
        }
        let created = cognito
            .admin_create_user()
            .user_pool_id(&pool_id)
            .username(user.phone)
            .message_action(MessageActionType::Suppress)
            .set_user_attributes(Some(attributes))
            .send()
            .await
            .expect("a pool user");
        let sub = created
            .user()
            .map(|u| u.attributes())
            .unwrap_or_default()
            .iter()
            .find(|a| a.name() == "sub")
            .and_then(|a| a.value())
            .expect("its sub")
            .to_owned();
        cognito
            .admin_set_user_password()
            .user_pool_id(&pool_id)
            .username(user.phone)
            .password(user.password)
            .permanent(true)
            .send()
            .await
            .expect("its password");
        subs.push(sub);
    }
    let config = CognitoMigrationConfig {
        user_pool_id: pool_id,
        client_id,
    };
    (config, subs)
}

/// Sets the password of the pool's user `phone` (the pool `t` moves users from).
pub async fn set_password(t: &crate::TestApp, phone: &str, password: &str) {
    let pool = t.app.config.cognito_migration.as_ref().expect("a pool");
    let aws = emulated(&auth_shared::load_aws_config().await);
    Client::new(&aws)
        .admin_set_user_password()
        .user_pool_id(&pool.user_pool_id)
        .username(phone)
        .password(password)
        .permanent(true)
        .send()
        .await
        .expect("the new password");
}
