//! Hygiene (issue 9 item 6): the held-run banner comes from one small row, and request metrics
//! only carry known methods and routes.

use pbx365_domain::{ReportItem, SyncKind, SyncReport, SyncStatus};
use pbx365_testkit::db::FreshDb;
use pbx365_testkit::on_both;
use pbx365_testkit::web::console::{start_on, ConsoleApp, ADMIN, PASSWORD};
use pbx365_testkit::web::hidden;
use pbx365_testkit::web::server::TestServer;
use reqwest::Client;

/// A cookie-keeping client signed in to the console.
async fn signed_in(app: &ConsoleApp) -> Client {
    pbx365_web::server::install_crypto_provider();
    let http = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(format!("{}/console/login", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let login_csrf = hidden(&page, "login_csrf");
    let res = http
        .post(format!("{}/console/login", app.base))
        .form(&[
            ("username", ADMIN),
            ("password", PASSWORD),
            ("return_to", ""),
            ("login_csrf", login_csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303, "sign-in succeeds");
    http
}

async fn page(app: &ConsoleApp, http: &Client, path: &str) -> String {
    let res = http
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "{path}");
    res.text().await.unwrap()
}

async fn finished(
    app: &ConsoleApp,
    kind: SyncKind,
    status: SyncStatus,
    report: &SyncReport,
) -> String {
    let store = &app.state.store;
    let run = store.start_sync_run(kind).await.unwrap();
    store
        .finish_sync_run(&run.id, status, report)
        .await
        .unwrap();
    run.id
}

async fn the_held_banner_links_the_held_run_and_goes_after_a_completed_run(db: FreshDb) {
    let app = start_on(db, None).await;
    let http = signed_in(&app).await;
    assert!(!page(&app, &http, "/console/extensions")
        .await
        .contains("held-banner"));

    let report = SyncReport {
        disabled: vec![ReportItem {
            extension: Some("4711".into()),
            name: Some("Dora Held".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let held = finished(&app, SyncKind::Users, SyncStatus::Held, &report).await;
    for path in ["/console/extensions", "/console/sync"] {
        let html = page(&app, &http, path).await;
        assert!(html.contains("id=\"held-banner\""), "{path}: {html}");
        assert!(
            html.contains("4711 Dora Held"),
            "{path} lists the held disable"
        );
        assert!(
            html.contains(&format!("href=\"/console/sync/runs/{held}\"")),
            "{path} links the run"
        );
        assert!(
            html.contains(&format!("action=\"/console/sync/runs/{held}/approve\"")),
            "{path} approves the run"
        );
    }
    let run_page = page(&app, &http, &format!("/console/sync/runs/{held}")).await;
    assert!(run_page.contains("held-banner"));

    // Another kind finishing does not end the hold of user sync.
    finished(
        &app,
        SyncKind::Contacts,
        SyncStatus::Completed,
        &SyncReport::default(),
    )
    .await;
    assert!(page(&app, &http, "/console/extensions")
        .await
        .contains("held-banner"));
    // A running user sync does not either: the newest finished one counts.
    let running = app
        .state
        .store
        .start_sync_run(SyncKind::Users)
        .await
        .unwrap();
    assert!(page(&app, &http, "/console/extensions")
        .await
        .contains("held-banner"));

    app.state
        .store
        .finish_sync_run(&running.id, SyncStatus::Completed, &SyncReport::default())
        .await
        .unwrap();
    for path in ["/console/extensions", "/console/sync"] {
        assert!(
            !page(&app, &http, path).await.contains("held-banner"),
            "{path}: the banner is gone after a completed run"
        );
    }
}

async fn metrics_label_only_known_methods_and_routes(db: FreshDb) {
    // Installed before the first request, as `pbx365 serve` does.
    let _ = pbx365_web::metrics::handle();
    let server = TestServer::start(db).await;
    let odd = reqwest::Method::from_bytes(b"BREW").unwrap();
    let random = format!("/no-such-page-{}", uuid_like());
    for (method, path) in [
        (odd.clone(), "/healthz".to_string()),
        (odd.clone(), random.clone()),
        (reqwest::Method::GET, random.clone()),
        (
            reqwest::Method::GET,
            format!("{random}/deeper/{}", uuid_like()),
        ),
        (reqwest::Method::GET, "/healthz".to_string()),
        (reqwest::Method::GET, format!("/api/v1{random}")),
        (odd.clone(), format!("/api/v1/extensions{random}")),
        (reqwest::Method::GET, format!("/console{random}")),
        (reqwest::Method::POST, format!("/api/m365{random}")),
    ] {
        server
            .http
            .request(method, server.url(&path))
            .send()
            .await
            .unwrap();
    }
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let requests: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("pbx365_http_requests_total{"))
        .collect();
    assert!(!requests.is_empty(), "{metrics}");
    assert!(!metrics.contains("BREW"), "{metrics}");
    assert!(!metrics.contains("no-such-page"), "{metrics}");
    assert!(
        requests
            .iter()
            .any(|l| l.contains("method=\"other\"") && l.contains("route=\"/healthz\"")),
        "{metrics}"
    );
    assert!(
        requests
            .iter()
            .any(|l| l.contains("method=\"GET\"") && l.contains("route=\"unmatched\"")),
        "{metrics}"
    );
    for line in requests {
        let method = line
            .split("method=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap();
        assert!(
            ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "other"].contains(&method),
            "{line}"
        );
    }
}

/// A random hex word (a made-up path segment).
fn uuid_like() -> String {
    format!("{:016x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

on_both!(
    the_held_banner_links_the_held_run_and_goes_after_a_completed_run,
    metrics_label_only_known_methods_and_routes,
);
