//! Change notifications: validation handshake, delivery of user changes, retries, lifecycle
//! notifications. The receiver is a real axum server on 127.0.0.1:0.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::graph::Graph;
use crate::*;

/// What the receiver saw.
#[derive(Debug)]
enum Seen {
    Validation(String),
    Notification(Value),
}

struct Receiver {
    tx: mpsc::UnboundedSender<Seen>,
    /// Answer this many notification POSTs with 503 before accepting.
    fail_first: usize,
    posts: AtomicUsize,
    /// Echo a wrong validation token.
    bad_echo: bool,
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(token) = q.get("validationToken") {
        let _ = r.tx.send(Seen::Validation(token.clone()));
        let echo = if r.bad_echo {
            "nope".to_string()
        } else {
            token.clone()
        };
        return (StatusCode::OK, [("content-type", "text/plain")], echo).into_response();
    }
    let n = r.posts.fetch_add(1, Ordering::SeqCst);
    let _ = r.tx.send(Seen::Notification(
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    ));
    if n < r.fail_first {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    StatusCode::ACCEPTED.into_response()
}

/// Starts a receiver; returns its base URL and the channel of what it saw.
async fn receiver(fail_first: usize, bad_echo: bool) -> (String, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = Arc::new(Receiver {
        tx,
        fail_first,
        posts: AtomicUsize::new(0),
        bad_echo,
    });
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .route("/lifecycle", post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the receiver hears from the sim within 10 s")
        .expect("channel open")
}

fn in_an_hour() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()
}

async fn subscribe(g: &Graph, hook: &str, lifecycle: Option<String>) -> (u16, Value) {
    let mut body = json!({
        "changeType": "updated,deleted",
        "notificationUrl": format!("{hook}/hook"),
        "resource": "users",
        "expirationDateTime": in_an_hour(),
        "clientState": "secret-client-state",
    });
    if let Some(l) = lifecycle {
        body["lifecycleNotificationUrl"] = json!(l);
    }
    g.send("POST", "/subscriptions", Some(body), &[]).await
}

#[tokio::test]
async fn subscription_to_users_is_validated_then_notified_of_changes() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let (hook, mut rx) = receiver(0, false).await;
    let (s, sub) = subscribe(&g, &hook, None).await;
    assert_eq!(s, 201, "{sub}");
    let Seen::Validation(token) = next(&mut rx).await else {
        panic!("expected the validation request first")
    };
    assert!(!token.is_empty());
    // The create response echoes the clientState sent and names the content type
    // (https://learn.microsoft.com/graph/api/subscription-post-subscriptions, response example);
    // reads do not return the secret.
    assert_eq!(sub["clientState"], "secret-client-state");
    assert_eq!(sub["notificationContentType"], "application/json");
    let sub_id = sub["id"].as_str().unwrap();
    let read = g.get(&format!("/subscriptions/{sub_id}")).await;
    assert!(
        read["clientState"].is_null(),
        "reads do not return the secret"
    );
    assert_eq!(read["notificationContentType"], "application/json");

    let (s, _) = g
        .send(
            "PATCH",
            "/users/11111111-1111-1111-1111-111111111111",
            Some(json!({"jobTitle": "CEO"})),
            &[],
        )
        .await;
    assert_eq!(s, 204);
    let Seen::Notification(n) = next(&mut rx).await else {
        panic!("expected a notification")
    };
    let item = &n["value"][0];
    assert_eq!(item["subscriptionId"], sub["id"]);
    assert_eq!(item["clientState"], "secret-client-state");
    assert_eq!(item["changeType"], "updated");
    assert_eq!(
        item["resource"],
        "Users/11111111-1111-1111-1111-111111111111"
    );
    assert_eq!(item["tenantId"], sim.tenant_id);
    assert_eq!(item["resourceData"]["@odata.type"], "#Microsoft.Graph.User");

    let (s, _) = g
        .send(
            "DELETE",
            "/users/22222222-2222-2222-2222-222222222222",
            None,
            &[],
        )
        .await;
    assert_eq!(s, 204);
    let Seen::Notification(n) = next(&mut rx).await else {
        panic!("expected a notification")
    };
    assert_eq!(n["value"][0]["changeType"], "deleted");

    // Renew and delete.
    let (s, renewed) = g
        .send(
            "PATCH",
            &format!("/subscriptions/{}", sub["id"].as_str().unwrap()),
            Some(json!({"expirationDateTime": in_an_hour()})),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{renewed}");
    // https://learn.microsoft.com/graph/api/subscription-update: the updated subscription, as created.
    assert_eq!(renewed["clientState"], "secret-client-state");
    assert_eq!(renewed["notificationContentType"], "application/json");
    let (s, _) = g
        .send(
            "DELETE",
            &format!("/subscriptions/{}", sub["id"].as_str().unwrap()),
            None,
            &[],
        )
        .await;
    assert_eq!(s, 204);
    sim.shutdown().await;
}

#[tokio::test]
async fn subscription_fails_when_the_endpoint_does_not_echo_the_token() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let (hook, _rx) = receiver(0, true).await;
    let (s, body) = subscribe(&g, &hook, None).await;
    assert_eq!(s, 400);
    assert_eq!(body["error"]["code"], "InvalidRequest");
    assert_eq!(
        body["error"]["message"],
        "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."
    );
    // Over the maximum lifetime is refused; http to a non-loopback host is refused.
    let too_long = (chrono::Utc::now() + chrono::Duration::days(40)).to_rfc3339();
    let (s, _) = g
        .send("POST", "/subscriptions", Some(json!({"changeType": "updated", "notificationUrl": format!("{hook}/hook"), "resource": "users", "expirationDateTime": too_long})), &[])
        .await;
    assert_eq!(s, 400);
    let (s, _) = g
        .send("POST", "/subscriptions", Some(json!({"changeType": "updated", "notificationUrl": "http://example.com/hook", "resource": "users", "expirationDateTime": in_an_hour()})), &[])
        .await;
    assert_eq!(s, 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn failing_receiver_gets_the_same_notification_again() {
    let sim = start_sim().await;
    let resp = sim
        .http_client()
        .put(format!("{}/_sim/graph-settings", sim.base_url))
        .json(&json!({"retry_base_ms": 50}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let g = Graph::new(&sim).await;
    let (hook, mut rx) = receiver(2, false).await;
    let (s, _) = subscribe(&g, &hook, None).await;
    assert_eq!(s, 201);
    assert!(matches!(next(&mut rx).await, Seen::Validation(_)));
    g.send(
        "PATCH",
        "/users/11111111-1111-1111-1111-111111111111",
        Some(json!({"jobTitle": "CFO"})),
        &[],
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let Seen::Notification(n) = next(&mut rx).await else {
            panic!("expected a notification")
        };
        ids.push(n["value"][0]["id"].as_str().unwrap().to_string());
    }
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "retries carry the same notification: {ids:?}"
    );
    // The third attempt succeeded; counters are updated right after the receiver answers.
    let mut last = Value::Null;
    for _ in 0..200 {
        let subs = sim.control().get_json("/_sim/subscriptions").await.unwrap();
        last = subs["value"][0]["delivery"].clone();
        if last["delivered"] == 1 {
            assert_eq!(last["failed_attempts"], 2);
            sim.shutdown().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("delivery not recorded: {last}");
}

#[tokio::test]
async fn lifecycle_notifications_can_be_triggered() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let (hook, mut rx) = receiver(0, false).await;
    let (s, sub) = subscribe(&g, &hook, Some(format!("{hook}/lifecycle"))).await;
    assert_eq!(s, 201, "{sub}");
    // Both URLs are validated.
    assert!(matches!(next(&mut rx).await, Seen::Validation(_)));
    assert!(matches!(next(&mut rx).await, Seen::Validation(_)));
    let id = sub["id"].as_str().unwrap();
    let r = sim
        .control()
        .post_json(
            &format!("/_sim/subscriptions/{id}/lifecycle"),
            &json!({"event": "reauthorizationRequired"}),
        )
        .await
        .unwrap();
    assert_eq!(r["delivered"], true, "{r}");
    let Seen::Notification(n) = next(&mut rx).await else {
        panic!("expected a lifecycle notification")
    };
    assert_eq!(n["value"][0]["lifecycleEvent"], "reauthorizationRequired");
    assert_eq!(n["value"][0]["subscriptionId"], id);
    let (s, _) = g
        .send(
            "POST",
            &format!("/subscriptions/{id}/reauthorize"),
            None,
            &[],
        )
        .await;
    assert_eq!(s, 204);
    sim.control()
        .post_json(
            &format!("/_sim/subscriptions/{id}/lifecycle"),
            &json!({"event": "subscriptionRemoved"}),
        )
        .await
        .unwrap();
    let (s, _) = g
        .send("GET", &format!("/subscriptions/{id}"), None, &[])
        .await;
    assert_eq!(s, 404, "subscriptionRemoved removes it");
    sim.shutdown().await;
}

#[tokio::test]
async fn drop_notifications_fault_loses_them() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let (hook, mut rx) = receiver(0, false).await;
    subscribe(&g, &hook, None).await;
    assert!(matches!(next(&mut rx).await, Seen::Validation(_)));
    sim.control()
        .add_fault(&m365_sim::faults::FaultSpec {
            path: "/nothing".into(),
            drop_notifications: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    g.send(
        "PATCH",
        "/users/11111111-1111-1111-1111-111111111111",
        Some(json!({"jobTitle": "A"})),
        &[],
    )
    .await;
    for _ in 0..200 {
        let subs = sim.control().get_json("/_sim/subscriptions").await.unwrap();
        if subs["value"][0]["delivery"]["dropped_by_fault"] == 1 {
            assert!(rx.try_recv().is_err(), "nothing reached the receiver");
            sim.shutdown().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the notification was not dropped");
}

#[tokio::test]
async fn contact_subscription_is_notified_of_contacts_created_updated_and_deleted_in_any_folder() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let (hook, mut rx) = receiver(0, false).await;
    let (s, sub) = g
        .send(
            "POST",
            "/subscriptions",
            Some(json!({"changeType": "created,updated,deleted", "notificationUrl": format!("{hook}/hook"),
                        "resource": "/users/ann@contoso.example/contacts", "expirationDateTime": in_an_hour(),
                        "clientState": "c"})),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{sub}");
    assert!(matches!(next(&mut rx).await, Seen::Validation(_)));
    let (s, c) = g
        .send(
            "POST",
            "/users/ann@contoso.example/contacts",
            Some(json!({"displayName": "Zed"})),
            &[],
        )
        .await;
    assert_eq!(s, 201);
    let Seen::Notification(n) = next(&mut rx).await else {
        panic!("expected a notification")
    };
    assert_eq!(n["value"][0]["changeType"], "created");
    assert_eq!(n["value"][0]["resourceData"]["id"], c["id"]);
    assert_eq!(
        n["value"][0]["resourceData"]["@odata.type"],
        "#Microsoft.Graph.Contact"
    );
    assert_eq!(n["value"][0]["clientState"], "c");
    assert_eq!(n["value"][0]["subscriptionId"], sub["id"]);
    let cid = c["id"].as_str().unwrap();
    assert!(
        n["value"][0]["resource"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/Contacts/{cid}")),
        "{n}"
    );

    // Edits and deletions are notified too (https://learn.microsoft.com/graph/api/resources/changenotification).
    let path = format!("/users/ann@contoso.example/contacts/{cid}");
    let (s, _) = g
        .send("PATCH", &path, Some(json!({"displayName": "Zed Two"})), &[])
        .await;
    assert_eq!(s, 200);
    let Seen::Notification(n) = next(&mut rx).await else {
        panic!("expected a notification")
    };
    assert_eq!(n["value"][0]["changeType"], "updated");
    assert_eq!(n["value"][0]["resourceData"]["id"], cid);
    let (s, _) = g.send("DELETE", &path, None, &[]).await;
    assert_eq!(s, 204);
    let Seen::Notification(n) = next(&mut rx).await else {
        panic!("expected a notification")
    };
    assert_eq!(n["value"][0]["changeType"], "deleted");
    assert_eq!(n["value"][0]["resourceData"]["id"], cid);

    // `/users/{id}/contacts` covers every contact of the mailbox, child folders included
    // (https://learn.microsoft.com/graph/outlook-change-notifications-overview).
    let (s, f) = g
        .send(
            "POST",
            "/users/ann@contoso.example/contactFolders",
            Some(json!({"displayName": "Friends"})),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{f}");
    let (s, c) = g
        .send(
            "POST",
            &format!(
                "/users/ann@contoso.example/contactFolders/{}/contacts",
                f["id"].as_str().unwrap()
            ),
            Some(json!({"displayName": "In a child folder"})),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let Seen::Notification(n) = next(&mut rx).await else {
        panic!("expected a notification")
    };
    assert_eq!(n["value"][0]["changeType"], "created");
    assert_eq!(n["value"][0]["resourceData"]["id"], c["id"]);
    sim.shutdown().await;
}
