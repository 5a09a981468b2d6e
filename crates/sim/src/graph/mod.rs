//! Microsoft Graph v1.0 routes (`/v1.0/...`) and the Graph-side control routes
//! (`/_sim/mail`, `/_sim/subscriptions`, `/_sim/seed`).
//!
//! Behaviour follows /work/shared/docs/graph-facts.md §4–§12 (which cites the Microsoft docs).

pub mod batch;
pub mod calendar;
pub mod contacts;
pub mod groups;
pub mod mail;
pub mod outlook;
pub mod query;
pub mod subscriptions;
pub mod users;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

pub use crate::identity::access::graph_error;
use crate::state::SimState;

/// Routes under `/v1.0/...` (full paths, merged into the app router).
pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .merge(users::routes())
        .merge(groups::routes())
        .merge(contacts::routes())
        .merge(calendar::routes())
        .merge(subscriptions::routes())
        .merge(mail::routes())
        .route("/v1.0/$batch", post(batch::batch))
        // sendMail and $batch must see bodies over 4 MB to answer Graph's 413 themselves.
        .layer(DefaultBodyLimit::max(16 * 1024 * 1024))
}

/// Graph-side control routes under `/_sim/...` (full paths: mail, subscriptions, seed).
pub fn control_router() -> Router<Arc<SimState>> {
    Router::new()
        .route(
            "/_sim/mail",
            get(mail::list_outbox).delete(mail::clear_outbox),
        )
        .route("/_sim/subscriptions", get(subscriptions::sim_list))
        .route(
            "/_sim/subscriptions/{id}/lifecycle",
            post(subscriptions::sim_lifecycle),
        )
        .route("/_sim/seed", post(sim_seed))
        .route("/_sim/graph-settings", get(get_settings).put(put_settings))
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
}

/// Loads a seed at run time, replacing the directory and mailbox data (control API).
///
/// Subscriptions, settings and the outbox survive; delta tokens issued before are invalid.
async fn sim_seed(
    axum::extract::State(state): axum::extract::State<Arc<SimState>>,
    body: axum::body::Bytes,
) -> Response {
    let seed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return sim_error(StatusCode::BAD_REQUEST, &format!("$: not valid JSON: {e}")),
    };
    let mut tenant = state.tenant.write().await;
    let mut fresh = crate::tenant::Tenant::new(tenant.id.clone(), tenant.domain.clone());
    if let Err(e) = crate::seed::load_seed(&mut fresh, &seed) {
        return sim_error(StatusCode::BAD_REQUEST, &e.0);
    }
    fresh.seq = tenant.seq;
    fresh.subscriptions = std::mem::take(&mut tenant.subscriptions);
    fresh.outbox = std::mem::take(&mut tenant.outbox);
    let counts = json!({"users": fresh.users.len(), "groups": fresh.groups.len()});
    *tenant = fresh;
    (StatusCode::OK, axum::Json(counts)).into_response()
}

/// Current Graph settings (control API).
async fn get_settings(
    axum::extract::State(state): axum::extract::State<Arc<SimState>>,
) -> Response {
    axum::Json(state.runtime.settings()).into_response()
}

/// Replaces the Graph settings; missing fields take their defaults (control API).
async fn put_settings(
    axum::extract::State(state): axum::extract::State<Arc<SimState>>,
    body: axum::body::Bytes,
) -> Response {
    let s: crate::runtime::GraphSettings = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return sim_error(StatusCode::BAD_REQUEST, &format!("bad settings: {e}")),
    };
    if !matches!(s.directory_delta_expired_status, 400 | 410) {
        return sim_error(
            StatusCode::BAD_REQUEST,
            "directory_delta_expired_status must be 400 or 410",
        );
    }
    *state.runtime.settings.lock().expect("settings lock") = s.clone();
    axum::Json(s).into_response()
}

/// A control-API error (`{"error": "..."}`), not Graph's envelope.
pub fn sim_error(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(json!({"error": msg}))).into_response()
}

/// Query parameters by lowercase name, with the OData `$` prefix optional (`$top` = `top`).
pub struct Query(HashMap<String, String>, Vec<String>);

impl Query {
    /// Parses the query string of `uri`.
    pub fn from_uri(uri: &Uri) -> Query {
        let mut map = HashMap::new();
        let mut options = Vec::new();
        if let Some(q) = uri.query() {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                let k = k.to_ascii_lowercase();
                if let Some(o) = k.strip_prefix('$') {
                    options.push(o.to_string());
                }
                let k = k.strip_prefix('$').unwrap_or(&k).to_string();
                map.insert(k, v.into_owned());
            }
        }
        Query(map, options)
    }

    /// The OData system query options given (`$`-prefixed names, without the `$`).
    pub fn options(&self) -> impl Iterator<Item = &String> {
        self.1.iter()
    }

    /// A parameter by name without `$`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// `$select` as a list of names (trimmed, empty entries dropped).
    pub fn select(&self) -> Option<Vec<String>> {
        self.get("select").map(|s| {
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        })
    }

    /// `$top` validated to 1..=max; the error is Graph's.
    pub fn top(&self, default: usize, max: usize) -> Result<usize, Response> {
        match self.get("top") {
            None => Ok(default),
            Some(t) => match t.trim().parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(graph_error(
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    // graph-facts §4 (OBSERVED wording)
                    &format!("Invalid page size specified: '{t}'. Must be between 1 and {max} inclusive."),
                )),
            },
        }
    }
}

/// `Prefer: odata.maxpagesize=N`, if sent.
pub fn prefer_max_page_size(headers: &HeaderMap) -> Option<usize> {
    prefer_values(headers).into_iter().find_map(|(k, v)| {
        k.eq_ignore_ascii_case("odata.maxpagesize")
            .then(|| v.parse().ok())
            .flatten()
    })
}

/// `Prefer` header entries as (name, unquoted value).
pub fn prefer_values(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for h in headers.get_all("prefer") {
        let Ok(s) = h.to_str() else { continue };
        for part in s.split(',') {
            let part = part.trim();
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            out.push((k.trim().to_string(), v.trim().trim_matches('"').to_string()));
        }
    }
    out
}

/// Encodes opaque paging/delta state (base64url JSON; clients must treat it as opaque).
pub fn encode_token<T: Serialize>(t: &T) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(t).expect("token state serialises"))
}

/// Decodes a token made by [`encode_token`].
pub fn decode_token<T: DeserializeOwned>(s: &str) -> Option<T> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim())
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A Graph JSON response with OData's content type.
pub fn json_response(status: StatusCode, body: Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(
            "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8",
        ),
    );
    r
}

/// A collection page: `@odata.context`, `value`, optional `@odata.nextLink`/`@odata.deltaLink`.
pub fn collection(
    state: &SimState,
    context: &str,
    value: Vec<Value>,
    next_link: Option<String>,
    delta_link: Option<String>,
) -> Response {
    counted_collection(state, context, value, None, next_link, delta_link)
}

/// A collection page with `@odata.count` when `count` is given (`$count=true`, first page).
pub fn counted_collection(
    state: &SimState,
    context: &str,
    value: Vec<Value>,
    count: Option<usize>,
    next_link: Option<String>,
    delta_link: Option<String>,
) -> Response {
    let mut m = Map::new();
    m.insert(
        "@odata.context".into(),
        json!(format!("{}/v1.0/$metadata#{context}", state.base_url)),
    );
    if let Some(c) = count {
        m.insert("@odata.count".into(), json!(c));
    }
    if let Some(n) = next_link {
        m.insert("@odata.nextLink".into(), json!(n));
    }
    if let Some(d) = delta_link {
        m.insert("@odata.deltaLink".into(), json!(d));
    }
    m.insert("value".into(), Value::Array(value));
    json_response(StatusCode::OK, Value::Object(m))
}

/// The answer of a `/$count` segment: the number as `text/plain`; like `$count`, it needs
/// `ConsistencyLevel: eventual` on directory objects
/// (https://learn.microsoft.com/graph/aad-advanced-queries).
pub fn count_response(headers: &HeaderMap, n: usize) -> Result<Response, Response> {
    let eventual = headers
        .get("consistencylevel")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
    if !eventual {
        return Err(graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "$count is not currently supported.",
        ));
    }
    let mut r = (StatusCode::OK, n.to_string()).into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain"),
    );
    Ok(r)
}

/// Delta items with their `@odata.type` (removed ones stay `{"id", "@removed"}`).
pub fn typed_items(items: Vec<Value>, odata_type: &str) -> Vec<Value> {
    items
        .into_iter()
        .map(|mut v| {
            if let Some(m) = v.as_object_mut().filter(|m| !m.contains_key("@removed")) {
                m.insert("@odata.type".into(), json!(odata_type));
            }
            v
        })
        .collect()
}

/// 404 for a directory object.
pub fn dir_not_found(id: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
    )
}

/// 404 for an Outlook item.
pub fn item_not_found() -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "ErrorItemNotFound",
        "The specified object was not found in the store.",
    )
}

/// 400 `Request_BadRequest` (directory validation).
pub fn bad_request(msg: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, "Request_BadRequest", msg)
}

/// Parses a JSON object body, answering Graph's 400 when it is not one.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        )),
    }
}

/// The answer to an expired or unknown delta token (graph-facts §4/§6): directory resources get
/// the configured status (400 by default) with `syncStateNotFound`; Outlook resources get 410
/// `SyncStateNotFound`.
pub fn sync_state_not_found(directory: bool, settings: &crate::runtime::GraphSettings) -> Response {
    if directory {
        let status = StatusCode::from_u16(settings.directory_delta_expired_status)
            .unwrap_or(StatusCode::BAD_REQUEST);
        graph_error(
            status,
            "syncStateNotFound",
            "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
        )
    } else {
        graph_error(
            StatusCode::GONE,
            "SyncStateNotFound",
            "The sync state generation is not found; the delta token is expired or invalid and data must be synchronized again.",
        )
    }
}
