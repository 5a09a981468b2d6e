//! Opening the database, migrations, and the small helpers every query module shares: timestamp
//! text, error mapping, placeholder lists and sortable ids.
//!
//! Placeholders are `$1, $2, …` everywhere: PostgreSQL requires them, and sqlx-sqlite binds a
//! `$N` parameter to argument N, so one SQL text serves both databases.

use crate::{Store, StoreError, StoreResult};
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::any::{AnyArguments, AnyConnectOptions, AnyPoolOptions, AnyQueryResult};
use sqlx::query::Query;
use sqlx::{Any, Executor, Transaction};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The migrations in `crates/store/migrations`, compiled into the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a connection waits for another writer (SQLite) before failing.
const BUSY_TIMEOUT_MS: u64 = 10_000;

pub(crate) async fn connect(url: &str) -> StoreResult<Store> {
    sqlx::any::install_default_drivers(); // idempotent

    let shown = redact_url(url);
    let fail = |reason: String| StoreError::Connect {
        url: shown.clone(),
        reason,
    };

    let in_memory =
        strip_sqlite_scheme(url).is_some_and(|r| r.split('?').next() == Some(":memory:"));
    let (options, sqlite) = if let Some(rest) = strip_sqlite_scheme(url) {
        (sqlite_options(rest).map_err(fail)?, true)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let opts = AnyConnectOptions::from_str(url)
            .map_err(|e| fail(format!("the URL is not valid: {e}")))?;
        (opts, false)
    } else {
        return Err(fail(
            "unsupported database URL: use sqlite://FILE or postgres://USER@HOST/DB".into(),
        ));
    };

    let pool_options = if sqlite {
        // One writer at a time is all SQLite allows; a few readers run alongside thanks to WAL.
        // An in-memory database lives in its one connection (each new one would be empty), so
        // that connection is kept for the life of the pool.
        let base = if in_memory {
            AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            AnyPoolOptions::new().max_connections(4)
        };
        base.after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute(format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}").as_str())
                    .await?;
                Ok(())
            })
        })
    } else {
        AnyPoolOptions::new().max_connections(10)
    };
    let pool = pool_options
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .map_err(|e| fail(connect_reason(&e)))?;

    MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| StoreError::Migrate(e.to_string()))?;
    #[cfg(unix)]
    if sqlite {
        restrict_sqlite_side_files(url);
    }
    Ok(Store {
        pool,
        sqlite,
        fence: None,
    })
}

/// `sqlite://FILE`, `sqlite:FILE` -> `FILE[?query]`.
fn strip_sqlite_scheme(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
}

/// Creates the parent directory, checks the file can be written, and asks SQLite to create it.
fn sqlite_options(rest: &str) -> Result<AnyConnectOptions, String> {
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err("the URL names no file: use sqlite://path/to/pbx365.db".into());
    }
    if path != ":memory:" {
        let file = PathBuf::from(path);
        ensure_writable(&file)?;
    }
    let mut params: Vec<String> = query
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty() && !p.starts_with("mode="))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    params.push("mode=rwc".into());
    // `sqlite:PATH` (not `sqlite://PATH`, which the URL parser reads as a host name); sqlx
    // percent-decodes the path, so the characters a URL gives meaning to are encoded.
    let mut encoded = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' => encoded.push_str("%25"),
            '?' => encoded.push_str("%3F"),
            '#' => encoded.push_str("%23"),
            ' ' => encoded.push_str("%20"),
            c => encoded.push(c),
        }
    }
    let url = format!("sqlite:{encoded}?{}", params.join("&"));
    AnyConnectOptions::from_str(&url).map_err(|e| format!("the URL is not valid: {e}"))
}

fn ensure_writable(file: &Path) -> Result<(), String> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the directory {}: {e}", dir.display()))?;
    }
    if file.is_dir() {
        return Err(format!(
            "{} is a directory, not a database file",
            file.display()
        ));
    }
    let mut open = std::fs::OpenOptions::new();
    open.create(true).append(true);
    // Created owner-only: the database holds password hashes and session hashes, and SQLite
    // gives its -wal and -shm files the mode of the database file.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    open.open(file)
        .map_err(|e| format!("{} is not writable: {e}", file.display()))?;
    Ok(())
}

/// Makes the -wal and -shm files of the SQLite database at `url` owner-only, in case they were
/// left by an older version with a wider mode.
#[cfg(unix)]
fn restrict_sqlite_side_files(url: &str) {
    use std::os::unix::fs::PermissionsExt;
    let Some(rest) = strip_sqlite_scheme(url) else {
        return;
    };
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return;
    }
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{path}{suffix}"));
        let Ok(meta) = std::fs::metadata(&side) else {
            continue;
        };
        if meta.permissions().mode() & 0o077 != 0 {
            if let Err(e) = std::fs::set_permissions(&side, std::fs::Permissions::from_mode(0o600))
            {
                tracing::warn!(file = %side.display(), error = %e, "cannot make the file owner-only");
            }
        }
    }
}

fn connect_reason(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => format!("the server cannot be reached: {io}"),
        sqlx::Error::PoolTimedOut => "the server did not answer in time".into(),
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    }
}

/// The URL with any password replaced, for messages and logs.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.split_once('@') {
        Some((a, h)) if !a.contains('/') => (a, h),
        _ => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => format!("{scheme}://{auth}@{host}"),
    }
}

impl Store {
    /// Starts a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so two writers queue on the busy timeout instead of one failing with
    /// "database is locked" when it upgrades from reading to writing; PostgreSQL needs nothing.
    ///
    /// On a handle made by [`Store::fenced`] the transaction starts by checking the fencing token:
    /// a no-op update of the lease row that matches only while the lease has the job's token. It
    /// runs inside the transaction, so the write commits only if the lease was still held, and on
    /// PostgreSQL it keeps the lease row locked until the end, so a takeover waits for it.
    pub(crate) async fn begin_write(&self) -> StoreResult<Transaction<'static, Any>> {
        let mut tx = if self.sqlite {
            self.pool.begin_with("BEGIN IMMEDIATE").await?
        } else {
            self.pool.begin().await?
        };
        if let Some(fence) = &self.fence {
            let held =
                sqlx::query("UPDATE leases SET token = token WHERE name = $1 AND token = $2")
                    .bind(fence.lease.as_str())
                    .bind(fence.token)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
            if !held {
                return Err(StoreError::LeaseLost {
                    lease: fence.lease.clone(),
                    token: fence.token,
                });
            }
        }
        Ok(tx)
    }

    /// Runs one writing statement: straight on the pool, or for a fenced handle in a write
    /// transaction that checks the fencing token first (see [`Store::begin_write`]).
    pub(crate) async fn execute_write<'q>(
        &self,
        query: Query<'q, Any, AnyArguments<'q>>,
    ) -> StoreResult<AnyQueryResult> {
        if self.fence.is_none() {
            return Ok(query.execute(&self.pool).await?);
        }
        let mut tx = self.begin_write().await?;
        let done = query.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done)
    }
}

// ---- values ------------------------------------------------------------------------------------

/// Timestamp as stored: RFC 3339 in UTC with nine fraction digits, fixed width so that text order
/// is time order on both databases, and exact so values read back equal what was written.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Parses a stored timestamp.
pub(crate) fn parse_ts(s: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(format!("stored time '{s}' is not RFC 3339: {e}")))
}

/// Parses an optional stored timestamp.
pub(crate) fn parse_ts_opt(s: Option<String>) -> StoreResult<Option<DateTime<Utc>>> {
    s.as_deref().map(parse_ts).transpose()
}

/// A stored value this version cannot read.
pub(crate) fn corrupt(msg: String) -> StoreError {
    StoreError::Db(sqlx::Error::Decode(msg.into()))
}

/// Maps a unique violation to `Conflict`, anything else to `Db`.
pub(crate) fn conflict_or(e: sqlx::Error, what: &'static str, key: &str) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict {
            what,
            key: key.to_string(),
        }
    } else {
        StoreError::Db(e)
    }
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// `($s,$s+1,…),(…)`: `rows` groups of `cols` placeholders numbered from `start`.
pub(crate) fn placeholders(rows: usize, cols: usize, start: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 6);
    let mut n = start;
    for r in 0..rows {
        if r > 0 {
            out.push(',');
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push(',');
            }
            out.push('$');
            out.push_str(&n.to_string());
            n += 1;
        }
        out.push(')');
    }
    out
}

/// `$s,$s+1,…` (`count` placeholders) for an `IN (…)` list.
pub(crate) fn in_list(count: usize, start: usize) -> String {
    (start..start + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A new id whose text order is creation order (hex nanoseconds, strictly increasing within the
/// process, then random), so "newest first" needs no autoincrement column.
pub(crate) fn sortable_id() -> String {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64;
    let mut prev = LAST.load(Ordering::Relaxed);
    let stamp = loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(p) => prev = p,
        }
    };
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{stamp:016x}-{}", &random[..16])
}

/// i64 from a stored BIGINT boolean.
pub(crate) fn flag(v: i64) -> bool {
    v != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_in_order() {
        assert_eq!(placeholders(2, 3, 1), "($1,$2,$3),($4,$5,$6)");
        assert_eq!(in_list(3, 4), "$4,$5,$6");
    }

    #[test]
    fn passwords_are_hidden_in_urls() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/pbx"),
            "postgres://app:***@db:5432/pbx"
        );
        assert_eq!(redact_url("postgres://app@db/pbx"), "postgres://app@db/pbx");
        assert_eq!(redact_url("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }

    #[test]
    fn stored_times_sort_as_text_and_round_trip() {
        let a = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.5Z")
            .unwrap()
            .with_timezone(&Utc);
        let b = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(ts(b) < ts(a));
        assert_eq!(parse_ts(&ts(b)).unwrap(), b);
        assert_eq!(ts(a).len(), ts(b).len());
    }

    #[test]
    fn sortable_ids_increase() {
        let a = sortable_id();
        let b = sortable_id();
        assert!(a < b, "{a} {b}");
    }
}
