//! The sync framework and its kinds: Microsoft 365 resources become pbx365 records (SPEC §3, §5, §6).
//!
//! The framework, shared by every kind:
//! - [`kind`]: the [`SyncResource`] trait a kind implements (read a page, plan, apply).
//! - [`round`]: the one round every kind runs — full or delta, each page applied with its cursor
//!   in one transaction, the mass-deletion guard with hold and one-shot approval, the run report.
//! - [`cursor`]: where a resource's sync stands, per (kind, scope).
//! - [`scheduler`]: [`SyncService`] — "sync now", nightly, delta poll, notification triage, for
//!   every registered kind.
//! - [`receiver`], [`subscriptions`] (users, groups) and [`mailbox_subscriptions`] (each followed
//!   mailbox's events or contacts): change notifications in, subscriptions kept alive.
//! - [`retention`]: the daily pruning of expired sessions, old notification keys and runs.
//!
//! The kinds: [`users`] (Microsoft 365 users -> extensions, with [`photos`]) and [`contacts`]
//! (Outlook contacts -> personal and company phonebooks).

pub mod contacts;
pub mod cursor;
pub mod error;
pub mod kind;
pub mod lease;
pub mod mailbox_subscriptions;
pub mod photos;
pub mod receiver;
pub mod retention;
pub mod round;
pub mod scheduler;
pub mod subscriptions;
pub mod users;

pub use contacts::{ContactSync, ContactsJob};
pub use error::{SyncError, SyncResult};
pub use kind::{Prepared, RoundKind, Step, SyncResource};
pub use round::{Progress, ProgressFn, RunOptions, WaitFn};
pub use scheduler::{Background, ResourceJob, SyncJob, SyncService, TickContext};
pub use users::{plan, UserSync};

/// Where the users delta round stands.
pub const CURSOR_KEY: &str = "cursor:users";
/// One-shot approval of a held user sync run: the held run's id.
pub const APPROVAL_KEY: &str = "sync:approved_run";
