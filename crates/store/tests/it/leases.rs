//! Job leases: one holder at a time, renewal, release, take-over after expiry, growing tokens.

use chrono::Duration;
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;

async fn a_lease_has_one_holder_until_released_or_expired(db: TestDb) {
    let s = &db.store;
    let ttl = Duration::seconds(30);
    let a = s
        .try_acquire_lease("sync", "a", ttl)
        .await
        .unwrap()
        .expect("free");
    assert_eq!(
        s.try_acquire_lease("sync", "b", ttl).await.unwrap(),
        None,
        "held by a"
    );
    assert_eq!(s.lease_holder("sync").await.unwrap().as_deref(), Some("a"));
    assert!(s.renew_lease("sync", "a", a, ttl).await.unwrap());
    assert!(
        !s.renew_lease("sync", "b", a, ttl).await.unwrap(),
        "b never held it"
    );
    s.release_lease("sync", "a", a).await.unwrap();
    assert_eq!(s.lease_holder("sync").await.unwrap(), None);
    let b = s
        .try_acquire_lease("sync", "b", ttl)
        .await
        .unwrap()
        .expect("released");
    assert!(b > a, "the fencing token grows with every holder");
    assert!(
        !s.renew_lease("sync", "a", a, ttl).await.unwrap(),
        "a lost it"
    );

    // An expired lease (its holder died) is taken over.
    let c = s
        .try_acquire_lease("other", "c", Duration::seconds(-1))
        .await
        .unwrap()
        .unwrap();
    let d = s
        .try_acquire_lease("other", "d", ttl)
        .await
        .unwrap()
        .expect("expired");
    assert!(d > c);
    assert!(!s.renew_lease("other", "c", c, ttl).await.unwrap());
}

on_both!(a_lease_has_one_holder_until_released_or_expired);

/// The fencing token (SPEC §9): a job whose lease expired and was taken over by another instance
/// commits none of its writes — page and cursor, run record, cursor alone, retention deletes —
/// while the new holder's writes go through.
async fn a_holder_whose_lease_was_taken_over_cannot_commit(db: TestDb) {
    use pbx365_domain::{SyncKind, SyncReport, SyncStatus};
    use pbx365_store::{ExtensionOp, StoreError};
    use pbx365_testkit::data::{object_id, synced_extension};

    let s = &db.store;
    let ttl = Duration::seconds(30);
    let a = s
        .try_acquire_lease("sync", "a", Duration::seconds(-1))
        .await
        .unwrap()
        .expect("free");
    let old = s.fenced("sync", a);
    // Expired but not yet taken over: nobody else ran, so the write is still safe.
    old.set_kv("cursor:users", "page-1").await.unwrap();
    let run = old.start_sync_run(SyncKind::Users).await.unwrap();

    let b = s
        .try_acquire_lease("sync", "b", ttl)
        .await
        .unwrap()
        .expect("expired: taken over");
    let new = s.fenced("sync", b);
    new.set_kv("cursor:users", "page-2").await.unwrap();

    let lost = |r: Result<(), StoreError>, what: &str| match r {
        Err(StoreError::LeaseLost { lease, token }) => {
            assert_eq!((lease.as_str(), token), ("sync", a), "{what}")
        }
        other => panic!("{what}: expected LeaseLost, got {other:?}"),
    };
    let page = [ExtensionOp::Sync(synced_extension("201", &object_id(1)))];
    lost(
        old.apply_extension_ops(&page, Some(("cursor:users", "page-9")))
            .await,
        "a page with its cursor",
    );
    lost(old.set_kv("cursor:users", "page-9").await, "a cursor");
    lost(old.delete_kv("cursor:users").await, "a cursor removal");
    lost(
        old.finish_sync_run(&run.id, SyncStatus::Completed, &SyncReport::default())
            .await
            .map(|_| ()),
        "the run record",
    );
    lost(
        old.prune_sync_runs(chrono::Utc::now(), 0).await.map(|_| ()),
        "a retention delete",
    );
    let err = old.set_kv("x", "y").await.unwrap_err().to_string();
    assert!(err.contains("taken over by another instance"), "{err}");

    // Nothing of the old holder's writes is there; the new holder's are.
    assert_eq!(s.get_extension("201").await.unwrap(), None);
    assert_eq!(
        s.get_kv("cursor:users").await.unwrap().as_deref(),
        Some("page-2")
    );
    assert_eq!(
        s.get_sync_run(&run.id).await.unwrap().unwrap().status,
        SyncStatus::Running
    );
    new.apply_extension_ops(&page, Some(("cursor:users", "page-3")))
        .await
        .unwrap();
    assert!(s.get_extension("201").await.unwrap().is_some());

    // Unfenced writes (the console's) are not affected; a released lease fences its holder out
    // once another takes it.
    s.set_kv("setting:x", "1").await.unwrap();
    s.release_lease("sync", "b", b).await.unwrap();
    s.try_acquire_lease("sync", "c", ttl)
        .await
        .unwrap()
        .unwrap();
    match new.set_kv("cursor:users", "page-4").await {
        Err(StoreError::LeaseLost { token, .. }) => assert_eq!(token, b),
        other => panic!("after release: expected LeaseLost, got {other:?}"),
    }
}

on_both!(a_holder_whose_lease_was_taken_over_cannot_commit);
