//! Console admin passwords: Argon2id hashes in PHC string form (shared by the console login and
//! the CLI's `admin create`).
//!
//! Parameters are the `argon2` crate defaults (Argon2id, m=19 MiB, t=2, p=1), which match the
//! OWASP Password Storage Cheat Sheet minimum.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use std::sync::OnceLock;

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

/// True when `password` matches the PHC string `phc`. A malformed hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > MAX_LEN * 4 {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
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
    fn short_passwords_are_refused_with_a_sentence() {
        let err = hash_password("short").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the password must be 8 to 1024 characters long"
        );
    }
}
