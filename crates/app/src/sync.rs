//! User sync: the running service and its background work (built lazily from the effective
//! settings and rebuilt when the connection changes), run now, preview (a dry run of settings
//! not saved yet), approving a held run, the run history, and the directory search behind the
//! console's users/groups picker.
//!
//! pbx365 may start before Microsoft 365 is connected, and the Configure page may connect (or
//! switch) the tenant while it runs. [`SyncHandle`] therefore builds the [`SyncService`] the
//! first time it is needed, and rebuilds it when the connection settings change; with
//! background work switched on (`pbx365 serve`) it also (re)starts the nightly run, the delta
//! poll, subscription upkeep and the notification inbox worker.

use crate::{App, AppError, Missing};
use pbx365_domain::settings::Settings;
use pbx365_domain::{SyncKind, SyncReport, SyncRun, SyncStatus};
use pbx365_graph::search::{search_groups, search_users};
use pbx365_graph::{KeyStore, Slot};
use pbx365_sync::contacts::ContactConfig;
use pbx365_sync::{Background, ContactsJob, SyncService};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Mutex;

pub use pbx365_sync::receiver::Reply as NotificationReply;
pub use pbx365_sync::{Progress, RunOptions, SyncError};

/// The sentence shown when sync is asked for before the tenant is connected.
pub const NOT_CONNECTED: &str =
    "Microsoft 365 is not connected: open Settings > Integrations > Microsoft 365 > Configure";

/// Why no sync service (or Graph client) is available.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unavailable {
    /// Client id, tenant id or key pair is missing.
    #[error("{NOT_CONNECTED} ({0})")]
    NotConnected(&'static str),
    /// The connection settings are there but unusable (e.g. an unreadable `m365.ca_file`);
    /// holds the graph crate's sentence.
    #[error("Microsoft 365 cannot be reached with the current settings: {0}")]
    Broken(String),
}

/// What is missing before a tenant can be synced, or `None` when everything is there.
pub fn missing_connection(settings: &Settings) -> Option<&'static str> {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    if !set(&settings.m365.client_id) {
        return Some("the Application (client) ID is not set");
    }
    if !set(&settings.m365.tenant_id) {
        return Some("admin consent has not been given yet, so the tenant is unknown");
    }
    if !KeyStore::new(&settings.data_dir).exists(Slot::Active) {
        return Some("no key pair has been generated");
    }
    None
}

/// Parses the kind of a sync request: users, contacts (PRO) or all.
pub fn runnable_kind(kind: &str) -> Result<SyncKind, String> {
    match SyncKind::parse(kind) {
        Some(k @ (SyncKind::Users | SyncKind::Contacts | SyncKind::All)) => Ok(k),
        Some(k) => Err(format!(
            "{k} sync is not available in this version of pbx365; run `users`, `contacts` or `all`"
        )),
        None => Err(format!(
            "'{}' is not a kind of sync: use users, contacts or all",
            kind.chars().take(32).collect::<String>()
        )),
    }
}

#[derive(Default)]
struct ServiceSlot {
    key: Option<String>,
    service: Option<SyncService>,
    background: Option<Background>,
}

/// Holds the sync service of the running application; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct SyncHandle {
    slot: Arc<Mutex<ServiceSlot>>,
    run_background: Arc<AtomicBool>,
    /// The service last built, reachable without waiting (the notification receiver wakes it).
    current: Arc<std::sync::Mutex<Option<SyncService>>>,
}

/// Identifies the connection a service was built for; any change means a new service.
fn connection_key(s: &Settings) -> String {
    serde_json::json!([
        crate::context::graph_key(s),
        s.effective_public_url(),
        s.extension_digits,
    ])
    .to_string()
}

impl SyncHandle {
    async fn service(&self, app: &App) -> Result<SyncService, Unavailable> {
        let settings = app.settings();
        if let Some(what) = missing_connection(&settings) {
            return Err(Unavailable::NotConnected(what));
        }
        let key = connection_key(&settings);
        let mut slot = self.slot.lock().await;
        if slot.key.as_deref() == Some(key.as_str()) {
            if let Some(svc) = slot.service.clone() {
                svc.set_settings(settings.sync.clone());
                if self.run_background.load(Ordering::SeqCst) && slot.background.is_none() {
                    slot.background = Some(svc.start());
                    tracing::info!("user sync started: nightly reconciliation, delta poll, change notifications");
                }
                return Ok(svc);
            }
        }
        let svc_graph = app.graph_for(&settings)?;
        let svc = SyncService::new(
            app.store.clone(),
            svc_graph.clone(),
            settings.sync.clone(),
            app.number_rules(),
            &settings.effective_public_url(),
        )
        .with_lease_ttl(std::time::Duration::from_secs(u64::from(
            settings.sync.lease_ttl_secs,
        )))
        .with_job(Arc::new(contacts_job(app, &svc_graph)));
        if let Some(old) = slot.background.take() {
            old.stop().await;
        }
        if self.run_background.load(Ordering::SeqCst) {
            slot.background = Some(svc.start());
            tracing::info!(
                "user sync started: nightly reconciliation, delta poll, change notifications"
            );
        }
        slot.key = Some(key);
        slot.service = Some(svc.clone());
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(svc.clone());
        Ok(svc)
    }
}

/// Contact sync (PRO) as a job of the service, reading the current settings at each run.
fn contacts_job(app: &App, graph: &Arc<pbx365_graph::GraphClient>) -> ContactsJob {
    let source = app.settings_source();
    let config: ContactConfig = Arc::new(move || {
        let s = source.read().unwrap_or_else(|e| e.into_inner()).clone();
        (s.edition, s.contacts.clone())
    });
    ContactsJob::new(app.store.clone(), graph.clone(), config)
}

/// The kinds whose runs an admin approves, each with the kinds of runs that share its cursor.
const APPROVABLE: [&[SyncKind]; 2] = [&[SyncKind::Users, SyncKind::All], &[SyncKind::Contacts]];

/// One picker result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectoryEntry {
    /// Microsoft object id.
    pub id: String,
    /// Display name (the id when there is none).
    pub name: String,
    /// Sign-in name or mail address.
    pub detail: String,
}

/// What the picker searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryKind {
    /// Users (by display name or sign-in name).
    Users,
    /// Groups (by display name).
    Groups,
}

impl App {
    /// Starts background work (nightly, poll, subscriptions, inbox) whenever the sync service
    /// is built; `pbx365 serve` calls this once, then [`Self::refresh_sync`].
    pub fn enable_background_sync(&self) {
        self.sync.run_background.store(true, Ordering::SeqCst);
    }

    /// Wakes the sync worker so a just-persisted change notification is triaged at once
    /// instead of at the next inbox tick.
    pub fn wake_sync(&self) {
        let current = self.sync.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(svc) = current.as_ref() {
            svc.wake();
        }
        // Calendar notifications are marks the calendar task reads when woken.
        self.calendar.wake.notify_one();
    }

    /// The sync service for the current settings, built (and started) if needed.
    pub async fn sync_service(&self) -> Result<SyncService, Unavailable> {
        self.sync.service(self).await
    }

    /// Builds or rebuilds the service if the tenant is connected (at start-up and after the
    /// connection or sync settings changed); not being connected is not an error here.
    pub async fn refresh_sync(&self) {
        match self.sync_service().await {
            Ok(_) => {}
            Err(Unavailable::NotConnected(what)) => {
                tracing::info!("user sync waits for Microsoft 365: {what}")
            }
            Err(e) => tracing::warn!(error = %e, "user sync cannot start"),
        }
    }

    /// Keeps the service in step with the settings while the server runs: once the Configure
    /// page connects a tenant (or changes it), the background work starts (or restarts) within
    /// `every`, without waiting for someone to press "Sync now".
    pub fn watch_sync(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let app = self.clone();
        tokio::spawn(async move {
            let mut last_ok = None;
            loop {
                tokio::time::sleep(every).await;
                let ok = match app.sync_service().await {
                    Ok(_) => true,
                    Err(Unavailable::NotConnected(_)) => false,
                    Err(e) => {
                        if last_ok != Some(false) {
                            tracing::warn!(error = %e, "user sync cannot start");
                        }
                        false
                    }
                };
                last_ok = Some(ok);
            }
        })
    }

    /// Stops the background work (at shutdown).
    pub async fn stop_sync(&self) {
        let mut slot = self.sync.slot.lock().await;
        if let Some(bg) = slot.background.take() {
            bg.stop().await;
        }
    }

    /// Runs a sync now and returns its finished report. A run that writes is audited as
    /// `actor`'s (none for the CLI).
    pub async fn run_sync(
        &self,
        actor: Option<&str>,
        kind: SyncKind,
        opts: RunOptions,
    ) -> Result<SyncRun, AppError> {
        let svc = self.sync_service().await?;
        let dry = opts.dry_run;
        let run = svc.run_now(kind, opts).await?;
        if let (false, Some(actor)) = (dry, actor) {
            self.audit(
                actor,
                "sync.run",
                kind.as_str(),
                format!("run {} {}", run.id, run.status.as_str()),
            )
            .await;
        }
        Ok(run)
    }

    /// A dry run of user sync with `candidate` settings (saved or not): the running service
    /// keeps the saved ones, so this runs on a separate service sharing the Graph client when
    /// the connection is the same.
    pub async fn preview_sync(&self, candidate: &Settings) -> Result<SyncRun, AppError> {
        let graph = self.graph_for(candidate)?;
        let svc = SyncService::new(
            self.store.clone(),
            graph,
            candidate.sync.clone(),
            self.number_rules(),
            &candidate.effective_public_url(),
        )
        .without_subscriptions();
        Ok(svc
            .run_now(
                SyncKind::Users,
                RunOptions {
                    dry_run: true,
                    ..Default::default()
                },
            )
            .await?)
    }

    /// The newest finished user sync run.
    pub async fn latest_users_run(&self) -> Option<SyncRun> {
        let runs = self.store.list_sync_runs(20).await.ok()?;
        runs.into_iter().find(|r| {
            matches!(r.kind, SyncKind::Users | SyncKind::All) && r.status != SyncStatus::Running
        })
    }

    /// The newest run of user sync or of contact sync when it is held by the mass-deletion
    /// guard (user sync first). Every console page asks, so this reads small rows and the
    /// report only of a held run.
    pub async fn held_run(&self) -> Option<SyncRun> {
        for kinds in APPROVABLE {
            if let Some(id) = self.held_run_id(kinds).await {
                return self.store.get_sync_run(&id).await.ok()?;
            }
        }
        None
    }

    /// The id of the newest finished run of `kinds` when it is held (one small row, no report).
    async fn held_run_id(&self, kinds: &[SyncKind]) -> Option<String> {
        self.store
            .latest_finished_sync_run(kinds)
            .await
            .ok()?
            .filter(|r| r.status == SyncStatus::Held)
            .map(|r| r.id)
    }

    /// True when `id` is a held run waiting for approval: the newest finished run of its kind.
    pub async fn is_awaiting_approval(&self, id: &str) -> bool {
        for kinds in APPROVABLE {
            if self.held_run_id(kinds).await.is_some_and(|r| r == id) {
                return true;
            }
        }
        false
    }

    /// What approving the held run `id` would disable and delete: the `disabled` and `deleted`
    /// lines of its stored plan; `None` when no held plan of that run is kept.
    pub async fn held_plan_removals(&self, id: &str) -> Option<SyncReport> {
        let plan = self
            .store
            .sync_plan_of_run(id)
            .await
            .ok()?
            .filter(|p| p.status == pbx365_store::PlanStatus::Held)?;
        self.store.sync_plan_removals(&plan.id).await.ok()
    }

    /// Recorded runs, newest first.
    pub async fn sync_runs(&self, limit: u32) -> Result<Vec<SyncRun>, AppError> {
        Ok(self.store.list_sync_runs(limit).await?)
    }

    /// One run with its report.
    pub async fn sync_run(&self, id: &str) -> Result<SyncRun, AppError> {
        self.store.get_sync_run(id).await?.ok_or_else(|| {
            AppError::not_found(
                Missing::SyncRun,
                format!(
                    "sync run '{}' does not exist",
                    id.chars().take(64).collect::<String>()
                ),
            )
        })
    }

    /// **Approve these deletions**: approves the held run `id` once (only the newest run of its
    /// kind, only while it is held); the next run of that kind applies them
    /// ([`Self::approve_and_run`] runs it at once). A refusal of the sync service comes back as
    /// [`AppError::Conflict`]. Returns the kind to run.
    pub async fn approve_held_run(&self, actor: &str, id: &str) -> Result<SyncKind, AppError> {
        if !self.is_awaiting_approval(id).await {
            return Err(AppError::NothingToApprove);
        }
        let run = self.sync_run(id).await?;
        let svc = self.sync_service().await?;
        svc.approve_held_run(id)
            .await
            .map_err(|e| AppError::Conflict(e.to_string()))?;
        self.audit(actor, "sync.approve", id, "approved the held deletions")
            .await;
        // A held `all` run was held by user sync (the first kind it runs).
        Ok(match run.kind {
            SyncKind::All => SyncKind::Users,
            k => k,
        })
    }

    /// Approves the held run `id` ([`Self::approve_held_run`]) and runs its kind now: the run
    /// that applies exactly the approved plan, then goes on with a delta round.
    pub async fn approve_and_run(&self, actor: &str, id: &str) -> Result<SyncRun, AppError> {
        let kind = self.approve_held_run(actor, id).await?;
        self.run_sync(Some(actor), kind, RunOptions::default())
            .await
    }

    /// The picker's search: users or groups whose name starts with `prefix`, from Graph.
    pub async fn search_directory(
        &self,
        kind: DirectoryKind,
        prefix: &str,
    ) -> Result<Vec<DirectoryEntry>, AppError> {
        let graph = self.graph()?;
        let hits = match kind {
            DirectoryKind::Users => search_users(&graph, prefix).await?,
            DirectoryKind::Groups => search_groups(&graph, prefix).await?,
        };
        Ok(hits
            .into_iter()
            .map(|f| DirectoryEntry {
                name: f.display_name.unwrap_or_else(|| f.id.clone()),
                detail: f.user_principal_name.or(f.mail).unwrap_or_default(),
                id: f.id,
            })
            .collect())
    }
}

/// Handles a request to the change-notification receiver: the validation handshake, the
/// constant-time clientState check, persistence with dedup, and the 202.
pub async fn receive_notification(
    store: &pbx365_store::Store,
    query: Option<&str>,
    body: &[u8],
) -> NotificationReply {
    pbx365_sync::receiver::handle(store, query, body).await
}
