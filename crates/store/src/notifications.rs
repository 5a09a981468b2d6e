//! Graph change-notification subscriptions and the inbox of received notifications.

use crate::db::{corrupt, parse_ts, sortable_id, ts};
use crate::{InboxNotification, Store, StoreResult, SubscriptionRecord};
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

impl Store {
    /// Stores or replaces a subscription.
    pub async fn put_subscription(&self, sub: &SubscriptionRecord) -> StoreResult<()> {
        self.execute_write(
            sqlx::query(
                "INSERT INTO subscriptions (id, resource, client_state, expires_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET resource = excluded.resource, client_state = excluded.client_state, \
                 expires_at = excluded.expires_at",
            )
            .bind(sub.id.as_str())
            .bind(sub.resource.as_str())
            .bind(sub.client_state.as_str())
            .bind(ts(sub.expires_at)),
        )
        .await?;
        Ok(())
    }

    /// All subscriptions, the soonest to expire first.
    pub async fn list_subscriptions(&self) -> StoreResult<Vec<SubscriptionRecord>> {
        let rows = sqlx::query("SELECT id, resource, client_state, expires_at FROM subscriptions ORDER BY expires_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SubscriptionRecord {
                    id: r.try_get("id")?,
                    resource: r.try_get("resource")?,
                    client_state: r.try_get("client_state")?,
                    expires_at: parse_ts(&r.try_get::<String, _>("expires_at")?)?,
                })
            })
            .collect()
    }

    /// Removes a subscription.
    pub async fn delete_subscription(&self, id: &str) -> StoreResult<()> {
        self.execute_write(sqlx::query("DELETE FROM subscriptions WHERE id = $1").bind(id))
            .await?;
        Ok(())
    }

    /// Persists a notification unless its dedup key was seen (even if that one was already
    /// taken); returns false for a duplicate. A top-level `clientState` is removed before storing:
    /// it is a secret and is checked on receipt.
    pub async fn enqueue_notification(
        &self,
        dedup_key: &str,
        payload: &serde_json::Value,
    ) -> StoreResult<bool> {
        let now = ts(Utc::now());
        let mut payload = payload.clone();
        if let Some(obj) = payload.as_object_mut() {
            obj.remove("clientState");
        }
        let mut tx = self.begin_write().await?;
        let fresh = sqlx::query(
            "INSERT INTO notification_keys (dedup_key, seen_at) VALUES ($1, $2) ON CONFLICT (dedup_key) DO NOTHING",
        )
        .bind(dedup_key)
        .bind(now.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !fresh {
            return Ok(false);
        }
        sqlx::query("INSERT INTO notification_inbox (id, dedup_key, payload, received_at) VALUES ($1, $2, $3, $4)")
            .bind(sortable_id())
            .bind(dedup_key)
            .bind(payload.to_string())
            .bind(now.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Takes up to `limit` waiting notifications, oldest first (removed from the inbox). One
    /// `DELETE … RETURNING`, so concurrent takers never get the same notification.
    pub async fn take_notifications(&self, limit: u32) -> StoreResult<Vec<InboxNotification>> {
        let rows = sqlx::query(
            "DELETE FROM notification_inbox WHERE id IN \
             (SELECT id FROM notification_inbox ORDER BY received_at, id LIMIT $1) \
             RETURNING id, dedup_key, payload, received_at",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(inbox_row)
            .collect::<StoreResult<Vec<_>>>()?;
        out.sort_by(|a, b| (a.received_at, &a.id).cmp(&(b.received_at, &b.id)));
        Ok(out)
    }

    /// Up to `limit` waiting notifications, oldest first, left in the inbox: the job that handles
    /// them removes them in the transaction that commits its round ([`crate::RoundCommit`]), so a crash in
    /// between loses none.
    pub async fn peek_notifications(&self, limit: u32) -> StoreResult<Vec<InboxNotification>> {
        let rows = sqlx::query(
            "SELECT id, dedup_key, payload, received_at FROM notification_inbox \
             ORDER BY received_at, id LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(inbox_row).collect()
    }

    /// Removes handled notifications by id.
    pub async fn delete_notifications(&self, ids: &[String]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        delete_in(&mut tx, ids).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets dedup keys first seen before `before`; returns how many.
    pub async fn prune_notification_keys(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let done = self
            .execute_write(
                sqlx::query("DELETE FROM notification_keys WHERE seen_at < $1").bind(ts(before)),
            )
            .await?;
        Ok(done.rows_affected())
    }
}

/// Removes handled notifications inside the caller's transaction (the sync round that handled
/// them commits with it).
pub(crate) async fn delete_in(conn: &mut AnyConnection, ids: &[String]) -> StoreResult<()> {
    for part in ids.chunks(500) {
        let sql = format!(
            "DELETE FROM notification_inbox WHERE id IN ({})",
            crate::db::in_list(part.len(), 1)
        );
        let mut q = sqlx::query(&sql);
        for id in part {
            q = q.bind(id.as_str());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

fn inbox_row(r: &sqlx::any::AnyRow) -> StoreResult<InboxNotification> {
    let payload: String = r.try_get("payload")?;
    Ok(InboxNotification {
        id: r.try_get("id")?,
        dedup_key: r.try_get("dedup_key")?,
        payload: serde_json::from_str(&payload)
            .map_err(|e| corrupt(format!("stored notification: {e}")))?,
        received_at: parse_ts(&r.try_get::<String, _>("received_at")?)?,
    })
}
