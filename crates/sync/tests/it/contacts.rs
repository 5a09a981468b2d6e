//! Contact sync against the sim (SPEC §5, issue 14): personal contacts with child folders ->
//! personal phonebooks, shared mailboxes -> the company phonebook, edits and deletes in Outlook
//! reflected by the next round, a blocked mailbox reported without loss, 10,000 contacts paged,
//! non-Latin names and national numbers normalised, the standard edition refusing.

use m365_sim::faults::FaultSpec;
use m365_sim::SimConfig;
use pbx365_domain::settings::{ContactSettings, Edition};
use pbx365_domain::{PhonebookEntry, PhonebookOwner, SyncKind, SyncStatus};
use pbx365_store::{Store, StoreError};
use pbx365_sync::contacts::{ContactsJob, NEEDS_PRO};
use pbx365_sync::{RunOptions, SyncJob};
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;
use pbx365_testkit::sync::{run, settings, synced};
use pbx365_testkit::tenant::{world_with, World};
use serde_json::{json, Value};
use std::sync::Arc;

pub(crate) const ANN: &str = "ann@contoso.example";
pub(crate) const ANN_ID: &str = "0c6f8a2e-0000-4000-8000-00000000a001";
pub(crate) const RECEPTION: &str = "reception@contoso.example";
pub(crate) const SALES: &str = "sales@contoso.example";
const SALES_ID: &str = "0c6f8a2e-0000-4000-8000-00000000a003";

fn user(id: &str, upn: &str, name: &str, enabled: bool) -> Value {
    json!({"id": id, "displayName": name, "userPrincipalName": upn, "mail": upn,
           "accountEnabled": enabled, "userType": "Member"})
}

/// Ann (a member with personal contacts in her default folder and a child folder) and two shared
/// mailboxes (disabled accounts, as shared mailboxes are) with `shared` contacts each.
pub(crate) async fn tenant(shared: usize) -> World {
    let shared_contacts = |prefix: &str| -> Vec<Value> {
        (0..shared)
            .map(|i| {
                json!({"id": format!("{prefix}{i:05}"), "displayName": format!("{prefix} contact {i}"),
                       "businessPhones": [format!("+1 425 555 {:04}", i % 10_000)]})
            })
            .collect()
    };
    let seed = json!({
        "users": [
            user(ANN_ID, ANN, "Ann Example", true),
            user("0c6f8a2e-0000-4000-8000-00000000a002", RECEPTION, "Reception", false),
            user(SALES_ID, SALES, "Sales", false),
        ],
        "contacts": {
            ANN: [
                {"id": "jg", "displayName": "Jürgen Groß", "givenName": "Jürgen", "surname": "Groß",
                 "companyName": "Groß & Söhne", "jobTitle": "Einkauf",
                 "businessPhones": ["030 1234567"], "mobilePhone": "0151 23456789"},
                {"id": "yt", "displayName": "山田 太郎", "givenName": "太郎", "surname": "山田",
                 "businessPhones": ["+81 3-1234-5678"]},
                {"id": "oi", "displayName": "Ольга Иванова", "homePhones": ["0033 1 23 45 67 89"]},
                {"id": "mail-only", "displayName": "Only Mail",
                 "emailAddresses": [{"name": "Only Mail", "address": "only@mail.example"}]},
                {"id": "fr1", "displayName": "Friend O'Brien <&>", "parentFolder": "Friends",
                 "businessPhones": ["+44 20 7946 0958"]},
            ],
            RECEPTION: shared_contacts("r"),
            SALES: shared_contacts("s"),
        },
    });
    world_with(SimConfig {
        https: false,
        seed: Some(seed),
        ..SimConfig::default()
    })
    .await
}

fn job(w: &World, store: &Store, edition: Edition, s: ContactSettings) -> ContactsJob {
    ContactsJob::new(
        store.clone(),
        w.graph.clone(),
        Arc::new(move || (edition, s.clone())),
    )
}

pub(crate) fn contact_settings(personal: bool, shared: &[&str], country: &str) -> ContactSettings {
    ContactSettings {
        personal,
        shared_mailboxes: shared.iter().map(|s| s.to_string()).collect(),
        default_country: country.into(),
    }
}

async fn run_job(job: &ContactsJob, store: &Store, full: bool) -> pbx365_domain::SyncRun {
    let opts = RunOptions {
        full,
        ..Default::default()
    };
    let run = job.run_fenced(store, &opts).await.unwrap();
    assert_eq!(run.kind, SyncKind::Contacts);
    run
}

/// Ann's extension, after a user sync.
async fn ann_number(w: &World, store: &Store) -> String {
    let svc = w.service(store, settings());
    let users = run(&svc, false).await;
    assert_eq!(users.status, SyncStatus::Completed, "{:?}", users.report);
    synced(store).await[ANN_ID].number.to_string()
}

pub(crate) fn by_m365(entries: &[PhonebookEntry], id: &str) -> PhonebookEntry {
    entries
        .iter()
        .find(|e| e.m365_id.as_deref() == Some(id))
        .unwrap_or_else(|| panic!("no entry for {id} in {entries:?}"))
        .clone()
}

fn e164s(e: &PhonebookEntry) -> Vec<(String, Option<String>)> {
    e.numbers
        .iter()
        .map(|n| (n.raw.clone(), n.e164.clone()))
        .collect()
}

async fn personal_contacts_with_child_folders_sync_and_follow_edits_and_deletes(db: TestDb) {
    let w = tenant(3).await;
    let number = ann_number(&w, &db.store).await;
    let personal = PhonebookOwner::Personal(number.clone());
    // A local company entry is not the sync's to touch.
    let local = db
        .store
        .create_phonebook_entry(&PhonebookEntry {
            id: String::new(),
            owner: PhonebookOwner::Company,
            m365_id: None,
            job_title: None,
            mailbox: None,
            no_number: false,
            display_name: "Front desk (local)".into(),
            first_name: String::new(),
            last_name: String::new(),
            company: None,
            emails: vec![],
            numbers: vec![],
        })
        .await
        .unwrap();
    let job = job(
        &w,
        &db.store,
        Edition::Pro,
        contact_settings(true, &[RECEPTION], "DE"),
    );
    let first = run_job(&job, &db.store, false).await;
    assert_eq!(first.status, SyncStatus::Completed, "{:?}", first.report);
    assert_eq!(first.report.created.len(), 5 + 3, "{:?}", first.report);

    let book = db.store.list_phonebook(&personal).await.unwrap();
    assert_eq!(book.len(), 5, "default folder and the Friends child folder");
    let jg = by_m365(&book, "jg");
    assert_eq!(
        (
            jg.display_name.as_str(),
            jg.company.as_deref(),
            jg.job_title.as_deref()
        ),
        ("Jürgen Groß", Some("Groß & Söhne"), Some("Einkauf"))
    );
    assert_eq!(
        e164s(&jg),
        vec![
            ("030 1234567".into(), Some("+49301234567".into())),
            ("0151 23456789".into(), Some("+4915123456789".into())),
        ],
        "national numbers as written plus E.164 with the default country"
    );
    assert_eq!(
        e164s(&by_m365(&book, "yt")),
        vec![("+81 3-1234-5678".into(), Some("+81312345678".into()))]
    );
    assert_eq!(by_m365(&book, "yt").display_name, "山田 太郎");
    assert_eq!(
        e164s(&by_m365(&book, "oi")),
        vec![("0033 1 23 45 67 89".into(), Some("+33123456789".into()))],
        "the German international prefix 00 is understood"
    );
    assert_eq!(by_m365(&book, "oi").display_name, "Ольга Иванова");
    let mail_only = by_m365(&book, "mail-only");
    assert!(
        mail_only.no_number && mail_only.numbers.is_empty(),
        "kept, flagged"
    );
    assert_eq!(by_m365(&book, "fr1").display_name, "Friend O'Brien <&>");

    let company = db
        .store
        .list_phonebook(&PhonebookOwner::Company)
        .await
        .unwrap();
    assert_eq!(company.len(), 4, "three synced, one local");
    assert!(company
        .iter()
        .filter(|e| e.m365_id.is_some())
        .all(|e| e.mailbox.as_deref() == Some(RECEPTION)));
    assert!(company.contains(&local));

    // Synced entries are read-only.
    let err = db.store.update_phonebook_entry(&jg).await.unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");

    let again = run_job(&job, &db.store, false).await;
    assert!(again.report.is_noop(), "{:?}", again.report);

    // Edits, deletes and a new contact in a child folder arrive with the next delta round.
    w.update_contact(
        ANN,
        "jg",
        json!({"displayName": "Jürgen Groß", "businessPhones": ["030 7654321"]}),
    )
    .await;
    w.delete_contact(ANN, "oi").await;
    w.delete_contact(RECEPTION, "r00001").await;
    let friends = db
        .store
        .contact_folders()
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.name == "Friends")
        .unwrap()
        .folder;
    let new_id = w
        .create_contact(
            ANN,
            Some(&friends),
            json!({"displayName": "Neu", "mobilePhone": "0170 1234567"}),
        )
        .await;
    let delta = run_job(&job, &db.store, false).await;
    assert_eq!(delta.status, SyncStatus::Completed, "{:?}", delta.report);
    assert_eq!(delta.report.created.len(), 1, "{:?}", delta.report);
    assert_eq!(delta.report.updated.len(), 1, "{:?}", delta.report);
    assert!(delta.report.updated[0]
        .fields
        .contains(&"numbers".to_string()));
    assert_eq!(delta.report.deleted.len(), 2, "{:?}", delta.report);
    let book = db.store.list_phonebook(&personal).await.unwrap();
    assert_eq!(book.len(), 5);
    assert_eq!(
        e164s(&by_m365(&book, "jg"))[0],
        ("030 7654321".into(), Some("+49307654321".into()))
    );
    assert!(book.iter().all(|e| e.m365_id.as_deref() != Some("oi")));
    assert_eq!(
        e164s(&by_m365(&book, &new_id)),
        vec![("0170 1234567".into(), Some("+491701234567".into()))]
    );
    let company = db
        .store
        .list_phonebook(&PhonebookOwner::Company)
        .await
        .unwrap();
    assert_eq!(company.len(), 3);

    // A new folder is found by the next full round (nightly, or --full).
    let colleagues = w.create_contact_folder(ANN, "Colleagues").await;
    w.create_contact(
        ANN,
        Some(&colleagues),
        json!({"displayName": "Kollege", "businessPhones": ["089 123456"]}),
    )
    .await;
    let full = run_job(&job, &db.store, true).await;
    assert_eq!(full.status, SyncStatus::Completed, "{:?}", full.report);
    assert_eq!(full.report.created.len(), 1, "{:?}", full.report);
    assert!(full.report.deleted.is_empty(), "{:?}", full.report);
    assert_eq!(db.store.list_phonebook(&personal).await.unwrap().len(), 6);

    // Another default country normalises national numbers anew (a settings change: full round).
    let us = self::job(
        &w,
        &db.store,
        Edition::Pro,
        contact_settings(true, &[RECEPTION], "US"),
    );
    w.update_contact(
        ANN,
        "jg",
        json!({"displayName": "Jürgen Groß", "businessPhones": ["(425) 555-0100"]}),
    )
    .await;
    let renormalised = run_job(&us, &db.store, false).await;
    assert_eq!(renormalised.status, SyncStatus::Completed);
    let book = db.store.list_phonebook(&personal).await.unwrap();
    assert_eq!(
        e164s(&by_m365(&book, "jg"))[0],
        ("(425) 555-0100".into(), Some("+14255550100".into()))
    );

    // A shared mailbox taken off the list takes its entries along; local ones stay.
    let off = self::job(
        &w,
        &db.store,
        Edition::Pro,
        contact_settings(true, &[], "US"),
    );
    let removed = run_job(&off, &db.store, false).await;
    assert_eq!(
        removed.status,
        SyncStatus::Completed,
        "{:?}",
        removed.report
    );
    let company = db
        .store
        .list_phonebook(&PhonebookOwner::Company)
        .await
        .unwrap();
    assert_eq!(company, vec![local]);
}

async fn a_blocked_mailbox_is_reported_by_name_and_keeps_its_entries(db: TestDb) {
    let w = tenant(20).await;
    let job = job(
        &w,
        &db.store,
        Edition::Pro,
        contact_settings(false, &[RECEPTION, SALES], "US"),
    );
    assert!(job.due(&db.store).await.unwrap(), "never run: due");
    let first = run_job(&job, &db.store, false).await;
    assert_eq!(first.status, SyncStatus::Completed, "{:?}", first.report);
    assert!(
        !job.due(&db.store).await.unwrap(),
        "the background poll waits an hour after a round"
    );
    let before = db
        .store
        .list_phonebook(&PhonebookOwner::Company)
        .await
        .unwrap();
    assert_eq!(before.len(), 40);

    // An application access policy now blocks the sales mailbox (graph-facts §6).
    w.delete_contact(SALES, "s00003").await;
    w.delete_contact(RECEPTION, "r00003").await;
    w.sim
        .control()
        .add_fault(&FaultSpec {
            // By address or by object id (delta links name the mailbox by id).
            path: format!("/v1.0/users/({}|{SALES_ID})/", SALES.replace('.', "\\.")),
            status: Some(403),
            ..Default::default()
        })
        .await
        .unwrap();
    let blocked = run_job(&job, &db.store, false).await;
    assert_eq!(
        blocked.status,
        SyncStatus::Completed,
        "{:?}",
        blocked.report
    );
    assert_eq!(blocked.report.skipped.len(), 1, "{:?}", blocked.report);
    let skipped = &blocked.report.skipped[0];
    assert_eq!(skipped.name.as_deref(), Some(SALES));
    assert!(skipped.reason.as_deref().unwrap().contains(SALES));
    assert_eq!(
        blocked.report.deleted.len(),
        1,
        "the readable mailbox goes on"
    );
    let after = db
        .store
        .list_phonebook(&PhonebookOwner::Company)
        .await
        .unwrap();
    let sales = |v: &[PhonebookEntry]| {
        v.iter()
            .filter(|e| e.mailbox.as_deref() == Some(SALES))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        sales(&after),
        sales(&before),
        "nothing of the blocked mailbox changed"
    );
    assert_eq!(after.len(), 39);

    // Unblocked, it catches up from where it was.
    w.sim.control().clear_faults().await.unwrap();
    let caught_up = run_job(&job, &db.store, false).await;
    assert_eq!(caught_up.report.deleted.len(), 1, "{:?}", caught_up.report);
    assert_eq!(
        db.store
            .list_phonebook(&PhonebookOwner::Company)
            .await
            .unwrap()
            .len(),
        38
    );
}

async fn a_shared_mailbox_of_10000_contacts_pages_correctly(db: TestDb) {
    let w = tenant(10_000).await;
    let job = job(
        &w,
        &db.store,
        Edition::Pro,
        contact_settings(false, &[RECEPTION], "US"),
    );
    let first = run_job(&job, &db.store, false).await;
    assert_eq!(
        first.status,
        SyncStatus::Completed,
        "{:?}",
        first.report.errors
    );
    let status = db.store.contact_mailboxes().await.unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(
        (status[0].mailbox.as_str(), status[0].entries),
        (RECEPTION, 10_000)
    );
    assert!(status[0].last_sync.is_some());
    let company = db
        .store
        .list_phonebook(&PhonebookOwner::Company)
        .await
        .unwrap();
    assert_eq!(company.len(), 10_000);
    assert_eq!(
        e164s(&by_m365(&company, "r09999")),
        vec![("+1 425 555 9999".into(), Some("+14255559999".into()))]
    );
    for id in ["r00000", "r05000", "r09999"] {
        w.delete_contact(RECEPTION, id).await;
    }
    let delta = run_job(&job, &db.store, false).await;
    assert_eq!(delta.report.deleted.len(), 3, "{:?}", delta.report);
    assert_eq!(
        db.store.contact_mailboxes().await.unwrap()[0].entries,
        9_997
    );
}

async fn a_child_folder_created_since_the_full_round_comes_in_with_a_delta_round(db: TestDb) {
    let w = tenant(0).await;
    let number = ann_number(&w, &db.store).await;
    // Every polled round reads the folder trees (the default spreads them over four hours).
    let job = job(
        &w,
        &db.store,
        Edition::Pro,
        contact_settings(true, &[], "DE"),
    )
    .trees_every(1);
    let first = run_job(&job, &db.store, true).await;
    assert_eq!(first.status, SyncStatus::Completed, "{:?}", first.report);
    let family = w.create_contact_folder(ANN, "Family").await;
    w.create_contact(
        ANN,
        Some(&family),
        json!({"displayName": "Family Member", "mobilePhone": "0170 2222222"}),
    )
    .await;
    let delta = run_job(&job, &db.store, false).await;
    assert_eq!(delta.status, SyncStatus::Completed, "{:?}", delta.report);
    assert_eq!(delta.report.created.len(), 1, "{:?}", delta.report);
    let book = db
        .store
        .list_phonebook(&PhonebookOwner::Personal(number))
        .await
        .unwrap();
    assert!(book.iter().any(|e| e.display_name == "Family Member"));
    assert!(db
        .store
        .contact_folders()
        .await
        .unwrap()
        .iter()
        .any(|f| f.folder == family && f.name == "Family"));
    let again = run_job(&job, &db.store, false).await;
    assert!(again.report.is_noop(), "{:?}", again.report);
}

async fn the_standard_edition_refuses_and_runs_nothing(db: TestDb) {
    let w = tenant(3).await;
    let job = job(
        &w,
        &db.store,
        Edition::Standard,
        contact_settings(true, &[RECEPTION], "US"),
    );
    let err = job
        .run_fenced(&db.store, &RunOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains(NEEDS_PRO), "{err}");
    assert!(!job.due(&db.store).await.unwrap(), "never scheduled");
    assert!(db.store.contact_folders().await.unwrap().is_empty());
    assert!(db.store.list_sync_runs(10).await.unwrap().is_empty());
    assert_eq!(w.graph_requests().await, 0, "Microsoft 365 was not asked");
}

on_both!(
    personal_contacts_with_child_folders_sync_and_follow_edits_and_deletes,
    a_blocked_mailbox_is_reported_by_name_and_keeps_its_entries,
    a_shared_mailbox_of_10000_contacts_pages_correctly,
    the_standard_edition_refuses_and_runs_nothing,
    a_child_folder_created_since_the_full_round_comes_in_with_a_delta_round
);
