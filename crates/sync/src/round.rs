//! The one sync round every kind runs: full reconciliation or delta round over a resource's delta
//! query, planned in full first, guarded against mass deletion, then applied page by page,
//! recorded as a run with its report.
//!
//! Plan, then apply (issue 9, "held means unchanged"):
//! 1. **Plan.** A full round reads page after page and stores each page's ops, report lines and
//!    wanted ids as a page of a stored plan, together with the next link (`cursor:{scope}`,
//!    phase `full`) in one transaction; only ids stay in memory. At the end, what no page wanted
//!    is gone: the removals are the plan's last page. A delta round reads all its pages, keeps the
//!    latest item per id, and stores its plan the same way.
//! 2. **Guard** over the whole plan. Over it, the plan is **held**: its status says so, the
//!    cursor is put back as it was, and nothing else in the store changes. An admin approves that
//!    one held plan; the next run claims the approval (once in the cluster), applies exactly that
//!    stored plan if the scope's cursor is still the one it was planned from, then goes on with a
//!    delta round from the plan's delta link.
//! 3. **Apply** page by page, each page's ops with the progress mark (phase `applying`) in one
//!    transaction, follow-up work (photos) after each page, then the end of the round (delta
//!    link, settings fingerprint, the notification inbox rows it handled) in one transaction that
//!    also drops the scope's stored plans.
//!
//! A SIGKILL while planning resumes planning after the last stored page; while applying, it
//! resumes applying after the last applied page. A plan whose write conflicts with another
//! writer (a number taken meanwhile) is given up and the round planned again.
//!
//! https://learn.microsoft.com/graph/delta-query-overview

use chrono::Utc;
use pbx365_domain::deletion_guard::Guard;
use pbx365_domain::{SyncReport, SyncRun, SyncStatus};
use pbx365_graph::{DeltaPage, GraphError, NextOrDelta};
use pbx365_store::{PlanPage, PlanStatus, RoundCommit, Store, StoreError, SyncPlan};
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
    /// Notification inbox rows this run handles: they leave the inbox in the transaction that
    /// commits (or holds) the round, and stay when the run fails.
    pub inbox: Vec<String>,
    /// Started by the background delta poll: kinds with their own schedule run only when due
    /// ([`crate::SyncJob::due`]).
    pub scheduled: bool,
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

/// How often a full round starts again after its next link expired (410) before it fails.
const MAX_RESTARTS: u32 = 2;

/// Items planned (and stored) together in a delta round.
const DELTA_CHUNK: usize = 1_000;

/// The `round` column of a full round's plan.
const FULL: &str = "full";
/// The `round` column of a delta round's plan.
const DELTA: &str = "delta";

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
        run_id: record.as_ref().map(|r| r.id.clone()).unwrap_or_default(),
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
    /// The run record's id (empty for a dry run, which stores no plan).
    run_id: String,
}

/// A plan being stored (or, in a dry run, only reported).
struct Planning {
    /// The stored plan; `None` in a dry run.
    id: Option<String>,
    /// Pages stored so far.
    pages: u32,
}

impl<R: SyncResource> Round<'_, R> {
    fn stage(&self) -> &'static str {
        self.resource.kind().as_str()
    }

    async fn run(&self, report: &mut SyncReport) -> SyncResult<SyncStatus> {
        if !self.opts.dry_run {
            self.finish_pending(report).await?;
        }
        self.round(report).await
    }

    /// A stored plan is pending: one an interrupted run was applying, or a held plan an admin
    /// approved. It is applied first; the round then goes on from its delta link.
    async fn finish_pending(&self, report: &mut SyncReport) -> SyncResult<()> {
        let raw = self.store.get_kv(&self.keys.cursor()).await?;
        let cursor = raw.as_deref().and_then(Cursor::decode);
        if let Some(c) = cursor.as_ref().filter(|c| c.phase == Phase::Applying) {
            if let Some(plan) = self.plan_of(c, PlanStatus::Applying).await? {
                tracing::info!(scope = self.keys.scope(), plan = %plan.id, applied = c.pages, "resuming an interrupted sync plan");
                let mut state = self.resource.prepare().await?.state;
                // The pages applied last may not have had all their follow-up work (photos).
                let redo = c.pages.saturating_sub(self.resource.follow_up_pages());
                for k in redo..c.pages {
                    let page = self.load_page(&plan.id, k).await?;
                    self.resource
                        .replay(&mut state, &decode_ops::<R>(&page.ops)?);
                    self.resource
                        .after_apply(&mut state, &page.wanted, &HashSet::new(), report)
                        .await?;
                }
                // The lines of the pages applied before the interruption are in no report.
                return self
                    .apply_plan(&mut state, &plan, c.pages, c.pages, report)
                    .await;
            }
        }
        let approval_key = self.keys.approval();
        let Some(stored) = self.store.get_kv(&approval_key).await? else {
            return Ok(());
        };
        let Some(approval) = Approval::decode(&stored).filter(|a| a.valid_at(Utc::now())) else {
            return Ok(());
        };
        let plan = match &approval.plan {
            Some(id) => self.store.get_sync_plan(id).await?,
            None => self.store.sync_plan_of_run(&approval.run).await?,
        };
        let Some(plan) = plan.filter(|p| {
            p.status == PlanStatus::Held && p.scope == self.keys.scope() && p.prior_cursor == raw
        }) else {
            // Planned against a state another round has changed since: it no longer applies.
            return Ok(());
        };
        let delta = plan.delta_link.clone().unwrap_or_default();
        let applying = Cursor::in_plan(Phase::Applying, delta, 0, &plan.id);
        // Claimed by exactly one run in the cluster; a crash after this resumes the same plan.
        let claimed = self
            .store
            .claim_held_sync_plan(
                &plan.id,
                (&approval_key, &stored),
                (&self.keys.cursor(), &applying.encode()),
            )
            .await?;
        if !claimed {
            return Ok(());
        }
        tracing::warn!(approved_run = %approval.run, plan = %plan.id, "applying a held sync plan approved by an admin");
        let mut state = self.resource.prepare().await?.state;
        self.apply_plan(&mut state, &plan, 0, 0, report).await
    }

    /// The stored plan a cursor names, when it is in `status`.
    async fn plan_of(&self, c: &Cursor, status: PlanStatus) -> SyncResult<Option<SyncPlan>> {
        let Some(id) = c.plan.as_deref() else {
            return Ok(None);
        };
        Ok(self
            .store
            .get_sync_plan(id)
            .await?
            .filter(|p| p.status == status && p.scope == self.keys.scope()))
    }

    async fn round(&self, report: &mut SyncReport) -> SyncResult<SyncStatus> {
        let dry = self.opts.dry_run;
        let prepared = self.resource.prepare().await?;
        let mut state = prepared.state;
        let raw = self.store.get_kv(&self.keys.cursor()).await?;
        let cursor = raw.as_deref().and_then(Cursor::decode);
        let stored_fp = self.store.get_kv(&self.keys.fingerprint()).await?;
        let settings_changed = stored_fp.as_deref() != Some(prepared.fingerprint.as_str());
        let fingerprint = prepared.fingerprint;

        // An unfinished planning phase of a full round.
        let planning = match &cursor {
            Some(c) if matches!(c.phase, Phase::Full | Phase::Finishing) => {
                self.plan_of(c, PlanStatus::Planning).await?
            }
            _ => None,
        };
        // The cursor a held plan puts back: the one before the round.
        let prior = match (&cursor, &planning) {
            (_, Some(p)) => p.prior_cursor.clone(),
            (Some(c), None) if c.phase == Phase::Delta => raw.clone(),
            _ => None,
        };
        // Resumed unless a fresh round was asked for or the settings changed since it began.
        let resume = planning.filter(|p| !self.opts.full && !dry && p.fingerprint == fingerprint);
        if !dry {
            // Left by interrupted rounds that will not go on (held plans wait for approval).
            self.store
                .drop_stale_sync_plans(self.keys.scope(), resume.as_ref().map(|p| p.id.as_str()))
                .await?;
        }

        let delta_link = match &cursor {
            Some(c) if c.phase == Phase::Delta => Some(c.link.clone()),
            _ => None,
        };
        let forced = prepared.force_full.is_some();
        if let (Some(link), false, false, false) =
            (&delta_link, self.opts.full, forced, settings_changed)
        {
            match self
                .delta_round(&mut state, link, prior.clone(), &fingerprint, report)
                .await
            {
                Err(SyncError::Graph(GraphError::DeltaExpired { .. })) => {
                    tracing::info!(
                        scope = self.keys.cursor(),
                        "the delta link expired; running a full resync"
                    );
                    // A fresh state: the failed delta round planned nothing that was stored.
                    state = self.resource.prepare().await?.state;
                }
                other => return other,
            }
            return self
                .full_round(&mut state, None, prior, &fingerprint, report)
                .await;
        }
        if let Some(why) = prepared.force_full {
            tracing::info!(scope = self.keys.cursor(), "{why}; running a full round");
        }
        let resume = match (resume, cursor) {
            (Some(p), Some(c)) => Some((c, p)),
            _ => None,
        };
        self.full_round(&mut state, resume, prior, &fingerprint, report)
            .await
    }

    /// A full reconciliation (first sync, nightly, after an expired link or a settings change):
    /// planned page by page into a stored plan, then concluded.
    async fn full_round(
        &self,
        state: &mut R::State,
        resume: Option<(Cursor, SyncPlan)>,
        prior: Option<String>,
        fingerprint: &str,
        report: &mut SyncReport,
    ) -> SyncResult<SyncStatus> {
        let start = self.resource.first_link();
        let mut wanted: HashSet<String> = HashSet::new();
        let (mut plan, mut link, finishing) = match resume {
            Some((c, stored)) => {
                // The pages planned before the interruption: their ids, and what they will write.
                for k in 0..c.pages {
                    let page = self.load_page(&stored.id, k).await?;
                    self.resource.replay(state, &decode_ops::<R>(&page.ops)?);
                    wanted.extend(page.wanted);
                }
                let plan = Planning {
                    id: Some(stored.id),
                    pages: c.pages,
                };
                (plan, c.link, c.phase == Phase::Finishing)
            }
            None => {
                let id = if self.opts.dry_run {
                    None
                } else {
                    Some(
                        self.store
                            .create_sync_plan(
                                self.keys.scope(),
                                &self.run_id,
                                FULL,
                                prior.as_deref(),
                                fingerprint,
                            )
                            .await?,
                    )
                };
                let plan = Planning { id, pages: 0 };
                (plan, start.clone(), false)
            }
        };
        let mut done: u64 = wanted.len() as u64;
        // Removals found on a page wait for the end of the round and the guard.
        let mut deferred: Step<R::Op> = Step::default();
        let mut restarts = 0;
        let delta_link = if finishing {
            link.clone()
        } else {
            // The next page is read while this one is planned and stored.
            let mut prefetched: Option<SyncResult<DeltaPage<R::Item>>> = None;
            loop {
                let read = match prefetched.take() {
                    Some(r) => r,
                    None => self.resource.read_page(&link).await,
                };
                let page = match read {
                    Ok(p) => p,
                    Err(SyncError::Graph(GraphError::DeltaExpired { .. }))
                        if plan.pages > 0 && restarts < MAX_RESTARTS =>
                    {
                        restarts += 1;
                        tracing::info!(
                            "the full round's next link expired; starting the round again"
                        );
                        if let Some(id) = &plan.id {
                            let fresh = Cursor::in_plan(Phase::Full, start.clone(), 0, id);
                            self.store
                                .truncate_sync_plan(id, 0, (&self.keys.cursor(), &fresh.encode()))
                                .await?;
                        }
                        *state = self.resource.prepare().await?.state;
                        deferred = Step::default();
                        wanted.clear();
                        plan.pages = 0;
                        done = 0;
                        link = start.clone();
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let read = page.items.len() as u64;
                let next = plan.id.as_deref().map(|id| match &page.next {
                    NextOrDelta::Next(l) => {
                        Cursor::in_plan(Phase::Full, l.clone(), plan.pages + 1, id)
                    }
                    NextOrDelta::Delta(l) => {
                        Cursor::in_plan(Phase::Finishing, l.clone(), plan.pages + 1, id)
                    }
                });
                let next_link = match &page.next {
                    NextOrDelta::Next(l) => Some(l.clone()),
                    NextOrDelta::Delta(_) => None,
                };
                let prefetch = async {
                    match &next_link {
                        Some(l) => Some(self.resource.read_page(l).await),
                        None => None,
                    }
                };
                let this_page = async {
                    let mut step = self
                        .resource
                        .plan(state, page.items, RoundKind::Full)
                        .await?;
                    deferred.destructive.append(&mut step.destructive);
                    deferred.report.disabled.append(&mut step.report.disabled);
                    deferred.report.deleted.append(&mut step.report.deleted);
                    wanted.extend(step.wanted.iter().cloned());
                    let page_wanted = step.wanted.clone();
                    self.store_page(&mut plan, step, next.as_ref(), report)
                        .await?;
                    if plan.id.is_some() {
                        // Stored: the state keeps ids only (a large round stays small).
                        self.resource.forget(state, &page_wanted);
                    }
                    Ok::<_, SyncError>(())
                };
                let (ahead, planned) = tokio::join!(prefetch, this_page);
                planned?;
                prefetched = ahead;
                done += read;
                self.opts.report_progress(self.stage(), done, None);
                match page.next {
                    NextOrDelta::Next(l) => link = l,
                    NextOrDelta::Delta(l) => break l,
                }
            }
        };

        // End of the round: what no page wanted is gone. The removals are the plan's last page.
        let implausible = self.resource.implausible(state, &wanted);
        let mut end = deferred;
        end.extend(self.resource.plan_end(state, &wanted, RoundKind::Full));
        drop(wanted);
        let removals = end.destructive.len();
        let mut ops = std::mem::take(&mut end.ops);
        ops.append(&mut end.destructive);
        end.ops = ops;
        end.wanted.clear();
        self.store_page(&mut plan, end, None, report).await?;
        self.conclude(
            state,
            plan,
            delta_link,
            removals,
            implausible,
            prior,
            report,
        )
        .await
    }

    /// A delta round: all pages are read and the latest item per id planned, in chunks stored as
    /// the pages of a plan; then concluded like a full round. Nothing to do: only the new link.
    async fn delta_round(
        &self,
        state: &mut R::State,
        link: &str,
        prior: Option<String>,
        fingerprint: &str,
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
        let read = order.len() as u64;
        let mut plan = Planning { id: None, pages: 0 };
        let mut removals = 0;
        let mut wanted: HashSet<String> = HashSet::new();
        for ids in order.chunks(DELTA_CHUNK) {
            let items: Vec<R::Item> = ids.iter().filter_map(|id| latest.remove(id)).collect();
            let mut step = self.resource.plan(state, items, RoundKind::Delta).await?;
            removals += step.destructive.len();
            wanted.extend(step.wanted.iter().cloned());
            let mut ops = std::mem::take(&mut step.ops);
            ops.append(&mut step.destructive);
            step.ops = ops;
            self.store_delta_page(&mut plan, step, prior.as_deref(), fingerprint, report)
                .await?;
        }
        let mut end = self.resource.plan_end(state, &wanted, RoundKind::Delta);
        removals += end.destructive.len();
        let mut ops = std::mem::take(&mut end.ops);
        ops.append(&mut end.destructive);
        end.ops = ops;
        self.store_delta_page(&mut plan, end, prior.as_deref(), fingerprint, report)
            .await?;
        self.opts.report_progress(self.stage(), read, Some(read));
        if plan.id.is_none() && !self.opts.dry_run {
            // Nothing to apply: the new link (and the handled notifications) in one transaction.
            self.commit_end(state, delta_link, None).await?;
            return Ok(SyncStatus::Completed);
        }
        self.conclude(state, plan, delta_link, removals, None, prior, report)
            .await
    }

    /// Stores a delta round's planned chunk, starting the plan with its first page.
    async fn store_delta_page(
        &self,
        plan: &mut Planning,
        step: Step<R::Op>,
        prior: Option<&str>,
        fingerprint: &str,
        report: &mut SyncReport,
    ) -> SyncResult<()> {
        if step.ops.is_empty() && step.wanted.is_empty() {
            // Nothing to apply (skipped users, say): the lines are this run's at once.
            report.append(step.report);
            return Ok(());
        }
        if plan.id.is_none() && !self.opts.dry_run {
            plan.id = Some(
                self.store
                    .create_sync_plan(self.keys.scope(), &self.run_id, DELTA, prior, fingerprint)
                    .await?,
            );
        }
        self.store_page(plan, step, None, report).await
    }

    /// Stores one planned page (with the read cursor, when given, in the same transaction). In a
    /// dry run nothing is stored and the page's lines go to the report at once.
    async fn store_page(
        &self,
        plan: &mut Planning,
        step: Step<R::Op>,
        cursor: Option<&Cursor>,
        report: &mut SyncReport,
    ) -> SyncResult<()> {
        let Some(id) = &plan.id else {
            report.append(step.report);
            plan.pages += 1;
            return Ok(());
        };
        let ops = serde_json::to_string(&step.ops)
            .map_err(|e| SyncError::Other(format!("the sync plan cannot be stored: {e}")))?;
        let page = PlanPage {
            ops,
            report: step.report,
            wanted: step.wanted,
        };
        let cursor_value = cursor.map(Cursor::encode);
        let key = self.keys.cursor();
        self.store
            .put_sync_plan_page(
                id,
                plan.pages,
                &page,
                cursor_value.as_deref().map(|v| (key.as_str(), v)),
            )
            .await?;
        plan.pages += 1;
        Ok(())
    }

    async fn load_page(&self, plan_id: &str, k: u32) -> SyncResult<PlanPage> {
        self.store.sync_plan_page(plan_id, k).await?.ok_or_else(|| {
            SyncError::Other(format!(
                "page {k} of the stored sync plan {plan_id} is missing"
            ))
        })
    }

    /// The guard over the whole plan, then: apply it, or hold it (nothing but the plan's status
    /// changes; the cursor is put back as it was before the round).
    #[allow(clippy::too_many_arguments)]
    async fn conclude(
        &self,
        state: &mut R::State,
        plan: Planning,
        delta_link: String,
        removals: usize,
        implausible: Option<String>,
        prior: Option<String>,
        report: &mut SyncReport,
    ) -> SyncResult<SyncStatus> {
        let decision = self.decide(state, removals, implausible);
        let Some(id) = plan.id else {
            // A dry run: the report holds every line already.
            return Ok(match decision {
                Decision::Apply => SyncStatus::Completed,
                Decision::Hold(why) => {
                    report.push_error(why);
                    SyncStatus::Held
                }
            });
        };
        match decision {
            Decision::Apply => {
                let applying = Cursor::in_plan(Phase::Applying, delta_link.clone(), 0, &id);
                self.store
                    .start_applying_sync_plan(
                        &id,
                        &delta_link,
                        (&self.keys.cursor(), &applying.encode()),
                    )
                    .await?;
                let stored =
                    self.store.get_sync_plan(&id).await?.ok_or_else(|| {
                        SyncError::Other(format!("the sync plan {id} is missing"))
                    })?;
                // The run that applies a page reports it, also the pages an interrupted run
                // planned (they were in no report yet).
                self.apply_plan(state, &stored, 0, 0, report).await?;
                Ok(SyncStatus::Completed)
            }
            Decision::Hold(why) => {
                // The report says what the plan would do, every page of it.
                for k in 0..plan.pages {
                    report.append(self.load_page(&id, k).await?.report);
                }
                let mut commit = RoundCommit {
                    inbox_done: self.opts.inbox.clone(),
                    ..Default::default()
                };
                match prior {
                    Some(c) => commit.set.push((self.keys.cursor(), c)),
                    None => commit.unset.push(self.keys.cursor()),
                }
                self.store.hold_sync_plan(&id, &delta_link, &commit).await?;
                report.push_error(why);
                Ok(SyncStatus::Held)
            }
        }
    }

    /// Applies a stored plan from page `from`, each page with its progress mark in one
    /// transaction and its follow-up work after it; then the end of the round. The lines of pages
    /// from `report_from` on go to the report.
    async fn apply_plan(
        &self,
        state: &mut R::State,
        plan: &SyncPlan,
        from: u32,
        report_from: u32,
        report: &mut SyncReport,
    ) -> SyncResult<()> {
        let delta = plan.delta_link.clone().unwrap_or_default();
        for k in from..plan.pages {
            let page = self.load_page(&plan.id, k).await?;
            let ops = decode_ops::<R>(&page.ops)?;
            self.resource.replay(state, &ops);
            let mark = Cursor::in_plan(Phase::Applying, delta.clone(), k + 1, &plan.id);
            let created = created_ids(&page.report);
            if let Err(e) = self
                .resource
                .apply(ops, (&self.keys.cursor(), &mark.encode()))
                .await
            {
                return Err(self.give_up(plan, e).await);
            }
            if k >= report_from {
                report.append(page.report);
            }
            self.resource
                .after_apply(state, &page.wanted, &created, report)
                .await?;
            // Applied and wanted: no longer needed in memory (a large round stays small).
            self.resource.forget(state, &page.wanted);
        }
        self.resource.follow_up_done(state, report).await?;
        let fingerprint = (plan.round == FULL).then_some(plan.fingerprint.as_str());
        self.commit_end(state, delta, fingerprint).await
    }

    /// The end of a round in one transaction: the delta link, the settings fingerprint of a full
    /// round, the notification inbox rows the run handled, and no stored plan of the scope left.
    async fn commit_end(
        &self,
        state: &R::State,
        delta_link: String,
        fingerprint: Option<&str>,
    ) -> SyncResult<()> {
        let cursor = Cursor::new(Phase::Delta, delta_link, 0);
        let mut commit = RoundCommit {
            set: vec![(self.keys.cursor(), cursor.encode())],
            inbox_done: self.opts.inbox.clone(),
            ..Default::default()
        };
        if let Some(fp) = fingerprint {
            commit.set.push((self.keys.fingerprint(), fp.to_string()));
        }
        self.store
            .commit_sync_round(self.keys.scope(), &commit)
            .await?;
        self.resource.completed(state).await
    }

    /// A page of a stored plan could not be written because the store changed under it (a number
    /// taken meanwhile, a record gone): the plan is given up, so that the next round plans again
    /// against what the store holds now (a full plan as a fresh full round). Other failures leave
    /// it to be resumed.
    async fn give_up(&self, plan: &SyncPlan, e: SyncError) -> SyncError {
        let stale = matches!(
            e,
            SyncError::Store(
                StoreError::NumberTaken { .. }
                    | StoreError::NotFound { .. }
                    | StoreError::Conflict { .. }
            )
        );
        if !stale {
            return e;
        }
        let mut commit = RoundCommit::default();
        let cursor = if plan.round == FULL {
            Some(Cursor::new(Phase::Full, self.resource.first_link(), 0).encode())
        } else {
            plan.prior_cursor.clone()
        };
        match cursor {
            Some(c) => commit.set.push((self.keys.cursor(), c)),
            None => commit.unset.push(self.keys.cursor()),
        }
        if let Err(drop) = self
            .store
            .commit_sync_round(self.keys.scope(), &commit)
            .await
        {
            tracing::warn!(error = %drop, "a conflicting sync plan could not be given up");
        }
        e
    }

    /// The mass-deletion guard over a whole plan's removals (and an implausible read).
    fn decide(&self, state: &R::State, count: usize, implausible: Option<String>) -> Decision {
        let guard = self.resource.guard(state, count);
        if guard == Guard::Pass && implausible.is_none() {
            return Decision::Apply;
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
        Decision::Hold(why)
    }
}

/// Reads the ops of a stored page.
fn decode_ops<R: SyncResource>(stored: &str) -> SyncResult<Vec<R::Op>> {
    serde_json::from_str(stored)
        .map_err(|e| SyncError::Other(format!("a stored sync plan cannot be read: {e}")))
}

/// The ids a page creates (named in its report's `created` lines).
fn created_ids(report: &SyncReport) -> HashSet<String> {
    report
        .created
        .iter()
        .filter_map(|i| i.m365_id.clone())
        .collect()
}
