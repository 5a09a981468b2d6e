//! Issue 11: the sim answers as Microsoft documents it. Each test is built from the documented
//! request and the documented response's shape; the doc URL is named next to each.

use serde_json::{json, Value};

use crate::graph::Graph;
use crate::*;

const ANN: &str = "11111111-1111-1111-1111-111111111111";

// ----- errors (https://learn.microsoft.com/graph/errors) --------------------------------------

#[tokio::test]
async fn a_method_the_resource_does_not_allow_gets_405_with_the_error_envelope() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let (status, body) = g.send("PUT", "/users", Some(json!({})), &[]).await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["error"]["code"], "Request_BadRequest");
    assert!(body["error"]["message"].is_string());
    assert!(body["error"]["innerError"]["request-id"].is_string());
    sim.shutdown().await;
}

#[tokio::test]
async fn error_bodies_echo_the_callers_client_request_id() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let mine = "5f2b1a7c-0d2e-4c1b-9a3f-6e7d8c9b0a1f";
    let resp = g
        .request("GET", "/users/nobody@contoso.example")
        .header("client-request-id", mine)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["client-request-id"], mine);
    let request_id = resp.headers()["request-id"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    let inner = &body["error"]["innerError"];
    assert_eq!(inner["client-request-id"], mine);
    assert_eq!(inner["request-id"], request_id.as_str());
    assert!(inner["date"].is_string());
    sim.shutdown().await;
}

#[tokio::test]
async fn unauthorized_answers_carry_a_www_authenticate_challenge() {
    // https://learn.microsoft.com/entra/msal/dotnet/advanced/extract-authentication-parameters
    let sim = start_sim().await;
    let resp = sim
        .http_client()
        .get(format!("{}/v1.0/users/{ANN}", sim.graph_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains("authorization_uri=\""), "{challenge}");
    assert!(
        challenge.contains("client_id=\"00000003-0000-0000-c000-000000000000\""),
        "{challenge}"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    sim.shutdown().await;
}

// ----- $batch (https://learn.microsoft.com/graph/json-batching) --------------------------------

#[tokio::test]
async fn batch_ids_that_differ_only_in_case_are_duplicates() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let (status, body) = g
        .send(
            "POST",
            "/$batch",
            Some(json!({"requests": [
                {"id": "a", "method": "GET", "url": "/users?$select=id"},
                {"id": "A", "method": "GET", "url": format!("/users/{ANN}")}
            ]})),
            &[],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "BadRequest");
    sim.shutdown().await;
}

#[tokio::test]
async fn batch_sub_responses_carry_graphs_headers() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let (status, body) = g
        .send(
            "POST",
            "/$batch",
            Some(json!({"requests": [
                {"id": "1", "method": "GET", "url": format!("/users/{ANN}?$select=id,displayName")}
            ]})),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sub = &body["responses"][0];
    assert_eq!(sub["id"], "1");
    assert_eq!(sub["status"], 200);
    let headers = &sub["headers"];
    assert!(headers["Content-Type"]
        .as_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(headers["Cache-Control"], "no-cache");
    assert_eq!(headers["OData-Version"], "4.0");
    assert_eq!(sub["body"]["displayName"], "Ann Archer");
    sim.shutdown().await;
}
