//! `pbx365 admin token create --expires-in-days`, `admin token list|revoke` and
//! `admin password`, on both databases.

use pbx365_app::password::verify_password;
use pbx365_store::Store;
use pbx365_testkit::db::FreshDb;
use pbx365_testkit::on_both;
use pbx365_testkit::process::{run, write_config, Server};

/// The last line of stderr: the command's own sentence (PostgreSQL may log a notice before it).
fn last_line(err: &str) -> &str {
    err.trim().lines().last().unwrap_or("")
}

on_both!(tokens_are_listed_used_and_revoked_from_the_cli => tokens_body);
async fn tokens_body(db: FreshDb) {
    let dir = db.dir.path();
    let cfg = write_config(dir, &db.url, "");
    let cfg = cfg.to_str().unwrap();
    let create = |args: &'static [&'static str]| async move {
        let mut all = vec!["admin", "token", "create"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--config", cfg]);
        run(dir, &all, None).await
    };
    let (code, ci, err) = create(&["--name", "ci", "--expires-in-days", "30"]).await;
    assert_eq!(code, 0, "{err}");
    let ci = ci.trim().to_string();
    let (code, old, err) = create(&["--name", "old"]).await;
    assert_eq!(code, 0, "{err}");
    let old = old.trim().to_string();
    let (code, _, err) = create(&["--name", "x", "--expires-in-days", "0"]).await;
    assert_ne!(code, 0);
    assert_eq!(last_line(&err), "error: the expiry must be 1 to 3650 days");

    let server = Server::start(dir, &["--config", cfg]).await;
    let http = reqwest::Client::new();
    let get = |token: String| {
        let url = format!("{}/api/v1/extensions", server.base);
        let http = http.clone();
        async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    assert_eq!(get(ci.clone()).await.0, 200);

    let (code, out, err) = run(dir, &["admin", "token", "list", "--config", cfg], None).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("NAME")
            && lines[0].contains("LAST USED")
            && lines[0].contains("EXPIRES"),
        "{out}"
    );
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    let (ci_row, old_row) = (row("ci"), row("old"));
    assert_ne!(ci_row[2], "never", "ci was used: {out}");
    assert_ne!(ci_row[3], "never", "ci expires: {out}");
    assert_eq!(&old_row[2..], ["never", "never"], "{out}");
    let (code, json, _) = run(
        dir,
        &["admin", "token", "list", "--json", "--config", cfg],
        None,
    )
    .await;
    assert_eq!(code, 0);
    let listed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    for secret in [&ci, &old] {
        let hash = pbx365_app::admins::hash_token(secret);
        for text in [&out, &json] {
            assert!(!text.contains(secret.as_str()) && !text.contains(&hash));
        }
    }

    let (code, _, err) = run(
        dir,
        &["admin", "token", "revoke", "ci", "--config", cfg],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(last_line(&err), "Revoked the API token 'ci'.");
    let (status, body) = get(ci.clone()).await;
    assert_eq!(status, 401);
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("revoked or never issued"), "{msg}");
    assert_eq!(get(old.clone()).await.0, 200, "only ci was revoked");
    let (code, _, err) = run(
        dir,
        &["admin", "token", "revoke", "ci", "--config", cfg],
        None,
    )
    .await;
    assert_ne!(code, 0);
    assert!(err.contains("no API token is named 'ci'"), "{err}");
    assert!(server.terminate().await.success());
}

on_both!(admin_password_reads_the_new_password_from_stdin => password_body);
async fn password_body(db: FreshDb) {
    let dir = db.dir.path();
    let cfg = write_config(dir, &db.url, "");
    let cfg = cfg.to_str().unwrap();
    let (code, _, err) = run(
        dir,
        &[
            "admin",
            "create",
            "--name",
            "alice",
            "--password-stdin",
            "--config",
            cfg,
        ],
        Some("first password\n"),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let args = ["admin", "password", "--name", "alice", "--config", cfg];
    let (code, _, err) = run(dir, &args, Some("too short\n")).await;
    assert_ne!(code, 0);
    assert_eq!(
        last_line(&err),
        "error: the password must be 12 to 1024 characters long"
    );
    let (code, out, err) = run(dir, &args, Some("a new long password\n")).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(!err.contains("a new long password"), "{err}");
    let (code, _, err) = run(
        dir,
        &["admin", "password", "--name", "nobody", "--config", cfg],
        Some("a new long password\n"),
    )
    .await;
    assert_ne!(code, 0);
    assert_eq!(last_line(&err), "error: admin 'nobody' does not exist");

    let store = Store::connect(&db.url).await.unwrap();
    let alice = store.get_admin("alice").await.unwrap().unwrap();
    assert!(verify_password("a new long password", &alice.password_hash));
    assert!(!verify_password("first password", &alice.password_hash));
    store.close().await;
}

#[tokio::test]
async fn the_credential_commands_answer_help() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["admin", "token", "list", "--help"][..],
        &["admin", "token", "revoke", "--help"],
        &["admin", "password", "--help"],
    ] {
        let (code, out, err) = run(dir.path(), args, None).await;
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.contains("--config"), "{args:?}: {out}");
    }
    let (_, out, _) = run(dir.path(), &["admin", "token", "create", "--help"], None).await;
    assert!(out.contains("--expires-in-days"), "{out}");
}
