//! `apply_extension_ops`: the sync's atomic batch.

use chrono::{TimeZone, Utc};
use pbx365_store::{ExtensionOp, StoreError};
use pbx365_testkit::data::{object_id, put_extensions, synced_extension};
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;

async fn ops_and_cursor_are_applied_together(db: TestDb) {
    let a = synced_extension("200", &object_id(1));
    let b = synced_extension("201", &object_id(2));
    let c = synced_extension("202", &object_id(3));
    put_extensions(&db.store, std::slice::from_ref(&c))
        .await
        .unwrap();
    let at = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
    let ops = vec![
        ExtensionOp::Sync(a.clone()),
        ExtensionOp::Sync(b.clone()),
        ExtensionOp::Disable {
            number: "201".into(),
            at,
        },
        ExtensionOp::Delete {
            number: "202".into(),
        },
    ];
    db.store
        .apply_extension_ops(&ops, Some(("cursor:users", "https://graph/delta?token=1")))
        .await
        .unwrap();
    assert_eq!(db.store.get_extension("200").await.unwrap().unwrap(), a);
    let disabled = db.store.get_extension("201").await.unwrap().unwrap();
    assert!(!disabled.enabled);
    assert_eq!(disabled.disabled_at, Some(at));
    assert!(db.store.get_extension("202").await.unwrap().is_none());
    assert_eq!(
        db.store.get_kv("cursor:users").await.unwrap().as_deref(),
        Some("https://graph/delta?token=1")
    );

    db.store
        .apply_extension_ops(
            &[ExtensionOp::Enable {
                number: "201".into(),
            }],
            None,
        )
        .await
        .unwrap();
    let enabled = db.store.get_extension("201").await.unwrap().unwrap();
    assert!(enabled.enabled);
    assert_eq!(enabled.disabled_at, None);
    assert_eq!(
        db.store.get_kv("cursor:users").await.unwrap().as_deref(),
        Some("https://graph/delta?token=1")
    );
}

async fn an_op_failing_mid_batch_leaves_nothing_applied_and_the_cursor_unchanged(db: TestDb) {
    let existing = synced_extension("200", &object_id(1));
    put_extensions(&db.store, std::slice::from_ref(&existing))
        .await
        .unwrap();
    db.store.set_kv("cursor:users", "old").await.unwrap();
    let ops = vec![
        ExtensionOp::Sync(synced_extension("300", &object_id(30))),
        ExtensionOp::Disable {
            number: "200".into(),
            at: Utc::now(),
        },
        ExtensionOp::Disable {
            number: "999".into(),
            at: Utc::now(),
        }, // does not exist: fails
        ExtensionOp::Sync(synced_extension("301", &object_id(31))),
    ];
    let err = db
        .store
        .apply_extension_ops(&ops, Some(("cursor:users", "new")))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(db.store.get_extension("300").await.unwrap().is_none());
    assert!(db.store.get_extension("301").await.unwrap().is_none());
    assert_eq!(
        db.store.get_extension("200").await.unwrap().unwrap(),
        existing
    );
    assert_eq!(
        db.store.get_kv("cursor:users").await.unwrap().as_deref(),
        Some("old")
    );
}

async fn a_later_sync_write_of_the_same_number_in_one_batch_wins(db: TestDb) {
    let first = synced_extension("200", &object_id(1));
    let second = pbx365_domain::Extension {
        display_name: "Second".into(),
        ..first.clone()
    };
    db.store
        .apply_extension_ops(
            &[ExtensionOp::Sync(first), ExtensionOp::Sync(second.clone())],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        db.store.get_extension("200").await.unwrap().unwrap(),
        second
    );
}

on_both!(
    ops_and_cursor_are_applied_together,
    an_op_failing_mid_batch_leaves_nothing_applied_and_the_cursor_unchanged,
    a_later_sync_write_of_the_same_number_in_one_batch_wins,
);

async fn the_sync_write_changes_only_its_own_fields_and_never_takes_another_extensions_number(
    db: TestDb,
) {
    let mut mine = synced_extension("300", &object_id(30));
    db.store
        .apply_extension_ops(&[ExtensionOp::Sync(mine.clone())], None)
        .await
        .unwrap();
    // Other writers: the profile writer, an admin, a local group.
    let dnd = pbx365_domain::ProfileState {
        profile: pbx365_domain::Profile::Dnd,
        ..Default::default()
    };
    db.store.set_profile("300", &dnd).await.unwrap();
    db.store.set_extension_admin("300", true).await.unwrap();
    db.store.create_group("Sales", "").await.unwrap();
    db.store.add_group_member("Sales", "300").await.unwrap();
    let local = pbx365_domain::NewExtension {
        first_name: "Front".into(),
        display_name: "Front Desk".into(),
        ..Default::default()
    };
    db.store
        .create_local_extension("301", &local)
        .await
        .unwrap();

    // The sync writes its stale view of 300 (renamed in Microsoft 365) and plans 301 for a newcomer.
    mine.display_name = "Renamed".into();
    let newcomer = synced_extension("301", &object_id(31));
    let err = db
        .store
        .apply_extension_ops(
            &[ExtensionOp::Sync(mine.clone()), ExtensionOp::Sync(newcomer)],
            Some(("cursor:users", "next")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NumberTaken { numbers } if numbers == &["301".to_string()]),
        "{err}"
    );
    assert!(err.to_string().contains("301"), "{err}");
    assert_eq!(
        db.store.get_kv("cursor:users").await.unwrap(),
        None,
        "nothing committed"
    );
    let desk = db.store.get_extension("301").await.unwrap().unwrap();
    assert_eq!(
        desk.display_name, "Front Desk",
        "the local extension is untouched"
    );
    assert_eq!(desk.m365_id, None);

    db.store
        .apply_extension_ops(&[ExtensionOp::Sync(mine)], Some(("cursor:users", "next")))
        .await
        .unwrap();
    let e = db.store.get_extension("300").await.unwrap().unwrap();
    assert_eq!(e.display_name, "Renamed", "the sync's field is written");
    assert_eq!(
        e.profile.profile,
        pbx365_domain::Profile::Dnd,
        "the profile stays"
    );
    assert!(e.is_admin, "the admin flag stays");
    assert!(e.groups.contains(&"Sales".to_string()), "{:?}", e.groups);
    assert!(e
        .groups
        .contains(&pbx365_domain::AZURE_AD_GROUP.to_string()));
}

on_both!(the_sync_write_changes_only_its_own_fields_and_never_takes_another_extensions_number);

async fn the_same_number_twice_in_one_sync_batch_is_written_once_with_its_last_version(db: TestDb) {
    let first = synced_extension("310", &object_id(40));
    let mut second = first.clone();
    second.display_name = "Second Version".into();
    db.store
        .apply_extension_ops(&[ExtensionOp::Sync(first), ExtensionOp::Sync(second)], None)
        .await
        .unwrap();
    let e = db.store.get_extension("310").await.unwrap().unwrap();
    assert_eq!(e.display_name, "Second Version");
}

on_both!(the_same_number_twice_in_one_sync_batch_is_written_once_with_its_last_version);
