//! Change notifications end to end: the receiver (the same core the web server mounts) on real
//! HTTP, subscriptions created in the sim, the service's worker turning notifications into delta
//! rounds; the poll when notifications are dropped; the handshake and forged clientStates.

use pbx365_store::{Store, SubscriptionRecord};
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;
use pbx365_testkit::sync::settings;
use pbx365_testkit::tenant::world;
use pbx365_testkit::wait::eventually;
use serde_json::json;
use std::time::Duration;

/// The receiver on 127.0.0.1:0, wrapped exactly like the web crate's handler.
async fn serve_receiver(store: Store) -> String {
    pbx365_testkit::receiver::serve(store).await
}

fn new_user(domain: &str, nick: &str) -> serde_json::Value {
    json!({
        "accountEnabled": true, "displayName": format!("{nick} Example"), "givenName": nick, "surname": "Example",
        "mailNickname": nick, "userPrincipalName": format!("{nick}@{domain}"), "mail": format!("{nick}@{domain}"),
        "passwordProfile": {"password": "Secret-123456", "forceChangePasswordNextSignIn": false}
    })
}

async fn a_user_created_in_microsoft_365_arrives_within_5_seconds_through_a_notification(
    db: TestDb,
) {
    let w = world(30).await;
    let url = serve_receiver(db.store.clone()).await;
    let svc = pbx365_sync::SyncService::new(
        db.store.clone(),
        w.graph.clone(),
        settings(),
        pbx365_domain::NumberRules::default(),
        &url,
    )
    .with_poll_interval(Duration::from_secs(3600));
    pbx365_testkit::sync::run(&svc, false).await;
    let bg = svc.start();
    let store = db.store.clone();
    eventually(10, "a users subscription exists", || {
        let store = store.clone();
        async move {
            store
                .list_subscriptions()
                .await
                .unwrap()
                .iter()
                .any(|s| s.resource == "users")
        }
    })
    .await;
    let id = w.create_user(new_user(&w.sim.domain, "notified")).await;
    let started = tokio::time::Instant::now();
    eventually(5, "the new user's extension", || {
        let store = store.clone();
        let id = id.clone();
        async move { store.get_extension_by_m365_id(&id).await.unwrap().is_some() }
    })
    .await;
    eprintln!("notification to extension: {:?}", started.elapsed());

    // With notifications dropped, the delta poll picks the change up.
    w.sim.control().drop_notifications().await.unwrap();
    bg.stop().await;
    let svc = svc.with_poll_interval(Duration::from_secs(2));
    let bg = svc.start();
    let id = w.create_user(new_user(&w.sim.domain, "polled")).await;
    eventually(15, "the poll brings the user in", || {
        let store = store.clone();
        let id = id.clone();
        async move { store.get_extension_by_m365_id(&id).await.unwrap().is_some() }
    })
    .await;
    bg.stop().await;
}

async fn the_validation_handshake_echoes_the_token_as_plain_text_only(db: TestDb) {
    let url = serve_receiver(db.store.clone()).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!(
            "{url}/api/m365/notifications?validationToken=%3Cscript%3Ealert(1)%3C%2Fscript%3E"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.text().await.unwrap(), "<script>alert(1)</script>");
    for bad in [
        "validationToken=",
        "validationToken",
        &format!("validationToken={}", "a".repeat(5000)),
    ] {
        let r = http
            .post(format!("{url}/api/m365/notifications?{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad:.40}");
    }
}

async fn a_forged_client_state_is_dropped_and_duplicates_are_stored_once(db: TestDb) {
    let url = serve_receiver(db.store.clone()).await;
    db.store
        .put_subscription(&SubscriptionRecord {
            id: "sub-1".into(),
            resource: "users".into(),
            client_state: "right-secret".into(),
            expires_at: chrono::Utc::now() + chrono::Duration::days(2),
        })
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let note = |state: &str| {
        json!({"value": [{"subscriptionId": "sub-1", "clientState": state, "changeType": "updated",
            "resource": "Users/abc", "resourceData": {"@odata.etag": "W/\"1\"", "id": "abc"}}]})
    };
    let r = http
        .post(format!("{url}/api/m365/notifications"))
        .json(&note("wrong-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "a forged notification still gets 2xx");
    assert!(
        db.store.take_notifications(10).await.unwrap().is_empty(),
        "and is not stored"
    );
    for _ in 0..3 {
        let r = http
            .post(format!("{url}/api/m365/notifications"))
            .json(&note("right-secret"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let stored = db.store.take_notifications(10).await.unwrap();
    assert_eq!(stored.len(), 1, "redeliveries are deduplicated");
    assert!(
        stored[0].payload.get("clientState").is_none(),
        "the secret is not stored"
    );
    let r = http
        .post(format!("{url}/api/m365/notifications"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

async fn lifecycle_events_recreate_reauthorize_and_resync(db: TestDb) {
    let w = world(20).await;
    let url = serve_receiver(db.store.clone()).await;
    let svc = pbx365_sync::SyncService::new(
        db.store.clone(),
        w.graph.clone(),
        settings(),
        pbx365_domain::NumberRules::default(),
        &url,
    )
    .with_poll_interval(Duration::from_secs(3600));
    pbx365_testkit::sync::run(&svc, false).await;
    let bg = svc.start();
    let store = db.store.clone();
    eventually(10, "a users subscription exists", || {
        let store = store.clone();
        async move { !store.list_subscriptions().await.unwrap().is_empty() }
    })
    .await;
    let old = db.store.list_subscriptions().await.unwrap()[0].clone();
    let runs_before = db.store.list_sync_runs(100).await.unwrap().len();

    // subscriptionRemoved: a new subscription replaces it, and a delta round runs.
    w.sim
        .control()
        .post_json(
            &format!("/_sim/subscriptions/{}/lifecycle", old.id),
            &json!({"event": "subscriptionRemoved"}),
        )
        .await
        .unwrap();
    eventually(10, "the subscription is recreated", || {
        let store = store.clone();
        let old = old.id.clone();
        async move {
            let subs = store.list_subscriptions().await.unwrap();
            subs.len() == 1 && subs[0].id != old && subs[0].resource == "users"
        }
    })
    .await;

    // missed: a full resync runs.
    let current = db.store.list_subscriptions().await.unwrap()[0].clone();
    w.sim
        .control()
        .post_json(
            &format!("/_sim/subscriptions/{}/lifecycle", current.id),
            &json!({"event": "missed"}),
        )
        .await
        .unwrap();
    eventually(10, "a resync ran after the lifecycle events", || {
        let store = store.clone();
        async move { store.list_sync_runs(100).await.unwrap().len() >= runs_before + 2 }
    })
    .await;

    // reauthorizationRequired: the subscription stays usable.
    w.sim
        .control()
        .post_json(
            &format!("/_sim/subscriptions/{}/lifecycle", current.id),
            &json!({"event": "reauthorizationRequired"}),
        )
        .await
        .unwrap();
    let id = w.create_user(new_user(&w.sim.domain, "afterreauth")).await;
    eventually(5, "notifications still arrive", || {
        let store = store.clone();
        let id = id.clone();
        async move { store.get_extension_by_m365_id(&id).await.unwrap().is_some() }
    })
    .await;
    bg.stop().await;
}

on_both!(
    lifecycle_events_recreate_reauthorize_and_resync,
    a_user_created_in_microsoft_365_arrives_within_5_seconds_through_a_notification,
    the_validation_handshake_echoes_the_token_as_plain_text_only,
    a_forged_client_state_is_dropped_and_duplicates_are_stored_once,
);
