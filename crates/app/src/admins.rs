//! Console administrators and API tokens: creating them, and the secrets they are checked with.

use crate::password;
use crate::secrets::hash_secret;
use crate::AppError;
use pbx365_store::{Store, StoreError};

/// Hex SHA-256 of an API token: the only form in which tokens are stored.
pub fn hash_token(token: &str) -> String {
    hash_secret(token)
}

/// A fresh API token: `pbx365_` + 256 random bits, hex.
pub fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("pbx365_{}", hex::encode(bytes))
}

/// A random password for the first admin: 20 characters from an unambiguous alphabet (~114 bits).
pub fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Creates a console admin with a local password (hashed with Argon2id).
pub async fn create_admin(store: &Store, name: &str, password: &str) -> Result<(), AppError> {
    let hash = password::hash_password(password).map_err(|e| AppError::Invalid(e.to_string()))?;
    store.create_admin(name, &hash).await?;
    Ok(())
}

/// On the very first start there is no way into the console: creates `admin` with a random
/// password and returns it (to be shown once), or `None` when an admin exists already.
pub async fn create_first_admin(store: &Store) -> Result<Option<String>, AppError> {
    if store.count_admins().await? > 0 {
        return Ok(None);
    }
    let password = random_password();
    match create_admin(store, "admin", &password).await {
        Ok(()) => Ok(Some(password)),
        // Another instance on the same database won the race.
        Err(AppError::Store(StoreError::Conflict { .. })) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates an API token called `name` and returns it; only its hash is stored.
pub async fn create_api_token(store: &Store, name: &str) -> Result<String, AppError> {
    let token = new_token();
    store.create_api_token(name, &hash_token(&token)).await?;
    Ok(token)
}

impl crate::App {
    /// Checks a console admin's password. An unknown name costs the same work as a wrong
    /// password, so response time does not tell which names exist; Argon2 runs off the async
    /// workers (it takes tens of milliseconds of CPU).
    pub async fn check_admin_password(
        &self,
        name: &str,
        password: String,
    ) -> Result<bool, AppError> {
        let admin = self.store.get_admin(name).await?;
        Ok(tokio::task::spawn_blocking(move || match admin {
            Some(a) => password::verify_password(&password, &a.password_hash),
            None => {
                password::burn_verification(&password);
                false
            }
        })
        .await
        .unwrap_or(false))
    }
}
