//! Driving the sync engine in tests: run a users sync, read what it wrote, kill a `sync-once`
//! child mid-round and compare its restart with a clean sync.

use crate::tenant::World;
use pbx365_domain::settings::SyncSettings;
use pbx365_domain::{Extension, NumberRules, SyncKind, SyncRun};
use pbx365_store::Store;
use pbx365_sync::{RunOptions, SyncService, UserSync};
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::process::Stdio;

/// Runs a users sync now (`full`: a full round instead of a delta round).
pub async fn run(svc: &SyncService, full: bool) -> SyncRun {
    svc.run_now(
        SyncKind::Users,
        RunOptions {
            full,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// The synced extensions by Microsoft id.
pub async fn synced(store: &Store) -> BTreeMap<String, Extension> {
    store
        .list_extensions()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| e.m365_id.clone().map(|id| (id, e)))
        .collect()
}

/// Sync settings for tests: the defaults with the deletion guard at 50 / 10 %.
pub fn settings() -> SyncSettings {
    SyncSettings {
        max_deletions: 50,
        max_deletion_percent: 10,
        ..SyncSettings::default()
    }
}

/// `sync-once` (a real child process) running one users sync of `w`'s tenant into `db_url`.
pub fn sync_once(w: &World, db_url: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(crate::process::sync_once_bin());
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

/// Starts [`sync_once`] and SIGKILLs it as soon as `ready` holds; panics with the child's words
/// if it ends before. Returns how many synced extensions `store` held then.
pub async fn kill_sync_once_when<F, Fut>(w: &World, store: &Store, db_url: &str, ready: F) -> usize
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let mut first = sync_once(w, db_url).spawn().expect("start sync-once");
    loop {
        if let Some(status) = first.try_wait().unwrap() {
            let out = first.wait_with_output().await.unwrap();
            panic!(
                "sync-once ended ({status}) before it was killed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if ready().await {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    first.start_kill().expect("SIGKILL");
    assert!(
        !first.wait().await.unwrap().success(),
        "the child was killed"
    );
    synced(store).await.len()
}

/// Runs [`sync_once`] again to its end, then asserts `store` holds exactly what a clean sync of
/// the same tenant into a fresh database holds: none lost, none duplicated, no number twice, the
/// same fields and photos.
pub async fn restart_equals_a_clean_sync(w: &World, store: &Store, db_url: &str) {
    let out = sync_once(w, db_url)
        .output()
        .await
        .expect("restart sync-once");
    assert!(
        out.status.success(),
        "restart failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = synced(store).await;

    let dir = tempfile::tempdir().unwrap();
    let clean_store = Store::connect(&format!("sqlite://{}/clean.db", dir.path().display()))
        .await
        .unwrap();
    UserSync::new(
        clean_store.clone(),
        w.graph.clone(),
        settings(),
        NumberRules::default(),
    )
    .run(&RunOptions::default())
    .await
    .unwrap();
    let clean = synced(&clean_store).await;

    assert_eq!(after.len(), clean.len(), "none lost, none duplicated");
    let numbers: HashSet<_> = after.values().map(|e| e.number.clone()).collect();
    assert_eq!(numbers.len(), after.len(), "no number twice");
    let strip = |e: &Extension| {
        let mut e = e.clone();
        e.updated_at = chrono::DateTime::UNIX_EPOCH;
        e
    };
    for (id, c) in &clean {
        let a = after.get(id).unwrap_or_else(|| panic!("{id} lost"));
        assert_eq!(strip(a), strip(c), "{id} differs from a clean sync");
    }
}
