//! `pbx365 serve`: first start, configuration errors, TLS, graceful shutdown.

use pbx365_testkit::db::FreshDb;
use pbx365_testkit::on_both;
use pbx365_testkit::process::{command, run, write_config, Server};
use std::os::unix::fs::PermissionsExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_an_empty_directory_creates_its_sqlite_database_and_serves_healthz() {
    let dir = tempfile::tempdir().unwrap();
    // No configuration file at all: defaults plus the environment (a free port).
    let server = Server::start_with(
        command(dir.path())
            .arg("serve")
            .env("PBX365_LISTEN", "127.0.0.1:0"),
        None,
    )
    .await;
    let health: serde_json::Value = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"], "ok");

    let data = dir.path().join("pbx365-data");
    assert!(
        data.join("pbx365.db").is_file(),
        "no SQLite file in {}",
        data.display()
    );
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700
    );

    // The first admin's one-time password goes to a 0600 file in data_dir whose path is
    // printed; the password itself reaches neither stdout nor the log.
    let out = server.stdout_text();
    let file = data.join("initial-admin-password");
    assert!(
        out.contains(&format!(
            "Created the console admin `admin`; its one-time password is in {}",
            std::fs::canonicalize(&file).unwrap().display()
        )),
        "no password file path on stdout: {out}"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let password = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(password.len() >= 16);
    assert!(!out.contains(&password), "the password reached stdout");
    let first_log = server.stderr_text();
    assert!(
        !first_log.contains(&password),
        "the password reached the log"
    );
    assert!(first_log.contains("initial-admin-password"), "{first_log}");
    let status = server.terminate().await;
    assert!(status.success(), "SIGTERM is a graceful stop: {status:?}");

    let again = Server::start_with(
        command(dir.path())
            .arg("serve")
            .env("PBX365_LISTEN", "127.0.0.1:0"),
        None,
    )
    .await;
    assert!(
        !again.stdout_text().contains("one-time password"),
        "a second start created another admin"
    );
    let log = again.stderr_text();
    let status = again.terminate().await;
    assert!(status.success());
    assert!(!log.contains(&password), "the password reached the log");
}

on_both!(serve_with_a_configured_database_serves_healthz => configured_database_body);
async fn configured_database_body(db: FreshDb) {
    let cfg = write_config(db.dir.path(), &db.url, "");
    let cfg_arg = cfg.to_str().unwrap();
    let server = Server::start(
        db.dir.path(),
        &["--config", cfg_arg, "--log-format", "json"],
    )
    .await;
    let r = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("pbx365_http_requests_total"), "{metrics}");
    let log = server.stderr_text();
    assert!(server.terminate().await.success());
    // Structured logs: one JSON object per line, request lines carry the route, not the URL.
    assert!(!log.is_empty());
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
    assert!(log.contains("\"route\":\"/healthz\""), "{log}");
}

/// Runs `serve` with `config_text` and returns (exit code, stderr).
async fn refused(config_text: &str, env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pbx365.toml");
    std::fs::write(&cfg, config_text).unwrap();
    let mut cmd = command(dir.path());
    cmd.args(["serve", "--config", cfg.to_str().unwrap()]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&cfg.display().to_string(), "pbx365.toml");
    (out.status.code().unwrap_or(-1), stderr.trim().to_string())
}

/// (pbx365.toml text, environment, expected start of stderr)
type RefusalCase<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

#[tokio::test]
async fn invalid_configuration_fails_at_start_with_one_sentence_naming_the_problem() {
    let cases: &[RefusalCase] = &[
        (
            "[m365]\ngraph_url = \"graph.microsoft.com\"\n",
            &[],
            "error: setting `m365.graph_url`: 'graph.microsoft.com' is not an http(s) URL",
        ),
        (
            "public_url = \"ftp://pbx.example.com\"\n",
            &[],
            "error: setting `public_url`: 'ftp://pbx.example.com' is not an http(s) URL",
        ),
        (
            "[sync]\nfoo = 1\n",
            &[],
            "error: unknown setting `sync.foo` in pbx365.toml",
        ),
        (
            "lissen = \"127.0.0.1:1\"\n",
            &[],
            "error: unknown setting `lissen` in pbx365.toml",
        ),
        (
            "",
            &[("PBX365_M365__CLIENTID", "x")],
            "error: unknown setting `m365.clientid` in environment variable PBX365_M365__CLIENTID",
        ),
        (
            "[tls]\ncert_file = \"/etc/hostname\"\nkey_file = \"/nonexistent/key.pem\"\n",
            &[],
            "error: cannot read TLS key file /nonexistent/key.pem: No such file or directory",
        ),
        (
            "listen = \"127.0.0.1:1\"\nedition = \n",
            &[],
            "error: pbx365.toml is not valid TOML: line 2",
        ),
        (
            "edition = \"enterprise\"\n",
            &[],
            "error: setting `edition` in pbx365.toml is 'enterprise': use one of standard, pro",
        ),
    ];
    for (text, env, want) in cases {
        let (code, stderr) = refused(text, env).await;
        assert_ne!(code, 0, "{text:?} was accepted");
        assert!(
            stderr.starts_with(want),
            "{text:?}: stderr {stderr:?} does not start with {want:?}"
        );
        assert_eq!(stderr.lines().count(), 1, "not one sentence: {stderr:?}");
    }
    // TLS files that exist but hold no key are named too (the TLS cert must be PEM: /etc/hostname is not).
    let (code, stderr) = refused(
        "[tls]\ncert_file = \"/etc/hostname\"\nkey_file = \"/etc/hostname\"\n",
        &[],
    )
    .await;
    assert_ne!(code, 0);
    assert!(
        stderr.contains("TLS certificate file /etc/hostname holds no PEM certificate"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(
        dir.path(),
        &["serve", "--config", "/nonexistent/pbx365.toml"],
        None,
    )
    .await;
    assert_ne!(code, 0);
    assert_eq!(err.trim(), "error: cannot read the configuration file /nonexistent/pbx365.toml: No such file or directory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_tls_answers_healthz_over_https() {
    pbx365_web::server::install_crypto_provider(); // for this test's own HTTPS client
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_pem = cert.cert.pem();
    std::fs::write(dir.path().join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
    let db_url = format!("sqlite://{}/data/pbx365.db", dir.path().display());
    let cfg = write_config(
        dir.path(),
        &db_url,
        &format!(
            "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            dir.path().join("cert.pem").display(),
            dir.path().join("key.pem").display()
        ),
    );
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let server = Server::start_with(
        command(dir.path()).args(["serve", "--config", cfg.to_str().unwrap()]),
        Some(client.clone()),
    )
    .await;
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );
    let r = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Plain HTTP on the TLS port is not served.
    let plain = reqwest::get(format!(
        "{}/healthz",
        server.base.replace("https://", "http://")
    ))
    .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    assert!(server.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_private_key_other_users_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pbx365-data");
    let keys = pbx365_graph::keys::KeyStore::new(&data);
    keys.generate("pbx.example.com").unwrap();
    let mut leaked = Vec::new();
    for entry in std::fs::read_dir(data.join("m365")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        leaked.push(path);
    }
    assert!(!leaked.is_empty(), "keygen wrote no key file");

    let (code, _out, err) = run(dir.path(), &["serve"], None).await;
    assert_ne!(code, 0, "serve started with a world-readable key");
    assert!(
        err.contains("readable by other users") && err.contains("chmod 600"),
        "no actionable sentence: {err}"
    );
}
