//! The state every handler sees: the store, the effective settings and process-wide handles.

use crate::session::Sessions;
use pbx365_domain::settings::Settings;
use pbx365_domain::NumberRules;
use pbx365_store::Store;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Shared application state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Console sessions and login throttling.
    pub sessions: Sessions,
    /// The user sync service, built once Microsoft 365 is connected.
    pub sync: crate::sync_handle::SyncHandle,
    settings: Arc<RwLock<Arc<Settings>>>,
    data_dir: Arc<PathBuf>,
    tls: bool,
}

impl AppState {
    /// Builds the state from an opened store and the effective (file + env + console) settings.
    pub fn new(store: Store, settings: Settings) -> Self {
        let data_dir = Arc::new(settings.data_dir.clone());
        let tls = settings.tls.is_some();
        let sessions = Sessions::system(store.clone(), &settings.effective_public_url(), tls);
        AppState {
            store,
            sessions,
            sync: Default::default(),
            settings: Arc::new(RwLock::new(Arc::new(settings))),
            data_dir,
            tls,
        }
    }

    /// The current effective settings (a snapshot; console changes replace it).
    pub fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the effective settings (after a console change was stored and validated).
    pub fn replace_settings(&self, settings: Settings) {
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(settings);
    }

    /// Directory holding the private key, photos and the SQLite file.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The same state with other sessions (tests move the session clock).
    pub fn with_sessions(mut self, sessions: Sessions) -> Self {
        self.sessions = sessions;
        self
    }

    /// True when the server itself terminates TLS (cookies get `Secure`).
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The configured extension number lengths.
    pub fn number_rules(&self) -> NumberRules {
        let d = self.settings().extension_digits;
        NumberRules {
            min_len: d.min,
            max_len: d.max,
        }
    }
}
