//! The mass-deletion guard, implausible reads and faults: nothing is ever partly deleted.

use m365_sim::faults::{routes, FaultSpec};
use pbx365_domain::settings::SyncScope;
use pbx365_domain::SyncStatus;
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;
use pbx365_testkit::sync::{run, settings, synced};
use pbx365_testkit::tenant::world;

async fn deleting_60_users_holds_the_run_until_approved_once_and_the_guard_rearms(db: TestDb) {
    let w = world(400).await;
    let svc = w.service(&db.store, settings());
    let first = run(&svc, false).await;
    assert_eq!(first.status, SyncStatus::Completed);
    let before = db.store.list_extensions().await.unwrap();
    let ids: Vec<String> = synced(&db.store).await.keys().cloned().collect();
    for id in ids.iter().take(60) {
        w.delete_user(id).await;
    }
    let held = run(&svc, false).await;
    assert_eq!(held.status, SyncStatus::Held, "{:?}", held.report.errors);
    assert_eq!(
        held.report.disabled.len(),
        60,
        "the report lists what would be disabled"
    );
    assert!(held.report.errors[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("held"));
    assert_eq!(
        db.store.list_extensions().await.unwrap(),
        before,
        "nothing applied"
    );
    // Held again while nobody approves.
    assert_eq!(run(&svc, false).await.status, SyncStatus::Held);
    assert_eq!(db.store.list_extensions().await.unwrap(), before);

    svc.approve_held_run(&held.id).await.unwrap();
    let applied = run(&svc, false).await;
    assert_eq!(
        applied.status,
        SyncStatus::Completed,
        "{:?}",
        applied.report.errors
    );
    assert_eq!(applied.report.disabled.len(), 60);
    let disabled = db
        .store
        .list_extensions()
        .await
        .unwrap()
        .iter()
        .filter(|e| !e.enabled)
        .count();
    assert_eq!(disabled, 60);

    // The approval was one-shot: the next mass delete is held again.
    for id in ids.iter().skip(60).take(60) {
        w.delete_user(id).await;
    }
    let again = run(&svc, false).await;
    assert_eq!(again.status, SyncStatus::Held);
    assert_eq!(
        db.store
            .list_extensions()
            .await
            .unwrap()
            .iter()
            .filter(|e| !e.enabled)
            .count(),
        60
    );
}

async fn a_scope_group_that_reads_empty_is_not_everyone_leaving(db: TestDb) {
    let w = world(120).await;
    let svc = w.service(&db.store, settings());
    run(&svc, false).await;
    let before = db.store.list_extensions().await.unwrap();
    let group_id = w.group_with_members(&[]).await;
    let mut s = settings();
    s.scope = SyncScope::Groups;
    s.scope_ids = vec![group_id.clone()];
    s.max_deletions = 100_000;
    s.max_deletion_percent = 100;
    svc.set_settings(s);
    let r = run(&svc, false).await;
    assert_eq!(
        r.status,
        SyncStatus::Held,
        "errors {:?}, disabled {}, created {}, skipped {}",
        r.report.errors,
        r.report.disabled.len(),
        r.report.created.len(),
        r.report.skipped.len()
    );
    assert!(r.report.errors[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("no users"));
    assert_eq!(db.store.list_extensions().await.unwrap(), before);
}

async fn a_forbidden_read_fails_the_run_with_a_reason_and_deletes_nothing(db: TestDb) {
    let w = world(80).await;
    let svc = w.service(&db.store, settings());
    run(&svc, true).await;
    let before = db.store.list_extensions().await.unwrap();
    w.sim
        .control()
        .set_permissions(&w.reader_client_id, &[], true)
        .await
        .unwrap();
    w.graph.tokens().invalidate().await;
    let r = run(&svc, true).await;
    assert_eq!(r.status, SyncStatus::Failed);
    assert!(!r.report.errors.is_empty());
    assert_eq!(db.store.list_extensions().await.unwrap(), before);
}

async fn an_expired_delta_token_leads_to_a_full_resync_that_still_applies_changes(db: TestDb) {
    let w = world(60).await;
    let svc = w.service(&db.store, settings());
    run(&svc, false).await;
    let some = synced(&db.store).await.into_iter().next().unwrap().0;
    w.patch_user(&some, serde_json::json!({"department": "Expired Tokens"}))
        .await;
    w.sim
        .control()
        .add_fault(&FaultSpec {
            path: routes::USERS_DELTA.into(),
            expire_delta_tokens: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    let r = run(&svc, false).await;
    assert_eq!(r.status, SyncStatus::Completed, "{:?}", r.report.errors);
    let e = db
        .store
        .get_extension_by_m365_id(&some)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.department.as_deref(), Some("Expired Tokens"));
    assert!(r.report.disabled.is_empty());
}

async fn a_429_storm_is_ridden_out_and_the_run_completes(db: TestDb) {
    let w = world(300).await;
    w.sim
        .control()
        .add_fault(&FaultSpec {
            path: routes::GRAPH.into(),
            status: Some(429),
            retry_after: Some(0.05),
            every: Some(3),
            count: Some(40),
            ..Default::default()
        })
        .await
        .unwrap();
    let svc = w.service(&db.store, settings());
    let r = run(&svc, false).await;
    assert_eq!(r.status, SyncStatus::Completed, "{:?}", r.report.errors);
    let users = w.users().await;
    let members = users
        .iter()
        .filter(|u| u.user_type.as_deref() == Some("Member") && u.account_enabled == Some(true))
        .count();
    assert_eq!(synced(&db.store).await.len(), members);
}

async fn persistent_503s_fail_the_run_clearly_and_never_delete_partly(db: TestDb) {
    let w = world(200).await;
    let svc = w.service(&db.store, settings());
    run(&svc, false).await;
    let before = db.store.list_extensions().await.unwrap();
    // Some users leave, then Graph breaks in the middle of the next full round.
    let ids: Vec<String> = synced(&db.store).await.keys().cloned().collect();
    for id in ids.iter().take(5) {
        w.delete_user(id).await;
    }
    w.sim
        .control()
        .add_fault(&FaultSpec {
            path: routes::USERS_DELTA.into(),
            status: Some(503),
            retry_after: Some(0.01),
            ..Default::default()
        })
        .await
        .unwrap();
    let r = run(&svc, true).await;
    assert_eq!(r.status, SyncStatus::Failed);
    let why = r.report.errors[0].reason.clone().unwrap();
    assert!(
        why.contains("service problem") || why.contains("503"),
        "{why}"
    );
    assert_eq!(
        db.store.list_extensions().await.unwrap(),
        before,
        "no partial delete"
    );
    w.sim.control().clear_faults().await.unwrap();
    let r = run(&svc, false).await;
    assert_eq!(r.status, SyncStatus::Completed, "{:?}", r.report.errors);
    assert_eq!(r.report.disabled.len(), 5);
}

on_both!(
    deleting_60_users_holds_the_run_until_approved_once_and_the_guard_rearms,
    a_scope_group_that_reads_empty_is_not_everyone_leaving,
    a_forbidden_read_fails_the_run_with_a_reason_and_deletes_nothing,
    an_expired_delta_token_leads_to_a_full_resync_that_still_applies_changes,
    a_429_storm_is_ridden_out_and_the_run_completes,
    persistent_503s_fail_the_run_clearly_and_never_delete_partly,
);
