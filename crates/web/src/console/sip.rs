//! Phones in the console: an extension's new SIP secret (shown once), and the state of the
//! link to Kamailio (changes waiting, the last failure) on Settings › Phones.

use super::auth::ConsoleAdmin;
use super::error::ConsoleError;
use crate::html::render;
use crate::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

/// Routes of the phone pages.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/settings/phones", get(status_page))
        .route("/console/extensions/{number}/sip-secret", post(new_secret))
}

/// Settings › Phones, or the page showing a new secret once.
#[derive(Template)]
#[template(path = "console/phones.html")]
pub(crate) struct PhonesPage {
    pub chrome: crate::html::Chrome,
    pub domain: String,
    pub listen: String,
    pub rpc_url: String,
    /// Whether this instance pushes changes to Kamailio.
    pub linked: bool,
    pub pending: usize,
    pub pushed: u64,
    pub last_error: Option<String>,
    /// Failed authentications and banned addresses Kamailio counted, when it answers.
    pub attacks: Option<pbx365_app::sip::AttackCounts>,
    /// The extension whose new secret is shown.
    pub number: String,
    /// Its new secret, right after "New SIP secret".
    pub secret: Option<String>,
}

fn page(
    admin: &ConsoleAdmin,
    state: &AppState,
    secret: Option<(String, String)>,
    attacks: Option<pbx365_app::sip::AttackCounts>,
) -> PhonesPage {
    let settings = state.settings();
    let status = state.app.sip_status();
    PhonesPage {
        chrome: admin.chrome("phones", None),
        domain: settings.effective_sip_domain(),
        listen: settings.sip.listen.clone(),
        rpc_url: settings.sip.rpc_url.clone(),
        linked: status.is_some(),
        pending: status.as_ref().map_or(0, |s| s.pending),
        pushed: status.as_ref().map_or(0, |s| s.pushed),
        last_error: status.and_then(|s| s.last_error),
        attacks,
        number: secret.as_ref().map(|s| s.0.clone()).unwrap_or_default(),
        secret: secret.map(|s| s.1),
    }
}

/// The link to Kamailio. Admin only.
async fn status_page(admin: ConsoleAdmin, State(state): State<AppState>) -> Response {
    let attacks = state.app.sip_attack_counts().await;
    render(StatusCode::OK, &page(&admin, &state, None, attacks))
}

#[derive(Deserialize)]
struct Empty {}

/// A new SIP secret for the extension, shown once on this response (never stored in
/// clear, not cacheable). Admin only.
async fn new_secret(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    Path(number): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let _: Empty = admin.form(&body)?;
    let secret = state.app.rotate_sip_secret(&admin.name, &number).await?;
    let mut response = render(
        StatusCode::OK,
        &page(&admin, &state, Some((number.clone(), secret)), None),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().unwrap());
    Ok(response.into_response())
}
