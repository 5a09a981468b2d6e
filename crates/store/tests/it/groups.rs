//! Extension groups.

use pbx365_domain::{NewExtension, AZURE_AD_GROUP};
use pbx365_store::StoreError;
use pbx365_testkit::data::{object_id, put_extensions, synced_extension};
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;

async fn the_azure_ad_group_is_built_in_and_cannot_be_deleted(db: TestDb) {
    let groups = db.store.list_groups().await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].name, AZURE_AD_GROUP);
    assert!(groups[0].builtin);
    let err = db.store.delete_group(AZURE_AD_GROUP).await.unwrap_err();
    assert!(matches!(err, StoreError::BuiltIn { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "extension group 'Azure AD' is built in and cannot be deleted"
    );
}

async fn groups_are_created_filled_emptied_and_deleted(db: TestDb) {
    let local = NewExtension {
        display_name: "Reception".into(),
        ..Default::default()
    };
    db.store
        .create_local_extension("100", &local)
        .await
        .unwrap();
    put_extensions(&db.store, &[synced_extension("200", &object_id(1))])
        .await
        .unwrap();
    let g = db.store.create_group("Sales", "Sales team").await.unwrap();
    assert!(!g.builtin && g.members.is_empty());
    let err = db.store.create_group("Sales", "again").await.unwrap_err();
    assert_eq!(err.to_string(), "extension group 'Sales' already exists");

    db.store.add_group_member("Sales", "200").await.unwrap();
    db.store.add_group_member("Sales", "100").await.unwrap();
    db.store.add_group_member("Sales", "100").await.unwrap(); // twice is fine
    let sales = db.store.get_group("Sales").await.unwrap().unwrap();
    assert_eq!(sales.members, vec!["100".to_string(), "200".to_string()]);
    assert_eq!(
        db.store.get_extension("100").await.unwrap().unwrap().groups,
        vec!["Sales".to_string()]
    );

    db.store.remove_group_member("Sales", "200").await.unwrap();
    assert_eq!(
        db.store.get_extension("200").await.unwrap().unwrap().groups,
        vec![AZURE_AD_GROUP.to_string()]
    );

    db.store.delete_group("Sales").await.unwrap();
    assert!(db.store.get_group("Sales").await.unwrap().is_none());
    assert!(db
        .store
        .get_extension("100")
        .await
        .unwrap()
        .unwrap()
        .groups
        .is_empty());
}

async fn membership_of_unknown_groups_or_extensions_is_not_found(db: TestDb) {
    db.store.create_group("Sales", "").await.unwrap();
    let err = db.store.add_group_member("Nope", "100").await.unwrap_err();
    assert_eq!(err.to_string(), "extension group 'Nope' does not exist");
    let err = db.store.add_group_member("Sales", "100").await.unwrap_err();
    assert_eq!(err.to_string(), "extension '100' does not exist");
    assert!(matches!(
        db.store.remove_group_member("Nope", "100").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        db.store.delete_group("Nope").await,
        Err(StoreError::NotFound { .. })
    ));
}

on_both!(
    the_azure_ad_group_is_built_in_and_cannot_be_deleted,
    groups_are_created_filled_emptied_and_deleted,
    membership_of_unknown_groups_or_extensions_is_not_found,
);
