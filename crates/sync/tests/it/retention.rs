//! The daily pruning: expired sessions, notification keys and sync runs past `retention_days`
//! (the newest 100 runs and the newest held run stay), done by one instance once a day.
//! Rows cannot be made 90 days old here, so the pruning is run as of a day 100 days ahead.

use chrono::{DateTime, Duration, Utc};
use pbx365_domain::{SyncKind, SyncReport, SyncStatus};
use pbx365_store::{SessionRecord, Store};
use pbx365_sync::lease::HeldLease;
use pbx365_sync::retention::{self, Pruned, Retention, KEEP_RUNS, LAST_PRUNE_KEY, PRUNE_LEASE};
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;
use serde_json::json;

fn retention(days: u32) -> Retention {
    Retention {
        days,
        session_idle: Duration::minutes(30),
        session_absolute: Duration::hours(12),
    }
}

async fn session(store: &Store, name: &str, created: DateTime<Utc>, seen: DateTime<Utc>) {
    store
        .create_session(&SessionRecord {
            id_hash: format!("hash-{name}"),
            subject: name.into(),
            created_at: created,
            last_seen_at: seen,
            csrf_token: "t".into(),
            authenticated_at: created,
            user_agent: String::new(),
        })
        .await
        .unwrap();
}

async fn finished_run(store: &Store, status: SyncStatus) -> String {
    let run = store.start_sync_run(SyncKind::Users).await.unwrap();
    store
        .finish_sync_run(&run.id, status, &SyncReport::default())
        .await
        .unwrap();
    run.id
}

async fn expired_sessions_old_keys_and_old_runs_go_the_rest_stays(db: TestDb) {
    let s = &db.store;
    let later = Utc::now() + Duration::days(100);
    session(
        s,
        "too-old",
        later - Duration::hours(13),
        later - Duration::minutes(1),
    )
    .await;
    session(
        s,
        "idle",
        later - Duration::hours(1),
        later - Duration::minutes(31),
    )
    .await;
    session(
        s,
        "live",
        later - Duration::hours(1),
        later - Duration::minutes(1),
    )
    .await;
    assert!(s
        .enqueue_notification("sub:updated:users/1:e1", &json!({}))
        .await
        .unwrap());
    let held = finished_run(s, SyncStatus::Held).await;
    let extra = 2;
    for _ in 0..KEEP_RUNS + extra {
        finished_run(s, SyncStatus::Completed).await;
    }

    // A retention longer than the keys' and runs' age keeps them.
    assert_eq!(
        retention::prune(s, &retention(200), later).await.unwrap(),
        Pruned {
            sessions: 2,
            notification_keys: 0,
            sync_runs: 0,
        }
    );
    assert!(s.get_session("hash-live").await.unwrap().is_some());
    assert!(s.get_session("hash-idle").await.unwrap().is_none());
    assert!(s.get_session("hash-too-old").await.unwrap().is_none());

    assert_eq!(
        retention::prune(s, &retention(90), later).await.unwrap(),
        Pruned {
            sessions: 0,
            notification_keys: 1,
            sync_runs: u64::from(extra),
        }
    );
    let runs = s.list_sync_runs(1000).await.unwrap();
    assert_eq!(runs.len(), KEEP_RUNS as usize + 1);
    assert!(
        runs.iter().any(|r| r.id == held),
        "the newest held run stays, however old"
    );
    // The key was forgotten: the same notification is accepted again.
    assert!(s
        .enqueue_notification("sub:updated:users/1:e1", &json!({}))
        .await
        .unwrap());
    assert!(s.get_session("hash-live").await.unwrap().is_some());
}

async fn one_instance_prunes_once_a_day(db: TestDb) {
    let s = &db.store;
    let r = retention(90);
    let now = Utc::now();
    session(s, "old", now - Duration::days(2), now - Duration::days(2)).await;

    // Another instance is pruning: this one does nothing.
    let other = HeldLease::try_take(s, PRUNE_LEASE, "other", std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .expect("the lease is free");
    assert_eq!(
        retention::prune_if_due(s, "me", &r, now).await.unwrap(),
        None
    );
    assert!(s.get_session("hash-old").await.unwrap().is_some());
    other.release().await;

    let first = retention::prune_if_due(s, "me", &r, now).await.unwrap();
    assert_eq!(first.map(|p| p.sessions), Some(1));
    assert!(s.get_kv(LAST_PRUNE_KEY).await.unwrap().is_some());

    // Not again within the day, on any instance.
    session(s, "later", now - Duration::days(2), now - Duration::days(2)).await;
    for holder in ["me", "other"] {
        assert_eq!(
            retention::prune_if_due(s, holder, &r, now + Duration::hours(23))
                .await
                .unwrap(),
            None
        );
    }
    assert!(s.get_session("hash-later").await.unwrap().is_some());

    let next_day = retention::prune_if_due(s, "other", &r, now + Duration::hours(25))
        .await
        .unwrap();
    assert_eq!(next_day.map(|p| p.sessions), Some(1));
}

on_both!(
    expired_sessions_old_keys_and_old_runs_go_the_rest_stays,
    one_instance_prunes_once_a_day,
);
