//! [`App`]: the application context every use case runs in — the store, the effective
//! settings, the one clock, the sync service and the one Microsoft Graph client.

use crate::clock::{Clock, SystemClock};
use crate::sync::{missing_connection, SyncHandle, Unavailable};
use chrono::{DateTime, Utc};
use pbx365_domain::settings::Settings;
use pbx365_domain::NumberRules;
use pbx365_graph::GraphClient;
use pbx365_store::Store;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// The Graph client kept for a connection, with the key of that connection.
type KeptClient = (String, Arc<GraphClient>);

/// The application context; cheap to clone (clones share everything).
#[derive(Clone)]
pub struct App {
    /// The database.
    pub store: Store,
    settings: Arc<RwLock<Arc<Settings>>>,
    data_dir: Arc<PathBuf>,
    clock: Arc<dyn Clock>,
    pub(crate) sync: SyncHandle,
    graph: Arc<Mutex<Option<KeptClient>>>,
    pub(crate) mail: crate::mail::MailHandle,
    /// Where routing changes go to Kamailio (set by `serve`/`demo`).
    pub(crate) sip: Arc<RwLock<Option<crate::sip::SipLink>>>,
    /// The single sign-on relying party (with its JWKS cache), keyed like the Graph client.
    pub(crate) oidc: Arc<Mutex<Option<KeptRelyingParty>>>,
    /// Calendar status: re-read requests and the switch feed.
    pub(crate) calendar: crate::calendar::schedule::CalendarHandle,
}

/// The relying party kept for a connection, with the key of that connection.
pub(crate) type KeptRelyingParty = (String, Arc<pbx365_graph::oidc::RelyingParty>);

impl App {
    /// The context for an opened store and the effective (file + env + console) settings, on
    /// the system clock.
    pub fn new(store: Store, settings: Settings) -> Self {
        App {
            store,
            data_dir: Arc::new(settings.data_dir.clone()),
            settings: Arc::new(RwLock::new(Arc::new(settings))),
            clock: Arc::new(SystemClock),
            sync: SyncHandle::default(),
            graph: Arc::default(),
            mail: Default::default(),
            sip: Arc::default(),
            oidc: Arc::default(),
            calendar: Default::default(),
        }
    }

    /// The same context timed by another clock (tests move time).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The clock audit entries, sessions and certificate checks read.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Now, by [`Self::clock`].
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The current effective settings (a snapshot; console changes replace it).
    pub fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The shared cell of the effective settings (jobs that read them at each run keep it).
    pub(crate) fn settings_source(&self) -> Arc<RwLock<Arc<Settings>>> {
        self.settings.clone()
    }

    /// Replaces the effective settings (after a console change was stored and validated).
    pub fn replace_settings(&self, settings: Settings) {
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(settings);
    }

    /// Directory holding the private key, photos and the SQLite file.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The configured extension number lengths.
    pub fn number_rules(&self) -> NumberRules {
        let d = self.settings().extension_digits;
        NumberRules {
            min_len: d.min,
            max_len: d.max,
        }
    }

    /// The Graph client for the current connection settings: built once and kept (with its
    /// token cache) until the connection settings change.
    pub(crate) fn graph(&self) -> Result<Arc<GraphClient>, Unavailable> {
        self.graph_for(&self.settings())
    }

    /// The Graph client for `settings`: the kept one when its connection is the same.
    pub(crate) fn graph_for(&self, settings: &Settings) -> Result<Arc<GraphClient>, Unavailable> {
        if let Some(what) = missing_connection(settings) {
            return Err(Unavailable::NotConnected(what));
        }
        let key = graph_key(settings);
        let mut slot = self.graph.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((k, client)) = slot.as_ref() {
            if *k == key {
                return Ok(client.clone());
            }
        }
        let client = Arc::new(
            GraphClient::from_settings(settings).map_err(|e| Unavailable::Broken(e.to_string()))?,
        );
        *slot = Some((key, client.clone()));
        Ok(client)
    }
}

/// Identifies the tenant, app and endpoints a Graph client was built for.
pub(crate) fn graph_key(s: &Settings) -> String {
    let m = &s.m365;
    serde_json::json!([
        m.tenant_id,
        m.client_id,
        m.authority_url,
        m.graph_url,
        m.ca_file,
        m.assertion_alg,
        s.data_dir,
    ])
    .to_string()
}
