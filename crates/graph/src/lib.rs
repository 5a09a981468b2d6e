//! Microsoft identity platform + Graph client for pbx365.
//!
//! - [`keys`]: the RSA key pair and certificate, stored 0600 under `data_dir`, with rotation.
//! - [`assertion`]: the signed client assertion (PS256/RS256).
//! - [`token`]: cached, single-flight app-only tokens.
//! - [`transport`]: Graph requests with retries, throttling, concurrency limits, paging, delta
//!   rounds and `$batch`, for any resource ([`retry`] says how long to wait).
//! - [`endpoints`]: one module per resource ([`users`], [`groups`], [`photos`], [`contacts`],
//!   [`calendar`], [`subscriptions`], [`mail`]) with its URLs, requests, shapes and typed calls;
//!   no Graph URL is written anywhere else.
//! - [`error`]: every Microsoft error as a sentence an admin can act on.
//! - [`doctor`]: end-to-end checks of the connection.
//! - [`oidc`]: the single sign-on relying party (discovery, PKCE, ID-token validation, JWKS).
//!
//! Endpoints come from settings, so the same code talks to Microsoft or to m365-sim.

pub mod assertion;
pub mod doctor;
pub mod endpoints;
pub mod error;
pub mod keys;
pub mod models;
pub mod oidc;
pub mod retry;
pub mod search;
pub mod secret;
pub mod token;
pub mod transport;

/// The transport under its former name (`pbx365_graph::client::seg`, …).
pub mod client {
    pub use crate::transport::*;
}

pub use doctor::{run_checks, Check};
pub use endpoints::{calendar, contacts, groups, mail, photos, subscriptions, users};
pub use error::{
    missing_permissions, required_permissions, GraphError, RawError, RequiredPermission,
};
pub use keys::{CertificateInfo, Credential, ExpiryStatus, KeyError, KeyStore, Slot};
pub use models::*;
pub use retry::RetryPolicy;
pub use secret::SecretString;
pub use token::{AccessToken, Identity, TokenProvider};
pub use transport::{
    BatchRequest, BatchResponse, ClientStats, DeltaPage, GraphClient, GraphConfig, GraphRequest,
    GraphResponse, NextOrDelta, BATCH_LIMIT,
};
