//! Throwaway databases: a SQLite file in a temp dir, or a fresh PostgreSQL database created on
//! the server named by `PBX365_TEST_POSTGRES_URL` (an admin URL; `scripts/with-postgres` starts
//! a throwaway PostgreSQL 15 and sets it).
//!
//! Without that variable the PostgreSQL half of a test is skipped with a printed notice, except
//! under CI (`CI` set), where it fails: PostgreSQL is never skipped silently there.

use pbx365_store::Store;
use sqlx::Connection;
use std::future::Future;

/// The variable naming the test PostgreSQL server.
pub const POSTGRES_URL_VAR: &str = "PBX365_TEST_POSTGRES_URL";

/// An empty database for one test (nothing opened, no migration run yet). Dropping it removes the
/// temp dir; PostgreSQL databases are dropped by [`on_postgres`] or live in the throwaway cluster.
pub struct FreshDb {
    /// `sqlite://…` or `postgres://…`.
    pub url: String,
    /// Temp dir holding the SQLite file (and usable as the data dir).
    pub dir: tempfile::TempDir,
}

/// A migrated, open store for one test, and the URL it was opened with (to reopen it).
pub struct TestDb {
    /// The open store.
    pub store: Store,
    /// `sqlite://…` or `postgres://…`.
    pub url: String,
    /// Temp dir holding the SQLite file.
    pub dir: tempfile::TempDir,
}

/// What a test body run by [`on_both!`](crate::on_both) takes: made from a [`FreshDb`].
pub trait Fixture: Sized {
    /// Prepares the fixture on `db`.
    fn prepare(db: FreshDb) -> impl Future<Output = Self>;
    /// A store to close once the test is over, if the fixture opened one.
    fn store(&self) -> Option<Store> {
        None
    }
}

impl Fixture for FreshDb {
    async fn prepare(db: FreshDb) -> Self {
        db
    }
}

impl Fixture for TestDb {
    async fn prepare(db: FreshDb) -> Self {
        let store = Store::connect(&db.url).await.expect("open the test store");
        TestDb {
            store,
            url: db.url,
            dir: db.dir,
        }
    }
    fn store(&self) -> Option<Store> {
        Some(self.store.clone())
    }
}

/// A fresh SQLite database file (not created yet).
pub async fn sqlite() -> FreshDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/pbx365.db", dir.path().display());
    FreshDb { url, dir }
}

/// A fresh PostgreSQL database, or `None` (with a notice) when no server is configured locally.
pub async fn postgres() -> Option<FreshDb> {
    let admin = postgres_admin_url()?;
    let name = format!("pbx365_t_{}", uuid::Uuid::new_v4().simple());
    let url = create_postgres_database(&admin, &name)
        .await
        .expect("create a database on the test PostgreSQL server");
    Some(FreshDb {
        url,
        dir: tempfile::tempdir().expect("temp dir"),
    })
}

/// The admin URL of the test PostgreSQL server; `None` (with a notice) when it is not set
/// locally. In CI (`CI` set) a missing server fails the test.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{POSTGRES_URL_VAR} is not set but CI is: the PostgreSQL tests must run in CI; \
             run them through scripts/with-postgres"
        ),
        _ => {
            // Written to the real stderr, once per process (nextest runs one test per process).
            static NOTICE: std::sync::Once = std::sync::Once::new();
            NOTICE.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "notice: {POSTGRES_URL_VAR} is not set, so the PostgreSQL variant is skipped; \
                     run the tests through scripts/with-postgres to include it"
                );
            });
            None
        }
    }
}

/// Creates database `name` (letters, digits, `_` only) on the server of `admin_url` and returns
/// the URL of the new database.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String, sqlx::Error> {
    check_name(name);
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let _ = conn.close().await;
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    Ok(format!("{base}/{name}{query}"))
}

/// Drops database `name` (closing its connections) on the server of `admin_url`.
pub async fn drop_postgres_database(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    check_name(name);
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    let _ = conn.close().await;
    Ok(())
}

fn check_name(name: &str) {
    assert!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database name {name:?}"
    );
}

/// Runs `test` on a new SQLite database.
pub async fn on_sqlite<T, F, Fut>(test: F)
where
    T: Fixture,
    F: FnOnce(T) -> Fut,
    Fut: Future<Output = ()>,
{
    run(sqlite().await, test).await;
}

/// Runs `test` on a new PostgreSQL database (skipped with a notice when there is no server
/// locally), then drops that database.
pub async fn on_postgres<T, F, Fut>(test: F)
where
    T: Fixture,
    F: FnOnce(T) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = postgres().await else {
        return;
    };
    let name = db
        .url
        .rsplit_once('/')
        .map(|(_, n)| n.split('?').next().unwrap_or(n).to_string())
        .unwrap_or_default();
    run(db, test).await;
    // Best effort: the cluster is thrown away anyway.
    if let Some(admin) = postgres_admin_url() {
        let _ = drop_postgres_database(&admin, &name).await;
    }
}

async fn run<T, F, Fut>(db: FreshDb, test: F)
where
    T: Fixture,
    F: FnOnce(T) -> Fut,
    Fut: Future<Output = ()>,
{
    let fixture = T::prepare(db).await;
    let store = fixture.store();
    test(fixture).await;
    if let Some(store) = store {
        store.close().await;
    }
}
