//! The state shared by every handler (as `Arc<SimState>`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crate::faults::Faults;
use crate::identity::apps::App;
use crate::identity::claims::{AccessClaims, AuthCode, RefreshGrant};
use crate::identity::keys::KeySet;
use crate::runtime::GraphRuntime;
use crate::stats::Stats;
use crate::tenant::Tenant;
use crate::SimConfig;

/// Everything the simulator knows, shared between handlers.
pub struct SimState {
    /// The configuration it was started with.
    pub config: SimConfig,
    /// `https://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    /// Tenant GUID.
    pub tenant_id: String,
    /// Tenant verified domain.
    pub domain: String,
    /// Directory and mailbox data (S2's model).
    pub tenant: tokio::sync::RwLock<Tenant>,
    /// Graph settings, throttling counters and delivery bookkeeping (kept across reseeds).
    pub runtime: Arc<GraphRuntime>,
    /// Registered applications by client id.
    pub apps: Mutex<HashMap<String, App>>,
    /// Token signing keys (current first).
    pub keys: RwLock<KeySet>,
    /// Injected faults.
    pub faults: Faults,
    /// Request counters.
    pub stats: Stats,
    /// User (id or UPN) the next authorize request completes as, set by `POST /_sim/signin`.
    pub pending_signin: Mutex<Option<String>>,
    /// Issued, not yet redeemed authorization codes.
    pub auth_codes: Mutex<HashMap<String, AuthCode>>,
    /// Issued refresh tokens.
    pub refresh_tokens: Mutex<HashMap<String, RefreshGrant>>,
    /// Client-assertion `jti` values already used, with their expiry (unix seconds).
    pub used_jti: Mutex<HashMap<String, i64>>,
    /// Graph access tokens already verified: token -> (claims, kid).
    pub verified_tokens: RwLock<HashMap<String, (AccessClaims, String)>>,
    /// Outbound HTTP client (notification delivery to loopback receivers).
    pub http: reqwest::Client,
    /// The complete app router, for dispatching `$batch` sub-requests through the same stack.
    pub router: OnceLock<axum::Router>,
}

impl SimState {
    /// True while an injected fault asks to drop change notifications.
    pub fn drop_notifications(&self) -> bool {
        self.faults.drop_notifications()
    }

    /// Epoch of delta tokens: bumped by every `expire_delta_tokens` fault. Delta tokens issued
    /// under an older epoch must be answered as expired (graph-facts §4).
    pub fn delta_epoch(&self) -> u64 {
        self.faults.delta_epoch()
    }

    /// True when `tenant` (GUID or domain, any case) names this tenant.
    pub fn is_own_tenant(&self, tenant: &str) -> bool {
        tenant.eq_ignore_ascii_case(&self.tenant_id) || tenant.eq_ignore_ascii_case(&self.domain)
    }
}
