//! SIP accounts: the digest hashes of each extension's SIP secret (SPEC §8), the routing
//! state Kamailio loads at start (the `sip_*` views of migration 0007 read the same rows), and
//! the feed of routing changes each pusher tails (`sip_changes`, migration 0008).

use crate::db::{in_list, placeholders, sortable_id, ts};
use crate::{Store, StoreResult};
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

/// Rows per multi-row insert into `sip_changes` (3 parameters each).
const CHANGE_CHUNK: usize = 300;

/// One extension's routing state as Kamailio holds it (views `sip_profiles`, `sip_names`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipRouting {
    /// The extension number (the SIP user).
    pub number: String,
    /// Its profile (`available`, `dnd`, …).
    pub profile: String,
    /// Its display name, put on the calls it places.
    pub display_name: String,
    /// Its mobile number (the `mobile` route), when it has one.
    pub mobile: Option<String>,
}

/// What a change in the feed asks of Kamailio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipChangeKind {
    /// The extension's routing state (profile, name, mobile, enabled, existence) may differ.
    Route,
    /// Its SIP secret changed: its registrations end.
    Secret,
}

impl SipChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            SipChangeKind::Route => "route",
            SipChangeKind::Secret => "secret",
        }
    }
}

/// One row of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipChange {
    /// Time-ordered id.
    pub id: String,
    /// The extension number.
    pub number: String,
    /// What changed.
    pub kind: SipChangeKind,
}

/// The smallest feed id a change written at or after `t` can have (ids start with the time).
pub fn sip_change_floor(t: DateTime<Utc>) -> String {
    format!(
        "{:016x}",
        t.timestamp_nanos_opt().unwrap_or(0).max(0) as u64
    )
}

/// Adds feed rows for `numbers` inside the caller's transaction.
pub(crate) async fn note_sip_changes(
    conn: &mut AnyConnection,
    numbers: &[&str],
    kind: SipChangeKind,
) -> StoreResult<()> {
    for chunk in numbers.chunks(CHANGE_CHUNK) {
        let sql = format!(
            "INSERT INTO sip_changes (id, number, kind) VALUES {}",
            placeholders(chunk.len(), 3, 1)
        );
        let mut q = sqlx::query(&sql);
        for n in chunk {
            q = q.bind(sortable_id()).bind(*n).bind(kind.as_str());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

impl Store {
    /// Stores (or replaces) the digest hashes of `number`'s SIP secret for `realm`: the old
    /// secret stops working with this write. Fails with `NotFound` for an unknown number.
    pub async fn set_sip_credentials(
        &self,
        number: &str,
        realm: &str,
        ha1: &str,
        ha1b: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO sip_credentials (number, realm, ha1, ha1b, created_at) \
             SELECT number, $2, $3, $4, $5 FROM extensions WHERE number = $1 \
             ON CONFLICT (number) DO UPDATE SET realm = excluded.realm, ha1 = excluded.ha1, \
             ha1b = excluded.ha1b, created_at = excluded.created_at",
        )
        .bind(number)
        .bind(realm)
        .bind(ha1)
        .bind(ha1b)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(crate::StoreError::NotFound {
                what: "extension",
                key: number.to_string(),
            });
        }
        note_sip_changes(&mut tx, &[number], SipChangeKind::Secret).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The realm `number`'s SIP secret was made for, if it has one.
    pub async fn sip_credentials_realm(&self, number: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT realm FROM sip_credentials WHERE number = $1")
                .bind(number)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Feed rows with an id above `after`, oldest first (at most `limit`).
    pub async fn sip_changes_after(&self, after: &str, limit: u32) -> StoreResult<Vec<SipChange>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT id, number, kind FROM sip_changes WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, number, kind)| SipChange {
                id,
                number,
                kind: if kind == "secret" {
                    SipChangeKind::Secret
                } else {
                    SipChangeKind::Route
                },
            })
            .collect())
    }

    /// Deletes feed rows with an id below `before`.
    pub async fn prune_sip_changes(&self, before: &str) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM sip_changes WHERE id < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Routing state of those of `numbers` that exist and are enabled.
    pub async fn sip_routings(&self, numbers: &[&str]) -> StoreResult<Vec<SipRouting>> {
        let mut out = Vec::with_capacity(numbers.len());
        for chunk in numbers.chunks(500) {
            let sql = format!(
                "SELECT number, profile, display_name, mobile FROM extensions \
                 WHERE enabled = 1 AND number IN ({})",
                in_list(chunk.len(), 1)
            );
            let mut q = sqlx::query_as::<_, (String, String, String, Option<String>)>(&sql);
            for n in chunk {
                q = q.bind(*n);
            }
            for (number, profile, display_name, mobile) in q.fetch_all(&self.pool).await? {
                out.push(SipRouting {
                    number,
                    profile,
                    display_name,
                    mobile: mobile.filter(|m| !m.is_empty()),
                });
            }
        }
        Ok(out)
    }

    /// Every enabled extension's (number, profile), as the view `sip_profiles` Kamailio loads:
    /// the presence a Kamailio that (re)started has to be given again.
    pub async fn sip_profiles(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(sqlx::query_as::<_, (String, String)>(
            "SELECT key_name, key_value FROM sip_profiles ORDER BY key_name",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
