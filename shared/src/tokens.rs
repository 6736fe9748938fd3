//! Opaque registration tokens and signed JWTs.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::AuthError;

/// 256 random bits, well above the 128 the threat model asks for.
const OPAQUE_TOKEN_BYTES: usize = 32;

/// A fresh opaque token from the operating system's generator, base64url encoded.
pub fn new_opaque_token() -> Result<String, AuthError> {
    let mut bytes = [0u8; OPAQUE_TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|error| AuthError::internal(error.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored instead of an opaque token: its SHA-256 (the token has full entropy, so an
/// unkeyed hash is enough to make a leaked table useless).
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

pub struct TokenIssuer {
    encoding_key: EncodingKey,
    decoding_key: DecodingKey,
    issuer: String,
    audience: String,
    access_ttl: u64,
    refresh_ttl: u64,
}

const ALGORITHM: Algorithm = Algorithm::HS256;

impl TokenIssuer {
    pub fn new(config: &Config) -> Self {
        let secret = config.jwt_secret.expose_secret().as_bytes();
        Self {
            encoding_key: EncodingKey::from_secret(secret),
            decoding_key: DecodingKey::from_secret(secret),
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            access_ttl: config.access_token_ttl_seconds,
            refresh_ttl: config.refresh_token_ttl_seconds,
        }
    }

    fn sign(&self, user_id: &str, token_type: TokenType, now: u64) -> Result<String, AuthError> {
        let ttl = match token_type {
            TokenType::Access => self.access_ttl,
            TokenType::Refresh => self.refresh_ttl,
        };
        let claims = Claims {
            sub: user_id.to_owned(),
            iat: now,
            exp: now + ttl,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: uuid::Uuid::new_v4().to_string(),
            token_type,
        };
        jsonwebtoken::encode(&Header::new(ALGORITHM), &claims, &self.encoding_key)
            .map_err(AuthError::internal)
    }

    pub fn issue_pair(&self, user_id: &str, now: u64) -> Result<TokenPair, AuthError> {
        Ok(TokenPair {
            access: self.sign(user_id, TokenType::Access, now)?,
            refresh: self.sign(user_id, TokenType::Refresh, now)?,
            token_type: "Bearer",
            expires_in: self.access_ttl,
        })
    }

    /// Checks signature, algorithm, `exp`, `iss`, `aud` and that the token is of the expected
    /// type, so an access token is never accepted where a refresh token is expected.
    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, AuthError> {
        let mut validation = Validation::new(ALGORITHM);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding_key, &validation)
            .map_err(|_| AuthError::InvalidCredentials)?
            .claims;
        if claims.token_type != expected {
            return Err(AuthError::InvalidCredentials);
        }
        Ok(claims)
    }
}
