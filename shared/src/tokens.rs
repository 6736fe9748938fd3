//! Opaque tokens (registration tokens, verification ids, the secret of refresh tokens) and
//! signed access JWTs with a published key set: RS256 or ES256 in AWS KMS (`jwt_keys`), or under
//! a private key the signing functions hold (Ed25519, RS256 or ES256, from a Secrets Manager
//! secret) and publish in the signing keys table.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::app_claims::AppClaims;
use crate::clock::Clock;
use crate::config::{Config, ConfigError, IssuerSetting, JwtAlgorithm};
use crate::error::AuthError;
use crate::jwt_keys::{AsymmetricKeys, AsymmetricSigner, PublicKey};
use crate::key_publication::PublicationKey;
use crate::refresh_tokens::new_refresh_token;
use crate::store::signing_keys::{KeyMaterial, PublishedKey, SigningKeysTable};

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
    /// LEGACY: refresh JWTs, issued before refresh tokens were opaque (`refresh_tokens`); only
    /// verified, until the last expires.
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
    /// Not before: the issue time. Absent from tokens signed before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
    pub jti: String,
    pub token_type: TokenType,
    /// Access tokens only: the space-separated scopes (`SCOPES_DEFAULT`) that routes behind a JWT
    /// authorizer can require.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Access tokens only: the user's app claims (`app_claims`), when an operator set any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<serde_json::Map<String, serde_json::Value>>,
    /// Access tokens only: what the token hook added (`token_hook`), each a claim of its own.
    #[serde(flatten)]
    pub hook: serde_json::Map<String, serde_json::Value>,
}

/// What an access token carries besides its own claims.
#[derive(Debug, Default)]
pub struct ExtraClaims {
    /// The user's app claims, under `app`.
    pub app: AppClaims,
    /// The token hook's claims, beside the token's own.
    pub hook: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
pub struct TokenPair {
    pub access: String,
    /// Opaque (`refresh_tokens`).
    pub refresh: String,
    pub token_type: &'static str,
    /// Lifetime of the access token, in seconds.
    pub expires_in: u64,
}

/// Without the tokens: a `{:?}` in a log line must not carry them.
impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// A fresh pair (its access token signed, its refresh token opaque) and what the session store
/// keeps of its refresh token.
pub struct IssuedTokens {
    pub pair: TokenPair,
    pub refresh_id_hash: String,
    pub refresh_expires_at: u64,
}

/// The JWT `typ` header of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// The JWT `typ` header of the legacy refresh JWTs: anything but `at+jwt`, so that no RFC 9068
/// verifier takes one for an access token.
pub const REFRESH_TOKEN_TYP: &str = "refresh+jwt";

impl TokenType {
    pub fn typ(self) -> &'static str {
        match self {
            Self::Access => ACCESS_TOKEN_TYP,
            Self::Refresh => REFRESH_TOKEN_TYP,
        }
    }
}

/// How long a key stays published beyond the longest-lived token signed under it.
const PUBLICATION_MARGIN_SECONDS: u64 = 86_400;
/// A signer renews its key's publication once less than this margin is left, so a warm
/// instance keeps its key published however long it lives.
const RENEW_PUBLICATION_BELOW_SECONDS: u64 = PUBLICATION_MARGIN_SECONDS / 2;
/// Verifiers re-read the published keys at most this often (a token with an unknown `kid`
/// triggers a read, so garbage tokens must not turn into a DynamoDB query each).
const PUBLISHED_KEYS_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// How this function signs, when it does.
enum Signer {
    /// Under a private key the function holds, from the secret `JWT_SIGNING_SECRET_ID`:
    /// published in the signing keys table before it signs.
    Held(HeldKey),
    /// RS256 or ES256 in KMS (or a local PEM key file): trusted through the configuration.
    Configured(Box<AsymmetricSigner>),
}

/// A private key held only by the functions that sign tokens (register, login, login-otp,
/// refresh): Ed25519 (EdDSA), or RSA or EC P-256 kept out of KMS so that no token costs a KMS
/// request.
struct HeldKey {
    kid: String,
    algorithm: Algorithm,
    /// The public key, as published.
    material: KeyMaterial,
    encoding_key: EncodingKey,
    /// Until when the key is known to be published (0: not yet).
    published_until: AtomicU64,
    /// Vouches for the publications it writes.
    publication: PublicationKey,
}

/// A public key tokens are verified with.
#[derive(Clone)]
struct VerificationKey {
    kid: String,
    jwk: Jwk,
    decoding_key: DecodingKey,
    /// The only algorithm its tokens may name.
    algorithm: Algorithm,
    /// When its publication ends; `None` for keys from this function's own configuration.
    expires_at: Option<u64>,
}

impl VerificationKey {
    /// The key a public part describes: an Ed25519 `x`, or a JWK of an RS256 or ES256 key.
    fn from_material(material: &KeyMaterial, expires_at: Option<u64>) -> Result<Self, String> {
        let key = match material {
            KeyMaterial::Ed25519X(x) => {
                let jwk = DecodingKey::from_ed_components(x)
                    .and_then(|decoding| Jwk::from_decoding_key(&decoding, None))
                    .map_err(|error| error.to_string())?;
                PublicKey::from_jwk(jwk, Algorithm::EdDSA)?
            }
            KeyMaterial::Jwk(json) => public_jwk(json)?,
        };
        Ok(Self::from_public(key, expires_at))
    }

    fn from_public(key: PublicKey, expires_at: Option<u64>) -> Self {
        Self {
            kid: key.kid,
            jwk: key.jwk,
            decoding_key: key.decoding_key,
            algorithm: key.algorithm,
            expires_at,
        }
    }

    fn is_live(&self, now: u64) -> bool {
        self.expires_at.is_none_or(|expires_at| expires_at > now)
    }
}

/// The trusted keys read from the signing keys table, and when.
#[derive(Default)]
struct PublishedKeys {
    keys: Vec<VerificationKey>,
    loaded_at: Option<Instant>,
}

impl PublishedKeys {
    fn may_reload(&self) -> bool {
        self.loaded_at
            .is_none_or(|loaded_at| loaded_at.elapsed() >= PUBLISHED_KEYS_RELOAD_INTERVAL)
    }

    fn find(&self, kid: &str, now: u64) -> Option<&VerificationKey> {
        self.keys
            .iter()
            .find(|key| key.kid == kid && key.is_live(now))
    }
}

/// The `iss` of the tokens: configured, or this API's URL once a request has named the API.
enum Issuer {
    Configured(String),
    ThisApi {
        region: String,
        learned: OnceLock<String>,
    },
}

impl Issuer {
    fn new(setting: &IssuerSetting) -> Self {
        match setting {
            IssuerSetting::Configured(issuer) => Self::Configured(issuer.clone()),
            IssuerSetting::ThisApi { region } => Self::ThisApi {
                region: region.clone(),
                learned: OnceLock::new(),
            },
        }
    }
}

/// The default URL of API Gateway API `api_id` in `region` (what the template's `ApiUrl` output
/// gives), or none if `api_id` is not an API id (10 lowercase letters and digits).
pub fn api_url(api_id: &str, region: &str) -> Option<String> {
    let is_id = |id: &str| {
        !id.is_empty()
            && id.len() <= 32
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let is_region = |r: &str| {
        !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !is_id(api_id) || !is_region(region) {
        return None;
    }
    // AWS::URLSuffix: amazonaws.com, but amazonaws.com.cn in the China regions.
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    Some(format!("https://{api_id}.execute-api.{region}.{suffix}"))
}

/// Signs under the current key (`JWT_ALGORITHM`), when this function has it; verifies under the
/// function's own or configured keys, or an EdDSA key whose publication carries a valid MAC
/// under the key publication secret.
pub struct TokenIssuer {
    signer: Option<Signer>,
    /// The current key: the Ed25519 signer's, or the RS256/ES256 key of `JWT_KMS_KEY_ID`
    /// (verifiers too have it). Always accepted, and published first.
    own_keys: Vec<VerificationKey>,
    /// `JWT_PREVIOUS_KMS_KEY_ID` and `JWT_PREVIOUS_PUBLIC_KEY`: always accepted, published last.
    previous_keys: Vec<VerificationKey>,
    /// What this deployment signs with.
    algorithm: JwtAlgorithm,
    /// Without it no published key is trusted (and the table is not read).
    publication: Option<PublicationKey>,
    signing_keys: SigningKeysTable,
    clock: Clock,
    published: Mutex<PublishedKeys>,
    issuer: Issuer,
    audience: String,
    /// `scope` of access tokens, space-separated.
    scope: String,
    refresh_audience: String,
    access_ttl: u64,
    refresh_ttl: u64,
}

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

/// The Ed25519 signing key: a PKCS#8 PEM key (`openssl genpkey -algorithm ed25519`), or any
/// other secret string (at least 32 bytes), whose SHA-256 is then the Ed25519 seed. The second
/// form lets AWS Secrets Manager generate the key with `GenerateSecretString`.
fn ed25519_key(secret: &SecretString) -> Result<EncodingKey, ConfigError> {
    let value = secret.expose_secret().trim();
    if value.starts_with("-----BEGIN") {
        return EncodingKey::from_ed_pem(value.as_bytes())
            .map_err(|error| invalid_key("JWT_SIGNING_SECRET_ID", error));
    }
    let mut der = ED25519_PKCS8_PREFIX.to_vec();
    der.extend_from_slice(&Sha256::digest(value.as_bytes()));
    Ok(EncodingKey::from_ed_der(&der))
}

/// The private key of the secret `JWT_SIGNING_SECRET_ID` for `algorithm`, and its public part as
/// published: for EdDSA see `ed25519_key`; for RS256 a PKCS#8 PEM RSA key of at least 2048 bits,
/// for ES256 a PKCS#8 PEM EC P-256 key (`openssl genpkey`, docs/operations.md).
fn held_key(
    algorithm: JwtAlgorithm,
    secret: &SecretString,
) -> Result<(EncodingKey, KeyMaterial), ConfigError> {
    let name = "JWT_SIGNING_SECRET_ID";
    let pem = secret.expose_secret().trim().as_bytes();
    let not_a_key = |error: &dyn std::fmt::Display| {
        invalid_key(name, format!("not a {} key: {error}", algorithm.name()))
    };
    let encoding_key = match algorithm {
        JwtAlgorithm::EdDSA => ed25519_key(secret)?,
        JwtAlgorithm::Rs256 => EncodingKey::from_rsa_pem(pem).map_err(|e| not_a_key(&e))?,
        JwtAlgorithm::Es256 => EncodingKey::from_ec_pem(pem).map_err(|e| not_a_key(&e))?,
    };
    let jwk =
        Jwk::from_encoding_key(&encoding_key, algorithm.algorithm()).map_err(|e| not_a_key(&e))?;
    let material = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(params) => KeyMaterial::Ed25519X(params.x.clone()),
        _ => {
            let public =
                PublicKey::from_jwk(jwk, algorithm.algorithm()).map_err(|e| not_a_key(&e))?;
            let json = serde_json::to_string(&public.jwk).map_err(|e| invalid_key(name, e))?;
            KeyMaterial::Jwk(json)
        }
    };
    Ok((encoding_key, material))
}

/// The key of a public JWK (JSON): its algorithm is its kind's (RSA: RS256, EC P-256: ES256,
/// OKP Ed25519: EdDSA), and its `alg`, if any, must name that one. A JWK with a private or
/// symmetric member is refused, not stripped: it is a key that must not be where it was found.
fn public_jwk(json: &str) -> Result<PublicKey, String> {
    const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];
    let value: serde_json::Value = serde_json::from_str(json).map_err(|error| error.to_string())?;
    if let Some(member) = PRIVATE_MEMBERS
        .iter()
        .find(|member| value.get(**member).is_some())
    {
        return Err(format!(
            "a JWK with the private or secret member \"{member}\""
        ));
    }
    let jwk: Jwk = serde_json::from_value(value).map_err(|error| error.to_string())?;
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        _ => return Err("a JWK of no signing key kind this service verifies".to_owned()),
    };
    if let Some(alg) = jwk.common.key_algorithm
        && alg != KeyAlgorithm::from(algorithm)
    {
        return Err(format!(
            "a JWK whose alg {alg:?} is not its key's, {algorithm:?}"
        ));
    }
    PublicKey::from_jwk(jwk, algorithm)
}

/// `JWT_PREVIOUS_PUBLIC_KEY`: an Ed25519 key's `x`, a public JWK (as `/.well-known/jwks.json`
/// serves it), or a PEM public key (`openssl pkey -pubout`; its line breaks may be spaces).
fn previous_public_key(value: &str) -> Result<VerificationKey, String> {
    const PEM_BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
    const PEM_END: &str = "-----END PUBLIC KEY-----";
    let value = value.trim();
    if let Some(body) = value.strip_prefix(PEM_BEGIN) {
        let body = body
            .strip_suffix(PEM_END)
            .ok_or("a PEM key without its end line")?;
        let base64: String = body.split_whitespace().collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(base64)
            .map_err(|error| format!("a PEM key that is not base64: {error}"))?;
        return PublicKey::from_spki_der(&der).map(|key| VerificationKey::from_public(key, None));
    }
    if value.starts_with('{') {
        return public_jwk(value).map(|key| VerificationKey::from_public(key, None));
    }
    VerificationKey::from_material(&KeyMaterial::Ed25519X(value.to_owned()), None)
}

/// The signer of a key held from a secret, and the key that verifies its tokens; it publishes
/// that key under `publication`.
fn held_signer(
    config: &Config,
    secret: &SecretString,
    publication: Option<PublicationKey>,
) -> Result<(Signer, VerificationKey), ConfigError> {
    let publication = publication.ok_or(ConfigError::Missing("KEY_PUBLICATION_SECRET_ID"))?;
    let (encoding_key, material) = held_key(config.jwt_algorithm, secret)?;
    let key = VerificationKey::from_material(&material, None)
        .map_err(|e| invalid_key("JWT_SIGNING_SECRET_ID", e))?;
    let signer = HeldKey {
        kid: key.kid.clone(),
        algorithm: key.algorithm,
        material,
        encoding_key,
        published_until: AtomicU64::new(0),
        publication,
    };
    Ok((Signer::Held(signer), key))
}

/// The keys of a rotation's previous signer: its KMS key's, and `JWT_PREVIOUS_PUBLIC_KEY`.
fn previous_keys(
    config: &Config,
    previous_kms: Option<PublicKey>,
) -> Result<Vec<VerificationKey>, ConfigError> {
    let mut keys: Vec<VerificationKey> = previous_kms
        .map(|previous| VerificationKey::from_public(previous, None))
        .into_iter()
        .collect();
    if let Some(previous) = &config.jwt_previous_public_key {
        keys.push(
            previous_public_key(previous).map_err(|e| invalid_key("JWT_PREVIOUS_PUBLIC_KEY", e))?,
        );
    }
    Ok(keys)
}

impl TokenIssuer {
    /// `signing_key` is the secret holding the private key, for the functions that sign with a
    /// key they hold; `asymmetric` the RS256/ES256 keys of the configuration (KMS, a local
    /// file). Verifiers also trust the keys the signers publish in `signing_keys` whose MAC
    /// `publication` verifies (whatever `JWT_ALGORITHM`, so that tokens signed before a move
    /// to another key or algorithm verify). A signer holding its key needs `publication` to
    /// publish it.
    pub fn new(
        config: &Config,
        signing_key: Option<&SecretString>,
        asymmetric: AsymmetricKeys,
        publication: Option<PublicationKey>,
        signing_keys: SigningKeysTable,
        clock: Clock,
    ) -> Result<Self, ConfigError> {
        let held = signing_key
            .map(|secret| held_signer(config, secret, publication.clone()))
            .transpose()?;
        let (signer, own_keys) = match (held, asymmetric.current) {
            (Some(_), Some(_)) => {
                return Err(invalid_key(
                    "JWT_SIGNING_SECRET_ID",
                    "a key in a secret beside a key in KMS or a local key file",
                ));
            }
            (Some((held, key)), None) => (Some(held), vec![key]),
            (None, Some(current)) => {
                let key = VerificationKey::from_public(current.public.clone(), None);
                (Some(Signer::Configured(Box::new(current))), vec![key])
            }
            (None, None) => (None, Vec::new()),
        };
        let previous_keys = previous_keys(config, asymmetric.previous)?;
        Ok(Self {
            signer,
            own_keys,
            previous_keys,
            algorithm: config.jwt_algorithm,
            publication,
            signing_keys,
            clock,
            published: Mutex::new(PublishedKeys::default()),
            issuer: Issuer::new(&config.jwt_issuer),
            audience: config.jwt_audience.clone(),
            scope: config.scopes.join(" "),
            refresh_audience: config.jwt_refresh_audience.clone(),
            access_ttl: config.access_token_ttl_seconds,
            refresh_ttl: config.refresh_token_ttl_seconds,
        })
    }

    pub(crate) fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// Whether this function has a signing key: a private key it holds (only the functions that
    /// sign tokens read the secret), or a KMS key id (every function that signs or verifies has
    /// one; IAM lets only the signing functions use it to sign).
    pub fn can_sign(&self) -> bool {
        self.signer.is_some()
    }

    /// Learns the issuer from the id of the API a request came through, when `JWT_ISSUER` is
    /// unset. API Gateway sets the id (clients cannot); the first one is kept for the life of
    /// the instance (a function serves one API).
    pub fn learn_issuer(&self, api_id: Option<&str>) {
        let Issuer::ThisApi { region, learned } = &self.issuer else {
            return;
        };
        if learned.get().is_some() {
            return;
        }
        match api_id.and_then(|id| api_url(id, region)) {
            Some(url) => {
                if learned.set(url).is_ok() {
                    tracing::info!(issuer = learned.get().map(String::as_str), "issuer learned");
                }
            }
            None => tracing::warn!("a request without an API id: the issuer is still unknown"),
        }
    }

    /// The `iss` of this service's tokens. Unknown only when `JWT_ISSUER` is unset and no
    /// request through API Gateway has come yet: a misconfiguration (500).
    pub fn issuer(&self) -> Result<&str, AuthError> {
        match &self.issuer {
            Issuer::Configured(issuer) => Ok(issuer),
            Issuer::ThisApi { learned, .. } => learned.get().map(String::as_str).ok_or_else(|| {
                AuthError::internal("the issuer is unknown: set JWT_ISSUER outside API Gateway")
            }),
        }
    }

    /// The algorithms of the discovery document: the one this deployment signs with, then
    /// those of the other keys it publishes (a previous key's, during a move between them).
    pub async fn algorithms(&self) -> Result<Vec<&'static str>, AuthError> {
        let mut algorithms = vec![self.algorithm.name()];
        for jwk in self.jwks().await?.keys {
            let name = match jwk.common.key_algorithm {
                Some(KeyAlgorithm::RS256) => "RS256",
                Some(KeyAlgorithm::ES256) => "ES256",
                Some(KeyAlgorithm::EdDSA) => "EdDSA",
                _ => continue,
            };
            if !algorithms.contains(&name) {
                algorithms.push(name);
            }
        }
        Ok(algorithms)
    }

    /// The scopes access tokens carry.
    pub fn scopes(&self) -> Vec<&str> {
        self.scope.split(' ').filter(|s| !s.is_empty()).collect()
    }

    fn audience_of(&self, token_type: TokenType) -> &str {
        match token_type {
            TokenType::Access => &self.audience,
            TokenType::Refresh => &self.refresh_audience,
        }
    }

    /// The public keys (current first), as served at `/.well-known/jwks.json`: this function's
    /// own, the trusted published ones (re-read at most once a minute) and the configured
    /// previous one.
    pub async fn jwks(&self) -> Result<JwkSet, AuthError> {
        let now = self.clock.now();
        let mut published = self.published.lock().await;
        if published.may_reload() {
            self.reload(&mut published, now).await?;
        }
        let mut keys: Vec<Jwk> = Vec::new();
        let mut seen = Vec::new();
        let live_published = published.keys.iter().filter(|key| key.is_live(now));
        for key in self
            .own_keys
            .iter()
            .chain(live_published)
            .chain(&self.previous_keys)
        {
            if !seen.contains(&key.kid) {
                seen.push(key.kid.clone());
                keys.push(key.jwk.clone());
            }
        }
        Ok(JwkSet { keys })
    }

    /// Re-reads the published keys, keeping only the trusted ones (see `trusted`).
    async fn reload(&self, published: &mut PublishedKeys, now: u64) -> Result<(), AuthError> {
        let Some(publication) = &self.publication else {
            tracing::warn!(
                "no key publication secret (KEY_PUBLICATION_SECRET_ID): published keys are not trusted"
            );
            published.loaded_at = Some(Instant::now());
            return Ok(());
        };
        let stored = self.signing_keys.live_keys(now).await?;
        published.keys = stored
            .iter()
            .filter_map(|stored| trusted(publication, stored))
            .collect();
        published.loaded_at = Some(Instant::now());
        Ok(())
    }

    /// The key `kid` names, re-reading the published keys when it is unknown (at most once a
    /// minute).
    async fn decoding_key(&self, kid: &str) -> Result<(DecodingKey, Algorithm), AuthError> {
        let configured = self.own_keys.iter().chain(&self.previous_keys);
        if let Some(key) = configured.clone().find(|key| key.kid == kid) {
            return Ok((key.decoding_key.clone(), key.algorithm));
        }
        let now = self.clock.now();
        let mut published = self.published.lock().await;
        if published.find(kid, now).is_none() && published.may_reload() {
            self.reload(&mut published, now).await?;
        }
        published
            .find(kid, now)
            .map(|key| (key.decoding_key.clone(), key.algorithm))
            .ok_or(AuthError::InvalidToken)
    }

    /// Publishes the signer's key before the first token it signs, and renews the publication
    /// before it could end while a token signed now is still valid.
    async fn ensure_published(&self, signer: &HeldKey, now: u64) -> Result<(), AuthError> {
        // Only Ed25519 keys ever signed refresh JWTs (`refresh_tokens::legacy`): any other key
        // signs access tokens alone, so its publication (and trust) ends a day after its last.
        let longest = match signer.material {
            KeyMaterial::Ed25519X(_) => self.access_ttl.max(self.refresh_ttl),
            KeyMaterial::Jwk(_) => self.access_ttl,
        };
        let longest_token = now + longest;
        let published_until = signer.published_until.load(Ordering::Acquire);
        if published_until >= longest_token + RENEW_PUBLICATION_BELOW_SECONDS {
            return Ok(());
        }
        let until = longest_token + PUBLICATION_MARGIN_SECONDS;
        let mac = signer
            .publication
            .seal(&signer.kid, &signer.material, until);
        match self
            .signing_keys
            .publish(&signer.kid, &signer.material, now, until, &mac)
            .await
        {
            Ok(()) => {
                signer.published_until.fetch_max(until, Ordering::AcqRel);
                Ok(())
            }
            // The current publication still covers a token signed now: renew next time.
            Err(error) if published_until >= longest_token => {
                tracing::warn!(%error, "renewing the signing key's publication failed");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    async fn sign(&self, signer: &Signer, claims: &Claims) -> Result<String, AuthError> {
        let (algorithm, kid) = match signer {
            Signer::Held(signer) => (signer.algorithm, &signer.kid),
            Signer::Configured(signer) => (signer.algorithm(), &signer.public.kid),
        };
        let mut header = Header::new(algorithm);
        header.typ = Some(claims.token_type.typ().to_owned());
        header.kid = Some(kid.clone());
        match signer {
            Signer::Held(signer) => jsonwebtoken::encode(&header, claims, &signer.encoding_key)
                .map_err(AuthError::internal),
            Signer::Configured(signer) => {
                let message = format!("{}.{}", base64_json(&header)?, base64_json(claims)?);
                let signature = signer.sign(message.as_bytes()).await?;
                Ok(format!("{message}.{signature}"))
            }
        }
    }

    /// A new access + refresh pair for `user_id` in session `session_id`: the access token is
    /// the one token signed, the refresh token is opaque (`refresh_tokens`). A function without
    /// the signing key answers 500: it was deployed without a capability its route needs.
    pub async fn issue(
        &self,
        (user_id, session_id): (&str, &str),
        extra: &ExtraClaims,
        now: u64,
    ) -> Result<IssuedTokens, AuthError> {
        let refresh = new_refresh_token(user_id, session_id)?;
        let mut claims = self.claims(TokenType::Access, user_id, session_id, now)?;
        claims.app = extra.app.in_token()?;
        claims.hook = extra.hook.clone();
        let access = self.sign_claims(&claims, now).await?;
        Ok(IssuedTokens {
            refresh_id_hash: refresh.id_hash,
            refresh_expires_at: now + self.refresh_ttl,
            pair: TokenPair {
                access,
                refresh: refresh.token,
                token_type: "Bearer",
                expires_in: self.access_ttl,
            },
        })
    }

    /// The claims of a token of `token_type` for `user_id` in session `session_id`, issued at
    /// `now`.
    fn claims(
        &self,
        token_type: TokenType,
        user_id: &str,
        session_id: &str,
        now: u64,
    ) -> Result<Claims, AuthError> {
        let ttl = match token_type {
            TokenType::Access => self.access_ttl,
            TokenType::Refresh => self.refresh_ttl,
        };
        Ok(Claims {
            sub: user_id.to_owned(),
            sid: session_id.to_owned(),
            iat: now,
            nbf: Some(now),
            exp: now + ttl,
            iss: self.issuer()?.to_owned(),
            aud: self.audience_of(token_type).to_owned(),
            jti: uuid::Uuid::new_v4().to_string(),
            token_type,
            scope: (token_type == TokenType::Access).then(|| self.scope.clone()),
            app: None,
            hook: serde_json::Map::new(),
        })
    }

    /// `claims` signed (the held key published first, as of `now`, when it signs).
    async fn sign_claims(&self, claims: &Claims, now: u64) -> Result<String, AuthError> {
        let signer = self.signer.as_ref().ok_or_else(|| {
            AuthError::internal(
                "this function has no signing key (JWT_SIGNING_SECRET_ID or JWT_KMS_KEY_ID)",
            )
        })?;
        if let Signer::Held(signer) = signer {
            self.ensure_published(signer, now).await?;
        }
        self.sign(signer, claims).await
    }

    /// LEGACY, test support only (remove with `refresh_tokens::legacy`): a refresh JWT exactly
    /// as this service issued them before opaque refresh tokens, and what the sessions table
    /// kept of it (the SHA-256 of its `jti`), so that tests can show that the ones clients
    /// still hold keep refreshing. Nothing in the service calls it.
    #[doc(hidden)]
    pub async fn legacy_refresh_jwt(
        &self,
        user_id: &str,
        session_id: &str,
        now: u64,
    ) -> Result<(String, String), AuthError> {
        let claims = self.claims(TokenType::Refresh, user_id, session_id, now)?;
        let token = self.sign_claims(&claims, now).await?;
        Ok((token, hash_opaque_token(&claims.jti)))
    }

    /// Checks the `typ` header, the `kid`, the signature (in the algorithm of the key `kid`
    /// names, and no other), `exp` and `nbf` (no leeway), `iss`,
    /// `aud` (access and refresh tokens have different audiences) and the token type claim, so
    /// one kind of token is never accepted as the other.
    pub async fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::InvalidToken)?;
        if header.typ.as_deref() != Some(expected.typ()) {
            return Err(AuthError::InvalidToken);
        }
        let kid = header.kid.ok_or(AuthError::InvalidToken)?;
        let issuer = self.issuer()?;
        let (key, algorithm) = self.decoding_key(&kid).await?;
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[self.audience_of(expected)]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|_| AuthError::InvalidToken)?
            .claims;
        if claims.token_type != expected {
            return Err(AuthError::InvalidToken);
        }
        // Against the service's clock, as `iat` was set (jsonwebtoken checks the system's).
        if claims.nbf.is_some_and(|nbf| nbf > self.clock.now()) {
            return Err(AuthError::InvalidToken);
        }
        Ok(claims)
    }
}

/// A JWS part: `value`'s JSON, base64url encoded.
fn base64_json(value: &impl Serialize) -> Result<String, AuthError> {
    serde_json::to_vec(value)
        .map(|json| URL_SAFE_NO_PAD.encode(json))
        .map_err(AuthError::internal)
}

/// The verification key of a published item, if its MAC verifies and its `kid` is its key's
/// thumbprint; otherwise none, logged by `kid` (public: the JWKS serves it) and never the MAC.
fn trusted(publication: &PublicationKey, stored: &PublishedKey) -> Option<VerificationKey> {
    let vouched = stored.mac.as_deref().is_some_and(|mac| {
        publication.vouches_for(&stored.kid, &stored.material, stored.expires_at, mac)
    });
    if !vouched {
        tracing::warn!(kid = %stored.kid, "skipped a published key without a valid MAC");
        return None;
    }
    match VerificationKey::from_material(&stored.material, Some(stored.expires_at)) {
        Ok(key) if key.kid == stored.kid => Some(key),
        Ok(_) => {
            tracing::warn!(kid = %stored.kid, "skipped a published key that does not match its kid");
            None
        }
        Err(error) => {
            tracing::warn!(kid = %stored.kid, %error, "skipped a published key that is invalid");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test keys (openssl genpkey), of kinds and sizes no token may be signed or verified with.
    const RSA_1024_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBALSxM8fcJSk0/LxJ\nSqEgx9zDvepO/9UKzlF/ck6p7eMzhPXQgbe/BC+OUEBDMYARZYLNQB1/IO557uqT\n0EkocR7KCuNqRhCKE9O1m3Jpi4kU5w0NeOuABGRbcQlWrJz821udaiEPR5/i++VQ\nRU2itXpyd8RAI6ChNJn3roeOpZCXAgMBAAECgYAqbdXH33TGaU/Tcq5YiZcEyt3k\nkCpYv1HVJ0UTHanjiOx2wEBFglAcTqGfhWexN+SLQ2EDzB9SgEVOxejJ1PpCqCSM\nM6s2UAg4sLz+EFg/0QqyUYyxxidVQ761AcESQ3kTMqBXfZ+vLUcLOsnOcmCvIIfU\nJqo0X3jmHSodRNeeCQJBAOvmmhIRyvrSjzJSGEHOOMNTEZfzzqQ/goZpWVXJNjD9\nuN3GWcogAedP392+iRSdJnPJmcvG+PlkxYq4jdpxUusCQQDEFmguxod7JpKZczFx\ncfQN/0HOM8tQoUaXMn6BgsRcUhrLKLV0UBPPr0X6c9l+6+dQKRsPB9kEiEFRqJj8\nvFYFAkBwN9rDDcPJXbDQ90yiwT8va6zK5ChA6hVla2gb7wPgelIe7eR4ypEdQFn2\nWlVLgRZxrk2DKrv1p4JxYynX6GDRAkBtXroZbO5gSDF4mYG4bwDbVcaUhtseS/Yd\nmzJodlGj1L/RFRGwoIGMU4zKlxd27YmFcof/KDdpib41F77NKRcpAkEArrqFXUyb\nJDnQrwhRV/3+5Jj79DLGLbSkiA9syzv7czqGzl3EPIAyajIpZt+rhmSJX0Y2b3u3\nTeP1YczRcHaiqA==\n-----END PRIVATE KEY-----";
    const P384_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDDUV5kRFhIDy7WvCySF\nqJSCLZKpG3wTAJuGhWRbuVyR+mDPTg8hcNYCveamriorsNChZANiAASX5RytxKI0\nO+LkMOK1RxOvO9ttxun97ASbmEe6S5jZKHLaiuKVdQQNKf/KcSRgmo9jM5QwHcCU\nlv3yRn06j45caAjqA6fhqcv5MrHyB6j20qedxWPwRS/nMtegunorGB8=\n-----END PRIVATE KEY-----";
    const RSA_1024_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC0sTPH3CUpNPy8SUqhIMfcw73q\nTv/VCs5Rf3JOqe3jM4T10IG3vwQvjlBAQzGAEWWCzUAdfyDuee7qk9BJKHEeygrj\nakYQihPTtZtyaYuJFOcNDXjrgARkW3EJVqyc/NtbnWohD0ef4vvlUEVNorV6cnfE\nQCOgoTSZ966HjqWQlwIDAQAB\n-----END PUBLIC KEY-----";
    const P384_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEl+UcrcSiNDvi5DDitUcTrzvbbcbp/ewE\nm5hHukuY2Shy2orilXUEDSn/ynEkYJqPYzOUMB3AlJb98kZ9Oo+OXGgI6gOn4anL\n+TKx8geo9tKnncVj8EUv5zLXoLp6Kxgf\n-----END PUBLIC KEY-----";
    const RSA_2048_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA3gvkpCKlnHszGr250M1K\njx6nWiRyOz2HRbGqI9jemXNyEDgq5Rv27g0X6MPd28mLrYyE5j4RQsjm+V2qxehT\nq1Gi7QSgJ+YSriH5528JjN5clENLTEJjCeUBQQBc9Agknknr6LfUUYQft0bmEj7l\n+TamGW4cgRiFLUaFO9rzah01v+KfirGeGP9lAQ6x1fd57e9CuAcxZY2QHFFpGDhm\n4syh0UuqyYSQl+aqOiZtiqs+Ww46ix8wmhYp6rMbwTBJ0g+18jbtB7muOiyc+omJ\nbUSAW/tmZLy42ptl4rhThstpUYNa7GXwtcuJsJm0wdPoWvLILq230+bErXz25f4+\n/wIDAQAB\n-----END PUBLIC KEY-----";

    fn held(algorithm: JwtAlgorithm, pem: &str) -> Result<KeyMaterial, ConfigError> {
        held_key(algorithm, &SecretString::from(pem.to_owned())).map(|(_, material)| material)
    }

    #[test]
    fn a_secret_holds_only_a_key_of_its_algorithms_kind_and_size() {
        let refused = |result: Result<KeyMaterial, ConfigError>| {
            matches!(
                result,
                Err(ConfigError::Invalid {
                    name: "JWT_SIGNING_SECRET_ID",
                    ..
                })
            )
        };
        assert!(
            refused(held(JwtAlgorithm::Rs256, RSA_1024_PRIVATE)),
            "RSA 1024"
        );
        assert!(refused(held(JwtAlgorithm::Es256, P384_PRIVATE)), "P-384");
        assert!(
            refused(held(JwtAlgorithm::Es256, RSA_1024_PRIVATE)),
            "RSA for ES256"
        );
        assert!(refused(held(
            JwtAlgorithm::Rs256,
            "not a key at all, but long enough"
        )));
    }

    #[test]
    fn a_previous_public_key_is_an_x_a_public_jwk_or_a_pem_of_a_key_tokens_may_use() {
        let rsa = previous_public_key(&RSA_2048_PUBLIC.replace('\n', " ")).unwrap();
        assert_eq!(rsa.algorithm, Algorithm::RS256);
        // Its JWK as the JWKS serves it, and without `alg`.
        let served = serde_json::to_string(&rsa.jwk).unwrap();
        assert_eq!(previous_public_key(&served).unwrap().kid, rsa.kid);
        let mut bare = serde_json::to_value(&rsa.jwk).unwrap();
        for member in ["alg", "kid", "use"] {
            bare.as_object_mut().unwrap().remove(member);
        }
        assert_eq!(previous_public_key(&bare.to_string()).unwrap().kid, rsa.kid);
        let ed25519 = VerificationKey::from_material(
            &KeyMaterial::Ed25519X("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".to_owned()),
            None,
        )
        .unwrap();
        let okp = serde_json::to_string(&ed25519.jwk).unwrap();
        assert_eq!(
            previous_public_key(&okp).unwrap().algorithm,
            Algorithm::EdDSA
        );

        let mut wrong_alg = serde_json::to_value(&rsa.jwk).unwrap();
        wrong_alg["alg"] = "ES256".into();
        let mut private = serde_json::to_value(&rsa.jwk).unwrap();
        private["d"] = "AQAB".into();
        for (value, what) in [
            (RSA_1024_PUBLIC.to_owned(), "RSA 1024"),
            (P384_PUBLIC.to_owned(), "P-384"),
            (wrong_alg.to_string(), "an alg not its key's"),
            (private.to_string(), "a private member"),
            (
                r#"{"kty":"oct","k":"c2VjcmV0LWtleS0wMTIzNDU2Nzg5","alg":"RS256"}"#.to_owned(),
                "a symmetric key called RS256",
            ),
            ("-----BEGIN PUBLIC KEY----- AAAA".to_owned(), "no end line"),
        ] {
            assert!(previous_public_key(&value).is_err(), "{what}");
        }
    }

    #[test]
    fn the_known_ed25519_test_vector_gives_its_public_key() {
        // RFC 8032, section 7.1, TEST 1.
        let seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend((0..32).map(|i| u8::from_str_radix(&seed[2 * i..2 * i + 2], 16).unwrap()));
        let jwk =
            Jwk::from_encoding_key(&EncodingKey::from_ed_der(&der), Algorithm::EdDSA).unwrap();
        let jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(params) = jwk.algorithm else {
            panic!("not an OKP key");
        };
        let expected = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let x = URL_SAFE_NO_PAD.decode(params.x).unwrap();
        let hex: String = x.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }
}
