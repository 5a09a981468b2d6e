//! Settings > Integrations > Microsoft 365 > SSO (SPEC §4): Microsoft sign-in for the console
//! and the web client, each off, for all synced users, or for a chosen set: extensions (all
//! synced ones listed in a small office; above 50 only the chosen ones, more found by number or
//! name with "Find an extension"), members of Microsoft 365 groups (picked with the directory
//! search of the sync page, stored by object id and shown by name, membership checked at each
//! sign-in) and members of pbx365 extension groups. The local admin password login always stays.

use super::BASE;
use crate::console::{ConsoleAdmin, ConsoleError};
use crate::html::{render, sentence};
use crate::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use pbx365_domain::settings::SsoMode;
use serde::Deserialize;
use serde_json::json;

/// The page's path.
pub const SSO: &str = "/console/settings/integrations/microsoft365/sso";

/// The extension picker's search (JSON, admin session only).
pub const EXTENSION_SEARCH: &str = "/console/settings/integrations/microsoft365/sso/extensions";

/// One choice of the picker.
pub(crate) struct Pick {
    pub value: String,
    pub label: String,
    pub checked: bool,
}

/// Settings > Integrations > Microsoft 365 > SSO.
#[derive(Template)]
#[template(path = "m365/sso.html")]
pub(crate) struct SsoPage {
    pub chrome: crate::html::Chrome,
    pub error: Option<String>,
    pub console: &'static str,
    pub webclient: &'static str,
    pub extensions: Vec<Pick>,
    /// True when only the selected extensions are listed and "Find an extension" adds more.
    pub extension_search: bool,
    /// The search "Find an extension" calls.
    pub extension_search_url: &'static str,
    /// pbx365 extension groups.
    pub groups: Vec<Pick>,
    /// The selected Microsoft 365 groups (value: object id, label: name).
    pub m365_groups: Vec<Pick>,
    /// The directory search the group picker calls.
    pub directory_url: &'static str,
    pub connected: bool,
    pub redirect_uri: String,
    pub base: &'static str,
}

fn mode_str(m: SsoMode) -> &'static str {
    match m {
        SsoMode::Off => "off",
        SsoMode::All => "all",
        SsoMode::Selected => "selected",
    }
}

async fn page(
    state: &AppState,
    admin: &ConsoleAdmin,
    notice: Option<String>,
    error: Option<String>,
) -> Result<SsoPage, ConsoleError> {
    let settings = state.app.settings();
    let sso = &settings.sso;
    let choices = state
        .app
        .sso_extension_choices(&sso.selected_extensions)
        .await?;
    let extensions = choices
        .choices
        .into_iter()
        .map(|(c, checked)| Pick {
            value: c.id,
            label: c.name,
            checked,
        })
        .collect();
    let groups = state
        .app
        .groups()
        .await?
        .into_iter()
        .map(|g| Pick {
            checked: sso.selected_extension_groups.contains(&g.name),
            label: g.name.clone(),
            value: g.name,
        })
        .collect();
    let m365_groups = sso
        .selected_groups
        .iter()
        .map(|id| Pick {
            checked: true,
            label: sso
                .selected_group_names
                .get(id)
                .cloned()
                .unwrap_or_else(|| id.clone()),
            value: id.clone(),
        })
        .collect();
    Ok(SsoPage {
        chrome: admin.chrome("m365", notice),
        error,
        console: mode_str(sso.console),
        webclient: mode_str(sso.webclient),
        extensions,
        extension_search: choices.search,
        extension_search_url: EXTENSION_SEARCH,
        groups,
        m365_groups,
        directory_url: crate::console::sync::DIRECTORY,
        connected: settings.m365.tenant_id.is_some() && settings.m365.client_id.is_some(),
        redirect_uri: state.app.redirect_uri(),
        base: BASE,
    })
}

/// The SSO settings. Admin only.
pub(crate) async fn sso_page(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
) -> Result<Response, ConsoleError> {
    let (notice, error) = state.app.take_flash_sentences(&admin.session.id_hash).await;
    Ok(render(
        StatusCode::OK,
        &page(&state, &admin, notice, error).await?,
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ExtensionQuery {
    q: Option<String>,
}

/// "Find an extension": up to 20 synced extensions whose number or name starts with `q`, as
/// `[{"id": "201", "name": "201 Anna Berg", "detail": "anna@…"}]`. Admin only.
pub(crate) async fn extension_search(
    _admin: ConsoleAdmin,
    State(state): State<AppState>,
    Query(q): Query<ExtensionQuery>,
) -> Response {
    match state
        .app
        .search_synced_extensions(q.q.as_deref().unwrap_or_default())
        .await
    {
        Ok(found) => Json(found).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": sentence(e)})),
        )
            .into_response(),
    }
}

/// Saves the SSO settings (CSRF-checked). Admin only.
pub(crate) async fn save(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let pairs: Vec<(String, String)> = admin.form(&body)?;
    let one = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "off".into())
    };
    let many = |k: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let mut m365_groups = many("m365_group");
    m365_groups
        .iter_mut()
        .for_each(|id| *id = id.trim().to_string());
    m365_groups.dedup();
    // The names shown for the chosen groups, as the picker found them.
    let names: std::collections::BTreeMap<String, String> = m365_groups
        .iter()
        .filter_map(|id| {
            pairs
                .iter()
                .find(|(k, v)| k == &format!("m365_group_name:{id}") && !v.trim().is_empty())
                .map(|(_, v)| (id.clone(), v.trim().to_string()))
        })
        .collect();
    let overrides = vec![
        ("sso.console".to_string(), json!(one("console"))),
        ("sso.webclient".to_string(), json!(one("webclient"))),
        (
            "sso.selected_extensions".to_string(),
            json!(many("extension")),
        ),
        ("sso.selected_groups".to_string(), json!(m365_groups)),
        ("sso.selected_group_names".to_string(), json!(names)),
        (
            "sso.selected_extension_groups".to_string(),
            json!(many("extension_group")),
        ),
    ];
    if let Err(e) = state.app.store_settings(&overrides).await {
        return Ok(render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(&state, &admin, None, Some(sentence(e))).await?,
        ));
    }
    state
        .app
        .audit(
            &admin.name,
            "sso.settings",
            "sso",
            format!("console={} webclient={}", one("console"), one("webclient")),
        )
        .await;
    state
        .app
        .set_flash(
            &admin.session.id_hash,
            true,
            "The single sign-on settings were saved.",
        )
        .await;
    Ok(Redirect::to(SSO).into_response())
}
