//! Retention: old sync runs are pruned (keeping the newest ones and the held one), the console's
//! banner reads one small row, and the SQLite files are owner-only.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use pbx365_domain::*;
use pbx365_store::Store;
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;

/// Records a finished run of `kind` that started at `at`.
async fn run_at(store: &Store, kind: SyncKind, status: SyncStatus, at: DateTime<Utc>) -> String {
    let run = store.start_sync_run(kind).await.unwrap();
    store
        .finish_sync_run(&run.id, status, &SyncReport::default())
        .await
        .unwrap();
    backdate(store, &run.id, at).await;
    run.id
}

/// Moves a run's start to `at` (tests cannot wait 90 days).
async fn backdate(store: &Store, id: &str, at: DateTime<Utc>) {
    sqlx::query("UPDATE sync_runs SET started_at = $1 WHERE id = $2")
        .bind(at.to_rfc3339_opts(SecondsFormat::Nanos, true))
        .bind(id)
        .execute(store.pool())
        .await
        .unwrap();
}

async fn old_sync_runs_are_pruned_but_the_newest_and_the_latest_held_stay(db: TestDb) {
    let s = &db.store;
    let old = Utc::now() - Duration::days(200);
    let at = |i: i64| old + Duration::seconds(i);
    let older_held = run_at(s, SyncKind::Users, SyncStatus::Held, at(0)).await;
    let latest_held = run_at(s, SyncKind::Users, SyncStatus::Held, at(1)).await;
    let old_done = run_at(s, SyncKind::Users, SyncStatus::Completed, at(2)).await;
    let old_failed = run_at(s, SyncKind::Contacts, SyncStatus::Failed, at(3)).await;
    let newest_old = run_at(s, SyncKind::Users, SyncStatus::Completed, at(4)).await;
    let recent = run_at(s, SyncKind::Users, SyncStatus::Completed, Utc::now()).await;
    // A run still going is never removed, however old its start.
    let running = s.start_sync_run(SyncKind::Users).await.unwrap().id;
    backdate(s, &running, old - Duration::days(1)).await;

    let pruned = s
        .prune_sync_runs(Utc::now() - Duration::days(90), 2)
        .await
        .unwrap();
    assert_eq!(pruned, 3);
    let mut left: Vec<String> = s
        .list_sync_runs(100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    left.sort();
    let mut want = vec![latest_held, newest_old, recent, running];
    want.sort();
    assert_eq!(left, want);
    for gone in [older_held, old_done, old_failed] {
        assert_eq!(s.get_sync_run(&gone).await.unwrap(), None);
    }

    // Nothing is older than the cut-off: nothing goes.
    assert_eq!(
        s.prune_sync_runs(Utc::now() - Duration::days(400), 0)
            .await
            .unwrap(),
        0
    );
}

async fn at_least_the_last_runs_are_kept_whatever_their_age(db: TestDb) {
    let s = &db.store;
    let old = Utc::now() - Duration::days(365);
    for i in 0..105 {
        run_at(
            s,
            SyncKind::Users,
            SyncStatus::Completed,
            old + Duration::minutes(i),
        )
        .await;
    }
    assert_eq!(s.prune_sync_runs(Utc::now(), 100).await.unwrap(), 5);
    assert_eq!(s.list_sync_runs(1000).await.unwrap().len(), 100);
}

async fn the_latest_finished_run_is_one_row_without_its_report(db: TestDb) {
    let s = &db.store;
    let users = [SyncKind::Users, SyncKind::All];
    assert_eq!(s.latest_finished_sync_run(&users).await.unwrap(), None);
    let held = s.start_sync_run(SyncKind::Users).await.unwrap();
    let held = s
        .finish_sync_run(&held.id, SyncStatus::Held, &SyncReport::default())
        .await
        .unwrap();
    let contacts = s.start_sync_run(SyncKind::Contacts).await.unwrap();
    s.finish_sync_run(&contacts.id, SyncStatus::Completed, &SyncReport::default())
        .await
        .unwrap();
    let running = s.start_sync_run(SyncKind::All).await.unwrap();

    let head = s.latest_finished_sync_run(&users).await.unwrap().unwrap();
    assert_eq!(head.id, held.id);
    assert_eq!(head.kind, SyncKind::Users);
    assert_eq!(head.status, SyncStatus::Held);
    assert_eq!(head.started_at, held.started_at);
    assert_eq!(head.finished_at, held.finished_at);
    assert_eq!(
        s.latest_finished_sync_run(&[SyncKind::Contacts])
            .await
            .unwrap()
            .map(|h| h.id),
        Some(contacts.id)
    );

    s.finish_sync_run(&running.id, SyncStatus::Completed, &SyncReport::default())
        .await
        .unwrap();
    let head = s.latest_finished_sync_run(&users).await.unwrap().unwrap();
    assert_eq!((head.id, head.status), (running.id, SyncStatus::Completed));
    assert_eq!(s.latest_finished_sync_run(&[]).await.unwrap(), None);
}

on_both!(
    old_sync_runs_are_pruned_but_the_newest_and_the_latest_held_stay,
    at_least_the_last_runs_are_kept_whatever_their_age,
    the_latest_finished_run_is_one_row_without_its_report,
);

/// The database holds password and session hashes: neither it nor its WAL files may be readable
/// by other users, whatever the umask.
#[cfg(unix)]
#[tokio::test]
async fn a_new_sqlite_database_and_its_wal_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let fresh = pbx365_testkit::db::sqlite().await;
    let store = Store::connect(&fresh.url).await.unwrap();
    store.set_kv("written", "yes").await.unwrap();
    let file = fresh.dir.path().join("pbx365.db");
    for path in [
        file.clone(),
        file.with_file_name("pbx365.db-wal"),
        file.with_file_name("pbx365.db-shm"),
    ] {
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
    store.close().await;
}
