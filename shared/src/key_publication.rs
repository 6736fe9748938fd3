//! The MAC that makes a published public key trusted: HMAC-SHA256 of the key's publication under
//! the key publication secret, which the signers and verifiers read from Secrets Manager. The
//! signing keys table is writable by the signers (and whoever else can write it), so an item is
//! trusted only if it carries this MAC: writing the table without the secret adds no key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::store::signing_keys::KeyMaterial;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Separate these MACs from any other use of the secret, and the two forms of a key from each
/// other: an Ed25519 `x` (the first form, whose MACs are unchanged) and a JWK.
const PURPOSE_ED25519_X: &[u8] = b"phone-auth/signing-key-publication/v1";
const PURPOSE_JWK: &[u8] = b"phone-auth/signing-key-publication/v2-jwk";

/// The key publication secret, held by the functions that sign or verify tokens.
#[derive(Clone)]
pub struct PublicationKey {
    key: SecretString,
}

impl PublicationKey {
    pub fn new(key: SecretString) -> Self {
        Self { key }
    }

    /// Covers the key (`kid`, its public part) and how long it is published, so that neither
    /// another key nor a longer publication can reuse the MAC. `published_at` only orders the
    /// key set and is left out (concurrent signers keep the first one, which they do not know).
    fn mac(&self, kid: &str, material: &KeyMaterial, expires_at: u64) -> HmacSha256 {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(self.key.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(match material {
            KeyMaterial::Ed25519X(_) => PURPOSE_ED25519_X,
            KeyMaterial::Jwk(_) => PURPOSE_JWK,
        });
        // Length-prefixed fields: no two publications encode to the same bytes.
        let public = material.value().as_bytes();
        for field in [kid.as_bytes(), public, &expires_at.to_be_bytes()] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        mac
    }

    /// The MAC a signer stores with its publication (base64url).
    pub fn seal(&self, kid: &str, material: &KeyMaterial, expires_at: u64) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(kid, material, expires_at).finalize().into_bytes())
    }

    /// Whether `mac` is this publication's, compared in constant time.
    pub fn vouches_for(
        &self,
        kid: &str,
        material: &KeyMaterial,
        expires_at: u64,
        mac: &str,
    ) -> bool {
        match URL_SAFE_NO_PAD.decode(mac) {
            Ok(expected) => self
                .mac(kid, material, expires_at)
                .verify_slice(&expected)
                .is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(value: &str) -> PublicationKey {
        PublicationKey::new(SecretString::from(value.to_owned()))
    }

    fn x(value: &str) -> KeyMaterial {
        KeyMaterial::Ed25519X(value.to_owned())
    }

    #[test]
    fn a_seal_vouches_for_its_publication_only() {
        let publication = key("the-key-publication-secret-0123456789abcdef");
        let mac = publication.seal("kid", &x("x"), 1_000);
        assert!(publication.vouches_for("kid", &x("x"), 1_000, &mac));
        assert!(
            !publication.vouches_for("kid", &x("y"), 1_000, &mac),
            "another key"
        );
        assert!(
            !publication.vouches_for("other", &x("x"), 1_000, &mac),
            "another kid"
        );
        assert!(
            !publication.vouches_for("kid", &x("x"), 1_001, &mac),
            "a longer publication"
        );
        assert!(
            !publication.vouches_for("ki", &x("dx"), 1_000, &mac),
            "fields shifted"
        );
        assert!(
            !publication.vouches_for("kid", &KeyMaterial::Jwk("x".to_owned()), 1_000, &mac),
            "the same text as the other form"
        );
        assert!(!publication.vouches_for("kid", &x("x"), 1_000, "not base64!"));
        assert!(!publication.vouches_for("kid", &x("x"), 1_000, ""));
        let other = key("another-key-publication-secret-0123456789ab");
        assert!(
            !other.vouches_for("kid", &x("x"), 1_000, &mac),
            "another secret"
        );
    }

    #[test]
    fn the_mac_of_an_ed25519_publication_is_what_it_was_before_jwks_were_published() {
        // Items published before the JWK form keep verifying: their MAC, computed here by hand
        // as it was (purpose v1, then kid, x and the end, each length-prefixed).
        let publication = key("the-key-publication-secret-0123456789abcdef");
        let mut mac =
            <HmacSha256 as KeyInit>::new_from_slice(b"the-key-publication-secret-0123456789abcdef")
                .unwrap();
        mac.update(b"phone-auth/signing-key-publication/v1");
        for field in [&b"kid"[..], b"x", &1_000u64.to_be_bytes()] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        let before = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_eq!(publication.seal("kid", &x("x"), 1_000), before);
    }
}
