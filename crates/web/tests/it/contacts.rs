//! Settings › Integrations › Microsoft 365 › Contacts over real HTTP against m365-sim (issue 14):
//! a shared mailbox Microsoft 365 does not know is refused with a sentence and not saved; a real
//! one is added, synced into the company phonebook and shown with its entry count; its entries
//! are read-only; a bad default country is refused.

use pbx365_app::phonebook::EntryInput;
use pbx365_app::sync::RunOptions;
use pbx365_app::AppError;
use pbx365_domain::{PhonebookOwner, SyncKind, SyncStatus, ValidationError};
use pbx365_testkit::db::FreshDb;
use pbx365_testkit::on_both;
use pbx365_testkit::tenant::{create_shared_mailbox, delete_contacts};
use pbx365_testkit::web::m365::{consent_round, hidden, prepare, start, text, Browser, Opts};
use serde_json::json;

/// The page's path.
const CONTACTS: &str = "/console/settings/integrations/microsoft365/contacts";

async fn post(b: &Browser, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let csrf = hidden(&b.get(CONTACTS).await.text().await.unwrap(), "csrf");
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend_from_slice(form);
    let res = b
        .http
        .post(format!("{}{path}", b.base))
        .form(&fields)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn shared_mailboxes_are_checked_synced_and_shown(db: FreshDb) {
    let app = start(db, Opts::default()).await;
    let b = Browser::signed_in(&app).await;
    prepare(&app, &b).await;
    let page = consent_round(&app, &b, true).await;
    assert!(page.contains("all five permissions are granted"), "{page}");

    // A shared mailbox with three contacts.
    let contacts: Vec<_> = ["Hausmeister", "Küche & Kantine", "受付"]
        .iter()
        .map(|n| json!({"displayName": n, "businessPhones": ["030 1234567"]}))
        .collect();
    create_shared_mailbox(&app.sim, "reception@contoso.example", &contacts).await;

    let html = b.get(CONTACTS).await.text().await.unwrap();
    assert!(
        html.contains("id=\"add-mailbox\"") && html.contains("id=\"nav-contacts\""),
        "{html}"
    );
    assert!(text(&html).contains("No shared mailbox yet."), "{html}");

    let add = format!("{CONTACTS}/mailboxes");
    let (status, html) = post(&b, &add, &[("address", "nobody@contoso.example")]).await;
    assert_eq!(status, 422, "the page is shown again");
    assert!(
        text(&html).contains("The mailbox nobody@contoso.example does not exist in Microsoft 365"),
        "{html}"
    );
    assert!(app
        .state
        .app
        .settings()
        .contacts
        .shared_mailboxes
        .is_empty());

    let (status, _) = post(&b, CONTACTS, &[("default_country", "XX")]).await;
    assert_eq!(status, 422, "an unknown country is refused");
    let (status, _) = post(&b, CONTACTS, &[("default_country", "de")]).await;
    assert_eq!(status, 303);
    assert_eq!(app.state.app.settings().contacts.default_country, "DE");

    let (status, html) = post(&b, &add, &[("address", "Reception@contoso.example")]).await;
    assert_eq!(status, 303, "added: {}", text(&html));
    let html = b.get(CONTACTS).await.text().await.unwrap();
    assert!(
        text(&html).contains("reception@contoso.example was added"),
        "{html}"
    );
    assert!(text(&html).contains("not yet"), "{html}");

    let run = app
        .state
        .app
        .run_sync(None, SyncKind::Contacts, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(run.status, SyncStatus::Completed, "{:?}", run.report);
    let company = app
        .state
        .app
        .phonebook(&PhonebookOwner::Company)
        .await
        .unwrap();
    assert_eq!(company.len(), 3, "the reception mailbox's contacts");
    let html = b.get(CONTACTS).await.text().await.unwrap();
    assert!(
        html.contains("<td>reception@contoso.example</td><td>3</td>"),
        "entries and last sync are shown: {html}"
    );
    assert!(!text(&html).contains("not yet"), "{html}");

    // Synced entries are read-only (the API answers 409 with this sentence).
    let err = app
        .state
        .app
        .update_phonebook_entry(
            "admin",
            PhonebookOwner::Company,
            &company[0].id,
            EntryInput {
                display_name: "Changed".into(),
                first_name: String::new(),
                last_name: String::new(),
                company: None,
                emails: vec![],
                numbers: vec![],
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AppError::Validation(ValidationError::ReadOnlySynced(_))
        ),
        "{err:?}"
    );

    let (status, _) = post(
        &b,
        &format!("{CONTACTS}/mailboxes/remove"),
        &[("address", "reception@contoso.example")],
    )
    .await;
    assert_eq!(status, 303);
    assert!(app
        .state
        .app
        .settings()
        .contacts
        .shared_mailboxes
        .is_empty());
}

async fn a_held_contact_round_is_shown_with_what_approving_applies_and_approved(db: FreshDb) {
    let app = start(db, Opts::default()).await;
    let b = Browser::signed_in(&app).await;
    prepare(&app, &b).await;
    consent_round(&app, &b, true).await;
    const SHARED: &str = "reception@contoso.example";
    let contacts: Vec<_> = (0..2_200)
        .map(|i| json!({"displayName": format!("Contact {i:04}"), "businessPhones": [format!("030 {i:07}")]}))
        .collect();
    create_shared_mailbox(&app.sim, SHARED, &contacts).await;
    let (status, _) = post(&b, &format!("{CONTACTS}/mailboxes"), &[("address", SHARED)]).await;
    assert_eq!(status, 303);
    let sync = || async {
        app.state
            .app
            .run_sync(None, SyncKind::Contacts, RunOptions::default())
            .await
            .unwrap()
    };
    let first = sync().await;
    assert_eq!(first.status, SyncStatus::Completed, "{:?}", first.report);
    let company = || async {
        app.state
            .app
            .phonebook(&PhonebookOwner::Company)
            .await
            .unwrap()
    };
    let all = company().await;
    assert_eq!(all.len(), 2_200);

    // Most of the mailbox's contacts are deleted in Outlook: the round is held, nothing removed.
    let gone: Vec<String> = all
        .iter()
        .take(1_150)
        .map(|e| e.m365_id.clone().unwrap())
        .collect();
    delete_contacts(&app.sim, SHARED, &gone).await;
    let held = sync().await;
    assert_eq!(held.status, SyncStatus::Held, "{:?}", held.report);
    assert_eq!(company().await.len(), 2_200, "a held round removes nothing");

    // The console says what approving applies, on every page and on the run's page.
    let html = b.get("/console/extensions").await.text().await.unwrap();
    let banner = text(&html);
    assert!(
        banner.contains("A contact sync is waiting for your approval")
            && banner.contains("It would remove 1150 synced phonebook entries"),
        "{banner}"
    );
    assert!(html.contains(&format!(
        "action=\"/console/sync/runs/{}/approve\"",
        held.id
    )));
    let run_page = b
        .get(&format!("/console/sync/runs/{}", held.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        run_page.contains("id=\"held-plan\"") && run_page.contains("id=\"approve-run\""),
        "{run_page}"
    );
    let listed = text(&run_page);
    assert!(
        listed.contains("The held plan would make these 1150 removals")
            && listed.contains("delete: Contact 0000")
            && listed.contains("more phonebook entries"),
        "the removals are listed: {listed}"
    );

    // The API shows the same run and approves it: the held plan is applied.
    let token = app.api_token().await;
    let http = reqwest::Client::new();
    let api = |path: String| format!("{}/api/v1{path}", app.base);
    let shown: serde_json::Value = http
        .get(api(format!("/sync/runs/{}", held.id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["status"], "held");
    assert!(
        shown["errors"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["reason"].as_str().is_some_and(
                |r| r.contains("1150 of 2200 synced phonebook entries would be removed")
            ))),
        "{shown}"
    );
    let r = http
        .post(api(format!("/sync/runs/{}/approve", held.id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let applied: serde_json::Value = r.json().await.unwrap();
    assert_eq!(applied["status"], "completed", "{applied}");
    assert_eq!(
        company().await.len(),
        1_050,
        "the approved removals are applied"
    );
    assert!(
        !text(&b.get("/console/extensions").await.text().await.unwrap())
            .contains("waiting for your approval")
    );
    let again = http
        .post(api(format!("/sync/runs/{}/approve", held.id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409, "an approval is used once");

    // The guard is armed again: the next mass removal (the mailbox taken off the list) is held.
    let (status, _) = post(
        &b,
        &format!("{CONTACTS}/mailboxes/remove"),
        &[("address", SHARED)],
    )
    .await;
    assert_eq!(status, 303);
    let second = sync().await;
    assert_eq!(second.status, SyncStatus::Held, "{:?}", second.report);
    assert_eq!(company().await.len(), 1_050);
}

on_both!(console_contacts => shared_mailboxes_are_checked_synced_and_shown);
on_both!(held_contact_round => a_held_contact_round_is_shown_with_what_approving_applies_and_approved);
