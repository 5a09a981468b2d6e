//! Persistence for pbx365: one code path for SQLite (embedded default) and PostgreSQL
//! (multi-instance deployments) through `sqlx::Any`, with versioned migrations applied at start.
//!
//! Every multi-row change runs in one transaction. Timestamps are stored as RFC 3339 text in UTC,
//! booleans as integers, ids as text, so the same SQL serves both databases.
//!
//! THE API BELOW IS THE CONTRACT OTHER CRATES CODE AGAINST. Bodies marked `todo!()` are being
//! implemented; signatures may gain methods but should not change without telling the team.

use chrono::{DateTime, Utc};
use pbx365_domain::{
    AuditEntry, Extension, ExtensionGroup, NewExtension, OutboxMail, PhonebookEntry, PhonebookOwner,
    ProfileState, SyncKind, SyncReport, SyncRun, SyncStatus,
};

/// Errors of the store; `Display` is a sentence for logs and API messages.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or reached.
    #[error("cannot open the database {url}: {reason}")]
    Connect { url: String, reason: String },
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(String),
    /// A row the caller named does not exist.
    #[error("{what} '{key}' does not exist")]
    NotFound { what: &'static str, key: String },
    /// A unique value is already taken.
    #[error("{what} '{key}' already exists")]
    Conflict { what: &'static str, key: String },
    /// Any other database failure.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// Result alias of this crate.
pub type StoreResult<T> = Result<T, StoreError>;

/// One change to an extension, applied by the sync inside a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtensionOp {
    /// Create or replace the whole extension (matched by number), including groups and photo ref.
    Upsert(Extension),
    /// Disable (sync: user gone / disabled / guest / out of scope), remembering when.
    Disable { number: String, at: DateTime<Utc> },
    /// Re-enable a synced extension that came back in scope.
    Enable { number: String },
    /// Delete the extension, its photo and personal phonebook.
    Delete { number: String },
}

/// A console administrator (local login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// Login name.
    pub name: String,
    /// Argon2 PHC string.
    pub password_hash: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// A console session, keyed by the SHA-256 of its id (the id itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Hex SHA-256 of the session id.
    pub id_hash: String,
    /// Admin login name (or `ext:<number>` for an SSO extension session).
    pub subject: String,
    /// Created (absolute timeout counts from here).
    pub created_at: DateTime<Utc>,
    /// Last request (idle timeout counts from here).
    pub last_seen_at: DateTime<Utc>,
    /// CSRF token bound to the session.
    pub csrf_token: String,
}

/// An API token's metadata (the token itself is only ever shown once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRecord {
    /// Name given at creation.
    pub name: String,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// A single-use OAuth `state` (admin consent or SSO), keyed by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthState {
    /// Hex SHA-256 of the state value.
    pub state_hash: String,
    /// `admin_consent`, `sso_console`, `sso_webclient`.
    pub purpose: String,
    /// Hash of the browser session it is bound to.
    pub session_hash: String,
    /// JSON with the flow's data (nonce, PKCE verifier, return path…).
    pub data: serde_json::Value,
    /// Not valid after.
    pub expires_at: DateTime<Utc>,
}

/// A Graph change-notification subscription pbx365 holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    /// Microsoft's subscription id.
    pub id: String,
    /// Resource, e.g. `users`.
    pub resource: String,
    /// The secret Graph echoes in every notification.
    pub client_state: String,
    /// When Microsoft deletes it unless renewed.
    pub expires_at: DateTime<Utc>,
}

/// A received change notification waiting to be processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxNotification {
    /// Row id.
    pub id: String,
    /// Dedup key (subscription id + change type + resource + etag/time).
    pub dedup_key: String,
    /// The notification JSON (clientState removed).
    pub payload: serde_json::Value,
    /// Received.
    pub received_at: DateTime<Utc>,
}

/// The store. Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct Store {
    pool: sqlx::AnyPool,
}

#[allow(unused_variables)]
impl Store {
    /// Opens (creating if needed) the database at `url` (`sqlite://FILE` or `postgres://…`),
    /// enables WAL on SQLite, and applies pending migrations.
    pub async fn connect(url: &str) -> StoreResult<Store> {
        todo!()
    }

    /// The underlying pool (for tests and benchmarks only).
    pub fn pool(&self) -> &sqlx::AnyPool {
        &self.pool
    }

    // ---- extensions -------------------------------------------------------------------------

    /// All extensions ordered by number.
    pub async fn list_extensions(&self) -> StoreResult<Vec<Extension>> {
        todo!()
    }
    /// One extension by number.
    pub async fn get_extension(&self, number: &str) -> StoreResult<Option<Extension>> {
        todo!()
    }
    /// One extension by Microsoft object id.
    pub async fn get_extension_by_m365_id(&self, m365_id: &str) -> StoreResult<Option<Extension>> {
        todo!()
    }
    /// Creates a local extension; `Conflict` when the number is taken.
    pub async fn create_local_extension(&self, number: &str, fields: &NewExtension) -> StoreResult<Extension> {
        todo!()
    }
    /// Replaces the directory fields of a local extension.
    pub async fn update_local_extension(&self, number: &str, fields: &NewExtension) -> StoreResult<Extension> {
        todo!()
    }
    /// Deletes an extension (local or synced) with its photo and personal phonebook.
    pub async fn delete_extension(&self, number: &str) -> StoreResult<()> {
        todo!()
    }
    /// Grants or revokes console admin rights.
    pub async fn set_extension_admin(&self, number: &str, is_admin: bool) -> StoreResult<()> {
        todo!()
    }
    /// Sets the profile state.
    pub async fn set_profile(&self, number: &str, profile: &ProfileState) -> StoreResult<()> {
        todo!()
    }
    /// Applies sync changes and (optionally) the new delta cursor in ONE transaction, so a crash
    /// leaves either all of it or none of it.
    pub async fn apply_extension_ops(&self, ops: &[ExtensionOp], cursor: Option<(&str, &str)>) -> StoreResult<()> {
        todo!()
    }
    /// Inserts or replaces many extensions in one transaction (bulk import, benchmark).
    pub async fn upsert_extensions(&self, extensions: &[Extension]) -> StoreResult<()> {
        todo!()
    }

    // ---- photos -----------------------------------------------------------------------------

    /// Stores an extension's photo bytes and its etag/content type.
    pub async fn put_photo(&self, number: &str, etag: &str, content_type: &str, bytes: &[u8]) -> StoreResult<()> {
        todo!()
    }
    /// The photo: (content type, bytes).
    pub async fn get_photo(&self, number: &str) -> StoreResult<Option<(String, Vec<u8>)>> {
        todo!()
    }
    /// Removes the photo.
    pub async fn delete_photo(&self, number: &str) -> StoreResult<()> {
        todo!()
    }

    // ---- groups -----------------------------------------------------------------------------

    /// All groups with members (the built-in "Azure AD" group always exists).
    pub async fn list_groups(&self) -> StoreResult<Vec<ExtensionGroup>> {
        todo!()
    }
    /// Creates a group; `Conflict` if the name exists.
    pub async fn create_group(&self, name: &str, description: &str) -> StoreResult<ExtensionGroup> {
        todo!()
    }
    /// Deletes a non-built-in group.
    pub async fn delete_group(&self, name: &str) -> StoreResult<()> {
        todo!()
    }
    /// Adds an extension to a group.
    pub async fn add_group_member(&self, group: &str, number: &str) -> StoreResult<()> {
        todo!()
    }
    /// Removes an extension from a group.
    pub async fn remove_group_member(&self, group: &str, number: &str) -> StoreResult<()> {
        todo!()
    }

    // ---- phonebooks -------------------------------------------------------------------------

    /// Entries of one phonebook ordered by display name.
    pub async fn list_phonebook(&self, owner: &PhonebookOwner) -> StoreResult<Vec<PhonebookEntry>> {
        todo!()
    }
    /// Creates a local entry (id assigned by the store).
    pub async fn create_phonebook_entry(&self, entry: &PhonebookEntry) -> StoreResult<PhonebookEntry> {
        todo!()
    }
    /// Replaces a local entry; synced entries are refused.
    pub async fn update_phonebook_entry(&self, entry: &PhonebookEntry) -> StoreResult<PhonebookEntry> {
        todo!()
    }
    /// Deletes a local entry; synced entries are refused.
    pub async fn delete_phonebook_entry(&self, owner: &PhonebookOwner, id: &str) -> StoreResult<()> {
        todo!()
    }

    // ---- sync runs --------------------------------------------------------------------------

    /// Records the start of a run.
    pub async fn start_sync_run(&self, kind: SyncKind) -> StoreResult<SyncRun> {
        todo!()
    }
    /// Records the end of a run with its report.
    pub async fn finish_sync_run(&self, id: &str, status: SyncStatus, report: &SyncReport) -> StoreResult<SyncRun> {
        todo!()
    }
    /// One run.
    pub async fn get_sync_run(&self, id: &str) -> StoreResult<Option<SyncRun>> {
        todo!()
    }
    /// Newest runs first.
    pub async fn list_sync_runs(&self, limit: u32) -> StoreResult<Vec<SyncRun>> {
        todo!()
    }

    // ---- key/value: delta cursors, settings overrides, flags ---------------------------------

    /// A stored value (delta links under `cursor:…`, console settings under `setting:…`).
    pub async fn get_kv(&self, key: &str) -> StoreResult<Option<String>> {
        todo!()
    }
    /// Stores a value.
    pub async fn set_kv(&self, key: &str, value: &str) -> StoreResult<()> {
        todo!()
    }
    /// Removes a value.
    pub async fn delete_kv(&self, key: &str) -> StoreResult<()> {
        todo!()
    }

    // ---- audit, outbox ----------------------------------------------------------------------

    /// Appends to the audit log.
    pub async fn audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        todo!()
    }
    /// Newest audit entries first.
    pub async fn list_audit(&self, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        todo!()
    }
    /// Queues a mail.
    pub async fn enqueue_mail(&self, to: &[String], subject: &str, body: &str) -> StoreResult<OutboxMail> {
        todo!()
    }
    /// Pending mail due at `now`.
    pub async fn due_mail(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<OutboxMail>> {
        todo!()
    }
    /// Saves a mail's new status/attempts/next attempt/error.
    pub async fn update_mail(&self, mail: &OutboxMail) -> StoreResult<()> {
        todo!()
    }
    /// All mail, newest first.
    pub async fn list_mail(&self, limit: u32) -> StoreResult<Vec<OutboxMail>> {
        todo!()
    }

    // ---- admins, API tokens, sessions, OAuth states ------------------------------------------

    /// Creates a console admin; `Conflict` if the name exists.
    pub async fn create_admin(&self, name: &str, password_hash: &str) -> StoreResult<Admin> {
        todo!()
    }
    /// One admin.
    pub async fn get_admin(&self, name: &str) -> StoreResult<Option<Admin>> {
        todo!()
    }
    /// Number of admins (first start creates one when zero).
    pub async fn count_admins(&self) -> StoreResult<u64> {
        todo!()
    }
    /// Stores a new API token's hash.
    pub async fn create_api_token(&self, name: &str, token_hash: &str) -> StoreResult<ApiTokenRecord> {
        todo!()
    }
    /// Finds a token by hash.
    pub async fn find_api_token(&self, token_hash: &str) -> StoreResult<Option<ApiTokenRecord>> {
        todo!()
    }
    /// Creates a session.
    pub async fn create_session(&self, session: &SessionRecord) -> StoreResult<()> {
        todo!()
    }
    /// Finds a session by id hash.
    pub async fn get_session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        todo!()
    }
    /// Updates `last_seen_at`.
    pub async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> StoreResult<()> {
        todo!()
    }
    /// Deletes a session (logout).
    pub async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        todo!()
    }
    /// Stores a single-use OAuth state.
    pub async fn put_oauth_state(&self, state: &OAuthState) -> StoreResult<()> {
        todo!()
    }
    /// Removes and returns a state (single use): `None` if unknown, used or expired at `now`.
    pub async fn take_oauth_state(&self, state_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<OAuthState>> {
        todo!()
    }

    // ---- change notifications ----------------------------------------------------------------

    /// Stores or replaces a subscription.
    pub async fn put_subscription(&self, sub: &SubscriptionRecord) -> StoreResult<()> {
        todo!()
    }
    /// All subscriptions.
    pub async fn list_subscriptions(&self) -> StoreResult<Vec<SubscriptionRecord>> {
        todo!()
    }
    /// Removes a subscription.
    pub async fn delete_subscription(&self, id: &str) -> StoreResult<()> {
        todo!()
    }
    /// Persists a notification unless its dedup key was seen; returns false for a duplicate.
    pub async fn enqueue_notification(&self, dedup_key: &str, payload: &serde_json::Value) -> StoreResult<bool> {
        todo!()
    }
    /// Takes up to `limit` waiting notifications, oldest first (removed from the inbox).
    pub async fn take_notifications(&self, limit: u32) -> StoreResult<Vec<InboxNotification>> {
        todo!()
    }
}
