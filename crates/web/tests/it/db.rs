//! Throwaway databases for tests: a SQLite file in a temp dir, or a fresh PostgreSQL database
//! created on the server named by `PBX365_TEST_POSTGRES_URL` (an admin URL).
//!
//! Shared with the `pbx365` binary's tests (included there by path).

#![allow(dead_code)]

use sqlx::Connection;

/// A database for one test; dropping it removes the SQLite file (PostgreSQL databases live in
/// the throwaway test cluster).
pub struct TestDb {
    /// `sqlite://…` or `postgres://…`.
    pub url: String,
    /// Temp dir holding the SQLite file (and usable as the data dir).
    pub dir: tempfile::TempDir,
}

/// A fresh SQLite database file.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/pbx365.db", dir.path().display());
    TestDb { url, dir }
}

/// A fresh PostgreSQL database, or `None` (with a notice) when no server is configured locally.
/// Under CI (`CI` set) a missing server fails the test: PostgreSQL is never skipped silently there.
pub async fn postgres() -> Option<TestDb> {
    let Ok(admin) = std::env::var("PBX365_TEST_POSTGRES_URL") else {
        if std::env::var_os("CI").is_some() {
            panic!("PBX365_TEST_POSTGRES_URL is not set but CI is: the PostgreSQL tests must run");
        }
        eprintln!("notice: PBX365_TEST_POSTGRES_URL is not set; skipping the PostgreSQL variant");
        return None;
    };
    let name = format!("pbx365_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let _ = conn.close().await;
    let mut url = url::Url::parse(&admin).expect("PBX365_TEST_POSTGRES_URL is a URL");
    url.set_path(&format!("/{name}"));
    Some(TestDb {
        url: url.to_string(),
        dir: tempfile::tempdir().expect("temp dir"),
    })
}

/// Defines `mod $name { sqlite, postgres }`: the same async test body on both databases.
#[macro_export]
macro_rules! on_both_databases {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$body($crate::db::sqlite().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::db::postgres().await {
                    super::$body(db).await
                }
            }
        }
    };
}
