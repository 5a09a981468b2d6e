//! Console admin passwords: Argon2id hashes in PHC string form (shared by the console login and
//! the CLI's `admin create`).
//!
//! Parameters are the `argon2` crate defaults (Argon2id, m=19 MiB, t=2, p=1), which match the
//! OWASP Password Storage Cheat Sheet minimum.
//!
//! Verification works in pooled memory: each Argon2 run needs its 19 MiB of blocks, and a fresh
//! allocation per sign-in made glibc's malloc keep every freed block in per-thread arenas (a
//! storm of wrong sign-ins took the server from 17 MB to 770 MB, kept afterwards). The pool holds
//! at most [`MAX_IDLE_BLOCK_BUFFERS`] buffers, so memory stays at what the concurrent
//! verifications (capped by the web layer) need at once.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::{Mutex, OnceLock};

/// Why a password could not be hashed or accepted.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The password breaks the length rule.
    #[error("the password must be {min} to {max} characters long")]
    Length {
        /// Fewest characters.
        min: usize,
        /// Most characters.
        max: usize,
    },
    /// Hashing failed inside argon2 (out of memory or similar).
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

/// Fewest characters a new admin password may have (NIST SP 800-63B §5.1.1.2).
pub const MIN_LEN: usize = 8;
/// Most characters a password may have; longer input is refused before hashing so that a huge
/// request body cannot keep the CPU busy.
pub const MAX_LEN: usize = 1024;

/// Checks the length rule for a new password.
pub fn check_new_password(password: &str) -> Result<(), PasswordError> {
    let n = password.chars().count();
    if (MIN_LEN..=MAX_LEN).contains(&n) {
        Ok(())
    } else {
        Err(PasswordError::Length {
            min: MIN_LEN,
            max: MAX_LEN,
        })
    }
}

/// Hashes a new password (after checking its length) into an Argon2id PHC string.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    check_new_password(password)?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Most idle Argon2 working buffers kept for the next verification (more than the web layer's
/// concurrent hashing cap, so steady sign-ins never allocate).
pub const MAX_IDLE_BLOCK_BUFFERS: usize = 4;

/// Argon2 working memory kept between verifications (process-wide, like the allocator).
static BLOCK_BUFFERS: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Runs `f` with `count` Argon2 blocks from the pool (allocated only when the pool is empty).
fn with_blocks<R>(count: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    let pooled = BLOCK_BUFFERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop();
    let mut blocks = pooled.unwrap_or_default();
    blocks.resize(count, Block::default());
    let result = f(&mut blocks);
    let mut pool = BLOCK_BUFFERS.lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < MAX_IDLE_BLOCK_BUFFERS {
        pool.push(blocks);
    }
    result
}

/// Idle Argon2 working buffers in the pool (tests check the bound).
pub fn idle_block_buffers() -> usize {
    BLOCK_BUFFERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .len()
}

/// True when `password` matches the PHC string `phc`. A malformed hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > MAX_LEN * 4 {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let hashed = with_blocks(argon.params().block_count(), |blocks| {
        argon
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks)
            .is_ok()
    });
    // `Output`'s equality is constant-time.
    hashed && argon2::password_hash::Output::new(&out).is_ok_and(|o| o == expected)
}

/// Spends the same work as a real verification; used for unknown user names so that response
/// time does not tell which names exist.
pub fn burn_verification(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"pbx365-no-such-admin", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    });
    let _ = verify_password(password, phc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct horsE", &phc));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn verification_follows_the_parameters_of_the_stored_hash() {
        // A hash made with other parameters (as an older release might have stored) verifies.
        let params = Params::new(8 * 1024, 1, 1, Some(32)).unwrap();
        let salt = SaltString::generate(&mut OsRng);
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"old password", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("old password", &phc));
        assert!(!verify_password("old passworD", &phc));
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x10, Params::default())
            .hash_password(b"older still", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("older still", &argon2i));
    }

    #[test]
    fn many_concurrent_verifications_keep_a_bounded_pool_of_working_memory() {
        let phc = hash_password("correct horse").unwrap();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let phc = phc.clone();
                std::thread::spawn(move || {
                    assert!(!verify_password(&format!("wrong {i}"), &phc));
                    burn_verification("anything");
                    assert!(verify_password("correct horse", &phc));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Memory is kept for reuse, but never more than the pool's bound.
        assert!(idle_block_buffers() >= 1);
        assert!(idle_block_buffers() <= MAX_IDLE_BLOCK_BUFFERS);
    }

    #[test]
    fn short_passwords_are_refused_with_a_sentence() {
        let err = hash_password("short").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the password must be 8 to 1024 characters long"
        );
    }
}
