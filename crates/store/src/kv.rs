//! Key/value rows: delta cursors (`cursor:…`), console settings (`setting:…`), flags.

use crate::{Store, StoreResult};
use sqlx::AnyConnection;

/// Stores a value inside the caller's transaction (the sync writes its cursor with its changes).
pub(crate) async fn set_in(conn: &mut AnyConnection, key: &str, value: &str) -> StoreResult<()> {
    sqlx::query(SET_KV)
        .bind(key)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

const SET_KV: &str = "INSERT INTO kv (name, value) VALUES ($1, $2) \
                      ON CONFLICT (name) DO UPDATE SET value = excluded.value";

impl Store {
    /// A stored value (delta links under `cursor:…`, console settings under `setting:…`).
    pub async fn get_kv(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM kv WHERE name = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Stores a value.
    pub async fn set_kv(&self, key: &str, value: &str) -> StoreResult<()> {
        self.execute_write(sqlx::query(SET_KV).bind(key).bind(value))
            .await?;
        Ok(())
    }

    /// Removes a value.
    pub async fn delete_kv(&self, key: &str) -> StoreResult<()> {
        self.execute_write(sqlx::query("DELETE FROM kv WHERE name = $1").bind(key))
            .await?;
        Ok(())
    }

    /// Removes `key` only if it still holds `value`; true when this call removed it (exactly one
    /// of several concurrent callers gets true: a one-shot approval is used once per cluster).
    pub async fn take_kv(&self, key: &str, value: &str) -> StoreResult<bool> {
        let done = self
            .execute_write(
                sqlx::query("DELETE FROM kv WHERE name = $1 AND value = $2")
                    .bind(key)
                    .bind(value),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// All values whose key starts with `prefix`, ordered by key (e.g. every `setting:`).
    pub async fn list_kv(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
        // Filtered in the database (the background loops look for marks every few hundred
        // milliseconds); `substr` compares exactly on both engines, unlike LIKE's wildcards.
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, value FROM kv WHERE substr(name, 1, length(CAST($1 AS TEXT))) = CAST($1 AS TEXT) \
             ORDER BY name",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .collect())
    }
}
