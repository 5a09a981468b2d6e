//! The audit log.

use crate::db::{parse_ts, sortable_id, ts};
use crate::{Store, StoreResult};
use pbx365_domain::AuditEntry;
use sqlx::Row;

/// The statement that appends an entry, with its values bound.
fn insert(entry: &AuditEntry) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    sqlx::query("INSERT INTO audit_log (id, at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(sortable_id())
        .bind(ts(entry.at))
        .bind(entry.actor.as_str())
        .bind(entry.action.as_str())
        .bind(entry.target.as_str())
        .bind(entry.detail.as_str())
}

/// Appends to the audit log inside the caller's transaction (a change and its entry commit
/// together).
pub(crate) async fn insert_in(
    conn: &mut sqlx::AnyConnection,
    entry: &AuditEntry,
) -> StoreResult<()> {
    insert(entry).execute(conn).await?;
    Ok(())
}

impl Store {
    /// Appends to the audit log.
    pub async fn audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        insert(entry).execute(&self.pool).await?;
        Ok(())
    }

    /// Newest audit entries first (entries with the same time: the later written first).
    pub async fn list_audit(&self, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query("SELECT at, actor, action, target, detail FROM audit_log ORDER BY at DESC, id DESC LIMIT $1")
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: parse_ts(&r.try_get::<String, _>("at")?)?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}
