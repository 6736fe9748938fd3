//! Opaque tokens (registration tokens) and EdDSA-signed JWTs with a published key set.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    CommonParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Config, ConfigError};
use crate::error::AuthError;

/// 256 random bits, well above the 128 the threat model asks for.
const OPAQUE_TOKEN_BYTES: usize = 32;

/// A fresh opaque token from the operating system's generator, base64url encoded.
pub fn new_opaque_token() -> Result<String, AuthError> {
    let mut bytes = [0u8; OPAQUE_TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|error| AuthError::internal(error.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored instead of a secret token or token id: its SHA-256 (the input has full
/// entropy, so an unkeyed hash is enough to make a leaked table useless).
pub fn hash_opaque_token(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id (never the phone number: tokens are readable by anyone holding them).
    pub sub: String,
    /// The session (one per login): protected endpoints check it is still live, so logout
    /// takes effect at once.
    pub sid: String,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
    pub jti: String,
    pub token_type: TokenType,
}

#[derive(Debug, Serialize)]
pub struct TokenPair {
    pub access: String,
    pub refresh: String,
    pub token_type: &'static str,
    /// Lifetime of the access token, in seconds.
    pub expires_in: u64,
}

/// A freshly signed pair and what the session store keeps of its refresh token.
pub struct IssuedTokens {
    pub pair: TokenPair,
    pub refresh_id_hash: String,
    pub refresh_expires_at: u64,
}

/// Signs with EdDSA (Ed25519) under the current key; verifies under the current key or the
/// configured previous one, chosen by the `kid` header.
pub struct TokenIssuer {
    kid: String,
    encoding_key: EncodingKey,
    accepted: Vec<(String, DecodingKey)>,
    jwks: JwkSet,
    issuer: String,
    audience: String,
    access_ttl: u64,
    refresh_ttl: u64,
}

const ALGORITHM: Algorithm = Algorithm::EdDSA;

/// The PKCS#8 v1 DER prefix of an Ed25519 private key; the 32-byte seed follows it.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn invalid_key(name: &'static str, reason: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.to_string(),
    }
}

/// The signing key from config: a PKCS#8 PEM Ed25519 key (`openssl genpkey -algorithm ed25519`),
/// or any other secret string (at least 32 bytes), whose SHA-256 is then the Ed25519 seed. The
/// second form lets AWS Secrets Manager generate the key with `GenerateSecretString`.
fn encoding_key(secret: &SecretString) -> Result<EncodingKey, ConfigError> {
    let value = secret.expose_secret().trim();
    if value.starts_with("-----BEGIN") {
        return EncodingKey::from_ed_pem(value.as_bytes())
            .map_err(|error| invalid_key("JWT_SIGNING_KEY", error));
    }
    let mut der = ED25519_PKCS8_PREFIX.to_vec();
    der.extend_from_slice(&Sha256::digest(value.as_bytes()));
    Ok(EncodingKey::from_ed_der(&der))
}

/// A public JWK with its RFC 7638 thumbprint as `kid`.
fn published(mut jwk: Jwk) -> Result<(String, Jwk), jsonwebtoken::errors::Error> {
    let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
    jwk.common = CommonParameters {
        public_key_use: Some(PublicKeyUse::Signature),
        key_algorithm: Some(KeyAlgorithm::EdDSA),
        key_id: Some(kid.clone()),
        ..CommonParameters::default()
    };
    Ok((kid, jwk))
}

impl TokenIssuer {
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        let encoding_key = encoding_key(&config.jwt_signing_key)?;
        let current = Jwk::from_encoding_key(&encoding_key, ALGORITHM)
            .map_err(|error| invalid_key("JWT_SIGNING_KEY", error))?;
        let mut keys = vec![current];
        if let Some(previous) = &config.jwt_previous_public_key {
            let name = "JWT_PREVIOUS_PUBLIC_KEY";
            let decoding =
                DecodingKey::from_ed_components(previous).map_err(|e| invalid_key(name, e))?;
            let jwk = Jwk::from_decoding_key(&decoding, Some(ALGORITHM))
                .map_err(|e| invalid_key(name, e))?;
            keys.push(jwk);
        }
        let mut accepted = Vec::new();
        let mut published_keys = Vec::new();
        for jwk in keys {
            let (kid, jwk) = published(jwk).map_err(|e| invalid_key("JWT_SIGNING_KEY", e))?;
            let decoding =
                DecodingKey::from_jwk(&jwk).map_err(|e| invalid_key("JWT_SIGNING_KEY", e))?;
            accepted.push((kid, decoding));
            published_keys.push(jwk);
        }
        Ok(Self {
            kid: accepted[0].0.clone(),
            encoding_key,
            accepted,
            jwks: JwkSet {
                keys: published_keys,
            },
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            access_ttl: config.access_token_ttl_seconds,
            refresh_ttl: config.refresh_token_ttl_seconds,
        })
    }

    /// The public keys (current first), as served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding_key).map_err(AuthError::internal)
    }

    /// A new access + refresh pair for `user_id` in session `session_id`.
    pub fn issue(
        &self,
        user_id: &str,
        session_id: &str,
        now: u64,
    ) -> Result<IssuedTokens, AuthError> {
        let claims = |token_type, ttl| Claims {
            sub: user_id.to_owned(),
            sid: session_id.to_owned(),
            iat: now,
            exp: now + ttl,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: uuid::Uuid::new_v4().to_string(),
            token_type,
        };
        let access = claims(TokenType::Access, self.access_ttl);
        let refresh = claims(TokenType::Refresh, self.refresh_ttl);
        Ok(IssuedTokens {
            refresh_id_hash: hash_opaque_token(&refresh.jti),
            refresh_expires_at: refresh.exp,
            pair: TokenPair {
                access: self.sign(&access)?,
                refresh: self.sign(&refresh)?,
                token_type: "Bearer",
                expires_in: self.access_ttl,
            },
        })
    }

    /// Checks the `kid`, the signature (EdDSA only), `exp` (no leeway), `iss`, `aud` and that the
    /// token is of the expected type, so an access token is never accepted as a refresh token.
    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::InvalidToken)?;
        let kid = header.kid.ok_or(AuthError::InvalidToken)?;
        let (_, key) = self
            .accepted
            .iter()
            .find(|(accepted, _)| *accepted == kid)
            .ok_or(AuthError::InvalidToken)?;
        let mut validation = Validation::new(ALGORITHM);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|_| AuthError::InvalidToken)?
            .claims;
        if claims.token_type != expected {
            return Err(AuthError::InvalidToken);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_known_ed25519_test_vector_gives_its_public_key() {
        // RFC 8032, section 7.1, TEST 1.
        let seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend((0..32).map(|i| u8::from_str_radix(&seed[2 * i..2 * i + 2], 16).unwrap()));
        let jwk = Jwk::from_encoding_key(&EncodingKey::from_ed_der(&der), ALGORITHM).unwrap();
        let jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(params) = jwk.algorithm else {
            panic!("not an OKP key");
        };
        let expected = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let x = URL_SAFE_NO_PAD.decode(params.x).unwrap();
        let hex: String = x.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }
}
