//! Caller-name lookup reads through indexes (issue 14: O(log n), not a scan): the number of a
//! phonebook and the dial forms of extensions' mobile and caller-ID numbers (migration 0011).

use pbx365_domain::{NewExtension, PhoneKind, PhoneNumber, PhonebookEntry, PhonebookOwner};
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;
use sqlx::Row;

fn entry(owner: PhonebookOwner, name: &str, e164: &str) -> PhonebookEntry {
    PhonebookEntry {
        id: String::new(),
        owner,
        m365_id: None,
        display_name: name.into(),
        first_name: String::new(),
        last_name: String::new(),
        company: None,
        job_title: None,
        mailbox: None,
        no_number: false,
        emails: vec![],
        numbers: vec![PhoneNumber {
            kind: PhoneKind::Home,
            raw: e164.into(),
            e164: Some(e164.into()),
        }],
    }
}

/// The plan the database chooses for `sql` (seq scans discouraged on PostgreSQL, whose planner
/// prefers them on tiny tables).
async fn plan(db: &TestDb, sql: &str) -> String {
    let mut conn = db.store.pool().acquire().await.unwrap();
    if db.url.starts_with("postgres") {
        sqlx::query("SET enable_seqscan = off")
            .execute(&mut *conn)
            .await
            .unwrap();
        let rows = sqlx::query(&format!("EXPLAIN {sql}"))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        rows.iter()
            .map(|r| r.get::<String, _>(0))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        rows.iter()
            .map(|r| r.get::<String, _>("detail"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

on_both!(numbers_are_found_per_phonebook_by_index => numbers_by_index_body);
async fn numbers_by_index_body(db: TestDb) {
    let s = &db.store;
    for n in ["201", "202"] {
        s.create_local_extension(
            n,
            &NewExtension {
                display_name: format!("Ext {n}"),
                mobile: Some(format!("+49 (170) {n}-0000")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    let company = s
        .create_phonebook_entry(&entry(PhonebookOwner::Company, "Company", "+4930123"))
        .await
        .unwrap();
    let mine = s
        .create_phonebook_entry(&entry(
            PhonebookOwner::Personal("201".into()),
            "Mine",
            "+4930123",
        ))
        .await
        .unwrap();
    let found = |owner| async move { s.phonebook_entry_by_e164(&owner, "+4930123").await.unwrap() };
    assert_eq!(
        found(PhonebookOwner::Personal("201".into()))
            .await
            .unwrap()
            .0
            .id,
        mine.id
    );
    assert_eq!(
        found(PhonebookOwner::Company).await.unwrap().0.id,
        company.id
    );
    assert!(found(PhonebookOwner::Personal("202".into()))
        .await
        .is_none());
    // An update rewrites the numbers with their phonebook.
    let mut moved = company.clone();
    moved.numbers[0].e164 = Some("+4930999".into());
    s.update_phonebook_entry(&moved).await.unwrap();
    assert!(found(PhonebookOwner::Company).await.is_none());

    let hits = s
        .extensions_by_dial_forms(&["+491702010000".into(), "01702020000".into()])
        .await
        .unwrap();
    assert_eq!(
        hits.iter().map(|x| x.number.as_str()).collect::<Vec<_>>(),
        ["201"]
    );

    let p = plan(&db, "SELECT entry_id FROM phonebook_numbers WHERE e164 = '+4930123' AND book = '' ORDER BY entry_id LIMIT 1").await;
    assert!(p.contains("phonebook_numbers_e164_book"), "{p}");
    let dial = "REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(mobile, ' ', ''), '-', ''), '(', ''), ')', ''), '/', ''), '.', '')";
    let p = plan(
        &db,
        &format!("SELECT number FROM extensions WHERE {dial} IN ('+491702010000', '01702010000')"),
    )
    .await;
    assert!(p.contains("extensions_mobile_dial"), "{p}");
}

on_both!(numbers_written_by_contact_sync_are_found_by_lookup => contact_sync_numbers_body);
/// Contact sync writes its entries' numbers with its own statement: they must carry their
/// phonebook too, or a synced contact's call shows no name.
async fn contact_sync_numbers_body(db: TestDb) {
    let s = &db.store;
    s.create_local_extension("201", &NewExtension::default())
        .await
        .unwrap();
    let mut writes = Vec::new();
    for (id, owner, mailbox) in [
        (
            "p1",
            PhonebookOwner::Personal("201".into()),
            "alice@example.com",
        ),
        ("c1", PhonebookOwner::Company, "shared@example.com"),
    ] {
        let mut e = entry(owner, id, "+4930555");
        e.id = id.into();
        e.m365_id = Some(format!("m365-{id}"));
        writes.push(pbx365_store::ContactWrite::Put {
            mailbox: mailbox.into(),
            folder: "contacts".into(),
            entry: e,
            known: false,
        });
    }
    s.apply_contact_writes(&writes, ("cursor:test", "x"))
        .await
        .unwrap();
    let personal = s
        .phonebook_entry_by_e164(&PhonebookOwner::Personal("201".into()), "+4930555")
        .await
        .unwrap();
    assert_eq!(personal.map(|(e, _)| e.id), Some("p1".to_string()));
    let company = s
        .phonebook_entry_by_e164(&PhonebookOwner::Company, "+4930555")
        .await
        .unwrap();
    assert_eq!(company.map(|(e, _)| e.id), Some("c1".to_string()));
}
