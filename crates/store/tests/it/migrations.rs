//! Opening databases: creation, migrations on reopen, clear errors.

use pbx365_domain::{NewExtension, AZURE_AD_GROUP};
use pbx365_store::{Store, StoreError};
use pbx365_testkit::db::{postgres_admin_url, TestDb};
use pbx365_testkit::on_both;

async fn reopening_keeps_data_and_applies_no_migration_twice(db: TestDb) {
    db.store
        .create_local_extension(
            "100",
            &NewExtension {
                display_name: "A".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    db.store.close().await;
    for _ in 0..2 {
        let again = Store::connect(&db.url).await.unwrap();
        assert!(again.get_extension("100").await.unwrap().is_some());
        let groups = again.list_groups().await.unwrap();
        assert_eq!(
            groups.iter().filter(|g| g.name == AZURE_AD_GROUP).count(),
            1
        );
        again.close().await;
    }
}

on_both!(reopening_keeps_data_and_applies_no_migration_twice);

#[tokio::test]
async fn sqlite_file_and_missing_directories_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a/b/pbx365.db");
    let store = Store::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    assert!(file.exists());
    assert!(store.is_sqlite());
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
}

#[tokio::test]
async fn an_unwritable_sqlite_path_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let url = format!("sqlite://{}/sub/pbx365.db", blocker.display());
    let err = Store::connect(&url).await.err().expect("must fail");
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "cannot open the database {url}: cannot create the directory"
        )),
        "{msg}"
    );

    let err = Store::connect(&format!("sqlite://{}", dir.path().display()))
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("is a directory, not a database file"),
        "{err}"
    );
}

#[tokio::test]
async fn unsupported_urls_and_unreachable_servers_are_clear_errors() {
    let err = Store::connect("mysql://localhost/db").await.err().unwrap();
    assert!(
        err.to_string().contains("unsupported database URL"),
        "{err}"
    );

    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://pbx:secret@127.0.0.1:{port}/pbx365");
    let err = Store::connect(&url).await.err().unwrap();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "cannot open the database postgres://pbx:***@127.0.0.1:{port}/pbx365:"
        )),
        "{msg}"
    );
    assert!(!msg.contains("secret"), "{msg}");
}

#[tokio::test]
async fn postgres_tests_are_not_skipped_in_ci() {
    // In CI the harness panics without a server (see pbx365_testkit::db::postgres_admin_url); locally it
    // prints a notice. Here: when a server is given, it answers.
    if let Some(admin) = postgres_admin_url() {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&admin).await.unwrap();
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(one, 1);
    }
}

#[tokio::test]
async fn in_memory_and_relative_sqlite_urls_work() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let fields = NewExtension {
        display_name: "A".into(),
        ..Default::default()
    };
    store.create_local_extension("100", &fields).await.unwrap();
    let (a, b) = tokio::join!(store.get_extension("100"), store.list_groups());
    assert!(a.unwrap().is_some());
    assert_eq!(b.unwrap().len(), 1);

    // The default `database_url` is relative to the working directory; a name with a space,
    // `#` and `%` stays one file name.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/odd dir #1 %41/pbx365.db", dir.path().display());
    let store = Store::connect(&url).await.unwrap();
    store.create_local_extension("100", &fields).await.unwrap();
    assert!(dir.path().join("odd dir #1 %41/pbx365.db").exists());
    let rel = std::path::PathBuf::from(format!("tmp-store-test-{}", uuid::Uuid::new_v4().simple()));
    let store = Store::connect(&format!("sqlite://./{}/pbx365.db", rel.display()))
        .await
        .unwrap();
    assert!(store.list_extensions().await.unwrap().is_empty());
    store.close().await;
    std::fs::remove_dir_all(&rel).unwrap();
}
