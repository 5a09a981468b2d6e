//! Settings > Integrations > Microsoft 365 > Configure (SPEC §2): the Application (client) ID,
//! the key pair and `public_key.pem`, admin consent through `/oauth2office2`, the granted
//! permissions and the connection check.
//!
//! Everything here talks to Microsoft only through the settings' endpoints (`m365.authority_url`,
//! `m365.graph_url`, `m365.ca_file`), so m365-sim and the real service are the same code path.

mod callback;
mod views;

pub use callback::{callback, ADMIN_CONSENT};

use crate::console::{ConsoleAdmin, CSP};
use crate::{overrides, AppState};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use pbx365_domain::{AuditEntry, Guid};
use pbx365_graph::keys::{host_of, ExpiryStatus};
use pbx365_graph::{required_permissions, CertificateInfo, KeyStore, Slot};
use pbx365_store::OAuthState;
use serde::{Deserialize, Serialize};
use std::path::Path;
use views::{
    render, CertView, CheckRow, ChecksView, Chrome, ConfigurePage, Outcome, PermissionRow,
    PermissionsView,
};

/// Base path of the integration pages.
pub const BASE: &str = "/console/settings/integrations/microsoft365";
/// The Configure page (the callback lands here).
pub const CONFIGURE: &str = "/console/settings/integrations/microsoft365/configure";
/// The scope of the admin-consent request: every application permission configured on the app.
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";
/// How long a started admin consent may take.
const STATE_LIFETIME_MINUTES: i64 = 15;

/// kv key of the permissions seen in the last token (JSON [`LastPermissions`]).
const KV_PERMISSIONS: &str = "m365:last_permissions";
/// kv key of the last connection check (JSON [`LastCheck`]).
const KV_CHECK: &str = "m365:last_check";

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
        .layer(middleware::from_fn(security_headers))
}

/// The console's hardening headers; `no-referrer` everywhere here keeps the callback's query
/// out of any later request (R3.6).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Permissions of the last token pbx365 obtained (callback or check).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastPermissions {
    /// When.
    pub at: DateTime<Utc>,
    /// The token's `tid`.
    pub tenant: String,
    /// The token's `roles`.
    pub roles: Vec<String>,
}

/// One stored line of the last connection check.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredCheck {
    name: String,
    ok: bool,
    detail: String,
    fix: Option<String>,
}

/// The last connection check.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LastCheck {
    at: DateTime<Utc>,
    checks: Vec<StoredCheck>,
}

/// The outcome shown once on the next page view of one console session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Flash {
    ok: bool,
    message: String,
}

fn flash_key(session_hash: &str) -> String {
    format!("m365:flash:{session_hash}")
}

/// Leaves a one-off outcome for the session's next view of the Configure page.
pub(crate) async fn set_flash(state: &AppState, session_hash: &str, ok: bool, message: &str) {
    let value = serde_json::to_string(&Flash {
        ok,
        message: message.to_string(),
    })
    .unwrap_or_default();
    if let Err(e) = state.store.set_kv(&flash_key(session_hash), &value).await {
        tracing::warn!(error = %e, "could not keep the outcome for the next page view");
    }
}

async fn take_flash(state: &AppState, session_hash: &str) -> Option<Flash> {
    let key = flash_key(session_hash);
    let raw = state.store.get_kv(&key).await.ok().flatten()?;
    let _ = state.store.delete_kv(&key).await;
    serde_json::from_str(&raw).ok()
}

/// Redirect (303) to the Configure page after a form.
fn to_configure() -> Response {
    Redirect::to(CONFIGURE).into_response()
}

/// The redirect URI registered in Azure: `{public_url}/oauth2office2`.
pub fn redirect_uri(state: &AppState) -> String {
    format!(
        "{}/oauth2office2",
        state
            .settings()
            .effective_public_url()
            .trim_end_matches('/')
    )
}

/// Stores a console setting (it wins over the file) and applies it to the running server.
pub(crate) async fn store_setting(
    state: &AppState,
    key: &str,
    value: serde_json::Value,
) -> Result<(), String> {
    let applied = overrides::apply(&state.settings(), &[(key.to_string(), value.clone())])
        .map_err(|e| e.to_string())?;
    state
        .store
        .set_kv(&overrides::kv_key(key), &value.to_string())
        .await
        .map_err(|e| e.to_string())?;
    state.replace_settings(applied);
    Ok(())
}

/// Records the permissions of a token for the status box.
pub(crate) async fn record_permissions(state: &AppState, tenant: &str, roles: &[String]) {
    let value = LastPermissions {
        at: Utc::now(),
        tenant: tenant.to_string(),
        roles: roles.to_vec(),
    };
    if let Err(e) = state
        .store
        .set_kv(
            KV_PERMISSIONS,
            &serde_json::to_string(&value).unwrap_or_default(),
        )
        .await
    {
        tracing::warn!(error = %e, "could not record the granted permissions");
    }
}

/// Appends to the audit log; a failure is logged, not shown.
pub(crate) async fn audit(state: &AppState, actor: &str, action: &str, target: &str, detail: &str) {
    let entry = AuditEntry {
        at: Utc::now(),
        actor: actor.to_string(),
        action: action.to_string(),
        target: target.to_string(),
        detail: detail.to_string(),
    };
    if let Err(e) = state.store.audit(&entry).await {
        tracing::warn!(error = %e, action, "audit entry not written");
    }
}

fn cert_view(c: &CertificateInfo, now: DateTime<Utc>) -> CertView {
    CertView {
        thumbprint: c.thumbprint_hex.clone(),
        subject: c.subject.clone(),
        not_after: c.not_after.format("%Y-%m-%d").to_string(),
        days_left: (c.not_after - now).num_days(),
    }
}

/// The console banner for the certificate pbx365 signs with: a sentence 30, 14, 7 and 1 days
/// before it expires and once it has expired, else `None` (also for no or unreadable keys).
pub fn expiry_banner(data_dir: &Path, now: DateTime<Utc>) -> Option<String> {
    let cred = KeyStore::new(data_dir).load(Slot::Active).ok().flatten()?;
    let cert = cred.certificate();
    let date = cert.not_after.format("%Y-%m-%d");
    match cert.expiry(now) {
        ExpiryStatus::Valid { .. } => None,
        ExpiryStatus::Warning { days_left, .. } => Some(format!(
            "The Microsoft 365 certificate expires on {date} (in {days_left} days): generate a new key pair and upload public_key.pem to the app registration before then."
        )),
        ExpiryStatus::Expired => Some(format!(
            "The Microsoft 365 certificate expired on {date}: pbx365 cannot reach Microsoft 365. Generate a new key pair and upload public_key.pem to the app registration."
        )),
    }
}

/// kv key of the last expiry warning sent: `{thumbprint}:{threshold}`.
const KV_EXPIRY_WARNED: &str = "m365:expiry_warned";

/// Logs the certificate-expiry warning once per threshold (30, 14, 7, 1 days, then expired) and
/// returns its sentence when it was due now (for a mail, once mail exists). The scheduler calls
/// it daily; the Configure page calls it too, so an admin looking at the page is never ahead of
/// the log.
pub async fn warn_certificate_expiry(
    store: &pbx365_store::Store,
    data_dir: &Path,
    now: DateTime<Utc>,
) -> Option<String> {
    let cred = KeyStore::new(data_dir).load(Slot::Active).ok().flatten()?;
    let cert = cred.certificate();
    let last: Option<u32> = store
        .get_kv(KV_EXPIRY_WARNED)
        .await
        .ok()
        .flatten()
        .and_then(|v| {
            v.strip_prefix(&format!("{}:", cert.thumbprint_hex))
                .and_then(|t| t.parse().ok())
        });
    let due = pbx365_graph::keys::expiry_warning_due(cert.not_after, now, last)?;
    let sentence = expiry_banner(data_dir, now)?;
    tracing::warn!(thumbprint = %cert.thumbprint_hex, threshold_days = due, "{sentence}");
    if let Err(e) = store
        .set_kv(KV_EXPIRY_WARNED, &format!("{}:{due}", cert.thumbprint_hex))
        .await
    {
        tracing::warn!(error = %e, "could not remember the certificate-expiry warning");
    }
    Some(sentence)
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

async fn read_json<T: serde::de::DeserializeOwned>(state: &AppState, key: &str) -> Option<T> {
    let raw = state.store.get_kv(key).await.ok().flatten()?;
    serde_json::from_str(&raw).ok()
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
    let now = Utc::now();
    warn_certificate_expiry(&state.store, state.data_dir(), now).await;
    let keys = KeyStore::new(state.data_dir());
    let mut outcome = take_flash(state, &admin.session.id_hash)
        .await
        .map(|f| Outcome {
            ok: f.ok,
            message: f.message,
        });
    let cert = match keys.load(Slot::Active) {
        Ok(c) => c.map(|c| cert_view(c.certificate(), now)),
        Err(e) => {
            // The key file is unusable (wrong mode, damaged): say so instead of hiding it.
            if outcome.is_none() {
                outcome = Some(Outcome {
                    ok: false,
                    message: e.to_string(),
                });
            }
            None
        }
    };
    let pending_cert = keys
        .load(Slot::Pending)
        .ok()
        .flatten()
        .map(|c| cert_view(c.certificate(), now));
    let permissions = read_json::<LastPermissions>(state, KV_PERMISSIONS)
        .await
        .map(permissions_view);
    let checks = read_json::<LastCheck>(state, KV_CHECK)
        .await
        .map(|c| ChecksView {
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
            chrome: Chrome {
                admin: admin.name.clone(),
                csrf: admin.session.csrf_token.clone(),
                active: "m365",
                notice: None,
            },
            redirect_uri: format!("{}/oauth2office2", base.trim_end_matches('/')),
            https: base.to_ascii_lowercase().starts_with("https://"),
            client_id_field: typed_client_id
                .or_else(|| client_id.clone())
                .unwrap_or_default(),
            client_id_error,
            client_id,
            tenant_id: settings.m365.tenant_id.clone().filter(|t| !t.is_empty()),
            cert,
            pending_cert,
            banner: expiry_banner(state.data_dir(), now),
            outcome,
            permissions,
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
) -> Response {
    let form: ClientIdForm = match admin.form(&body) {
        Ok(f) => f,
        Err(refused) => return refused,
    };
    let guid = match Guid::parse("Application (client) ID", &form.client_id) {
        Ok(g) => g,
        Err(e) => {
            let msg = format!(
                "{e}. Copy it from the app registration's Overview page; nothing was saved."
            );
            return page(
                &state,
                &admin,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(form.client_id),
                Some(msg),
            )
            .await;
        }
    };
    let previous = state.settings().m365.client_id.clone();
    if let Err(e) = store_setting(&state, "m365.client_id", serde_json::json!(guid.as_str())).await
    {
        tracing::error!(error = %e, "storing m365.client_id failed");
        return page(
            &state,
            &admin,
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(form.client_id),
            Some(e),
        )
        .await;
    }
    if previous.as_deref() != Some(guid.as_str()) {
        // Another app: the permissions of the old one say nothing about it.
        let _ = state.store.delete_kv(KV_PERMISSIONS).await;
        let _ = state.store.delete_kv(KV_CHECK).await;
    }
    audit(&state, &admin.name, "m365.client_id", guid.as_str(), "").await;
    set_flash(
        &state,
        &admin.session.id_hash,
        true,
        &format!("The Application (client) ID {} was saved.", guid.as_str()),
    )
    .await;
    to_configure()
}

/// Generates a key pair (the first one is used at once; a later one waits until Microsoft accepts
/// its certificate). Admin only, CSRF-checked.
async fn generate_keys(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Response {
    if let Err(refused) = admin.form::<Vec<(String, String)>>(&body) {
        return refused;
    }
    let host = host_of(&state.settings().effective_public_url());
    let keys = KeyStore::new(state.data_dir());
    // RSA key generation takes a moment of CPU: keep it off the async workers.
    let result = tokio::task::spawn_blocking(move || keys.generate(&host)).await;
    let (ok, message) = match result {
        Ok(Ok(g)) => {
            audit(
                &state,
                &admin.name,
                "m365.keygen",
                &g.certificate.thumbprint_hex,
                "",
            )
            .await;
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
        Ok(Err(e)) => {
            tracing::error!(error = %e, "key generation failed");
            (false, format!("No key pair was generated: {e}"))
        }
        Err(e) => {
            tracing::error!(error = %e, "key generation task failed");
            (
                false,
                "No key pair was generated; the server log has the details.".to_string(),
            )
        }
    };
    set_flash(&state, &admin.session.id_hash, ok, &message).await;
    to_configure()
}

/// `public_key.pem`: the certificate to upload (the new one during a rotation). Admin only.
/// Only the certificate is ever served; the private key never leaves the key store.
async fn download_certificate(_admin: ConsoleAdmin, State(state): State<AppState>) -> Response {
    match KeyStore::new(state.data_dir()).certificate_for_upload() {
        Ok(Some(cert)) => (
            [
                (header::CONTENT_TYPE, "application/x-pem-file"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"public_key.pem\"",
                ),
            ],
            cert.pem,
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

/// The admin-consent URL (v2 endpoint) for `client_id`, answered at `redirect_uri` with `state`.
pub fn admin_consent_url(
    authority_url: &str,
    tenant: Option<&str>,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
) -> String {
    let tenant = tenant
        .filter(|t| !t.trim().is_empty())
        .unwrap_or("organizations");
    let query = serde_urlencoded::to_string([
        ("client_id", client_id),
        ("scope", GRAPH_DEFAULT_SCOPE),
        ("redirect_uri", redirect_uri),
        ("state", state),
    ])
    .unwrap_or_default();
    format!(
        "{}/{}/v2.0/adminconsent?{query}",
        authority_url.trim_end_matches('/'),
        url_segment(tenant)
    )
}

fn url_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Starts admin consent: a one-time `state` (stored hashed, bound to this session) and a
/// redirect to Microsoft. Admin only, CSRF-checked (a POST, so no other site can start it).
async fn start_admin_consent(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Response {
    if let Err(refused) = admin.form::<Vec<(String, String)>>(&body) {
        return refused;
    }
    let settings = state.settings();
    let Some(client_id) = settings.m365.client_id.clone().filter(|c| !c.is_empty()) else {
        set_flash(
            &state,
            &admin.session.id_hash,
            false,
            "Enter the Application (client) ID before signing in to Microsoft 365.",
        )
        .await;
        return to_configure();
    };
    let keys = KeyStore::new(state.data_dir());
    if !keys.exists(Slot::Active) && !keys.exists(Slot::Pending) {
        set_flash(
            &state,
            &admin.session.id_hash,
            false,
            "Generate a key pair and upload public_key.pem to the app registration before signing in: pbx365 proves the connection with it.",
        )
        .await;
        return to_configure();
    }
    let value = crate::session::random_token();
    let record = OAuthState {
        state_hash: crate::session::hash_secret(&value),
        purpose: ADMIN_CONSENT.to_string(),
        session_hash: admin.session.id_hash.clone(),
        data: serde_json::json!({ "client_id": client_id, "admin": admin.name }),
        // Real time, not the session clock: the store expires states by the wall clock.
        expires_at: Utc::now() + chrono::Duration::minutes(STATE_LIFETIME_MINUTES),
    };
    if let Err(e) = state.store.put_oauth_state(&record).await {
        tracing::error!(error = %e, "storing the admin-consent state failed");
        set_flash(
            &state,
            &admin.session.id_hash,
            false,
            "The sign-in could not be started; the server log has the details.",
        )
        .await;
        return to_configure();
    }
    let url = admin_consent_url(
        &settings.m365.authority_url,
        settings.m365.tenant_id.as_deref(),
        &client_id,
        &redirect_uri(&state),
        &value,
    );
    tracing::info!(client_id = %client_id, "admin consent started");
    Redirect::to(&url).into_response()
}

/// Runs the doctor's checks and keeps their result for the page. Admin only, CSRF-checked.
async fn check_connection(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Response {
    if let Err(refused) = admin.form::<Vec<(String, String)>>(&body) {
        return refused;
    }
    let settings = state.settings();
    let checks =
        pbx365_graph::run_checks(&settings, state.data_dir(), settings.public_url.as_deref()).await;
    // The token check's permission lines are the freshest view of what is granted.
    let granted: Vec<String> = checks
        .iter()
        .filter(|c| c.ok)
        .filter_map(|c| c.name.strip_prefix("permission ").map(str::to_string))
        .collect();
    let token_ok = checks.iter().any(|c| c.name == "token" && c.ok);
    if token_ok {
        let tenant = settings.m365.tenant_id.clone().unwrap_or_default();
        record_permissions(&state, &tenant, &granted).await;
    }
    let stored = LastCheck {
        at: Utc::now(),
        checks: checks
            .into_iter()
            .map(|c| StoredCheck {
                name: c.name,
                ok: c.ok,
                detail: c.detail,
                fix: c.fix,
            })
            .collect(),
    };
    if let Err(e) = state
        .store
        .set_kv(
            KV_CHECK,
            &serde_json::to_string(&stored).unwrap_or_default(),
        )
        .await
    {
        tracing::warn!(error = %e, "could not keep the connection check");
    }
    to_configure()
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

    #[test]
    fn admin_consent_url_uses_organizations_until_the_tenant_is_known() {
        let u = admin_consent_url(
            "https://login.example/",
            None,
            "c1",
            "https://pbx/oauth2office2",
            "s t",
        );
        assert_eq!(
            u,
            "https://login.example/organizations/v2.0/adminconsent?client_id=c1&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&redirect_uri=https%3A%2F%2Fpbx%2Foauth2office2&state=s+t"
        );
        let u = admin_consent_url("https://login.example", Some("t-1"), "c1", "r", "s");
        assert!(
            u.starts_with("https://login.example/t-1/v2.0/adminconsent?"),
            "{u}"
        );
    }
}
