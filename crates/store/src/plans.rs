//! Sync plans (issue 9, "held means unchanged"): a round stores its whole plan, page by page,
//! before it applies anything, so that a held round changes nothing but this bookkeeping, an
//! admin approves exactly one stored plan, and a crash resumes planning or applying.

use crate::db::{corrupt, in_list, parse_ts, sortable_id, ts};
use crate::{Store, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use pbx365_domain::SyncReport;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// How many held plans of one scope are kept for an admin's approval (newest first).
const KEEP_HELD: i64 = 5;

/// Where a stored plan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanStatus {
    /// Pages are being read and planned.
    Planning,
    /// Over the mass-deletion guard: kept, unapplied, until an admin approves it or a later round
    /// completes.
    Held,
    /// Passed (or approved): its pages are being applied.
    Applying,
}

impl PlanStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Planning => "planning",
            PlanStatus::Held => "held",
            PlanStatus::Applying => "applying",
        }
    }

    fn parse(s: &str) -> Option<PlanStatus> {
        Some(match s {
            "planning" => PlanStatus::Planning,
            "held" => PlanStatus::Held,
            "applying" => PlanStatus::Applying,
            _ => return None,
        })
    }
}

/// A stored plan without its pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPlan {
    /// The plan's id.
    pub id: String,
    /// The scope key of the kind that planned it (`users`, `contacts:…`).
    pub scope: String,
    /// The run that planned it.
    pub run_id: String,
    /// Where it stands.
    pub status: PlanStatus,
    /// `full` or `delta`.
    pub round: String,
    /// The scope's cursor before the round (a held plan puts it back; `None`: there was none).
    pub prior_cursor: Option<String>,
    /// Where the next delta round starts once the plan is applied (known when planning ended).
    pub delta_link: Option<String>,
    /// The settings fingerprint the plan was made with.
    pub fingerprint: String,
    /// Pages stored.
    pub pages: u32,
    /// When planning started.
    pub created_at: DateTime<Utc>,
}

/// One stored page of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanPage {
    /// The kind's operations (JSON, written and read by the sync framework).
    pub ops: String,
    /// The report lines applying the page makes.
    pub report: SyncReport,
    /// The ids the page wants (follow-up work such as photos runs for them).
    pub wanted: Vec<String>,
}

/// Bookkeeping committed in one transaction with the end (or the hold) of a round: values to set
/// and remove in the key/value table, and the notification inbox rows the round handled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundCommit {
    /// Key/value rows to write.
    pub set: Vec<(String, String)>,
    /// Key/value rows to remove.
    pub unset: Vec<String>,
    /// Notification inbox rows that leave the inbox with this commit.
    pub inbox_done: Vec<String>,
}

const COLS: &str =
    "id, scope, run_id, status, round, prior_cursor, delta_link, fingerprint, pages, created_at";

fn row_to_plan(r: &AnyRow) -> StoreResult<SyncPlan> {
    let status: String = r.try_get("status")?;
    Ok(SyncPlan {
        id: r.try_get("id")?,
        scope: r.try_get("scope")?,
        run_id: r.try_get("run_id")?,
        status: PlanStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("stored plan status '{status}' is unknown")))?,
        round: r.try_get("round")?,
        prior_cursor: r.try_get("prior_cursor")?,
        delta_link: r.try_get("delta_link")?,
        fingerprint: r.try_get("fingerprint")?,
        pages: r.try_get::<i64, _>("pages")?.max(0) as u32,
        created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
    })
}

/// Writes `commit` inside the caller's transaction.
async fn commit_in(conn: &mut AnyConnection, commit: &RoundCommit) -> StoreResult<()> {
    for (key, value) in &commit.set {
        crate::kv::set_in(conn, key, value).await?;
    }
    for key in &commit.unset {
        sqlx::query("DELETE FROM kv WHERE name = $1")
            .bind(key.as_str())
            .execute(&mut *conn)
            .await?;
    }
    crate::notifications::delete_in(conn, &commit.inbox_done).await
}

/// Removes plans (with their pages) inside the caller's transaction.
async fn delete_plans_in(conn: &mut AnyConnection, ids: &[String]) -> StoreResult<()> {
    for part in ids.chunks(500) {
        for table in [("sync_plan_pages", "plan_id"), ("sync_plans", "id")] {
            let sql = format!(
                "DELETE FROM {} WHERE {} IN ({})",
                table.0,
                table.1,
                in_list(part.len(), 1)
            );
            let mut q = sqlx::query(&sql);
            for id in part {
                q = q.bind(id.as_str());
            }
            q.execute(&mut *conn).await?;
        }
    }
    Ok(())
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        what: "sync plan",
        key: id.to_string(),
    }
}

impl Store {
    /// Starts a plan for `scope` in `run_id`; returns its id.
    pub async fn create_sync_plan(
        &self,
        scope: &str,
        run_id: &str,
        round: &str,
        prior_cursor: Option<&str>,
        fingerprint: &str,
    ) -> StoreResult<String> {
        let id = sortable_id();
        sqlx::query(&format!(
            "INSERT INTO sync_plans ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, 0, $8)"
        ))
        .bind(id.as_str())
        .bind(scope)
        .bind(run_id)
        .bind(PlanStatus::Planning.as_str())
        .bind(round)
        .bind(prior_cursor)
        .bind(fingerprint)
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Stores page `page` of a plan together with the read cursor (`key`, `value`) in one
    /// transaction: a crash resumes planning after the last stored page.
    pub async fn put_sync_plan_page(
        &self,
        plan_id: &str,
        page: u32,
        content: &PlanPage,
        cursor: Option<(&str, &str)>,
    ) -> StoreResult<()> {
        let report = serde_json::to_string(&content.report)
            .map_err(|e| corrupt(format!("plan report cannot be written: {e}")))?;
        let wanted = serde_json::to_string(&content.wanted)
            .map_err(|e| corrupt(format!("plan ids cannot be written: {e}")))?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sync_plan_pages (plan_id, page, ops, report, wanted) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (plan_id, page) DO UPDATE SET ops = excluded.ops, report = excluded.report, \
             wanted = excluded.wanted",
        )
        .bind(plan_id)
        .bind(i64::from(page))
        .bind(content.ops.as_str())
        .bind(report)
        .bind(wanted)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("UPDATE sync_plans SET pages = $2 WHERE id = $1")
            .bind(plan_id)
            .bind(i64::from(page) + 1)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(plan_id));
        }
        if let Some((key, value)) = cursor {
            crate::kv::set_in(&mut tx, key, value).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Forgets the pages of a plan from `pages` on (planning starts again there), with the read
    /// cursor (`key`, `value`) in the same transaction.
    pub async fn truncate_sync_plan(
        &self,
        plan_id: &str,
        pages: u32,
        cursor: (&str, &str),
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        crate::kv::set_in(&mut tx, cursor.0, cursor.1).await?;
        sqlx::query("DELETE FROM sync_plan_pages WHERE plan_id = $1 AND page >= $2")
            .bind(plan_id)
            .bind(i64::from(pages))
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE sync_plans SET pages = $2 WHERE id = $1")
            .bind(plan_id)
            .bind(i64::from(pages))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One plan.
    pub async fn get_sync_plan(&self, id: &str) -> StoreResult<Option<SyncPlan>> {
        let row = sqlx::query(&format!("SELECT {COLS} FROM sync_plans WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_plan).transpose()
    }

    /// The plan a run made, if it is still kept.
    pub async fn sync_plan_of_run(&self, run_id: &str) -> StoreResult<Option<SyncPlan>> {
        let row = sqlx::query(&format!(
            "SELECT {COLS} FROM sync_plans WHERE run_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_plan).transpose()
    }

    /// One page of a plan.
    pub async fn sync_plan_page(&self, plan_id: &str, page: u32) -> StoreResult<Option<PlanPage>> {
        let row = sqlx::query(
            "SELECT ops, report, wanted FROM sync_plan_pages WHERE plan_id = $1 AND page = $2",
        )
        .bind(plan_id)
        .bind(i64::from(page))
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let report: String = r.try_get("report")?;
        let wanted: String = r.try_get("wanted")?;
        Ok(Some(PlanPage {
            ops: r.try_get("ops")?,
            report: serde_json::from_str(&report)
                .map_err(|e| corrupt(format!("stored plan report: {e}")))?,
            wanted: serde_json::from_str(&wanted)
                .map_err(|e| corrupt(format!("stored plan ids: {e}")))?,
        }))
    }

    /// What applying a plan would disable and delete: the `disabled` and `deleted` lines of all
    /// its pages, in page order (the console shows them for a held plan).
    pub async fn sync_plan_removals(&self, plan_id: &str) -> StoreResult<SyncReport> {
        let rows =
            sqlx::query("SELECT report FROM sync_plan_pages WHERE plan_id = $1 ORDER BY page")
                .bind(plan_id)
                .fetch_all(&self.pool)
                .await?;
        let mut out = SyncReport::default();
        for r in rows {
            let report: String = r.try_get("report")?;
            let mut report: SyncReport = serde_json::from_str(&report)
                .map_err(|e| corrupt(format!("stored plan report: {e}")))?;
            out.disabled.append(&mut report.disabled);
            out.deleted.append(&mut report.deleted);
        }
        Ok(out)
    }

    /// Holds a planned plan: its status becomes held, and `commit` (the scope's cursor put back,
    /// the handled notifications) is written in the same transaction. Only the newest held plans
    /// of the scope are kept.
    pub async fn hold_sync_plan(
        &self,
        plan_id: &str,
        delta_link: &str,
        commit: &RoundCommit,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let scope: Option<String> =
            sqlx::query_scalar("SELECT scope FROM sync_plans WHERE id = $1")
                .bind(plan_id)
                .fetch_optional(&mut *tx)
                .await?;
        let scope = scope.ok_or_else(|| not_found(plan_id))?;
        sqlx::query("UPDATE sync_plans SET status = $2, delta_link = $3 WHERE id = $1")
            .bind(plan_id)
            .bind(PlanStatus::Held.as_str())
            .bind(delta_link)
            .execute(&mut *tx)
            .await?;
        let older: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM sync_plans WHERE scope = $1 AND status = $2 \
             ORDER BY created_at DESC, id DESC",
        )
        .bind(scope.as_str())
        .bind(PlanStatus::Held.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let dropped: Vec<String> = older.into_iter().skip(KEEP_HELD as usize).collect();
        delete_plans_in(&mut tx, &dropped).await?;
        commit_in(&mut tx, commit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A planned plan passed the guard: it is applied next, from page 0; `cursor` (the applying
    /// phase) is written in the same transaction.
    pub async fn start_applying_sync_plan(
        &self,
        plan_id: &str,
        delta_link: &str,
        cursor: (&str, &str),
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE sync_plans SET status = $2, delta_link = $3 WHERE id = $1")
            .bind(plan_id)
            .bind(PlanStatus::Applying.as_str())
            .bind(delta_link)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(plan_id));
        }
        crate::kv::set_in(&mut tx, cursor.0, cursor.1).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Uses an admin's approval of a held plan, once in the whole cluster: in one transaction the
    /// approval row (`approval` = key, value) is removed only if it still holds that value, the
    /// plan goes from held to applying only if it is still held, and the applying `cursor` is
    /// written. True when this call won; otherwise nothing changed.
    pub async fn claim_held_sync_plan(
        &self,
        plan_id: &str,
        approval: (&str, &str),
        cursor: (&str, &str),
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let taken = sqlx::query("DELETE FROM kv WHERE name = $1 AND value = $2")
            .bind(approval.0)
            .bind(approval.1)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let claimed =
            sqlx::query("UPDATE sync_plans SET status = $2 WHERE id = $1 AND status = $3")
                .bind(plan_id)
                .bind(PlanStatus::Applying.as_str())
                .bind(PlanStatus::Held.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if taken != 1 || claimed != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        crate::kv::set_in(&mut tx, cursor.0, cursor.1).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Commits the end of a round of `scope`: `commit` (the delta cursor, the handled
    /// notifications, …) and the removal of every stored plan of the scope (a held plan is made
    /// against a state this round has changed), in one transaction.
    pub async fn commit_sync_round(&self, scope: &str, commit: &RoundCommit) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM sync_plans WHERE scope = $1")
            .bind(scope)
            .fetch_all(&mut *tx)
            .await?;
        delete_plans_in(&mut tx, &ids).await?;
        commit_in(&mut tx, commit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes the plans of `scope` that are neither held nor `keep` (left by an interrupted
    /// round that will not resume them); returns how many.
    pub async fn drop_stale_sync_plans(&self, scope: &str, keep: Option<&str>) -> StoreResult<u64> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM sync_plans WHERE scope = $1 AND status <> $2")
                .bind(scope)
                .bind(PlanStatus::Held.as_str())
                .fetch_all(&self.pool)
                .await?;
        let ids: Vec<String> = ids
            .into_iter()
            .filter(|id| Some(id.as_str()) != keep)
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        delete_plans_in(&mut tx, &ids).await?;
        tx.commit().await?;
        Ok(ids.len() as u64)
    }

    /// Removes one plan (given up after a write conflict, to be planned again).
    pub async fn drop_sync_plan(&self, plan_id: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        delete_plans_in(&mut tx, &[plan_id.to_string()]).await?;
        tx.commit().await?;
        Ok(())
    }
}
