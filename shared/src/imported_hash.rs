//! Password hashes brought from other systems (issue 25), as their owners stored them: Django's
//! `pbkdf2_sha256` and `pbkdf2_sha1`, `argon2` (Django's prefix on a PHC string) and plain PHC
//! argon2, `bcrypt` and `bcrypt_sha256` (Django's) and plain `$2a$`/`$2b$`/`$2y$` bcrypt. Each
//! is checked for a ceiling on the work one verification may cost, so that an imported row
//! cannot become a CPU or memory bomb; a scheme or a cost outside them is refused when it is
//! read (`parse`), never stored as if usable.

use argon2::password_hash::PasswordVerifier;
use argon2::password_hash::phc::PasswordHash;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

/// Django's default for PBKDF2 was 1,200,000 iterations in 6.0 (870,000 in 4.2): a little over.
pub const MAX_PBKDF2_ITERATIONS: u32 = 1_500_000;
/// bcrypt's cost is a power of two: 14 is four times Django's and most libraries' 12.
pub const MAX_BCRYPT_COST: u32 = 14;
/// Django's argon2 default memory (100 MiB) and a little over.
pub const MAX_ARGON2_MEMORY_KIB: u32 = 131_072;
pub const MAX_ARGON2_ITERATIONS: u32 = 10;
pub const MAX_ARGON2_LANES: u32 = 16;

/// A hash of another system that this service can verify, within the work ceilings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportedHash {
    /// Django's `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` (or `pbkdf2_sha1`).
    Pbkdf2 {
        sha1: bool,
        iterations: u32,
        salt: String,
        hash: Vec<u8>,
    },
    /// A bcrypt hash (`$2a$`, `$2b$`, `$2y$`); `sha256_first`: Django's `bcrypt_sha256`, which
    /// hashes the password's SHA-256 hex digest.
    Bcrypt { hash: String, sha256_first: bool },
    /// A PHC argon2 string (argon2id, argon2i or argon2d).
    Argon2 { phc: String },
}

/// Why a stored hash cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    #[error("a hash scheme this service does not verify")]
    Scheme,
    #[error("a malformed {0} hash")]
    Malformed(&'static str),
    #[error("a {0} hash costing more than this service allows (at most {1})")]
    TooCostly(&'static str, u32),
}

impl ImportedHash {
    /// The hash `stored` holds, if it is one of the schemes and within the ceilings.
    pub fn parse(stored: &str) -> Result<Self, Unsupported> {
        if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
            return pbkdf2(rest, false);
        }
        if let Some(rest) = stored.strip_prefix("pbkdf2_sha1$") {
            return pbkdf2(rest, true);
        }
        if let Some(rest) = stored.strip_prefix("bcrypt_sha256$") {
            return bcrypt_hash(rest, true);
        }
        if let Some(rest) = stored.strip_prefix("bcrypt$") {
            return bcrypt_hash(rest, false);
        }
        if stored.starts_with("$2") {
            return bcrypt_hash(stored, false);
        }
        // Django writes `argon2` before the PHC string: `argon2$argon2id$v=19$...`.
        if let Some(phc) = stored
            .strip_prefix("argon2")
            .filter(|rest| rest.starts_with("$argon2"))
        {
            return argon2_hash(phc);
        }
        if stored.starts_with("$argon2") {
            return argon2_hash(stored);
        }
        Err(Unsupported::Scheme)
    }

    /// Whether `password` is the one hashed (compared in constant time).
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            Self::Pbkdf2 {
                sha1,
                iterations,
                salt,
                hash,
            } => {
                let mut derived = vec![0u8; hash.len()];
                if *sha1 {
                    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(
                        password,
                        salt.as_bytes(),
                        *iterations,
                        &mut derived,
                    );
                } else {
                    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                        password,
                        salt.as_bytes(),
                        *iterations,
                        &mut derived,
                    );
                }
                derived.ct_eq(hash).into()
            }
            Self::Bcrypt { hash, sha256_first } => {
                let hex;
                let input = if *sha256_first {
                    hex = sha256_hex(password);
                    hex.as_bytes()
                } else {
                    password
                };
                bcrypt::verify(input, hash).unwrap_or(false)
            }
            Self::Argon2 { phc } => PasswordHash::new(phc).is_ok_and(|parsed| {
                argon2::Argon2::default()
                    .verify_password(password, &parsed)
                    .is_ok()
            }),
        }
    }
}

fn pbkdf2(rest: &str, sha1: bool) -> Result<ImportedHash, Unsupported> {
    let malformed = Unsupported::Malformed("PBKDF2");
    let mut parts = rest.splitn(3, '$');
    let (Some(iterations), Some(salt), Some(hash)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed);
    };
    let iterations: u32 = iterations.parse().map_err(|_| malformed.clone())?;
    if iterations == 0 {
        return Err(malformed);
    }
    if iterations > MAX_PBKDF2_ITERATIONS {
        return Err(Unsupported::TooCostly("PBKDF2", MAX_PBKDF2_ITERATIONS));
    }
    let hash = STANDARD.decode(hash).map_err(|_| malformed.clone())?;
    let expected = if sha1 { 20 } else { 32 };
    if salt.is_empty() || salt.contains('$') || hash.len() != expected {
        return Err(malformed);
    }
    Ok(ImportedHash::Pbkdf2 {
        sha1,
        iterations,
        salt: salt.to_owned(),
        hash,
    })
}

fn bcrypt_hash(hash: &str, sha256_first: bool) -> Result<ImportedHash, Unsupported> {
    let parts = hash
        .parse::<bcrypt::HashParts>()
        .map_err(|_| Unsupported::Malformed("bcrypt"))?;
    if !["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| hash.starts_with(prefix))
    {
        return Err(Unsupported::Malformed("bcrypt"));
    }
    if parts.get_cost() > MAX_BCRYPT_COST {
        return Err(Unsupported::TooCostly("bcrypt", MAX_BCRYPT_COST));
    }
    Ok(ImportedHash::Bcrypt {
        hash: hash.to_owned(),
        sha256_first,
    })
}

fn argon2_hash(phc: &str) -> Result<ImportedHash, Unsupported> {
    let malformed = Unsupported::Malformed("argon2");
    let parsed = PasswordHash::new(phc).map_err(|_| malformed.clone())?;
    if !["argon2id", "argon2i", "argon2d"].contains(&parsed.algorithm.as_str()) {
        return Err(malformed);
    }
    let params = argon2::Params::try_from(&parsed).map_err(|_| malformed.clone())?;
    if params.m_cost() > MAX_ARGON2_MEMORY_KIB {
        return Err(Unsupported::TooCostly(
            "argon2 memory",
            MAX_ARGON2_MEMORY_KIB,
        ));
    }
    if params.t_cost() > MAX_ARGON2_ITERATIONS {
        return Err(Unsupported::TooCostly("argon2 time", MAX_ARGON2_ITERATIONS));
    }
    if params.p_cost() > MAX_ARGON2_LANES {
        return Err(Unsupported::TooCostly("argon2 lanes", MAX_ARGON2_LANES));
    }
    Ok(ImportedHash::Argon2 {
        phc: phc.to_owned(),
    })
}

/// Django's `bcrypt_sha256` input: the password's SHA-256 as lowercase hex.
fn sha256_hex(password: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(password)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made with Python's `hashlib.pbkdf2_hmac`, in Django's format (`PBKDF2PasswordHasher`).
    const DJANGO_PBKDF2_SHA256: &str =
        "pbkdf2_sha256$870000$seasalt0123456789abc$5zF9IsNQDpP/iTgRXoPHDpEmj7hd6ORDYHrjjCbs5No=";
    const DJANGO_PBKDF2_SHA1: &str = "pbkdf2_sha1$260000$pepper$tVTmjnPElokEjxGr4QisjJGOHQ8=";
    /// John the Ripper's bcrypt test vector for the password `U*U`.
    const BCRYPT_U_U: &str = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

    #[test]
    fn django_pbkdf2_hashes_verify_their_password_only() {
        for stored in [DJANGO_PBKDF2_SHA256, DJANGO_PBKDF2_SHA1] {
            let hash = ImportedHash::parse(stored).unwrap();
            assert!(hash.verify(b"correct horse battery"), "{stored}");
            assert!(!hash.verify(b"correct horse battery!"), "{stored}");
        }
    }

    #[test]
    fn bcrypt_hashes_verify_in_every_form() {
        for stored in [BCRYPT_U_U.to_owned(), format!("bcrypt${BCRYPT_U_U}")] {
            let hash = ImportedHash::parse(&stored).unwrap();
            assert!(hash.verify(b"U*U"), "{stored}");
            assert!(!hash.verify(b"U*V"), "{stored}");
        }
        // Django's bcrypt_sha256: bcrypt of the password's SHA-256 hex digest.
        let made = bcrypt::hash_with_result(sha256_hex(b"long password"), 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoB);
        let hash = ImportedHash::parse(&format!("bcrypt_sha256${made}")).unwrap();
        assert!(hash.verify(b"long password"));
        assert!(!hash.verify(b"other password"));
    }

    /// The example of argon2-cffi's documentation (what Django's `Argon2PasswordHasher` uses).
    const ARGON2_CFFI: &str = "$argon2id$v=19$m=65536,t=3,p=4$MIIRqgvgQbgj220jfp0MPA$YfwJSVjtjSU0zzV/P3S9nnQ/USre2wvJMjfCIjrTQbg";

    #[test]
    fn argon2_phc_strings_verify_with_or_without_djangos_prefix() {
        for stored in [ARGON2_CFFI.to_owned(), format!("argon2{ARGON2_CFFI}")] {
            let hash = ImportedHash::parse(&stored).unwrap();
            assert!(hash.verify(b"correct horse battery staple"), "{stored}");
            assert!(!hash.verify(b"correct horse battery"), "{stored}");
        }
    }

    #[test]
    fn unknown_schemes_malformed_hashes_and_costs_over_the_ceilings_are_refused() {
        let refused = |stored: &str| ImportedHash::parse(stored).unwrap_err();
        assert_eq!(refused("md5$salt$hash"), Unsupported::Scheme);
        assert_eq!(refused("sha1$salt$hash"), Unsupported::Scheme);
        assert_eq!(refused("!unusable"), Unsupported::Scheme);
        assert!(matches!(
            refused("pbkdf2_sha256$x$salt$hash"),
            Unsupported::Malformed(_)
        ));
        assert!(matches!(
            refused("pbkdf2_sha256$1000$salt$not base64!"),
            Unsupported::Malformed(_)
        ));
        assert!(matches!(
            refused("pbkdf2_sha256$99999999$salt$5zF9IsNQDpP/iTgRXoPHDpEmj7hd6ORDYHrjjCbs5No="),
            Unsupported::TooCostly(..)
        ));
        assert!(matches!(
            refused("$2b$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
            Unsupported::TooCostly(..)
        ));
        assert!(matches!(
            refused(
                "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$ew/RiV0oYbDbgmuEatp5ebzS0NSTNcmGdaBsdsKDpvA"
            ),
            Unsupported::TooCostly(..)
        ));
        assert!(matches!(refused("$2x$05$short"), Unsupported::Malformed(_)));
    }
}
