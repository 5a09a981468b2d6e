//! Settings > Integrations > Microsoft 365 > Configure (SPEC §2): the Application (client) ID,
//! the key pair and `public_key.pem`, admin consent through `/oauth2office2`, the granted
//! permissions and the connection check. The pages only present: the connection itself is
//! [`pbx365_app::m365`].

mod callback;
mod sso_page;
mod views;

pub use callback::callback;
pub use pbx365_app::m365::{
    admin_consent_url, expiry_banner, warn_certificate_expiry, LastPermissions, ADMIN_CONSENT,
    GRAPH_DEFAULT_SCOPE,
};

use crate::console::{ConsoleAdmin, ConsoleError, CSP};
use crate::html::render;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use pbx365_app::m365::{
    certificate_for_upload, required_permissions, CertificateInfo, LastCheck, Slot,
};
use pbx365_app::AppError;
use serde::Deserialize;
use views::{
    CertView, CheckRow, ChecksView, ConfigurePage, Outcome, PermissionRow, PermissionsView,
};

/// Base path of the integration pages.
pub const BASE: &str = "/console/settings/integrations/microsoft365";
/// The Configure page (the callback lands here).
pub const CONFIGURE: &str = "/console/settings/integrations/microsoft365/configure";

/// Routes of the Configure page, `public_key.pem` and the redirect URI `/oauth2office2`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(CONFIGURE, get(configure_page))
        .route(&format!("{BASE}/client-id"), post(save_client_id))
        .route(&format!("{BASE}/keygen"), post(generate_keys))
        .route(&format!("{BASE}/public_key.pem"), get(download_certificate))
        .route(&format!("{BASE}/signin"), post(start_admin_consent))
        .route(&format!("{BASE}/check"), post(check_connection))
        .route("/oauth2office2", get(callback))
        .route(sso_page::SSO, get(sso_page::sso_page).post(sso_page::save))
        .route(sso_page::EXTENSION_SEARCH, get(sso_page::extension_search))
        .layer(middleware::from_fn(crate::html::security_headers))
}

/// Redirect (303) to the Configure page after a form.
fn to_configure() -> Response {
    Redirect::to(CONFIGURE).into_response()
}

/// The redirect URI registered in Azure: `{public_url}/oauth2office2`.
pub fn redirect_uri(state: &AppState) -> String {
    state.app.redirect_uri()
}

fn cert_view(c: &CertificateInfo, now: DateTime<Utc>) -> CertView {
    CertView {
        thumbprint: c.thumbprint_hex.clone(),
        subject: c.subject.clone(),
        not_after: c.not_after.format("%Y-%m-%d").to_string(),
        days_left: (c.not_after - now).num_days(),
    }
}

fn permissions_view(last: LastPermissions) -> PermissionsView {
    let rows: Vec<PermissionRow> = required_permissions()
        .iter()
        .map(|p| PermissionRow {
            name: p.name,
            granted: last.roles.iter().any(|r| r.eq_ignore_ascii_case(p.name)),
            breaks: p.breaks,
        })
        .collect();
    PermissionsView {
        at: last.at.format("%Y-%m-%d %H:%M UTC").to_string(),
        tenant: last.tenant,
        granted: rows.iter().filter(|r| r.granted).count(),
        rows,
    }
}

async fn page(
    state: &AppState,
    admin: &ConsoleAdmin,
    status: StatusCode,
    typed_client_id: Option<String>,
    client_id_error: Option<String>,
) -> Response {
    let settings = state.settings();
    let base = settings.effective_public_url();
    let now = state.app.now();
    let conn = state.app.connection().await;
    let mut outcome = state
        .app
        .take_flash(&admin.session.id_hash)
        .await
        .map(|f| Outcome {
            ok: f.ok,
            message: f.message,
        });
    // The key file is unusable (wrong mode, damaged): say so instead of hiding it.
    if let (None, Some(e)) = (&outcome, conn.key_error) {
        outcome = Some(Outcome {
            ok: false,
            message: e,
        });
    }
    let checks = conn.checks.map(|c: LastCheck| ChecksView {
        at: c.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        all_ok: c.checks.iter().all(|x| x.ok),
        rows: c
            .checks
            .into_iter()
            .map(|x| CheckRow {
                name: x.name,
                ok: x.ok,
                detail: x.detail,
                fix: x.fix.unwrap_or_default(),
            })
            .collect(),
    });
    let client_id = settings.m365.client_id.clone().filter(|c| !c.is_empty());
    let mut res = render(
        status,
        &ConfigurePage {
            chrome: admin.chrome("m365", None),
            redirect_uri: format!("{}/oauth2office2", base.trim_end_matches('/')),
            https: base.to_ascii_lowercase().starts_with("https://"),
            client_id_field: typed_client_id
                .or_else(|| client_id.clone())
                .unwrap_or_default(),
            client_id_error,
            client_id,
            tenant_id: settings.m365.tenant_id.clone().filter(|t| !t.is_empty()),
            cert: conn.cert.as_ref().map(|c| cert_view(c, now)),
            pending_cert: conn.pending_cert.as_ref().map(|c| cert_view(c, now)),
            banner: conn.banner,
            outcome,
            permissions: conn.permissions.map(permissions_view),
            checks,
        },
    );
    // "Sign in to Microsoft 365" is a form whose answer redirects to the identity platform;
    // browsers apply form-action to that redirect, so its origin joins 'self' on this page.
    if let Ok(v) = HeaderValue::from_str(&page_csp(&settings.m365.authority_url)) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

/// The console CSP with the identity platform's origin added to `form-action`.
fn page_csp(authority_url: &str) -> String {
    match url::Url::parse(authority_url).map(|u| u.origin()) {
        Ok(origin) if origin.is_tuple() => CSP.replace(
            "form-action 'self'",
            &format!("form-action 'self' {}", origin.ascii_serialization()),
        ),
        _ => CSP.to_string(),
    }
}

/// The Configure page. Admin only.
async fn configure_page(admin: ConsoleAdmin, State(state): State<AppState>) -> Response {
    page(&state, &admin, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
struct ClientIdForm {
    #[serde(default)]
    client_id: String,
}

/// Saves the Application (client) ID. Admin only, CSRF-checked; an invalid GUID is refused with
/// a sentence and the typed value stays in the field.
async fn save_client_id(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let form: ClientIdForm = admin.form(&body)?;
    match state.app.save_client_id(&admin.name, &form.client_id).await {
        Ok(guid) => Ok(admin
            .flash_to(
                &state,
                true,
                &format!("The Application (client) ID {} was saved.", guid.as_str()),
                CONFIGURE,
            )
            .await),
        Err(AppError::Validation(e)) => {
            let msg = format!(
                "{e}. Copy it from the app registration's Overview page; nothing was saved."
            );
            Ok(page(
                &state,
                &admin,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(form.client_id),
                Some(msg),
            )
            .await)
        }
        Err(e) => {
            tracing::error!(error = %e, "storing m365.client_id failed");
            Ok(page(
                &state,
                &admin,
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(form.client_id),
                Some(e.to_string()),
            )
            .await)
        }
    }
}

/// Generates a key pair (the first one is used at once; a later one waits until Microsoft accepts
/// its certificate). Admin only, CSRF-checked.
async fn generate_keys(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    admin.form::<Vec<(String, String)>>(&body)?;
    if let Some(again) = admin.fresh_sign_in_needed(&state, CONFIGURE) {
        return Ok(again);
    }
    let (ok, message) = match state.app.generate_keys(&admin.name).await {
        Ok(g) => {
            let msg = match g.slot {
                Slot::Active => format!(
                    "A new key pair was generated (certificate thumbprint {}). Download public_key.pem and upload it to the app registration.",
                    g.certificate.thumbprint_hex
                ),
                Slot::Pending => format!(
                    "A new key pair was generated (certificate thumbprint {}). Download public_key.pem and upload it to the app registration; the current key keeps working until Microsoft accepts the new one.",
                    g.certificate.thumbprint_hex
                ),
            };
            (true, msg)
        }
        Err(AppError::Keys(e)) => (false, format!("No key pair was generated: {e}")),
        Err(_) => (
            false,
            "No key pair was generated; the server log has the details.".to_string(),
        ),
    };
    Ok(admin.flash_to(&state, ok, &message, CONFIGURE).await)
}

/// `public_key.pem`: the certificate to upload (the new one during a rotation). Admin only.
/// Only the certificate is ever served; the private key never leaves the key store.
async fn download_certificate(_admin: ConsoleAdmin, State(state): State<AppState>) -> Response {
    match certificate_for_upload(state.data_dir()) {
        Ok(Some(pem)) => (
            [
                (header::CONTENT_TYPE, "application/x-pem-file"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"public_key.pem\"",
                ),
            ],
            pem,
        )
            .into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "No key pair has been generated yet: click \"Generate new key pair\" first.",
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading the certificate failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                e.to_string(),
            )
                .into_response()
        }
    }
}

/// Starts admin consent: a one-time `state` (stored hashed, bound to this session) and a
/// redirect to Microsoft. Admin only, CSRF-checked (a POST, so no other site can start it).
async fn start_admin_consent(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    admin.form::<Vec<(String, String)>>(&body)?;
    if let Some(again) = admin.fresh_sign_in_needed(&state, CONFIGURE) {
        return Ok(again);
    }
    match state
        .app
        .start_admin_consent(&admin.name, &admin.session.id_hash)
        .await
    {
        Ok(url) => Ok(Redirect::to(&url).into_response()),
        Err(e) => Ok(admin
            .flash_to(&state, false, &e.to_string(), CONFIGURE)
            .await),
    }
}

/// Runs the doctor's checks and keeps their result for the page. Admin only, CSRF-checked.
async fn check_connection(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    admin.form::<Vec<(String, String)>>(&body)?;
    state.app.check_connection().await;
    Ok(to_configure())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configure_page_may_post_to_the_identity_platform_only() {
        let csp = page_csp("https://login.microsoftonline.com/");
        assert!(
            csp.contains("form-action 'self' https://login.microsoftonline.com;"),
            "{csp}"
        );
        assert_eq!(page_csp("not a url"), CSP);
    }
}
