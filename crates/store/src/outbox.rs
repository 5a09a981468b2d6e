//! The outbox of pbx365's own mail.

use crate::db::{corrupt, parse_ts, sortable_id, ts};
use crate::{Store, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use pbx365_domain::{OutboxMail, OutboxStatus};
use sqlx::any::AnyRow;
use sqlx::Row;

const COLS: &str =
    "id, recipients, subject, body, status, attempts, next_attempt_at, last_error, created_at";

fn row_to_mail(r: &AnyRow) -> StoreResult<OutboxMail> {
    let to: String = r.try_get("recipients")?;
    let status: String = r.try_get("status")?;
    Ok(OutboxMail {
        id: r.try_get("id")?,
        to: serde_json::from_str(&to).map_err(|e| corrupt(format!("stored recipients: {e}")))?,
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
        status: OutboxStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("stored mail status '{status}' is unknown")))?,
        attempts: r.try_get::<i64, _>("attempts")?.clamp(0, u32::MAX as i64) as u32,
        next_attempt_at: parse_ts(&r.try_get::<String, _>("next_attempt_at")?)?,
        last_error: r.try_get("last_error")?,
        created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
    })
}

impl Store {
    /// Queues a mail (due now).
    pub async fn enqueue_mail(
        &self,
        to: &[String],
        subject: &str,
        body: &str,
    ) -> StoreResult<OutboxMail> {
        let now = Utc::now();
        let mail = OutboxMail {
            id: sortable_id(),
            to: to.to_vec(),
            subject: subject.to_string(),
            body: body.to_string(),
            status: OutboxStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
        };
        sqlx::query(&format!(
            "INSERT INTO outbox ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(mail.id.as_str())
        .bind(serde_json::to_string(&mail.to).unwrap_or_else(|_| "[]".into()))
        .bind(subject)
        .bind(body)
        .bind(mail.status.as_str())
        .bind(0i64)
        .bind(ts(now))
        .bind(None::<String>)
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(mail)
    }

    /// Pending mail due at `now`, the longest waiting first.
    pub async fn due_mail(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<OutboxMail>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2"
        ))
        .bind(ts(now))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_mail).collect()
    }

    /// Saves a mail's new status/attempts/next attempt/error.
    pub async fn update_mail(&self, mail: &OutboxMail) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE outbox SET status = $2, attempts = $3, next_attempt_at = $4, last_error = $5 WHERE id = $1",
        )
        .bind(mail.id.as_str())
        .bind(mail.status.as_str())
        .bind(mail.attempts as i64)
        .bind(ts(mail.next_attempt_at))
        .bind(mail.last_error.as_deref())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "mail",
                key: mail.id.clone(),
            });
        }
        Ok(())
    }

    /// All mail, newest first.
    pub async fn list_mail(&self, limit: u32) -> StoreResult<Vec<OutboxMail>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM outbox ORDER BY created_at DESC, id DESC LIMIT $1"
        ))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_mail).collect()
    }
}
