//! Management console (`/console`, for admins) and web client (`/`, for extension users) pages:
//! server-rendered askama templates, with CSS/JS/icons compiled into the binary (no CDN, no web
//! fonts), security headers on every response.

mod auth;
mod pages;
pub mod sync;
mod views;

pub use auth::{safe_return_to, ConsoleAdmin};

use crate::AppState;
use axum::extract::{Path, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

/// Content-Security-Policy of every page: only our own origin, no inline script, no framing.
pub const CSP: &str =
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Routes for `/`, `/console` and `/static`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::webclient))
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
        .layer(middleware::from_fn(security_headers))
}

/// Adds the browser-hardening headers; pages (not static files) are also marked `no-store`, so
/// the back button after sign-out asks the server again instead of showing a cached page.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
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
