//! The user sync engine: full reconciliation and delta rounds over `/users/delta`, applied page
//! by page with the delta cursor in the same transaction, guarded against mass deletion.
//!
//! Crash safety: a full round stores, per page, the ids the page wants (`sync:users:seen:{k}`)
//! and then the page's creates/updates together with the next link (`cursor:users`). Disables
//! and deletes, which can only be known at the end of a full round (absence), are applied at the
//! end in one transaction with the delta link, after the mass-deletion guard. A delta round reads
//! all its pages (they are small), plans them together, and applies everything plus the new delta
//! link in one transaction. A crash anywhere therefore resumes from the last committed link and
//! replays at most one page, which is idempotent.
//!
//! https://learn.microsoft.com/graph/delta-query-overview · https://learn.microsoft.com/graph/api/user-delta

use chrono::Utc;
use pbx365_domain::settings::{SyncScope, SyncSettings};
use pbx365_domain::{NumberRules, ReportItem, SyncKind, SyncReport, SyncRun, SyncStatus};
use pbx365_graph::{
    DeltaPage, GraphClient, GraphError, GraphRequest, GraphUser, NextOrDelta, UserChange,
};
use pbx365_store::{ExtensionOp, Store};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::error::{SyncError, SyncResult};
use crate::photos::{sync_photos, PhotoChange, PhotoTarget};
use crate::plan::{deletion_keys, merge_report, Guard, PlanConfig, PlanStep, Planner, Scope};

/// Where the users delta round stands (`cursor:users`).
pub const CURSOR_KEY: &str = "cursor:users";
/// Ids wanted by page `k` of the current full round: `sync:users:seen:{k}`.
pub const SEEN_PREFIX: &str = "sync:users:seen:";
/// Fingerprint of the settings and scope the last completed full round ran with.
pub const FINGERPRINT_KEY: &str = "sync:users:fingerprint";
/// Synced extensions after the last completed run (fewer now = some were deleted locally).
pub const EXPECTED_KEY: &str = "sync:users:expected";
/// One-shot approval of a held run: the held run's id.
pub const APPROVAL_KEY: &str = "sync:approved_run";

/// `$top` is not accepted by `/users/delta`; the page size is asked for with this header
/// (https://learn.microsoft.com/graph/delta-query-overview, "odata.maxpagesize").
const PAGE_SIZE_PREFER: &str = "odata.maxpagesize=999";

/// A progress report: `done` of `total` (unknown for delta reads) in `stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// `users` (reading and applying users) or `photos`.
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
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("full", &self.full)
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    /// Reading the pages of a full round; `link` is the next page.
    Full,
    /// All pages of a full round applied; the end-of-round disables are pending; `link` is the delta link.
    Finishing,
    /// Between rounds; `link` is the delta link.
    Delta,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    phase: Phase,
    link: String,
    #[serde(default)]
    pages: u32,
}

impl Cursor {
    fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

enum Decision {
    Apply,
    Hold(String),
}

/// The user sync engine for one tenant.
pub struct UserSync {
    store: Store,
    graph: Arc<GraphClient>,
    settings: SyncSettings,
    number_rules: NumberRules,
    photo_concurrency: usize,
}

impl UserSync {
    /// An engine over `store` and `graph` with these settings.
    pub fn new(
        store: Store,
        graph: Arc<GraphClient>,
        settings: SyncSettings,
        number_rules: NumberRules,
    ) -> Self {
        UserSync {
            store,
            graph,
            settings,
            number_rules,
            photo_concurrency: 16,
        }
    }

    /// How many photo batches run at once (default 16).
    pub fn with_photo_concurrency(mut self, n: usize) -> Self {
        self.photo_concurrency = n.max(1);
        self
    }

    /// The settings in use.
    pub fn settings(&self) -> &SyncSettings {
        &self.settings
    }

    /// Runs once: a delta round when a delta link is stored and nothing forces a full round,
    /// else a full reconciliation. Records the run (unless dry) and returns it.
    pub async fn run(&self, opts: &RunOptions) -> SyncResult<SyncRun> {
        if !self.settings.enabled {
            return Err(SyncError::Disabled);
        }
        let started_at = Utc::now();
        let record = if opts.dry_run {
            None
        } else {
            Some(self.store.start_sync_run(SyncKind::Users).await?)
        };
        let mut report = SyncReport::default();
        let status = match self.run_inner(opts, &mut report).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "user sync failed");
                report.errors.push(ReportItem {
                    reason: Some(e.to_string()),
                    ..Default::default()
                });
                SyncStatus::Failed
            }
        };
        metrics::counter!("pbx365_sync_runs_total", "kind" => "users", "status" => status.as_str())
            .increment(1);
        match record {
            Some(run) => Ok(self.store.finish_sync_run_with(run, status, report).await?),
            None => Ok(SyncRun {
                id: format!("dry-run-{}", uuid::Uuid::new_v4()),
                kind: SyncKind::Users,
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

    async fn run_inner(
        &self,
        opts: &RunOptions,
        report: &mut SyncReport,
    ) -> SyncResult<SyncStatus> {
        let scope = self.resolve_scope().await?;
        let fingerprint = self.fingerprint(&scope);
        let existing = self.store.list_extensions().await?;
        let synced_now = existing
            .iter()
            .filter(|e| e.m365_id.is_some() && e.source == pbx365_domain::ExtensionSource::M365)
            .count();
        let cfg = PlanConfig::from_settings(&self.settings, self.number_rules);
        let mut planner = Planner::new(cfg, Utc::now(), existing);

        let cursor: Option<Cursor> = self
            .store
            .get_kv(CURSOR_KEY)
            .await?
            .and_then(|v| serde_json::from_str(&v).ok());
        let stored_fp = self.store.get_kv(FINGERPRINT_KEY).await?;
        let expected: Option<usize> = self
            .store
            .get_kv(EXPECTED_KEY)
            .await?
            .and_then(|v| v.parse().ok());

        let delta_link = match &cursor {
            Some(c) if c.phase == Phase::Delta => Some(c.link.clone()),
            _ => None,
        };
        let locally_deleted = expected.is_some_and(|e| synced_now < e);
        let settings_changed = stored_fp.as_deref() != Some(fingerprint.as_str());
        if let (Some(link), false, false, false) =
            (&delta_link, opts.full, locally_deleted, settings_changed)
        {
            match self
                .delta_round(&mut planner, &scope, link, opts, report)
                .await
            {
                Err(SyncError::Graph(GraphError::DeltaExpired { .. })) => {
                    tracing::info!("the users delta link expired; running a full resync");
                    // A fresh planner: the failed delta round planned nothing that was applied.
                    let existing = self.store.list_extensions().await?;
                    let cfg = PlanConfig::from_settings(&self.settings, self.number_rules);
                    planner = Planner::new(cfg, Utc::now(), existing);
                }
                other => return other,
            }
            return self
                .full_round(&mut planner, &scope, None, &fingerprint, opts, report)
                .await;
        }
        if locally_deleted {
            tracing::info!(
                synced_now,
                expected = expected.unwrap_or(0),
                "synced extensions were deleted locally; running a full round to bring them back"
            );
        }
        // Resume an interrupted full round unless a fresh one was asked for or settings changed.
        let resume = match cursor {
            Some(c)
                if matches!(c.phase, Phase::Full | Phase::Finishing)
                    && !opts.full
                    && !opts.dry_run
                    && !settings_changed =>
            {
                Some(c)
            }
            _ => None,
        };
        self.full_round(&mut planner, &scope, resume, &fingerprint, opts, report)
            .await
    }

    /// The users in scope: everyone, the listed users, or the transitive members of the groups.
    async fn resolve_scope(&self) -> SyncResult<Scope> {
        Ok(match self.settings.scope {
            SyncScope::All => Scope::All,
            SyncScope::Users => Scope::Ids(
                self.settings
                    .scope_ids
                    .iter()
                    .map(|s| s.trim().to_ascii_lowercase())
                    .collect(),
            ),
            SyncScope::Groups => {
                let mut ids = HashSet::new();
                for g in &self.settings.scope_ids {
                    for m in self.graph.group_transitive_members(g.trim()).await? {
                        if m.is_user() || m.odata_type.is_none() {
                            ids.insert(m.id.to_ascii_lowercase());
                        }
                    }
                }
                Scope::Ids(ids)
            }
        })
    }

    /// What a full round depends on: when it changes, the next run is a full round.
    fn fingerprint(&self, scope: &Scope) -> String {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let s = &self.settings;
        (
            s.start_extension,
            s.end_extension,
            s.caller_id_from_office_phone,
            s.photos,
        )
            .hash(&mut h);
        (self.number_rules.min_len, self.number_rules.max_len).hash(&mut h);
        match scope {
            Scope::All => "all".hash(&mut h),
            Scope::Ids(ids) => {
                let mut v: Vec<&String> = ids.iter().collect();
                v.sort();
                v.hash(&mut h);
            }
        }
        format!("{:016x}", h.finish())
    }

    async fn fetch_page(&self, link: &str) -> SyncResult<DeltaPage<UserChange>> {
        let req = GraphRequest::get(link).header("Prefer", PAGE_SIZE_PREFER);
        let page: DeltaPage<GraphUser> = self.graph.delta_page(req).await?;
        Ok(DeltaPage {
            items: page.items.into_iter().map(UserChange::from).collect(),
            next: page.next,
        })
    }

    /// A full reconciliation (first sync, nightly, after an expired link or a settings change).
    async fn full_round(
        &self,
        planner: &mut Planner,
        scope: &Scope,
        resume: Option<Cursor>,
        fingerprint: &str,
        opts: &RunOptions,
        report: &mut SyncReport,
    ) -> SyncResult<SyncStatus> {
        let dry = opts.dry_run;
        let start = self.graph.users_delta_start();
        let (mut link, mut pages, finishing) = match &resume {
            Some(c) => (c.link.clone(), c.pages, c.phase == Phase::Finishing),
            None => (start.clone(), 0, false),
        };
        let mut wanted: HashSet<String> = HashSet::new();
        for k in 0..pages {
            wanted.extend(self.load_seen(k).await?);
        }
        if pages > 0 && self.settings.photos && !dry {
            // The page applied last before the interruption may not have its photos yet.
            let last: Vec<String> = self.load_seen(pages - 1).await?;
            self.photos_for(planner, &last, &HashSet::new(), report)
                .await?;
        }
        // Taken before the pages: planning marks not-wanted extensions disabled in the snapshot.
        let enabled_before = planner.synced().filter(|e| e.enabled).count();
        let mut deferred = PlanStep::default();
        let mut done: u64 = wanted.len() as u64;
        // The next page, read while this page's photos are fetched (Graph latency overlaps).
        let mut prefetched: Option<SyncResult<DeltaPage<UserChange>>> = None;
        let delta_link = if finishing {
            link
        } else {
            loop {
                let fetched = match prefetched.take() {
                    Some(p) => p,
                    None => self.fetch_page(&link).await,
                };
                let page = match fetched {
                    Ok(p) => p,
                    Err(SyncError::Graph(GraphError::DeltaExpired { .. })) if pages > 0 => {
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
                let (users, removed) = split(page.items);
                let again = planner.evicted_among(
                    users
                        .iter()
                        .map(|u| u.id.as_str())
                        .chain(removed.iter().map(String::as_str)),
                );
                for id in again {
                    if let Some(ext) = self.store.get_extension_by_m365_id(&id).await? {
                        planner.reload(ext);
                    }
                }
                let mut step = planner.plan_users(&users, &removed, scope);
                // Disables wait for the end of the round and the guard.
                deferred.destructive.append(&mut step.destructive);
                deferred.report.disabled.append(&mut step.report.disabled);
                let next_cursor = match &page.next {
                    NextOrDelta::Next(l) => Cursor {
                        phase: Phase::Full,
                        link: l.clone(),
                        pages: pages + 1,
                    },
                    NextOrDelta::Delta(l) => Cursor {
                        phase: Phase::Finishing,
                        link: l.clone(),
                        pages: pages + 1,
                    },
                };
                let created: HashSet<String> = step
                    .report
                    .created
                    .iter()
                    .filter_map(|i| i.m365_id.clone())
                    .collect();
                if !dry {
                    let ids = serde_json::to_string(&step.wanted).unwrap_or_else(|_| "[]".into());
                    self.store
                        .set_kv(&format!("{SEEN_PREFIX}{pages}"), &ids)
                        .await?;
                    self.store
                        .apply_extension_ops(&step.ops, Some((CURSOR_KEY, &next_cursor.encode())))
                        .await?;
                    if self.settings.photos {
                        merge_report(report, std::mem::take(&mut step.report));
                        let photos = self.photos_for(planner, &step.wanted, &created, report);
                        match &page.next {
                            NextOrDelta::Next(l) => {
                                let (done, next) = tokio::join!(photos, self.fetch_page(l));
                                done?;
                                prefetched = Some(next);
                            }
                            NextOrDelta::Delta(_) => photos.await?,
                        }
                    }
                }
                merge_report(report, step.report);
                if !dry {
                    // Applied and wanted: no longer needed in memory (a 100,000-user round stays small).
                    planner.evict(&step.wanted);
                }
                done += users.len() as u64 + removed.len() as u64;
                pages += 1;
                wanted.extend(step.wanted);
                if let Some(p) = &opts.progress {
                    p(Progress {
                        stage: "users",
                        done,
                        total: None,
                    });
                }
                match page.next {
                    NextOrDelta::Next(l) => link = l,
                    NextOrDelta::Delta(l) => break l,
                }
            }
        };

        // End of the round: everyone not wanted is disabled; long-disabled ones are deleted.
        let still_disabled: HashSet<String> = planner
            .synced()
            .filter(|e| !e.enabled)
            .map(|e| e.number.to_string())
            .collect();
        let mut destructive = PlanStep::default();
        for (op, line) in deferred
            .destructive
            .into_iter()
            .zip(deferred.report.disabled)
        {
            if let ExtensionOp::Disable { number, .. } = &op {
                if still_disabled.contains(number) {
                    destructive.destructive.push(op);
                    destructive.report.disabled.push(line);
                }
            }
        }
        let implausible = wanted.is_empty() && enabled_before > 0;
        destructive.extend(planner.plan_absent(&wanted));
        destructive.extend(planner.plan_expired(&wanted));
        let implausible = implausible.then(|| {
            format!(
                "Microsoft 365 returned no users for the sync while {} synced extensions exist; \
                 this is treated as a failed read, not as everyone leaving",
                enabled_before
            )
        });
        match self
            .decide(
                planner,
                &destructive.report,
                destructive.destructive.len(),
                implausible,
                dry,
            )
            .await?
        {
            Decision::Apply => {
                if !dry {
                    let cursor = Cursor {
                        phase: Phase::Delta,
                        link: delta_link,
                        pages: 0,
                    };
                    self.store
                        .apply_extension_ops(
                            &destructive.destructive,
                            Some((CURSOR_KEY, &cursor.encode())),
                        )
                        .await?;
                    self.store.set_kv(FINGERPRINT_KEY, fingerprint).await?;
                    self.store
                        .set_kv(EXPECTED_KEY, &planner.synced_count().to_string())
                        .await?;
                    self.clear_seen(pages).await?;
                }
                merge_report(report, destructive.report);
                Ok(SyncStatus::Completed)
            }
            Decision::Hold(why) => {
                if !dry {
                    // The disables were not applied, so the next run must see the whole tenant again.
                    let cursor = Cursor {
                        phase: Phase::Full,
                        link: start,
                        pages: 0,
                    };
                    self.store.set_kv(CURSOR_KEY, &cursor.encode()).await?;
                    self.clear_seen(pages).await?;
                }
                merge_report(report, destructive.report);
                report.errors.push(ReportItem {
                    reason: Some(why),
                    ..Default::default()
                });
                Ok(SyncStatus::Held)
            }
        }
    }

    /// A delta round: all pages are read, planned together and applied in one transaction with
    /// the new delta link; a held round applies nothing and keeps the old link.
    async fn delta_round(
        &self,
        planner: &mut Planner,
        scope: &Scope,
        link: &str,
        opts: &RunOptions,
        report: &mut SyncReport,
    ) -> SyncResult<SyncStatus> {
        let mut link = link.to_string();
        // Latest state per id: the same entity can appear more than once in a round.
        let mut order: Vec<String> = Vec::new();
        let mut latest: HashMap<String, UserChange> = HashMap::new();
        let delta_link = loop {
            let page = self.fetch_page(&link).await?;
            for item in page.items {
                let id = match &item {
                    UserChange::Changed(u) => u.id.clone(),
                    UserChange::Removed { id, .. } => id.clone(),
                };
                if latest.insert(id.clone(), item).is_none() {
                    order.push(id);
                }
            }
            match page.next {
                NextOrDelta::Next(l) => link = l,
                NextOrDelta::Delta(l) => break l,
            }
        };
        let items: Vec<UserChange> = order
            .into_iter()
            .filter_map(|id| latest.remove(&id))
            .collect();
        let (users, removed) = split(items);
        let mut step = planner.plan_users(&users, &removed, scope);
        let wanted: HashSet<String> = step.wanted.iter().cloned().collect();
        let expired = planner.plan_expired(&wanted);
        step.extend(expired);
        let would = SyncReport {
            disabled: step.report.disabled.clone(),
            deleted: step.report.deleted.clone(),
            ..Default::default()
        };
        match self
            .decide(planner, &would, step.destructive.len(), None, opts.dry_run)
            .await?
        {
            Decision::Apply => {
                if !opts.dry_run {
                    let mut ops = std::mem::take(&mut step.ops);
                    ops.append(&mut step.destructive);
                    let cursor = Cursor {
                        phase: Phase::Delta,
                        link: delta_link,
                        pages: 0,
                    };
                    self.store
                        .apply_extension_ops(&ops, Some((CURSOR_KEY, &cursor.encode())))
                        .await?;
                    self.store
                        .set_kv(EXPECTED_KEY, &planner.synced_count().to_string())
                        .await?;
                    if self.settings.photos {
                        let created: HashSet<String> = step
                            .report
                            .created
                            .iter()
                            .filter_map(|i| i.m365_id.clone())
                            .collect();
                        merge_report(report, std::mem::take(&mut step.report));
                        self.photos_for(planner, &step.wanted, &created, report)
                            .await?;
                    }
                }
                merge_report(report, step.report);
                if let Some(p) = &opts.progress {
                    let n = (users.len() + removed.len()) as u64;
                    p(Progress {
                        stage: "users",
                        done: n,
                        total: Some(n),
                    });
                }
                Ok(SyncStatus::Completed)
            }
            Decision::Hold(why) => {
                merge_report(report, step.report);
                report.errors.push(ReportItem {
                    reason: Some(why),
                    ..Default::default()
                });
                Ok(SyncStatus::Held)
            }
        }
    }

    /// The mass-deletion guard with its one-shot approval.
    async fn decide(
        &self,
        planner: &Planner,
        would: &SyncReport,
        count: usize,
        implausible: Option<String>,
        dry: bool,
    ) -> SyncResult<Decision> {
        let guard = planner.guard(count);
        if guard == Guard::Pass && implausible.is_none() {
            return Ok(Decision::Apply);
        }
        if let Some(approved) = self.store.get_kv(APPROVAL_KEY).await? {
            if let Some(run) = self.store.get_sync_run(&approved).await? {
                let allowed = deletion_keys(&run.report);
                let now = deletion_keys(would);
                if run.status == SyncStatus::Held && now.is_subset(&allowed) {
                    if !dry {
                        // Consumed before applying: a crash costs a new approval, never a second mass delete.
                        self.store.delete_kv(APPROVAL_KEY).await?;
                    }
                    tracing::warn!(count, approved_run = %approved, "applying deletions approved by an admin");
                    return Ok(Decision::Apply);
                }
            }
        }
        let why = match (implausible, guard) {
            (Some(msg), _) => format!("held: {msg}; approve the deletions in the console if this is intended"),
            (None, Guard::Exceeded { count, synced }) => format!(
                "held: this run would disable or delete {count} of {synced} synced extensions, more than the limit \
                 ({} extensions or {}%); nothing was disabled or deleted — approve these deletions in the console to apply them once",
                self.settings.max_deletions, self.settings.max_deletion_percent
            ),
            (None, Guard::Pass) => unreachable!("checked above"),
        };
        tracing::warn!(count, "user sync held by the mass-deletion guard");
        metrics::counter!("pbx365_sync_held_total").increment(1);
        Ok(Decision::Hold(why))
    }

    async fn photos_for(
        &self,
        planner: &mut Planner,
        ids: &[String],
        created: &HashSet<String>,
        report: &mut SyncReport,
    ) -> SyncResult<()> {
        let targets: Vec<PhotoTarget> = ids
            .iter()
            .filter_map(|id| planner.extension_of(id))
            .filter(|e| e.enabled)
            .map(|e| PhotoTarget {
                m365_id: e.m365_id.clone().unwrap_or_default(),
                number: e.number.to_string(),
                name: e.display_name.clone(),
                current: e.photo.clone(),
            })
            .collect();
        if targets.is_empty() {
            return Ok(());
        }
        let changes = sync_photos(
            &self.graph,
            &self.store,
            targets,
            self.photo_concurrency,
            report,
        )
        .await?;
        for change in changes {
            let (id, photo) = match change {
                PhotoChange::Stored { m365_id, photo } => (m365_id, Some(photo)),
                PhotoChange::Removed { m365_id } => (m365_id, None),
            };
            if let Some(ext) = planner.set_photo(&id, photo) {
                if !created.contains(&id) {
                    report.updated.push(ReportItem {
                        extension: Some(ext.number.to_string()),
                        m365_id: Some(id),
                        name: Some(ext.display_name.clone()),
                        fields: vec!["photo".into()],
                        reason: None,
                    });
                }
            }
        }
        Ok(())
    }

    async fn load_seen(&self, k: u32) -> SyncResult<Vec<String>> {
        Ok(self
            .store
            .get_kv(&format!("{SEEN_PREFIX}{k}"))
            .await?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default())
    }

    async fn clear_seen(&self, pages: u32) -> SyncResult<()> {
        for k in 0..pages {
            self.store.delete_kv(&format!("{SEEN_PREFIX}{k}")).await?;
        }
        // Leftovers of an older, longer round.
        let mut k = pages;
        while self
            .store
            .get_kv(&format!("{SEEN_PREFIX}{k}"))
            .await?
            .is_some()
        {
            self.store.delete_kv(&format!("{SEEN_PREFIX}{k}")).await?;
            k += 1;
        }
        Ok(())
    }
}

fn split(items: Vec<UserChange>) -> (Vec<pbx365_domain::DirectoryUser>, Vec<String>) {
    let mut users = Vec::new();
    let mut removed = Vec::new();
    for item in items {
        match item {
            UserChange::Changed(mut u) => {
                u.id = u.id.to_ascii_lowercase();
                users.push(u)
            }
            UserChange::Removed { id, .. } => removed.push(id.to_ascii_lowercase()),
        }
    }
    (users, removed)
}
