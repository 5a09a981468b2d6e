//! `$batch`: up to 20 sub-requests in one HTTP request, answered one by one; throttled
//! sub-requests are sent again after the longest `Retry-After`.
//!
//! https://learn.microsoft.com/graph/json-batching · https://learn.microsoft.com/graph/throttling#throttling-and-batching

use reqwest::Method;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::client::GraphClient;
use super::request::GraphRequest;
use crate::error::{from_graph_error, graph_raw, GraphError};

/// Most sub-requests in one `$batch`.
pub const BATCH_LIMIT: usize = 20;

/// The `$batch` endpoint, relative to `/v1.0`.
const BATCH_PATH: &str = "/$batch";

/// One sub-request of a `$batch`.
#[derive(Debug, Clone, Serialize)]
pub struct BatchRequest {
    /// Unique id (correlates the answer).
    pub id: String,
    /// `GET`, `POST`, …
    pub method: String,
    /// Relative URL, e.g. `/users/{id}/photo`.
    pub url: String,
    /// Headers (must include Content-Type when there is a body).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// JSON body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

impl BatchRequest {
    /// A GET sub-request.
    pub fn get(id: impl Into<String>, url: impl Into<String>) -> Self {
        BatchRequest {
            id: id.into(),
            method: "GET".into(),
            url: url.into(),
            headers: BTreeMap::new(),
            body: None,
        }
    }
}

/// The answer to one sub-request.
#[derive(Debug, Clone, Deserialize)]
pub struct BatchResponse {
    /// The sub-request's id.
    pub id: String,
    /// Its HTTP status.
    pub status: u16,
    /// Its headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Its body (JSON, or base64 for binary content).
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

impl BatchResponse {
    /// A header of the answer (names compared case-insensitively, as HTTP does).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Our error for a failed sub-request (None when it succeeded).
    pub fn error(&self, url: &str) -> Option<GraphError> {
        if (200..300).contains(&self.status) {
            return None;
        }
        let body = self
            .body
            .as_ref()
            .map(|b| b.to_string())
            .unwrap_or_default();
        let raw = graph_raw(
            self.status,
            body.as_bytes(),
            self.headers.get("request-id").cloned(),
        );
        Some(from_graph_error(raw, url, true))
    }
}

#[derive(Deserialize)]
struct BatchEnvelope {
    responses: Vec<BatchResponse>,
}

impl GraphClient {
    /// Runs `$batch` over any number of sub-requests (20 per call) and returns one answer per
    /// request, in request order. Throttled sub-requests (429/503) are sent again in a new batch
    /// after the longest `Retry-After`, up to the retry policy's attempts.
    pub async fn batch(
        &self,
        requests: Vec<BatchRequest>,
    ) -> Result<Vec<BatchResponse>, GraphError> {
        let order: Vec<String> = requests.iter().map(|r| r.id.clone()).collect();
        let mut done: HashMap<String, BatchResponse> = HashMap::new();
        for chunk in requests.chunks(BATCH_LIMIT) {
            let mut pending: Vec<BatchRequest> = chunk.to_vec();
            let mut backoff = self.config.retry.backoff();
            loop {
                let resp = self
                    .send(GraphRequest::with_json(
                        Method::POST,
                        BATCH_PATH,
                        serde_json::json!({ "requests": pending }),
                    ))
                    .await?;
                let env: BatchEnvelope = resp.json()?;
                let mut throttled = Vec::new();
                let mut wait: Option<Duration> = None;
                for r in env.responses {
                    if matches!(r.status, 429 | 503) {
                        let ra = r
                            .header("retry-after")
                            .and_then(|v| crate::retry::parse_retry_after(v, chrono::Utc::now()));
                        wait = wait.max(ra);
                        throttled.push(r.id.clone());
                    }
                    done.insert(r.id.clone(), r);
                }
                if throttled.is_empty() {
                    break;
                }
                let Some(delay) = backoff.next() else {
                    tracing::warn!(
                        count = throttled.len(),
                        "batch sub-requests still throttled after every retry"
                    );
                    break;
                };
                let delay = self.config.retry.delay(wait, delay);
                self.retries
                    .fetch_add(throttled.len() as u64, Ordering::Relaxed);
                tracing::warn!(
                    count = throttled.len(),
                    delay_ms = delay.as_millis() as u64,
                    "batch sub-requests throttled; retrying them"
                );
                tokio::time::sleep(delay).await;
                pending = chunk
                    .iter()
                    .filter(|r| throttled.contains(&r.id))
                    .cloned()
                    .collect();
            }
        }
        order
            .into_iter()
            .map(|id| {
                done.remove(&id).ok_or_else(|| {
                    GraphError::BadResponse(format!("$batch gave no answer for request {id}"))
                })
            })
            .collect()
    }
}
