//! Passwords: validation, argon2id hashing off the async executor, and timing-safe verification.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex, mpsc};

use crate::error::AuthError;

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

    /// A password presented at login: not length-checked (that would leak the policy), but it
    /// is still only ever held as a secret.
    pub fn presented(raw: String) -> Self {
        Self(raw.into())
    }
}

fn argon2() -> Result<Argon2<'static>, AuthError> {
    let params =
        Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).map_err(AuthError::internal)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

type Job = Box<dyn FnOnce() + Send>;

/// The threads that run all argon2 work: one per core, started on first use. At most that many
/// hashes run at once (each takes 19 MiB and a core for tens of milliseconds); more in flight
/// would only add memory and latency, and queued jobs hold no memory. (That each freed block
/// goes back to the OS is the allocator's part: see `MALLOC_MMAP_THRESHOLD_` in template.yaml.)
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
    on_hashing_threads(move || {
        let hash = argon2()?
            .hash_password(password.0.expose_secret().as_bytes())
            .map_err(AuthError::internal)?;
        Ok(hash.to_string())
    })
    .await
}

/// True when `password` matches `stored`. With no stored hash (unknown user) it verifies against
/// a dummy hash and returns false, so the caller cannot be timed.
pub async fn verify(password: Password, stored: Option<String>) -> Result<bool, AuthError> {
    on_hashing_threads(move || {
        let (hash, real) = match stored {
            Some(hash) => (hash, true),
            None => (DUMMY_HASH.to_owned(), false),
        };
        let parsed = PasswordHash::new(&hash).map_err(AuthError::internal)?;
        let matches = argon2()?
            .verify_password(password.0.expose_secret().as_bytes(), &parsed)
            .is_ok();
        Ok(real && matches)
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
}
