//! The transport: what every Graph call shares, whatever the resource — app-only tokens,
//! retries with backoff and `Retry-After`, throttling, global and per-mailbox concurrency,
//! paging, delta rounds and `$batch`. It knows no resource: the endpoint modules
//! ([`crate::endpoints`]) hold the URLs and build the requests it sends.
//!
//! Paging: https://learn.microsoft.com/graph/paging · Delta: https://learn.microsoft.com/graph/delta-query-overview
//! Throttling: https://learn.microsoft.com/graph/throttling · Batching: https://learn.microsoft.com/graph/json-batching

pub mod batch;
pub mod client;
pub mod config;
pub mod paging;
pub mod request;

pub use batch::{BatchRequest, BatchResponse, BATCH_LIMIT};
pub use client::{ClientStats, GraphClient};
pub use config::{http_client, GraphConfig, PER_MAILBOX_CONCURRENCY};
pub use paging::{DeltaPage, NextOrDelta, ODataPage, Removed};
pub use request::{api_base, is_api_path, seg, GraphRequest, GraphResponse, API_PATH};

/// Keeps `RawError` nameable from here for callers matching on errors.
pub type RawGraphError = crate::error::RawError;
