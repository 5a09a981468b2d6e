//! Helpers for tests and benchmarks that need a fresh PostgreSQL database of their own.

use crate::db::redact_url;
use crate::{StoreError, StoreResult};
use sqlx::{Connection, Executor};

/// Creates database `name` (letters, digits, `_` only) in the server of `admin_url` and returns
/// the URL of the new database.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> StoreResult<String> {
    assert!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database name {name:?}"
    );
    sqlx::any::install_default_drivers();
    let mut conn =
        sqlx::AnyConnection::connect(admin_url)
            .await
            .map_err(|e| StoreError::Connect {
                url: redact_url(admin_url),
                reason: e.to_string(),
            })?;
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    conn.close().await?;
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    Ok(format!("{base}/{name}{query}"))
}

/// Drops database `name` (closing its connections) in the server of `admin_url`.
pub async fn drop_postgres_database(admin_url: &str, name: &str) -> StoreResult<()> {
    assert!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database name {name:?}"
    );
    sqlx::any::install_default_drivers();
    let mut conn =
        sqlx::AnyConnection::connect(admin_url)
            .await
            .map_err(|e| StoreError::Connect {
                url: redact_url(admin_url),
                reason: e.to_string(),
            })?;
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await?;
    conn.close().await?;
    Ok(())
}
