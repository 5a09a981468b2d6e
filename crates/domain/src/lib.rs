//! The PBX directory model and the rules of the Microsoft 365 sync.
//!
//! Pure types and functions, no I/O: every other crate speaks in these words.

pub mod audit;
pub mod calendar;
pub mod deletion_guard;
pub mod directory;
pub mod directory_user;
pub mod error;
pub mod extension;
pub mod group;
pub mod ids;
pub mod numbering;
pub mod outbox;
pub mod phonebook;
pub mod profile;
pub mod settings;
pub mod sync_run;
pub mod user_rules;

pub use audit::AuditEntry;
pub use directory_user::DirectoryUser;
pub use error::ValidationError;
pub use extension::{
    Extension, ExtensionNumber, ExtensionSource, NewExtension, NumberRules, PhotoRef,
};
pub use group::{ExtensionGroup, AZURE_AD_GROUP};
pub use ids::Guid;
pub use outbox::{MailAttachment, NewMail, OutboxMail, OutboxStatus, PacingLimits};
pub use phonebook::{
    CallerName, CallerSource, PhoneKind, PhoneNumber, PhonebookEntry, PhonebookOwner,
};
pub use profile::{Profile, ProfileSource, ProfileState};
pub use sync_run::{ReportItem, SyncKind, SyncReport, SyncRun, SyncStatus};
