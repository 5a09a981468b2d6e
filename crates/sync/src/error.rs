//! Errors of the sync engine; `Display` is the sentence a run report and the log carry.

use pbx365_graph::GraphError;
use pbx365_store::StoreError;

/// Why a sync run could not finish.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Microsoft 365 could not be read.
    #[error("reading Microsoft 365 failed: {0}")]
    Graph(#[from] GraphError),
    /// The database failed.
    #[error("the database failed: {0}")]
    Store(#[from] StoreError),
    /// Sync is switched off in the settings.
    #[error("user sync is switched off (sync.enabled = false)")]
    Disabled,
    /// Anything else, as a sentence.
    #[error("{0}")]
    Other(String),
}

/// Result alias of this crate.
pub type SyncResult<T> = Result<T, SyncError>;
