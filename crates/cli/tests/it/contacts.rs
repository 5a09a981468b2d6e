//! `pbx365 sync contacts` (SPEC §10, issue 14) against the demo's simulated tenant: personal
//! contacts and a shared mailbox synced from the command line with a JSON report, a second run
//! changing nothing, and the standard edition refusing with the sentence SPEC §1 gives.

use crate::sync_wiring::start_demo;
use pbx365_testkit::db::FreshDb;
use pbx365_testkit::on_both;
use pbx365_testkit::process::run;

async fn sync_contacts_from_the_command_line(db: FreshDb) {
    let demo = start_demo(db, 20).await;
    let cfg = demo.config.to_str().unwrap().to_string();
    let dir = demo.config.parent().unwrap().to_path_buf();
    let original = std::fs::read_to_string(&demo.config).unwrap();
    std::fs::write(
        &demo.config,
        format!(
            "{original}\n[contacts]\npersonal = true\nshared_mailboxes = [\"reception@contoso.example\"]\ndefault_country = \"DE\"\n"
        ),
    )
    .unwrap();
    let args = ["--config", cfg.as_str(), "sync", "contacts", "--json"];
    let (code, out, err) = run(&dir, &args, None).await;
    assert_eq!(code, 0, "{out}{err}");
    let first: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (first["kind"].as_str(), first["status"].as_str()),
        (Some("contacts"), Some("completed")),
        "{first}"
    );
    let created = first["created"].as_array().unwrap();
    assert!(
        created.iter().any(|c| c["extension"].is_string()),
        "personal entries name their extension: {first}"
    );
    assert!(first["skipped"].as_array().unwrap().is_empty(), "{first}");

    let (code, out, err) = run(&dir, &args, None).await;
    assert_eq!(code, 0, "{out}{err}");
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    for list in ["created", "updated", "deleted"] {
        assert!(again[list].as_array().unwrap().is_empty(), "{again}");
    }

    // The standard edition runs no contact sync.
    std::fs::write(
        &demo.config,
        format!("edition = \"standard\"\n{original}\n[contacts]\npersonal = true\n"),
    )
    .unwrap();
    let (code, out, err) = run(&dir, &args, None).await;
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("contact sync needs the PRO edition"), "{err}");
}

on_both!(sync_contacts_cli => sync_contacts_from_the_command_line);
