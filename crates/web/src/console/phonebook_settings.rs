//! Settings › Phonebook (issue 14): the export token of the desk-phone exports (a new one is
//! shown once with the ready-to-paste URLs; only its digest is stored) and the read-only LDAP
//! directory (address, bind DN, password stored as an Argon2 hash, anonymous searches).
//! Every change is a CSRF-checked POST.

use super::auth::ConsoleAdmin;
use super::error::ConsoleError;
use crate::html::{render, sentence};
use crate::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use pbx365_app::directory::LdapChange;
use serde::Deserialize;

/// The page's path.
pub const PHONEBOOK_SETTINGS: &str = "/console/settings/phonebook";

/// Routes of the page.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(PHONEBOOK_SETTINGS, get(show))
        .route(&format!("{PHONEBOOK_SETTINGS}/token"), post(new_token))
        .route(
            &format!("{PHONEBOOK_SETTINGS}/token/remove"),
            post(remove_token),
        )
        .route(&format!("{PHONEBOOK_SETTINGS}/ldap"), post(save_ldap))
}

/// Settings › Phonebook.
#[derive(Template)]
#[template(path = "console/phonebook_settings.html")]
pub(crate) struct PhonebookSettingsPage {
    pub chrome: crate::html::Chrome,
    pub error: Option<String>,
    pub has_token: bool,
    /// `(label, URL)` of each export, with the new token, right after "New export token".
    pub urls: Vec<(&'static str, String)>,
    pub ldap_listen: String,
    pub ldap_base_dn: String,
    pub ldap_bind_dn: String,
    pub has_password: bool,
    pub ldap_anonymous: bool,
    pub ldaps: bool,
}

fn page(
    state: &AppState,
    admin: &ConsoleAdmin,
    notice: Option<String>,
    error: Option<String>,
    token: Option<&str>,
) -> PhonebookSettingsPage {
    let settings = state.app.settings();
    let p = &settings.phonebook;
    let base = settings.effective_public_url();
    let urls = token
        .map(|t| {
            vec![
                (
                    "Yealink / Fanvil XML",
                    format!("{base}/phonebook/yealink.xml?token={t}"),
                ),
                (
                    "vCard 3.0",
                    format!("{base}/phonebook/company.vcf?token={t}"),
                ),
                (
                    "vCard 4.0",
                    format!("{base}/phonebook/company.vcf?token={t}&version=4.0"),
                ),
                ("CSV", format!("{base}/phonebook/company.csv?token={t}")),
            ]
        })
        .unwrap_or_default();
    PhonebookSettingsPage {
        chrome: admin.chrome("phonebook-settings", notice),
        error,
        has_token: p.export_token.is_some(),
        urls,
        ldap_listen: p.ldap_listen.clone().unwrap_or_default(),
        ldap_base_dn: p.ldap_base_dn.clone(),
        ldap_bind_dn: p.ldap_bind_dn.clone().unwrap_or_default(),
        has_password: p.ldap_bind_password.is_some(),
        ldap_anonymous: p.ldap_anonymous,
        ldaps: p.ldap_tls_cert.is_some(),
    }
}

/// The export token and LDAP settings. Admin only.
async fn show(admin: ConsoleAdmin, State(state): State<AppState>) -> Response {
    let (notice, error) = admin.take_flash(&state).await;
    render(StatusCode::OK, &page(&state, &admin, notice, error, None))
}

#[derive(Deserialize)]
struct Empty {}

/// **New export token** (CSRF-checked): the token and URLs are on this response only (not
/// cacheable); the previous token stops working. Admin only.
async fn new_token(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let _: Empty = admin.form(&body)?;
    let token = state.app.rotate_export_token(&admin.name).await?;
    let notice = Some("A new export token was made; the previous one no longer works.".into());
    let mut response = render(
        StatusCode::OK,
        &page(&state, &admin, notice, None, Some(&token)),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().unwrap());
    Ok(response.into_response())
}

/// **Remove token** (CSRF-checked): the exports answer 403 until a new token is made. Admin only.
async fn remove_token(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let _: Empty = admin.form(&body)?;
    state.app.remove_export_token(&admin.name).await?;
    Ok(admin
        .flash_to(
            &state,
            true,
            "The export token was removed; the exports are off.",
            PHONEBOOK_SETTINGS,
        )
        .await)
}

#[derive(Deserialize)]
struct LdapForm {
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    listen: String,
    #[serde(default)]
    bind_dn: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    anonymous: Option<String>,
}

/// Saves the LDAP settings (CSRF-checked); a blank password keeps the stored one. Admin only.
async fn save_ldap(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let form: LdapForm = admin.form(&body)?;
    let listen = form.enabled.is_some().then(|| {
        let l = form.listen.trim();
        if l.is_empty() {
            "0.0.0.0:389".to_string()
        } else {
            l.to_string()
        }
    });
    let change = LdapChange {
        listen,
        bind_dn: Some(form.bind_dn),
        new_password: Some(form.password).filter(|p| !p.is_empty()),
        anonymous: form.anonymous.is_some(),
    };
    let (ok, message) = match state.app.set_ldap(&admin.name, change).await {
        Ok(()) => (
            true,
            "The LDAP settings were saved; a changed address takes effect when pbx365 restarts."
                .to_string(),
        ),
        Err(e) => (false, format!("Nothing was saved: {}", sentence(e))),
    };
    Ok(admin
        .flash_to(&state, ok, &message, PHONEBOOK_SETTINGS)
        .await)
}
