//! Stored sync plans: pages with their cursor, hold, and the one-winner claim of an approval.

use pbx365_domain::{ReportItem, SyncKind, SyncReport};
use pbx365_store::{PlanPage, PlanStatus, RoundCommit};
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;

async fn a_held_plan_is_claimed_by_exactly_one_of_many_concurrent_callers(db: TestDb) {
    let s = &db.store;
    let run = s.start_sync_run(SyncKind::Users).await.unwrap();
    let id = s
        .create_sync_plan("users", &run.id, "delta", Some("old-cursor"), "fp")
        .await
        .unwrap();
    let page = PlanPage {
        ops: "[]".into(),
        report: SyncReport {
            disabled: vec![ReportItem {
                extension: Some("4711".into()),
                ..Default::default()
            }],
            ..Default::default()
        },
        wanted: vec!["a".into()],
    };
    s.put_sync_plan_page(&id, 0, &page, Some(("cursor:users", "planning")))
        .await
        .unwrap();
    assert_eq!(
        s.get_kv("cursor:users").await.unwrap().as_deref(),
        Some("planning")
    );
    let commit = RoundCommit {
        set: vec![("cursor:users".into(), "old-cursor".into())],
        ..Default::default()
    };
    s.hold_sync_plan(&id, "delta-link", &commit).await.unwrap();
    let held = s.sync_plan_of_run(&run.id).await.unwrap().unwrap();
    assert_eq!(held.status, PlanStatus::Held);
    assert_eq!(
        (held.pages, held.delta_link.as_deref()),
        (1, Some("delta-link"))
    );
    assert_eq!(
        s.get_kv("cursor:users").await.unwrap().as_deref(),
        Some("old-cursor")
    );
    assert_eq!(s.sync_plan_removals(&id).await.unwrap().disabled.len(), 1);
    assert_eq!(s.sync_plan_page(&id, 0).await.unwrap().unwrap(), page);

    s.set_kv("sync:approved_run", "approval").await.unwrap();
    let tries: Vec<_> = (0..8)
        .map(|_| {
            let (s, id) = (s.clone(), id.clone());
            tokio::spawn(async move {
                s.claim_held_sync_plan(
                    &id,
                    ("sync:approved_run", "approval"),
                    ("cursor:users", "applying"),
                )
                .await
                .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for t in tries {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1, "one winner");
    assert_eq!(
        s.get_sync_plan(&id).await.unwrap().unwrap().status,
        PlanStatus::Applying
    );
    assert!(s.get_kv("sync:approved_run").await.unwrap().is_none());
    assert_eq!(
        s.get_kv("cursor:users").await.unwrap().as_deref(),
        Some("applying")
    );

    // The round's end drops the scope's plans with its cursor in one transaction.
    let end = RoundCommit {
        set: vec![("cursor:users".into(), "delta".into())],
        ..Default::default()
    };
    s.commit_sync_round("users", &end).await.unwrap();
    assert!(s.get_sync_plan(&id).await.unwrap().is_none());
    assert!(s.sync_plan_page(&id, 0).await.unwrap().is_none());
}

on_both!(a_held_plan_is_claimed_by_exactly_one_of_many_concurrent_callers);
