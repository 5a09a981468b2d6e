//! Extensions: CRUD, the sync's field-owned write, photos, ordering, bulk.

use chrono::{TimeZone, Utc};
use pbx365_domain::*;
use pbx365_store::StoreError;
use pbx365_testkit::data::{object_id, put_extensions, synced_extension};
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;

fn anna() -> NewExtension {
    NewExtension {
        first_name: "Anna".into(),
        last_name: "Berg".into(),
        display_name: "Anna Berg".into(),
        email: Some("anna@contoso.com".into()),
        mobile: Some("+49 170 1".into()),
        ..Default::default()
    }
}

async fn created_local_extension_reads_back_enabled_and_available(db: TestDb) {
    let created = db
        .store
        .create_local_extension("100", &anna())
        .await
        .unwrap();
    assert_eq!(created.source, ExtensionSource::Local);
    assert!(created.enabled && !created.is_admin && created.groups.is_empty());
    assert_eq!(created.profile.profile, Profile::Available);
    let read = db.store.get_extension("100").await.unwrap().unwrap();
    assert_eq!(read, created);
    assert_eq!(db.store.list_extensions().await.unwrap(), vec![created]);
    assert!(db.store.get_extension("101").await.unwrap().is_none());
}

async fn creating_a_taken_number_is_a_conflict(db: TestDb) {
    db.store
        .create_local_extension("100", &anna())
        .await
        .unwrap();
    let err = db
        .store
        .create_local_extension("100", &anna())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(err.to_string(), "extension '100' already exists");
}

async fn local_extension_update_replaces_directory_fields(db: TestDb) {
    db.store
        .create_local_extension("100", &anna())
        .await
        .unwrap();
    let changed = NewExtension {
        display_name: "Anna B.".into(),
        department: Some("Support".into()),
        ..anna()
    };
    let updated = db
        .store
        .update_local_extension(
            "100",
            &NewExtension {
                email: None,
                ..changed
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.display_name, "Anna B.");
    assert_eq!(updated.department.as_deref(), Some("Support"));
    assert_eq!(updated.email, None);
    assert_eq!(
        db.store.get_extension("100").await.unwrap().unwrap(),
        updated
    );
    let err = db
        .store
        .update_local_extension("999", &anna())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "extension '999' does not exist");
}

async fn synced_extension_cannot_be_updated_as_local(db: TestDb) {
    put_extensions(&db.store, &[synced_extension("200", &object_id(1))])
        .await
        .unwrap();
    let err = db
        .store
        .update_local_extension("200", &anna())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert_eq!(
        db.store
            .get_extension("200")
            .await
            .unwrap()
            .unwrap()
            .first_name,
        "Anna"
    );
}

async fn a_written_extension_round_trips_every_field(db: TestDb) {
    let mut e = synced_extension("200", &object_id(7));
    e.enabled = false;
    e.is_admin = true;
    e.disabled_at = Some(
        Utc.with_ymd_and_hms(2026, 2, 3, 4, 5, 6).unwrap()
            + chrono::Duration::nanoseconds(123_456_789),
    );
    e.photo = Some(PhotoRef {
        etag: "W/\"1\"".into(),
        content_type: "image/jpeg".into(),
    });
    e.profile = ProfileState {
        profile: Profile::Dnd,
        source: ProfileSource::Calendar,
        until: Some(Utc.with_ymd_and_hms(2026, 2, 3, 18, 0, 0).unwrap()),
        return_to: Some(Profile::Lunch),
    };
    db.store.create_group("Sales", "").await.unwrap();
    e.groups = vec![AZURE_AD_GROUP.into(), "Sales".into()];
    put_extensions(&db.store, std::slice::from_ref(&e))
        .await
        .unwrap();
    assert_eq!(db.store.get_extension("200").await.unwrap().unwrap(), e);
    assert_eq!(
        db.store
            .get_extension_by_m365_id(&object_id(7))
            .await
            .unwrap()
            .unwrap(),
        e
    );
    assert!(db
        .store
        .get_extension_by_m365_id(&object_id(8))
        .await
        .unwrap()
        .is_none());
}

async fn the_sync_write_adds_azure_ad_and_keeps_other_groups(db: TestDb) {
    let mut e = synced_extension("200", &object_id(1));
    e.groups = vec!["Sales".into(), AZURE_AD_GROUP.into()];
    put_extensions(&db.store, std::slice::from_ref(&e))
        .await
        .unwrap();
    let read = db.store.get_extension("200").await.unwrap().unwrap();
    assert_eq!(
        read.groups,
        vec![AZURE_AD_GROUP.to_string(), "Sales".to_string()],
        "sorted by name"
    );
    // The sync owns only the "Azure AD" membership: its write leaves the others.
    e.groups = vec![];
    db.store
        .apply_extension_ops(&[pbx365_store::ExtensionOp::Sync(e)], None)
        .await
        .unwrap();
    assert_eq!(
        db.store.get_extension("200").await.unwrap().unwrap().groups,
        vec![AZURE_AD_GROUP.to_string(), "Sales".to_string()]
    );
    let groups = db.store.list_groups().await.unwrap();
    let names: Vec<_> = groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, vec![AZURE_AD_GROUP, "Sales"]);
    assert_eq!(groups[1].members, vec!["200".to_string()]);
}

async fn two_numbers_cannot_share_a_microsoft_object_id(db: TestDb) {
    put_extensions(&db.store, &[synced_extension("200", &object_id(1))])
        .await
        .unwrap();
    let err = put_extensions(&db.store, &[synced_extension("201", &object_id(1))])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(db.store.get_extension("201").await.unwrap().is_none());
}

async fn deleting_an_extension_removes_photo_groups_and_personal_phonebook(db: TestDb) {
    put_extensions(&db.store, &[synced_extension("200", &object_id(1))])
        .await
        .unwrap();
    db.store
        .put_photo("200", "e1", "image/png", &[0x89, b'P', b'N', b'G'])
        .await
        .unwrap();
    let owner = PhonebookOwner::Personal("200".into());
    let entry = PhonebookEntry {
        id: String::new(),
        owner: owner.clone(),
        m365_id: None,
        job_title: None,
        mailbox: None,
        no_number: false,
        display_name: "Mum".into(),
        first_name: String::new(),
        last_name: String::new(),
        company: None,
        emails: vec![],
        numbers: vec![PhoneNumber::new(PhoneKind::Home, "030 1234567", "DE")],
    };
    db.store.create_phonebook_entry(&entry).await.unwrap();

    db.store.delete_extension("200").await.unwrap();
    assert!(db.store.get_extension("200").await.unwrap().is_none());
    assert!(db.store.get_photo("200").await.unwrap().is_none());
    assert!(db.store.list_phonebook(&owner).await.unwrap().is_empty());
    let azure = db
        .store
        .list_groups()
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.name == AZURE_AD_GROUP)
        .unwrap();
    assert!(azure.members.is_empty());
    let err = db.store.delete_extension("200").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
    // The number is free again.
    db.store
        .create_local_extension("200", &anna())
        .await
        .unwrap();
}

async fn admin_flag_and_profile_are_saved(db: TestDb) {
    db.store
        .create_local_extension("100", &anna())
        .await
        .unwrap();
    db.store.set_extension_admin("100", true).await.unwrap();
    let state = ProfileState {
        profile: Profile::BusinessTrip,
        ..Default::default()
    };
    db.store.set_profile("100", &state).await.unwrap();
    let e = db.store.get_extension("100").await.unwrap().unwrap();
    assert!(e.is_admin);
    assert_eq!(e.profile, state);
    assert!(matches!(
        db.store.set_extension_admin("1", true).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        db.store.set_profile("1", &state).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn photo_bytes_round_trip_and_can_be_removed(db: TestDb) {
    db.store
        .create_local_extension("100", &anna())
        .await
        .unwrap();
    assert!(db.store.get_photo("100").await.unwrap().is_none());
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    db.store
        .put_photo("100", "etag-1", "image/jpeg", &bytes)
        .await
        .unwrap();
    assert_eq!(
        db.store.get_photo("100").await.unwrap(),
        Some(("image/jpeg".to_string(), bytes.clone()))
    );
    let e = db.store.get_extension("100").await.unwrap().unwrap();
    assert_eq!(
        e.photo,
        Some(PhotoRef {
            etag: "etag-1".into(),
            content_type: "image/jpeg".into()
        })
    );
    db.store
        .put_photo("100", "etag-2", "image/png", b"png")
        .await
        .unwrap();
    assert_eq!(
        db.store.get_photo("100").await.unwrap(),
        Some(("image/png".to_string(), b"png".to_vec()))
    );
    db.store.delete_photo("100").await.unwrap();
    assert!(db.store.get_photo("100").await.unwrap().is_none());
    assert_eq!(
        db.store.get_extension("100").await.unwrap().unwrap().photo,
        None
    );
    assert!(matches!(
        db.store.put_photo("1", "e", "image/png", b"x").await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn photos_written_together_are_all_stored_or_none_when_one_number_is_unknown(db: TestDb) {
    db.store
        .create_local_extension("100", &anna())
        .await
        .unwrap();
    db.store
        .create_local_extension("101", &anna())
        .await
        .unwrap();
    db.store
        .put_photos(&[
            ("100", "e100", "image/jpeg", b"jpeg".as_slice()),
            ("101", "e101", "image/png", b"png".as_slice()),
        ])
        .await
        .unwrap();
    assert_eq!(
        db.store.get_photo("100").await.unwrap(),
        Some(("image/jpeg".to_string(), b"jpeg".to_vec()))
    );
    assert_eq!(
        db.store.get_extension("101").await.unwrap().unwrap().photo,
        Some(PhotoRef {
            etag: "e101".into(),
            content_type: "image/png".into()
        })
    );
    let err = db
        .store
        .put_photos(&[
            ("100", "e2", "image/png", b"new".as_slice()),
            ("999", "e3", "image/png", b"x".as_slice()),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
    assert_eq!(
        db.store.get_photo("100").await.unwrap(),
        Some(("image/jpeg".to_string(), b"jpeg".to_vec()))
    );
}

async fn the_sync_write_keeps_the_stored_photo(db: TestDb) {
    let mut e = synced_extension("200", &object_id(1));
    put_extensions(&db.store, std::slice::from_ref(&e))
        .await
        .unwrap();
    db.store
        .put_photo("200", "e1", "image/jpeg", b"jpeg")
        .await
        .unwrap();
    // The photo is the photo writer's: a sync write without one leaves it.
    e.display_name = "Renamed".into();
    e.photo = None;
    put_extensions(&db.store, std::slice::from_ref(&e))
        .await
        .unwrap();
    let read = db.store.get_extension("200").await.unwrap().unwrap();
    assert_eq!(read.display_name, "Renamed");
    assert_eq!(read.photo.map(|p| p.etag).as_deref(), Some("e1"));
    assert!(db.store.get_photo("200").await.unwrap().is_some());
}

async fn extensions_are_listed_in_numeric_order(db: TestDb) {
    for n in ["1000", "99", "100", "101"] {
        db.store.create_local_extension(n, &anna()).await.unwrap();
    }
    let numbers: Vec<String> = db
        .store
        .list_extensions()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.number.to_string())
        .collect();
    assert_eq!(numbers, ["99", "100", "101", "1000"]);
    assert_eq!(db.store.extension_numbers().await.unwrap().len(), 4);
}

async fn a_bulk_write_of_10000_extensions_is_all_readable(db: TestDb) {
    let exts: Vec<Extension> = (0..10_000u32)
        .map(|i| synced_extension(&(10_000 + i).to_string(), &object_id(i)))
        .collect();
    put_extensions(&db.store, &exts).await.unwrap();
    let listed = db.store.list_extensions().await.unwrap();
    assert_eq!(listed.len(), 10_000);
    assert_eq!(listed[0], exts[0]);
    assert_eq!(listed[9_999], exts[9_999]);
    assert_eq!(db.store.m365_extension_ids().await.unwrap().len(), 10_000);
    let azure = db
        .store
        .list_groups()
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.name == AZURE_AD_GROUP)
        .unwrap();
    assert_eq!(azure.members.len(), 10_000);

    // Writing them again updates rows instead of adding them.
    let renamed: Vec<Extension> = exts
        .iter()
        .map(|e| Extension {
            display_name: format!("{} (new)", e.display_name),
            ..e.clone()
        })
        .collect();
    put_extensions(&db.store, &renamed).await.unwrap();
    let listed = db.store.list_extensions().await.unwrap();
    assert_eq!(listed.len(), 10_000);
    assert!(listed.iter().all(|e| e.display_name.ends_with("(new)")));
}

async fn concurrent_writers_all_succeed(db: TestDb) {
    let tasks: Vec<_> = (0..16u32)
        .map(|i| {
            let store = db.store.clone();
            tokio::spawn(async move {
                let number = (500 + i).to_string();
                store.create_local_extension(&number, &anna()).await?;
                let ops = [pbx365_store::ExtensionOp::Sync(synced_extension(
                    &(600 + i).to_string(),
                    &object_id(i),
                ))];
                store
                    .apply_extension_ops(&ops, Some((&format!("cursor:{i}"), "x")))
                    .await?;
                store.add_group_member(AZURE_AD_GROUP, &number).await?;
                store
                    .set_profile(
                        &number,
                        &ProfileState {
                            profile: Profile::Away,
                            ..Default::default()
                        },
                    )
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(db.store.list_extensions().await.unwrap().len(), 32);
}

on_both!(
    concurrent_writers_all_succeed,
    created_local_extension_reads_back_enabled_and_available,
    creating_a_taken_number_is_a_conflict,
    local_extension_update_replaces_directory_fields,
    synced_extension_cannot_be_updated_as_local,
    a_written_extension_round_trips_every_field,
    the_sync_write_adds_azure_ad_and_keeps_other_groups,
    two_numbers_cannot_share_a_microsoft_object_id,
    deleting_an_extension_removes_photo_groups_and_personal_phonebook,
    admin_flag_and_profile_are_saved,
    photo_bytes_round_trip_and_can_be_removed,
    photos_written_together_are_all_stored_or_none_when_one_number_is_unknown,
    the_sync_write_keeps_the_stored_photo,
    extensions_are_listed_in_numeric_order,
    a_bulk_write_of_10000_extensions_is_all_readable,
);
