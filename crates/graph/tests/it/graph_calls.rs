//! Delta rounds, `$batch`, photos and mail against the sim.

use m365_sim::faults::FaultSpec;
use pbx365_domain::settings::AssertionAlg;
use pbx365_graph::{BatchRequest, GraphError, MailMessage, NextOrDelta, Recipient, UserChange};
use pbx365_testkit::tenant::{client, register, sim, PERMISSIONS as ALL_PERMISSIONS};
use std::collections::HashSet;

#[tokio::test]
async fn delta_round_ends_with_a_delta_link_and_an_expired_link_asks_for_a_full_resync() {
    let sim = sim(450).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
    let client = client(&sim, &pbx, AssertionAlg::PS256);
    let mut link = client.users_delta_start();
    let mut seen = HashSet::new();
    let mut pages = 0;
    let delta_link = loop {
        let page = client.users_delta_page(&link).await.unwrap();
        pages += 1;
        for item in page.items {
            if let UserChange::Changed(u) = item {
                assert!(seen.insert(u.id), "a user twice in one round");
            }
        }
        // The caller has applied the page; only now does it move on (and persist the link).
        match page.next {
            NextOrDelta::Next(next) => link = next,
            NextOrDelta::Delta(delta) => break delta,
        }
    };
    assert_eq!(seen.len(), 450);
    assert!(pages > 1, "the round spans several pages");

    // Nothing changed: the next round is empty and hands back a new delta link.
    let page = client.users_delta_page(&delta_link).await.unwrap();
    assert!(page.items.is_empty());
    assert!(matches!(page.next, NextOrDelta::Delta(_)));

    sim.control()
        .add_fault(&FaultSpec {
            path: "/v1.0/users/delta".into(),
            expire_delta_tokens: Some(true),
            ..FaultSpec::default()
        })
        .await
        .unwrap();
    let err = client.users_delta_page(&delta_link).await.unwrap_err();
    assert!(matches!(err, GraphError::DeltaExpired { .. }), "{err:?}");
    assert!(err.to_string().contains("full resync"), "{err}");
}

#[tokio::test]
async fn batch_answers_each_request_in_order_and_retries_throttled_sub_requests() {
    let sim = sim(30).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
    let client = client(&sim, &pbx, AssertionAlg::PS256);
    let users = client.list_users().await.unwrap();
    sim.control()
        .add_fault(&FaultSpec {
            path: "^/v1.0/users/[^/]+$".into(),
            status: Some(429),
            retry_after: Some(1.0),
            every: Some(4),
            ..FaultSpec::default()
        })
        .await
        .unwrap();
    let requests: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            BatchRequest::get(
                i.to_string(),
                format!("/users/{}?$select=id,displayName", u.id),
            )
        })
        .collect();
    let answers = client.batch(requests).await.unwrap();
    assert_eq!(answers.len(), users.len());
    for (i, (answer, user)) in answers.iter().zip(&users).enumerate() {
        assert_eq!(answer.id, i.to_string());
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.body.as_ref().unwrap()["id"], user.id.as_str());
    }
    assert!(
        client.retry_count() > 0,
        "throttled sub-requests were retried"
    );
}

#[tokio::test]
async fn missing_photo_is_none_not_an_error() {
    let sim = sim(5).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
    let client = client(&sim, &pbx, AssertionAlg::PS256);
    for user in client.list_users().await.unwrap() {
        let meta = client.photo_meta(&user.id).await.unwrap();
        let photo = client.photo(&user.id).await.unwrap();
        assert_eq!(meta.is_some(), photo.is_some(), "{}", user.id);
        if let Some(p) = photo {
            assert!(!p.bytes.is_empty() && p.content_type.starts_with("image/"));
        }
    }
    assert_eq!(
        client
            .photo(&uuid::Uuid::new_v4().to_string())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn mail_is_sent_through_the_tenant() {
    let sim = sim(2).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
    let client = client(&sim, &pbx, AssertionAlg::PS256);
    let sender = client.list_users().await.unwrap().remove(0);
    let sender = sender.mail.or(sender.user_principal_name).unwrap();
    let message = MailMessage {
        subject: "pbx365 test".into(),
        body: pbx365_graph::ItemBody {
            content_type: "Text".into(),
            content: "hello".into(),
        },
        to_recipients: vec![Recipient::address("admin@example.org")],
        ..MailMessage::default()
    };
    client.send_mail(&sender, &message, false).await.unwrap();
    let outbox = sim.control().get_json("/_sim/mail").await.unwrap();
    assert!(outbox.to_string().contains("pbx365 test"), "{outbox}");
}
