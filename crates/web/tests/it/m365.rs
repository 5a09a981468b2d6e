//! Settings > Integrations > Microsoft 365 > Configure over real HTTP against m365-sim over
//! HTTPS: connecting, each failure with its own sentence (page and doctor), forged callbacks,
//! the Application ID check, and what can and cannot be downloaded.

use chrono::{Duration, Utc};
use pbx365_app::m365::generate_pair_valid;
use pbx365_app::m365::{KeyStore, Slot};
use pbx365_testkit::db::{self, FreshDb};
use pbx365_testkit::on_both;
use pbx365_testkit::web::m365::{
    consent_round, hidden, location, prepare, start, text, Browser, M365App, Opts, BASE, CONFIGURE,
    FIVE,
};

async fn doctor_line(app: &M365App, name: &str) -> pbx365_app::m365::Check {
    app.doctor()
        .await
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("doctor has no {name:?} line"))
}

/// The names of the checks the page shows as failed, leaving out the change-notification
/// check: its receiver (`/api/m365/notifications`) belongs to the webhook issue.
fn failed_checks(page: &str) -> Vec<String> {
    page.split("data-check=\"")
        .skip(1)
        .filter_map(|rest| {
            let name = rest.split('"').next()?;
            rest.starts_with(&format!("{name}\" data-ok=\"false\""))
                .then(|| name.to_string())
        })
        .filter(|n| n != "change notifications")
        .collect()
}

/// Runs "Check connection" and returns the page text.
async fn check_connection(b: &Browser) -> String {
    let res = b.post("check", &[]).await;
    assert_eq!(res.status().as_u16(), 303);
    b.page_text().await
}

async fn connects_and_shows_five_granted_permissions(db: FreshDb) {
    let app = start(db, Opts::default()).await;
    let b = Browser::signed_in(&app).await;
    let page = b.page_text().await;
    assert!(
        page.contains(&format!("{}/oauth2office2", app.base)),
        "redirect URI shown"
    );
    prepare(&app, &b).await;

    let page = consent_round(&app, &b, true).await;
    assert!(page.contains("all five permissions are granted"), "{page}");
    assert!(page.contains("5 of 5"), "{page}");
    for p in FIVE {
        assert!(
            page.contains(&format!("data-permission=\"{p}\" data-granted=\"true\"")),
            "{p} granted: {page}"
        );
    }
    // The tenant is recorded as a console setting (it wins over the file) and in effect.
    assert_eq!(app.tenant_id().as_deref(), Some(app.sim.tenant_id.as_str()));
    let stored = app
        .store
        .get_kv("setting:m365.tenant_id")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, format!("\"{}\"", app.sim.tenant_id));
    assert!(page.contains(&app.sim.tenant_id) && page.contains(&app.client_id));

    // Check connection: every line ok, the same as the doctor.
    let page = check_connection(&b).await;
    assert!(
        page.contains("data-check=\"permission User.Read.All\" data-ok=\"true\""),
        "{page}"
    );
    assert_eq!(failed_checks(&page), Vec::<String>::new(), "{page}");
    assert!(
        app.doctor().await.iter().all(|c| c.ok),
        "{:?}",
        app.doctor().await
    );
}
on_both!(console_connects_and_shows_five_granted_permissions => connects_and_shows_five_granted_permissions);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_consent_says_consent_was_not_granted_and_records_nothing() {
    let app = start(db::sqlite().await, Opts::default()).await;
    let b = Browser::signed_in(&app).await;
    prepare(&app, &b).await;
    let page = consent_round(&app, &b, false).await;
    assert!(
        page.contains("admin consent has not been granted"),
        "{page}"
    );
    assert_eq!(app.tenant_id(), None, "nothing recorded");
    assert!(
        page.contains("Not checked yet"),
        "no permissions recorded: {page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_consent_is_named_by_check_connection_and_doctor() {
    let app = start(
        db::sqlite().await,
        Opts {
            tenant_in_file: true,
        },
    )
    .await;
    let b = Browser::signed_in(&app).await;
    prepare(&app, &b).await;
    let page = check_connection(&b).await;
    assert!(
        page.contains("admin consent has not been granted"),
        "{page}"
    );
    let line = doctor_line(&app, "permission User.Read.All").await;
    assert!(
        !line.ok && line.detail.contains("admin consent has not been granted"),
        "{line:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_certificate_says_upload_public_key_pem_again() {
    let app = start(
        db::sqlite().await,
        Opts {
            tenant_in_file: true,
        },
    )
    .await;
    let b = Browser::signed_in(&app).await;
    assert_eq!(
        b.save_client_id(&app.client_id).await.status().as_u16(),
        303
    );
    b.keygen().await;
    // The admin uploads some other certificate.
    let other = pbx365_app::m365::generate_pair("elsewhere.example").unwrap();
    app.sim
        .control()
        .add_certificate(&app.client_id, &other.certificate_pem)
        .await
        .unwrap();

    let page = consent_round(&app, &b, true).await;
    assert!(
        page.contains("does not match pbx365's key — upload public_key.pem again"),
        "{page}"
    );
    assert_eq!(
        app.store.get_kv("setting:m365.tenant_id").await.unwrap(),
        None,
        "nothing recorded without a token"
    );

    let line = doctor_line(&app, "token").await;
    assert!(
        !line.ok && line.detail.contains("does not match pbx365's key"),
        "{line:?}"
    );
    let page = check_connection(&b).await;
    assert!(page.contains("does not match pbx365's key"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_app_id_says_it_is_not_registered() {
    let app = start(
        db::sqlite().await,
        Opts {
            tenant_in_file: true,
        },
    )
    .await;
    let b = Browser::signed_in(&app).await;
    let unknown = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    assert_eq!(b.save_client_id(unknown).await.status().as_u16(), 303);
    b.keygen().await;
    let page = check_connection(&b).await;
    assert!(
        page.contains(&format!(
            "the application (client) ID {unknown} is not registered"
        )),
        "{page}"
    );
    let line = doctor_line(&app, "token").await;
    assert!(
        !line.ok && line.detail.contains("is not registered"),
        "{line:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificate_says_it_has_expired_and_shows_the_banner() {
    let app = start(db::sqlite().await, Opts::default()).await;
    let b = Browser::signed_in(&app).await;
    assert_eq!(
        b.save_client_id(&app.client_id).await.status().as_u16(),
        303
    );
    let now = Utc::now();
    let pair = generate_pair_valid(
        "127.0.0.1",
        now - Duration::days(800),
        now - Duration::days(70),
    )
    .unwrap();
    KeyStore::new(app.state.data_dir())
        .install(Slot::Active, &pair)
        .unwrap();
    app.sim
        .control()
        .add_certificate(&app.client_id, &b.download_pem().await)
        .await
        .unwrap();

    let page = consent_round(&app, &b, true).await;
    assert!(
        page.contains("has expired: generate a new key pair and upload public_key.pem"),
        "{page}"
    );
    assert!(
        page.contains("The Microsoft 365 certificate expired on"),
        "banner: {page}"
    );
    assert_eq!(app.tenant_id(), None);

    // With the tenant known the doctor fails the expiry and the token lines.
    let line = doctor_line(&app, "certificate expiry").await;
    assert!(!line.ok && line.detail.contains("expired"), "{line:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_expiring_soon_shows_a_banner() {
    let app = start(db::sqlite().await, Opts::default()).await;
    let b = Browser::signed_in(&app).await;
    let now = Utc::now();
    let pair = generate_pair_valid(
        "127.0.0.1",
        now - Duration::days(700),
        now + Duration::days(6),
    )
    .unwrap();
    KeyStore::new(app.state.data_dir())
        .install(Slot::Active, &pair)
        .unwrap();
    let page = b.page_text().await;
    assert!(
        page.contains("The Microsoft 365 certificate expires on") && page.contains("(in 5 days)"),
        "{page}"
    );
    // The log warning goes out once per threshold (the page view above sent the 7-day one).
    let dir = app.state.data_dir();
    assert_eq!(
        pbx365_web::m365::warn_certificate_expiry(&app.store, dir, now).await,
        None
    );
    let later = now + Duration::days(5) + Duration::hours(12);
    let one_day = pbx365_web::m365::warn_certificate_expiry(&app.store, dir, later).await;
    assert!(
        one_day.is_some_and(|s| s.contains("(in 0 days)")),
        "one-day warning"
    );
    assert_eq!(
        pbx365_web::m365::warn_certificate_expiry(&app.store, dir, later).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_permission_is_named_with_what_stops_working() {
    let app = start(db::sqlite().await, Opts::default()).await;
    let b = Browser::signed_in(&app).await;
    prepare(&app, &b).await;
    let four: Vec<&str> = FIVE
        .iter()
        .copied()
        .filter(|p| *p != "Contacts.Read")
        .collect();
    app.sim
        .control()
        .set_permissions(&app.client_id, &four, false)
        .await
        .unwrap();

    let page = consent_round(&app, &b, true).await;
    assert!(
        page.contains("1 of the five permissions is missing: Contacts.Read"),
        "{page}"
    );
    assert!(page.contains("4 of 5"), "{page}");
    assert!(
        page.contains("data-permission=\"Contacts.Read\" data-granted=\"false\""),
        "{page}"
    );
    assert!(page.contains("contact sync is off"), "{page}");
    // The tenant is proven, so it is recorded.
    assert_eq!(app.tenant_id().as_deref(), Some(app.sim.tenant_id.as_str()));

    let line = doctor_line(&app, "permission Contacts.Read").await;
    assert!(
        !line.ok
            && line
                .detail
                .contains("permission Contacts.Read is missing: contact sync is off"),
        "{line:?}"
    );
    let page = check_connection(&b).await;
    assert!(
        page.contains("permission Contacts.Read is missing: contact sync is off"),
        "{page}"
    );
}

/// A forged callback leaves the tenant, the permissions and the audit log as they were.
async fn assert_nothing_changed(app: &M365App) {
    assert_eq!(app.tenant_id(), None);
    assert_eq!(
        app.store.get_kv("setting:m365.tenant_id").await.unwrap(),
        None
    );
    assert_eq!(
        app.store.get_kv("m365:last_permissions").await.unwrap(),
        None
    );
}

async fn forged_callbacks_change_nothing(db: FreshDb) {
    let app = start(db, Opts::default()).await;
    let b = Browser::signed_in(&app).await;
    prepare(&app, &b).await;
    let tenant = app.sim.tenant_id.clone();
    let forged_page =
        |page: &str| page.contains("does not belong to a sign-in started from this browser");

    // No state at all.
    let res = b
        .callback(&format!(
            "{}/oauth2office2?admin_consent=True&tenant={tenant}",
            app.base
        ))
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
    assert!(forged_page(&b.page_text().await));
    assert_nothing_changed(&app).await;

    // A state pbx365 never issued.
    b.callback(&format!(
        "{}/oauth2office2?admin_consent=True&tenant={tenant}&state=made-up",
        app.base
    ))
    .await;
    assert!(forged_page(&b.page_text().await));
    assert_nothing_changed(&app).await;

    // Another session's state: a second admin browser starts consent; this one presents it.
    let other = Browser::signed_in(&app).await;
    let consent_url = other.start_consent().await;
    let state = url::Url::parse(&consent_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let forged = format!(
        "{}/oauth2office2?admin_consent=True&tenant={tenant}&state={state}",
        app.base
    );
    b.callback(&forged).await;
    assert!(forged_page(&b.page_text().await));
    assert_nothing_changed(&app).await;

    // Without any console session: a page of its own, nothing changed.
    let consent_url = other.start_consent().await;
    let state2 = url::Url::parse(&consent_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let stranger = Browser::new(&app);
    let res = stranger
        .callback(&format!(
            "{}/oauth2office2?admin_consent=True&tenant={tenant}&state={state2}",
            app.base
        ))
        .await;
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
    let body = text(&res.text().await.unwrap());
    assert!(
        body.contains("does not belong to a sign-in started from this browser"),
        "{body}"
    );
    assert_nothing_changed(&app).await;

    // A real round works, and replaying its callback afterwards is refused.
    let consent_url = b.start_consent().await;
    let back = pbx365_testkit::web::m365::consent_at_sim(&app, &consent_url, true).await;
    let res = b.callback(&back).await;
    assert_eq!(location(&res), CONFIGURE);
    assert!(b
        .page_text()
        .await
        .contains("all five permissions are granted"));
    assert_eq!(app.tenant_id().as_deref(), Some(tenant.as_str()));
    b.callback(&back).await;
    assert!(forged_page(&b.page_text().await), "replay refused");
}
on_both!(forged_callbacks => forged_callbacks_change_nothing);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_tenant_is_confirmed_by_the_token_not_trusted() {
    let app = start(db::sqlite().await, Opts::default()).await;
    let b = Browser::signed_in(&app).await;
    prepare(&app, &b).await;
    let consent_url = b.start_consent().await;
    let back = pbx365_testkit::web::m365::consent_at_sim(&app, &consent_url, true).await;
    // Swap the tenant the answer names for another one.
    let other_tenant = "11111111-2222-4333-8444-555555555555";
    let tampered = back.replace(&app.sim.tenant_id, other_tenant);
    assert_ne!(tampered, back);
    b.callback(&tampered).await;
    let page = b.page_text().await;
    assert!(page.contains("could not get a token for tenant"), "{page}");
    assert!(page.contains("Nothing was recorded"), "{page}");
    assert_eq!(app.tenant_id(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_application_id_is_refused_with_a_sentence_and_kept_in_the_field() {
    let app = start(db::sqlite().await, Opts::default()).await;
    let b = Browser::signed_in(&app).await;
    let res = b.save_client_id("not-a-guid").await;
    assert_eq!(res.status().as_u16(), 422);
    let html = res.text().await.unwrap();
    assert!(text(&html).contains("Application (client) ID"), "{html}");
    assert!(html.contains("id=\"client-id-error\""), "{html}");
    assert_eq!(
        hidden_value(&html, "client_id"),
        "not-a-guid",
        "the typed value stays"
    );
    assert_eq!(app.state.settings().m365.client_id, None, "nothing saved");
    assert_eq!(
        app.store.get_kv("setting:m365.client_id").await.unwrap(),
        None
    );

    // A form without the session's CSRF token changes nothing either.
    let res = b
        .http
        .post(format!("{}{BASE}/client-id", app.base))
        .form(&[("client_id", app.client_id.as_str()), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(app.state.settings().m365.client_id, None);

    // A GUID in braces is accepted in its canonical form.
    let res = b
        .save_client_id(&format!("{{{}}}", app.client_id.to_uppercase()))
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(
        app.state.settings().m365.client_id.as_deref(),
        Some(app.client_id.as_str())
    );
}

fn hidden_value(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\" name=\"{id}\" class=\"mono\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {id} input"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_key_pem_is_a_certificate_and_the_private_key_is_never_served() {
    let app = start(db::sqlite().await, Opts::default()).await;
    let b = Browser::signed_in(&app).await;
    // Before a key pair exists there is nothing to download.
    assert_eq!(
        b.get(&format!("{BASE}/public_key.pem"))
            .await
            .status()
            .as_u16(),
        404
    );
    b.keygen().await;
    let res = b.get(&format!("{BASE}/public_key.pem")).await;
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"public_key.pem\""
    );
    let pem = res.text().await.unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert!(!pem.contains("PRIVATE"), "{pem}");
    let info = pbx365_app::m365::CertificateInfo::from_pem(&pem).expect("parses as a certificate");
    assert!(info.subject.contains("CN=127.0.0.1"), "{}", info.subject);
    let page = b.page_text().await;
    assert!(page.contains(&info.thumbprint_hex), "thumbprint shown");

    // An independent X.509 parser agrees: v3, RSA 2048, self-signed, ~2 years.
    if let Some(report) = python_x509(&pem) {
        assert_eq!(report["version"], "v3", "{report}");
        assert_eq!(report["key_size"], 2048, "{report}");
        assert_eq!(report["self_signed"], true, "{report}");
        let days = report["days"].as_i64().unwrap();
        assert!((729..=731).contains(&days), "{report}");
    }

    // The key file exists (0600) but no URL serves it.
    let key_file = KeyStore::new(app.state.data_dir()).path(Slot::Active);
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    assert!(key_text.contains("PRIVATE KEY"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    for path in [
        format!("{BASE}/private_key.pem"),
        format!("{BASE}/credential.pem"),
        format!("{BASE}/public_key.pem?slot=private"),
        "/static/credential.pem".into(),
        "/static/..%2Fm365%2Fcredential.pem".into(),
        "/m365/credential.pem".into(),
        "/data/m365/credential.pem".into(),
        CONFIGURE.into(),
        "/console/settings/integrations/microsoft365".into(),
    ] {
        let body = b.get(&path).await.text().await.unwrap();
        assert!(
            !body.contains("PRIVATE KEY"),
            "{path} leaks the private key"
        );
    }
    // Signed out, not even the certificate is served.
    let stranger = Browser::new(&app);
    let res = stranger.get(&format!("{BASE}/public_key.pem")).await;
    assert_eq!(res.status().as_u16(), 303, "sign-in required");
}

/// The Python with Microsoft's client libraries: the test script's venv (`$venv`, or `.venv` at
/// the repository root), else the system `python3`.
fn python() -> String {
    let root_venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python");
    std::env::var("venv")
        .ok()
        .map(|v| format!("{v}/bin/python"))
        .filter(|p| std::path::Path::new(p).exists())
        .or_else(|| {
            std::path::Path::new(root_venv)
                .exists()
                .then(|| root_venv.to_string())
        })
        .unwrap_or_else(|| "python3".to_string())
}

/// Runs a Python script with `stdin`; `None` (with a notice) when Python or `module` is missing,
/// except under CI, where they must be there.
fn run_python(script: &str, stdin: &str, module: &str) -> Option<serde_json::Value> {
    use std::io::Write;
    // requests lets these override MSAL's own `verify=<sim CA>`: trust exactly the sim's CA.
    let child = std::process::Command::new(python())
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "Python is needed in CI: {e}"
            );
            eprintln!("notice: Python not available ({e}); skipping the {module} check");
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains(&format!("No module named '{module}'")) {
        assert!(
            std::env::var_os("CI").is_none(),
            "Python {module} is needed in CI (scripts/test installs it)"
        );
        eprintln!("notice: Python {module} not installed; skipping this check");
        return None;
    }
    assert!(out.status.success(), "the {module} check failed: {stderr}");
    Some(
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout))),
    )
}

/// Parses `pem` with Python `cryptography`.
fn python_x509(pem: &str) -> Option<serde_json::Value> {
    let script = r#"
import json, sys
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa, padding
c = x509.load_pem_x509_certificate(sys.stdin.buffer.read())
k = c.public_key()
ok = isinstance(k, rsa.RSAPublicKey)
c.public_key().verify(c.signature, c.tbs_certificate_bytes, padding.PKCS1v15(), c.signature_hash_algorithm)
print(json.dumps({"version": c.version.name, "key_size": k.key_size if ok else 0,
  "self_signed": c.issuer == c.subject, "days": (c.not_valid_after_utc - c.not_valid_before_utc).days}))
"#;
    run_python(script, pem, "cryptography")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_key_pair_waits_for_its_certificate_and_the_old_one_keeps_working() {
    let app = start(db::sqlite().await, Opts::default()).await;
    let b = Browser::signed_in(&app).await;
    let first = prepare(&app, &b).await;
    let page = consent_round(&app, &b, true).await;
    assert!(page.contains("all five permissions are granted"), "{page}");

    // Rotation: the new certificate is offered, the old key still gets tokens.
    b.keygen().await;
    let second = b.download_pem().await;
    assert_ne!(first, second);
    assert!(b.page_text().await.contains("New certificate"));
    assert_eq!(
        failed_checks(&check_connection(&b).await),
        Vec::<String>::new(),
        "old key still works"
    );
    let keys = KeyStore::new(app.state.data_dir());
    assert!(
        keys.exists(Slot::Pending),
        "not promoted before Microsoft accepts it"
    );

    // Once uploaded, the next token is obtained with it and it becomes the active pair.
    app.sim
        .control()
        .add_certificate(&app.client_id, &second)
        .await
        .unwrap();
    assert_eq!(
        failed_checks(&check_connection(&b).await),
        Vec::<String>::new()
    );
    assert!(!keys.exists(Slot::Pending));
    let active = keys.load(Slot::Active).unwrap().unwrap();
    assert_eq!(active.certificate().pem.trim(), second.trim());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sends_the_browser_to_admin_consent_with_a_single_use_state() {
    let app = start(db::sqlite().await, Opts::default()).await;
    let b = Browser::signed_in(&app).await;
    // Without an app id there is nothing to consent to.
    b.start_consent().await;
    assert!(b
        .page_text()
        .await
        .contains("Enter the Application (client) ID"));
    prepare(&app, &b).await;
    let url = url::Url::parse(&b.start_consent().await).unwrap();
    assert_eq!(url.path(), "/organizations/v2.0/adminconsent");
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], app.client_id);
    assert_eq!(q["scope"], "https://graph.microsoft.com/.default");
    assert_eq!(q["redirect_uri"], format!("{}/oauth2office2", app.base));
    assert!(q["state"].len() >= 43, "256-bit state");
    // Stored hashed only.
    let again = url::Url::parse(&b.start_consent().await).unwrap();
    let q2: std::collections::HashMap<String, String> = again.query_pairs().into_owned().collect();
    assert_ne!(q["state"], q2["state"], "a new state per sign-in");
    // The sign-in itself is a POST with the CSRF token: a cross-site GET cannot start it.
    let res = b.get(&format!("{BASE}/signin")).await;
    assert_eq!(res.status().as_u16(), 405);
    let res = b
        .http
        .post(format!("{}{BASE}/signin", app.base))
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let _ = hidden;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_gets_a_token_with_the_key_pair_pbx365_generated() {
    let app = start(db::sqlite().await, Opts::default()).await;
    let b = Browser::signed_in(&app).await;
    prepare(&app, &b).await;
    consent_round(&app, &b, true).await;
    // The pair as pbx365 stored it: private key + certificate in one 0600 file.
    let stored =
        std::fs::read_to_string(KeyStore::new(app.state.data_dir()).path(Slot::Active)).unwrap();
    let thumb = KeyStore::new(app.state.data_dir())
        .load(Slot::Active)
        .unwrap()
        .unwrap()
        .certificate()
        .thumbprint_hex
        .clone();
    let input = serde_json::json!({
        "pem": stored,
        "thumbprint": thumb,
        "authority": format!("{}/{}", app.sim.authority_url(), app.sim.tenant_id),
        "client_id": app.client_id,
        "ca_file": app.state.settings().m365.ca_file.clone().unwrap(),
    });
    let script = r#"
import json, sys, base64
import msal
i = json.load(sys.stdin)
pem = i["pem"]
key = pem[pem.index("-----BEGIN PRIVATE KEY-----"):pem.index("-----END PRIVATE KEY-----") + 25]
cert = pem[pem.index("-----BEGIN CERTIFICATE-----"):]
app = msal.ConfidentialClientApplication(i["client_id"], authority=i["authority"],
    client_credential={"private_key": key, "thumbprint": i["thumbprint"], "public_certificate": cert},
    verify=i["ca_file"], instance_discovery=False, token_cache=msal.TokenCache())
r = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
t = r.get("access_token")
claims = json.loads(base64.urlsafe_b64decode(t.split(".")[1] + "==")) if t else {}
print(json.dumps({"ok": bool(t), "error": r.get("error_description"), "roles": claims.get("roles", []), "tid": claims.get("tid")}))
"#;
    if let Some(r) = run_python(script, &input.to_string(), "msal") {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["tid"], app.sim.tenant_id.as_str(), "{r}");
        assert_eq!(r["roles"].as_array().unwrap().len(), 5, "{r}");
    }
}
