//! Throttling, outages and slow answers: the paged read still returns every user exactly once.

use m365_sim::faults::FaultSpec;
use pbx365_domain::settings::AssertionAlg;
use pbx365_graph::{GraphRequest, GraphUser, USER_SELECT};
use pbx365_testkit::log::Buffer;
use pbx365_testkit::tenant::{client, register, sim, PERMISSIONS as ALL_PERMISSIONS};
use std::collections::HashSet;

#[tokio::test]
async fn paged_read_of_5000_users_survives_429s_503s_and_latency_spikes() {
    // Everything runs on this test's thread, so a thread-local subscriber sees pbx365's log.
    let log = Buffer::default();
    let writer = log.clone();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish(),
    );
    let sim = sim(5000).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
    let client = client(&sim, &pbx, AssertionAlg::PS256);
    let control = sim.control();
    let users_path = "/v1.0/users".to_string();
    // Every 3rd request throttled with Retry-After 1, every 5th a 503 without Retry-After,
    // every 4th delayed by 2 s.
    control
        .add_fault(&FaultSpec {
            path: users_path.clone(),
            status: Some(429),
            retry_after: Some(1.0),
            every: Some(3),
            ..FaultSpec::default()
        })
        .await
        .unwrap();
    control
        .add_fault(&FaultSpec {
            path: users_path.clone(),
            status: Some(503),
            every: Some(5),
            ..FaultSpec::default()
        })
        .await
        .unwrap();
    control
        .add_fault(&FaultSpec {
            path: users_path,
            latency_ms: Some(2000),
            every: Some(4),
            ..FaultSpec::default()
        })
        .await
        .unwrap();

    let users: Vec<GraphUser> = client
        .get_all(GraphRequest::get(format!(
            "/users?$select={USER_SELECT}&$top=250"
        )))
        .await
        .unwrap();

    let ids: HashSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(users.len(), 5000, "every user once, no page read twice");
    assert_eq!(ids.len(), 5000, "no duplicates");
    let stats = client.stats();
    assert!(
        stats.retries >= 7,
        "20 pages under these faults need retries: {stats:?}"
    );
    assert_eq!(
        stats.requests,
        20 + stats.retries,
        "each retry is one extra request: {stats:?}"
    );
}
