//! Sync runs and their reports.

use crate::db::{corrupt, in_list, parse_ts, parse_ts_opt, sortable_id, ts};
use crate::{Store, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use pbx365_domain::{SyncKind, SyncReport, SyncRun, SyncStatus};
use sqlx::any::AnyRow;
use sqlx::Row;

const COLS: &str = "id, kind, status, started_at, finished_at, report";

fn row_to_run(r: &AnyRow) -> StoreResult<SyncRun> {
    let head = head_row(r)?;
    let report: String = r.try_get("report")?;
    Ok(SyncRun {
        id: head.id,
        kind: head.kind,
        status: head.status,
        started_at: head.started_at,
        finished_at: head.finished_at,
        report: serde_json::from_str(&report)
            .map_err(|e| corrupt(format!("stored sync report: {e}")))?,
    })
}

/// A run without its report: what a page needs to know that a run exists and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRunHead {
    /// The run's id.
    pub id: String,
    /// What it synced.
    pub kind: SyncKind,
    /// How it ended (or `running`).
    pub status: SyncStatus,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

fn report_json(report: &SyncReport) -> StoreResult<String> {
    serde_json::to_string(report)
        .map_err(|e| corrupt(format!("sync report cannot be written: {e}")))
}

/// Finishing a run: status, end time and report.
const FINISH_RUN: &str =
    "UPDATE sync_runs SET status = $2, finished_at = $3, report = $4 WHERE id = $1";

impl Store {
    /// Records the start of a run.
    pub async fn start_sync_run(&self, kind: SyncKind) -> StoreResult<SyncRun> {
        let run = SyncRun {
            id: sortable_id(),
            kind,
            status: SyncStatus::Running,
            started_at: Utc::now(),
            finished_at: None,
            report: SyncReport::default(),
        };
        let sql = format!("INSERT INTO sync_runs ({COLS}) VALUES ($1, $2, $3, $4, $5, $6)");
        self.execute_write(
            sqlx::query(&sql)
                .bind(run.id.as_str())
                .bind(kind.as_str())
                .bind(run.status.as_str())
                .bind(ts(run.started_at))
                .bind(None::<String>)
                .bind(report_json(&run.report)?),
        )
        .await?;
        Ok(run)
    }

    /// Records the end of a run with its report.
    pub async fn finish_sync_run(
        &self,
        id: &str,
        status: SyncStatus,
        report: &SyncReport,
    ) -> StoreResult<SyncRun> {
        let done = self
            .execute_write(
                sqlx::query(FINISH_RUN)
                    .bind(id)
                    .bind(status.as_str())
                    .bind(ts(Utc::now()))
                    .bind(report_json(report)?),
            )
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "sync run",
                key: id.to_string(),
            });
        }
        self.get_sync_run(id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "sync run",
                key: id.to_string(),
            })
    }

    /// Records the end of a run and returns the finished run built from `run` and `report`
    /// without reading it back: a 100,000-user report is not parsed again just to be returned.
    pub async fn finish_sync_run_with(
        &self,
        run: SyncRun,
        status: SyncStatus,
        report: SyncReport,
    ) -> StoreResult<SyncRun> {
        let finished_at = Utc::now();
        let json = report_json(&report)?;
        let done = self
            .execute_write(
                sqlx::query(FINISH_RUN)
                    .bind(run.id.as_str())
                    .bind(status.as_str())
                    .bind(ts(finished_at))
                    .bind(json),
            )
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "sync run",
                key: run.id,
            });
        }
        Ok(SyncRun {
            status,
            finished_at: Some(finished_at),
            report,
            ..run
        })
    }

    /// One run.
    pub async fn get_sync_run(&self, id: &str) -> StoreResult<Option<SyncRun>> {
        let row = sqlx::query(&format!("SELECT {COLS} FROM sync_runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_run).transpose()
    }

    /// Newest runs first.
    pub async fn list_sync_runs(&self, limit: u32) -> StoreResult<Vec<SyncRun>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM sync_runs ORDER BY started_at DESC, id DESC LIMIT $1"
        ))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_run).collect()
    }

    /// The newest finished run of one of `kinds`, without its report (one small row: the
    /// console reads it on every page).
    pub async fn latest_finished_sync_run(
        &self,
        kinds: &[SyncKind],
    ) -> StoreResult<Option<SyncRunHead>> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT id, kind, status, started_at, finished_at FROM sync_runs \
             WHERE status <> $1 AND kind IN ({}) ORDER BY started_at DESC, id DESC LIMIT 1",
            in_list(kinds.len(), 2)
        );
        let mut q = sqlx::query(&sql).bind(SyncStatus::Running.as_str());
        for k in kinds {
            q = q.bind(k.as_str());
        }
        let Some(r) = q.fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        head_row(&r).map(Some)
    }

    /// The runs recorded as running, oldest first, without their reports. While the caller holds
    /// the job lease these were left by an instance that stopped mid-round.
    pub async fn unfinished_sync_runs(&self) -> StoreResult<Vec<SyncRunHead>> {
        let rows = sqlx::query(
            "SELECT id, kind, status, started_at, finished_at FROM sync_runs \
             WHERE status = $1 ORDER BY started_at, id",
        )
        .bind(SyncStatus::Running.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(head_row).collect()
    }

    /// Forgets finished runs that started before `before`, except the newest `keep_last` runs and
    /// the newest held run (it may still wait for an admin's approval); returns how many.
    pub async fn prune_sync_runs(&self, before: DateTime<Utc>, keep_last: u32) -> StoreResult<u64> {
        let done = self
            .execute_write(
                sqlx::query(
                    "DELETE FROM sync_runs WHERE started_at < $1 AND status <> $2 \
                     AND id NOT IN (SELECT id FROM sync_runs ORDER BY started_at DESC, id DESC LIMIT $3) \
                     AND id NOT IN (SELECT id FROM sync_runs WHERE status = $4 \
                                    ORDER BY started_at DESC, id DESC LIMIT 1)",
                )
                .bind(ts(before))
                .bind(SyncStatus::Running.as_str())
                .bind(i64::from(keep_last))
                .bind(SyncStatus::Held.as_str()),
            )
            .await?;
        Ok(done.rows_affected())
    }
}

/// A run's head (no report) from a row of `id, kind, status, started_at, finished_at`.
fn head_row(r: &AnyRow) -> StoreResult<SyncRunHead> {
    let kind: String = r.try_get("kind")?;
    let status: String = r.try_get("status")?;
    Ok(SyncRunHead {
        id: r.try_get("id")?,
        kind: SyncKind::parse(&kind)
            .ok_or_else(|| corrupt(format!("stored sync kind '{kind}' is unknown")))?,
        status: SyncStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("stored sync status '{status}' is unknown")))?,
        started_at: parse_ts(&r.try_get::<String, _>("started_at")?)?,
        finished_at: parse_ts_opt(r.try_get("finished_at")?)?,
    })
}
