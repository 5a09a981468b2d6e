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
//! - [`extension_picker`]: the SSO page's extension list and search;
//! - [`settings`]: file + environment settings with the console's database overrides;
//! - [`m365`]: the Microsoft 365 connection (key pair, admin consent, connection check,
//!   certificate-expiry warnings);
//! - [`sync`]: user sync (service lifecycle, run now, preview, approval of a held run, run
//!   history, the directory search behind the users/groups picker, the notification receiver);
//! - [`sip`]: SIP secrets of extensions and the routing changes pushed to Kamailio;
//! - [`audit`]: the audit log, stamped by the one [`clock`];
//! - [`admins`], [`password`], [`secrets`]: console admins, API tokens and their secrets;
//! - [`credentials`]: token expiry, use, listing and revocation; password changes; the first
//!   admin's password file;
//! - [`mail`]: the mail outbox, its worker, alerts and templates;
//! - [`flash`]: one-off outcomes for a console session's next page;
//! - [`error`]: [`AppError`], why a use case refused or failed.

pub mod admins;
pub mod audit;
pub mod calendar;
pub mod clock;
pub mod contacts;
pub mod context;
pub mod credentials;
pub mod directory;
pub mod error;
pub mod extension_picker;
pub mod extensions;
pub mod flash;
pub mod groups;
pub mod m365;
pub mod mail;
pub mod password;
pub mod phonebook;
pub mod secrets;
pub mod settings;
pub mod sip;
pub mod sso;
pub mod sync;

pub use context::App;
pub use error::{AppError, Missing};

/// A context on a fresh SQLite database in a temporary data directory (unit tests).
#[cfg(test)]
pub(crate) async fn test_app() -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let settings = pbx365_domain::settings::Settings {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let store = pbx365_store::Store::connect(&settings.effective_database_url())
        .await
        .expect("SQLite store");
    (App::new(store, settings), dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::sync::Unavailable;
    use pbx365_domain::PhonebookOwner;
    use std::sync::Arc;

    #[tokio::test]
    async fn audit_entries_are_stamped_by_the_app_clock() {
        let (app, _dir) = test_app().await;
        let at = chrono::DateTime::parse_from_rfc3339("2030-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let app = app.with_clock(Arc::new(ManualClock::new(at)));
        app.create_group("alice", "Sales", "").await.unwrap();
        let audit = app.store.list_audit(10).await.unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(
            (audit[0].at, audit[0].action.as_str()),
            (at, "group.create")
        );
    }

    #[tokio::test]
    async fn the_built_in_group_and_unknown_entries_are_refused() {
        let (app, _dir) = test_app().await;
        let err = app
            .delete_group("t", pbx365_domain::AZURE_AD_GROUP)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AppError::Conflict(m) if m.contains("built in")),
            "{err:?}"
        );
        let err = app
            .delete_phonebook_entry("t", PhonebookOwner::Company, "nope")
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            AppError::NotFound {
                what: Missing::PhonebookEntry,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn sync_without_a_tenant_says_what_is_missing() {
        let (app, _dir) = test_app().await;
        let err = app.preview_sync(&app.settings()).await.unwrap_err();
        assert!(
            matches!(
                err,
                AppError::Unavailable(Unavailable::NotConnected(m)) if m.contains("client) ID")
            ),
            "{err:?}"
        );
        let err = app
            .search_directory(crate::sync::DirectoryKind::Users, "a")
            .await
            .unwrap_err();
        assert!(matches!(err, AppError::Unavailable(_)), "{err:?}");
    }
}
