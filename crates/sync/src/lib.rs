//! The sync engine: Microsoft 365 users become extensions (SPEC §3), with photos, the
//! mass-deletion guard, change notifications and the scheduler.
//!
//! - [`plan`]: pure planning (what to create, update, disable, delete, skip) and the guard rule.
//! - [`engine`]: full and delta rounds against Graph, applied crash-safely through the store.
//! - [`photos`]: photos through `$batch`, downloaded only when their etag changed.
//! - [`subscriptions`]: change-notification subscriptions and the inbox's lifecycle events.
//! - [`scheduler`]: [`SyncService`] — "sync now", nightly, delta poll, notifications.

pub mod engine;
pub mod error;
pub mod photos;
pub mod plan;
pub mod receiver;
pub mod scheduler;
pub mod subscriptions;

pub use engine::{Progress, ProgressFn, RunOptions, UserSync, APPROVAL_KEY, CURSOR_KEY};
pub use error::{SyncError, SyncResult};
pub use scheduler::{Background, SyncService};
