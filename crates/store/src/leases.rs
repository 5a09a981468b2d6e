//! Job leases (SPEC §9): a job runs on exactly one instance of a cluster sharing the database.
//! A lease is a row with a holder, an expiry and a fencing token that grows with every new
//! holder; the holder renews it while working, and when it dies another instance takes the lease
//! over once it has expired. One code path serves SQLite and PostgreSQL.

use crate::db::ts;
use crate::{Store, StoreResult};
use chrono::{DateTime, Duration, Utc};
use sqlx::Row;

impl Store {
    /// Takes the lease `name` for `holder` until `now + ttl` when it is free, expired or already
    /// held by `holder`; returns the fencing token, or `None` while another holder has it.
    pub async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> StoreResult<Option<i64>> {
        let now = Utc::now();
        let row = sqlx::query(
            "INSERT INTO leases (name, holder, token, expires_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = leases.token + 1, \
             expires_at = excluded.expires_at \
             WHERE leases.expires_at < $4 OR leases.holder = excluded.holder RETURNING token",
        )
        .bind(name)
        .bind(holder)
        .bind(ts(now + ttl))
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get::<i64, _>("token")).transpose()?)
    }

    /// Extends a held lease to `now + ttl`; false when it was lost (expired and taken over).
    pub async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        token: i64,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE leases SET expires_at = $4 WHERE name = $1 AND holder = $2 AND token = $3",
        )
        .bind(name)
        .bind(holder)
        .bind(token)
        .bind(ts(Utc::now() + ttl))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a lease up so another instance can take it at once.
    pub async fn release_lease(&self, name: &str, holder: &str, token: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE leases SET expires_at = $4 WHERE name = $1 AND holder = $2 AND token = $3",
        )
        .bind(name)
        .bind(holder)
        .bind(token)
        .bind(ts(DateTime::<Utc>::UNIX_EPOCH))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The current holder of a lease that has not expired.
    pub async fn lease_holder(&self, name: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT holder FROM leases WHERE name = $1 AND expires_at >= $2")
            .bind(name)
            .bind(ts(Utc::now()))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>("holder")).transpose()?)
    }
}
