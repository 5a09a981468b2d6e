//! SIGKILL during a 10,000-user first sync (a real child process), then a restart: the final
//! state equals a clean sync — no duplicate extension, none lost, same numbers and photos.

use pbx365_domain::NumberRules;
use pbx365_sync::{RunOptions, UserSync};
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;
use pbx365_testkit::process::sync_once_bin;
use pbx365_testkit::sync::{settings, synced};
use pbx365_testkit::tenant::{world, World};
use std::process::Stdio;

fn child(w: &World, db_url: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(sync_once_bin());
    cmd.env("SYNC_DB_URL", db_url)
        .env("SYNC_GRAPH_URL", w.sim.graph_url())
        .env("SYNC_TENANT", &w.sim.tenant_id)
        .env("SYNC_CLIENT_ID", &w.reader_client_id)
        .env("SYNC_DATA_DIR", &w.reader_keys_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

async fn sigkill_during_a_10000_user_first_sync_then_restart_equals_a_clean_sync(db: TestDb) {
    let w = world(10_000).await;
    let mut first = child(&w, &db.url).spawn().expect("start sync-once");
    // Wait until some pages are applied, failing early (with its words) if the child exits.
    loop {
        if let Some(status) = first.try_wait().unwrap() {
            let out = first.wait_with_output().await.unwrap();
            panic!(
                "sync-once ended ({status}) before it was killed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if db
            .store
            .list_extensions()
            .await
            .map(|v| v.len() > 1500)
            .unwrap_or(false)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    first.start_kill().expect("SIGKILL");
    let status = first.wait().await.unwrap();
    assert!(!status.success(), "the child was killed");
    let partial = synced(&db.store).await.len();
    eprintln!("killed after {partial} extensions");

    let out = child(&w, &db.url)
        .output()
        .await
        .expect("restart sync-once");
    assert!(
        out.status.success(),
        "restart failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = synced(&db.store).await;

    // A clean sync of the same tenant into a fresh SQLite database.
    let dir = tempfile::tempdir().unwrap();
    let clean_store =
        pbx365_store::Store::connect(&format!("sqlite://{}/clean.db", dir.path().display()))
            .await
            .unwrap();
    let engine = UserSync::new(
        clean_store.clone(),
        w.graph.clone(),
        settings(),
        NumberRules::default(),
    );
    engine.run(&RunOptions::default()).await.unwrap();
    let clean = synced(&clean_store).await;

    assert_eq!(after.len(), clean.len(), "none lost, none duplicated");
    let numbers: std::collections::HashSet<_> = after.values().map(|e| e.number.clone()).collect();
    assert_eq!(numbers.len(), after.len(), "no number twice");
    for (id, c) in &clean {
        let a = after.get(id).unwrap_or_else(|| panic!("{id} lost"));
        let strip = |e: &pbx365_domain::Extension| {
            let mut e = e.clone();
            e.updated_at = chrono::DateTime::UNIX_EPOCH;
            e
        };
        assert_eq!(strip(a), strip(c), "{id} differs from a clean sync");
    }
    // And the restarted store has no pending full-round state left.
    assert!(db
        .store
        .get_kv("sync:users:seen:0")
        .await
        .unwrap()
        .is_none());
}

on_both!(sigkill_during_a_10000_user_first_sync_then_restart_equals_a_clean_sync);
