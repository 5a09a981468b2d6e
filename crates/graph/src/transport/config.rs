//! Where Microsoft is and how patiently to talk to it: [`GraphConfig`] from the `[m365]`
//! settings, and the HTTP client (trusted roots, timeouts, user agent).
//!
//! Graph and identity endpoints per cloud: https://learn.microsoft.com/graph/deployments

use pbx365_domain::settings::{AssertionAlg, M365Settings};
use std::path::Path;
use std::time::Duration;

use crate::error::GraphError;
use crate::retry::RetryPolicy;

/// Outlook allows 4 concurrent requests per app and mailbox
/// (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits).
pub const PER_MAILBOX_CONCURRENCY: usize = 4;

/// Everything needed to talk to Microsoft (built from settings).
#[derive(Clone)]
pub struct GraphConfig {
    /// Identity platform base.
    pub authority_url: String,
    /// Graph base without `/v1.0`.
    pub graph_url: String,
    /// Tenant GUID or domain.
    pub tenant_id: Option<String>,
    /// Application (client) ID.
    pub client_id: Option<String>,
    /// Assertion signature scheme.
    pub assertion_alg: AssertionAlg,
    /// Extra trusted CA certificates (PEM), e.g. from `m365.ca_file`.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// TCP+TLS connect timeout.
    pub connect_timeout: Duration,
    /// Retry bounds.
    pub retry: RetryPolicy,
    /// Requests in flight across all mailboxes.
    pub max_concurrency: usize,
    /// Requests in flight per mailbox.
    pub per_mailbox_concurrency: usize,
}

impl std::fmt::Debug for GraphConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphConfig")
            .field("authority_url", &self.authority_url)
            .field("graph_url", &self.graph_url)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("assertion_alg", &self.assertion_alg)
            .field("extra_ca", &self.extra_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig::from_m365(&M365Settings::default())
    }
}

impl GraphConfig {
    fn from_m365(m: &M365Settings) -> Self {
        GraphConfig {
            authority_url: m.authority_url.trim_end_matches('/').to_string(),
            graph_url: m.graph_url.trim_end_matches('/').to_string(),
            tenant_id: m.tenant_id.clone(),
            client_id: m.client_id.clone(),
            assertion_alg: m.assertion_alg,
            extra_ca_pem: None,
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(15),
            retry: RetryPolicy::default(),
            max_concurrency: 16,
            per_mailbox_concurrency: PER_MAILBOX_CONCURRENCY,
        }
    }

    /// From the `[m365]` settings, reading `m365.ca_file` if set.
    pub fn from_settings(m: &M365Settings) -> Result<Self, GraphError> {
        let mut c = GraphConfig::from_m365(m);
        if let Some(path) = &m.ca_file {
            c.extra_ca_pem = Some(read_ca_file(path)?);
        }
        Ok(c)
    }
}

fn read_ca_file(path: &Path) -> Result<Vec<u8>, GraphError> {
    let bytes = std::fs::read(path).map_err(|e| GraphError::Network {
        host: "the Microsoft endpoints".into(),
        detail: format!("cannot read m365.ca_file {}: {e}", path.display()),
    })?;
    if reqwest::Certificate::from_pem_bundle(&bytes)
        .map(|v| v.is_empty())
        .unwrap_or(true)
    {
        return Err(GraphError::Network {
            host: "the Microsoft endpoints".into(),
            detail: format!("m365.ca_file {} holds no PEM certificate", path.display()),
        });
    }
    Ok(bytes)
}

/// The HTTP client for Microsoft endpoints: webpki roots plus the extra CA, timeouts, our user agent.
pub fn http_client(config: &GraphConfig) -> Result<reqwest::Client, GraphError> {
    // reqwest's no-provider rustls build needs a process-wide provider; aws-lc-rs is our only one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("pbx365/", env!("CARGO_PKG_VERSION")))
        .timeout(config.request_timeout)
        .connect_timeout(config.connect_timeout)
        .https_only(false);
    if let Some(pem) = &config.extra_ca_pem {
        let certs =
            reqwest::Certificate::from_pem_bundle(pem).map_err(|e| GraphError::Network {
                host: "the Microsoft endpoints".into(),
                detail: format!("bad m365.ca_file: {e}"),
            })?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| GraphError::Network {
        host: "the Microsoft endpoints".into(),
        detail: e.to_string(),
    })
}
