//! Why a use case refused or failed. Adapters turn it into their own answer (an API error
//! envelope, a console page, a CLI sentence); the variants keep what they need to word it.

use pbx365_domain::ValidationError;
use pbx365_store::StoreError;
use pbx365_sync::SyncError;

/// What a lookup did not find (the console words each differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// An extension.
    Extension,
    /// An extension group.
    Group,
    /// A group member.
    Member,
    /// A phonebook entry.
    PhonebookEntry,
    /// An extension's photo.
    Photo,
    /// A sync run.
    SyncRun,
}

/// A refused or failed use case.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A value is not acceptable (the domain's sentence).
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The input was understood but is not acceptable (a sentence).
    #[error("{0}")]
    Invalid(String),
    /// Something named does not exist.
    #[error("{message}")]
    NotFound {
        /// What kind of thing.
        what: Missing,
        /// The sentence.
        message: String,
    },
    /// The request conflicts with what is stored (a sentence).
    #[error("{0}")]
    Conflict(String),
    /// A new extension's number is in use.
    #[error("Extension {number} already exists; choose another number.")]
    NumberTaken {
        /// The number.
        number: String,
        /// The store's refusal.
        source: StoreError,
    },
    /// Microsoft 365 is not connected, or cannot be reached with the current settings.
    #[error(transparent)]
    Unavailable(#[from] crate::sync::Unavailable),
    /// A held run cannot be approved (any more).
    #[error("This run is no longer waiting for approval (it was approved already, or a later run replaced it). Nothing was changed.")]
    NothingToApprove,
    /// A sync could not run.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// Microsoft 365 answered with an error (the graph crate's sentence).
    #[error("{0}")]
    Microsoft(String),
    /// The key store failed (unreadable, wrong mode, damaged, cannot write).
    #[error("{0}")]
    Keys(String),
    /// Something failed that the person cannot fix from here; the log has the details.
    #[error("{0}")]
    Internal(String),
    /// The database failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AppError {
    /// A not-found error with its sentence.
    pub fn not_found(what: Missing, message: impl Into<String>) -> Self {
        AppError::NotFound {
            what,
            message: message.into(),
        }
    }
}

impl From<pbx365_graph::GraphError> for AppError {
    fn from(e: pbx365_graph::GraphError) -> Self {
        AppError::Microsoft(e.to_string())
    }
}
