//! Each Microsoft failure an admin can cause yields its own actionable sentence.

use chrono::{Duration, Utc};
use m365_sim::faults::FaultSpec;
use pbx365_domain::settings::AssertionAlg;
use pbx365_graph::keys::{generate_pair, generate_pair_valid, Slot};
use pbx365_graph::{GraphClient, GraphError};
use pbx365_testkit::tenant::{client, config, register, sim, PERMISSIONS as ALL_PERMISSIONS};

#[tokio::test]
async fn missing_admin_consent_says_to_click_sign_in() {
    let sim = sim(3).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, false).await;
    let err = client(&sim, &pbx, AssertionAlg::PS256)
        .list_users()
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::ConsentMissing { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("admin consent has not been granted"),
        "{err}"
    );
    assert_eq!(err.raw().unwrap().status, 403);
}

#[tokio::test]
async fn wrong_certificate_says_to_upload_public_key_pem_again() {
    let sim = sim(0).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
    // The app holds another pair's certificate only: pbx365's key is not registered.
    let other = register(&sim, &ALL_PERMISSIONS, true).await;
    let cfg = config(&sim, &other.client_id, AssertionAlg::PS256);
    let err = GraphClient::new(cfg, pbx.keys.clone())
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert!(
        matches!(err, GraphError::CertificateNotUploaded { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&other.client_id)
            && text.contains("does not match pbx365's key — upload public_key.pem again"),
        "{text}"
    );
    assert!(err.raw().unwrap().code == "AADSTS700027", "{:?}", err.raw());
}

#[tokio::test]
async fn unknown_application_id_says_it_is_not_registered_in_the_tenant() {
    let sim = sim(0).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let err = GraphClient::new(
        config(&sim, &unknown, AssertionAlg::PS256),
        pbx.keys.clone(),
    )
    .unwrap()
    .token()
    .await
    .unwrap_err();
    assert!(matches!(err, GraphError::UnknownApp { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!(
            "{unknown} is not registered in tenant {}",
            sim.tenant_id
        )),
        "{err}"
    );
}

#[tokio::test]
async fn expired_certificate_says_to_generate_a_new_pair() {
    let sim = sim(0).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
    // A pair whose certificate expired yesterday, uploaded to the app and used by pbx365.
    let now = Utc::now();
    let expired = generate_pair_valid(
        "pbx.test",
        now - Duration::days(800),
        now - Duration::days(1),
    )
    .unwrap();
    pbx.keys.install(Slot::Active, &expired).unwrap();
    sim.control()
        .add_certificate(&pbx.client_id, &expired.certificate_pem)
        .await
        .unwrap();
    let err = client(&sim, &pbx, AssertionAlg::PS256)
        .token()
        .await
        .unwrap_err();
    assert!(
        matches!(err, GraphError::CertificateExpired { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("has expired: generate a new key pair and upload public_key.pem"),
        "{err}"
    );
}

#[tokio::test]
async fn removed_permission_is_named_with_what_stops_working() {
    let sim = sim(3).await;
    let without_contacts: Vec<&str> = ALL_PERMISSIONS
        .iter()
        .copied()
        .filter(|p| *p != "Contacts.Read")
        .collect();
    let pbx = register(&sim, &without_contacts, true).await;
    let client = client(&sim, &pbx, AssertionAlg::PS256);
    let user = client.list_users().await.unwrap().remove(0);
    let err = client.contacts(&user.id, None).await.unwrap_err();
    assert!(
        matches!(err, GraphError::PermissionMissing { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("permission Contacts.Read is missing: contact sync is off"),
        "{err}"
    );
    assert!(
        err.raw().unwrap().request_id.is_some(),
        "the request id is kept for the log"
    );
    let token = client.token().await.unwrap();
    let missing: Vec<_> = pbx365_graph::missing_permissions(&token.roles)
        .iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(missing, ["Contacts.Read"]);
}

#[tokio::test]
async fn each_failure_has_a_distinct_sentence() {
    let sim = sim(0).await;
    let unconsented = register(&sim, &ALL_PERMISSIONS, false).await;
    let ok = register(&sim, &ALL_PERMISSIONS, true).await;
    let stranger = tempfile::tempdir().unwrap();
    let stranger_keys = pbx365_graph::KeyStore::new(stranger.path());
    stranger_keys
        .install(Slot::Active, &generate_pair("x.test").unwrap())
        .unwrap();
    let mut sentences = vec![
        client(&sim, &unconsented, AssertionAlg::PS256)
            .list_users()
            .await
            .unwrap_err()
            .to_string(),
        GraphClient::new(
            config(&sim, &ok.client_id, AssertionAlg::PS256),
            stranger_keys.clone(),
        )
        .unwrap()
        .token()
        .await
        .unwrap_err()
        .to_string(),
        GraphClient::new(
            config(&sim, &uuid::Uuid::new_v4().to_string(), AssertionAlg::PS256),
            stranger_keys,
        )
        .unwrap()
        .token()
        .await
        .unwrap_err()
        .to_string(),
    ];
    sentences.sort();
    sentences.dedup();
    assert_eq!(sentences.len(), 3, "{sentences:?}");
}

#[tokio::test]
async fn unreachable_identity_platform_names_the_host() {
    let sim = sim(0).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut cfg = config(&sim, &pbx.client_id, AssertionAlg::PS256);
    cfg.authority_url = format!("https://{closed}");
    cfg.retry.max_attempts = 2;
    let err = GraphClient::new(cfg, pbx.keys.clone())
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::Network { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("cannot reach 127.0.0.1: "),
        "{err}"
    );
}

#[tokio::test]
async fn untrusted_tls_certificate_points_at_m365_ca_file() {
    let sim = sim(0).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
    let mut cfg = config(&sim, &pbx.client_id, AssertionAlg::PS256);
    cfg.extra_ca_pem = None;
    let err = GraphClient::new(cfg, pbx.keys.clone())
        .unwrap()
        .token()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("TLS certificate is not trusted") && text.contains("m365.ca_file"),
        "{text}"
    );
}

#[tokio::test]
async fn throttling_and_outages_beyond_the_retry_budget_say_the_next_run_continues() {
    let sim = sim(2).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
    let mut cfg = config(&sim, &pbx.client_id, AssertionAlg::PS256);
    cfg.retry.max_attempts = 3;
    let client = GraphClient::new(cfg, pbx.keys.clone()).unwrap();
    let control = sim.control();
    control
        .add_fault(&FaultSpec {
            path: "/v1.0/users".into(),
            status: Some(429),
            retry_after: Some(0.2),
            ..FaultSpec::default()
        })
        .await
        .unwrap();
    let err = client.list_users().await.unwrap_err();
    assert!(
        matches!(err, GraphError::Throttled { attempts: 3, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("kept throttling pbx365 after 3 attempts"),
        "{err}"
    );

    control.clear_faults().await.unwrap();
    control
        .add_fault(&FaultSpec {
            path: "/v1.0/users".into(),
            status: Some(500),
            ..FaultSpec::default()
        })
        .await
        .unwrap();
    let err = client.list_users().await.unwrap_err();
    assert!(
        matches!(err, GraphError::ServiceUnavailable { attempts: 3, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("service problem (HTTP 500) after 3 attempts"),
        "{err}"
    );
    assert_eq!(client.retry_count(), 4);
}
