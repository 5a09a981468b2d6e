//! The use-case layer of pbx365: what the console, the REST API and the CLI share.
//!
//! The rule: **web and cli call app; app calls sync, graph, store.** Adapters parse their
//! input (a form, a JSON body, command-line arguments), call a use case on [`App`], and word
//! its answer or its [`AppError`] their own way; they never talk to Microsoft Graph or the
//! sync engine themselves.
//!
//! Modules:
//! - [`context`]: [`App`], the context every use case runs in (store, effective settings, the
//!   one clock, the sync service, one cached Graph client);
//! - [`extensions`], [`groups`], [`phonebook`]: the PBX directory;
//! - [`settings`]: file + environment settings with the console's database overrides;
//! - [`m365`]: the Microsoft 365 connection (key pair, admin consent, connection check,
//!   certificate-expiry warnings);
//! - [`sync`]: user sync (service lifecycle, run now, preview, approval of a held run, run
//!   history, the directory search behind the users/groups picker, the notification receiver);
//! - [`audit`]: the audit log, stamped by the one [`clock`];
//! - [`admins`], [`password`], [`secrets`]: console admins, API tokens and their secrets;
//! - [`credentials`]: token expiry, use, listing and revocation; password changes; the first
//!   admin's password file;
//! - [`flash`]: one-off outcomes for a console session's next page;
//! - [`error`]: [`AppError`], why a use case refused or failed.

pub mod admins;
pub mod audit;
pub mod clock;
pub mod context;
pub mod credentials;
pub mod error;
pub mod extensions;
pub mod flash;
pub mod groups;
pub mod m365;
pub mod password;
pub mod phonebook;
pub mod secrets;
pub mod settings;
pub mod sync;

pub use context::App;
pub use error::{AppError, Missing};
