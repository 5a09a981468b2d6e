//! Company and personal phonebooks; synced entries are read-only.

use pbx365_domain::*;
use pbx365_store::StoreError;
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;

fn entry(owner: PhonebookOwner, name: &str) -> PhonebookEntry {
    PhonebookEntry {
        id: String::new(),
        owner,
        m365_id: None,
        job_title: None,
        mailbox: None,
        no_number: false,
        display_name: name.into(),
        first_name: name.into(),
        last_name: "Example".into(),
        company: Some("Fabrikam".into()),
        emails: vec![format!("{}@fabrikam.com", name.to_lowercase())],
        numbers: vec![
            PhoneNumber::new(PhoneKind::Business, "+1 425 555 0100", "US"),
            PhoneNumber::new(PhoneKind::Mobile, "030 1234567", "DE"),
            PhoneNumber::new(PhoneKind::Other, "ext. 12", "US"),
        ],
    }
}

async fn company_entries_round_trip_with_all_their_numbers_sorted_by_name(db: TestDb) {
    let zoe = db
        .store
        .create_phonebook_entry(&entry(PhonebookOwner::Company, "Zoe"))
        .await
        .unwrap();
    let bob = db
        .store
        .create_phonebook_entry(&entry(PhonebookOwner::Company, "bob"))
        .await
        .unwrap();
    assert!(!zoe.id.is_empty() && zoe.id != bob.id);
    let listed = db
        .store
        .list_phonebook(&PhonebookOwner::Company)
        .await
        .unwrap();
    assert_eq!(listed, vec![bob.clone(), zoe.clone()]);
    assert_eq!(listed[1].numbers.len(), 3);
    assert_eq!(listed[1].numbers[1].e164.as_deref(), Some("+49301234567"));
    assert_eq!(
        db.store
            .find_phonebook_by_e164("+49301234567")
            .await
            .unwrap()
            .len(),
        2
    );

    let mut changed = zoe.clone();
    changed.display_name = "Zoe Example".into();
    changed.numbers.truncate(1);
    let saved = db.store.update_phonebook_entry(&changed).await.unwrap();
    assert_eq!(
        db.store
            .get_phonebook_entry(&zoe.id)
            .await
            .unwrap()
            .unwrap(),
        saved
    );

    db.store
        .delete_phonebook_entry(&PhonebookOwner::Company, &bob.id)
        .await
        .unwrap();
    assert_eq!(
        db.store
            .list_phonebook(&PhonebookOwner::Company)
            .await
            .unwrap(),
        vec![saved]
    );
}

async fn personal_phonebooks_are_separate_and_need_their_extension(db: TestDb) {
    let owner = PhonebookOwner::Personal("100".into());
    let err = db
        .store
        .create_phonebook_entry(&entry(owner.clone(), "Mum"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "extension '100' does not exist");
    db.store
        .create_local_extension(
            "100",
            &NewExtension {
                display_name: "A".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mum = db
        .store
        .create_phonebook_entry(&entry(owner.clone(), "Mum"))
        .await
        .unwrap();
    db.store
        .create_phonebook_entry(&entry(PhonebookOwner::Company, "Front desk"))
        .await
        .unwrap();
    assert_eq!(
        db.store.list_phonebook(&owner).await.unwrap(),
        vec![mum.clone()]
    );
    assert_eq!(
        db.store
            .list_phonebook(&PhonebookOwner::Company)
            .await
            .unwrap()
            .len(),
        1
    );
    // An entry is only changed through its own phonebook.
    let err = db
        .store
        .delete_phonebook_entry(&PhonebookOwner::Company, &mum.id)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let moved = PhonebookEntry {
        owner: PhonebookOwner::Company,
        ..mum.clone()
    };
    assert!(matches!(
        db.store.update_phonebook_entry(&moved).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(db.store.list_phonebook(&owner).await.unwrap(), vec![mum]);
}

async fn synced_entries_are_read_only_and_keep_their_ids(db: TestDb) {
    let company = PhonebookOwner::Company;
    let mut synced = entry(company.clone(), "Contoso Support");
    synced.m365_id = Some("AAMkAD-contact-1".into());
    let first = db
        .store
        .upsert_synced_phonebook_entries(&company, &[synced.clone()])
        .await
        .unwrap();
    assert_eq!(first[0].m365_id.as_deref(), Some("AAMkAD-contact-1"));

    let mut edit = first[0].clone();
    edit.display_name = "Hijacked".into();
    let err = db.store.update_phonebook_entry(&edit).await.unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "phonebook entry 'Contoso Support' comes from Microsoft 365 and is read-only here; change it in Microsoft 365"
    );
    let err = db
        .store
        .delete_phonebook_entry(&company, &first[0].id)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");
    assert_eq!(db.store.list_phonebook(&company).await.unwrap(), first);

    // The sync itself updates in place and deletes.
    synced.display_name = "Contoso Helpdesk".into();
    let second = db
        .store
        .upsert_synced_phonebook_entries(&company, &[synced])
        .await
        .unwrap();
    assert_eq!(second[0].id, first[0].id);
    assert_eq!(db.store.list_phonebook(&company).await.unwrap(), second);
    let n = db
        .store
        .delete_synced_phonebook_entries(&company, &["AAMkAD-contact-1".to_string()])
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(db.store.list_phonebook(&company).await.unwrap().is_empty());
}

on_both!(
    company_entries_round_trip_with_all_their_numbers_sorted_by_name,
    personal_phonebooks_are_separate_and_need_their_extension,
    synced_entries_are_read_only_and_keep_their_ids,
);
