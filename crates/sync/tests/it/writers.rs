//! Many writers: while a 10,000-user full round updates every user, an admin's and the profile
//! writer's changes land beside it. The sync writes only the fields it owns, never overwrites
//! another extension, and no number passes from one person to another.

use m365_sim::SimConfig;
use pbx365_domain::{
    ExtensionSource, NewExtension, Profile, ProfileSource, ProfileState, SyncKind, SyncStatus,
};
use pbx365_sync::RunOptions;
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;
use pbx365_testkit::sync::{settings, synced};
use pbx365_testkit::tenant::world_with;
use serde_json::json;
use std::collections::BTreeMap;

async fn writes_beside_a_10000_user_full_round_all_survive_and_no_number_changes_hands(db: TestDb) {
    let w = world_with(SimConfig {
        users: 10_000,
        https: false,
        latency_ms: 40,
        ..SimConfig::default()
    })
    .await;
    let mut s = settings();
    s.photos = false;
    let svc = w.service(&db.store, s.clone());
    let first = svc
        .run_now(SyncKind::Users, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(first.status, SyncStatus::Completed);
    let before: BTreeMap<String, String> = synced(&db.store)
        .await
        .into_iter()
        .map(|(id, e)| (e.number.to_string(), id))
        .collect();
    let mut numbers: Vec<u64> = before.keys().map(|n| n.parse().unwrap()).collect();
    numbers.sort();
    let (lowest, highest) = (
        numbers[0].to_string(),
        numbers[numbers.len() - 1].to_string(),
    );

    // Three people join: the round will plan them the next free numbers.
    let domain = w.sim.domain.clone();
    for name in ["ada", "bo", "cy"] {
        w.create_user(json!({
            "accountEnabled": true, "displayName": format!("{name} New"), "givenName": name, "surname": "New",
            "mailNickname": name, "userPrincipalName": format!("{name}.new@{domain}"),
            "passwordProfile": {"password": "Secret-123456", "forceChangePasswordNextSignIn": false}
        }))
        .await;
    }
    // An option changes, so the full round updates every user.
    s.caller_id_from_office_phone = false;
    svc.set_settings(s);
    let round = {
        let svc = svc.clone();
        tokio::spawn(async move {
            let full = RunOptions {
                full: true,
                ..Default::default()
            };
            svc.run_now(SyncKind::Users, full).await.unwrap()
        })
    };
    // Once the round has committed its first page, the other writers act.
    let store = db.store.clone();
    pbx365_testkit::wait::eventually(60, "the round commits a page", || async {
        let cursor = store.get_kv("cursor:users").await.ok().flatten();
        cursor.is_some_and(|c| c.contains("\"pages\":") && !c.contains("\"pages\":0"))
    })
    .await;
    let dnd = ProfileState {
        profile: Profile::Dnd,
        source: ProfileSource::Manual,
        until: None,
        return_to: None,
    };
    db.store.set_profile(&highest, &dnd).await.unwrap();
    db.store.set_extension_admin(&highest, true).await.unwrap();
    db.store.create_group("Sales", "local group").await.unwrap();
    db.store.add_group_member("Sales", &lowest).await.unwrap();
    let front_desk = NewExtension {
        first_name: "Front".into(),
        last_name: "Desk".into(),
        display_name: "Front Desk".into(),
        ..NewExtension::default()
    };
    // The local extension takes the first number free right now: the one the round planned for
    // a new person, unless the round has already written them.
    let mut n = numbers[numbers.len() - 1] + 1;
    let desk_number = loop {
        let candidate = n.to_string();
        if db.store.get_extension(&candidate).await.unwrap().is_none()
            && db
                .store
                .create_local_extension(&candidate, &front_desk)
                .await
                .is_ok()
        {
            break candidate;
        }
        n += 1;
    };

    let run = round.await.unwrap();
    assert_eq!(run.status, SyncStatus::Completed, "{:?}", run.report.errors);
    let top = db.store.get_extension(&highest).await.unwrap().unwrap();
    assert_eq!(
        top.profile.profile,
        Profile::Dnd,
        "the profile set during the round survives"
    );
    assert!(
        top.is_admin,
        "the admin role granted during the round survives"
    );
    assert_eq!(
        top.outbound_caller_id, None,
        "and the sync's own change landed too"
    );
    let low = db.store.get_extension(&lowest).await.unwrap().unwrap();
    assert!(
        low.groups.iter().any(|g| g == "Sales"),
        "the local membership survives: {:?}",
        low.groups
    );
    let desk = db.store.get_extension(&desk_number).await.unwrap().unwrap();
    assert_eq!(
        desk.source,
        ExtensionSource::Local,
        "the local extension was not turned into a user's"
    );
    assert_eq!(desk.display_name, "Front Desk");
    let after: BTreeMap<String, String> = synced(&db.store)
        .await
        .into_iter()
        .map(|(id, e)| (e.number.to_string(), id))
        .collect();
    for (number, id) in &before {
        assert_eq!(
            after.get(number),
            Some(id),
            "number {number} kept its person"
        );
    }
    assert_eq!(
        after.len(),
        before.len() + 3,
        "the three new people got extensions"
    );
    assert!(!after.contains_key(&desk_number));
}

on_both!(writes_beside_a_10000_user_full_round_all_survive_and_no_number_changes_hands);

async fn two_instances_on_one_database_never_run_a_round_at_the_same_time(db: TestDb) {
    let w = world_with(SimConfig {
        users: 1_000,
        https: false,
        latency_ms: 20,
        ..SimConfig::default()
    })
    .await;
    let mut s = settings();
    s.photos = false;
    let (one, two) = (w.service(&db.store, s.clone()), w.service(&db.store, s));
    let waited = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let opts = |waited: &std::sync::Arc<std::sync::atomic::AtomicUsize>| {
        let told = waited.clone();
        RunOptions {
            full: true,
            on_wait: Some(std::sync::Arc::new(move |_: &str| {
                told.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })),
            ..Default::default()
        }
    };
    let (a, b) = tokio::join!(
        one.run_now(SyncKind::Users, opts(&waited)),
        two.run_now(SyncKind::Users, opts(&waited))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        (a.status, b.status),
        (SyncStatus::Completed, SyncStatus::Completed)
    );
    assert_eq!(
        waited.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one of them waited"
    );
    let (first, second) = if a.started_at <= b.started_at {
        (a, b)
    } else {
        (b, a)
    };
    assert!(
        second.started_at >= first.finished_at.unwrap(),
        "the rounds did not overlap"
    );
    assert_eq!(
        first.report.created.len() + second.report.created.len(),
        synced(&db.store).await.len()
    );
}

on_both!(two_instances_on_one_database_never_run_a_round_at_the_same_time);

async fn a_notification_stays_in_the_inbox_until_a_round_has_handled_it(db: TestDb) {
    let w = pbx365_testkit::tenant::world(20).await;
    let mut s = settings();
    s.enabled = false;
    let svc = w.service(&db.store, s.clone());
    let note = json!({"subscriptionId": "s1", "changeType": "updated", "resource": "Users/abc"});
    assert!(db
        .store
        .enqueue_notification("s1:updated:abc", &note)
        .await
        .unwrap());
    // The round cannot run (sync is off): the notification is not lost with it.
    assert!(svc.process_inbox().await.is_err());
    assert_eq!(db.store.peek_notifications(10).await.unwrap().len(), 1);
    s.enabled = true;
    svc.set_settings(s);
    let run = svc.process_inbox().await.unwrap().expect("a round ran");
    assert_eq!(run.status, SyncStatus::Completed);
    assert!(
        db.store.peek_notifications(10).await.unwrap().is_empty(),
        "handled, then removed"
    );
}

on_both!(a_notification_stays_in_the_inbox_until_a_round_has_handled_it);
