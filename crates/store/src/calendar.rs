//! Calendar status (SPEC §6): stored timelines (what the scheduler rebuilds from after a
//! restart) and the calendar's compare-and-set profile write (it owns only the profile fields
//! and never overwrites a change it has not seen).

use crate::db::{corrupt, parse_ts, parse_ts_opt, ts};
use crate::{Store, StoreResult};
use chrono::{DateTime, Utc};
use pbx365_domain::calendar::Timeline;
use pbx365_domain::{AuditEntry, ProfileState};
use sqlx::Row;

/// One followed extension's timeline as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTimeline {
    /// Extension number.
    pub number: String,
    /// The Microsoft 365 user whose calendar it is.
    pub m365_id: String,
    /// The entries as last read.
    pub timeline: Timeline,
    /// The calendarView delta link to read on from, if any.
    pub delta_link: Option<String>,
    /// The end of the window the delta link covers.
    pub window_end: Option<DateTime<Utc>>,
    /// The last instant the scheduler acted on.
    pub handled_until: DateTime<Utc>,
    /// When it was read.
    pub read_at: DateTime<Utc>,
}

const COLUMNS: &str = "number, m365_id, entries, delta_link, window_end, handled_until, read_at";

fn row_to_timeline(r: &sqlx::any::AnyRow) -> StoreResult<StoredTimeline> {
    let entries: String = r.try_get("entries")?;
    Ok(StoredTimeline {
        number: r.try_get("number")?,
        m365_id: r.try_get("m365_id")?,
        timeline: serde_json::from_str(&entries)
            .map_err(|e| corrupt(format!("stored calendar timeline is not readable: {e}")))?,
        delta_link: r.try_get("delta_link")?,
        window_end: parse_ts_opt(r.try_get("window_end")?)?,
        handled_until: parse_ts(&r.try_get::<String, _>("handled_until")?)?,
        read_at: parse_ts(&r.try_get::<String, _>("read_at")?)?,
    })
}

impl Store {
    /// Stores (or replaces) a timeline as read; `handled_until` is kept when the row exists.
    pub async fn put_timeline(&self, t: &StoredTimeline) -> StoreResult<()> {
        let entries = serde_json::to_string(&t.timeline)
            .map_err(|e| corrupt(format!("calendar timeline cannot be stored: {e}")))?;
        self.execute_write(
            sqlx::query(
                "INSERT INTO calendar_timelines (number, m365_id, entries, delta_link, window_end, handled_until, read_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (number) DO UPDATE SET m365_id = excluded.m365_id, \
                 entries = excluded.entries, delta_link = excluded.delta_link, window_end = excluded.window_end, \
                 read_at = excluded.read_at",
            )
            .bind(t.number.as_str())
            .bind(t.m365_id.as_str())
            .bind(entries)
            .bind(t.delta_link.as_deref())
            .bind(t.window_end.map(ts))
            .bind(ts(t.handled_until))
            .bind(ts(t.read_at)),
        )
        .await?;
        Ok(())
    }

    /// Every stored timeline, by number.
    pub async fn list_timelines(&self) -> StoreResult<Vec<StoredTimeline>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM calendar_timelines ORDER BY number"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_timeline).collect()
    }

    /// The stored timeline of one extension.
    pub async fn get_timeline(&self, number: &str) -> StoreResult<Option<StoredTimeline>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM calendar_timelines WHERE number = $1"
        ))
        .bind(number)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_timeline).transpose()
    }

    /// Records the last instant the scheduler acted on for an extension.
    pub async fn set_timeline_handled(&self, number: &str, at: DateTime<Utc>) -> StoreResult<()> {
        self.execute_write(
            sqlx::query("UPDATE calendar_timelines SET handled_until = $2 WHERE number = $1")
                .bind(number)
                .bind(ts(at)),
        )
        .await?;
        Ok(())
    }

    /// Forgets an extension's timeline (no longer followed).
    pub async fn delete_timeline(&self, number: &str) -> StoreResult<()> {
        self.execute_write(
            sqlx::query("DELETE FROM calendar_timelines WHERE number = $1").bind(number),
        )
        .await?;
        Ok(())
    }

    /// One pass of the calendar scheduler in ONE transaction (a burst of switches at the same
    /// instant costs one commit): each `(number, expected, new, audit)` profile write only if
    /// the extension still has `expected`, its audit entry when it was written, and every
    /// `handled` mark. Returns, per write, whether it was written.
    pub async fn apply_calendar_pass(
        &self,
        writes: &[(String, ProfileState, ProfileState, Option<AuditEntry>)],
        handled: &[(String, DateTime<Utc>)],
    ) -> StoreResult<Vec<bool>> {
        let mut tx = self.begin_write().await?;
        let mut out = Vec::with_capacity(writes.len());
        for (number, expected, new, audit) in writes {
            let done = sqlx::query(
                "UPDATE extensions SET profile = $2, profile_source = $3, profile_until = $4, \
                 profile_return_to = $5, updated_at = $6 WHERE number = $1 AND profile = $7 \
                 AND profile_source = $8 AND COALESCE(profile_until, '') = $9 \
                 AND COALESCE(profile_return_to, '') = $10",
            )
            .bind(number.as_str())
            .bind(new.profile.as_str())
            .bind(new.source.as_str())
            .bind(new.until.map(ts))
            .bind(new.return_to.map(|p| p.as_str()))
            .bind(ts(Utc::now()))
            .bind(expected.profile.as_str())
            .bind(expected.source.as_str())
            .bind(expected.until.map(ts).unwrap_or_default())
            .bind(expected.return_to.map_or("", |p| p.as_str()))
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if let (true, Some(entry)) = (done, audit) {
                crate::audit::insert_in(&mut tx, entry).await?;
            }
            if done {
                // Kamailio routes on the profile: every process's pusher learns of it.
                crate::sip::note_sip_changes(
                    &mut tx,
                    &[number.as_str()],
                    crate::sip::SipChangeKind::Route,
                )
                .await?;
            }
            out.push(done);
        }
        for (number, at) in handled {
            sqlx::query("UPDATE calendar_timelines SET handled_until = $2 WHERE number = $1")
                .bind(number.as_str())
                .bind(ts(*at))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Sets the profile only if it still is `expected` (profile, source, until, return_to):
    /// the calendar never overwrites a change made since it looked. True when written.
    pub async fn set_profile_if(
        &self,
        number: &str,
        expected: &ProfileState,
        new: &ProfileState,
    ) -> StoreResult<bool> {
        let write = (number.to_string(), expected.clone(), new.clone(), None);
        Ok(self.apply_calendar_pass(&[write], &[]).await?[0])
    }
}
