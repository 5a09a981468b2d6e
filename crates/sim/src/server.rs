//! Start-up (tenant, keys, TLS, listener) and the middleware every request passes through:
//! latency, injected faults, request counting and Graph's request-id headers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::identity::access::CLIENT_REQUEST_ID;
use crate::identity::keys::KeySet;
use crate::state::SimState;
use crate::{SimConfig, SimError, SimHandle};

/// The running server.
pub(crate) struct ServerHandle {
    pub(crate) addr: SocketAddr,
    handle: axum_server::Handle,
    join: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    pub(crate) async fn shutdown(self) {
        self.handle.shutdown();
        let _ = self.join.await;
    }
}

/// A deterministic tenant GUID derived from the generator seed.
fn tenant_guid_from_seed(seed: u64) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("m365-sim tenant {seed}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

pub(crate) async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    crate::tls::install_crypto_provider();
    let seed_tenant = config.seed.as_ref().and_then(|s| s.get("tenant"));
    let tenant_id = config
        .tenant_id
        .clone()
        .or_else(|| {
            seed_tenant
                .and_then(|t| t.get("id"))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| tenant_guid_from_seed(config.rng_seed));
    let tenant_id = tenant_id.to_ascii_lowercase();
    if uuid::Uuid::parse_str(&tenant_id).is_err() {
        return Err(SimError::Other(format!(
            "tenant id {tenant_id:?} is not a GUID"
        )));
    }
    let domain = match seed_tenant
        .and_then(|t| t.get("domain"))
        .and_then(|v| v.as_str())
    {
        Some(d) if config.domain == SimConfig::default().domain => d.to_string(),
        _ => config.domain.clone(),
    };

    let std_listener =
        std::net::TcpListener::bind(config.listen).map_err(|source| SimError::Bind {
            addr: config.listen,
            source,
        })?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| SimError::Other(e.to_string()))?;
    let local = std_listener
        .local_addr()
        .map_err(|e| SimError::Other(e.to_string()))?;
    let host = if local.ip().is_unspecified() || local.ip().is_loopback() && local.is_ipv4() {
        "127.0.0.1".to_string()
    } else if local.is_ipv6() {
        format!("[{}]", local.ip())
    } else {
        local.ip().to_string()
    };
    let scheme = if config.https { "https" } else { "http" };
    let base_url = format!("{scheme}://{host}:{}", local.port());

    // Tenant generation and RSA key generation are CPU work: keep them off the runtime threads.
    let cfg = config.clone();
    let (tid, dom) = (tenant_id.clone(), domain.clone());
    let tenant_task =
        tokio::task::spawn_blocking(move || crate::seed::build_tenant(&cfg, &tid, &dom));
    let keys_task = tokio::task::spawn_blocking(KeySet::generate);
    let tls = if config.https {
        Some(crate::tls::generate().map_err(|e| SimError::Crypto(e.to_string()))?)
    } else {
        None
    };
    let keys = keys_task
        .await
        .map_err(|e| SimError::Other(e.to_string()))?
        .map_err(|e| SimError::Crypto(e.to_string()))?;
    let tenant = tenant_task
        .await
        .map_err(|e| SimError::Other(e.to_string()))??;

    let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
    let http = crate::tls::client_trusting(ca_pem.as_deref())
        .map_err(|e| SimError::Other(e.to_string()))?;
    let state = Arc::new(SimState {
        config: config.clone(),
        base_url: base_url.clone(),
        tenant_id: tenant_id.clone(),
        domain: domain.clone(),
        tenant: tokio::sync::RwLock::new(tenant),
        runtime: Default::default(),
        apps: Mutex::new(HashMap::new()),
        keys: RwLock::new(keys),
        faults: Default::default(),
        stats: Default::default(),
        pending_signin: Mutex::new(None),
        auth_codes: Mutex::new(HashMap::new()),
        refresh_tokens: Mutex::new(HashMap::new()),
        used_jti: Mutex::new(HashMap::new()),
        verified_tokens: RwLock::new(HashMap::new()),
        http,
        router: OnceLock::new(),
    });
    let app = app_router(state.clone());
    let _ = state.router.set(app.clone());

    let handle = axum_server::Handle::new();
    let server_handle = handle.clone();
    let make = app.into_make_service();
    let join = match tls {
        Some(tls) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem(
                tls.chain_pem.into_bytes(),
                tls.key_pem.into_bytes(),
            )
            .await
            .map_err(|e| SimError::Crypto(e.to_string()))?;
            let server = axum_server::from_tcp_rustls(std_listener, rustls).handle(server_handle);
            tokio::spawn(async move {
                if let Err(e) = server.serve(make).await {
                    tracing::error!("m365-sim server stopped: {e}");
                }
            })
        }
        None => {
            let server = axum_server::from_tcp(std_listener).handle(server_handle);
            tokio::spawn(async move {
                if let Err(e) = server.serve(make).await {
                    tracing::error!("m365-sim server stopped: {e}");
                }
            })
        }
    };
    let addr = handle
        .listening()
        .await
        .ok_or_else(|| SimError::Other("the server stopped before listening".into()))?;

    Ok(SimHandle {
        base_url,
        tenant_id,
        domain,
        ca_pem,
        state,
        server: ServerHandle { addr, handle, join },
    })
}

/// All routes with the observing middleware.
pub fn app_router(state: Arc<SimState>) -> Router {
    Router::new()
        .merge(crate::identity::router())
        .merge(crate::graph::router())
        .merge(crate::control::router())
        .merge(crate::graph::control_router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Unknown paths: Graph's answer for an unknown segment under `/v1.0`, a plain 404 elsewhere.
async fn not_found(req: Request) -> Response {
    let path = req.uri().path().to_string();
    if let Some(rest) = path.strip_prefix("/v1.0/") {
        let segment = rest.split('/').next().unwrap_or("");
        return crate::identity::access::graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Resource not found for the segment '{segment}'."),
        );
    }
    (StatusCode::NOT_FOUND, "Not found").into_response()
}

/// Latency, faults, stats and request ids, for every request (the `/_sim` control API is
/// neither faulted nor counted).
async fn observe(State(state): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().as_str().to_string();
    let client_request_id = req.headers().get("client-request-id").cloned();
    let is_control = path.starts_with("/_sim/") || path == "/_sim";
    let mut latency = state.config.latency_ms;
    let mut fault = None;
    if !is_control {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| path.clone());
        state.stats.record(&method, &route);
        let hit = state.faults.on_request(&method, &path);
        latency += hit.latency_ms;
        fault = hit.status.map(|s| (s, hit.retry_after));
    }
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let caller_id = client_request_id
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut resp = CLIENT_REQUEST_ID
        .scope(caller_id, async {
            match fault {
                Some((status, retry_after)) => fault_response(&path, status, retry_after),
                None => {
                    let resp = next.run(req).await;
                    if resp.status() == StatusCode::METHOD_NOT_ALLOWED && path.starts_with("/v1.0")
                    {
                        method_not_allowed(resp)
                    } else {
                        resp
                    }
                }
            }
        })
        .await;
    if path.starts_with("/v1.0") {
        let headers = resp.headers_mut();
        if !headers.contains_key("request-id") {
            if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
                headers.insert("request-id", v);
            }
        }
        if let Some(v) = client_request_id {
            headers.insert("client-request-id", v);
        }
    }
    resp
}

/// Graph answers a method a resource does not support with 405 and its error envelope (axum's
/// own 405 has no body); the `Allow` header is kept
/// (https://learn.microsoft.com/graph/errors: "The HTTP method in the request isn't allowed on
/// the resource").
fn method_not_allowed(plain: Response) -> Response {
    let mut resp = crate::identity::access::graph_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
    );
    if let Some(allow) = plain.headers().get(axum::http::header::ALLOW) {
        resp.headers_mut()
            .insert(axum::http::header::ALLOW, allow.clone());
    }
    resp
}

/// The response of an injected fault, in the envelope of the API the path belongs to.
fn fault_response(path: &str, status: u16, retry_after: Option<f64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut resp = if path.starts_with("/v1.0") || !path.contains("/oauth2/") {
        // https://learn.microsoft.com/graph/throttling#sample-response
        let (code, message) = match status.as_u16() {
            429 => ("TooManyRequests", "Please retry again later."),
            503 => (
                "serviceNotAvailable",
                "The service is temporarily unavailable.",
            ),
            500 => ("generalException", "An unspecified error has occurred."),
            _ => ("generalException", "Injected fault."),
        };
        crate::identity::access::graph_error(status, code, message)
    } else {
        crate::identity::errors::AadError::new(
            status,
            "temporarily_unavailable",
            50196,
            "The server is temporarily unable to handle the request (injected fault).",
        )
        .into_response()
    };
    if let Some(secs) = retry_after {
        let text = if secs.fract() == 0.0 {
            format!("{}", secs as u64)
        } else {
            format!("{secs}")
        };
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().insert("retry-after", v);
        }
    }
    resp
}
