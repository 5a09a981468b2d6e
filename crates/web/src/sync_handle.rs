//! The running user sync service, (re)built from the effective settings.
//!
//! pbx365 may start before Microsoft 365 is connected, and the Configure page may connect (or
//! switch) the tenant while it runs. [`SyncHandle`] therefore builds the [`SyncService`] lazily
//! from the current settings the first time it is needed, and rebuilds it when the connection
//! settings change; with background work switched on (`pbx365 serve`) it also (re)starts the
//! nightly run, the delta poll, subscription upkeep and the notification inbox worker.

use crate::AppState;
use pbx365_domain::settings::Settings;
use pbx365_graph::{GraphClient, KeyStore, Slot};
use pbx365_sync::{Background, SyncService};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Mutex;

/// The sentence shown when sync is asked for before the tenant is connected.
pub const NOT_CONNECTED: &str =
    "Microsoft 365 is not connected: open Settings > Integrations > Microsoft 365 > Configure";

/// Why no sync service is available.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unavailable {
    /// Client id, tenant id or key pair is missing.
    #[error("{NOT_CONNECTED} ({0})")]
    NotConnected(&'static str),
    /// The connection settings are there but unusable (e.g. an unreadable `m365.ca_file`).
    #[error("Microsoft 365 cannot be reached with the current settings: {0}")]
    Broken(String),
}

#[derive(Default)]
struct ServiceSlot {
    key: Option<String>,
    service: Option<SyncService>,
    background: Option<Background>,
}

/// Holds the sync service of the running server; cheap to clone.
#[derive(Clone, Default)]
pub struct SyncHandle {
    slot: Arc<Mutex<ServiceSlot>>,
    run_background: Arc<AtomicBool>,
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

/// Identifies the connection a service was built for; any change means a new Graph client.
fn connection_key(s: &Settings) -> String {
    let m = &s.m365;
    serde_json::json!([
        m.tenant_id,
        m.client_id,
        m.authority_url,
        m.graph_url,
        m.ca_file,
        m.assertion_alg,
        s.data_dir,
        s.effective_public_url(),
        s.extension_digits,
    ])
    .to_string()
}

impl SyncHandle {
    /// Starts background work (nightly, poll, subscriptions, inbox) whenever a service is built;
    /// `pbx365 serve` calls this once, then [`Self::refresh`].
    pub fn enable_background(&self) {
        self.run_background.store(true, Ordering::SeqCst);
    }

    /// The service for the current settings, built (and started) if needed.
    pub async fn service(&self, state: &AppState) -> Result<SyncService, Unavailable> {
        let settings = state.settings();
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
        let graph = GraphClient::from_settings(&settings)
            .map_err(|e| Unavailable::Broken(e.to_string()))?;
        let svc = SyncService::new(
            state.store.clone(),
            Arc::new(graph),
            settings.sync.clone(),
            state.number_rules(),
            &settings.effective_public_url(),
        );
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
        Ok(svc)
    }

    /// Builds or rebuilds the service if the tenant is connected (at start-up and after the
    /// connection or sync settings changed); not being connected is not an error here.
    pub async fn refresh(&self, state: &AppState) {
        match self.service(state).await {
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
    pub fn watch(
        &self,
        state: AppState,
        every: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let handle = self.clone();
        tokio::spawn(async move {
            let mut last_ok = None;
            loop {
                tokio::time::sleep(every).await;
                let ok = match handle.service(&state).await {
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
    pub async fn stop(&self) {
        let mut slot = self.slot.lock().await;
        if let Some(bg) = slot.background.take() {
            bg.stop().await;
        }
    }
}
