//! The Graph v1.0 client: authenticated requests with retries, paging, delta rounds, `$batch`,
//! and the typed calls pbx365 makes.
//!
//! Paging: https://learn.microsoft.com/graph/paging · Delta: https://learn.microsoft.com/graph/delta-query-overview
//! Throttling: https://learn.microsoft.com/graph/throttling · Batching: https://learn.microsoft.com/graph/json-batching

use pbx365_domain::settings::{AssertionAlg, M365Settings, Settings};
use pbx365_domain::DirectoryUser;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

use crate::error::{from_graph_error, from_transport, graph_raw, GraphError, RawError};
use crate::keys::KeyStore;
use crate::models::*;
use crate::retry::{retry_after_header, RetryPolicy};
use crate::token::{with_attempts, AccessToken, Identity, TokenProvider};

/// Outlook allows 4 concurrent requests per app and mailbox
/// (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits).
pub const PER_MAILBOX_CONCURRENCY: usize = 4;

/// Most sub-requests in one `$batch`.
pub const BATCH_LIMIT: usize = 20;

/// Everything needed to talk to Microsoft (built from settings).
#[derive(Clone)]
pub struct GraphConfig {
    /// Identity platform base.
    pub authority_url: String,
    /// Graph base without `/v1.0`.
    pub graph_url: String,
    /// Tenant GUID or domain.
    pub tenant_id: Option<String>,
    /// Application (client) ID.
    pub client_id: Option<String>,
    /// Assertion signature scheme.
    pub assertion_alg: AssertionAlg,
    /// Extra trusted CA certificates (PEM), e.g. from `m365.ca_file`.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// TCP+TLS connect timeout.
    pub connect_timeout: Duration,
    /// Retry bounds.
    pub retry: RetryPolicy,
    /// Requests in flight across all mailboxes.
    pub max_concurrency: usize,
    /// Requests in flight per mailbox.
    pub per_mailbox_concurrency: usize,
}

impl std::fmt::Debug for GraphConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphConfig")
            .field("authority_url", &self.authority_url)
            .field("graph_url", &self.graph_url)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("assertion_alg", &self.assertion_alg)
            .field("extra_ca", &self.extra_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig::from_m365(&M365Settings::default())
    }
}

impl GraphConfig {
    fn from_m365(m: &M365Settings) -> Self {
        GraphConfig {
            authority_url: m.authority_url.trim_end_matches('/').to_string(),
            graph_url: m.graph_url.trim_end_matches('/').to_string(),
            tenant_id: m.tenant_id.clone(),
            client_id: m.client_id.clone(),
            assertion_alg: m.assertion_alg,
            extra_ca_pem: None,
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(15),
            retry: RetryPolicy::default(),
            max_concurrency: 16,
            per_mailbox_concurrency: PER_MAILBOX_CONCURRENCY,
        }
    }

    /// From the `[m365]` settings, reading `m365.ca_file` if set.
    pub fn from_settings(m: &M365Settings) -> Result<Self, GraphError> {
        let mut c = GraphConfig::from_m365(m);
        if let Some(path) = &m.ca_file {
            c.extra_ca_pem = Some(read_ca_file(path)?);
        }
        Ok(c)
    }
}

fn read_ca_file(path: &Path) -> Result<Vec<u8>, GraphError> {
    let bytes = std::fs::read(path).map_err(|e| GraphError::Network {
        host: "the Microsoft endpoints".into(),
        detail: format!("cannot read m365.ca_file {}: {e}", path.display()),
    })?;
    if reqwest::Certificate::from_pem_bundle(&bytes)
        .map(|v| v.is_empty())
        .unwrap_or(true)
    {
        return Err(GraphError::Network {
            host: "the Microsoft endpoints".into(),
            detail: format!("m365.ca_file {} holds no PEM certificate", path.display()),
        });
    }
    Ok(bytes)
}

/// The HTTP client for Microsoft endpoints: webpki roots plus the extra CA, timeouts, our user agent.
pub fn http_client(config: &GraphConfig) -> Result<reqwest::Client, GraphError> {
    // reqwest's no-provider rustls build needs a process-wide provider; aws-lc-rs is our only one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("pbx365/", env!("CARGO_PKG_VERSION")))
        .timeout(config.request_timeout)
        .connect_timeout(config.connect_timeout)
        .https_only(false);
    if let Some(pem) = &config.extra_ca_pem {
        let certs =
            reqwest::Certificate::from_pem_bundle(pem).map_err(|e| GraphError::Network {
                host: "the Microsoft endpoints".into(),
                detail: format!("bad m365.ca_file: {e}"),
            })?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| GraphError::Network {
        host: "the Microsoft endpoints".into(),
        detail: e.to_string(),
    })
}

/// A request to Graph.
#[derive(Debug, Clone)]
pub struct GraphRequest {
    /// Method.
    pub method: Method,
    /// Path relative to `/v1.0` (e.g. `/users?$top=1`) or an absolute nextLink/deltaLink.
    pub url: String,
    /// Extra headers (e.g. `Prefer`, `ConsistencyLevel`).
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: Option<serde_json::Value>,
    /// Mailbox this request touches (Outlook's per-mailbox concurrency limit applies).
    pub mailbox: Option<String>,
}

impl GraphRequest {
    /// A GET.
    pub fn get(url: impl Into<String>) -> Self {
        GraphRequest {
            method: Method::GET,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            mailbox: None,
        }
    }

    /// A request with a JSON body.
    pub fn with_json(method: Method, url: impl Into<String>, body: serde_json::Value) -> Self {
        GraphRequest {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Some(body),
            mailbox: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Marks the mailbox the request touches.
    pub fn mailbox(mut self, mailbox: &str) -> Self {
        self.mailbox = Some(mailbox.to_ascii_lowercase());
        self
    }
}

/// A successful Graph answer.
#[derive(Debug, Clone)]
pub struct GraphResponse {
    /// HTTP status (2xx).
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl GraphResponse {
    /// The body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, GraphError> {
        serde_json::from_slice(&self.body).map_err(|e| GraphError::BadResponse(e.to_string()))
    }
}

/// Where a delta round goes on: another page, or the end with the link for the next round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextOrDelta {
    /// More pages in this round: fetch this link next.
    Next(String),
    /// The round is complete: save this link and use it for the next round.
    Delta(String),
}

impl NextOrDelta {
    /// The link either way (what the caller persists after applying the page).
    pub fn link(&self) -> &str {
        match self {
            NextOrDelta::Next(l) | NextOrDelta::Delta(l) => l,
        }
    }
}

/// One page of a delta round. Apply `items`, then persist `next.link()` (in the same transaction
/// if you can), then continue with it: a crash in between replays the page, which is idempotent.
#[derive(Debug, Clone)]
pub struct DeltaPage<T> {
    /// Changes on this page.
    pub items: Vec<T>,
    /// Where to go on.
    pub next: NextOrDelta,
}

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

/// Counters a caller can read (and the log reports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP requests sent to Graph (retries included).
    pub requests: u64,
    /// Retries (Graph and token endpoint, batch sub-requests included).
    pub retries: u64,
    /// Token requests sent to the identity platform.
    pub token_requests: u64,
}

/// The Graph v1.0 client.
pub struct GraphClient {
    http: reqwest::Client,
    base: String,
    graph_origin: String,
    graph_host: String,
    config: GraphConfig,
    tokens: Arc<TokenProvider>,
    requests: AtomicU64,
    retries: Arc<AtomicU64>,
    global: Arc<Semaphore>,
    mailboxes: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("base", &self.base)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

/// Percent-encodes one path segment (an id or a mailbox address).
pub fn seg(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

impl GraphClient {
    /// A client for the tenant and app in `config`, signing with the keys in `keys`.
    pub fn new(config: GraphConfig, keys: KeyStore) -> Result<Self, GraphError> {
        let client_id = config
            .client_id
            .clone()
            .filter(|c| !c.trim().is_empty())
            .ok_or(GraphError::NotConfigured(
                "the Application (client) ID is not set: enter it on the Microsoft 365 Configure page (m365.client_id)",
            ))?;
        let tenant_id = config.tenant_id.clone().filter(|t| !t.trim().is_empty()).ok_or(GraphError::NotConfigured(
            "the tenant is not known yet: click \"Sign in to Microsoft 365\" on the Configure page (or set m365.tenant_id)",
        ))?;
        let http = http_client(&config)?;
        let retries = Arc::new(AtomicU64::new(0));
        let id = Identity {
            authority_url: config.authority_url.clone(),
            tenant_id,
            client_id,
            assertion_alg: config.assertion_alg,
        };
        let tokens = TokenProvider::new(
            http.clone(),
            id,
            keys,
            config.retry,
            config.request_timeout.as_secs(),
        )
        .with_retry_counter(retries.clone());
        let url = reqwest::Url::parse(&config.graph_url)
            .map_err(|e| GraphError::BadResponse(format!("m365.graph_url is not a URL: {e}")))?;
        let graph_host = url.host_str().unwrap_or_default().to_string();
        let graph_origin = url.origin().ascii_serialization();
        Ok(GraphClient {
            http,
            base: format!("{}/v1.0", config.graph_url.trim_end_matches('/')),
            graph_origin,
            graph_host,
            global: Arc::new(Semaphore::new(config.max_concurrency.max(1))),
            mailboxes: Mutex::new(HashMap::new()),
            config,
            tokens: Arc::new(tokens),
            requests: AtomicU64::new(0),
            retries,
        })
    }

    /// A client from the whole settings (keys in `data_dir`).
    pub fn from_settings(settings: &Settings) -> Result<Self, GraphError> {
        GraphClient::new(
            GraphConfig::from_settings(&settings.m365)?,
            KeyStore::new(&settings.data_dir),
        )
    }

    /// The token provider (to read granted roles/tenant or invalidate after consent).
    pub fn tokens(&self) -> &Arc<TokenProvider> {
        &self.tokens
    }

    /// A current token (acquired if needed).
    pub async fn token(&self) -> Result<Arc<AccessToken>, GraphError> {
        self.tokens.token().await
    }

    /// Retries so far (Graph requests, batch sub-requests and token requests).
    pub fn retry_count(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Request and retry counters.
    pub fn stats(&self) -> ClientStats {
        ClientStats {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retry_count(),
            token_requests: self.tokens.request_count(),
        }
    }

    /// `{graph_url}/v1.0`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn absolute(&self, url: &str) -> Result<String, GraphError> {
        if url.starts_with('/') {
            return Ok(format!("{}{}", self.base, url));
        }
        // Links from Graph are followed verbatim, but the bearer token only goes to Graph itself.
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| GraphError::BadResponse(format!("bad link {url}: {e}")))?;
        if parsed.origin().ascii_serialization() != self.graph_origin {
            return Err(GraphError::BadResponse(format!(
                "a link points outside Microsoft Graph ({})",
                parsed.origin().ascii_serialization()
            )));
        }
        Ok(url.to_string())
    }

    fn relative_path<'a>(&self, url: &'a str) -> &'a str {
        url.strip_prefix(self.base.as_str()).unwrap_or(url)
    }

    fn mailbox_semaphore(&self, mailbox: &str) -> Arc<Semaphore> {
        let mut map = self.mailboxes.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(mailbox.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.per_mailbox_concurrency.max(1))))
            .clone()
    }

    /// Sends a request, retrying throttling (429/503 honouring `Retry-After`), server errors and
    /// network failures with exponential backoff and jitter, up to the policy's attempts.
    pub async fn send(&self, req: GraphRequest) -> Result<GraphResponse, GraphError> {
        let url = self.absolute(&req.url)?;
        let path = self.relative_path(&url).to_string();
        let idempotent = matches!(
            req.method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE
        );
        let mut backoff = self.config.retry.backoff();
        let mut attempts = 0u32;
        let mut renewed_token = false;
        loop {
            attempts += 1;
            let token = self.tokens.token().await?;
            let outcome = {
                let _global = self
                    .global
                    .acquire()
                    .await
                    .map_err(|_| GraphError::BadResponse("client closed".into()))?;
                let _mailbox = match &req.mailbox {
                    Some(m) => Some(
                        self.mailbox_semaphore(m)
                            .acquire_owned()
                            .await
                            .map_err(|_| GraphError::BadResponse("client closed".into()))?,
                    ),
                    None => None,
                };
                self.attempt(&req, &url, &token).await
            };
            let (retryable, retry_after, err) = match outcome {
                Ok(resp) if (200..300).contains(&resp.status) => {
                    tracing::trace!(method = %req.method, path = %path, status = resp.status, "graph request done");
                    return Ok(resp);
                }
                Ok(resp) => {
                    let raw =
                        graph_raw(resp.status, &resp.body, header(&resp.headers, "request-id"));
                    if resp.status == 401 && !renewed_token {
                        // The token may have been revoked or expired early: one retry with a fresh one.
                        renewed_token = true;
                        self.tokens.invalidate().await;
                        tracing::debug!(raw = %raw, "graph answered 401; retrying with a new token");
                        continue;
                    }
                    let retry_after = retry_after_header(&resp.headers);
                    let retryable = match resp.status {
                        429 | 503 => true,
                        500 | 502 | 504 => idempotent,
                        _ => false,
                    };
                    (
                        retryable,
                        retry_after,
                        from_graph_error(raw, &path, !token.roles.is_empty()),
                    )
                }
                Err(e) => {
                    let retryable = e.is_connect()
                        || (idempotent && (e.is_timeout() || e.is_request() || e.is_body()));
                    (
                        retryable,
                        None,
                        from_transport(&e, &self.graph_host, self.config.request_timeout.as_secs()),
                    )
                }
            };
            match backoff.next() {
                Some(delay) if retryable => {
                    let delay = self.config.retry.delay(retry_after, delay);
                    let total = self.retries.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::warn!(method = %req.method, path = %path, attempt = attempts, delay_ms = delay.as_millis() as u64,
                        retries_total = total, raw = ?err.raw().map(ToString::to_string), error = %err, "graph request failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                _ => {
                    tracing::warn!(method = %req.method, path = %path, attempts, raw = ?err.raw().map(ToString::to_string),
                        error = %err, "graph request failed");
                    return Err(with_attempts(err, attempts));
                }
            }
        }
    }

    async fn attempt(
        &self,
        req: &GraphRequest,
        url: &str,
        token: &AccessToken,
    ) -> Result<GraphResponse, reqwest::Error> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.secret()))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid"));
        bearer.set_sensitive(true);
        let mut b = self
            .http
            .request(req.method.clone(), url)
            .header(AUTHORIZATION, bearer);
        for (k, v) in &req.headers {
            b = b.header(k, v);
        }
        if let Some(body) = &req.body {
            b = b
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        } else if req.method == Method::POST {
            b = b.header(reqwest::header::CONTENT_LENGTH, "0");
        }
        let resp = b.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await?.to_vec();
        Ok(GraphResponse {
            status,
            headers,
            body,
        })
    }

    /// GET and parse JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, GraphError> {
        self.send(GraphRequest::get(url)).await?.json()
    }

    /// One page of a collection.
    pub async fn get_page<T: DeserializeOwned>(
        &self,
        req: GraphRequest,
    ) -> Result<ODataPage<T>, GraphError> {
        self.send(req).await?.json()
    }

    /// Every item of a collection, following `@odata.nextLink` (headers are re-sent on each page).
    pub async fn get_all<T: DeserializeOwned>(
        &self,
        req: GraphRequest,
    ) -> Result<Vec<T>, GraphError> {
        let mut items = Vec::new();
        let mut next = Some(req.url.clone());
        let mut pages = 0u32;
        let retries_before = self.retry_count();
        while let Some(url) = next {
            let page: ODataPage<T> = self.get_page(GraphRequest { url, ..req.clone() }).await?;
            pages += 1;
            items.extend(page.value);
            next = page.next_link;
        }
        let retries = self.retry_count().saturating_sub(retries_before);
        if retries > 0 {
            tracing::info!(path = %self.relative_path(&req.url), pages, items = items.len(), retries,
                "read a collection; Microsoft throttled or failed some requests, which were retried");
        } else {
            tracing::debug!(path = %self.relative_path(&req.url), pages, items = items.len(), "read a collection");
        }
        Ok(items)
    }

    /// One page of a delta round from `link` (the start URL, a nextLink or a saved deltaLink).
    /// An expired link gives [`GraphError::DeltaExpired`]: start over with a full round.
    pub async fn delta_page<T: DeserializeOwned>(
        &self,
        req: GraphRequest,
    ) -> Result<DeltaPage<T>, GraphError> {
        let page: ODataPage<T> = self.get_page(req).await?;
        let next = match (page.next_link, page.delta_link) {
            (Some(n), _) => NextOrDelta::Next(n),
            (None, Some(d)) => NextOrDelta::Delta(d),
            (None, None) => {
                return Err(GraphError::BadResponse(
                    "a delta page without nextLink or deltaLink".into(),
                ))
            }
        };
        Ok(DeltaPage {
            items: page.value,
            next,
        })
    }

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
                        "/$batch",
                        serde_json::json!({ "requests": pending }),
                    ))
                    .await?;
                let env: BatchEnvelope = resp.json()?;
                let mut throttled = Vec::new();
                let mut wait: Option<Duration> = None;
                for r in env.responses {
                    if matches!(r.status, 429 | 503) {
                        let ra = r
                            .headers
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                            .and_then(|(_, v)| {
                                crate::retry::parse_retry_after(v, chrono::Utc::now())
                            });
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

    // ----- typed calls -----

    /// Every user (with pbx365's `$select`), following paging.
    pub async fn list_users(&self) -> Result<Vec<DirectoryUser>, GraphError> {
        let users: Vec<GraphUser> = self
            .get_all(GraphRequest::get(format!(
                "/users?$select={USER_SELECT}&$top=999"
            )))
            .await?;
        Ok(users.into_iter().map(Into::into).collect())
    }

    /// One user by id or UPN.
    pub async fn get_user(&self, id: &str) -> Result<DirectoryUser, GraphError> {
        let u: GraphUser = self
            .get_json(&format!("/users/{}?$select={USER_SELECT}", seg(id)))
            .await?;
        Ok(u.into())
    }

    /// The first URL of a full users delta round.
    pub fn users_delta_start(&self) -> String {
        format!("/users/delta?$select={USER_SELECT}")
    }

    /// One page of a users delta round (`link`: [`Self::users_delta_start`], a nextLink or a saved deltaLink).
    pub async fn users_delta_page(&self, link: &str) -> Result<DeltaPage<UserChange>, GraphError> {
        let page: DeltaPage<GraphUser> = self.delta_page(GraphRequest::get(link)).await?;
        Ok(DeltaPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next: page.next,
        })
    }

    /// A link that starts delta tracking from now without reading anything (`$deltatoken=latest`).
    pub async fn users_delta_latest(&self) -> Result<String, GraphError> {
        let page: DeltaPage<GraphUser> = self
            .delta_page(GraphRequest::get(format!(
                "/users/delta?$select={USER_SELECT}&$deltatoken=latest"
            )))
            .await?;
        Ok(page.next.link().to_string())
    }

    /// Groups (id, name, mail).
    pub async fn list_groups(&self) -> Result<Vec<Group>, GraphError> {
        self.get_all(GraphRequest::get(
            "/groups?$select=id,displayName,mail,description&$top=999",
        ))
        .await
    }

    /// Transitive members of a group (nested groups flattened).
    pub async fn group_transitive_members(
        &self,
        group_id: &str,
    ) -> Result<Vec<DirectoryObject>, GraphError> {
        self.get_all(GraphRequest::get(format!(
            "/groups/{}/transitiveMembers?$select=id,displayName,mail&$top=999",
            seg(group_id)
        )))
        .await
    }

    /// Photo metadata; `None` when the user has no photo (any 404).
    pub async fn photo_meta(&self, user: &str) -> Result<Option<PhotoMeta>, GraphError> {
        let req = GraphRequest::get(format!("/users/{}/photo", seg(user))).mailbox(user);
        match self.send(req).await {
            Ok(r) => r.json().map(Some),
            Err(GraphError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Photo bytes (largest available); `None` when the user has no photo (any 404).
    pub async fn photo(&self, user: &str) -> Result<Option<Photo>, GraphError> {
        let req = GraphRequest::get(format!("/users/{}/photo/$value", seg(user))).mailbox(user);
        match self.send(req).await {
            Ok(r) => Ok(Some(Photo {
                content_type: header(&r.headers, "content-type")
                    .unwrap_or_else(|| "image/jpeg".into()),
                bytes: r.body,
            })),
            Err(GraphError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Contact folders of a mailbox (top level).
    pub async fn contact_folders(&self, mailbox: &str) -> Result<Vec<ContactFolder>, GraphError> {
        self.get_all(
            GraphRequest::get(format!("/users/{}/contactFolders?$top=100", seg(mailbox)))
                .mailbox(mailbox),
        )
        .await
    }

    /// Child folders of a contact folder.
    pub async fn contact_child_folders(
        &self,
        mailbox: &str,
        folder: &str,
    ) -> Result<Vec<ContactFolder>, GraphError> {
        self.get_all(
            GraphRequest::get(format!(
                "/users/{}/contactFolders/{}/childFolders?$top=100",
                seg(mailbox),
                seg(folder)
            ))
            .mailbox(mailbox),
        )
        .await
    }

    /// Contacts of the default folder (`folder` None) or of a folder.
    pub async fn contacts(
        &self,
        mailbox: &str,
        folder: Option<&str>,
    ) -> Result<Vec<Contact>, GraphError> {
        let url = match folder {
            None => format!("/users/{}/contacts?$top=100", seg(mailbox)),
            Some(f) => format!(
                "/users/{}/contactFolders/{}/contacts?$top=100",
                seg(mailbox),
                seg(f)
            ),
        };
        self.get_all(GraphRequest::get(url).mailbox(mailbox)).await
    }

    /// The first URL of a contacts delta round for a folder (`None`: the default Contacts folder).
    pub fn contacts_delta_start(&self, mailbox: &str, folder: Option<&str>) -> String {
        match folder {
            None => format!("/users/{}/contacts/delta", seg(mailbox)),
            Some(f) => format!(
                "/users/{}/contactFolders/{}/contacts/delta",
                seg(mailbox),
                seg(f)
            ),
        }
    }

    /// One page of a contacts delta round; removed contacts carry `removed`.
    pub async fn contacts_delta_page(
        &self,
        mailbox: &str,
        link: &str,
    ) -> Result<DeltaPage<Contact>, GraphError> {
        self.delta_page(
            GraphRequest::get(link)
                .mailbox(mailbox)
                .header("Prefer", "odata.maxpagesize=100"),
        )
        .await
    }

    /// Events between two instants (ISO 8601), series expanded, times in UTC.
    pub async fn calendar_view(
        &self,
        mailbox: &str,
        start: &str,
        end: &str,
    ) -> Result<Vec<Event>, GraphError> {
        let q = |v: &str| utf8_percent_encode(v, NON_ALPHANUMERIC).to_string();
        let url = format!(
            "/users/{}/calendarView?startDateTime={}&endDateTime={}&$top=100&$select=id,subject,showAs,start,end,isAllDay,isCancelled,type,sensitivity",
            seg(mailbox),
            q(start),
            q(end)
        );
        self.get_all(
            GraphRequest::get(url)
                .mailbox(mailbox)
                .header("Prefer", "outlook.timezone=\"UTC\""),
        )
        .await
    }

    /// Free/busy of up to 20 addresses (`getSchedule`, asked through `mailbox`).
    pub async fn get_schedule(
        &self,
        mailbox: &str,
        schedules: &[String],
        start: &DateTimeTimeZone,
        end: &DateTimeTimeZone,
        interval_minutes: u32,
    ) -> Result<Vec<ScheduleInformation>, GraphError> {
        let mut out = Vec::new();
        for chunk in schedules.chunks(20) {
            let body = serde_json::json!({
                "schedules": chunk, "startTime": start, "endTime": end,
                "availabilityViewInterval": interval_minutes.clamp(5, 1440)
            });
            let req = GraphRequest::with_json(
                Method::POST,
                format!("/users/{}/calendar/getSchedule", seg(mailbox)),
                body,
            )
            .mailbox(mailbox)
            .header("Prefer", "outlook.timezone=\"UTC\"");
            let page: ODataPage<ScheduleInformation> = self.send(req).await?.json()?;
            out.extend(page.value);
        }
        Ok(out)
    }

    /// Creates a change-notification subscription (Graph validates `notificationUrl` first).
    pub async fn create_subscription(
        &self,
        sub: &NewSubscription,
    ) -> Result<Subscription, GraphError> {
        let body = serde_json::to_value(sub).map_err(|e| GraphError::BadResponse(e.to_string()))?;
        let mut req = GraphRequest::with_json(Method::POST, "/subscriptions", body);
        if let Some(m) = mailbox_of_resource(&sub.resource) {
            req = req.mailbox(&m);
        }
        self.send(req).await?.json()
    }

    /// Extends a subscription.
    pub async fn renew_subscription(
        &self,
        id: &str,
        expiration: &str,
    ) -> Result<Subscription, GraphError> {
        let body = serde_json::json!({ "expirationDateTime": expiration });
        self.send(GraphRequest::with_json(
            Method::PATCH,
            format!("/subscriptions/{}", seg(id)),
            body,
        ))
        .await?
        .json()
    }

    /// Deletes a subscription (a missing one counts as deleted).
    pub async fn delete_subscription(&self, id: &str) -> Result<(), GraphError> {
        let req = GraphRequest {
            method: Method::DELETE,
            ..GraphRequest::get(format!("/subscriptions/{}", seg(id)))
        };
        match self.send(req).await {
            Ok(_) | Err(GraphError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// This app's subscriptions.
    pub async fn list_subscriptions(&self) -> Result<Vec<Subscription>, GraphError> {
        self.get_all(GraphRequest::get("/subscriptions")).await
    }

    /// Reauthorises a subscription after `reauthorizationRequired`.
    pub async fn reauthorize_subscription(&self, id: &str) -> Result<(), GraphError> {
        let req = GraphRequest {
            method: Method::POST,
            ..GraphRequest::get(format!("/subscriptions/{}/reauthorize", seg(id)))
        };
        self.send(req).await.map(|_| ())
    }

    /// Sends mail as `sender` (202 = accepted, not delivered).
    pub async fn send_mail(
        &self,
        sender: &str,
        message: &MailMessage,
        save_to_sent_items: bool,
    ) -> Result<(), GraphError> {
        let body = serde_json::json!({ "message": message, "saveToSentItems": save_to_sent_items });
        let req = GraphRequest::with_json(
            Method::POST,
            format!("/users/{}/sendMail", seg(sender)),
            body,
        )
        .mailbox(sender);
        self.send(req).await.map(|_| ())
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `users/{id}/…` resources live in a mailbox (per-mailbox limits apply).
fn mailbox_of_resource(resource: &str) -> Option<String> {
    let r = resource.trim_start_matches('/');
    let rest = r
        .strip_prefix("users/")
        .or_else(|| r.strip_prefix("Users/"))?;
    rest.split('/')
        .next()
        .filter(|m| !m.is_empty())
        .map(str::to_ascii_lowercase)
}

/// Keeps `RawError` nameable from here for callers matching on errors.
pub type RawGraphError = RawError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded_and_mailboxes_found_in_resources() {
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
        assert_eq!(seg("ann@contoso.com"), "ann@contoso.com");
        assert_eq!(
            mailbox_of_resource("/users/Ann@x.com/contacts").as_deref(),
            Some("ann@x.com")
        );
        assert_eq!(mailbox_of_resource("users"), None);
    }
}
