//! Control API, faults, stats, and the binary's start-up contract.

use std::io::BufRead;

use m365_sim::faults::FaultSpec;
use serde_json::Value;

use crate::*;

async fn graph_token(sim: &m365_sim::SimHandle) -> String {
    crate::graph::graph_token(sim, &["User.Read.All"]).await
}

#[tokio::test]
async fn a_429_fault_answers_with_retry_after_then_clears() {
    let sim = start_sim().await;
    let token = graph_token(&sim).await;
    sim.control()
        .add_fault(&FaultSpec {
            path: "/v1.0/users".into(),
            method: Some("GET".into()),
            status: Some(429),
            retry_after: Some(2.0),
            count: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    let http = sim.http_client();
    let url = format!("{}/v1.0/users", sim.graph_url());
    let resp = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests");
    // count = 1: the next request goes through.
    let resp = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    sim.control()
        .add_fault(&FaultSpec {
            path: r"^/v1\.0/users$".into(),
            status: Some(503),
            ..Default::default()
        })
        .await
        .unwrap();
    let resp = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    sim.control().clear_faults().await.unwrap();
    let resp = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_bad_fault_rule_is_refused_with_a_sentence() {
    let sim = start_sim().await;
    let err = sim
        .control()
        .add_fault(&FaultSpec {
            path: "/v1.0/users".into(),
            status: Some(200),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("status must be an HTTP error status"),
        "{err}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn stats_count_every_request_by_route_template() {
    let sim = start_sim().await;
    let token = graph_token(&sim).await;
    sim.control().clear_stats().await.unwrap();
    let http = sim.http_client();
    for _ in 0..3 {
        let r = http
            .get(format!("{}/v1.0/users", sim.graph_url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for id in [
        "ann@contoso.example",
        "11111111-1111-1111-1111-111111111111",
    ] {
        http.get(format!("{}/v1.0/users/{id}", sim.graph_url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
    }
    // Refused and unknown requests count too.
    http.get(format!("{}/v1.0/users", sim.graph_url()))
        .send()
        .await
        .unwrap();
    http.get(format!(
        "{}/{}/discovery/v2.0/keys",
        sim.base_url, sim.tenant_id
    ))
    .send()
    .await
    .unwrap();
    let stats = sim.control().stats().await.unwrap();
    assert_eq!(stats.total, 7, "{stats:?}");
    assert_eq!(stats.route("GET /v1.0/users"), 4, "{stats:?}");
    assert_eq!(
        stats.route("GET /{tenant}/discovery/v2.0/keys"),
        1,
        "{stats:?}"
    );
    let single: u64 = stats
        .by_route
        .iter()
        .filter(|(k, _)| k.starts_with("GET /v1.0/users/{"))
        .map(|(_, v)| *v)
        .sum();
    assert_eq!(
        single, 2,
        "per-user GETs share one route template: {stats:?}"
    );
    sim.control().clear_stats().await.unwrap();
    assert_eq!(sim.control().stats().await.unwrap().total, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn configured_latency_delays_every_request() {
    let sim = start_sim_with(m365_sim::SimConfig {
        latency_ms: 150,
        ..Default::default()
    })
    .await;
    let http = sim.http_client();
    let url = format!("{}/{}/discovery/v2.0/keys", sim.base_url, sim.tenant_id);
    http.get(&url).send().await.unwrap();
    let started = std::time::Instant::now();
    http.get(&url).send().await.unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    sim.shutdown().await;
}

#[tokio::test]
async fn binary_prints_one_ready_line_and_serves_https_with_the_written_ca() {
    m365_sim::tls::install_crypto_provider(); // for this test's own HTTPS client
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_m365-sim"))
        .args(["--listen", "127.0.0.1:0", "--users", "5", "--ca-out"])
        .arg(&ca)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        line
    })
    .await
    .unwrap();
    let re = regex::Regex::new(
        r"^m365-sim listening on (https://127\.0\.0\.1:\d+) tenant=([0-9a-f-]{36})\n$",
    )
    .unwrap();
    let caps = re
        .captures(&line)
        .unwrap_or_else(|| panic!("ready line: {line:?}"));
    let pem = std::fs::read_to_string(&ca).unwrap();
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let config: Value = http
        .get(format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            &caps[1], &caps[2]
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["issuer"], format!("{}/{}/v2.0", &caps[1], &caps[2]));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn plain_http_mode_serves_without_a_ca() {
    let sim = start_sim_with(m365_sim::SimConfig {
        https: false,
        ..Default::default()
    })
    .await;
    assert!(
        sim.base_url.starts_with("http://127.0.0.1:"),
        "{}",
        sim.base_url
    );
    assert!(sim.ca_pem.is_none());
    let resp = sim
        .http_client()
        .get(format!(
            "{}/{}/discovery/v2.0/keys",
            sim.base_url, sim.tenant_id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    sim.shutdown().await;
}
