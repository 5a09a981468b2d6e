//! App-only access tokens through the client-credentials grant with a certificate assertion.
//!
//! https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
//! Tokens are cached until shortly before they expire; one request at a time refreshes them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use pbx365_domain::settings::AssertionAlg;
use serde::Deserialize;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::assertion::{client_assertion, token_endpoint};
use crate::error::{from_token_error, from_transport, GraphError};
use crate::keys::{Credential, KeyStore, Slot};
use crate::retry::{retry_after_header, RetryPolicy};
use crate::secret::SecretString;

/// The one scope an app-only Graph token asks for.
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Renew this long before expiry (or at half the lifetime, for short-lived tokens).
const RENEW_EARLY_SECS: i64 = 300;

/// An app-only access token and what it says about itself.
pub struct AccessToken {
    secret: SecretString,
    /// When Microsoft says it expires.
    pub expires_at: DateTime<Utc>,
    /// When pbx365 fetches a new one.
    pub renew_at: DateTime<Utc>,
    /// Granted application permissions (`roles`), read for display only.
    pub roles: Vec<String>,
    /// Tenant the token was issued for (`tid`), read for display only.
    pub tenant_id: Option<String>,
    /// Client id (`appid`), read for display only.
    pub app_id: Option<String>,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("roles", &self.roles)
            .field("tenant_id", &self.tenant_id)
            .finish()
    }
}

impl AccessToken {
    /// The bearer value; only for the `Authorization` header.
    pub fn secret(&self) -> &str {
        self.secret.expose()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: serde_json::Value,
}

#[derive(Deserialize, Default)]
struct DisplayClaims {
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    appid: Option<String>,
}

/// Reads `roles`, `tid` and `appid` from a token's payload WITHOUT verifying it.
///
/// Graph access tokens are opaque to clients (graph-facts §1, "clients must not parse or validate
/// Graph access tokens"): these values are shown to the admin (granted permissions, tenant) and
/// never used for an authorisation decision. If the format changes, they are simply empty.
fn display_claims(token: &str) -> DisplayClaims {
    token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Who pbx365 is at Microsoft.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Identity platform base, e.g. `https://login.microsoftonline.com`.
    pub authority_url: String,
    /// Tenant GUID or domain.
    pub tenant_id: String,
    /// Application (client) ID.
    pub client_id: String,
    /// Assertion signature scheme.
    pub assertion_alg: AssertionAlg,
}

/// Gets, caches and renews app-only tokens.
pub struct TokenProvider {
    http: reqwest::Client,
    id: Identity,
    keys: KeyStore,
    retry: RetryPolicy,
    timeout_secs: u64,
    cache: tokio::sync::Mutex<Option<Arc<AccessToken>>>,
    requests: AtomicU64,
    retries: Arc<AtomicU64>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("identity", &self.id)
            .finish_non_exhaustive()
    }
}

impl TokenProvider {
    /// A provider using `http` (built with the right trust roots) and the key store.
    pub fn new(
        http: reqwest::Client,
        id: Identity,
        keys: KeyStore,
        retry: RetryPolicy,
        timeout_secs: u64,
    ) -> Self {
        TokenProvider {
            http,
            id,
            keys,
            retry,
            timeout_secs,
            cache: tokio::sync::Mutex::new(None),
            requests: AtomicU64::new(0),
            retries: Arc::new(AtomicU64::new(0)),
        }
    }

    pub(crate) fn with_retry_counter(mut self, retries: Arc<AtomicU64>) -> Self {
        self.retries = retries;
        self
    }

    /// Who we are.
    pub fn identity(&self) -> &Identity {
        &self.id
    }

    /// Token requests sent to the identity platform so far.
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Drops the cached token, so the next call fetches a new one (e.g. after admin consent,
    /// since a token keeps the roles it was issued with).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    /// A valid token: the cached one, or a new one. Concurrent callers share one refresh.
    pub async fn token(&self) -> Result<Arc<AccessToken>, GraphError> {
        // Holding the lock across the refresh is what makes it single-flight: the others wait
        // for it and then find the new token in the cache.
        let mut cache = self.cache.lock().await;
        let now = Utc::now();
        if let Some(t) = cache.as_ref() {
            if now < t.renew_at {
                return Ok(t.clone());
            }
        }
        match self.acquire().await {
            Ok(t) => {
                *cache = Some(t.clone());
                Ok(t)
            }
            Err(e) => match cache.as_ref() {
                // Renewal failed but the old token is still good: keep working, say so.
                Some(old) if now < old.expires_at && e.is_transient() => {
                    tracing::warn!(error = %e, "token renewal failed; using the current token until it expires");
                    Ok(old.clone())
                }
                _ => Err(e),
            },
        }
    }

    /// Gets a new token, trying a pending key pair first (rotation) and promoting it on success.
    async fn acquire(&self) -> Result<Arc<AccessToken>, GraphError> {
        match self.keys.load(Slot::Pending) {
            Ok(Some(pending)) => match self.request(&pending).await {
                Ok(token) => {
                    // The token is good either way; a failed rename is retried on the next refresh.
                    if let Err(e) = self.keys.promote() {
                        tracing::error!(error = %e, "the new key pair works but could not be made the active one");
                    }
                    return Ok(token);
                }
                Err(e) if self.keys.exists(Slot::Active) => {
                    tracing::warn!(
                        error = %e,
                        raw = ?e.raw().map(ToString::to_string),
                        "the new key pair is not accepted yet; the current one stays in use"
                    );
                }
                Err(e) => return Err(e),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "ignoring the pending key pair"),
        }
        let active = self.keys.load_active()?;
        self.request(&active).await
    }

    /// One client-credentials request (with retries on throttling and outages).
    async fn request(&self, credential: &Credential) -> Result<Arc<AccessToken>, GraphError> {
        let url = token_endpoint(&self.id.authority_url, &self.id.tenant_id);
        let host = reqwest::Url::parse(&url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| self.id.authority_url.clone());
        let mut backoff = self.retry.backoff();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            // A fresh assertion per attempt: each carries a unique jti.
            let assertion = client_assertion(
                credential,
                self.id.assertion_alg,
                &self.id.authority_url,
                &self.id.tenant_id,
                &self.id.client_id,
                Utc::now(),
            )?;
            let form = [
                ("client_id", self.id.client_id.as_str()),
                ("scope", GRAPH_DEFAULT_SCOPE),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.expose()),
                ("grant_type", "client_credentials"),
            ];
            let body = SecretString::new(serde_urlencoded::to_string(form).unwrap_or_default());
            drop(assertion);
            self.requests.fetch_add(1, Ordering::Relaxed);
            let sent = self
                .http
                .post(&url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body.expose().to_string())
                .send()
                .await;
            let (retryable, retry_after, err) = match sent {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = retry_after_header(resp.headers());
                    let bytes = resp
                        .bytes()
                        .await
                        .map_err(|e| from_transport(&e, &host, self.timeout_secs))?;
                    if status == 200 {
                        return self.parse_success(&bytes);
                    }
                    let err =
                        from_token_error(status, &bytes, &self.id.client_id, &self.id.tenant_id);
                    (status == 429 || status >= 500, retry_after, err)
                }
                Err(e) => (
                    e.is_connect() || e.is_timeout(),
                    None,
                    from_transport(&e, &host, self.timeout_secs),
                ),
            };
            match backoff.next() {
                Some(delay) if retryable => {
                    let delay = self.retry.delay(retry_after, delay);
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(attempt = attempts, delay_ms = delay.as_millis() as u64, error = %err,
                        raw = ?err.raw().map(ToString::to_string), "token request failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                _ => {
                    tracing::error!(error = %err, raw = ?err.raw().map(ToString::to_string), "token request failed");
                    return Err(with_attempts(err, attempts));
                }
            }
        }
    }

    fn parse_success(&self, bytes: &[u8]) -> Result<Arc<AccessToken>, GraphError> {
        let parsed: TokenResponse = serde_json::from_slice(bytes)
            .map_err(|e| GraphError::BadResponse(format!("token response: {e}")))?;
        let secret = SecretString::new(parsed.access_token);
        // expires_in is a number in the docs; some proxies turn it into a string.
        let expires_in = match &parsed.expires_in {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(3599)
        .max(1);
        let now = Utc::now();
        let early = RENEW_EARLY_SECS.min(expires_in / 2);
        let claims = display_claims(secret.expose());
        tracing::info!(expires_in, roles = ?claims.roles, tenant = ?claims.tid, "acquired a Microsoft 365 app-only token");
        Ok(Arc::new(AccessToken {
            secret,
            expires_at: now + ChronoDuration::seconds(expires_in),
            renew_at: now + ChronoDuration::seconds(expires_in - early),
            roles: claims.roles,
            tenant_id: claims.tid,
            app_id: claims.appid,
        }))
    }
}

/// Records the number of attempts on throttling/outage errors.
pub(crate) fn with_attempts(err: GraphError, attempts: u32) -> GraphError {
    match err {
        GraphError::Throttled { raw, .. } => GraphError::Throttled { attempts, raw },
        GraphError::ServiceUnavailable { raw, .. } => {
            GraphError::ServiceUnavailable { attempts, raw }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_claims_are_read_without_verification_and_tolerate_garbage() {
        let payload =
            URL_SAFE_NO_PAD.encode(br#"{"roles":["User.Read.All"],"tid":"t-1","appid":"a"}"#);
        let c = display_claims(&format!("h.{payload}.sig"));
        assert_eq!(c.roles, ["User.Read.All"]);
        assert_eq!(c.tid.as_deref(), Some("t-1"));
        let c = display_claims("opaque-token");
        assert!(c.roles.is_empty() && c.tid.is_none());
    }
}
