//! App-only tokens: both assertion formats, caching, single-flight refresh, invalidation.

use pbx365_domain::settings::AssertionAlg;
use pbx365_testkit::tenant::{
    client, register, sim, token_requests, PERMISSIONS as ALL_PERMISSIONS,
};
use std::sync::Arc;

#[tokio::test]
async fn ps256_assertion_gets_a_token_carrying_the_granted_permissions_and_tenant() {
    let sim = sim(0).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
    let client = client(&sim, &pbx, AssertionAlg::PS256);
    let token = client.token().await.unwrap();
    let mut roles = token.roles.clone();
    roles.sort();
    assert_eq!(roles, ALL_PERMISSIONS);
    assert_eq!(token.tenant_id.as_deref(), Some(sim.tenant_id.as_str()));
    assert!(pbx365_graph::missing_permissions(&token.roles).is_empty());
}

#[tokio::test]
async fn rs256_assertion_with_sha1_thumbprint_also_gets_a_token() {
    let sim = sim(3).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
    let client = client(&sim, &pbx, AssertionAlg::RS256);
    let users = client.list_users().await.unwrap();
    assert!(!users.is_empty());
}

#[tokio::test]
async fn cached_token_is_reused_and_concurrent_callers_share_one_token_request() {
    let sim = sim(0).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
    let client = Arc::new(client(&sim, &pbx, AssertionAlg::PS256));
    sim.control().clear_stats().await.unwrap();
    let calls: Vec<_> = (0..25)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.token().await.map(|t| t.secret().len()) })
        })
        .collect();
    for c in calls {
        assert!(c.await.unwrap().unwrap() > 0);
    }
    client.token().await.unwrap();
    assert_eq!(
        token_requests(&sim).await,
        1,
        "25 concurrent callers + 1 later call share one token"
    );
    assert_eq!(client.stats().token_requests, 1);
}

#[tokio::test]
async fn invalidate_fetches_the_new_permissions_after_admin_consent() {
    let sim = sim(0).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, false).await;
    let client = client(&sim, &pbx, AssertionAlg::PS256);
    assert!(client.token().await.unwrap().roles.is_empty());
    sim.control()
        .set_permissions(&pbx.client_id, &ALL_PERMISSIONS, true)
        .await
        .unwrap();
    // The cached token keeps the roles it was issued with…
    assert!(client.token().await.unwrap().roles.is_empty());
    // …until the cache is bypassed, as the consent callback does.
    client.tokens().invalidate().await;
    assert_eq!(client.token().await.unwrap().roles.len(), 5);
}
