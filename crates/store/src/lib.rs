//! Persistence for pbx365: one code path for SQLite (embedded default) and PostgreSQL
//! (multi-instance deployments) through `sqlx::Any`, with versioned migrations applied at start.
//!
//! Every multi-row change runs in one transaction. Timestamps are stored as RFC 3339 text in UTC,
//! booleans as integers, ids as text, so the same SQL serves both databases.
//!
//! Photo bytes are stored in the database (`BYTEA`, which SQLite keeps as a blob), so a backup of
//! the database is a backup of everything. Ids are text (UUIDs or time-sortable ids), never
//! autoincrement. Group names in `Extension.groups` are returned sorted.
//!
//! THE API IS THE CONTRACT OTHER CRATES CODE AGAINST: signatures may gain methods but should not
//! change without telling the team.

use chrono::{DateTime, Utc};

mod audit;
mod auth;
mod calendar;
mod contacts;
mod db;
mod extension_search;
mod extensions;
mod groups;
mod kv;
mod leases;
mod notifications;
mod outbox;
mod phonebook;
mod plans;
mod runs;
mod sip;

pub use calendar::StoredTimeline;
pub use contacts::{ContactFolderRow, ContactMailboxStatus, ContactWrite};
pub use outbox::OutboxCounts;
pub use plans::{PlanPage, PlanStatus, RoundCommit, SyncPlan};
pub use runs::SyncRunHead;
pub use sip::{sip_change_floor, SipChange, SipChangeKind, SipRouting};

use pbx365_domain::Extension;

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
    /// Numbers a sync planned for new extensions were taken by another writer meanwhile.
    #[error("extension numbers {} were taken by another extension while the sync planned them", .numbers.join(", "))]
    NumberTaken { numbers: Vec<String> },
    /// A record synced from Microsoft 365 that pbx365 does not change.
    #[error(
        "{what} '{key}' comes from Microsoft 365 and is read-only here; change it in Microsoft 365"
    )]
    ReadOnly { what: &'static str, key: String },
    /// A built-in record (the "Azure AD" group) that cannot be removed.
    #[error("{what} '{key}' is built in and cannot be deleted")]
    BuiltIn { what: &'static str, key: String },
    /// A job's write under a lease that another instance has taken over (its fencing token is
    /// no longer the lease's): nothing of that write was committed.
    #[error("the '{lease}' lease (token {token}) was taken over by another instance; this write was not made")]
    LeaseLost { lease: String, token: i64 },
    /// Any other database failure.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// Result alias of this crate.
pub type StoreResult<T> = Result<T, StoreError>;

/// One change to an extension, applied by the sync inside a transaction. Serializable: a sync
/// round stores its planned ops before it applies them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // the contract carries the extension by value; ops are short-lived
pub enum ExtensionOp {
    /// The sync's write: create the synced extension, or update only the fields the sync owns
    /// (the Microsoft 365 fields, enabled, the "Azure AD" membership) of the extension with this
    /// number AND this Microsoft object id. Profile, admin flag, photo and other memberships are
    /// never touched, and an extension with another object id (or a local one) is never
    /// overwritten: then the whole batch fails with [`StoreError::NumberTaken`].
    Sync(Extension),
    /// Disable (sync: user gone / disabled / guest / out of scope), remembering when.
    Disable { number: String, at: DateTime<Utc> },
    /// Re-enable a synced extension that came back in scope.
    Enable { number: String },
    /// Delete the extension, its photo and personal phonebook.
    Delete { number: String },
}

/// How many synced extensions (source `m365` with a Microsoft object id) exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncedCounts {
    /// All of them, enabled or disabled.
    pub synced: u64,
    /// The enabled ones (the mass-deletion guard's base).
    pub enabled: u64,
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
    /// Last time the owner proved who they are (login, password re-entry, fresh Microsoft
    /// sign-in); sensitive actions need a recent one.
    pub authenticated_at: DateTime<Utc>,
    /// Short description of the browser (e.g. "Firefox on Linux"), empty when unknown.
    pub user_agent: String,
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
    /// When the token stops working; `None`: never.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last accepted use (recorded at most once a minute); `None`: never used.
    pub last_used_at: Option<DateTime<Utc>>,
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
///
/// The methods live in the modules by topic (`extensions`, `groups`, `phonebook`, `runs`, `kv`,
/// `audit`, `outbox`, `auth`, `notifications`, `plans`).
#[derive(Clone)]
pub struct Store {
    pool: sqlx::AnyPool,
    /// SQLite takes its write lock up front in write transactions (see `begin_write`).
    sqlite: bool,
    /// Set on a handle made by [`Store::fenced`]: its writes commit only while the lease still
    /// has this token.
    fence: Option<std::sync::Arc<Fence>>,
}

/// A lease and the fencing token a job got with it.
#[derive(Debug)]
struct Fence {
    lease: String,
    token: i64,
}

impl Store {
    /// Opens (creating if needed) the database at `url` (`sqlite://FILE` or `postgres://…`),
    /// enables WAL on SQLite, and applies pending migrations.
    pub async fn connect(url: &str) -> StoreResult<Store> {
        db::connect(url).await
    }

    /// A handle for a job that holds the lease `lease` with fencing token `token`: every write
    /// transaction it makes first checks, inside the transaction, that the lease still has that
    /// token, and fails with [`StoreError::LeaseLost`] once another instance has taken it over
    /// (on PostgreSQL the check locks the lease row, so a takeover waits for the write to end).
    /// Reads are unchanged.
    pub fn fenced(&self, lease: &str, token: i64) -> Store {
        Store {
            pool: self.pool.clone(),
            sqlite: self.sqlite,
            fence: Some(std::sync::Arc::new(Fence {
                lease: lease.to_string(),
                token,
            })),
        }
    }

    /// The underlying pool (for tests and benchmarks only).
    pub fn pool(&self) -> &sqlx::AnyPool {
        &self.pool
    }

    /// True when the database is SQLite (for messages; queries are the same on both).
    pub fn is_sqlite(&self) -> bool {
        self.sqlite
    }

    /// Closes every connection (tests drop their database afterwards).
    pub async fn close(&self) {
        self.pool.close().await
    }
}
