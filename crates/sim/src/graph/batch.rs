//! `POST /v1.0/$batch`: up to 20 sub-requests dispatched through the complete app router (so
//! auth, faults, stats and throttling apply to each), `dependsOn` with 424 on a failed
//! dependency, outer 200 whenever the batch parses.
//!
//! Docs: https://learn.microsoft.com/graph/json-batching (graph-facts §10).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::Response;
use base64::Engine;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use tower::ServiceExt;

use super::{graph_error, json_response};
use crate::state::SimState;

/// Most sub-requests in one batch.
pub const MAX_REQUESTS: usize = 20;
/// Graph sends at most this many unordered sub-requests at a time (Outlook concurrency).
const IN_FLIGHT: usize = 4;

fn bad(msg: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, "BadRequest", msg)
}

#[derive(Clone)]
struct Sub {
    id: String,
    method: String,
    url: String,
    headers: Map<String, Value>,
    body: Option<Value>,
    depends_on: Vec<String>,
}

fn parse(body: &[u8]) -> Result<Vec<Sub>, Response> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| bad("Invalid batch payload format."))?;
    let reqs = v
        .get("requests")
        .and_then(|r| r.as_array())
        .ok_or_else(|| bad("Invalid batch payload format."))?;
    if reqs.len() > MAX_REQUESTS {
        return Err(bad(&format!(
            "The number of requests in the batch exceeds the maximum of {MAX_REQUESTS}."
        )));
    }
    let mut out = Vec::new();
    for r in reqs {
        let id = match r.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(bad("Each request in a batch needs an 'id'.")),
        };
        // Ids are unique case-insensitively (https://learn.microsoft.com/graph/json-batching:
        // "id ... must be unique"; the service compares them ignoring case).
        if out.iter().any(|s: &Sub| s.id.eq_ignore_ascii_case(&id)) {
            return Err(bad(&format!(
                "Batch request ids must be unique; '{id}' is repeated."
            )));
        }
        let method = r
            .get("method")
            .and_then(|m| m.as_str())
            .ok_or_else(|| bad(&format!("Request '{id}' needs a 'method'.")))?
            .to_ascii_uppercase();
        let url = r
            .get("url")
            .and_then(|m| m.as_str())
            .ok_or_else(|| bad(&format!("Request '{id}' needs a 'url'.")))?
            .to_string();
        if url.contains("://") {
            return Err(bad(&format!(
                "Request '{id}': the url must be relative, e.g. /users."
            )));
        }
        let path = url.trim_start_matches('/');
        let path = path.strip_prefix("v1.0/").unwrap_or(path);
        if path.starts_with("$batch") {
            return Err(bad(
                "JSON batch requests must not contain any nested batch requests.",
            ));
        }
        let headers = r
            .get("headers")
            .and_then(|h| h.as_object())
            .cloned()
            .unwrap_or_default();
        let body = r.get("body").cloned();
        if body.is_some()
            && !headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("content-type"))
        {
            return Err(bad(&format!(
                "Request '{id}': a Content-Type header is required when a body is present."
            )));
        }
        let depends_on = match r.get("dependsOn") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect(),
            Some(_) => {
                return Err(bad(&format!(
                    "Request '{id}': dependsOn must be an array of ids."
                )))
            }
        };
        out.push(Sub {
            id,
            method,
            url: format!("/v1.0/{path}"),
            headers,
            body,
            depends_on,
        });
    }
    for s in &out {
        for d in &s.depends_on {
            if !out.iter().any(|o| &o.id == d) {
                return Err(bad(&format!(
                    "Request '{}' depends on unknown request '{d}'.",
                    s.id
                )));
            }
        }
    }
    Ok(out)
}

async fn run(router: axum::Router, outer: HeaderMap, sub: Sub) -> Value {
    let mut b = Request::builder().method(sub.method.as_str()).uri(&sub.url);
    for name in ["authorization", "client-request-id"] {
        if let Some(v) = outer.get(name) {
            b = b.header(name, v);
        }
    }
    let mut content_type = String::new();
    for (k, v) in &sub.headers {
        if let Some(s) = v.as_str() {
            if k.eq_ignore_ascii_case("content-type") {
                content_type = s.to_ascii_lowercase();
            }
            b = b.header(k.as_str(), s);
        }
    }
    let body = match &sub.body {
        None => Body::empty(),
        // Binary bodies are base64 strings (https://learn.microsoft.com/graph/json-batching).
        Some(Value::String(s)) if !content_type.contains("json") => Body::from(
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .unwrap_or_else(|_| s.as_bytes().to_vec()),
        ),
        Some(v) => Body::from(v.to_string()),
    };
    let req = match b.body(body) {
        Ok(r) => r,
        Err(e) => {
            return json!({"id": sub.id, "status": 400, "body": {"error": {"code": "BadRequest", "message": e.to_string()}}})
        }
    };
    let resp = match router.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = resp.status().as_u16();
    let mut headers = Map::new();
    let mut is_json = false;
    for (k, v) in resp.headers() {
        let k = k.as_str();
        if k.eq_ignore_ascii_case("content-length") {
            continue;
        }
        if let Ok(s) = v.to_str() {
            if k.eq_ignore_ascii_case("content-type") {
                is_json = s.contains("json");
                headers.insert("Content-Type".into(), json!(s));
            } else if ["retry-after", "location", "etag", "preference-applied"].contains(&k) {
                headers.insert(k.to_string(), json!(s));
            }
        }
    }
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    if !bytes.is_empty() {
        // What Graph puts on every sub-response with a body
        // (https://learn.microsoft.com/graph/json-batching, response example).
        headers.insert("Cache-Control".into(), json!("no-cache"));
        headers.insert("OData-Version".into(), json!("4.0"));
    }
    let mut out = json!({"id": sub.id, "status": status, "headers": headers});
    if !bytes.is_empty() {
        out["body"] = if is_json {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        } else {
            json!(base64::engine::general_purpose::STANDARD.encode(&bytes))
        };
    }
    out
}

/// `POST /v1.0/$batch` (any caller; each sub-request is authorised on its own).
pub async fn batch(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let subs = match parse(&body) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(router) = state.router.get().cloned() else {
        return graph_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "The batch router is not ready.",
        );
    };
    let mut results: HashMap<String, Value> = HashMap::new();
    let mut order: Vec<Value> = Vec::new();
    let mut remaining: Vec<&Sub> = subs.iter().collect();
    while !remaining.is_empty() {
        let (ready, wait): (Vec<&Sub>, Vec<&Sub>) = remaining
            .into_iter()
            .partition(|s| s.depends_on.iter().all(|d| results.contains_key(d)));
        if ready.is_empty() {
            // A dependency cycle: answer the rest with 424.
            for s in wait {
                order.push(failed_dependency(&s.id));
            }
            break;
        }
        let mut runnable = Vec::new();
        for s in ready {
            let dep_failed = s.depends_on.iter().any(|d| {
                results
                    .get(d)
                    .and_then(|r| r.get("status"))
                    .and_then(|s| s.as_u64())
                    .is_none_or(|st| !(200..300).contains(&st))
            });
            if dep_failed {
                let v = failed_dependency(&s.id);
                results.insert(s.id.clone(), v.clone());
                order.push(v);
            } else {
                runnable.push(s);
            }
        }
        let jobs: Vec<_> = runnable
            .into_iter()
            .map(|s| run(router.clone(), headers.clone(), s.clone()))
            .collect();
        let done: Vec<Value> = futures::stream::iter(jobs)
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for v in done {
            let id = v["id"].as_str().unwrap_or_default().to_string();
            results.insert(id, v.clone());
            order.push(v);
        }
        remaining = wait;
    }
    json_response(StatusCode::OK, json!({"responses": order}))
}

fn failed_dependency(id: &str) -> Value {
    json!({
        "id": id,
        "status": 424,
        "headers": {"Content-Type": "application/json"},
        "body": {"error": {"code": "FailedDependency", "message": "The request depends on a request that failed."}},
    })
}
