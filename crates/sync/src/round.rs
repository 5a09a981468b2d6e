//! The one sync round every kind runs: full reconciliation or delta round over a resource's delta
//! query, each page applied with its cursor in one transaction, guarded against mass deletion,
//! recorded as a run with its report.
//!
//! Crash safety: a full round stores, per page, the ids the page wants (`sync:{scope}:seen:{k}`)
//! and then the page's creates/updates together with the next link (`cursor:{scope}`). Removals,
//! which can only be known at the end of a full round (absence), are applied at the end in one
//! transaction with the delta link, after the mass-deletion guard. A delta round reads all its
//! pages (they are small), plans them together, and applies everything plus the new delta link in
//! one transaction. A crash anywhere therefore resumes from the last committed link and replays at
//! most one page, which is idempotent.
//!
//! https://learn.microsoft.com/graph/delta-query-overview

use chrono::Utc;
use pbx365_domain::deletion_guard::{deletion_keys, Guard};
use pbx365_domain::{SyncReport, SyncRun, SyncStatus};
use pbx365_graph::{DeltaPage, GraphError, NextOrDelta};
use pbx365_store::{Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::cursor::{Approval, Cursor, Keys, Phase};
use crate::error::{SyncError, SyncResult};
use crate::kind::{RoundKind, Step, SyncResource};

/// A progress report: `done` of `total` (unknown for delta reads) in `stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The kind being read and applied (`users`), or a later stage such as `photos`.
    pub stage: &'static str,
    /// Items done.
    pub done: u64,
    /// Items expected, when known.
    pub total: Option<u64>,
}

/// A progress callback (the CLI drives an indicatif bar with it).
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// How to run.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Full reconciliation even when a delta link is stored.
    pub full: bool,
    /// Compute the report without writing anything (not even the run record).
    pub dry_run: bool,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
    /// Told (with the other holder's name) when the run waits for a sync on another instance.
    pub on_wait: Option<WaitFn>,
}

/// A callback told that a run waits for another instance's sync.
pub type WaitFn = Arc<dyn Fn(&str) + Send + Sync>;

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("full", &self.full)
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

impl RunOptions {
    fn report_progress(&self, stage: &'static str, done: u64, total: Option<u64>) {
        if let Some(p) = &self.progress {
            p(Progress { stage, done, total });
        }
    }
}

/// How often a round plans again after a write conflict before it fails.
const MAX_REPLANS: u32 = 2;

/// How often an interrupted full round starts again after its link expired before it fails.
const MAX_RESTARTS: u32 = 2;

enum Decision {
    Apply,
    Hold(String),
}

/// Runs one round of `resource`: a delta round when a delta link is stored and nothing forces a
/// full round, else a full reconciliation. Records the run (unless dry) and returns it.
pub async fn run<R: SyncResource>(
    store: &Store,
    resource: &R,
    opts: &RunOptions,
) -> SyncResult<SyncRun> {
    let kind = resource.kind();
    let started_at = Utc::now();
    let record = if opts.dry_run {
        None
    } else {
        Some(store.start_sync_run(kind).await?)
    };
    let mut report = SyncReport::default();
    let round = Round {
        store,
        resource,
        keys: Keys::new(resource.scope_key()),
        opts,
    };
    let mut replans = 0;
    let outcome = loop {
        match round.run(&mut report).await {
            // Another writer took a number this round planned: nothing of that page was written.
            // Plan again from the committed cursor with a fresh view of what is taken.
            Err(SyncError::Store(StoreError::NumberTaken { numbers })) if replans < MAX_REPLANS => {
                replans += 1;
                tracing::info!(
                    ?numbers,
                    "planned numbers were taken meanwhile; planning again"
                );
                report.push_error(format!(
                    "extension numbers {} were taken by another extension while this run planned \
                     them; those users got the next free numbers",
                    numbers.join(", ")
                ));
            }
            other => break other,
        }
    };
    let status = match outcome {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, kind = kind.as_str(), "sync failed");
            report.push_error(e.to_string());
            SyncStatus::Failed
        }
    };
    metrics::counter!("pbx365_sync_runs_total", "kind" => kind.as_str(), "status" => status.as_str())
        .increment(1);
    match record {
        Some(run) => Ok(store.finish_sync_run_with(run, status, report).await?),
        None => Ok(SyncRun {
            id: format!("dry-run-{}", uuid::Uuid::new_v4()),
            kind,
            status: if status == SyncStatus::Failed {
                SyncStatus::Failed
            } else {
                SyncStatus::DryRun
            },
            started_at,
            finished_at: Some(Utc::now()),
            report,
        }),
    }
}

struct Round<'a, R: SyncResource> {
    store: &'a Store,
    resource: &'a R,
    keys: Keys,
    opts: &'a RunOptions,
}

impl<R: SyncResource> Round<'_, R> {
    fn stage(&self) -> &'static str {
        self.resource.kind().as_str()
    }

    async fn run(&self, report: &mut SyncReport) -> SyncResult<SyncStatus> {
        let prepared = self.resource.prepare().await?;
        let mut state = prepared.state;
        let cursor = self
            .store
            .get_kv(&self.keys.cursor())
            .await?
            .and_then(|v| Cursor::decode(&v));
        let stored_fp = self.store.get_kv(&self.keys.fingerprint()).await?;
        let settings_changed = stored_fp.as_deref() != Some(prepared.fingerprint.as_str());
        let fingerprint = prepared.fingerprint;

        let delta_link = match &cursor {
            Some(c) if c.phase == Phase::Delta => Some(c.link.clone()),
            _ => None,
        };
        let forced = prepared.force_full.is_some();
        if let (Some(link), false, false, false) =
            (&delta_link, self.opts.full, forced, settings_changed)
        {
            match self.delta_round(&mut state, link, report).await {
                Err(SyncError::Graph(GraphError::DeltaExpired { .. })) => {
                    tracing::info!(
                        scope = self.keys.cursor(),
                        "the delta link expired; running a full resync"
                    );
                    // A fresh state: the failed delta round planned nothing that was applied.
                    state = self.resource.prepare().await?.state;
                }
                other => return other,
            }
            return self
                .full_round(&mut state, None, &fingerprint, report)
                .await;
        }
        if let Some(why) = prepared.force_full {
            tracing::info!(scope = self.keys.cursor(), "{why}; running a full round");
        }
        // Resume an interrupted full round unless a fresh one was asked for or settings changed.
        let resume = cursor.filter(|c| {
            matches!(c.phase, Phase::Full | Phase::Finishing)
                && !self.opts.full
                && !self.opts.dry_run
                && !settings_changed
        });
        self.full_round(&mut state, resume, &fingerprint, report)
            .await
    }

    /// A full reconciliation (first sync, nightly, after an expired link or a settings change).
    async fn full_round(
        &self,
        state: &mut R::State,
        resume: Option<Cursor>,
        fingerprint: &str,
        report: &mut SyncReport,
    ) -> SyncResult<SyncStatus> {
        let dry = self.opts.dry_run;
        let start = self.resource.first_link();
        let (mut link, mut pages, finishing) = match &resume {
            Some(c) => (c.link.clone(), c.pages, c.phase == Phase::Finishing),
            None => (start.clone(), 0, false),
        };
        let mut wanted: HashSet<String> = HashSet::new();
        for k in 0..pages {
            wanted.extend(self.load_seen(k).await?);
        }
        if pages > 0 && !dry {
            // The page applied last before the interruption may not have had its follow-up work.
            let last = self.load_seen(pages - 1).await?;
            self.resource
                .after_apply(state, &last, &HashSet::new(), report)
                .await?;
        }
        let mut done: u64 = wanted.len() as u64;
        // Removals found on a page wait for the end of the round and the guard.
        let mut deferred: Step<R::Op> = Step::default();
        let mut restarts = 0;
        // The next page, read while this page's follow-up work runs (Graph latency overlaps).
        let mut prefetched: Option<SyncResult<DeltaPage<R::Item>>> = None;
        let delta_link = if finishing {
            link
        } else {
            loop {
                let fetched = match prefetched.take() {
                    Some(p) => p,
                    None => self.resource.read_page(&link).await,
                };
                let page = match fetched {
                    Ok(p) => p,
                    Err(SyncError::Graph(GraphError::DeltaExpired { .. }))
                        if pages > 0 && restarts < MAX_RESTARTS =>
                    {
                        restarts += 1;
                        deferred = Step::default();
                        tracing::info!(
                            "the interrupted full round's link expired; starting the round again"
                        );
                        link = start.clone();
                        pages = 0;
                        wanted.clear();
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let read = page.items.len() as u64;
                let mut step = self
                    .resource
                    .plan(state, page.items, RoundKind::Full)
                    .await?;
                let next_cursor = match &page.next {
                    NextOrDelta::Next(l) => Cursor::new(Phase::Full, l.clone(), pages + 1),
                    NextOrDelta::Delta(l) => Cursor::new(Phase::Finishing, l.clone(), pages + 1),
                };
                deferred.destructive.append(&mut step.destructive);
                deferred.report.disabled.append(&mut step.report.disabled);
                deferred.report.deleted.append(&mut step.report.deleted);
                if !dry {
                    let ids = serde_json::to_string(&step.wanted).unwrap_or_else(|_| "[]".into());
                    self.store.set_kv(&self.keys.seen(pages), &ids).await?;
                    let created = created_ids(&step);
                    self.resource
                        .apply(
                            std::mem::take(&mut step.ops),
                            (&self.keys.cursor(), &next_cursor.encode()),
                        )
                        .await?;
                    report.append(std::mem::take(&mut step.report));
                    let follow_up =
                        self.resource
                            .after_apply(state, &step.wanted, &created, report);
                    match &page.next {
                        NextOrDelta::Next(l) => {
                            let (done, next) = tokio::join!(follow_up, self.resource.read_page(l));
                            done?;
                            prefetched = Some(next);
                        }
                        NextOrDelta::Delta(_) => follow_up.await?,
                    }
                    // Applied and wanted: no longer needed in memory (a large round stays small).
                    self.resource.forget(state, &step.wanted);
                } else {
                    report.append(std::mem::take(&mut step.report));
                }
                done += read;
                pages += 1;
                wanted.extend(step.wanted);
                self.opts.report_progress(self.stage(), done, None);
                match page.next {
                    NextOrDelta::Next(l) => link = l,
                    NextOrDelta::Delta(l) => break l,
                }
            }
        };

        // End of the round: what no page wanted is gone.
        let implausible = self.resource.implausible(state, &wanted);
        let mut end = deferred;
        end.extend(self.resource.plan_end(state, &wanted, RoundKind::Full));
        match self
            .decide(state, &end.report, end.destructive.len(), implausible)
            .await?
        {
            Decision::Apply => {
                if !dry {
                    let cursor = Cursor::new(Phase::Delta, delta_link, 0);
                    self.resource
                        .apply(end.destructive, (&self.keys.cursor(), &cursor.encode()))
                        .await?;
                    self.store
                        .set_kv(&self.keys.fingerprint(), fingerprint)
                        .await?;
                    self.resource.completed(state).await?;
                    self.clear_seen(pages).await?;
                }
                report.append(end.report);
                Ok(SyncStatus::Completed)
            }
            Decision::Hold(why) => {
                if !dry {
                    // The removals were not applied, so the next run must see everything again.
                    let cursor = Cursor::new(Phase::Full, start, 0);
                    self.store
                        .set_kv(&self.keys.cursor(), &cursor.encode())
                        .await?;
                    self.clear_seen(pages).await?;
                }
                report.append(end.report);
                report.push_error(why);
                Ok(SyncStatus::Held)
            }
        }
    }

    /// A delta round: all pages are read, planned together and applied in one transaction with
    /// the new delta link; a held round applies nothing and keeps the old link.
    async fn delta_round(
        &self,
        state: &mut R::State,
        link: &str,
        report: &mut SyncReport,
    ) -> SyncResult<SyncStatus> {
        let mut link = link.to_string();
        // Latest state per id: the same entity can appear more than once in a round.
        let mut order: Vec<String> = Vec::new();
        let mut latest: HashMap<String, R::Item> = HashMap::new();
        let delta_link = loop {
            let page = self.resource.read_page(&link).await?;
            for item in page.items {
                let id = R::item_id(&item).to_string();
                if latest.insert(id.clone(), item).is_none() {
                    order.push(id);
                }
            }
            match page.next {
                NextOrDelta::Next(l) => link = l,
                NextOrDelta::Delta(l) => break l,
            }
        };
        let items: Vec<R::Item> = order
            .into_iter()
            .filter_map(|id| latest.remove(&id))
            .collect();
        let read = items.len() as u64;
        let mut step = self.resource.plan(state, items, RoundKind::Delta).await?;
        let wanted: HashSet<String> = step.wanted.iter().cloned().collect();
        step.extend(self.resource.plan_end(state, &wanted, RoundKind::Delta));
        let would = SyncReport {
            disabled: step.report.disabled.clone(),
            deleted: step.report.deleted.clone(),
            ..Default::default()
        };
        match self
            .decide(state, &would, step.destructive.len(), None)
            .await?
        {
            Decision::Apply => {
                if !self.opts.dry_run {
                    let mut ops = std::mem::take(&mut step.ops);
                    ops.append(&mut step.destructive);
                    let cursor = Cursor::new(Phase::Delta, delta_link, 0);
                    let created = created_ids(&step);
                    self.resource
                        .apply(ops, (&self.keys.cursor(), &cursor.encode()))
                        .await?;
                    self.resource.completed(state).await?;
                    report.append(std::mem::take(&mut step.report));
                    self.resource
                        .after_apply(state, &step.wanted, &created, report)
                        .await?;
                }
                report.append(step.report);
                self.opts.report_progress(self.stage(), read, Some(read));
                Ok(SyncStatus::Completed)
            }
            Decision::Hold(why) => {
                report.append(step.report);
                report.push_error(why);
                Ok(SyncStatus::Held)
            }
        }
    }

    /// The mass-deletion guard with its one-shot approval.
    async fn decide(
        &self,
        state: &R::State,
        would: &SyncReport,
        count: usize,
        implausible: Option<String>,
    ) -> SyncResult<Decision> {
        let guard = self.resource.guard(state, count);
        if guard == Guard::Pass && implausible.is_none() {
            return Ok(Decision::Apply);
        }
        let approval_key = self.keys.approval();
        let stored = self.store.get_kv(&approval_key).await?;
        let approval = stored.as_deref().and_then(Approval::decode);
        if let Some(approval) = approval.filter(|a| a.valid_at(Utc::now())) {
            if let Some(run) = self.store.get_sync_run(&approval.run).await? {
                let allowed = deletion_keys(&run.report);
                let now = deletion_keys(would);
                if run.status == SyncStatus::Held && now.is_subset(&allowed) {
                    // Consumed before applying, by exactly one run in the cluster: a crash costs
                    // a new approval, never a second mass delete.
                    let consumed = self.opts.dry_run
                        || self
                            .store
                            .take_kv(&approval_key, stored.as_deref().unwrap_or_default())
                            .await?;
                    if consumed {
                        tracing::warn!(count, approved_run = %approval.run, "applying deletions approved by an admin");
                        return Ok(Decision::Apply);
                    }
                }
            }
        }
        let why = match implausible {
            Some(msg) => {
                format!("held: {msg}; approve the deletions in the console if this is intended")
            }
            None => self.resource.held_reason(guard),
        };
        tracing::warn!(
            count,
            kind = self.stage(),
            "sync held by the mass-deletion guard"
        );
        metrics::counter!("pbx365_sync_held_total").increment(1);
        Ok(Decision::Hold(why))
    }

    async fn load_seen(&self, k: u32) -> SyncResult<Vec<String>> {
        Ok(self
            .store
            .get_kv(&self.keys.seen(k))
            .await?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default())
    }

    async fn clear_seen(&self, pages: u32) -> SyncResult<()> {
        for k in 0..pages {
            self.store.delete_kv(&self.keys.seen(k)).await?;
        }
        // Leftovers of an older, longer round.
        let mut k = pages;
        while self.store.get_kv(&self.keys.seen(k)).await?.is_some() {
            self.store.delete_kv(&self.keys.seen(k)).await?;
            k += 1;
        }
        Ok(())
    }
}

/// The ids a step created (named in the report's `created` lines).
fn created_ids<Op>(step: &Step<Op>) -> HashSet<String> {
    step.report
        .created
        .iter()
        .filter_map(|i| i.m365_id.clone())
        .collect()
}
