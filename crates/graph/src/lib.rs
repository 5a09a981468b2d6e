//! Microsoft identity platform + Graph client for pbx365.
//!
//! - [`keys`]: the RSA key pair and certificate, stored 0600 under `data_dir`, with rotation.
//! - [`assertion`]: the signed client assertion (PS256/RS256).
//! - [`token`]: cached, single-flight app-only tokens.
//! - [`client`]: Graph requests with retries, paging, delta rounds, `$batch`, typed calls.
//! - [`error`]: every Microsoft error as a sentence an admin can act on.
//! - [`doctor`]: end-to-end checks of the connection.
//!
//! Endpoints come from settings, so the same code talks to Microsoft or to m365-sim.

pub mod assertion;
pub mod client;
pub mod doctor;
pub mod error;
pub mod keys;
pub mod models;
pub mod retry;
pub mod search;
pub mod secret;
pub mod token;

pub use client::{
    BatchRequest, BatchResponse, ClientStats, DeltaPage, GraphClient, GraphConfig, GraphRequest,
    GraphResponse, NextOrDelta,
};
pub use doctor::{run_checks, Check};
pub use error::{
    missing_permissions, required_permissions, GraphError, RawError, RequiredPermission,
};
pub use keys::{CertificateInfo, Credential, ExpiryStatus, KeyError, KeyStore, Slot};
pub use models::*;
pub use retry::RetryPolicy;
pub use secret::SecretString;
pub use token::{AccessToken, Identity, TokenProvider};
