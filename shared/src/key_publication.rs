//! The MAC that makes a published public key trusted: HMAC-SHA256 of the key's publication under
//! the key publication secret, which the signers and verifiers read from Secrets Manager. The
//! signing keys table is writable by the signers (and whoever else can write it), so an item is
//! trusted only if it carries this MAC: writing the table without the secret adds no key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Separates these MACs from any other use of the secret, and from a future format.
const PURPOSE: &[u8] = b"phone-auth/signing-key-publication/v1";

/// The key publication secret, held by the functions that sign or verify tokens.
#[derive(Clone)]
pub struct PublicationKey {
    key: SecretString,
}

impl PublicationKey {
    pub fn new(key: SecretString) -> Self {
        Self { key }
    }

    /// Covers the key (`kid`, `x`) and how long it is published, so that neither another key
    /// nor a longer publication can reuse the MAC. `published_at` only orders the key set and
    /// is left out (concurrent signers keep the first one, which they do not know).
    fn mac(&self, kid: &str, x: &str, expires_at: u64) -> HmacSha256 {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(self.key.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(PURPOSE);
        // Length-prefixed fields: no two publications encode to the same bytes.
        for field in [kid.as_bytes(), x.as_bytes(), &expires_at.to_be_bytes()] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        mac
    }

    /// The MAC a signer stores with its publication (base64url).
    pub fn seal(&self, kid: &str, x: &str, expires_at: u64) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(kid, x, expires_at).finalize().into_bytes())
    }

    /// Whether `mac` is this publication's, compared in constant time.
    pub fn vouches_for(&self, kid: &str, x: &str, expires_at: u64, mac: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(mac) {
            Ok(expected) => self.mac(kid, x, expires_at).verify_slice(&expected).is_ok(),
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

    #[test]
    fn a_seal_vouches_for_its_publication_only() {
        let publication = key("the-key-publication-secret-0123456789abcdef");
        let mac = publication.seal("kid", "x", 1_000);
        assert!(publication.vouches_for("kid", "x", 1_000, &mac));
        assert!(
            !publication.vouches_for("kid", "y", 1_000, &mac),
            "another key"
        );
        assert!(
            !publication.vouches_for("other", "x", 1_000, &mac),
            "another kid"
        );
        assert!(
            !publication.vouches_for("kid", "x", 1_001, &mac),
            "a longer publication"
        );
        assert!(
            !publication.vouches_for("ki", "dx", 1_000, &mac),
            "fields shifted"
        );
        assert!(!publication.vouches_for("kid", "x", 1_000, "not base64!"));
        assert!(!publication.vouches_for("kid", "x", 1_000, ""));
        let other = key("another-key-publication-secret-0123456789ab");
        assert!(
            !other.vouches_for("kid", "x", 1_000, &mac),
            "another secret"
        );
    }
}
