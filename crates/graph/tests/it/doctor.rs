//! `pbx365 m365 doctor` against the sim: a healthy setup passes, a broken one says what to fix.

use pbx365_domain::settings::Settings;
use pbx365_graph::doctor::run_checks;
use pbx365_testkit::tenant::{register, sim, Pbx, PERMISSIONS as ALL_PERMISSIONS};

fn settings(sim: &m365_sim::SimHandle, pbx: &Pbx, ca_file: &std::path::Path) -> Settings {
    let mut s = Settings {
        data_dir: pbx.dir.path().to_path_buf(),
        ..Settings::default()
    };
    s.m365.tenant_id = Some(sim.tenant_id.clone());
    s.m365.client_id = Some(pbx.client_id.clone());
    s.m365.authority_url = sim.authority_url().to_string();
    s.m365.graph_url = sim.graph_url().to_string();
    s.m365.ca_file = Some(ca_file.to_path_buf());
    s
}

/// A stand-in for pbx365's notification receiver: answers Graph's validation request.
async fn receiver() -> String {
    use axum::extract::Query;
    use std::collections::HashMap;
    let app = axum::Router::new().route(
        "/api/m365/notifications",
        axum::routing::post(|Query(q): Query<HashMap<String, String>>| async move {
            q.get("validationToken").cloned().unwrap_or_default()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    format!("http://{addr}")
}

#[tokio::test]
async fn healthy_connection_passes_every_check_including_notifications() {
    let sim = sim(2).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
    let ca = pbx.dir.path().join("sim-ca.pem");
    std::fs::write(&ca, sim.ca_pem.as_deref().unwrap()).unwrap();
    let public = receiver().await;
    let checks = run_checks(&settings(&sim, &pbx, &ca), pbx.dir.path(), Some(&public)).await;
    for c in &checks {
        assert!(c.ok, "{c:?}");
    }
    let names: Vec<_> = checks.iter().map(|c| c.name.as_str()).collect();
    assert!(
        names.contains(&"permission Mail.Send") && names.contains(&"change notifications"),
        "{names:?}"
    );
}

#[tokio::test]
async fn missing_consent_fails_the_permission_checks_with_the_consent_sentence() {
    let sim = sim(0).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, false).await;
    let ca = pbx.dir.path().join("sim-ca.pem");
    std::fs::write(&ca, sim.ca_pem.as_deref().unwrap()).unwrap();
    let checks = run_checks(&settings(&sim, &pbx, &ca), pbx.dir.path(), None).await;
    let token = checks.iter().find(|c| c.name == "token").unwrap();
    assert!(token.ok, "{token:?}");
    let perm = checks
        .iter()
        .find(|c| c.name == "permission User.Read.All")
        .unwrap();
    assert!(
        !perm.ok && perm.detail.contains("admin consent has not been granted"),
        "{perm:?}"
    );
    let graph = checks.iter().find(|c| c.name == "Microsoft Graph").unwrap();
    assert!(
        !graph.ok
            && graph
                .fix
                .as_deref()
                .unwrap()
                .contains("Sign in to Microsoft 365"),
        "{graph:?}"
    );
}

#[tokio::test]
async fn wrong_certificate_fails_the_token_check_and_says_what_to_upload() {
    let sim = sim(0).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
    let other = register(&sim, &ALL_PERMISSIONS, true).await;
    let ca = pbx.dir.path().join("sim-ca.pem");
    std::fs::write(&ca, sim.ca_pem.as_deref().unwrap()).unwrap();
    let mut s = settings(&sim, &pbx, &ca);
    s.m365.client_id = Some(other.client_id.clone());
    let checks = run_checks(&s, pbx.dir.path(), None).await;
    let token = checks.iter().find(|c| c.name == "token").unwrap();
    assert!(
        !token.ok && token.detail.contains("upload public_key.pem again"),
        "{token:?}"
    );
    assert!(checks.iter().find(|c| c.name == "key pair").unwrap().ok);
}
