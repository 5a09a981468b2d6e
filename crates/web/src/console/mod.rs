//! Management console (`/console`, for admins) and web client (`/`, for extension users) pages:
//! server-rendered askama templates, with CSS/JS/icons compiled into the binary (no CDN, no web
//! fonts); rendering, chrome and security headers come from the one HTML layer ([`crate::html`]).

mod auth;
mod calendar;
mod contacts;
mod credentials;
mod error;
mod mail;
mod pages;
mod phonebook_settings;
mod sessions;
mod sip;
pub mod sync;
mod views;

pub use crate::html::CSP;
pub use auth::{safe_return_to, ConsoleAdmin};
pub use error::ConsoleError;
pub(crate) use sessions::{session_rows, SessionRow};

use crate::AppState;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

/// Routes for `/`, `/console` and `/static`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(pages::home))
        .route("/console/", get(pages::home))
        .route(
            "/console/login",
            get(auth::login_page).post(auth::login_submit),
        )
        .route("/console/logout", post(auth::logout))
        .route(
            "/console/extensions",
            get(pages::extensions).post(pages::extension_create),
        )
        .route("/console/extensions/new", get(pages::extension_new))
        .route(
            "/console/extensions/{number}",
            post(pages::extension_update),
        )
        .route(
            "/console/extensions/{number}/edit",
            get(pages::extension_edit),
        )
        .route(
            "/console/extensions/{number}/profile",
            post(pages::extension_profile),
        )
        .route(
            "/console/extensions/{number}/delete",
            post(pages::extension_delete),
        )
        .route(
            "/console/extensions/{number}/photo",
            get(pages::extension_photo),
        )
        .route("/console/phonebook", get(pages::phonebook))
        .route("/console/sync", get(pages::sync_runs))
        .route("/console/settings", get(pages::settings_home))
        .route(
            "/console/settings/integrations/microsoft365",
            get(pages::m365),
        )
        .route("/static/{file}", get(static_file))
        .merge(sync::router())
        .merge(credentials::router())
        .merge(mail::router())
        .merge(contacts::router())
        .merge(sip::router())
        .merge(phonebook_settings::router())
        .merge(calendar::router())
        .merge(sessions::router())
        .layer(middleware::from_fn(crate::html::security_headers))
}

/// Embedded assets: (name, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../assets/favicon.svg"),
    ),
];

/// Serves an embedded asset. Anyone may call it.
async fn static_file(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                // Short cache: assets change with upgrades and carry no version in their name.
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *bytes,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "not found",
        )
            .into_response(),
    }
}
