//! The RS256 and ES256 keys (`JWT_ALGORITHM`): the private key in AWS KMS, which signs each token
//! (`Sign`) and never hands the key out, its public half read once per cold start
//! (`GetPublicKey`); or, for local runs, a PEM file (`LOCAL_JWT_PRIVATE_KEY_FILE`). These keys are
//! trusted because the configuration names them (`JWT_KMS_KEY_ID`, `JWT_PREVIOUS_KMS_KEY_ID`), so
//! unlike the keys the signing functions hold (`tokens`) they are not published in the signing
//! keys table.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_kms::error::DisplayErrorContext;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyUsageType, MessageType, SigningAlgorithmSpec};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, KeyAlgorithm, PublicKeyUse, RSAKeyParameters, RSAKeyType,
    ThumbprintHash,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use crate::config::{AsymmetricKeySource, Config, ConfigError, JwtAlgorithm};
use crate::error::AuthError;

/// KMS signs a `RAW` message of at most 4096 bytes; a token's signing input is far shorter.
/// (`DIGEST` would lift the limit, but the test emulator, moto, does not implement it.)
const KMS_MAX_MESSAGE_BYTES: usize = 4096;

/// A public key tokens are verified with: its JWK as the JWKS serves it (`kty`, the key, `kid`
/// = its RFC 7638 thumbprint, `alg`, `use: sig`) and the key jsonwebtoken verifies with.
#[derive(Clone)]
pub struct PublicKey {
    pub kid: String,
    pub jwk: Jwk,
    pub decoding_key: DecodingKey,
    pub algorithm: Algorithm,
}

impl PublicKey {
    /// The key of `jwk` (its parameters only are read) for `algorithm`, which its kind must
    /// fit: RSA of 2048 to 4096 bits for RS256, EC P-256 for ES256, Ed25519 for EdDSA.
    pub fn from_jwk(mut jwk: Jwk, algorithm: Algorithm) -> Result<Self, String> {
        fits(&jwk.algorithm, algorithm)?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|error| error.to_string())?;
        jwk.common = CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::from(algorithm)),
            key_id: Some(kid.clone()),
            ..CommonParameters::default()
        };
        Ok(Self {
            decoding_key: DecodingKey::from_jwk(&jwk).map_err(|error| error.to_string())?,
            kid,
            jwk,
            algorithm,
        })
    }

    /// The key of a DER SubjectPublicKeyInfo (what KMS `GetPublicKey` returns): RSA (RS256) or
    /// EC P-256 (ES256); any other key is refused.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, String> {
        use p256::pkcs8::DecodePublicKey as _;
        use rsa::traits::PublicKeyParts as _;
        let (parameters, algorithm) = if let Ok(rsa) = rsa::RsaPublicKey::from_public_key_der(der) {
            let parameters = AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n: URL_SAFE_NO_PAD.encode(rsa.n().to_bytes_be()),
                e: URL_SAFE_NO_PAD.encode(rsa.e().to_bytes_be()),
            });
            (parameters, Algorithm::RS256)
        } else if let Ok(ec) = p256::PublicKey::from_public_key_der(der) {
            use p256::elliptic_curve::sec1::ToEncodedPoint as _;
            let point = ec.to_encoded_point(false);
            let (Some(x), Some(y)) = (point.x(), point.y()) else {
                return Err("an EC key without coordinates".to_owned());
            };
            let parameters = AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x: URL_SAFE_NO_PAD.encode(x),
                y: URL_SAFE_NO_PAD.encode(y),
            });
            (parameters, Algorithm::ES256)
        } else {
            return Err("not an RSA or EC P-256 public key".to_owned());
        };
        let jwk = Jwk {
            common: CommonParameters::default(),
            algorithm: parameters,
        };
        Self::from_jwk(jwk, algorithm)
    }
}

/// The RSA key sizes a key may have: KMS's `RSA_2048` up to what verifiers take (4096 bits).
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// Whether a key of these parameters may sign or verify `algorithm`.
fn fits(parameters: &AlgorithmParameters, algorithm: Algorithm) -> Result<(), String> {
    match (algorithm, parameters) {
        (Algorithm::RS256, AlgorithmParameters::RSA(rsa)) => {
            let modulus = URL_SAFE_NO_PAD
                .decode(&rsa.n)
                .map_err(|_| "an RSA modulus that is not base64url".to_owned())?;
            let bits = match modulus.iter().position(|byte| *byte != 0) {
                Some(first) => {
                    (modulus.len() - first) * 8 - modulus[first].leading_zeros() as usize
                }
                None => 0,
            };
            if RSA_BITS.contains(&bits) {
                Ok(())
            } else {
                Err(format!(
                    "an RSA key of {bits} bits (from {} to {})",
                    RSA_BITS.start(),
                    RSA_BITS.end()
                ))
            }
        }
        (Algorithm::ES256, AlgorithmParameters::EllipticCurve(ec))
            if ec.curve == EllipticCurve::P256 =>
        {
            Ok(())
        }
        (Algorithm::EdDSA, AlgorithmParameters::OctetKeyPair(okp))
            if okp.curve == EllipticCurve::Ed25519 =>
        {
            Ok(())
        }
        (algorithm, _) => Err(format!("not a key for {algorithm:?}")),
    }
}

/// Where the private key signs.
enum PrivateKey {
    Kms {
        client: aws_sdk_kms::Client,
        key_id: String,
    },
    /// Local runs only (refused on Lambda by `Config`).
    Local(EncodingKey),
}

/// The RS256 or ES256 signing key and its public key.
pub struct AsymmetricSigner {
    key: PrivateKey,
    pub public: PublicKey,
}

impl AsymmetricSigner {
    pub fn algorithm(&self) -> Algorithm {
        self.public.algorithm
    }

    /// The JWS signature (base64url) of `message` (`header.payload`), in JWS form: for ES256 the
    /// raw 64-byte `r || s`, converted from the DER signature KMS returns.
    pub async fn sign(&self, message: &[u8]) -> Result<String, AuthError> {
        let (client, key_id) = match &self.key {
            PrivateKey::Local(key) => {
                return jsonwebtoken::crypto::sign(message, key, self.algorithm())
                    .map_err(AuthError::internal);
            }
            PrivateKey::Kms { client, key_id } => (client, key_id),
        };
        if message.len() > KMS_MAX_MESSAGE_BYTES {
            return Err(AuthError::internal("a token too long for KMS to sign"));
        }
        let spec = match self.algorithm() {
            Algorithm::ES256 => SigningAlgorithmSpec::EcdsaSha256,
            _ => SigningAlgorithmSpec::RsassaPkcs1V15Sha256,
        };
        let output = client
            .sign()
            .key_id(key_id)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(spec)
            .send()
            .await
            .map_err(|error| AuthError::unavailable(DisplayErrorContext(error).to_string()))?;
        let signature = output
            .signature
            .ok_or_else(|| AuthError::internal("KMS returned no signature"))?
            .into_inner();
        let signature = match self.algorithm() {
            Algorithm::ES256 => p256::ecdsa::Signature::from_der(&signature)
                .map_err(|error| AuthError::internal(format!("KMS's ECDSA signature: {error}")))?
                .to_bytes()
                .to_vec(),
            _ => signature,
        };
        Ok(URL_SAFE_NO_PAD.encode(signature))
    }
}

/// The RS256/ES256 keys of a function: the current one (it signs, and verifies) and the
/// previous one (verifies only), each when configured.
#[derive(Default)]
pub struct AsymmetricKeys {
    pub current: Option<AsymmetricSigner>,
    pub previous: Option<PublicKey>,
}

impl AsymmetricKeys {
    /// Reads the public keys of the configured KMS keys (one `GetPublicKey` each, in parallel)
    /// and the local PEM key, if any.
    pub async fn fetch(config: &Config, kms: &aws_sdk_kms::Client) -> Result<Self, ConfigError> {
        let current = async {
            match &config.jwt_asymmetric_key {
                Some(AsymmetricKeySource::Kms { key_id }) => {
                    let public =
                        public_key(kms, key_id, "JWT_KMS_KEY_ID", Some(config.jwt_algorithm))
                            .await?;
                    Ok(Some(AsymmetricSigner {
                        key: PrivateKey::Kms {
                            client: kms.clone(),
                            key_id: key_id.clone(),
                        },
                        public,
                    }))
                }
                other => local_signer(config.jwt_algorithm, other.as_ref()),
            }
        };
        let previous = async {
            match &config.jwt_previous_kms_key_id {
                Some(key_id) => public_key(kms, key_id, "JWT_PREVIOUS_KMS_KEY_ID", None)
                    .await
                    .map(Some),
                None => Ok(None),
            }
        };
        let (current, previous) = tokio::try_join!(current, previous)?;
        Ok(Self { current, previous })
    }

    /// The keys of `config` without any network call: KMS keys are refused.
    pub fn local(config: &Config) -> Result<Self, ConfigError> {
        let unreadable = |name| ConfigError::SecretUnreadable {
            name,
            reason: "KMS keys are read by App::from_env (or AsymmetricKeys::fetch)".to_owned(),
        };
        if config.jwt_previous_kms_key_id.is_some() {
            return Err(unreadable("JWT_PREVIOUS_KMS_KEY_ID"));
        }
        match &config.jwt_asymmetric_key {
            Some(AsymmetricKeySource::Kms { .. }) => Err(unreadable("JWT_KMS_KEY_ID")),
            other => Ok(Self {
                current: local_signer(config.jwt_algorithm, other.as_ref())?,
                previous: None,
            }),
        }
    }
}

/// The signer of a local PEM key (PKCS#8, as `openssl genpkey` writes it), if one is configured.
fn local_signer(
    algorithm: JwtAlgorithm,
    source: Option<&AsymmetricKeySource>,
) -> Result<Option<AsymmetricSigner>, ConfigError> {
    let Some(AsymmetricKeySource::LocalPem(path)) = source else {
        return Ok(None);
    };
    let name = "LOCAL_JWT_PRIVATE_KEY_FILE";
    let invalid = |reason: String| ConfigError::Invalid { name, reason };
    let pem = std::fs::read(path)
        .map_err(|error| invalid(format!("cannot read '{}': {error}", path.display())))?;
    let jwt_algorithm = algorithm.algorithm();
    let key = match algorithm {
        JwtAlgorithm::Rs256 => EncodingKey::from_rsa_pem(&pem),
        JwtAlgorithm::Es256 => EncodingKey::from_ec_pem(&pem),
        JwtAlgorithm::EdDSA => return Err(invalid("is for RS256 and ES256 keys".to_owned())),
    }
    .map_err(|error| invalid(format!("not a {} private key: {error}", algorithm.name())))?;
    let jwk = Jwk::from_encoding_key(&key, jwt_algorithm).map_err(|e| invalid(e.to_string()))?;
    let public = PublicKey::from_jwk(jwk, jwt_algorithm).map_err(invalid)?;
    Ok(Some(AsymmetricSigner {
        key: PrivateKey::Local(key),
        public,
    }))
}

/// The public key of KMS key `key_id`, which must be a signing key; of `expected`'s kind
/// when given (the current key must match `JWT_ALGORITHM`; the previous one may be of either).
async fn public_key(
    kms: &aws_sdk_kms::Client,
    key_id: &str,
    name: &'static str,
    expected: Option<JwtAlgorithm>,
) -> Result<PublicKey, ConfigError> {
    let unreadable = |reason: String| ConfigError::SecretUnreadable { name, reason };
    let output = kms
        .get_public_key()
        .key_id(key_id)
        .send()
        .await
        .map_err(|error| unreadable(DisplayErrorContext(error).to_string()))?;
    if output.key_usage != Some(KeyUsageType::SignVerify) {
        return Err(unreadable("not a SIGN_VERIFY key".to_owned()));
    }
    let der = output
        .public_key
        .ok_or_else(|| unreadable("KMS returned no public key".to_owned()))?;
    // The key itself tells its kind (RSA: RS256; EC P-256: ES256; any other is refused).
    let key = PublicKey::from_spki_der(der.as_ref()).map_err(unreadable)?;
    if let Some(expected) = expected
        && key.algorithm != expected.algorithm()
    {
        return Err(ConfigError::Invalid {
            name,
            reason: format!(
                "a key for {:?} cannot sign {} (JWT_ALGORITHM)",
                key.algorithm,
                expected.name()
            ),
        });
    }
    Ok(key)
}

/// The KMS client of the signing functions and verifiers: `Sign` is on the login path, so it
/// gives up sooner than the DynamoDB client (0.5 s to connect, 1 s an attempt, 2 s in all, two
/// attempts): one token is signed per login or refresh, so its worst case grows by 2 s.
pub fn kms_client(aws: &SdkConfig) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::from_conf(kms_config(aws).build())
}

/// The settings of `kms_client`, for callers that add to them (tests: an endpoint, a recorder).
pub fn kms_config(aws: &SdkConfig) -> aws_sdk_kms::config::Builder {
    aws_sdk_kms::config::Builder::from(aws)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(500))
                .operation_attempt_timeout(Duration::from_secs(1))
                .operation_timeout(Duration::from_secs(2))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(2))
}
