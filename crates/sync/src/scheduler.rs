//! `SyncService`: when sync kinds run. "Sync now" (one run at a time; a second request waits),
//! the nightly full reconciliation, the delta poll fallback, the change-notification inbox
//! (notifications are hints that trigger a delta round) and subscription upkeep. User sync is
//! built in; other kinds are registered as [`SyncJob`]s and scheduled the same way.

use chrono::{DateTime, Duration, Local, NaiveTime, TimeZone, Utc};
use pbx365_domain::settings::{parse_time_of_day, SyncScope, SyncSettings};
use pbx365_domain::{NumberRules, SyncKind, SyncRun, SyncStatus};
use pbx365_graph::GraphClient;
use pbx365_store::{PlanStatus, Store};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::{watch, Mutex, Notify};
use tokio::task::JoinHandle;

use crate::cursor::{Approval, Keys};
use crate::error::{SyncError, SyncResult};
use crate::kind::SyncResource;
use crate::lease::{instance_name, HeldLease, SYNC_LEASE};
use crate::round::{self, RunOptions};
use crate::subscriptions;
use crate::users::UserSync;

/// A sync kind the service runs: "sync now", nightly full round, delta poll.
#[async_trait::async_trait]
pub trait SyncJob: Send + Sync {
    /// The kind it syncs.
    fn kind(&self) -> SyncKind;
    /// The scope key of its cursor and approvals.
    fn scope_key(&self) -> String;
    /// Runs one round and records it.
    async fn run(&self, opts: &RunOptions) -> SyncResult<SyncRun>;
    /// Runs one round writing through `store`: the service's handle fenced by the lease it holds
    /// (SPEC §9), so nothing of the round commits once another instance has taken the lease
    /// over. A job that only keeps its own handle runs as [`SyncJob::run`].
    async fn run_fenced(&self, store: &Store, opts: &RunOptions) -> SyncResult<SyncRun> {
        let _ = store;
        self.run(opts).await
    }
    /// Work of the kind between rounds, at each step of the service's background loop while
    /// it holds the cluster lease that fences `store` (contacts: its change-notification
    /// subscriptions, and delta rounds of the mailboxes notifications named). Nothing by default.
    async fn tick(&self, store: &Store, ctx: &TickContext) -> SyncResult<()> {
        let _ = (store, ctx);
        Ok(())
    }
    /// Whether a scheduled poll ([`RunOptions::scheduled`]) runs it now: kinds with their own
    /// schedule (contacts: hourly) say no until it is due. Always by default.
    async fn due(&self, store: &Store) -> SyncResult<bool> {
        let _ = store;
        Ok(true)
    }
}

/// What a job's [`SyncJob::tick`] is told by the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickContext {
    /// Where Microsoft reaches this cluster (notifications go to `{public_url}/api/m365/notifications`).
    pub public_url: String,
    /// Change-notification subscriptions are wanted (off when Microsoft cannot reach us).
    pub subscriptions: bool,
}

/// Any [`SyncResource`] over a store is a job.
pub struct ResourceJob<R> {
    store: Store,
    resource: R,
}

impl<R: SyncResource> ResourceJob<R> {
    /// A job running `resource` against `store`.
    pub fn new(store: Store, resource: R) -> Self {
        ResourceJob { store, resource }
    }
}

#[async_trait::async_trait]
impl<R: SyncResource> SyncJob for ResourceJob<R> {
    fn kind(&self) -> SyncKind {
        self.resource.kind()
    }

    fn scope_key(&self) -> String {
        self.resource.scope_key()
    }

    async fn run(&self, opts: &RunOptions) -> SyncResult<SyncRun> {
        round::run(&self.store, &self.resource, opts).await
    }

    async fn run_fenced(&self, store: &Store, opts: &RunOptions) -> SyncResult<SyncRun> {
        // The round's own writes (run record, cursor, seen ids) go through the fenced handle;
        // the kind's `apply` writes through the handle it was built over.
        round::run(store, &self.resource, opts).await
    }
}

#[async_trait::async_trait]
impl SyncJob for UserSync {
    fn kind(&self) -> SyncKind {
        SyncKind::Users
    }

    fn scope_key(&self) -> String {
        SyncResource::scope_key(self)
    }

    async fn run(&self, opts: &RunOptions) -> SyncResult<SyncRun> {
        UserSync::run(self, opts).await
    }

    async fn run_fenced(&self, _store: &Store, opts: &RunOptions) -> SyncResult<SyncRun> {
        // The service builds the engine over its fenced handle for every run.
        UserSync::run(self, opts).await
    }
}

/// How often the background loop looks at the notification inbox.
const INBOX_TICK: std::time::Duration = std::time::Duration::from_millis(500);

/// Notifications handled per round (more wait for the next one).
const INBOX_BATCH: u32 = 5_000;

/// A dead instance's jobs are taken over within this time (SPEC §9: 30 s); `sync.lease_ttl_secs`.
pub const DEFAULT_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(20);

/// When the cluster last did its scheduled steps (kept in the store, so every instance agrees).
const LAST_NIGHTLY_KEY: &str = "sync:last:nightly";
const LAST_POLL_KEY: &str = "sync:last:poll";
const LAST_SUBSCRIPTIONS_KEY: &str = "sync:last:subscriptions";

/// How long the background loop leaves notifications whose round failed before it tries again
/// (the delta poll still runs on its own schedule).
const INBOX_RETRY: Duration = Duration::minutes(1);

/// How often subscriptions are checked (renewal has a margin of days, so hourly is plenty).
const SUBSCRIPTION_CHECK: Duration = Duration::hours(1);

/// How soon a failed subscription set-up is tried again.
const SUBSCRIPTION_RETRY: Duration = Duration::minutes(1);

struct Inner {
    store: Store,
    graph: Arc<GraphClient>,
    settings: RwLock<SyncSettings>,
    number_rules: NumberRules,
    public_url: String,
    subscriptions: AtomicBool,
    /// This service has checked its subscriptions once.
    subscriptions_checked: AtomicBool,
    /// Unix milliseconds before which the background loop does not retry a failed inbox round.
    inbox_retry_at: AtomicI64,
    /// Poll interval override in milliseconds (0 = `poll_minutes`); tests and demos use it.
    poll_override_ms: AtomicU64,
    run_lock: Mutex<()>,
    wake: Notify,
    /// This instance's name in lease rows.
    holder: String,
    /// How long a lease lasts unless renewed (another instance takes over after it).
    lease_ttl: RwLock<std::time::Duration>,
    /// Kinds registered beside user sync.
    jobs: RwLock<Vec<Arc<dyn SyncJob>>>,
}

/// The user sync service; cheap to clone.
#[derive(Clone)]
pub struct SyncService {
    inner: Arc<Inner>,
}

/// The background tasks of a started service; dropping it does not stop them, `stop` does.
pub struct Background {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Background {
    /// Stops the loop after the current step and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl SyncService {
    /// A service for the tenant `graph` talks to. `public_url` is where Microsoft reaches
    /// `/api/m365/notifications`.
    pub fn new(
        store: Store,
        graph: Arc<GraphClient>,
        settings: SyncSettings,
        number_rules: NumberRules,
        public_url: &str,
    ) -> Self {
        SyncService {
            inner: Arc::new(Inner {
                store,
                graph,
                settings: RwLock::new(settings),
                number_rules,
                public_url: public_url.trim_end_matches('/').to_string(),
                subscriptions: AtomicBool::new(true),
                subscriptions_checked: AtomicBool::new(false),
                inbox_retry_at: AtomicI64::new(0),
                poll_override_ms: AtomicU64::new(0),
                run_lock: Mutex::new(()),
                wake: Notify::new(),
                holder: instance_name(),
                lease_ttl: RwLock::new(DEFAULT_LEASE_TTL),
                jobs: RwLock::new(Vec::new()),
            }),
        }
    }

    /// Registers another sync kind: run by "sync now" for its kind and by `all`, nightly and by
    /// the delta poll, like user sync.
    pub fn with_job(self, job: Arc<dyn SyncJob>) -> Self {
        self.inner
            .jobs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(job);
        self
    }

    /// Every job: user sync with the current settings over `store` first, then the registered
    /// kinds.
    fn jobs(&self, store: &Store) -> Vec<Arc<dyn SyncJob>> {
        let mut all: Vec<Arc<dyn SyncJob>> = vec![Arc::new(self.engine(store))];
        all.extend(
            self.inner
                .jobs
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        all
    }

    /// Leases last this long unless renewed: a dead instance's jobs move to another after it.
    pub fn with_lease_ttl(self, ttl: std::time::Duration) -> Self {
        *self
            .inner
            .lease_ttl
            .write()
            .unwrap_or_else(|e| e.into_inner()) = ttl;
        self
    }

    fn lease_ttl(&self) -> std::time::Duration {
        *self
            .inner
            .lease_ttl
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Turns change-notification subscriptions off (e.g. when Microsoft cannot reach us);
    /// the delta poll still keeps extensions current.
    pub fn without_subscriptions(self) -> Self {
        self.inner.subscriptions.store(false, Ordering::Relaxed);
        self
    }

    /// Polls Graph for changes at this interval instead of every `poll_minutes`.
    pub fn with_poll_interval(self, every: std::time::Duration) -> Self {
        self.inner
            .poll_override_ms
            .store(every.as_millis().max(1) as u64, Ordering::Relaxed);
        self
    }

    fn poll_interval(&self) -> Duration {
        match self.inner.poll_override_ms.load(Ordering::Relaxed) {
            0 => poll_interval(&self.settings()),
            ms => Duration::milliseconds(ms as i64),
        }
    }

    /// The current sync settings.
    pub fn settings(&self) -> SyncSettings {
        self.inner
            .settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the sync settings (after a console change); the next run uses them.
    pub fn set_settings(&self, settings: SyncSettings) {
        *self
            .inner
            .settings
            .write()
            .unwrap_or_else(|e| e.into_inner()) = settings;
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    fn engine(&self, store: &Store) -> UserSync {
        UserSync::new(
            store.clone(),
            self.inner.graph.clone(),
            self.settings(),
            self.inner.number_rules,
        )
    }

    /// Runs a sync now and returns its report. Only one run happens at a time: a request made
    /// while another runs waits for it, then runs.
    /// `all` runs every kind and returns user sync's run. With several instances on one
    /// database, the run waits while another instance runs a job (a dry run writes nothing and
    /// does not wait).
    pub async fn run_now(&self, kind: SyncKind, opts: RunOptions) -> SyncResult<SyncRun> {
        // One run at a time in this process: a second request queues here, so the lease (and its
        // fencing token) stays with the run that took it.
        let _one_at_a_time = self.inner.run_lock.lock().await;
        if opts.dry_run {
            return self.run_jobs(kind, opts, &self.inner.store).await;
        }
        let wait = opts.on_wait.clone();
        let lease = HeldLease::take(
            &self.inner.store,
            SYNC_LEASE,
            &self.inner.holder,
            self.lease_ttl(),
            |other| {
                tracing::info!(
                    holder = other,
                    "another instance is running a sync; waiting for it"
                );
                if let Some(tell) = wait {
                    tell(other);
                }
            },
        )
        .await?;
        let fenced = self.inner.store.fenced(SYNC_LEASE, lease.token());
        let run = self.run_jobs(kind, opts, &fenced).await;
        lease.release().await;
        run
    }

    /// Runs the jobs of `kind` one after the other, writing through `store` (the caller holds
    /// the run lock, and for writing runs the lease that fences `store`).
    async fn run_jobs(
        &self,
        kind: SyncKind,
        opts: RunOptions,
        store: &Store,
    ) -> SyncResult<SyncRun> {
        let jobs: Vec<Arc<dyn SyncJob>> = self
            .jobs(store)
            .into_iter()
            .filter(|j| kind == SyncKind::All || j.kind() == kind)
            .collect();
        if jobs.is_empty() {
            return Err(SyncError::Other(format!(
                "{kind} sync is not run by the user sync service"
            )));
        }
        let mut first = None;
        for job in jobs {
            if opts.scheduled && first.is_some() && !job.due(store).await.unwrap_or(true) {
                continue;
            }
            let run = job.run_fenced(store, &opts).await;
            if first.is_none() {
                first = Some(run);
            } else if let Err(e) = run {
                tracing::warn!(error = %e, kind = job.kind().as_str(), "sync could not run");
            }
        }
        first.unwrap_or_else(|| Err(SyncError::Other("no sync kind ran".into())))
    }

    /// Approves the held plan of a held run, once: the next run applies exactly that stored plan
    /// (its creates, updates and removals), then goes on with a delta round from the plan's delta
    /// link; after that the guard is armed again. Refused when the run has no held plan any more
    /// or a later round has changed what it was planned against. The approval expires after 24
    /// hours unused. Start a run afterwards.
    pub async fn approve_held_run(&self, run_id: &str) -> SyncResult<()> {
        let store = &self.inner.store;
        let run = store
            .get_sync_run(run_id)
            .await?
            .ok_or_else(|| SyncError::Other(format!("sync run '{run_id}' does not exist")))?;
        if run.status != SyncStatus::Held {
            return Err(SyncError::Other(format!(
                "sync run '{run_id}' was not held by the deletion guard (its status is {})",
                run.status.as_str()
            )));
        }
        let scope = self
            .jobs(&self.inner.store)
            .iter()
            .find(|j| j.kind() == run.kind)
            .map(|j| j.scope_key())
            .ok_or_else(|| SyncError::Other(format!("{} sync is not running here", run.kind)))?;
        let keys = Keys::new(scope);
        let plan = store
            .sync_plan_of_run(run_id)
            .await?
            .filter(|p| p.status == PlanStatus::Held)
            .ok_or_else(|| {
                SyncError::Other(format!(
                    "sync run '{run_id}' has no held plan to apply any more; run the sync again"
                ))
            })?;
        if plan.prior_cursor != store.get_kv(&keys.cursor()).await? {
            return Err(SyncError::Other(format!(
                "a later sync has changed what run '{run_id}' planned against; run the sync again"
            )));
        }
        store
            .set_kv(
                &keys.approval(),
                &Approval {
                    run: run_id.to_string(),
                    plan: Some(plan.id.clone()),
                    at: Utc::now(),
                }
                .encode(),
            )
            .await?;
        tracing::warn!(run = run_id, plan = %plan.id, "an admin approved the held sync plan");
        Ok(())
    }

    /// Wakes the background loop (the notification receiver calls this after persisting).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// The resources to subscribe to: `users`, plus `groups` when groups are the scope.
    pub fn subscription_resources(&self) -> Vec<String> {
        let mut r = vec!["users".to_string()];
        if self.settings().scope == SyncScope::Groups {
            r.push("groups".into());
        }
        r
    }

    /// Creates or renews the subscriptions now.
    pub async fn ensure_subscriptions(&self, now: DateTime<Utc>) -> SyncResult<()> {
        self.ensure_subscriptions_with(&self.inner.store, now).await
    }

    /// [`SyncService::ensure_subscriptions`] writing through `store`.
    async fn ensure_subscriptions_with(&self, store: &Store, now: DateTime<Utc>) -> SyncResult<()> {
        subscriptions::ensure(
            &self.inner.graph,
            store,
            &self.inner.public_url,
            &self.subscription_resources(),
            now,
        )
        .await
    }

    /// Processes the notification inbox once: lifecycle events are handled, then one delta round
    /// (or a full resync after `missed`) covers every change notification taken. Returns the run.
    pub async fn process_inbox(&self) -> SyncResult<Option<SyncRun>> {
        let _one_at_a_time = self.inner.run_lock.lock().await;
        let lease = HeldLease::take(
            &self.inner.store,
            SYNC_LEASE,
            &self.inner.holder,
            self.lease_ttl(),
            |_| {},
        )
        .await?;
        let fenced = self.inner.store.fenced(SYNC_LEASE, lease.token());
        let run = self.process_inbox_held(&fenced).await;
        lease.release().await;
        run
    }

    /// [`SyncService::process_inbox`] for a caller that holds the lease fencing `store`.
    async fn process_inbox_held(&self, store: &Store) -> SyncResult<Option<SyncRun>> {
        // Left in the inbox until the round that handles them commits (they leave in its
        // transaction): a crash or a failed round in between loses none.
        let notes = store.peek_notifications(INBOX_BATCH).await?;
        if notes.is_empty() {
            return Ok(None);
        }
        let ids: Vec<String> = notes.iter().map(|n| n.id.clone()).collect();
        let actions = subscriptions::triage(
            &self.inner.graph,
            store,
            &self.inner.public_url,
            &notes,
            &self.subscription_resources(),
        )
        .await?;
        if !(actions.full || actions.delta) {
            // Lifecycle events only: handled above, no round to commit with.
            store.delete_notifications(&ids).await?;
            return Ok(None);
        }
        let opts = RunOptions {
            full: actions.full,
            inbox: ids,
            ..Default::default()
        };
        let run = self.run_jobs(SyncKind::Users, opts, store).await?;
        self.done(store, LAST_POLL_KEY).await?;
        if run.status == SyncStatus::Failed {
            let retry = Utc::now() + INBOX_RETRY;
            self.inner
                .inbox_retry_at
                .store(retry.timestamp_millis(), Ordering::Relaxed);
        }
        Ok(Some(run))
    }

    /// Starts the background loop: inbox, delta poll every `poll_minutes`, nightly full round at
    /// `nightly_at` (server time), subscription upkeep. Every instance runs the loop; each step
    /// is done by whichever instance holds the lease, once per cluster.
    pub fn start(&self) -> Background {
        let (stop, mut stopped) = watch::channel(false);
        let svc = self.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = svc.inner.wake.notified() => {}
                    _ = tokio::time::sleep(INBOX_TICK) => {}
                }
                if *stopped.borrow() {
                    break;
                }
                // A run of this instance is going on (it holds the lease): nothing to do.
                let Ok(_one_at_a_time) = svc.inner.run_lock.try_lock() else {
                    continue;
                };
                let held = HeldLease::try_take(
                    &svc.inner.store,
                    SYNC_LEASE,
                    &svc.inner.holder,
                    svc.lease_ttl(),
                )
                .await;
                match held {
                    Ok(Some(lease)) => {
                        let fenced = svc.inner.store.fenced(SYNC_LEASE, lease.token());
                        if let Err(e) = svc.tick(&fenced).await {
                            tracing::warn!(error = %e, "a scheduled sync step failed");
                        }
                        lease.release().await;
                    }
                    Ok(None) => {} // another instance is the runner right now
                    Err(e) => tracing::warn!(error = %e, "the sync lease could not be read"),
                }
            }
        });
        Background { stop, task }
    }

    /// One step of the background loop, under the lease that fences `store`.
    async fn tick(&self, store: &Store) -> SyncResult<()> {
        // A round left unfinished by an instance that died (or lost the lease) resumes at once
        // from its committed cursor: nobody else can be running it while we hold the lease.
        self.resume_interrupted(store).await?;
        // A new service (a tenant just connected or changed) checks its subscriptions at once;
        // after that, once an hour per cluster.
        let first = !self
            .inner
            .subscriptions_checked
            .swap(true, Ordering::SeqCst);
        if self.inner.subscriptions.load(Ordering::Relaxed)
            && (first
                || self
                    .due(store, LAST_SUBSCRIPTIONS_KEY, true, |last| {
                        last + SUBSCRIPTION_CHECK
                    })
                    .await?)
        {
            match self.ensure_subscriptions_with(store, Utc::now()).await {
                Ok(()) => self.done(store, LAST_SUBSCRIPTIONS_KEY).await?,
                Err(e) => {
                    tracing::warn!(error = %e, "change-notification subscriptions could not be set up; the delta poll keeps extensions current");
                    // Tried again in a minute, not an hour.
                    let retry = Utc::now() - SUBSCRIPTION_CHECK + SUBSCRIPTION_RETRY;
                    self.schedule_at(store, LAST_SUBSCRIPTIONS_KEY, retry)
                        .await?;
                }
            }
        }
        let retry_at = self.inner.inbox_retry_at.load(Ordering::Relaxed);
        if Utc::now().timestamp_millis() >= retry_at {
            if let Err(e) = self.process_inbox_held(store).await {
                tracing::warn!(error = %e, "processing change notifications failed");
            }
        }
        let ctx = TickContext {
            public_url: self.inner.public_url.clone(),
            subscriptions: self.inner.subscriptions.load(Ordering::Relaxed),
        };
        let registered: Vec<Arc<dyn SyncJob>> = self
            .inner
            .jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for job in registered {
            if let Err(e) = job.tick(store, &ctx).await {
                if matches!(
                    e,
                    SyncError::Store(pbx365_store::StoreError::LeaseLost { .. })
                ) {
                    return Err(e);
                }
                tracing::warn!(error = %e, kind = job.kind().as_str(), "a sync step failed");
            }
        }
        let at = self.settings().nightly_at;
        let poll = self.poll_interval();
        if self
            .due(store, LAST_NIGHTLY_KEY, false, |last| {
                next_nightly_after(last.with_timezone(&Local), &at).with_timezone(&Utc)
            })
            .await?
        {
            self.done(store, LAST_NIGHTLY_KEY).await?;
            let full = RunOptions {
                full: true,
                ..Default::default()
            };
            self.log_run(self.run_jobs(SyncKind::All, full, store).await);
            self.done(store, LAST_POLL_KEY).await?;
        } else if self
            .due(store, LAST_POLL_KEY, false, |last| last + poll)
            .await?
        {
            let poll = RunOptions {
                scheduled: true,
                ..Default::default()
            };
            self.log_run(self.run_jobs(SyncKind::All, poll, store).await);
            self.done(store, LAST_POLL_KEY).await?;
        }
        Ok(())
    }

    /// Runs recorded as running while this instance holds the lease were left by an instance
    /// that died mid-round: each is recorded as interrupted, and its kind runs again, resuming
    /// from the cursor the dead round committed.
    async fn resume_interrupted(&self, store: &Store) -> SyncResult<()> {
        let stale = store.unfinished_sync_runs().await?;
        if stale.is_empty() {
            return Ok(());
        }
        let mut kinds = Vec::new();
        for head in stale {
            tracing::warn!(run = %head.id, kind = head.kind.as_str(), "a sync run was interrupted (its instance stopped); resuming it");
            let mut report = pbx365_domain::SyncReport::default();
            report.push_error(
                "interrupted: the instance running this round stopped; the next run resumed it \
                 from its last committed page"
                    .to_string(),
            );
            store
                .finish_sync_run(&head.id, SyncStatus::Failed, &report)
                .await?;
            if !kinds.contains(&head.kind) {
                kinds.push(head.kind);
            }
        }
        for kind in kinds {
            if self.jobs(store).iter().any(|j| j.kind() == kind) {
                self.log_run(self.run_jobs(kind, RunOptions::default(), store).await);
            }
        }
        Ok(())
    }

    /// Whether the step last done at the time stored under `key` is due again (`next` of that
    /// time has come). A step never done is due when `at_once`, else it counts from now.
    async fn due(
        &self,
        store: &Store,
        key: &str,
        at_once: bool,
        next: impl FnOnce(DateTime<Utc>) -> DateTime<Utc>,
    ) -> SyncResult<bool> {
        let last = store
            .get_kv(key)
            .await?
            .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
            .map(|t| t.with_timezone(&Utc));
        match last {
            Some(last) => Ok(Utc::now() >= next(last)),
            None if at_once => Ok(true),
            None => {
                self.done(store, key).await?;
                Ok(false)
            }
        }
    }

    /// Records that the step under `key` was done now.
    async fn done(&self, store: &Store, key: &str) -> SyncResult<()> {
        self.schedule_at(store, key, Utc::now()).await
    }

    /// Records `at` as the time the step under `key` was last done.
    async fn schedule_at(&self, store: &Store, key: &str, at: DateTime<Utc>) -> SyncResult<()> {
        Ok(store.set_kv(key, &at.to_rfc3339()).await?)
    }

    fn log_run(&self, r: SyncResult<SyncRun>) {
        match r {
            Ok(run) => {
                tracing::info!(run = %run.id, status = run.status.as_str(), created = run.report.created.len(),
                updated = run.report.updated.len(), disabled = run.report.disabled.len(), "scheduled sync done")
            }
            Err(e) => tracing::warn!(error = %e, "scheduled sync could not run"),
        }
    }
}

fn poll_interval(s: &SyncSettings) -> Duration {
    Duration::minutes(i64::from(s.poll_minutes.max(1)))
}

/// The next `HH:MM` (server time) at or after `now`; an unreadable setting falls back to 02:00.
pub fn next_nightly<Tz: TimeZone>(now: DateTime<Tz>, at: &str) -> DateTime<Tz> {
    next_at(now, at, false)
}

/// The next `HH:MM` strictly after `now`.
pub fn next_nightly_after<Tz: TimeZone>(now: DateTime<Tz>, at: &str) -> DateTime<Tz> {
    next_at(now, at, true)
}

fn next_at<Tz: TimeZone>(now: DateTime<Tz>, at: &str, strictly_after: bool) -> DateTime<Tz> {
    let (h, m) = parse_time_of_day(at).unwrap_or((2, 0));
    let time = NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default();
    let tz = now.timezone();
    for days in 0..3 {
        let date = now.date_naive() + Duration::days(days);
        // A time skipped by a DST change falls back to the earliest valid instant after it.
        let Some(candidate) = tz.from_local_datetime(&date.and_time(time)).earliest() else {
            continue;
        };
        if candidate > now || (!strictly_after && candidate == now) {
            return candidate;
        }
    }
    now + Duration::days(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nightly_is_today_when_still_ahead_else_tomorrow() {
        let now: DateTime<Utc> = "2026-01-10T01:30:00Z".parse().unwrap();
        assert_eq!(
            next_nightly(now, "02:00").to_rfc3339(),
            "2026-01-10T02:00:00+00:00"
        );
        let now: DateTime<Utc> = "2026-01-10T02:00:00Z".parse().unwrap();
        assert_eq!(
            next_nightly(now, "02:00").to_rfc3339(),
            "2026-01-10T02:00:00+00:00"
        );
        assert_eq!(
            next_nightly_after(now, "02:00").to_rfc3339(),
            "2026-01-11T02:00:00+00:00"
        );
        let now: DateTime<Utc> = "2026-01-10T23:59:00Z".parse().unwrap();
        assert_eq!(
            next_nightly(now, "bad").to_rfc3339(),
            "2026-01-11T02:00:00+00:00"
        );
    }
}
