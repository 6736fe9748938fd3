//! The public signing keys, published by the functions that sign tokens so that the functions
//! that only verify them (and the JWKS endpoint) never hold a private key. Each item carries the
//! MAC that makes it trusted (`key_publication`); this module only stores and reads it.
//!
//! All keys share one partition, so the whole (tiny) set is one strongly consistent query.

use aws_sdk_dynamodb::Client;

use serde::Deserialize;

use super::{decode, get_text, num, text, unavailable};
use crate::error::AuthError;

const PARTITION: &str = "signing-key";

/// The public part of a published key, in one of two attributes: an Ed25519 key's JWK `x`
/// (base64url; attribute `x`, as EdDSA keys have always been published), or the public JWK of
/// an RS256 or ES256 key held in a secret (JSON; attribute `jwk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    Ed25519X(String),
    Jwk(String),
}

impl KeyMaterial {
    fn attribute(&self) -> &'static str {
        match self {
            Self::Ed25519X(_) => "x",
            Self::Jwk(_) => "jwk",
        }
    }

    /// The attribute of the other form, which an item of this key must not also have.
    fn other_attribute(&self) -> &'static str {
        match self {
            Self::Ed25519X(_) => "jwk",
            Self::Jwk(_) => "x",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Self::Ed25519X(value) | Self::Jwk(value) => value,
        }
    }
}

/// One published public key: its `kid` (RFC 7638 thumbprint), its public part and the MAC of
/// its publication (absent in items written before publications carried one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    pub kid: String,
    pub material: KeyMaterial,
    pub published_at: u64,
    pub expires_at: u64,
    pub mac: Option<String>,
}

/// The stored form of a published key: exactly one of `x` and `jwk`.
#[derive(Deserialize)]
struct KeyItem {
    kid: String,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    jwk: Option<String>,
    #[serde(default)]
    published_at: u64,
    expires_at: u64,
    #[serde(default)]
    mac: Option<String>,
}

impl KeyItem {
    fn into_published(self) -> Option<PublishedKey> {
        let material = match (self.x, self.jwk) {
            (Some(x), None) => KeyMaterial::Ed25519X(x),
            (None, Some(jwk)) => KeyMaterial::Jwk(jwk),
            _ => return None,
        };
        Some(PublishedKey {
            kid: self.kid,
            material,
            published_at: self.published_at,
            expires_at: self.expires_at,
            mac: self.mac,
        })
    }
}

#[derive(Clone)]
pub struct SigningKeysTable {
    client: Client,
    name: String,
}

impl SigningKeysTable {
    pub fn new(client: Client, name: String) -> Self {
        Self { client, name }
    }

    /// Publishes `kid` (public part `material`) until `expires_at`, with `mac` vouching for that publication. Idempotent:
    /// an existing publication is only ever extended, so concurrent signers cannot shorten each
    /// other's; key, end and MAC are written together, so they always match. An item without a
    /// MAC (written before publications had one, or by someone without the secret) is replaced
    /// whatever its end, or the key would stay untrusted until then.
    pub async fn publish(
        &self,
        kid: &str,
        material: &KeyMaterial,
        now: u64,
        expires_at: u64,
        mac: &str,
    ) -> Result<(), AuthError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("pk", text(PARTITION))
            .key("kid", text(kid))
            // `published_at` stays the first publication's: it orders the key set.
            .update_expression(
                "SET #material = :material, expires_at = :expires_at, mac = :mac, published_at = if_not_exists(published_at, :now) REMOVE #other",
            )
            .condition_expression(
                "attribute_not_exists(kid) OR attribute_not_exists(mac) OR expires_at < :expires_at",
            )
            .expression_attribute_names("#material", material.attribute())
            .expression_attribute_names("#other", material.other_attribute())
            .expression_attribute_values(":material", text(material.value()))
            .expression_attribute_values(":mac", text(mac))
            .expression_attribute_values(":expires_at", num(expires_at))
            .expression_attribute_values(":now", num(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Already published for longer: nothing to do.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Every live published key, the most recently first published first. An item that does
    /// not read as a key is skipped and logged: it must not stop the verification of tokens
    /// signed under the other keys.
    pub async fn live_keys(&self, now: u64) -> Result<Vec<PublishedKey>, AuthError> {
        let mut keys = Vec::new();
        let mut start_key = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.name)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", text(PARTITION))
                .consistent_read(true)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(unavailable)?;
            for item in output.items.unwrap_or_default() {
                // The sort key is always a string; it names the item for whoever removes it.
                let kid = get_text(&item, "kid").unwrap_or_default();
                let published = decode::<KeyItem>("signing keys", item)
                    .ok()
                    .and_then(KeyItem::into_published);
                let Some(key) = published else {
                    tracing::warn!(%kid, "skipped a corrupt item in the signing keys table");
                    continue;
                };
                if key.expires_at > now {
                    keys.push(key);
                }
            }
            start_key = output.last_evaluated_key;
            if start_key.is_none() {
                break;
            }
        }
        keys.sort_by_key(|key| std::cmp::Reverse(key.published_at));
        Ok(keys)
    }
}
