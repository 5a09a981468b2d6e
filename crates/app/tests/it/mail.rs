//! The mail outbox against m365-sim on SQLite and PostgreSQL: test mail with an attachment
//! arrives as sent, a 429 storm delays but loses nothing, a SIGKILL mid-burst sends nothing
//! twice, a missing sender mailbox is a clear error, and a held user sync alerts the admin.
//! The SMTP transport against the test kit's SMTP sink: test mail arrives, a refused recipient
//! fails with the server's reason.

use m365_sim::faults::FaultSpec;
use pbx365_app::mail::{MailTuning, INTERRUPTED};
use pbx365_app::{App, AppError};
use pbx365_domain::settings::{MailTransport, Settings, SmtpTls};
use pbx365_domain::{MailAttachment, NewMail, OutboxStatus, SyncStatus};
use pbx365_store::Store;
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;
use pbx365_testkit::smtp::SmtpSink;
use pbx365_testkit::tenant::{world, World};
use pbx365_testkit::wait::eventually;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const ADMIN: &str = "it-admin@contoso.com";

/// Settings connected to `w`'s tenant, sending as `sender` through Microsoft 365.
fn settings(w: &World, sender: &str) -> Settings {
    connected(
        w.sim.graph_url(),
        w.sim.authority_url(),
        &w.sim.tenant_id,
        &w.reader_client_id,
        &w.reader_keys_dir,
        sender,
    )
}

fn connected(
    graph: &str,
    authority: &str,
    tenant: &str,
    client_id: &str,
    keys: &std::path::Path,
    sender: &str,
) -> Settings {
    let mut s = Settings {
        data_dir: keys.to_path_buf(),
        ..Settings::default()
    };
    s.m365.graph_url = graph.into();
    s.m365.authority_url = authority.into();
    s.m365.tenant_id = Some(tenant.into());
    s.m365.client_id = Some(client_id.into());
    s.mail.transport = MailTransport::Microsoft365;
    s.mail.sender = Some(sender.into());
    s.mail.admin_address = Some(ADMIN.into());
    s
}

/// Quick timing: short backoff and idle, real one-minute windows unless changed.
fn quick() -> MailTuning {
    MailTuning {
        lease_ttl: Duration::from_secs(2),
        idle: Duration::from_millis(100),
        backoff_base: chrono::Duration::milliseconds(100),
        backoff_max: chrono::Duration::milliseconds(500),
        max_attempts: 50,
        alert_every: Duration::from_millis(100),
        ..MailTuning::default()
    }
}

async fn sender_of(w: &World) -> String {
    let users = w.users().await;
    users
        .iter()
        .find(|u| u.mail.is_some())
        .and_then(|u| u.user_principal_name.clone())
        .expect("a user with a mailbox")
}

/// Every message the sim accepted.
async fn sim_mail(w: &World) -> Vec<Value> {
    let v = w.sim.control().get_json("/_sim/mail").await.unwrap();
    v["value"].as_array().cloned().unwrap_or_default()
}

fn subject(m: &Value) -> String {
    m["message"]["subject"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn recipients(m: &Value) -> Vec<String> {
    m["message"]["toRecipients"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["emailAddress"]["address"].as_str().map(String::from))
        .collect()
}

async fn all_done(store: &Store) -> bool {
    let c = store.mail_counts().await.unwrap();
    c.queued == 0 && c.sending == 0
}

async fn test_mail_arrives_with_sender_recipients_subject_body_and_attachment(db: TestDb) {
    let w = world(3).await;
    let sender = sender_of(&w).await;
    let app = App::new(db.store.clone(), settings(&w, &sender)).with_mail_tuning(quick());

    // Queued before the worker runs, so the expected send time is known.
    let queued = app
        .send_test_mail(Some("alice"), "ops@contoso.com")
        .await
        .unwrap();
    assert!(
        queued.expected_at.is_some(),
        "a queued mail has an expected time"
    );
    let wav = MailAttachment {
        name: "greeting.wav".into(),
        content_type: "audio/wav".into(),
        content_base64: "UklGRiQAAABXQVZF".into(),
    };
    let with_file = app
        .queue_mail(NewMail {
            kind: "other".into(),
            to: vec!["ann@contoso.com".into(), "bob@contoso.com".into()],
            subject: "Voicemail".into(),
            text: "You have a voicemail.".into(),
            html: Some("<p>You have a <b>voicemail</b>.</p>".into()),
            attachments: vec![wav.clone()],
            dedupe_key: None,
        })
        .await
        .unwrap()
        .unwrap();
    let worker = app.start_mail_worker();
    for id in [&queued.mail.id, &with_file.id] {
        let m = app
            .wait_for_mail(id, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(m.status, OutboxStatus::Sent, "{m:?}");
    }
    worker.stop();

    let sent = sim_mail(&w).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    let test = sent
        .iter()
        .find(|m| subject(m) == "pbx365 test mail")
        .unwrap();
    assert_eq!(test["from"].as_str(), Some(sender.as_str()));
    assert_eq!(recipients(test), ["ops@contoso.com"]);
    assert_eq!(test["message"]["body"]["contentType"], "HTML");
    assert!(test["message"]["body"]["content"]
        .as_str()
        .unwrap()
        .contains("test mail from <strong>pbx365</strong>"));
    let voicemail = sent.iter().find(|m| subject(m) == "Voicemail").unwrap();
    assert_eq!(
        recipients(voicemail),
        ["ann@contoso.com", "bob@contoso.com"]
    );
    assert_eq!(
        voicemail["message"]["body"]["content"],
        "<p>You have a <b>voicemail</b>.</p>"
    );
    let att = &voicemail["message"]["attachments"][0];
    assert_eq!(att["name"], "greeting.wav");
    assert_eq!(att["contentType"], "audio/wav");
    assert_eq!(att["contentBytes"], wav.content_base64.as_str());
    assert_eq!(att["@odata.type"], "#microsoft.graph.fileAttachment");
    let audit = db.store.list_audit(10).await.unwrap();
    assert!(audit
        .iter()
        .any(|a| a.action == "mail.test" && a.actor == "alice"));
}

async fn a_429_storm_delays_but_loses_nothing(db: TestDb) {
    let w = world(3).await;
    let sender = sender_of(&w).await;
    let app = App::new(db.store.clone(), settings(&w, &sender)).with_mail_tuning(quick());
    // More 429s than one request's retries: some mail goes back to the queue and is retried.
    w.sim
        .control()
        .add_fault(&FaultSpec {
            path: "/sendMail".into(),
            method: Some("POST".into()),
            status: Some(429),
            retry_after: Some(0.05),
            count: Some(30),
            ..FaultSpec::default()
        })
        .await
        .unwrap();
    for i in 0..10 {
        app.queue_mail(NewMail {
            kind: "other".into(),
            to: vec!["ops@contoso.com".into()],
            subject: format!("storm {i}"),
            text: "x".into(),
            ..NewMail::default()
        })
        .await
        .unwrap();
    }
    let worker = app.start_mail_worker();
    eventually(60, "every mail is sent", || all_done(&db.store)).await;
    worker.stop();
    let mails = db.store.list_mail(100).await.unwrap();
    assert!(
        mails.iter().all(|m| m.status == OutboxStatus::Sent),
        "{mails:?}"
    );
    let mut subjects: Vec<String> = sim_mail(&w).await.iter().map(subject).collect();
    subjects.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("storm {i}")).collect();
    expected.sort();
    assert_eq!(subjects, expected, "each once: none lost, none twice");
    let throttled = w.sim.control().stats().await.unwrap();
    assert!(
        format!("{throttled:?}").contains("429") || mails.iter().any(|m| m.attempts > 1),
        "the storm happened"
    );
}

async fn a_missing_sender_mailbox_is_a_clear_error(db: TestDb) {
    let w = world(2).await;
    let app =
        App::new(db.store.clone(), settings(&w, "nobody@contoso.com")).with_mail_tuning(quick());
    let err = app
        .send_test_mail(None, "ops@contoso.com")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AppError::Invalid(m) if m.contains("nobody@contoso.com") && m.contains("does not exist")),
        "{err:?}"
    );
    // Mail queued anyway (an alert) fails with a reason naming the mailbox, and is not retried.
    let mail = app
        .queue_mail(NewMail {
            kind: "other".into(),
            to: vec!["ops@contoso.com".into()],
            subject: "alert".into(),
            text: "x".into(),
            ..NewMail::default()
        })
        .await
        .unwrap()
        .unwrap();
    let worker = app.start_mail_worker();
    let m = app
        .wait_for_mail(&mail.id, Duration::from_secs(30))
        .await
        .unwrap();
    worker.stop();
    assert_eq!(m.status, OutboxStatus::Failed);
    assert!(
        m.last_error
            .as_deref()
            .unwrap()
            .contains("nobody@contoso.com"),
        "{m:?}"
    );
    assert_eq!(m.attempts, 1);
    // The console's Retry queues it again.
    app.retry_mail("alice", &mail.id).await.unwrap();
    assert_eq!(
        db.store.get_mail(&mail.id).await.unwrap().unwrap().status,
        OutboxStatus::Pending
    );
}

async fn a_held_user_sync_alerts_the_admin_once(db: TestDb) {
    let w = world(30).await;
    let sender = sender_of(&w).await;
    let app = App::new(db.store.clone(), settings(&w, &sender)).with_mail_tuning(quick());
    let mut sync = pbx365_testkit::sync::settings();
    sync.max_deletions = 3;
    sync.max_deletion_percent = 100;
    let svc = w.service(&db.store, sync);
    let first = pbx365_testkit::sync::run(&svc, true).await;
    assert_eq!(first.status, SyncStatus::Completed);
    let users = w.users().await;
    for u in users
        .iter()
        .filter(|u| u.user_principal_name.as_deref() != Some(&*sender))
        .take(10)
    {
        pbx365_testkit::tenant::delete_user(&w.writer, &u.id).await;
    }
    let held = pbx365_testkit::sync::run(&svc, true).await;
    assert_eq!(held.status, SyncStatus::Held, "{:?}", held.report);

    let worker = app.start_mail_worker();
    eventually(30, "the alert reaches the admin", || async {
        sim_mail(&w).await.iter().any(|m| recipients(m) == [ADMIN])
    })
    .await;
    // Later scans find the same held run and queue nothing more.
    let scans = db.store.list_mail(10).await.unwrap();
    tokio::time::timeout(Duration::from_millis(500), std::future::pending::<()>())
        .await
        .ok();
    worker.stop();
    let alerts: Vec<Value> = sim_mail(&w).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(subject(&alerts[0]).contains("held"), "{alerts:?}");
    let body = alerts[0]["message"]["body"]["content"].as_str().unwrap();
    assert!(body.contains(&held.id), "{body}");
    assert_eq!(scans.len(), 1);
}

on_both!(
    test_mail_arrives_with_sender_recipients_subject_body_and_attachment,
    a_429_storm_delays_but_loses_nothing,
    a_missing_sender_mailbox_is_a_clear_error,
    a_held_user_sync_alerts_the_admin_once,
);

/// Settings sending through the plain SMTP server `sink` as `sender`.
fn smtp_settings(sink: &SmtpSink, data_dir: &std::path::Path, sender: &str) -> Settings {
    let mut s = Settings {
        data_dir: data_dir.to_path_buf(),
        ..Settings::default()
    };
    s.mail.transport = MailTransport::Smtp;
    s.mail.sender = Some(sender.into());
    s.mail.smtp_host = Some(sink.host());
    s.mail.smtp_port = Some(sink.port());
    s.mail.smtp_tls = SmtpTls::None;
    s.mail.admin_address = Some(ADMIN.into());
    s
}

async fn smtp_test_mail_arrives_and_a_refused_recipient_fails_with_the_reason(db: TestDb) {
    let sink = SmtpSink::refusing(&["gone@contoso.com"]).await;
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(
        db.store.clone(),
        smtp_settings(&sink, dir.path(), "pbx@contoso.com"),
    )
    .with_mail_tuning(quick());
    let queued = app
        .send_test_mail(Some("alice"), "ops@contoso.com")
        .await
        .unwrap();
    let refused = app
        .queue_mail(NewMail {
            kind: "other".into(),
            to: vec!["gone@contoso.com".into()],
            subject: "to nobody".into(),
            text: "x".into(),
            ..NewMail::default()
        })
        .await
        .unwrap()
        .unwrap();
    let worker = app.start_mail_worker();
    let sent = app
        .wait_for_mail(&queued.mail.id, Duration::from_secs(30))
        .await
        .unwrap();
    let failed = app
        .wait_for_mail(&refused.id, Duration::from_secs(30))
        .await
        .unwrap();
    worker.stop();

    assert_eq!(sent.status, OutboxStatus::Sent, "{sent:?}");
    let got = sink.messages();
    assert_eq!(got.len(), 1, "only the test mail was accepted: {got:?}");
    let m = &got[0];
    assert_eq!(m.from, "pbx@contoso.com");
    assert_eq!(m.to, ["ops@contoso.com"]);
    assert_eq!(m.header("From").as_deref(), Some("pbx@contoso.com"));
    assert_eq!(m.header("To").as_deref(), Some("ops@contoso.com"));
    assert_eq!(m.header("Subject").as_deref(), Some("pbx365 test mail"));
    assert!(
        m.data.contains("This is a test mail from pbx365.") && m.data.contains("through SMTP"),
        "the text body: {}",
        m.data
    );
    assert!(
        m.data.contains("Content-Type: text/html"),
        "the HTML alternative: {}",
        m.data
    );

    assert_eq!(failed.status, OutboxStatus::Failed, "{failed:?}");
    assert_eq!(failed.attempts, 1, "a refused recipient is not retried");
    let why = failed.last_error.as_deref().unwrap();
    assert!(
        why.contains("refused") && why.contains("550"),
        "the reason names the server's answer: {why}"
    );
}

on_both!(smtp_test_mail_arrives_and_a_refused_recipient_fails_with_the_reason);

/// Environment of the child worker that is killed.
const CHILD_ENV: &str = "PBX365_MAIL_WORKER_CHILD";

/// Runs in a child copy of this test binary (started by the SIGKILL test): the outbox worker
/// against the parent's sim and database until it is killed.
#[tokio::test]
#[ignore = "runs only as the child of a_sigkilled_worker_sends_no_mail_twice"]
async fn mail_worker_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let v: Value = serde_json::from_str(&spec).unwrap();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let s = |k: &str| v[k].as_str().unwrap().to_string();
    let store = Store::connect(&s("db")).await.unwrap();
    let mut settings = connected(
        &s("graph"),
        &s("authority"),
        &s("tenant"),
        &s("client_id"),
        std::path::Path::new(&s("keys")),
        &s("sender"),
    );
    settings.mail.max_per_minute = 100_000;
    let app = App::new(store, settings).with_mail_tuning(quick());
    let _worker = app.start_mail_worker();
    std::future::pending::<()>().await;
}

async fn a_sigkilled_worker_sends_no_mail_twice(db: TestDb) {
    let w = world(3).await;
    let sender = sender_of(&w).await;
    let mut settings = settings(&w, &sender);
    settings.mail.max_per_minute = 100_000;
    let app = App::new(db.store.clone(), settings).with_mail_tuning(quick());
    for i in 0..100 {
        app.queue_mail(NewMail {
            kind: "other".into(),
            to: vec!["ops@contoso.com".into()],
            subject: format!("burst {i:03}"),
            text: "x".into(),
            ..NewMail::default()
        })
        .await
        .unwrap();
    }
    // Slow sends, so the kill lands between hand-over and commit now and then.
    w.sim
        .control()
        .add_fault(&FaultSpec {
            path: "/sendMail".into(),
            latency_ms: Some(40),
            ..FaultSpec::default()
        })
        .await
        .unwrap();
    let spec = serde_json::json!({"db": db.url, "graph": w.sim.graph_url(),
        "authority": w.sim.authority_url(), "tenant": w.sim.tenant_id,
        "client_id": w.reader_client_id, "keys": w.reader_keys_dir, "sender": sender});
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "mail::mail_worker_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, spec.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the child");
    eventually(60, "the child sends some mail", || async {
        sim_mail(&w).await.len() >= 20
    })
    .await;
    child.start_kill().expect("SIGKILL");
    assert!(
        !child.wait().await.unwrap().success(),
        "the child was killed"
    );
    let at_kill = sim_mail(&w).await.len();
    assert!(at_kill < 100, "killed mid-burst ({at_kill} sent)");

    // This instance takes the lease over once the dead child's has expired, and finishes.
    let worker = app.start_mail_worker();
    eventually(60, "the rest is sent", || all_done(&db.store)).await;
    worker.stop();

    let mut delivered: BTreeMap<String, usize> = BTreeMap::new();
    for m in sim_mail(&w).await {
        *delivered.entry(subject(&m)).or_default() += 1;
    }
    assert!(
        delivered.values().all(|n| *n == 1),
        "no mail was delivered twice: {delivered:?}"
    );
    let mails = db.store.list_mail(200).await.unwrap();
    let mut interrupted = 0;
    for m in &mails {
        match m.status {
            OutboxStatus::Sent => assert_eq!(delivered.get(&m.subject), Some(&1), "{m:?}"),
            OutboxStatus::Failed => {
                assert_eq!(m.last_error.as_deref(), Some(INTERRUPTED), "{m:?}");
                interrupted += 1;
            }
            s => panic!("{} left {s:?}", m.subject),
        }
    }
    assert!(
        interrupted <= 1,
        "only the mail in flight at the kill is in doubt"
    );
    assert!(
        delivered.len() >= 99,
        "every mail but the one in doubt was delivered: {}",
        delivered.len()
    );
}

on_both!(a_sigkilled_worker_sends_no_mail_twice);
