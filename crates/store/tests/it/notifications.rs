//! Subscriptions and the notification inbox.

use chrono::{Duration, Utc};
use pbx365_store::SubscriptionRecord;
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;
use serde_json::json;

async fn a_notification_is_accepted_once_per_dedup_key(db: TestDb) {
    let payload = json!({"changeType": "updated", "resource": "users/1", "clientState": "secret"});
    assert!(db
        .store
        .enqueue_notification("sub1:updated:users/1:e1", &payload)
        .await
        .unwrap());
    assert!(!db
        .store
        .enqueue_notification("sub1:updated:users/1:e1", &payload)
        .await
        .unwrap());
    let taken = db.store.take_notifications(10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(
        taken[0].payload,
        json!({"changeType": "updated", "resource": "users/1"}),
        "clientState is not kept"
    );
    // Redelivered after it was processed: still a duplicate.
    assert!(!db
        .store
        .enqueue_notification("sub1:updated:users/1:e1", &payload)
        .await
        .unwrap());
    assert!(db.store.take_notifications(10).await.unwrap().is_empty());
    // Forgotten keys are accepted again.
    assert_eq!(
        db.store
            .prune_notification_keys(Utc::now() + Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    assert!(db
        .store
        .enqueue_notification("sub1:updated:users/1:e1", &payload)
        .await
        .unwrap());
}

async fn notifications_are_taken_oldest_first_up_to_the_limit(db: TestDb) {
    for i in 0..5 {
        assert!(db
            .store
            .enqueue_notification(&format!("k{i}"), &json!({"n": i}))
            .await
            .unwrap());
    }
    let first = db.store.take_notifications(3).await.unwrap();
    assert_eq!(
        first
            .iter()
            .map(|n| n.dedup_key.as_str())
            .collect::<Vec<_>>(),
        ["k0", "k1", "k2"]
    );
    let rest = db.store.take_notifications(3).await.unwrap();
    assert_eq!(
        rest.iter()
            .map(|n| n.payload["n"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [3, 4]
    );
}

async fn subscriptions_are_stored_replaced_and_removed(db: TestDb) {
    let sub = SubscriptionRecord {
        id: "sub-1".into(),
        resource: "users".into(),
        client_state: "cs".into(),
        expires_at: Utc::now() + Duration::days(2),
    };
    db.store.put_subscription(&sub).await.unwrap();
    let renewed = SubscriptionRecord {
        expires_at: sub.expires_at + Duration::days(1),
        ..sub.clone()
    };
    db.store.put_subscription(&renewed).await.unwrap();
    assert_eq!(db.store.list_subscriptions().await.unwrap(), vec![renewed]);
    db.store.delete_subscription("sub-1").await.unwrap();
    assert!(db.store.list_subscriptions().await.unwrap().is_empty());
}

on_both!(
    a_notification_is_accepted_once_per_dedup_key,
    notifications_are_taken_oldest_first_up_to_the_limit,
    subscriptions_are_stored_replaced_and_removed,
);
