//! Credentials over their life (issue 9 item 5): API tokens that may expire, record their last
//! use and can be listed and revoked; admins changing their password; the first admin's
//! password handed over in a file instead of on stdout or in the log.
//!
//! Shared by the console (Settings > Security pages), the REST API's bearer check and the CLI
//! (`pbx365 admin token list|revoke`, `pbx365 admin password`).

use crate::admins::{create_admin, hash_token, new_token, random_password};
use crate::password::{self, PasswordError, MAX_LEN};
use crate::AppError;
use chrono::{DateTime, Duration, Utc};
use pbx365_store::{Store, StoreError};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Fewest characters of a password an admin changes to.
pub const MIN_CHANGED_PASSWORD_LEN: usize = 12;

/// Longest lifetime `--expires-in-days` accepts (ten years).
pub const MAX_TOKEN_DAYS: u32 = 3650;

/// Name of the file in `data_dir` that holds the first admin's password.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

/// Recording a token's use more often than this would turn every API call into a write.
const LAST_USED_GRANULARITY_SECS: i64 = 60;

/// What may be shown of an API token: never the token or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiTokenInfo {
    /// Name given at creation.
    pub name: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// When it stops working; `None`: never.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last accepted use (to the minute); `None`: never used.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiTokenInfo {
    /// True when the token no longer works at `now`.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// Why a bearer token was refused; the sentence says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// No token has this value: it was revoked, or never issued.
    #[error("this API token is not valid: it was revoked or never issued; create a new one with `pbx365 admin token create`")]
    Unknown,
    /// The token's lifetime is over.
    #[error("this API token expired at {at}; create a new one with `pbx365 admin token create`")]
    Expired {
        /// When it expired (RFC 3339).
        at: String,
    },
}

/// Checks a token name: 1 to 64 characters, no control characters.
pub fn check_token_name(name: &str) -> Result<&str, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(AppError::Invalid(
            "the token name must be 1 to 64 characters".into(),
        ));
    }
    Ok(name)
}

/// Creates an API token called `name` that expires `expires_in_days` after `now` (never when
/// `None`) and returns it; only its hash is stored.
pub async fn create_api_token(
    store: &Store,
    name: &str,
    expires_in_days: Option<u32>,
    now: DateTime<Utc>,
) -> Result<String, AppError> {
    let name = check_token_name(name)?;
    let expires_at = match expires_in_days {
        None => None,
        Some(d) if (1..=MAX_TOKEN_DAYS).contains(&d) => Some(now + Duration::days(i64::from(d))),
        Some(_) => {
            return Err(AppError::Invalid(format!(
                "the expiry must be 1 to {MAX_TOKEN_DAYS} days"
            )))
        }
    };
    let token = new_token();
    store
        .create_api_token_expiring(name, &hash_token(&token), expires_at)
        .await?;
    Ok(token)
}

/// Every API token's metadata, oldest first.
pub async fn list_api_tokens(store: &Store) -> Result<Vec<ApiTokenInfo>, AppError> {
    Ok(store
        .list_api_tokens()
        .await?
        .into_iter()
        .map(|r| ApiTokenInfo {
            name: r.name,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
        })
        .collect())
}

/// Revokes every token called `name`; returns how many there were (0: none had this name).
pub async fn revoke_api_tokens(store: &Store, name: &str) -> Result<u64, AppError> {
    Ok(store.delete_api_tokens_named(name.trim()).await?)
}

/// The name of the API token `token` if it is valid at `now`, else why not. Records its use,
/// at most once a minute per token.
pub async fn authenticate_api_token(
    store: &Store,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Result<String, TokenRefusal>, AppError> {
    let hash = hash_token(token);
    let Some(record) = store.find_api_token(&hash).await? else {
        return Ok(Err(TokenRefusal::Unknown));
    };
    if let Some(at) = record.expires_at.filter(|at| *at <= now) {
        return Ok(Err(TokenRefusal::Expired {
            at: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }));
    }
    let stale = record
        .last_used_at
        .is_none_or(|t| now - t >= Duration::seconds(LAST_USED_GRANULARITY_SECS));
    if stale {
        // A failed bookkeeping write must not refuse a valid caller.
        if let Err(e) = store.touch_api_token(&hash, now).await {
            tracing::warn!(error = %e, token = %record.name, "could not record the API token's use");
        }
    }
    Ok(Ok(record.name))
}

/// Checks the length rule for a changed password (12 to 1024 characters).
pub fn check_changed_password(password: &str) -> Result<(), AppError> {
    let n = password.chars().count();
    if (MIN_CHANGED_PASSWORD_LEN..=MAX_LEN).contains(&n) {
        Ok(())
    } else {
        Err(AppError::Invalid(
            PasswordError::Length {
                min: MIN_CHANGED_PASSWORD_LEN,
                max: MAX_LEN,
            }
            .to_string(),
        ))
    }
}

/// The sentence for a wrong current password on the change form.
pub const WRONG_CURRENT_PASSWORD: &str = "the current password is not correct";

/// Changes admin `name`'s password to `new`. With `current` (the console), it must match the
/// stored one first. Every session of the admin except `keep_session_hash` ends. Returns how
/// many sessions ended.
pub async fn change_admin_password(
    store: &Store,
    name: &str,
    current: Option<String>,
    new: String,
    keep_session_hash: Option<&str>,
) -> Result<u64, AppError> {
    check_changed_password(&new)?;
    let Some(admin) = store.get_admin(name).await? else {
        return Err(StoreError::NotFound {
            what: "admin",
            key: name.to_string(),
        }
        .into());
    };
    // Argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    let hashed = tokio::task::spawn_blocking(move || {
        if let Some(current) = current {
            if !password::verify_password(&current, &admin.password_hash) {
                return Err(AppError::Invalid(WRONG_CURRENT_PASSWORD.into()));
            }
        }
        password::hash_password(&new).map_err(|e| AppError::Invalid(e.to_string()))
    })
    .await
    .map_err(|e| AppError::Internal(format!("password hashing stopped: {e}")))??;
    Ok(store
        .change_admin_password(name, &hashed, keep_session_hash)
        .await?)
}

/// Where the first admin's password is written.
pub fn initial_password_path(data_dir: &Path) -> PathBuf {
    data_dir.join(INITIAL_PASSWORD_FILE)
}

/// Writes `password` to [`initial_password_path`], readable by the owner only (0600).
fn write_initial_password(data_dir: &Path, password: &str) -> std::io::Result<PathBuf> {
    use std::io::Write;
    let path = initial_password_path(data_dir);
    // A stale file (an earlier database) is replaced, never appended to or left readable.
    let _ = std::fs::remove_file(&path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path)?;
    writeln!(file, "{password}")?;
    file.sync_all()?;
    Ok(path)
}

/// On the very first start there is no way into the console: creates `admin` with a random
/// password written to `{data_dir}/initial-admin-password` (mode 0600) and returns that file's
/// path, or `None` when an admin exists already. The password itself is never returned, so it
/// cannot reach stdout or the log.
pub async fn create_first_admin_with_file(
    store: &Store,
    data_dir: &Path,
) -> Result<Option<PathBuf>, AppError> {
    if store.count_admins().await? > 0 {
        return Ok(None);
    }
    let password = random_password();
    // The file first: an admin whose password was never written down would lock everyone out.
    let path = write_initial_password(data_dir, &password).map_err(|e| {
        AppError::Internal(format!(
            "cannot write the first admin's password to {}: {e}",
            initial_password_path(data_dir).display()
        ))
    })?;
    match create_admin(store, "admin", &password).await {
        Ok(()) => Ok(Some(path)),
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            match e {
                // Another instance on the same database won the race.
                AppError::Store(StoreError::Conflict { .. }) => Ok(None),
                e => Err(e),
            }
        }
    }
}

/// Removes the first admin's password file once that password no longer works (the admin
/// changed it). A missing file is fine.
pub fn forget_initial_password(data_dir: &Path, admin: &str) {
    if admin == "admin" {
        let _ = std::fs::remove_file(initial_password_path(data_dir));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        (Store::connect(&url).await.unwrap(), dir)
    }

    #[tokio::test]
    async fn an_expired_token_is_refused_and_use_is_recorded_once_a_minute() {
        let (store, _dir) = store().await;
        let t0 = Utc::now();
        let token = create_api_token(&store, "ci", Some(1), t0).await.unwrap();
        assert_eq!(
            authenticate_api_token(&store, &token, t0).await.unwrap(),
            Ok("ci".to_string())
        );
        let first = list_api_tokens(&store).await.unwrap()[0].last_used_at;
        assert!(first.is_some());
        authenticate_api_token(&store, &token, t0 + Duration::seconds(30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            list_api_tokens(&store).await.unwrap()[0].last_used_at,
            first
        );
        let later = t0 + Duration::seconds(90);
        authenticate_api_token(&store, &token, later)
            .await
            .unwrap()
            .unwrap();
        let info = &list_api_tokens(&store).await.unwrap()[0];
        assert!(info.last_used_at.unwrap() > first.unwrap());
        let refused = authenticate_api_token(&store, &token, t0 + Duration::days(1))
            .await
            .unwrap()
            .unwrap_err();
        assert!(refused.to_string().contains("expired at"), "{refused}");
        assert_eq!(revoke_api_tokens(&store, "ci").await.unwrap(), 1);
        assert_eq!(
            authenticate_api_token(&store, &token, t0).await.unwrap(),
            Err(TokenRefusal::Unknown)
        );
    }

    #[tokio::test]
    async fn bad_expiries_and_short_new_passwords_are_refused_with_a_sentence() {
        let (store, _dir) = store().await;
        let err = create_api_token(&store, "x", Some(0), Utc::now())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "the expiry must be 1 to 3650 days");
        create_admin(&store, "ann", "first password 1")
            .await
            .unwrap();
        let err = change_admin_password(&store, "ann", None, "eleven char".into(), None)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the password must be 12 to 1024 characters long"
        );
        let err = change_admin_password(
            &store,
            "ann",
            Some("wrong".into()),
            "a long new password".into(),
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), WRONG_CURRENT_PASSWORD);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_first_admin_password_goes_to_a_private_file_once() {
        use std::os::unix::fs::PermissionsExt;
        let (store, dir) = store().await;
        let path = create_first_admin_with_file(&store, dir.path())
            .await
            .unwrap()
            .expect("created");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let password = std::fs::read_to_string(&path).unwrap();
        let admin = store.get_admin("admin").await.unwrap().unwrap();
        assert!(password::verify_password(
            password.trim(),
            &admin.password_hash
        ));
        assert!(create_first_admin_with_file(&store, dir.path())
            .await
            .unwrap()
            .is_none());
    }
}
