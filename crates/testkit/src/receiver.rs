//! The change-notification receiver (the same core the web crate mounts at
//! `/api/m365/notifications`) on real HTTP at `127.0.0.1:0`, for tests whose subscriptions the
//! sim must validate and notify without the whole web app.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pbx365_store::Store;
use pbx365_sync::receiver;

/// Serves the receiver over `store`, wrapped like the web crate's handler; returns its base URL
/// (the `public_url` to give a sync service).
pub async fn serve(store: Store) -> String {
    // The tests' own reqwest clients need the process-wide rustls provider (nextest runs each
    // test in a process of its own, so no other test installs it first).
    m365_sim::tls::install_crypto_provider();
    async fn handler(State(store): State<Store>, RawQuery(q): RawQuery, body: Bytes) -> Response {
        let reply = receiver::handle(&store, q.as_deref(), &body).await;
        let status =
            StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = match reply.text {
            Some(t) => (status, t).into_response(),
            None => status.into_response(),
        };
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        resp.headers_mut().insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        resp
    }
    let app = axum::Router::new()
        .route("/api/m365/notifications", axum::routing::post(handler))
        .with_state(store);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the receiver");
    let addr = listener.local_addr().expect("receiver address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}
