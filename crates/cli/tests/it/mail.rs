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
