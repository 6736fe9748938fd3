//! Refresh tokens: opaque strings `rt1_<user id>_<session id>_<secret>`, the secret 256 bits
//! from the operating system's generator (`tokens::new_opaque_token`). Nothing in them is signed
//! and no JWT library parses them (no dot, no JSON header), so no verifier can take one for an
//! access token, and a login or a refresh signs one token, the access token. The ids let the
//! server read the session with one key read; the sessions table keeps only the SHA-256 of the
//! secret, as the key of the token's item (`refresh#<hash>`), so a copy of the table refreshes
//! nothing. Clients may assume nothing of them but that they are strings.
//!
//! Refresh tokens issued before, JWTs signed like access tokens, still refresh until they
//! expire (`legacy`).

use crate::error::AuthError;
use crate::tokens::{TokenIssuer, hash_opaque_token, new_opaque_token};

/// The version prefix of opaque refresh tokens.
pub const PREFIX: &str = "rt1_";

/// The length of the secret: 32 bytes, base64url without padding.
const SECRET_CHARS: usize = 43;

/// The longest user or session id a token may name.
const MAX_ID_BYTES: usize = 64;

/// A refresh token just made, and what the sessions table keeps of it.
pub struct NewRefreshToken {
    pub token: String,
    /// The SHA-256 of the secret: the only part stored.
    pub id_hash: String,
}

/// The refresh token a client presented: the session it names and the hash its item is stored
/// under. Nothing is known to be true of it until the rotation's conditional write finds that
/// item, unspent (or spent inside the grace window) and of that session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedRefresh {
    pub user_id: String,
    pub session_id: String,
    pub id_hash: String,
}

/// Ids are UUIDs: ASCII letters, digits and hyphens, never the `_` that separates the parts.
fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn is_secret(secret: &str) -> bool {
    secret.len() == SECRET_CHARS
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A new refresh token of session `session_id` of user `user_id`.
pub fn new_refresh_token(user_id: &str, session_id: &str) -> Result<NewRefreshToken, AuthError> {
    if !is_id(user_id) || !is_id(session_id) {
        return Err(AuthError::internal(
            "a refresh token for an id that is not a UUID",
        ));
    }
    let secret = new_opaque_token()?;
    Ok(NewRefreshToken {
        id_hash: hash_opaque_token(&secret),
        token: format!("{PREFIX}{user_id}_{session_id}_{secret}"),
    })
}

/// The parts of an opaque refresh token, or none when `token` is not one.
pub fn parse(token: &str) -> Option<PresentedRefresh> {
    let mut parts = token.strip_prefix(PREFIX)?.splitn(3, '_');
    let (user_id, session_id, secret) = (parts.next()?, parts.next()?, parts.next()?);
    if !is_id(user_id) || !is_id(session_id) || !is_secret(secret) {
        return None;
    }
    Some(PresentedRefresh {
        user_id: user_id.to_owned(),
        session_id: session_id.to_owned(),
        id_hash: hash_opaque_token(secret),
    })
}

/// Reads a presented refresh token: an opaque one, or a legacy JWT (until the last expires).
pub async fn read(tokens: &TokenIssuer, token: &str) -> Result<PresentedRefresh, AuthError> {
    if token.starts_with(PREFIX) {
        return parse(token).ok_or(AuthError::InvalidToken);
    }
    legacy::read(tokens, token).await
}

/// LEGACY, to be removed once `REFRESH_TOKEN_TTL_SECONDS` (7 days by default) has passed since
/// opaque refresh tokens were deployed: the refresh JWTs issued before (`typ` `refresh+jwt`,
/// audience `JWT_REFRESH_AUDIENCE`, their item stored under the SHA-256 of their `jti`). They
/// rotate (into an opaque token) and are detected on reuse exactly as opaque ones. With this
/// module go `TokenType::Refresh`, `TokenIssuer::legacy_refresh_jwt` and the refresh audience.
mod legacy {
    use super::PresentedRefresh;
    use crate::error::AuthError;
    use crate::tokens::{TokenIssuer, TokenType, hash_opaque_token};

    pub(super) async fn read(
        tokens: &TokenIssuer,
        token: &str,
    ) -> Result<PresentedRefresh, AuthError> {
        let claims = tokens.verify(token, TokenType::Refresh).await?;
        Ok(PresentedRefresh {
            user_id: claims.sub,
            session_id: claims.sid,
            id_hash: hash_opaque_token(&claims.jti),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "0b7cf3f5-8a5e-4f6b-9d6e-2f1f7f8f2c11";
    const SESSION: &str = "6f1f8a4e-2c3d-4b5a-8e9f-0a1b2c3d4e5f";

    #[test]
    fn a_new_token_parses_back_to_its_session_and_hash_and_is_not_a_jwt() {
        let new = new_refresh_token(USER, SESSION).unwrap();
        assert!(new.token.starts_with("rt1_"));
        assert!(!new.token.contains('.'), "no JWS compact form");
        assert!(jsonwebtoken::decode_header(&new.token).is_err());
        let parsed = parse(&new.token).unwrap();
        assert_eq!(parsed.user_id, USER);
        assert_eq!(parsed.session_id, SESSION);
        assert_eq!(parsed.id_hash, new.id_hash);
        assert!(!new.id_hash.is_empty() && !new.token.contains(&new.id_hash));
        let again = new_refresh_token(USER, SESSION).unwrap();
        assert_ne!(again.token, new.token);
        assert_ne!(again.id_hash, new.id_hash);
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let good = new_refresh_token(USER, SESSION).unwrap().token;
        let secret = good.rsplit_once(&format!("{SESSION}_")).unwrap().1;
        assert_eq!(secret.len(), 43);
        for bad in [
            String::new(),
            "rt1_".to_owned(),
            good.replacen("rt1_", "rt2_", 1),
            good[..good.len() - 1].to_owned(),
            format!("{good}A"),
            format!("rt1_{USER}_{SESSION}"),
            format!("rt1__{SESSION}_{secret}"),
            format!("rt1_{USER}.x_{SESSION}_{secret}"),
            format!("rt1_{USER}_{SESSION}_{}", "!".repeat(43)),
            format!("rt1_{}_{SESSION}_{secret}", "a".repeat(65)),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_that_could_not_be_parsed_back_are_refused() {
        assert!(new_refresh_token("a_b", SESSION).is_err());
        assert!(new_refresh_token(USER, "").is_err());
    }
}
