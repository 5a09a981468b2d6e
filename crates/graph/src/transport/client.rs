//! [`GraphClient`]: sends one request with an app-only token, retrying throttling (429/503 with
//! `Retry-After`), server errors and network failures with exponential backoff, within a global
//! and a per-mailbox concurrency limit. Paging, delta and `$batch` build on [`GraphClient::send`].
//!
//! https://learn.microsoft.com/graph/throttling · https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits

use pbx365_domain::settings::Settings;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

use super::config::{http_client, GraphConfig};
use super::request::{api_base, header, GraphRequest, GraphResponse};
use crate::error::{from_graph_error, from_transport, graph_raw, GraphError};
use crate::keys::KeyStore;
use crate::retry::retry_after_header;
use crate::token::{with_attempts, AccessToken, Identity, TokenProvider};

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
    pub(super) config: GraphConfig,
    tokens: Arc<TokenProvider>,
    requests: AtomicU64,
    pub(super) retries: Arc<AtomicU64>,
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
            base: api_base(&config.graph_url),
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

    /// `url` relative to `/v1.0`, as a `$batch` sub-request names it (a nextLink or deltaLink
    /// from Graph is absolute).
    pub fn batch_url(&self, url: &str) -> String {
        self.relative_path(url).to_string()
    }

    /// `url` without the Graph base (`/v1.0`), as `$batch` sub-requests must name it.
    pub fn relative_path<'a>(&self, url: &'a str) -> &'a str {
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
}
