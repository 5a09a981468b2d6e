//! The fencing token at work (SPEC §9): a round whose lease expired and was taken over by another
//! instance commits nothing more, and the next holder resumes the round from its committed
//! cursor, ending with the extensions a clean run gives.

use chrono::Duration;
use m365_sim::faults::{routes, FaultSpec};
use m365_sim::SimConfig;
use pbx365_domain::{NumberRules, SyncKind, SyncStatus};
use pbx365_store::{Store, StoreError};
use pbx365_sync::lease::SYNC_LEASE;
use pbx365_sync::{RunOptions, SyncError, UserSync};
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;
use pbx365_testkit::sync::{settings, synced};
use pbx365_testkit::tenant::world_with;
use pbx365_testkit::wait::eventually;
use std::collections::BTreeMap;

/// Number -> Microsoft 365 id of the synced extensions.
async fn numbers(store: &Store) -> BTreeMap<String, String> {
    synced(store)
        .await
        .into_iter()
        .map(|(id, e)| (e.number.to_string(), id))
        .collect()
}

async fn a_round_that_lost_its_lease_commits_nothing_more_and_the_next_holder_resumes_it(
    db: TestDb,
) {
    let w = world_with(SimConfig {
        users: 1_500,
        https: false,
        latency_ms: 30,
        ..SimConfig::default()
    })
    .await;
    let mut s = settings();
    s.photos = false;
    let store = db.store.clone();
    // Slow pages: the round is still reading when its one-second lease has been taken over.
    w.sim
        .control()
        .add_fault(&FaultSpec {
            path: routes::USERS_DELTA.into(),
            latency_ms: Some(1_500),
            ..FaultSpec::default()
        })
        .await
        .unwrap();

    // An instance takes the lease for a second and never renews it (it stalls, then wakes up).
    let stalled = store
        .try_acquire_lease(SYNC_LEASE, "stalled", Duration::seconds(1))
        .await
        .unwrap()
        .expect("free");
    let engine = UserSync::new(
        store.fenced(SYNC_LEASE, stalled),
        w.graph.clone(),
        s.clone(),
        NumberRules::default(),
    );
    let round = tokio::spawn(async move { engine.run(&RunOptions::default()).await });
    eventually(60, "the round commits a page", || async {
        let cursor = store.get_kv("cursor:users").await.ok().flatten();
        cursor.is_some_and(|c| c.contains("\"pages\":") && !c.contains("\"pages\":0"))
    })
    .await;
    // Another instance takes the expired lease over.
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    eventually(10, "the lease expires and is taken over", || {
        let (store, taken) = (store.clone(), taken.clone());
        async move {
            let got = store
                .try_acquire_lease(SYNC_LEASE, "thief", Duration::seconds(60))
                .await
                .unwrap();
            if let Some(token) = got {
                taken.store(token, std::sync::atomic::Ordering::SeqCst);
            }
            got.is_some()
        }
    })
    .await;
    let thief = taken.load(std::sync::atomic::Ordering::SeqCst);
    let at_takeover = (
        numbers(&store).await,
        store.get_kv("cursor:users").await.unwrap(),
    );
    assert!(
        at_takeover.0.len() < 1_500,
        "taken over mid-round: {} extensions",
        at_takeover.0.len()
    );

    let lost = round.await.unwrap();
    assert!(
        matches!(lost, Err(SyncError::Store(StoreError::LeaseLost { .. }))),
        "the stalled round fails at its next write: {:?}",
        lost.map(|r| r.status)
    );
    assert_eq!(
        (
            numbers(&store).await,
            store.get_kv("cursor:users").await.unwrap()
        ),
        at_takeover,
        "nothing was committed after the takeover"
    );
    let unfinished = store.unfinished_sync_runs().await.unwrap();
    assert_eq!(
        unfinished.len(),
        1,
        "the stalled run could not record its end"
    );

    w.sim.control().clear_faults().await.unwrap();

    // The thief is done; the next instance's background loop finds the interrupted run and
    // resumes it from the committed cursor.
    store
        .release_lease(SYNC_LEASE, "thief", thief)
        .await
        .unwrap();
    let svc = w
        .service(&store, s.clone())
        .with_lease_ttl(std::time::Duration::from_secs(2));
    let background = svc.start();
    eventually(
        120,
        "the interrupted round is resumed and completed",
        || async {
            let runs = store.list_sync_runs(10).await.unwrap();
            store.unfinished_sync_runs().await.unwrap().is_empty()
                && runs
                    .iter()
                    .any(|r| r.kind == SyncKind::Users && r.status == SyncStatus::Completed)
        },
    )
    .await;
    background.stop().await;
    let runs = store.list_sync_runs(10).await.unwrap();
    let interrupted = runs
        .iter()
        .find(|r| r.id == unfinished[0].id)
        .expect("the stalled run is kept");
    assert_eq!(interrupted.status, SyncStatus::Failed);
    assert!(
        interrupted.report.errors.iter().any(|e| e
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("interrupted"))),
        "{:?}",
        interrupted.report.errors
    );
    let resumed = runs
        .iter()
        .find(|r| r.status == SyncStatus::Completed)
        .unwrap();

    // The same extensions as a clean run in a database of its own.
    let clean = Store::connect("sqlite::memory:").await.unwrap();
    let run = w
        .service(&clean, s)
        .run_now(SyncKind::Users, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(run.status, SyncStatus::Completed);
    let want = numbers(&clean).await;
    assert_eq!(
        resumed.report.created.len(),
        want.len() - at_takeover.0.len(),
        "resumed from the committed cursor: only the rest was created"
    );
    assert_eq!(numbers(&store).await, want);
}

on_both!(a_round_that_lost_its_lease_commits_nothing_more_and_the_next_holder_resumes_it);
