//! Driving the sync engine in tests: run a users sync, read what it wrote.

use pbx365_domain::settings::SyncSettings;
use pbx365_domain::{Extension, SyncKind, SyncRun};
use pbx365_store::Store;
use pbx365_sync::{RunOptions, SyncService};
use std::collections::BTreeMap;

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
