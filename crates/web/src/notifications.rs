//! `POST /api/m365/notifications`: Graph change and lifecycle notifications (SPEC §8).
//!
//! A thin axum wrapper around [`pbx365_app::sync::receive_notification`], which does the validation handshake,
//! the constant-time clientState check, persistence with dedup, and the 202.
//!
//! https://learn.microsoft.com/graph/change-notifications-delivery-webhooks

use axum::body::Bytes;
use axum::extract::{FromRef, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use pbx365_store::Store;
use std::sync::Arc;

/// The receiver's path (SPEC §8).
pub const PATH: &str = "/api/m365/notifications";

/// What the receiver needs: the store, and a hook that wakes the sync worker at once (it also
/// looks at the inbox on its own every half second).
#[derive(Clone)]
pub struct Receiver {
    /// Where subscriptions live and notifications are persisted.
    pub store: Store,
    /// Called after something was persisted.
    pub on_persisted: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl FromRef<crate::AppState> for Receiver {
    fn from_ref(app: &crate::AppState) -> Self {
        let wake = app.app.clone();
        Receiver {
            store: app.store.clone(),
            on_persisted: Some(Arc::new(move || wake.wake_sync())),
        }
    }
}

/// The route, for any state the receiver can be taken from (the app's `AppState`).
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Receiver: FromRef<S>,
{
    Router::new().route(PATH, post(receive))
}

/// Handles validation handshakes, change notifications and lifecycle notifications. Called by Microsoft.
pub async fn receive(
    State(rx): State<Receiver>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let reply = pbx365_app::sync::receive_notification(&rx.store, query.as_deref(), &body).await;
    if reply.persisted {
        if let Some(wake) = &rx.on_persisted {
            wake();
        }
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match reply.text {
        Some(t) => (status, t).into_response(),
        None => status.into_response(),
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}
