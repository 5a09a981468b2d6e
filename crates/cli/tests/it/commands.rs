//! The admin commands: `admin create`, `admin token create`, `ext list`.

use pbx365_testkit::process::{command, run, write_config, Server};
use pbx365_testkit::web::Fetch;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_printed_alone_and_works_and_ext_list_shows_api_fields() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}/data/pbx365.db", dir.path().display());
    let cfg = write_config(dir.path(), &db_url, "");
    let cfg_arg = cfg.to_str().unwrap();

    let (code, out, err) = run(
        dir.path(),
        &[
            "admin", "token", "create", "--name", "ci", "--config", cfg_arg,
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().count(),
        1,
        "stdout must hold the token alone: {out:?}"
    );
    let token = out.trim().to_string();
    assert!(token.starts_with("pbx365_") && token.len() > 40);
    // Only the hash is stored.
    let db_bytes = std::fs::read(dir.path().join("data/pbx365.db")).unwrap_or_default();
    let wal = std::fs::read(dir.path().join("data/pbx365.db-wal")).unwrap_or_default();
    let hay = [db_bytes, wal].concat();
    assert!(
        !hay.windows(token.len()).any(|w| w == token.as_bytes()),
        "the token is stored in clear"
    );

    // TRACE level: even the most verbose log must not contain the token (checked at the end).
    let server = Server::start_with(
        command(dir.path())
            .env("RUST_LOG", "trace")
            .args(["serve", "--config", cfg_arg]),
        None,
    )
    .await;
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/api/v1/extensions", server.base))
        .bearer_auth(&token)
        .json(&json!({"number": "700", "first_name": "Lee", "last_name": "Gu", "email": "lee@contoso.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let api: serde_json::Value = client
        .get(format!("{}/api/v1/extensions", server.base))
        .bearer_auth(&token)
        .json_body()
        .await;

    let (code, out, err) = run(
        dir.path(),
        &["ext", "list", "--json", "--config", cfg_arg],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let cli: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cli, api, "ext list --json differs from the REST API");

    let (code, out, _) = run(dir.path(), &["ext", "list", "--config", cfg_arg], None).await;
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NUMBER")
            && lines[1].starts_with("700")
            && lines[1].contains("Lee Gu"),
        "{out}"
    );
    let log = server.stderr_text();
    assert!(server.terminate().await.success());
    assert!(log.len() > 1000, "expected a verbose log");
    assert!(!log.contains(&token), "the API token reached the log");
    assert!(
        !log.contains(&token["pbx365_".len()..]),
        "the API token reached the log"
    );
}

#[tokio::test]
async fn admin_create_reads_the_password_from_stdin_and_refuses_duplicates_and_short_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}/data/pbx365.db", dir.path().display());
    let cfg = write_config(dir.path(), &db_url, "");
    let cfg_arg = cfg.to_str().unwrap();
    let args = [
        "admin",
        "create",
        "--name",
        "alice",
        "--password-stdin",
        "--config",
        cfg_arg,
    ];
    let (code, out, err) = run(dir.path(), &args, Some("correct horse battery\n")).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "{out}");
    let (code, _, err) = run(dir.path(), &args, Some("another long password\n")).await;
    assert_ne!(code, 0);
    assert_eq!(err.trim(), "error: admin 'alice' already exists");
    let args = [
        "admin",
        "create",
        "--name",
        "bob",
        "--password-stdin",
        "--config",
        cfg_arg,
    ];
    let (code, _, err) = run(dir.path(), &args, Some("short7\n")).await;
    assert_ne!(code, 0);
    assert_eq!(
        err.trim(),
        "error: the password must be 8 to 1024 characters long"
    );
}

#[tokio::test]
async fn help_lists_the_commands_and_every_one_answers_help() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(dir.path(), &["--help"], None).await;
    assert_eq!(code, 0);
    for cmd in ["serve", "ext", "admin"] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(cmd)),
            "--help lacks {cmd}: {out}"
        );
    }
    for args in [
        &["ext", "list", "--help"][..],
        &["admin", "create", "--help"],
        &["admin", "token", "create", "--help"],
    ] {
        let (code, out, err) = run(dir.path(), args, None).await;
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(
            out.contains("--config"),
            "{args:?} does not take --config: {out}"
        );
    }
}
