//! Passwords: validation, argon2id hashing off the async executor, and timing-safe verification.

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::password_hash::{self, phc::PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex, mpsc};

use crate::error::AuthError;
use crate::imported_hash::ImportedHash;

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 128;

/// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

/// A well-formed hash (random salt and output, so no known password matches) with the parameters
/// above: verified when the phone is unknown so that both paths do the same argon2 work. A unit
/// test keeps its parameters in step.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$lSqi/5S0UTZbt3gDCAWsIQ$ew/RiV0oYbDbgmuEatp5ebzS0NSTNcmGdaBsdsKDpvA";

/// The 20,000 most common passwords (19,640 once lowercased and deduplicated), which NIST SP
/// 800-63B 5.1.1.2 asks to refuse: Django's CommonPasswordValidator list by Royce Williams,
/// BSD-3-Clause (`shared/data/common-passwords.LICENSE`); `scripts/common-passwords` regenerates
/// it.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .collect()
});

/// Case and surrounding spaces do not make a common password uncommon.
fn is_common(password: &str) -> bool {
    COMMON_PASSWORDS.contains(password.trim().to_lowercase().as_str())
}

/// A password the user chose, checked against the policy. Wrapped so it cannot be logged or
/// serialised.
pub struct Password(SecretString);

impl Password {
    /// A newly chosen password: 8 to 128 characters (not bytes, so non-Latin passwords get the
    /// same range) and not a common one.
    pub fn new(raw: String) -> Result<Self, AuthError> {
        let chars = raw.chars().count();
        if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
            return Err(AuthError::InvalidRequest(format!(
                "Invalid field 'password': must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters."
            )));
        }
        if is_common(&raw) {
            return Err(AuthError::InvalidRequest(
                "Invalid field 'password': this password is too common; choose a less common one."
                    .into(),
            ));
        }
        Ok(Self(raw.into()))
    }

    /// The password itself, for a call that must send it (a Cognito pool being moved from).
    pub(crate) fn exposed(&self) -> &str {
        self.0.expose_secret()
    }

    /// A password presented at login: not length-checked (that would leak the policy), but it
    /// is still only ever held as a secret.
    pub fn presented(raw: String) -> Self {
        Self(raw.into())
    }
}

fn params() -> Result<Params, AuthError> {
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).map_err(AuthError::internal)
}

/// Salt and output lengths of a new hash: what the `argon2` crate's `PasswordHasher` used (16
/// and 32 bytes), so that hashes made before and after look alike.
const SALT_BYTES: usize = 16;
const OUTPUT_BYTES: usize = 32;

/// Argon2's working memory, kept and reused. Allocated per hash (as `PasswordHasher` does), the
/// 19 MiB either went back to the kernel after every hash, to be faulted in and zeroed again on
/// the next (about 4,900 page faults, a third of a login's CPU as system time), or, with glibc's
/// default thresholds, piled up in the heap (BENCHMARKS.md). A kept block is faulted in once. A
/// pool rather than one block per hashing thread, because jobs go to whichever thread is free:
/// one hash at a time (as in Lambda) then keeps one block, not one per core.
struct Memory {
    /// Blocks of `blocks` each, one per hash that ran at the same time, most recent last.
    kept: Mutex<Vec<Vec<Block>>>,
    blocks: usize,
}

impl Memory {
    const fn new(blocks: usize) -> Self {
        Self {
            kept: Mutex::new(Vec::new()),
            blocks,
        }
    }

    /// Runs `work` on at least `blocks` blocks: a kept block when it is large enough (hashes
    /// with our parameters, or smaller ones), else a new one, kept afterwards only if it has
    /// the usual size (a stored hash with larger parameters gets its memory for itself).
    fn with<T>(&self, blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
        let kept = match self.kept.lock() {
            Ok(mut kept) if blocks <= self.blocks => kept.pop(),
            _ => None,
        };
        let mut memory = kept.unwrap_or_else(|| vec![Block::new(); blocks.max(self.blocks)]);
        let result = work(&mut memory);
        if memory.len() == self.blocks
            && let Ok(mut kept) = self.kept.lock()
        {
            kept.push(memory);
        }
        result
    }

    #[cfg(test)]
    fn kept(&self) -> usize {
        self.kept.lock().map_or(0, |kept| kept.len())
    }
}

/// `MEMORY_KIB` blocks of 1 KiB (with one lane, argon2 uses exactly `m` blocks).
static MEMORY: Memory = Memory::new(MEMORY_KIB as usize);

/// Argon2 of `password` and `salt` into `output` on kept memory.
fn argon2_into(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    output: &mut [u8],
) -> Result<(), argon2::Error> {
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    MEMORY.with(blocks, |memory| {
        argon2.hash_password_into_with_memory(password, salt, output, memory)
    })
}

/// How every hash `hash_now` makes begins: the algorithm, version and parameters.
fn current_prefix() -> String {
    format!("$argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p={PARALLELISM}$")
}

/// A new PHC string for `password`: argon2id with the parameters above and a random salt, in
/// the format the `argon2` crate writes (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
fn hash_now(password: &[u8]) -> Result<String, AuthError> {
    let params = params()?;
    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt).map_err(|error| AuthError::internal(error.to_string()))?;
    let mut output = [0u8; OUTPUT_BYTES];
    let (algorithm, version) = (Algorithm::Argon2id, Version::V0x13);
    argon2_into(
        algorithm,
        version,
        params.clone(),
        password,
        &salt,
        &mut output,
    )
    .map_err(AuthError::internal)?;
    let phc = PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: ParamsString::try_from(&params).map_err(AuthError::internal)?,
        salt: Some(Salt::new(&salt).map_err(AuthError::internal)?),
        hash: Some(Output::new(&output).map_err(AuthError::internal)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` gives `stored`'s output under `stored`'s own algorithm, version, salt and
/// parameters (so hashes made with other parameters still verify). The outputs are compared in
/// constant time (`Output`'s equality), as `PasswordVerifier` did.
fn matches(password: &[u8], stored: &PasswordHash) -> Result<bool, password_hash::Error> {
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return Ok(false);
    };
    let algorithm = Algorithm::try_from(stored.algorithm.as_str())?;
    let version = match stored.version {
        Some(version) => Version::try_from(version)?,
        None => Version::default(),
    };
    let params = Params::try_from(stored)?;
    let mut output = vec![0u8; expected.len()];
    argon2_into(algorithm, version, params, password, salt, &mut output)?;
    Ok(Output::new(&output)? == *expected)
}

type Job = Box<dyn FnOnce() + Send>;

/// The threads that run all argon2 work: one per core, started on first use. At most that many
/// hashes run at once (each takes 19 MiB and a core for tens of milliseconds); more in flight
/// would only add memory and latency, and queued jobs hold no memory. Their memory is kept
/// between hashes (`MEMORY`).
static HASHING_THREADS: LazyLock<Mutex<mpsc::Sender<Job>>> = LazyLock::new(|| {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    for index in 0..std::thread::available_parallelism().map_or(1, usize::from) {
        let queue = Arc::clone(&queue);
        let spawned = std::thread::Builder::new()
            .name(format!("argon2-{index}"))
            .spawn(move || {
                loop {
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "could not start an argon2 thread");
        }
    }
    Mutex::new(jobs)
});

/// Runs argon2 work on the hashing threads, off the async executor.
async fn on_hashing_threads<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> Result<T, AuthError> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // The receiver is gone only if the request was dropped; nothing to tell then.
        let _ = sender.send(work());
    });
    HASHING_THREADS
        .lock()
        .map_err(|_| AuthError::internal("argon2 job queue poisoned"))?
        .send(job)
        .map_err(|_| AuthError::internal("argon2 threads are gone"))?;
    receiver.await.map_err(AuthError::internal)?
}

/// Hashes to a PHC string on the hashing threads (argon2 takes tens of milliseconds of CPU).
pub async fn hash(password: Password) -> Result<String, AuthError> {
    on_hashing_threads(move || hash_now(password.0.expose_secret().as_bytes())).await
}

/// True when `password` matches `stored`. With no stored hash (unknown user) it verifies against
/// a dummy hash and returns false, so the caller cannot be timed. A hash imported from another
/// system (`imported_hash`) is verified by its own scheme.
pub async fn verify(password: Password, stored: Option<String>) -> Result<bool, AuthError> {
    Ok(verify_upgrading(password, stored).await?.0)
}

/// As `verify`, and when `stored` is an imported hash that matches, this service's own hash of
/// `password` to replace it with (made on the same thread, right after).
pub async fn verify_upgrading(
    password: Password,
    stored: Option<String>,
) -> Result<(bool, Option<String>), AuthError> {
    on_hashing_threads(move || {
        let (hash, real) = match stored {
            Some(hash) => (hash, true),
            None => (DUMMY_HASH.to_owned(), false),
        };
        let password = password.0.expose_secret().as_bytes();
        if hash.starts_with("$argon2") {
            // Another service's parameters only within the imports' ceilings.
            if !hash.starts_with(&current_prefix()) && ImportedHash::parse(&hash).is_err() {
                return Ok((false, None));
            }
            let parsed = PasswordHash::new(&hash).map_err(AuthError::internal)?;
            // As `PasswordVerifier` did: a stored hash that cannot be recomputed matches nothing.
            // The work is done before `real` is looked at, so an unknown number costs the same.
            let matches = matches(password, &parsed).unwrap_or(false) && real;
            // An argon2 hash of other parameters (imported) is replaced by today's.
            let upgraded = if matches && !hash.starts_with(&current_prefix()) {
                Some(hash_now(password)?)
            } else {
                None
            };
            return Ok((matches, upgraded));
        }
        // Refused at import; one that got in anyway matches nothing.
        let matches = ImportedHash::parse(&hash).is_ok_and(|imported| imported.verify(password));
        let upgraded = if matches {
            Some(hash_now(password)?)
        } else {
            None
        };
        Ok((real && matches, upgraded))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(raw: &str) -> Option<String> {
        match Password::new(raw.into()) {
            Ok(_) => None,
            Err(AuthError::InvalidRequest(message)) => Some(message),
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn length_is_counted_in_characters() {
        assert!(Password::new("1234567".into()).is_err());
        assert!(Password::new("k3#vQ9!z".into()).is_ok());
        assert!(Password::new("ب".repeat(128)).is_ok());
        assert!(Password::new("ب".repeat(129)).is_err());
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case_and_padding() {
        let too_common =
            "Invalid field 'password': this password is too common; choose a less common one.";
        for common in [
            "password",
            "12345678",
            "Password123",
            "PASSWORD",
            "PassWord",
            "  password  ",
            "qwertyuiop",
            "iloveyou",
            "1234567 ", // short, but padded past the length rule
        ] {
            assert_eq!(refusal(common).as_deref(), Some(too_common), "{common:?}");
        }
    }

    #[test]
    fn uncommon_passwords_are_accepted() {
        for uncommon in [
            "correct horse battery",
            "a brand new passphrase",
            "Vq8#mZ2!rT6@pL0x",
            "گذرواژه‌ی من",
        ] {
            assert_eq!(refusal(uncommon), None, "{uncommon:?}");
        }
    }

    #[test]
    fn the_list_is_the_full_lowercased_list() {
        assert!(
            COMMON_PASSWORDS.len() >= 19_000,
            "{}",
            COMMON_PASSWORDS.len()
        );
        assert!(
            COMMON_PASSWORDS
                .iter()
                .all(|p| !p.is_empty() && *p == p.trim() && *p == p.to_lowercase())
        );
    }

    #[test]
    fn dummy_hash_uses_the_same_parameters_as_real_hashes() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        let params = Params::try_from(&dummy).unwrap();
        assert_eq!(dummy.algorithm, argon2::ARGON2ID_IDENT);
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (MEMORY_KIB, ITERATIONS, PARALLELISM)
        );
    }

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_that_verify() {
        let hash = hash(Password::new("correct horse".into()).unwrap())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let presented = Password::presented("correct horse".into());
        let verified = verify_upgrading(presented, Some(hash.clone())).await;
        assert_eq!(verified.unwrap(), (true, None), "today's hashes stay");
        assert!(
            verify(
                Password::presented("correct horse".into()),
                Some(hash.clone())
            )
            .await
            .unwrap()
        );
        assert!(
            !verify(Password::presented("wrong horse".into()), Some(hash))
                .await
                .unwrap()
        );
        assert!(
            !verify(Password::presented("anything".into()), None)
                .await
                .unwrap()
        );
    }

    /// The integration test (`login::an_unknown_phone_costs_the_same_argon2_work_as_a_wrong_password`)
    /// times whole logins, where DynamoDB's round trips blur the difference; here only the
    /// verification is timed, so skipping argon2 for no user (microseconds) cannot pass.
    #[tokio::test]
    async fn no_stored_hash_costs_a_whole_verification() {
        let stored = hash(Password::new("correct horse".into()).unwrap())
            .await
            .unwrap();
        let mut known = Vec::new();
        let mut unknown = Vec::new();
        for _ in 0..5 {
            let start = std::time::Instant::now();
            verify(Password::presented("wrong".into()), Some(stored.clone()))
                .await
                .unwrap();
            known.push(start.elapsed());
            let start = std::time::Instant::now();
            verify(Password::presented("wrong".into()), None)
                .await
                .unwrap();
            unknown.push(start.elapsed());
        }
        known.sort();
        unknown.sort();
        let (known, unknown) = (known[2], unknown[2]);
        assert!(
            unknown * 3 > known,
            "no user {unknown:?} vs a user {known:?}"
        );
    }

    /// The `argon2` crate's own hasher, as this module used it before it kept its memory.
    fn crate_argon2(algorithm: Algorithm, version: Version, params: Params) -> Argon2<'static> {
        Argon2::new(algorithm, version, params)
    }

    fn standard() -> Argon2<'static> {
        crate_argon2(Algorithm::Argon2id, Version::V0x13, params().unwrap())
    }

    #[tokio::test]
    async fn hashes_stored_by_the_crates_hasher_verify() {
        use argon2::password_hash::PasswordHasher as _;
        let stored = standard()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        let right = Password::presented("correct horse".into());
        assert!(verify(right, Some(stored.clone())).await.unwrap());
        let wrong = Password::presented("wrong horse".into());
        assert!(!verify(wrong, Some(stored)).await.unwrap());
    }

    #[tokio::test]
    async fn new_hashes_verify_with_the_crates_verifier_and_look_the_same() {
        use argon2::password_hash::PasswordVerifier as _;
        let stored = hash(Password::new("correct horse".into()).unwrap())
            .await
            .unwrap();
        let parsed = PasswordHash::new(&stored).unwrap();
        assert!(
            standard()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(standard().verify_password(b"wrong horse", &parsed).is_err());
        // 16 bytes of salt and 32 of output, unpadded base64, as the crate writes them.
        let fields: Vec<&str> = stored.split('$').collect();
        assert_eq!(fields[..4], ["", "argon2id", "v=19", "m=19456,t=2,p=1"]);
        assert_eq!((fields[4].len(), fields[5].len()), (22, 43));
    }

    #[tokio::test]
    async fn hashes_with_other_parameters_still_verify_and_are_replaced_by_todays() {
        use argon2::password_hash::PasswordHasher as _;
        for (algorithm, version, m, t, p) in [
            (Algorithm::Argon2id, Version::V0x13, 8 * 1024, 3, 1),
            (Algorithm::Argon2id, Version::V0x13, 4 * 1024, 1, 4),
            // More memory than is kept: it gets its own.
            (Algorithm::Argon2id, Version::V0x13, 24 * 1024, 1, 1),
            (Algorithm::Argon2i, Version::V0x13, 8 * 1024, 2, 1),
            (Algorithm::Argon2id, Version::V0x10, 8 * 1024, 2, 1),
        ] {
            let params = Params::new(m, t, p, None).unwrap();
            let stored = crate_argon2(algorithm, version, params)
                .hash_password(b"correct horse")
                .unwrap()
                .to_string();
            let right = Password::presented("correct horse".into());
            let (verified, upgraded) = verify_upgrading(right, Some(stored.clone())).await.unwrap();
            assert!(verified, "{stored}");
            let upgraded = upgraded.expect("a hash of today's parameters");
            assert!(upgraded.starts_with(&current_prefix()), "{upgraded}");
            let wrong = Password::presented("wrong horse".into());
            assert!(
                !verify(wrong, Some(stored.clone())).await.unwrap(),
                "{stored}"
            );
        }
    }

    #[test]
    fn memory_is_allocated_once_and_reused() {
        let memory = Memory::new(64);
        let first = memory.with(64, |blocks| (blocks.len(), blocks.as_ptr().addr()));
        assert_eq!(first.0, 64);
        assert_eq!(memory.kept(), 1);
        // The same allocation again, for the same size and for a smaller one.
        assert_eq!(memory.with(64, |blocks| blocks.as_ptr().addr()), first.1);
        assert_eq!(memory.with(32, |blocks| blocks.as_ptr().addr()), first.1);
        // A larger one gets its own memory, which is not kept.
        assert!(memory.with(128, |blocks| blocks.len()) >= 128);
        assert_eq!(memory.kept(), 1);
    }
}
