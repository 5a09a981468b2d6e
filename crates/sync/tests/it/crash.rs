//! SIGKILL during a 10,000-user first sync (a real child process), then a restart: the final
//! state equals a clean sync — no duplicate extension, none lost, same numbers and photos.

use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;
use pbx365_testkit::sync::{kill_sync_once_when, restart_equals_a_clean_sync};
use pbx365_testkit::tenant::world;

async fn sigkill_during_a_10000_user_first_sync_then_restart_equals_a_clean_sync(db: TestDb) {
    let w = world(10_000).await;
    // Killed once some pages are applied.
    let partial = kill_sync_once_when(&w, &db.store, &db.url, || async {
        db.store
            .list_extensions()
            .await
            .map(|v| v.len() > 1500)
            .unwrap_or(false)
    })
    .await;
    eprintln!("killed after {partial} extensions");
    restart_equals_a_clean_sync(&w, &db.store, &db.url).await;
    // And the restarted store has no pending full-round state left.
    assert!(db
        .store
        .get_kv("sync:users:seen:0")
        .await
        .unwrap()
        .is_none());
}

on_both!(sigkill_during_a_10000_user_first_sync_then_restart_equals_a_clean_sync);
