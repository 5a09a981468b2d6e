//! Full and delta rounds against the sim: the right extensions with the right fields, stable
//! numbers, photos, idempotence, changes made through Graph, local deletes, dry runs.

use m365_sim::faults::routes;
use pbx365_domain::settings::SyncScope;
use pbx365_domain::{DirectoryUser, ExtensionSource, SyncKind, SyncStatus, AZURE_AD_GROUP};
use pbx365_sync::RunOptions;
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;
use pbx365_testkit::sync::{run, settings, synced};
use pbx365_testkit::tenant::world;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};

/// The extension fields SPEC §3 says a member maps to (the test's own oracle).
fn expected_fields(u: &DirectoryUser) -> (String, Option<String>, Option<String>, Option<String>) {
    let email = u
        .mail
        .clone()
        .filter(|m| !m.is_empty())
        .or_else(|| u.user_principal_name.clone());
    (
        u.display_name.clone().unwrap_or_default(),
        email,
        u.mobile_phone.clone(),
        u.business_phones.first().cloned(),
    )
}

fn wanted(u: &DirectoryUser) -> bool {
    u.user_type.as_deref() == Some("Member") && u.account_enabled == Some(true)
}

async fn tenant_of_2500_syncs_to_exactly_the_expected_extensions_and_a_second_run_writes_nothing(
    db: TestDb,
) {
    let w = world(2500).await;
    let users = w.users().await;
    assert!(
        users
            .iter()
            .any(|u| u.user_type.as_deref() == Some("Guest")),
        "the tenant has guests"
    );
    assert!(
        users.iter().any(|u| u.account_enabled == Some(false)),
        "the tenant has disabled users"
    );
    assert!(
        users.iter().any(|u| u.business_phones.is_empty()),
        "the tenant has users without an office phone"
    );
    assert!(
        users.iter().any(|u| u.mail.is_none()),
        "the tenant has users without mail"
    );
    assert!(
        users
            .iter()
            .any(|u| u.display_name.as_deref().is_some_and(|n| !n.is_ascii())),
        "non-Latin names"
    );
    let mut names = HashSet::new();
    assert!(
        users.iter().any(|u| !names.insert(u.display_name.clone())),
        "duplicate display names"
    );

    let svc = w.service(&db.store, settings());
    let first = run(&svc, false).await;
    assert_eq!(
        first.status,
        SyncStatus::Completed,
        "{:?}",
        first.report.errors
    );
    let exts = synced(&db.store).await;
    let expected: BTreeMap<String, &DirectoryUser> = users
        .iter()
        .filter(|u| wanted(u))
        .map(|u| (u.id.clone(), u))
        .collect();
    assert_eq!(
        exts.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "exactly the enabled members"
    );
    let mut numbers = HashSet::new();
    for (id, e) in &exts {
        let u = expected[id];
        let (display, email, mobile, caller) = expected_fields(u);
        assert_eq!(e.display_name, display, "{id}");
        assert_eq!(e.email, email, "{id}");
        assert_eq!(e.mobile, mobile, "{id}");
        assert_eq!(e.outbound_caller_id, caller, "{id}");
        assert_eq!(e.first_name, u.given_name.clone().unwrap_or_default());
        assert_eq!(e.last_name, u.surname.clone().unwrap_or_default());
        assert_eq!(e.department, u.department);
        assert_eq!(e.job_title, u.job_title);
        assert_eq!(e.office, u.office_location);
        assert_eq!(e.source, ExtensionSource::M365);
        assert!(e.groups.contains(&AZURE_AD_GROUP.to_string()));
        assert!(e.enabled);
        assert!(e.number.value() >= 100);
        assert!(numbers.insert(e.number.clone()), "no number twice");
    }
    let skipped: HashSet<&str> = first
        .report
        .skipped
        .iter()
        .filter_map(|i| i.reason.as_deref())
        .collect();
    assert!(
        skipped.contains("guest") && skipped.contains("disabled"),
        "{skipped:?}"
    );
    let with_photo = exts.values().filter(|e| e.photo.is_some()).count();
    assert!(
        with_photo > exts.len() / 2,
        "photos were stored ({with_photo} of {})",
        exts.len()
    );
    let some = exts.values().find(|e| e.photo.is_some()).unwrap();
    let (ctype, bytes) = db
        .store
        .get_photo(some.number.as_str())
        .await
        .unwrap()
        .unwrap();
    assert!(ctype.starts_with("image/") && !bytes.is_empty());

    w.sim.control().clear_stats().await.unwrap();
    let before = db.store.list_extensions().await.unwrap();
    let second = run(&svc, false).await;
    assert_eq!(second.status, SyncStatus::Completed);
    assert!(
        second.report.is_noop(),
        "second run changed something: {:?}",
        second.report.updated.first()
    );
    assert_eq!(
        db.store.list_extensions().await.unwrap(),
        before,
        "nothing was written"
    );
    let stats = w.sim.control().stats().await.unwrap();
    assert_eq!(
        stats.route(routes::PHOTO_VALUE_COUNT),
        0,
        "unchanged photos are not downloaded again"
    );

    // A full reconciliation of an unchanged tenant changes nothing either, photos included.
    let full = run(&svc, true).await;
    assert!(full.report.is_noop(), "{:?}", full.report.updated.first());
    assert_eq!(db.store.list_extensions().await.unwrap(), before);
    let stats = w.sim.control().stats().await.unwrap();
    let photoless = before.iter().filter(|e| e.photo.is_none()).count() as u64;
    // Extensions without a photo are probed with `$value` (a 404, no bytes); none with a photo is
    // downloaded again because the etags did not change.
    assert_eq!(
        stats.route(routes::PHOTO_VALUE_COUNT),
        photoless,
        "photo etags unchanged: no download"
    );
}

async fn members_of_a_scope_group_of_300_are_the_only_extensions(db: TestDb) {
    let w = world(2500).await;
    let users = w.users().await;
    // 300 users of every kind in one group (guests and disabled ones stay out).
    let members: Vec<&DirectoryUser> = users.iter().skip(7).step_by(8).take(300).collect();
    assert_eq!(members.len(), 300);
    let ids: Vec<String> = members.iter().map(|u| u.id.clone()).collect();
    let group_id = w.group_with_members(&ids).await;
    let mut s = settings();
    s.scope = SyncScope::Groups;
    s.scope_ids = vec![group_id.clone()];
    let svc = w.service(&db.store, s);
    let r = run(&svc, false).await;
    assert_eq!(r.status, SyncStatus::Completed, "{:?}", r.report.errors);
    let exts = synced(&db.store).await;
    let expected: Vec<String> = {
        let mut v: Vec<String> = members
            .iter()
            .filter(|u| wanted(u))
            .map(|u| u.id.clone())
            .collect();
        v.sort();
        v
    };
    assert_eq!(exts.keys().cloned().collect::<Vec<_>>(), expected);
    assert!(r
        .report
        .skipped
        .iter()
        .any(|i| i.reason.as_deref() == Some("out of scope")));
    let again = run(&svc, false).await;
    assert!(again.report.is_noop());
}

async fn changes_made_in_microsoft_365_reach_the_extensions_in_the_next_delta_round(db: TestDb) {
    let w = world(40).await;
    let mut s = settings();
    s.max_deletion_percent = 100;
    let svc = w.service(&db.store, s);
    run(&svc, false).await;
    let domain = w.sim.domain.clone();

    let id = w
        .create_user(json!({
            "accountEnabled": true, "displayName": "Nora Quist", "givenName": "Nora", "surname": "Quist",
            "mailNickname": "nora", "userPrincipalName": format!("nora.quist@{domain}"),
            "mail": format!("nora.quist@{domain}"), "businessPhones": ["+1 425 555 0142"],
            "passwordProfile": {"password": "Secret-123456", "forceChangePasswordNextSignIn": false}
        }))
        .await;
    let r = run(&svc, false).await;
    assert_eq!(r.report.created.len(), 1, "{:?}", r.report);
    let e = db
        .store
        .get_extension_by_m365_id(&id)
        .await
        .unwrap()
        .expect("created");
    let number = e.number.clone();
    assert_eq!(e.outbound_caller_id.as_deref(), Some("+1 425 555 0142"));

    // Renaming mail and UPN keeps the number.
    w.patch_user(
        &id,
        json!({"displayName": "Nora Lind", "surname": "Lind", "mail": format!("nora.lind@{domain}"),
               "userPrincipalName": format!("nora.lind@{domain}")}),
    )
    .await;
    let r = run(&svc, false).await;
    assert_eq!(r.report.updated.len(), 1);
    assert_eq!(
        r.report.updated[0].fields,
        vec!["last_name", "display_name", "email"]
    );
    let e = db
        .store
        .get_extension_by_m365_id(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.number, number);
    assert_eq!(
        e.email.as_deref(),
        Some(format!("nora.lind@{domain}").as_str())
    );

    // A new office phone becomes the caller ID.
    w.patch_user(&id, json!({"businessPhones": ["+1 425 555 0199"]}))
        .await;
    run(&svc, false).await;
    let e = db
        .store
        .get_extension_by_m365_id(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.outbound_caller_id.as_deref(), Some("+1 425 555 0199"));

    // Deleted: disabled at once, not deleted.
    w.delete_user(&id).await;
    let r = run(&svc, false).await;
    assert_eq!(r.report.disabled.len(), 1, "{:?}", r.report);
    let e = db
        .store
        .get_extension_by_m365_id(&id)
        .await
        .unwrap()
        .expect("kept, disabled");
    assert!(!e.enabled && e.disabled_at.is_some());
}

async fn a_locally_deleted_extension_comes_back_at_the_next_run(db: TestDb) {
    let w = world(30).await;
    let svc = w.service(&db.store, settings());
    run(&svc, false).await;
    let before = synced(&db.store).await;
    let (id, victim) = before
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    db.store
        .delete_extension(victim.number.as_str())
        .await
        .unwrap();
    let r = run(&svc, false).await;
    assert_eq!(r.status, SyncStatus::Completed);
    assert_eq!(r.report.created.len(), 1);
    let back = db
        .store
        .get_extension_by_m365_id(&id)
        .await
        .unwrap()
        .expect("it came back");
    assert_eq!(back.display_name, victim.display_name);
    assert_eq!(synced(&db.store).await.len(), before.len());
}

async fn a_dry_run_reports_the_plan_and_writes_nothing(db: TestDb) {
    let w = world(60).await;
    let svc = w.service(&db.store, settings());
    let dry = svc
        .run_now(
            SyncKind::Users,
            RunOptions {
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(dry.status, SyncStatus::DryRun);
    assert!(!dry.report.created.is_empty());
    assert!(
        db.store.list_extensions().await.unwrap().is_empty(),
        "no extension written"
    );
    assert!(
        db.store
            .get_kv(pbx365_sync::CURSOR_KEY)
            .await
            .unwrap()
            .is_none(),
        "no cursor written"
    );
    assert!(
        db.store.list_sync_runs(10).await.unwrap().is_empty(),
        "a dry run is not recorded"
    );
    let real = run(&svc, false).await;
    assert_eq!(
        real.report.created.len(),
        dry.report.created.len(),
        "the dry run predicted the real one"
    );

    // After a change, a dry delta run shows it but leaves the store as it was.
    let some = synced(&db.store).await.into_iter().next().unwrap().0;
    w.patch_user(&some, json!({"jobTitle": "Chief Dry Runner"}))
        .await;
    let before = db.store.list_extensions().await.unwrap();
    let cursor = db.store.get_kv(pbx365_sync::CURSOR_KEY).await.unwrap();
    let dry = svc
        .run_now(
            SyncKind::Users,
            RunOptions {
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(dry.report.updated.len(), 1);
    assert_eq!(db.store.list_extensions().await.unwrap(), before);
    assert_eq!(
        db.store.get_kv(pbx365_sync::CURSOR_KEY).await.unwrap(),
        cursor
    );
    let real = run(&svc, false).await;
    assert_eq!(real.report.updated.len(), 1);
}

on_both!(
    tenant_of_2500_syncs_to_exactly_the_expected_extensions_and_a_second_run_writes_nothing,
    members_of_a_scope_group_of_300_are_the_only_extensions,
    changes_made_in_microsoft_365_reach_the_extensions_in_the_next_delta_round,
    a_locally_deleted_extension_comes_back_at_the_next_run,
    a_dry_run_reports_the_plan_and_writes_nothing,
);
