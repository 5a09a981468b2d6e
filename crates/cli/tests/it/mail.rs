//! `pbx365 mail test --to ADDR`: a missing mail server or sender mailbox is a clear sentence and
//! a non-zero exit, and nothing is sent.

use pbx365_testkit::process::{run, write_config};

async fn mail_test(extra: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let db_url = format!("sqlite://{}/data/pbx365.db", dir.path().display());
    let cfg = write_config(dir.path(), &db_url, extra);
    run(
        dir.path(),
        &[
            "mail",
            "test",
            "--to",
            "ops@contoso.com",
            "--config",
            cfg.to_str().unwrap(),
        ],
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_test_without_a_mail_server_says_where_to_set_one() {
    let (code, out, err) = mail_test("").await;
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("No mail server is configured"), "{err}");
    assert!(err.contains("Settings > Mail server"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_test_without_a_sender_mailbox_names_the_setting() {
    let (code, out, err) = mail_test("[mail]\ntransport = \"microsoft365\"\n").await;
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("No sender mailbox is set"), "{err}");
    assert!(err.contains("mail.sender"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_test_from_a_mailbox_microsoft_365_does_not_have_says_so_and_sends_nothing() {
    let sim = pbx365_testkit::tenant::start_sim(m365_sim::SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let client_id = sim
        .control()
        .create_app(&pbx365_testkit::tenant::new_app(
            "pbx365",
            &pbx365_testkit::tenant::PERMISSIONS,
            true,
        ))
        .await
        .unwrap();
    let extra = format!(
        "{}[mail]\ntransport = \"microsoft365\"\nsender = \"nobody@contoso.example\"\n",
        crate::cluster::m365_section(&sim, &client_id, dir.path())
    );
    let db_url = format!("sqlite://{}/data/pbx365.db", dir.path().display());
    let cfg = write_config(dir.path(), &db_url, &extra);
    let cfg = cfg.to_str().unwrap();
    let (code, _, err) = run(dir.path(), &["m365", "keygen", "--config", cfg], None).await;
    assert_eq!(code, 0, "{err}");
    let pem = std::fs::read_to_string(dir.path().join("public_key.pem")).unwrap();
    sim.control()
        .add_certificate(&client_id, &pem)
        .await
        .unwrap();

    let (code, out, err) = run(
        dir.path(),
        &["mail", "test", "--to", "ops@contoso.com", "--config", cfg],
        None,
    )
    .await;
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("nobody@contoso.example"), "{err}");
    assert!(err.contains("does not exist"), "{err}");
    let sent = sim.control().get_json("/_sim/mail").await.unwrap();
    assert_eq!(
        sent["value"].as_array().map(Vec::len),
        Some(0),
        "nothing was sent: {sent}"
    );
}
