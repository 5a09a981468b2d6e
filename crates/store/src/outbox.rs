//! The outbox of pbx365's own mail.
//!
//! The life of a row: `pending` (queued, maybe waiting for a retry) -> `sending` (claimed by the
//! worker holding the `mail` lease, with a fresh attempt id, in one fenced statement) -> `sent` or
//! back to `pending` (transient failure) or `failed` (with the reason). Each change after the
//! claim names the attempt id, so a worker that lost its lease cannot overwrite its successor's
//! outcome. A row found in `sending` by a new lease holder was interrupted between the hand-over
//! to the transport and the commit; it is failed, not resent (at-most-once; see `app::mail`).

use crate::db::{corrupt, is_unique_violation, parse_ts, parse_ts_opt, sortable_id, ts};
use crate::{Store, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use pbx365_domain::outbox::SendRecord;
use pbx365_domain::{MailAttachment, NewMail, OutboxMail, OutboxStatus};
use sqlx::any::AnyRow;
use sqlx::Row;

const COLS: &str = "id, recipients, subject, body, status, attempts, next_attempt_at, last_error, \
     created_at, kind, html_body, attachments, dedupe_key, sender, sent_at";

fn row_to_mail(r: &AnyRow) -> StoreResult<OutboxMail> {
    let to: String = r.try_get("recipients")?;
    let status: String = r.try_get("status")?;
    let attachments: String = r.try_get("attachments")?;
    Ok(OutboxMail {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        to: serde_json::from_str(&to).map_err(|e| corrupt(format!("stored recipients: {e}")))?,
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
        html: r.try_get("html_body")?,
        attachments: serde_json::from_str::<Vec<MailAttachment>>(&attachments)
            .map_err(|e| corrupt(format!("stored attachments: {e}")))?,
        status: OutboxStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("stored mail status '{status}' is unknown")))?,
        attempts: r.try_get::<i64, _>("attempts")?.clamp(0, u32::MAX as i64) as u32,
        next_attempt_at: parse_ts(&r.try_get::<String, _>("next_attempt_at")?)?,
        last_error: r.try_get("last_error")?,
        created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
        sent_at: parse_ts_opt(r.try_get("sent_at")?)?,
        sender: r.try_get("sender")?,
        dedupe_key: r.try_get("dedupe_key")?,
    })
}

/// How many mails are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Queued (pending).
    pub queued: u64,
    /// Being sent.
    pub sending: u64,
    /// Sent.
    pub sent: u64,
    /// Failed.
    pub failed: u64,
}

impl Store {
    /// Queues a plain-text mail (due now).
    pub async fn enqueue_mail(
        &self,
        to: &[String],
        subject: &str,
        body: &str,
    ) -> StoreResult<OutboxMail> {
        let new = NewMail {
            kind: "other".into(),
            to: to.to_vec(),
            subject: subject.into(),
            text: body.into(),
            ..NewMail::default()
        };
        self.queue_mail(&new, Utc::now())
            .await?
            .ok_or_else(|| StoreError::Conflict {
                what: "mail",
                key: String::new(),
            })
    }

    /// Queues a mail due at `now`; `None` when its dedupe key was queued before.
    pub async fn queue_mail(
        &self,
        new: &NewMail,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<OutboxMail>> {
        let mail = OutboxMail {
            id: sortable_id(),
            kind: if new.kind.is_empty() {
                "other".into()
            } else {
                new.kind.clone()
            },
            to: new.to.clone(),
            subject: new.subject.clone(),
            body: new.text.clone(),
            html: new.html.clone(),
            attachments: new.attachments.clone(),
            status: OutboxStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            sent_at: None,
            sender: None,
            dedupe_key: new.dedupe_key.clone(),
        };
        let done = sqlx::query(
            "INSERT INTO outbox (id, recipients, subject, body, status, attempts, next_attempt_at, \
             last_error, created_at, kind, html_body, attachments, recipient_count, dedupe_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(mail.id.as_str())
        .bind(serde_json::to_string(&mail.to).unwrap_or_else(|_| "[]".into()))
        .bind(mail.subject.as_str())
        .bind(mail.body.as_str())
        .bind(mail.status.as_str())
        .bind(0i64)
        .bind(ts(now))
        .bind(None::<String>)
        .bind(ts(now))
        .bind(mail.kind.as_str())
        .bind(mail.html.as_deref())
        .bind(serde_json::to_string(&mail.attachments).unwrap_or_else(|_| "[]".into()))
        .bind(mail.to.len() as i64)
        .bind(mail.dedupe_key.as_deref())
        .execute(&self.pool)
        .await;
        match done {
            Ok(_) => Ok(Some(mail)),
            Err(e) if mail.dedupe_key.is_some() && is_unique_violation(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
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

    /// Every pending mail's (not before, recipient count), in the order the worker sends them
    /// (for the expected send times of a burst).
    pub async fn queued_mail_order(
        &self,
        limit: u32,
    ) -> StoreResult<Vec<(String, DateTime<Utc>, u32)>> {
        let rows = sqlx::query(
            "SELECT id, next_attempt_at, recipient_count FROM outbox WHERE status = 'pending' \
             ORDER BY next_attempt_at, id LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("id")?,
                    parse_ts(&r.try_get::<String, _>("next_attempt_at")?)?,
                    r.try_get::<i64, _>("recipient_count")?
                        .clamp(0, u32::MAX as i64) as u32,
                ))
            })
            .collect()
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

    /// Claims a pending mail for one attempt: `sending`, stamped with `attempt_id`, `sender` and
    /// `now` — only while the lease `lease` is held by `holder` with fencing token `token`, so a
    /// worker that lost its lease claims nothing. False when the mail was not pending or the
    /// lease is gone.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_mail(
        &self,
        id: &str,
        attempt_id: &str,
        sender: &str,
        now: DateTime<Utc>,
        lease: &str,
        holder: &str,
        token: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'sending', attempt_id = $2, sender = $3, sent_at = $4, \
             attempts = attempts + 1 WHERE id = $1 AND status = 'pending' AND EXISTS (SELECT 1 \
             FROM leases WHERE name = $5 AND holder = $6 AND token = $7 AND expires_at >= $4)",
        )
        .bind(id)
        .bind(attempt_id)
        .bind(sender)
        .bind(ts(now))
        .bind(lease)
        .bind(holder)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that attempt `attempt_id` was accepted by the transport.
    pub async fn mail_sent(&self, id: &str, attempt_id: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'sent', last_error = NULL \
             WHERE id = $1 AND attempt_id = $2 AND status = 'sending'",
        )
        .bind(id)
        .bind(attempt_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts attempt `attempt_id` back in the queue until `next_at` (a transient failure: it was
    /// not accepted, so it does not count against the sender's limits).
    pub async fn mail_retry(
        &self,
        id: &str,
        attempt_id: &str,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', next_attempt_at = $3, last_error = $4, \
             sent_at = NULL WHERE id = $1 AND attempt_id = $2 AND status = 'sending'",
        )
        .bind(id)
        .bind(attempt_id)
        .bind(ts(next_at))
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives attempt `attempt_id` up with `reason`; `counted` keeps its send time (it may have
    /// been accepted), otherwise it no longer counts against the sender's limits.
    pub async fn mail_failed(
        &self,
        id: &str,
        attempt_id: &str,
        reason: &str,
        counted: bool,
    ) -> StoreResult<bool> {
        let sql = if counted {
            "UPDATE outbox SET status = 'failed', last_error = $3 \
             WHERE id = $1 AND attempt_id = $2 AND status = 'sending'"
        } else {
            "UPDATE outbox SET status = 'failed', last_error = $3, sent_at = NULL \
             WHERE id = $1 AND attempt_id = $2 AND status = 'sending'"
        };
        let done = sqlx::query(sql)
            .bind(id)
            .bind(attempt_id)
            .bind(reason)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Fails a pending mail without an attempt (e.g. an attachment that can never be sent).
    pub async fn fail_pending_mail(&self, id: &str, reason: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'failed', last_error = $2 WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Mail left in `sending` (by a worker that died or lost its lease mid-send).
    pub async fn interrupted_mail(&self) -> StoreResult<Vec<OutboxMail>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM outbox WHERE status = 'sending' ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_mail).collect()
    }

    /// Fails every mail still in `sending` with `reason`, keeping its send time (it may have been
    /// accepted); returns how many.
    pub async fn fail_interrupted_mail(&self, reason: &str) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'failed', last_error = $1 WHERE status = 'sending'",
        )
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Sends by `sender` since `since` (time, recipients), for pacing: every attempt that may
    /// have been accepted (sent, being sent, or failed after being handed over).
    pub async fn recent_mail_sends(
        &self,
        sender: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<SendRecord>> {
        let rows = sqlx::query(
            "SELECT sent_at, recipient_count FROM outbox WHERE sender = $1 AND sent_at IS NOT NULL \
             AND sent_at > $2",
        )
        .bind(sender)
        .bind(ts(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse_ts(&r.try_get::<String, _>("sent_at")?)?,
                    r.try_get::<i64, _>("recipient_count")?
                        .clamp(0, u32::MAX as i64) as u32,
                ))
            })
            .collect()
    }

    /// Queues a failed mail again (the console's Retry), due at `now`; false when it is not failed.
    pub async fn retry_failed_mail(&self, id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', next_attempt_at = $2, attempt_id = NULL \
             WHERE id = $1 AND status = 'failed'",
        )
        .bind(id)
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One mail.
    pub async fn get_mail(&self, id: &str) -> StoreResult<Option<OutboxMail>> {
        let row = sqlx::query(&format!("SELECT {COLS} FROM outbox WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_mail).transpose()
    }

    /// How many mails are in each state.
    pub async fn mail_counts(&self) -> StoreResult<OutboxCounts> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        let mut c = OutboxCounts::default();
        for r in rows {
            let n = r.try_get::<i64, _>("n")?.max(0) as u64;
            match r.try_get::<String, _>("status")?.as_str() {
                "pending" => c.queued = n,
                "sending" => c.sending = n,
                "sent" => c.sent = n,
                "failed" => c.failed = n,
                _ => {}
            }
        }
        Ok(c)
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
