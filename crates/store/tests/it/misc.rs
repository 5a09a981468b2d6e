//! Sync runs, key/value, audit log, mail outbox.

use chrono::{Duration, TimeZone, Utc};
use pbx365_domain::*;
use pbx365_store::StoreError;
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;

async fn sync_runs_record_their_report_and_list_newest_first(db: TestDb) {
    let first = db.store.start_sync_run(SyncKind::Users).await.unwrap();
    assert_eq!(first.status, SyncStatus::Running);
    let second = db.store.start_sync_run(SyncKind::Contacts).await.unwrap();
    let report = SyncReport {
        created: vec![ReportItem {
            extension: Some("200".into()),
            m365_id: Some("id".into()),
            ..Default::default()
        }],
        updated: vec![ReportItem {
            extension: Some("201".into()),
            fields: vec!["email".into()],
            ..Default::default()
        }],
        skipped: vec![ReportItem {
            name: Some("Guest".into()),
            reason: Some("guest user".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let finished = db
        .store
        .finish_sync_run(&first.id, SyncStatus::Completed, &report)
        .await
        .unwrap();
    assert_eq!(finished.report, report);
    assert!(finished.finished_at.is_some());
    assert_eq!(
        db.store.get_sync_run(&first.id).await.unwrap(),
        Some(finished.clone())
    );
    let listed = db.store.list_sync_runs(10).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [second.id.as_str(), first.id.as_str()]
    );
    assert_eq!(db.store.list_sync_runs(1).await.unwrap().len(), 1);
    let err = db
        .store
        .finish_sync_run("nope", SyncStatus::Failed, &report)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
}

async fn finished_run_returned_without_reading_back_equals_the_stored_one(db: TestDb) {
    let run = db.store.start_sync_run(SyncKind::Users).await.unwrap();
    let id = run.id.clone();
    let report = SyncReport {
        created: vec![ReportItem {
            extension: Some("200".into()),
            m365_id: Some("id".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let finished = db
        .store
        .finish_sync_run_with(run.clone(), SyncStatus::Completed, report.clone())
        .await
        .unwrap();
    assert_eq!(finished.report, report);
    assert_eq!(finished.status, SyncStatus::Completed);
    assert_eq!(db.store.get_sync_run(&id).await.unwrap(), Some(finished));
    let mut gone = run;
    gone.id = "nope".into();
    let err = db
        .store
        .finish_sync_run_with(gone, SyncStatus::Failed, report)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
}

async fn key_values_are_set_replaced_and_deleted(db: TestDb) {
    assert_eq!(db.store.get_kv("cursor:users").await.unwrap(), None);
    db.store.set_kv("cursor:users", "a").await.unwrap();
    db.store.set_kv("cursor:users", "b").await.unwrap();
    db.store
        .set_kv("setting:sync.poll_minutes", "7")
        .await
        .unwrap();
    assert_eq!(
        db.store.get_kv("cursor:users").await.unwrap().as_deref(),
        Some("b")
    );
    assert_eq!(
        db.store.list_kv("setting:").await.unwrap(),
        vec![("setting:sync.poll_minutes".into(), "7".into())]
    );
    db.store.delete_kv("cursor:users").await.unwrap();
    assert_eq!(db.store.get_kv("cursor:users").await.unwrap(), None);
}

async fn audit_entries_are_listed_newest_first(db: TestDb) {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    for (i, action) in ["extension.create", "extension.update", "group.create"]
        .iter()
        .enumerate()
    {
        let entry = AuditEntry {
            at: t0 + Duration::seconds(i as i64),
            actor: "root".into(),
            action: action.to_string(),
            target: "100".into(),
            detail: String::new(),
        };
        db.store.audit(&entry).await.unwrap();
    }
    let same_time = AuditEntry {
        at: t0 + Duration::seconds(2),
        action: "group.delete".into(),
        ..db.store.list_audit(1).await.unwrap()[0].clone()
    };
    db.store.audit(&same_time).await.unwrap();
    let listed = db.store.list_audit(10).await.unwrap();
    let actions: Vec<_> = listed.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "group.delete",
            "group.create",
            "extension.update",
            "extension.create"
        ]
    );
    assert_eq!(listed[3].at, t0);
}

async fn mail_waits_in_the_outbox_until_due_and_keeps_its_state(db: TestDb) {
    let to = vec![
        "admin@contoso.com".to_string(),
        "ops@contoso.com".to_string(),
    ];
    let mail = db
        .store
        .enqueue_mail(&to, "Sync held", "The sync stopped: 60 deletions.")
        .await
        .unwrap();
    assert_eq!(mail.status, OutboxStatus::Pending);
    let due = db
        .store
        .due_mail(Utc::now() + Duration::seconds(1), 10)
        .await
        .unwrap();
    assert_eq!(due, vec![mail.clone()]);

    let retry = OutboxMail {
        attempts: 1,
        next_attempt_at: Utc::now() + Duration::minutes(5),
        last_error: Some("SMTP 451".into()),
        ..mail.clone()
    };
    db.store.update_mail(&retry).await.unwrap();
    assert!(db.store.due_mail(Utc::now(), 10).await.unwrap().is_empty());
    assert_eq!(
        db.store
            .due_mail(Utc::now() + Duration::minutes(6), 10)
            .await
            .unwrap(),
        vec![retry.clone()]
    );

    let sent = OutboxMail {
        status: OutboxStatus::Sent,
        attempts: 2,
        last_error: None,
        ..retry
    };
    db.store.update_mail(&sent).await.unwrap();
    assert!(db
        .store
        .due_mail(Utc::now() + Duration::days(1), 10)
        .await
        .unwrap()
        .is_empty());
    let second = db.store.enqueue_mail(&to, "Second", "b").await.unwrap();
    assert_eq!(db.store.list_mail(10).await.unwrap(), vec![second, sent]);
    let ghost = OutboxMail {
        id: "nope".into(),
        ..mail
    };
    assert!(matches!(
        db.store.update_mail(&ghost).await,
        Err(StoreError::NotFound { .. })
    ));
}

on_both!(
    sync_runs_record_their_report_and_list_newest_first,
    finished_run_returned_without_reading_back_equals_the_stored_one,
    key_values_are_set_replaced_and_deleted,
    audit_entries_are_listed_newest_first,
    mail_waits_in_the_outbox_until_due_and_keeps_its_state,
);
