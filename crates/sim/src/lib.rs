//! m365-sim: a faithful local Microsoft 365 tenant (identity platform + Graph v1.0) for tests and
//! demos. Start it in-process with [`start`], or run the `m365-sim` binary.
//!
//! Identity paths are `{base}/{tenant}/oauth2/v2.0/token` etc., Graph is `{base}/v1.0/...`, the
//! control API (things Microsoft has no API for) is `{base}/_sim/...`.

// Handlers and helpers return `Result<_, axum::response::Response>` on purpose: the error *is*
// the HTTP answer (Graph or identity envelope), built once where the problem is found.
#![allow(clippy::result_large_err)]

pub mod client;
pub mod control;
pub mod faults;
pub mod graph;
pub mod identity;
pub mod runtime;
pub mod seed;
pub mod server;
pub mod state;
pub mod stats;
pub mod tenant;
pub mod tls;
pub mod tz;

use std::net::SocketAddr;
use std::sync::Arc;

pub use client::SimControl;
pub use state::SimState;

/// How to run the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Serve HTTPS with a CA generated at start (default); false serves plain HTTP.
    pub https: bool,
    /// Number of users the deterministic generator creates (0 = none besides the seed).
    pub users: usize,
    /// Graph-shaped seed JSON (same format as `--seed FILE`).
    pub seed: Option<serde_json::Value>,
    /// Tenant GUID; default: the seed's `tenant.id`, else one derived from `rng_seed`.
    pub tenant_id: Option<String>,
    /// Verified domain of the tenant (user principal names end with it).
    pub domain: String,
    /// Latency added to every request, in milliseconds.
    pub latency_ms: u64,
    /// Seed of the deterministic generator (same seed, same organisation).
    pub rng_seed: u64,
    /// Lifetime of issued access tokens, in seconds (Microsoft: 60–90 min; doc example 3599).
    pub token_lifetime_secs: u64,
    /// Lifetime of ID tokens, in seconds.
    pub id_token_lifetime_secs: u64,
    /// How long a rotated-out signing key stays published in the JWKS, in seconds.
    pub key_grace_secs: u64,
    /// Allowed clock skew when checking client assertions, in seconds.
    pub clock_skew_secs: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            https: true,
            users: 0,
            seed: None,
            tenant_id: None,
            domain: "contoso.example".to_string(),
            latency_ms: 0,
            rng_seed: 365,
            token_lifetime_secs: 3599,
            id_token_lifetime_secs: 3600,
            key_grace_secs: 24 * 3600,
            clock_skew_secs: 300,
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Certificates or keys could not be generated.
    #[error("cannot generate keys or certificates: {0}")]
    Crypto(String),
    /// The seed was refused.
    #[error("bad seed: {0}")]
    Seed(#[from] seed::SeedError),
    /// Any other start-up failure.
    #[error("{0}")]
    Other(String),
}

/// A running simulator; dropping it does not stop it, call [`SimHandle::shutdown`].
pub struct SimHandle {
    /// `https://127.0.0.1:PORT` (or `http://…` with `https: false`), no trailing slash.
    pub base_url: String,
    /// The tenant GUID.
    pub tenant_id: String,
    /// The tenant's verified domain.
    pub domain: String,
    /// PEM of the CA that issued the server certificate (None over plain HTTP).
    pub ca_pem: Option<String>,
    /// Shared state (tenant data, apps, keys, faults, stats).
    pub state: Arc<SimState>,
    server: server::ServerHandle,
}

impl SimHandle {
    /// The authority host to configure in identity clients (`{authority_url}/{tenant}/oauth2/v2.0/...`).
    pub fn authority_url(&self) -> &str {
        &self.base_url
    }

    /// The Graph base (`{graph_url}/v1.0/...`).
    pub fn graph_url(&self) -> &str {
        &self.base_url
    }

    /// The socket address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// A reqwest client that trusts the simulator's CA.
    pub fn http_client(&self) -> reqwest::Client {
        tls::client_trusting(self.ca_pem.as_deref()).expect("the sim CA is valid PEM")
    }

    /// A typed client for the `/_sim` control API.
    pub fn control(&self) -> SimControl {
        SimControl::new(self.base_url.clone(), self.http_client())
    }

    /// Stops serving (open connections are closed).
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// Starts the simulator and returns once it accepts connections.
pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    server::start(config).await
}
