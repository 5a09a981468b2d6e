//! Binding and running the server (plain HTTP or TLS), health and metrics endpoints, request logs.

use crate::AppState;
use axum::extract::State;
use axum::http::{header, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

/// Errors of starting the server; each is one sentence.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: String, reason: String },
    /// The TLS certificate or key could not be loaded.
    #[error("cannot use the TLS certificate {cert} with key {key}: {reason}")]
    Tls {
        cert: String,
        key: String,
        reason: String,
    },
    /// The server stopped with an I/O error.
    #[error("the server stopped: {0}")]
    Io(#[from] std::io::Error),
}

/// Certificate chain and private key files (PEM) for HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert_file: PathBuf,
    /// Private key.
    pub key_file: PathBuf,
}

/// A bound, not yet serving, listener: lets the caller learn the real address (port 0) first.
pub struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
}

impl Bound {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https` when TLS is configured.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// Makes aws-lc-rs the process's rustls provider. Needed once other crates in the build also
/// compile ring, when rustls can no longer pick a provider by itself; idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Binds `addr` and loads the TLS files, so every start-up problem surfaces before serving.
pub async fn bind(addr: &str, tls: Option<&TlsFiles>) -> Result<Bound, ServeError> {
    install_crypto_provider();
    let bind_err = |e: std::io::Error| ServeError::Bind {
        addr: addr.to_string(),
        reason: e.to_string(),
    };
    let listener = TcpListener::bind(addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    let tls = match tls {
        Some(files) => Some(
            axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert_file, &files.key_file)
                .await
                .map_err(|e| ServeError::Tls {
                    cert: files.cert_file.display().to_string(),
                    key: files.key_file.display().to_string(),
                    reason: e.to_string(),
                })?,
        ),
        None => None,
    };
    Ok(Bound {
        listener,
        addr: local,
        tls,
    })
}

/// Serves `app` on `bound` until `shutdown` resolves, then lets in-flight requests finish
/// (for at most 10 seconds).
pub async fn serve(
    bound: Bound,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight");
        h.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    match bound.tls {
        Some(config) => {
            axum_server::from_tcp_rustls(bound.listener, config)
                .handle(handle)
                .serve(service)
                .await?;
        }
        None => {
            axum_server::from_tcp(bound.listener)
                .handle(handle)
                .serve(service)
                .await?;
        }
    }
    Ok(())
}

/// `GET /healthz` and `GET /metrics`.
pub fn ops_router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

/// Health of the server and its database. Anyone (load balancers, monitoring) may call it.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    // A cheap read proves the database answers.
    match state.store.count_admins().await {
        Ok(_) => (
            StatusCode::OK,
            Json(serde_json::json!({"status": "ok", "database": "ok"})),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "unavailable", "database": "unavailable"})),
            )
        }
    }
}

/// Prometheus metrics in text format. Anyone who can reach the server may call it (bind it
/// privately or filter it at the proxy); it holds no secrets.
async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::handle().render(),
    )
}

/// Request logging that never records headers, cookies, query strings or bodies: only the
/// method, the route pattern and the outcome.
pub fn trace_layer(
) -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeSpan, (), DefaultOnResponse> {
    TraceLayer::new_for_http()
        .make_span_with(MakeSpan)
        .on_request(())
        .on_response(DefaultOnResponse::new().level(Level::INFO))
}

/// Builds the request span from the method and route pattern only (the query may carry OAuth
/// codes and states; paths with ids are reduced to their route).
#[derive(Debug, Clone, Copy)]
pub struct MakeSpan;

impl<B> tower_http::trace::MakeSpan<B> for MakeSpan {
    fn make_span(&mut self, req: &Request<B>) -> tracing::Span {
        let route = req
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "unmatched".to_owned());
        tracing::info_span!("request", method = %req.method(), route = %route)
    }
}
