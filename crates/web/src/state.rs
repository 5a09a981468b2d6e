//! The state every handler sees: the application context ([`pbx365_app::App`]) and the
//! console sessions.

use crate::session::{Clock, SessionPolicy, Sessions};
use pbx365_app::App;
use pbx365_domain::settings::Settings;
use pbx365_domain::NumberRules;
use pbx365_store::Store;
use std::path::Path;
use std::sync::Arc;

/// Shared application state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The use cases and everything they run on.
    pub app: App,
    /// The database (the same as the app's; for the HTTP layer's own reads, e.g. `/healthz`).
    pub store: Store,
    /// Console sessions and login throttling.
    pub sessions: Sessions,
    tls: bool,
}

impl AppState {
    /// Builds the state from an opened store and the effective (file + env + console) settings.
    pub fn new(store: Store, settings: Settings) -> Self {
        Self::from_app(App::new(store, settings))
    }

    /// Builds the state around an application context; sessions run on its clock.
    pub fn from_app(app: App) -> Self {
        let settings = app.settings();
        let tls = settings.tls.is_some();
        let mut policy = SessionPolicy::new(&settings.effective_public_url(), tls);
        policy.idle = chrono::Duration::minutes(settings.sessions.idle_minutes.into());
        policy.absolute = chrono::Duration::hours(settings.sessions.absolute_hours.into());
        let sessions = Sessions::new(app.store.clone(), Arc::clone(app.clock()), policy);
        AppState {
            store: app.store.clone(),
            app,
            sessions,
            tls,
        }
    }

    /// The current effective settings (a snapshot; console changes replace it).
    pub fn settings(&self) -> Arc<Settings> {
        self.app.settings()
    }

    /// Replaces the effective settings (after a console change was stored and validated).
    pub fn replace_settings(&self, settings: Settings) {
        self.app.replace_settings(settings)
    }

    /// Directory holding the private key, photos and the SQLite file.
    pub fn data_dir(&self) -> &Path {
        self.app.data_dir()
    }

    /// The same state on another clock: audit entries and sessions both read it (tests move
    /// time).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.app = self.app.with_clock(clock.clone());
        self.sessions = self.sessions.with_clock(clock);
        self
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
        self.app.number_rules()
    }
}
