//! HTTP side of pbx365: the REST API (`/api/v1`), the management console and web client pages,
//! health and metrics endpoints.
//!
//! A thin adapter over [`pbx365_app`]: handlers parse requests, call a use case and present its
//! answer; they never talk to Microsoft Graph or the sync engine themselves. [`router`] assembles
//! everything around one [`AppState`]; [`server`] binds it (plain or TLS) and shuts it down
//! gracefully; [`html`] is the one HTML layer of every page.

pub mod api;
pub mod auth;
pub mod console;
pub mod error;
pub mod html;
pub mod login_throttle;
pub mod m365;
pub mod metrics;
pub mod notifications;
pub mod openapi;
pub mod phonebook_export;
pub mod server;
pub mod session;
pub mod sso;
pub mod state;
pub mod webclient;

/// Console admin passwords (the use-case layer's; kept here for existing callers).
pub use pbx365_app::password;

pub use error::ApiError;
pub use state::AppState;

use axum::Router;

/// The whole application: `/api/v1`, `/healthz`, `/metrics`, and the console/web client pages.
pub fn router(state: AppState) -> Router {
    Router::new()
        .nest("/api/v1", api::router())
        .merge(server::ops_router())
        .merge(console::router())
        .merge(m365::router())
        .merge(notifications::router())
        .merge(phonebook_export::router())
        .merge(sso::router())
        .merge(webclient::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            console::sync::held_banner,
        ))
        .layer(axum::middleware::from_fn(metrics::track_requests))
        .layer(server::trace_layer())
        .with_state(state)
}
