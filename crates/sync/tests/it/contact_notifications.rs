//! Contact sync on change notifications (issue 14, item 6): the service keeps one contacts
//! subscription per followed mailbox in the sim, validated against the receiver on real HTTP;
//! contacts created, edited and deleted through Graph reach the phonebooks without a poll, by a
//! round that reads only the notified mailbox; a forged clientState changes nothing; notifications
//! lost by the sim are caught by the poll; a mailbox no longer followed loses its subscription.

use pbx365_domain::settings::{ContactSettings, Edition};
use pbx365_domain::{NumberRules, PhonebookOwner, SyncKind, SyncStatus};
use pbx365_store::Store;
use pbx365_sync::contacts::ContactsJob;
use pbx365_sync::{RunOptions, SyncService};
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;
use pbx365_testkit::sync::{run, settings, synced};
use pbx365_testkit::tenant::World;
use pbx365_testkit::wait::eventually;
use serde_json::json;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::contacts::{contact_settings, tenant, ANN, ANN_ID, RECEPTION, SALES};

/// A service with the receiver's URL, user sync and contact sync (both polls `poll` apart),
/// after a first user and contact round; returns it, the settings the job reads, Ann's number
/// and the receiver's URL.
async fn service(
    w: &World,
    store: &Store,
    poll: Duration,
) -> (SyncService, Arc<RwLock<ContactSettings>>, String, String) {
    let url = pbx365_testkit::receiver::serve(store.clone()).await;
    let shared = Arc::new(RwLock::new(contact_settings(
        true,
        &[RECEPTION, SALES],
        "DE",
    )));
    let read = shared.clone();
    let job = ContactsJob::new(
        store.clone(),
        w.graph.clone(),
        Arc::new(move || (Edition::Pro, read.read().unwrap().clone())),
    )
    .every(poll);
    let svc = SyncService::new(
        store.clone(),
        w.graph.clone(),
        settings(),
        NumberRules::default(),
        &url,
    )
    .with_poll_interval(poll)
    .with_job(Arc::new(job));
    assert_eq!(run(&svc, false).await.status, SyncStatus::Completed);
    let first = svc
        .run_now(SyncKind::Contacts, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(first.status, SyncStatus::Completed, "{:?}", first.report);
    let number = synced(store).await[ANN_ID].number.to_string();
    (svc, shared, number, url)
}

/// The contacts subscriptions in the store, by resource.
async fn contact_subscriptions(store: &Store) -> Vec<String> {
    let mut r: Vec<String> = store
        .list_subscriptions()
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.resource.ends_with("/contacts"))
        .map(|s| s.resource)
        .collect();
    r.sort();
    r
}

async fn has_entry(store: &Store, owner: &PhonebookOwner, name: &str) -> bool {
    store
        .list_phonebook(owner)
        .await
        .unwrap()
        .iter()
        .any(|e| e.display_name == name && e.m365_id.is_some())
}

async fn wait_entry(store: &Store, owner: &PhonebookOwner, name: &str, present: bool, what: &str) {
    eventually(5, what, || {
        let (store, owner) = (store.clone(), owner.clone());
        let name = name.to_string();
        async move { has_entry(&store, &owner, &name).await == present }
    })
    .await;
}

/// When each folder of `mailbox` was last read.
async fn read_at(store: &Store, mailbox: &str) -> Vec<chrono::DateTime<chrono::Utc>> {
    store
        .contact_folders()
        .await
        .unwrap()
        .into_iter()
        .filter(|f| f.mailbox == mailbox)
        .map(|f| f.synced_at)
        .collect()
}

async fn contacts_written_in_outlook_reach_the_phonebooks_by_notification_without_a_poll(
    db: TestDb,
) {
    let w = tenant(3).await;
    let store = db.store.clone();
    let (svc, shared, number, _) = service(&w, &store, Duration::from_secs(3600)).await;
    let personal = PhonebookOwner::Personal(number);
    let bg = svc.start();
    let wanted = vec![
        format!("/users/{}/contacts", ANN_ID.to_ascii_lowercase()),
        format!("/users/{RECEPTION}/contacts"),
        format!("/users/{SALES}/contacts"),
    ];
    let mut wanted_sorted = wanted.clone();
    wanted_sorted.sort();
    eventually(10, "a contacts subscription per followed mailbox", || {
        let (store, wanted) = (store.clone(), wanted_sorted.clone());
        async move { contact_subscriptions(&store).await == wanted }
    })
    .await;
    let sales_read = read_at(&store, SALES).await;

    // Created, edited, deleted in Ann's mailbox (a child folder too) and in a shared mailbox.
    let started = tokio::time::Instant::now();
    let id = w
        .create_contact(
            ANN,
            None,
            json!({"displayName": "Notified New", "mobilePhone": "0170 1111111"}),
        )
        .await;
    wait_entry(&store, &personal, "Notified New", true, "a created contact").await;
    eprintln!("created contact to phonebook: {:?}", started.elapsed());
    w.update_contact(ANN, &id, json!({"displayName": "Notified Renamed"}))
        .await;
    wait_entry(
        &store,
        &personal,
        "Notified Renamed",
        true,
        "an edited contact",
    )
    .await;
    w.delete_contact(ANN, &id).await;
    wait_entry(
        &store,
        &personal,
        "Notified Renamed",
        false,
        "a deleted contact",
    )
    .await;
    let friends = store
        .contact_folders()
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.name == "Friends")
        .unwrap()
        .folder;
    w.create_contact(ANN, Some(&friends), json!({"displayName": "In Friends"}))
        .await;
    wait_entry(
        &store,
        &personal,
        "In Friends",
        true,
        "a contact of a child folder",
    )
    .await;
    // A child folder created since the last full round comes in with its first contact.
    let family = w.create_contact_folder(ANN, "Family").await;
    w.create_contact(
        ANN,
        Some(&family),
        json!({"displayName": "In New Family Folder"}),
    )
    .await;
    wait_entry(
        &store,
        &personal,
        "In New Family Folder",
        true,
        "a contact of a new child folder",
    )
    .await;
    assert!(store
        .contact_folders()
        .await
        .unwrap()
        .iter()
        .any(|f| f.folder == family && f.name == "Family"));
    w.create_contact(RECEPTION, None, json!({"displayName": "Front Desk Two"}))
        .await;
    wait_entry(
        &store,
        &PhonebookOwner::Company,
        "Front Desk Two",
        true,
        "a shared mailbox's contact",
    )
    .await;
    assert_eq!(
        read_at(&store, SALES).await,
        sales_read,
        "the rounds read only the notified mailboxes, not every mailbox"
    );

    // A shared mailbox taken off the list loses its subscription.
    shared.write().unwrap().shared_mailboxes = vec![RECEPTION.to_string()];
    let left: Vec<String> = wanted.into_iter().filter(|r| !r.contains(SALES)).collect();
    eventually(
        10,
        "the subscription of the unfollowed mailbox is deleted",
        || {
            let (store, mut left) = (store.clone(), left.clone());
            left.sort();
            async move { contact_subscriptions(&store).await == left }
        },
    )
    .await;
    let at_microsoft = w
        .sim
        .control()
        .get_json("/_sim/subscriptions")
        .await
        .unwrap();
    let mut contacts_at_microsoft: Vec<String> = at_microsoft["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["resource"].as_str())
        .filter(|r| r.ends_with("/contacts"))
        .map(str::to_string)
        .collect();
    contacts_at_microsoft.sort();
    let mut left_sorted = left.clone();
    left_sorted.sort();
    assert_eq!(
        contacts_at_microsoft, left_sorted,
        "deleted at Microsoft too"
    );
    bg.stop().await;
}

async fn a_forged_notification_changes_nothing_and_lost_ones_are_caught_by_the_poll(db: TestDb) {
    let w = tenant(1).await;
    let store = db.store.clone();
    let (svc, _shared, number, receiver) = service(&w, &store, Duration::from_secs(3600)).await;
    let personal = PhonebookOwner::Personal(number);
    let bg = svc.start();
    eventually(10, "Ann's contacts subscription", || {
        let store = store.clone();
        async move {
            contact_subscriptions(&store)
                .await
                .iter()
                .any(|r| r.contains(ANN_ID))
        }
    })
    .await;
    bg.stop().await;
    w.sim.control().drop_notifications().await.unwrap();
    w.create_contact(ANN, None, json!({"displayName": "Lost Notification"}))
        .await;

    // A notification naming Ann's subscription with a wrong clientState is dropped: no mark.
    let sub = store
        .list_subscriptions()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.resource.contains(ANN_ID) && s.resource.ends_with("/contacts"))
        .unwrap();
    let url = format!("{receiver}/api/m365/notifications");
    let forged = json!({"value": [{
        "subscriptionId": sub.id, "clientState": "not-the-secret", "changeType": "created",
        "resource": format!("Users/{ANN_ID}/Contacts/x"), "tenantId": "t",
        "resourceData": {"id": "x", "@odata.etag": "W/\"1\""}}]});
    let r = reqwest::Client::new()
        .post(&url)
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        202,
        "a forged notification is still acknowledged"
    );
    assert!(
        store.list_kv("contacts:dirty:").await.unwrap().is_empty(),
        "a forged notification marks nothing"
    );
    // The same notification with the subscription's clientState marks Ann's mailbox (the mark
    // is taken away again: the poll is what this test shows next).
    let mut genuine = forged.clone();
    genuine["value"][0]["clientState"] = json!(sub.client_state);
    let r = reqwest::Client::new()
        .post(&url)
        .json(&genuine)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let marks = store.list_kv("contacts:dirty:").await.unwrap();
    assert_eq!(marks.len(), 1, "{marks:?}");
    store.delete_kv(&marks[0].0).await.unwrap();
    assert!(!has_entry(&store, &personal, "Lost Notification").await);

    // The real notification was dropped by the sim: the contact poll brings the contact. Its
    // hour is made to have passed (no last run recorded) and the service polls every second.
    store
        .delete_kv(pbx365_sync::contacts::LAST_RUN_KEY)
        .await
        .unwrap();
    let bg = svc.with_poll_interval(Duration::from_secs(1)).start();
    wait_entry(
        &store,
        &personal,
        "Lost Notification",
        true,
        "the poll brings the contact",
    )
    .await;
    bg.stop().await;
}

/// Ann's contacts subscription as stored.
async fn ann_subscription(store: &Store) -> Option<pbx365_store::SubscriptionRecord> {
    store
        .list_subscriptions()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.resource.contains(ANN_ID) && s.resource.ends_with("/contacts"))
}

async fn lifecycle_events_reread_renew_and_recreate_a_contact_subscription(db: TestDb) {
    let w = tenant(1).await;
    let store = db.store.clone();
    let (svc, _shared, number, _) = service(&w, &store, Duration::from_secs(3600)).await;
    let personal = PhonebookOwner::Personal(number);
    let bg = svc.start();
    eventually(10, "Ann's contacts subscription", || {
        let store = store.clone();
        async move { ann_subscription(&store).await.is_some() }
    })
    .await;
    let sub = ann_subscription(&store).await.unwrap();
    let lifecycle = |id: String, event: &'static str| {
        let control = w.sim.control();
        async move {
            let r = control
                .post_json(
                    &format!("/_sim/subscriptions/{id}/lifecycle"),
                    &json!({"event": event}),
                )
                .await
                .unwrap();
            assert_eq!(r["delivered"], true, "{r}");
        }
    };

    // `missed`: what Microsoft could not deliver is read again.
    w.sim.control().drop_notifications().await.unwrap();
    w.create_contact(ANN, None, json!({"displayName": "Missed Contact"}))
        .await;
    lifecycle(sub.id.clone(), "missed").await;
    wait_entry(
        &store,
        &personal,
        "Missed Contact",
        true,
        "a re-read after `missed`",
    )
    .await;

    // `reauthorizationRequired`: renewed at once.
    lifecycle(sub.id.clone(), "reauthorizationRequired").await;
    eventually(10, "the subscription renewed", || {
        let (store, before) = (store.clone(), sub.expires_at);
        async move {
            ann_subscription(&store)
                .await
                .is_some_and(|s| s.expires_at > before)
        }
    })
    .await;

    // `subscriptionRemoved`: made again.
    lifecycle(sub.id.clone(), "subscriptionRemoved").await;
    eventually(10, "a new subscription", || {
        let (store, old) = (store.clone(), sub.id.clone());
        async move { ann_subscription(&store).await.is_some_and(|s| s.id != old) }
    })
    .await;
    bg.stop().await;
}

async fn a_subscription_microsoft_cannot_validate_is_warned_about_once_and_left_to_the_poll(
    db: TestDb,
) {
    let log = pbx365_testkit::log::Buffer::default();
    let writer = log.clone();
    let _ = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init();
    let w = tenant(1).await;
    let store = db.store.clone();
    let job = ContactsJob::new(
        store.clone(),
        w.graph.clone(),
        Arc::new(|| (Edition::Pro, contact_settings(true, &[RECEPTION], "DE"))),
    );
    // Nothing answers Microsoft's validation request at this address.
    let svc = SyncService::new(
        store.clone(),
        w.graph.clone(),
        settings(),
        NumberRules::default(),
        "http://127.0.0.1:9",
    )
    .with_poll_interval(Duration::from_secs(3600))
    .with_job(Arc::new(job));
    assert_eq!(run(&svc, false).await.status, SyncStatus::Completed);
    let bg = svc.start();
    let checked = || {
        let store = store.clone();
        async move {
            store
                .get_kv(pbx365_sync::contacts::notify::LAST_CHECK_KEY)
                .await
                .unwrap()
                .is_some()
        }
    };
    eventually(20, "the first subscription check", checked).await;
    // The next hourly check, made due now: the same mailboxes fail again, and are not warned
    // about again.
    store
        .delete_kv(pbx365_sync::contacts::notify::LAST_CHECK_KEY)
        .await
        .unwrap();
    eventually(20, "the second subscription check", checked).await;
    bg.stop().await;
    assert!(contact_subscriptions(&store).await.is_empty());
    let warned = log
        .text()
        .matches("contact change notifications could not be subscribed")
        .count();
    assert_eq!(warned, 1, "{}", log.text());
}

on_both!(
    contacts_written_in_outlook_reach_the_phonebooks_by_notification_without_a_poll,
    a_forged_notification_changes_nothing_and_lost_ones_are_caught_by_the_poll,
    lifecycle_events_reread_renew_and_recreate_a_contact_subscription,
    a_subscription_microsoft_cannot_validate_is_warned_about_once_and_left_to_the_poll
);
