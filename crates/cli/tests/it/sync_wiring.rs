//! `pbx365 demo`, `pbx365 sync`, `POST /api/v1/sync/users` and the console's held-run banner,
//! end to end: the demo child process connects to its embedded m365-sim exactly as to a real
//! tenant; the test changes the tenant through the sim's Graph write API.

use pbx365_graph::{GraphClient, GraphConfig};
use pbx365_testkit::data::RUN_REPORT_KEYS;
use pbx365_testkit::db::FreshDb;
use pbx365_testkit::on_both;
use pbx365_testkit::process::{command, run, token, write_config, Server};
use pbx365_testkit::tenant::{delete_user, register_in};
use pbx365_testkit::web::{hidden, Fetch};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The running demo and what it printed.
pub(crate) struct Demo {
    pub server: Server,
    pub password: String,
    pub(crate) config: PathBuf,
    tenant: String,
    _db: FreshDb,
}

fn line_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(prefix))
        .map(str::trim)
}

pub(crate) async fn start_demo(db: FreshDb, users: usize) -> Demo {
    let data = db.dir.path().join("demo-data");
    let mut cmd = command(db.dir.path());
    cmd.args([
        "demo",
        "--listen",
        "127.0.0.1:0",
        "--users",
        &users.to_string(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    if db.url.starts_with("postgres") {
        cmd.env("PBX365_DATABASE_URL", &db.url);
    }
    let server = Server::start_with(&mut cmd, None).await;
    // The demo serves while it connects the tenant through its own Configure page; it is ready
    // once it prints its summary.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !server.stdout_text().contains("Stop with Ctrl+C.") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "demo not ready: {}\n{}",
            server.stdout_text(),
            server.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = server.stdout_text();
    let console = line_after(&out, "Console:").unwrap_or_else(|| panic!("no console URL in {out}"));
    assert_eq!(console, format!("{}/console", server.base));
    let login = line_after(&out, "Admin login:").unwrap();
    let password = login
        .strip_prefix("admin / ")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(
        out.contains("Simulated Microsoft 365: https://127.0.0.1:"),
        "{out}"
    );
    assert!(
        line_after(&out, "Microsoft 365 sign-in names:").is_some_and(|s| s.contains('@')
            && s.contains(&format!(
                "(password {})",
                m365_sim::tenant::GENERATED_PASSWORD
            ))),
        "the sign-in names come with their password: {out}"
    );
    let config = data.canonicalize().unwrap().join("pbx365.toml");
    assert!(config.is_file());
    let tenant = out
        .split("(tenant ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    Demo {
        server,
        password,
        config,
        tenant,
        _db: db,
    }
}

/// A signed-in console browser: a cookie jar and the session's CSRF token.
pub(crate) async fn sign_in(base: &str, password: &str) -> (reqwest::Client, String) {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http.get(format!("{base}/console/login")).text_body().await;
    let login_csrf = hidden(&page, "login_csrf");
    let r = http
        .post(format!("{base}/console/login"))
        .form(&[
            ("username", "admin"),
            ("password", password),
            ("login_csrf", &login_csrf),
            ("return_to", "/console/sync"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "sign-in with the printed password works");
    let page = http
        .get(format!(
            "{base}/console/settings/integrations/microsoft365/sync"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csrf = hidden(&page.text().await.unwrap(), "csrf");
    (http, csrf)
}

/// The Sync settings form with the defaults, `changes` applied.
fn sync_form(csrf: &str, changes: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut f: Vec<(&'static str, String)> = [
        ("start_extension", "100"),
        ("end_extension", ""),
        ("caller_id_from_office_phone", "on"),
        ("photos", "on"),
        ("scope", "all"),
        ("scope_ids", ""),
        ("nightly_at", "02:00"),
        ("delete_after_days", "30"),
        ("max_deletions", "50"),
        ("max_deletion_percent", "10"),
    ]
    .iter()
    .map(|(k, v)| (*k, v.to_string()))
    .collect();
    for (k, v) in changes {
        f.iter_mut().find(|(n, _)| n == k).unwrap().1 = v.to_string();
    }
    f.push(("csrf", csrf.to_string()));
    f
}

/// A Graph client with write permissions in the demo's tenant (what a test script uses to change it).
async fn tenant_writer(
    config: &Path,
    tenant: &str,
    keys_dir: &Path,
) -> (GraphClient, m365_sim::SimControl) {
    let text = std::fs::read_to_string(config).unwrap();
    let toml: toml::Table = text.parse().unwrap();
    let m = toml["m365"].as_table().unwrap();
    let base = m["graph_url"].as_str().unwrap().to_string();
    let ca = std::fs::read(m["ca_file"].as_str().unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let control = m365_sim::SimControl::new(base.clone(), http);
    let (keys, client_id) = register_in(
        &control,
        keys_dir,
        "test writer",
        &["User.ReadWrite.All", "Directory.ReadWrite.All"],
        true,
    )
    .await;
    let cfg = GraphConfig {
        authority_url: base.clone(),
        graph_url: base,
        tenant_id: Some(tenant.to_string()),
        client_id: Some(client_id),
        extra_ca_pem: Some(ca),
        ..GraphConfig::default()
    };
    (GraphClient::new(cfg, keys).unwrap(), control)
}

async fn extensions(http: &reqwest::Client, base: &str, token: &str) -> Vec<serde_json::Value> {
    let r = http
        .get(format!("{base}/api/v1/extensions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn sync_users(http: &reqwest::Client, base: &str, token: &str) -> serde_json::Value {
    let r = http
        .post(format!("{base}/api/v1/sync/users"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "POST /api/v1/sync/users");
    r.json().await.unwrap()
}

async fn demo_body(db: FreshDb) {
    let demo = start_demo(db, 50).await;
    let base = demo.server.base.clone();
    let dir = demo.config.parent().unwrap().to_path_buf();
    let cfg = demo.config.to_str().unwrap().to_string();

    // The console login printed by the demo works over HTTP, and so does the API with its session.
    let (browser, csrf) = sign_in(&base, &demo.password).await;
    let list: Vec<serde_json::Value> = browser
        .get(format!("{base}/api/v1/extensions"))
        .json_body()
        .await;
    let synced: Vec<&serde_json::Value> = list.iter().filter(|e| e["source"] == "m365").collect();
    assert!(
        (35..=50).contains(&synced.len()),
        "about 50 synced extensions, got {}",
        synced.len()
    );
    assert!(synced.iter().all(|e| e["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g == "Azure AD")));
    assert!(
        synced.iter().filter(|e| e["has_photo"] == true).count() >= synced.len() / 2,
        "photos were synced"
    );

    // The Sync settings page: the picker searches Microsoft 365, a bad value is refused with a
    // sentence, Preview shows a dry run of unsaved values and writes nothing, Save stores them.
    let page_url = format!("{base}/console/settings/integrations/microsoft365/sync");
    let first_name = synced[0]["display_name"].as_str().unwrap().to_string();
    let q: String = first_name.chars().take(3).collect();
    let found: Vec<serde_json::Value> = browser
        .get(format!("{page_url}/directory"))
        .query(&[("kind", "users"), ("q", q.as_str())])
        .json_body()
        .await;
    assert!(
        found.iter().any(|f| f["name"] == first_name.as_str()),
        "picker finds {first_name}: {found:?}"
    );
    let r = browser
        .post(&page_url)
        .form(&sync_form(&csrf, &[("max_deletions", "lots")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("The most deletions per run must be a whole number"),
        "{page}"
    );
    let chosen: Vec<String> = synced[..3]
        .iter()
        .map(|e| e["m365_id"].as_str().unwrap().to_string())
        .collect();
    let ids = chosen.join("\n");
    let r = browser
        .post(format!("{page_url}/preview"))
        .form(&sync_form(
            &csrf,
            &[("scope", "users"), ("scope_ids", ids.as_str())],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("data-status=\"dry_run\"") && page.contains("id=\"report-disabled\""),
        "{page}"
    );
    assert_eq!(
        browser
            .get(format!("{base}/api/v1/extensions"))
            .send()
            .await
            .unwrap()
            .json::<Vec<serde_json::Value>>()
            .await
            .unwrap(),
        list,
        "Preview writes nothing"
    );
    let r = browser
        .post(&page_url)
        .form(&sync_form(&csrf, &[("nightly_at", "03:30")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = browser.get(&page_url).text_body().await;
    assert!(
        page.contains("value=\"03:30\"") && page.contains("saved"),
        "{page}"
    );

    // `pbx365 sync users --json --dry-run` prints the SPEC object and writes nothing.
    let token = token(&dir, &demo.config).await;
    let http = reqwest::Client::new();
    let runs_before: Vec<serde_json::Value> = http
        .get(format!("{base}/api/v1/sync/runs"))
        .bearer_auth(&token)
        .json_body()
        .await;
    let (code, out, err) = run(
        &dir,
        &["--config", &cfg, "sync", "users", "--json", "--dry-run"],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(report["status"], "dry_run");
    assert_eq!(report["kind"], "users");
    for key in RUN_REPORT_KEYS {
        assert!(report.get(key).is_some(), "{key} in {report}");
    }
    let runs_after: Vec<serde_json::Value> = http
        .get(format!("{base}/api/v1/sync/runs"))
        .bearer_auth(&token)
        .json_body()
        .await;
    assert_eq!(
        runs_before.len(),
        runs_after.len(),
        "a dry run records nothing"
    );
    assert_eq!(
        extensions(&http, &base, &token).await,
        list,
        "a dry run writes nothing"
    );

    // Without --json: a summary for a person (no progress bar when stderr is not a terminal).
    let (code, out, err) = run(&dir, &["--config", &cfg, "sync", "users"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("User sync completed (run "), "{out}");
    assert!(
        out.contains(" created, ") && out.contains(" skipped, "),
        "{out}"
    );

    // "Sync now" in the console runs a sync and shows its report.
    let r = browser
        .post(format!("{page_url}/now"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let shown = r.headers()["location"].to_str().unwrap().to_string();
    assert!(shown.starts_with("/console/sync/runs/"), "{shown}");
    let r = browser
        .post(format!("{page_url}/now"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "Sync now checks the CSRF token");

    // The demo connected through the Configure page and admin consent: the doctor agrees.
    let (code, out, err) = run(&dir, &["--config", &cfg, "m365", "doctor"], None).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("(5 permissions granted)"), "{out}");

    // Kinds with nothing configured say what to switch on.
    let (code, _, err) = run(&dir, &["--config", &cfg, "sync", "calendar"], None).await;
    assert_ne!(code, 0);
    assert!(err.contains("calendar status is off"), "{err}");
    let (code, _, err) = run(&dir, &["--config", &cfg, "sync", "contacts"], None).await;
    assert_ne!(code, 0);
    assert!(err.contains("contact sync is off"), "{err}");

    // POST /api/v1/sync/users with an API token; without one it is refused.
    let r = http
        .post(format!("{base}/api/v1/sync/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let done = sync_users(&http, &base, &token).await;
    assert_eq!(done["status"], "completed", "{done}");
    let got: serde_json::Value = http
        .get(format!(
            "{base}/api/v1/sync/runs/{}",
            done["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .json_body()
        .await;
    assert_eq!(got, done, "the run is recorded as returned");
    let history = browser
        .get(format!("{base}/console/sync"))
        .text_body()
        .await;
    let link = format!("/console/sync/runs/{}", done["id"].as_str().unwrap());
    assert!(history.contains(&link), "Sync history links to the run");
    let detail = browser.get(format!("{base}{link}")).text_body().await;
    assert!(
        detail.contains("data-status=\"completed\"") && detail.contains("id=\"run-summary\""),
        "{detail}"
    );

    // Mass deletion: 10 of ~45 synced users (over 10%) disappear in Microsoft 365.
    let keys_dir = tempfile::tempdir().unwrap();
    let (writer, control) = tenant_writer(&demo.config, &demo.tenant, keys_dir.path()).await;

    // `serve` keeps extensions current by itself: a rename in Microsoft 365 arrives through a
    // change notification to /api/m365/notifications and a delta round, within seconds.
    let renamed = synced[5]["m365_id"].as_str().unwrap().to_string();
    writer
        .send(pbx365_graph::users::update_request(
            &renamed,
            serde_json::json!({"displayName": "Renamed In Entra"}),
        ))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = extensions(&http, &base, &token).await;
        if now
            .iter()
            .any(|e| e["m365_id"] == renamed.as_str() && e["display_name"] == "Renamed In Entra")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rename did not arrive within 10 s; the demo said:\n{}",
            demo.server.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let list = extensions(&http, &base, &token).await;

    // Lost notifications from here on: the test decides when a sync runs, so a run sees every
    // deletion at once.
    control
        .post_json(
            "/_sim/faults",
            &serde_json::json!({"path": "/_none", "drop_notifications": true}),
        )
        .await
        .unwrap();
    let ids: Vec<String> = synced
        .iter()
        .map(|e| e["m365_id"].as_str().unwrap().to_string())
        .collect();
    for id in &ids[..10] {
        delete_user(&writer, id).await;
    }
    let held = sync_users(&http, &base, &token).await;
    assert_eq!(held["status"], "held", "{held}");
    assert_eq!(held["disabled"].as_array().unwrap().len(), 10);
    let enabled = |l: &[serde_json::Value]| l.iter().filter(|e| e["enabled"] == true).count();
    assert_eq!(
        enabled(&extensions(&http, &base, &token).await),
        enabled(&list),
        "nothing applied while held"
    );

    // Every console page shows the banner with what would be disabled.
    let page = browser
        .get(format!("{base}/console/extensions"))
        .text_body()
        .await;
    assert!(
        page.contains("id=\"held-banner\"") && page.contains("Approve these deletions"),
        "{page}"
    );
    let first = held["disabled"][0]["extension"].as_str().unwrap();
    assert!(page.contains(first), "the banner lists extension {first}");

    // Approving needs the CSRF token.
    let held_id = held["id"].as_str().unwrap();
    let approve = format!("{base}/console/sync/runs/{held_id}/approve");
    let r = browser
        .post(&approve)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = browser
        .post(&approve)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "approved, then synced");
    let detail = r.headers()["location"].to_str().unwrap().to_string();
    let page = browser.get(format!("{base}{detail}")).text_body().await;
    assert!(
        page.contains("data-status=\"completed\"") && page.contains("10 disabled"),
        "{page}"
    );
    assert!(
        !page.contains("held-banner"),
        "the banner is gone once applied"
    );
    assert_eq!(
        enabled(&extensions(&http, &base, &token).await),
        enabled(&list) - 10,
        "applied once"
    );

    // One-shot: the same approval cannot be replayed, and the next mass delete is held again.
    let r = browser
        .post(&approve)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    for id in &ids[10..20] {
        delete_user(&writer, id).await;
    }
    assert_eq!(sync_users(&http, &base, &token).await["status"], "held");

    let status = demo.server.terminate().await;
    assert!(status.success(), "the demo stops cleanly on SIGTERM");
}

on_both!(demo_connects_syncs_serves_and_holds_mass_deletions_until_approved => demo_body);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_without_a_connected_tenant_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!("sqlite://{}/x.db", dir.path().display()),
        "",
    );
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let (code, _, err) = run(
        dir.path(),
        &["--config", config.to_str().unwrap(), "sync", "users"],
        None,
    )
    .await;
    assert_ne!(code, 0);
    assert!(err.contains("Microsoft 365 is not connected"), "{err}");
    let server = Server::start(dir.path(), &["--config", config.to_str().unwrap()]).await;
    let token = token(dir.path(), &config).await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/sync/users", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Settings > Integrations > Microsoft 365"),
        "{body}"
    );
    let _ = tokio::time::timeout(Duration::from_secs(30), server.terminate()).await;
}
