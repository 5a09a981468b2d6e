//! Settings > Integrations > Microsoft 365 > Sync (SPEC §3): the user sync settings (stored in
//! the database, winning over the file), **Preview** (a dry run of the form's values before
//! anything is saved or written), **Sync now**, the run detail page, a directory picker fed from
//! Graph, and the banner every console page shows while a run is held by the mass-deletion guard,
//! with its one-shot **Approve these deletions** button.

use super::auth::ConsoleAdmin;
use super::error::ConsoleError;
use super::views::Chrome;
use crate::html::{render, sentence};
use crate::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pbx365_app::settings as overrides;
use pbx365_app::sync::{missing_connection, DirectoryKind, RunOptions, Unavailable};
use pbx365_app::AppError;
use pbx365_domain::settings::{Settings, SyncScope, SyncSettings};
use pbx365_domain::{ReportItem, SyncKind, SyncReport, SyncRun, SyncStatus};
use serde::Deserialize;

/// The Sync settings page.
pub const SETTINGS: &str = "/console/settings/integrations/microsoft365/sync";
/// Run detail pages live below this.
pub const RUNS: &str = "/console/sync/runs";
/// The directory search behind the users/groups pickers (this page's and the SSO page's).
pub const DIRECTORY: &str = "/console/settings/integrations/microsoft365/sync/directory";

/// Keys of the sync settings this page writes.
const KEYS: &[&str] = &[
    "sync.start_extension",
    "sync.end_extension",
    "sync.caller_id_from_office_phone",
    "sync.photos",
    "sync.scope",
    "sync.scope_ids",
    "sync.nightly_at",
    "sync.delete_after_days",
    "sync.max_deletions",
    "sync.max_deletion_percent",
];

/// Most items the held-run banner lists before "and N more".
const BANNER_ITEMS: usize = 25;

/// Routes of the Sync settings page, run details, approval and the directory picker.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(SETTINGS, get(settings_page).post(save_settings))
        .route(&format!("{SETTINGS}/preview"), post(preview))
        .route(&format!("{SETTINGS}/now"), post(sync_now))
        .route(DIRECTORY, get(directory))
        .route("/console/assets/sync.js", get(picker_js))
        .route(&format!("{RUNS}/{{id}}"), get(run_detail))
        .route(&format!("{RUNS}/{{id}}/approve"), post(approve))
}

/// The form's values, as text (re-shown unchanged when something is refused).
#[derive(Debug, Clone, Default)]
pub(crate) struct SyncForm {
    pub start_extension: String,
    pub end_extension: String,
    pub caller_id: bool,
    pub photos: bool,
    pub scope: String,
    pub scope_ids: String,
    pub nightly_at: String,
    pub delete_after_days: String,
    pub max_deletions: String,
    pub max_deletion_percent: String,
}

impl SyncForm {
    fn from_settings(s: &SyncSettings) -> Self {
        SyncForm {
            start_extension: s.start_extension.to_string(),
            end_extension: s.end_extension.map(|e| e.to_string()).unwrap_or_default(),
            caller_id: s.caller_id_from_office_phone,
            photos: s.photos,
            scope: scope_str(s.scope).into(),
            scope_ids: s.scope_ids.join("\n"),
            nightly_at: s.nightly_at.clone(),
            delete_after_days: s.delete_after_days.to_string(),
            max_deletions: s.max_deletions.to_string(),
            max_deletion_percent: s.max_deletion_percent.to_string(),
        }
    }

    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let on = |k: &str| {
            pairs
                .iter()
                .any(|(n, v)| n == k && (v == "on" || v == "true" || v == "1"))
        };
        SyncForm {
            start_extension: get("start_extension"),
            end_extension: get("end_extension"),
            caller_id: on("caller_id_from_office_phone"),
            photos: on("photos"),
            scope: get("scope"),
            scope_ids: get("scope_ids"),
            nightly_at: get("nightly_at"),
            delete_after_days: get("delete_after_days"),
            max_deletions: get("max_deletions"),
            max_deletion_percent: get("max_deletion_percent"),
        }
    }

    /// The console overrides this form asks for, or the sentence saying what to correct.
    fn overrides(&self) -> Result<Vec<(String, serde_json::Value)>, String> {
        fn number(label: &str, v: &str) -> Result<u64, String> {
            v.parse::<u64>()
                .map_err(|_| format!("{label} must be a whole number (you entered '{v}')."))
        }
        let start = number("The start extension", &self.start_extension)?;
        let end = match self.end_extension.as_str() {
            "" => None,
            v => Some(number("The end extension", v)?),
        };
        if let Some(e) = end {
            if e < start {
                return Err(format!(
                    "The end extension ({e}) must not be below the start extension ({start})."
                ));
            }
        }
        let scope = match self.scope.as_str() {
            "all" | "" => "all",
            "users" => "users",
            "groups" => "groups",
            other => return Err(format!("'{other}' is not a choice of users: pick all, chosen users or members of chosen groups.")),
        };
        let ids: Vec<String> = self
            .scope_ids
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if let Some(bad) = ids
            .iter()
            .find(|id| pbx365_domain::Guid::parse("object id", id).is_err())
        {
            return Err(format!("'{bad}' is not a Microsoft 365 object id (a GUID); pick users and groups with the search box."));
        }
        if scope != "all" && ids.is_empty() {
            return Err(if scope == "users" {
                "Choose at least one user, or sync all users.".to_string()
            } else {
                "Choose at least one group, or sync all users.".to_string()
            });
        }
        let small = |label: &str, v: &str| -> Result<u64, String> {
            let n = number(label, v)?;
            if n > u64::from(u32::MAX) {
                return Err(format!("{label} is too large."));
            }
            Ok(n)
        };
        let days = small("Delete after days", &self.delete_after_days)?;
        let max = small("The most deletions per run", &self.max_deletions)?;
        let pct = small("The most deletions in percent", &self.max_deletion_percent)?;
        if pct > 100 {
            return Err(format!(
                "The most deletions in percent must be between 0 and 100 (you entered {pct})."
            ));
        }
        Ok(vec![
            ("sync.start_extension".into(), start.into()),
            (
                "sync.end_extension".into(),
                end.map(serde_json::Value::from)
                    .unwrap_or(serde_json::Value::Null),
            ),
            (
                "sync.caller_id_from_office_phone".into(),
                self.caller_id.into(),
            ),
            ("sync.photos".into(), self.photos.into()),
            ("sync.scope".into(), scope.into()),
            ("sync.scope_ids".into(), serde_json::json!(ids)),
            ("sync.nightly_at".into(), self.nightly_at.clone().into()),
            ("sync.delete_after_days".into(), days.into()),
            ("sync.max_deletions".into(), max.into()),
            ("sync.max_deletion_percent".into(), pct.into()),
        ])
    }

    /// The effective settings with this form applied, validated.
    fn apply(
        &self,
        base: &Settings,
    ) -> Result<(Settings, Vec<(String, serde_json::Value)>), String> {
        let ov = self.overrides()?;
        debug_assert!(ov.iter().all(|(k, _)| KEYS.contains(&k.as_str())));
        let s = overrides::apply(base, &ov).map_err(sentence)?;
        Ok((s, ov))
    }
}

fn scope_str(s: SyncScope) -> &'static str {
    match s {
        SyncScope::All => "all",
        SyncScope::Users => "users",
        SyncScope::Groups => "groups",
    }
}

/// One line of a report section.
pub(crate) struct ItemRow {
    pub extension: String,
    pub name: String,
    pub m365_id: String,
    pub detail: String,
}

impl From<&ReportItem> for ItemRow {
    fn from(i: &ReportItem) -> Self {
        let detail = match (&i.reason, i.fields.is_empty()) {
            (Some(r), _) => r.clone(),
            (None, false) => i.fields.join(", "),
            (None, true) => String::new(),
        };
        ItemRow {
            extension: i.extension.clone().unwrap_or_default(),
            name: i.name.clone().unwrap_or_default(),
            m365_id: i.m365_id.clone().unwrap_or_default(),
            detail,
        }
    }
}

/// One section of a report.
pub(crate) struct Section {
    pub key: &'static str,
    pub title: &'static str,
    pub detail_title: &'static str,
    pub items: Vec<ItemRow>,
}

/// A run, ready for the templates.
pub(crate) struct RunView {
    pub id: String,
    pub kind: &'static str,
    pub status_key: &'static str,
    pub status_label: &'static str,
    pub started: String,
    pub finished: String,
    pub summary: String,
    pub sections: Vec<Section>,
}

fn status_label(s: SyncStatus) -> &'static str {
    match s {
        SyncStatus::Running => "Running",
        SyncStatus::Completed => "Completed",
        SyncStatus::Held => "Held for approval",
        SyncStatus::Failed => "Failed",
        SyncStatus::DryRun => "Preview (nothing written)",
    }
}

/// One line summing up a report: "3 created, 1 updated, …".
pub fn summary(run: &SyncRun) -> String {
    let r = &run.report;
    format!(
        "{} created, {} updated, {} disabled, {} deleted, {} skipped, {} errors",
        r.created.len(),
        r.updated.len(),
        r.disabled.len(),
        r.deleted.len(),
        r.skipped.len(),
        r.errors.len()
    )
}

impl From<&SyncRun> for RunView {
    fn from(run: &SyncRun) -> Self {
        let sec = |key, title, detail_title, items: &Vec<ReportItem>| Section {
            key,
            title,
            detail_title,
            items: items.iter().map(ItemRow::from).collect(),
        };
        let r = &run.report;
        RunView {
            id: run.id.clone(),
            kind: run.kind.as_str(),
            status_key: run.status.as_str(),
            status_label: status_label(run.status),
            started: run.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            finished: run
                .finished_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|| "—".into()),
            summary: summary(run),
            sections: vec![
                sec("created", "Created", "", &r.created),
                sec("updated", "Updated", "Changed fields", &r.updated),
                sec("disabled", "Disabled", "Why", &r.disabled),
                sec("deleted", "Deleted", "Why", &r.deleted),
                sec("skipped", "Skipped", "Reason", &r.skipped),
                sec("errors", "Errors", "What went wrong", &r.errors),
            ],
        }
    }
}

#[derive(Template)]
#[template(path = "sync/settings.html")]
struct SettingsPage {
    chrome: Chrome,
    form: SyncForm,
    connected: bool,
    not_connected: String,
    error: Option<String>,
    preview: Option<RunView>,
}

#[derive(Template)]
#[template(path = "sync/run.html")]
struct RunPage {
    chrome: Chrome,
    /// A failure left by the last POST.
    error: Option<String>,
    run: RunView,
    held: bool,
    /// What the held run's stored plan would disable and delete ("disable: 4711 Dora Held").
    plan_removals: Vec<String>,
    /// How many removals the held plan makes (the guard's count; contact sync lists at most
    /// 100 lines per page and counts the rest in one line).
    removal_count: usize,
    /// The held run has a stored plan (its removals are listed).
    has_plan: bool,
}

#[derive(Debug, Deserialize)]
struct NoticeQuery {
    saved: Option<String>,
}

/// The Sync settings page. Admin only.
async fn settings_page(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let settings = state.settings();
    let notice = q
        .saved
        .map(|_| "The sync settings were saved; the next run uses them.".to_string());
    page(
        &admin,
        &settings,
        SyncForm::from_settings(&settings.sync),
        None,
        None,
        notice,
        StatusCode::OK,
    )
}

fn page(
    admin: &ConsoleAdmin,
    settings: &Settings,
    form: SyncForm,
    error: Option<String>,
    preview: Option<RunView>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let missing = missing_connection(settings);
    render(
        status,
        &SettingsPage {
            chrome: admin.chrome("m365", notice),
            form,
            connected: missing.is_none(),
            not_connected: missing
                .map(|m| {
                    format!(
                        "Microsoft 365 is not connected yet: {m}. Finish the Configure page first."
                    )
                })
                .unwrap_or_default(),
            error,
            preview,
        },
    )
}

/// Saves the form as console settings (they win over `pbx365.toml`). Admin only, CSRF-checked.
async fn save_settings(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let pairs: Vec<(String, String)> = admin.form(&body)?;
    let form = SyncForm::from_pairs(&pairs);
    let current = state.settings();
    let ov = match form.apply(&current) {
        Ok((_, ov)) => ov,
        Err(msg) => {
            return Ok(page(
                &admin,
                &current,
                form,
                Some(msg),
                None,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            ))
        }
    };
    state
        .app
        .store_settings(&ov)
        .await
        .map_err(ConsoleError::server)?;
    state.app.refresh_sync().await;
    state
        .app
        .audit(
            &admin.name,
            "settings.sync",
            "sync",
            "sync settings saved in the console",
        )
        .await;
    Ok(Redirect::to(&format!("{SETTINGS}?saved=1")).into_response())
}

/// Runs a dry run with the form's values (saved or not) and shows its report; nothing is
/// written, not even the settings. Admin only, CSRF-checked.
async fn preview(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let pairs: Vec<(String, String)> = admin.form(&body)?;
    let form = SyncForm::from_pairs(&pairs);
    let current = state.settings();
    let (candidate, _) = match form.apply(&current) {
        Ok(x) => x,
        Err(msg) => {
            return Ok(page(
                &admin,
                &current,
                form,
                Some(msg),
                None,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            ))
        }
    };
    let (status, error, preview) = match state.app.preview_sync(&candidate).await {
        Ok(run) => (StatusCode::OK, None, Some(RunView::from(&run))),
        Err(AppError::Unavailable(Unavailable::NotConnected(m))) => (
            StatusCode::CONFLICT,
            Some(format!("The preview needs Microsoft 365: {m}.")),
            None,
        ),
        Err(AppError::Unavailable(Unavailable::Broken(raw))) => {
            (StatusCode::CONFLICT, Some(sentence(raw)), None)
        }
        Err(e) => (StatusCode::OK, Some(sentence(e)), None),
    };
    Ok(page(&admin, &current, form, error, preview, None, status))
}

/// "Sync now": runs a user sync with the saved settings, then shows its report. Admin only, CSRF-checked.
async fn sync_now(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let pairs: Vec<(String, String)> = admin.form(&body)?;
    let full = pairs.iter().any(|(k, v)| k == "full" && v == "on");
    run_and_show(
        &admin,
        &state,
        RunOptions {
            full,
            ..Default::default()
        },
    )
    .await
}

async fn run_and_show(
    admin: &ConsoleAdmin,
    state: &AppState,
    opts: RunOptions,
) -> Result<Response, ConsoleError> {
    let run = state
        .app
        .run_sync(Some(&admin.name), SyncKind::Users, opts)
        .await?;
    Ok(Redirect::to(&format!("{RUNS}/{}", run.id)).into_response())
}

/// One run with its full report. Admin only.
async fn run_detail(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let run = state.app.sync_run(&id).await?;
    // The password page returns here before an approval ("Password confirmed…"); a failure
    // flash has no other page to show on either.
    let (notice, error) = admin.take_flash(&state).await;
    let held = run.status == SyncStatus::Held && state.app.is_awaiting_approval(&run.id).await;
    let plan = if held {
        state.app.held_plan_removals(&run.id).await
    } else {
        None
    };
    Ok(render(
        StatusCode::OK,
        &RunPage {
            chrome: admin.chrome("sync", notice),
            error,
            run: RunView::from(&run),
            held,
            has_plan: plan.is_some(),
            removal_count: held_count(&run).unwrap_or_else(|| {
                plan.as_ref()
                    .map(|p| p.disabled.len() + p.deleted.len())
                    .unwrap_or_default()
            }),
            plan_removals: plan.as_ref().map(removal_lines).unwrap_or_default(),
        },
    ))
}

/// **Approve these deletions**: approves the held run once, then runs the sync that applies
/// them. Admin only, CSRF-checked; only the latest run, and only while it is held.
async fn approve(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    admin.form::<Vec<(String, String)>>(&body)?;
    if let Some(again) = admin.fresh_sign_in_needed(&state, &format!("{RUNS}/{id}")) {
        return Ok(again);
    }
    match state.app.approve_and_run(&admin.name, &id).await {
        Ok(run) => Ok(Redirect::to(&format!("{RUNS}/{}", run.id)).into_response()),
        Err(AppError::Conflict(e)) => Err(ConsoleError::page(
            StatusCode::CONFLICT,
            "Nothing to approve",
            sentence(e),
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct DirectoryQuery {
    kind: Option<String>,
    q: Option<String>,
}

/// The picker's search: users or groups whose name starts with `q`, from Graph. Admin only.
async fn directory(
    _admin: ConsoleAdmin,
    State(state): State<AppState>,
    Query(q): Query<DirectoryQuery>,
) -> Response {
    let settings = state.settings();
    if let Some(m) = missing_connection(&settings) {
        return (
            StatusCode::CONFLICT,
            Json(serde_json::json!({"error": format!("Microsoft 365 is not connected: {m}.")})),
        )
            .into_response();
    }
    let kind = if q.kind.as_deref() == Some("groups") {
        DirectoryKind::Groups
    } else {
        DirectoryKind::Users
    };
    let text = q.q.unwrap_or_default();
    match state.app.search_directory(kind, &text).await {
        Ok(found) => Json(found).into_response(),
        Err(AppError::Unavailable(Unavailable::NotConnected(m))) => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({"error": format!("Microsoft 365 is not connected: {m}.")})),
        )
            .into_response(),
        Err(AppError::Unavailable(Unavailable::Broken(raw))) => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({"error": sentence(raw)})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(serde_json::json!({"error": sentence(e)})),
        )
            .into_response(),
    }
}

/// The picker script (no inline script: the CSP forbids it). Anyone may call it.
async fn picker_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/sync.js"),
    )
        .into_response()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// One line per disable and delete of a report: "disable: 4711 Dora Held".
fn removal_lines(r: &SyncReport) -> Vec<String> {
    let mut items = Vec::new();
    for (verb, list) in [("disable", &r.disabled), ("delete", &r.deleted)] {
        for i in list {
            let who = match (&i.extension, &i.name) {
                (Some(e), Some(n)) => format!("{e} {n}"),
                (Some(e), None) => e.clone(),
                (None, Some(n)) => n.clone(),
                (None, None) => i.m365_id.clone().unwrap_or_default(),
            };
            items.push(format!("{verb}: {who}"));
        }
    }
    items
}

/// The held-run banner: HTML inserted at the top of every console page while the latest user
/// sync run is held by the mass-deletion guard.
fn banner_html(run: &SyncRun, csrf: &str) -> String {
    let r = &run.report;
    let mut items: Vec<String> = removal_lines(r)
        .iter()
        .map(|line| format!("<li>{}</li>", esc(line)))
        .collect();
    let more = items.len().saturating_sub(BANNER_ITEMS);
    items.truncate(BANNER_ITEMS);
    if more > 0 {
        items.push(format!("<li>and {more} more (see the run)</li>"));
    }
    let what = if run.kind == SyncKind::Contacts {
        format!(
            "<strong>A contact sync is waiting for your approval.</strong> It would remove {} synced phonebook entries, more than the mass-deletion guard allows, so nothing was changed.",
            held_count(run).map_or_else(|| r.deleted.len().to_string(), |n| n.to_string())
        )
    } else {
        format!(
            "<strong>A user sync is waiting for your approval.</strong> It would disable {} and delete {} extensions, more than the mass-deletion guard allows, so nothing was changed.",
            r.disabled.len(),
            r.deleted.len()
        )
    };
    format!(
        "<div class=\"flash flash-error\" id=\"held-banner\" role=\"alert\"><p>{what}</p>\
<ul id=\"held-list\">{}</ul>\
<form method=\"post\" action=\"{RUNS}/{id}/approve\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<button type=\"submit\" class=\"btn btn-danger\" id=\"approve-deletions\">Approve these deletions</button></form> \
<a href=\"{RUNS}/{id}\">See the run</a></div>",
        items.join(""),
        esc(csrf),
        id = esc(&run.id),
    )
}

/// How many records the guard counted in a held run (its `held: N of M …` line), when it says.
fn held_count(run: &SyncRun) -> Option<usize> {
    run.report.errors.iter().find_map(|e| {
        let rest = e.reason.as_deref()?.strip_prefix("held: ")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Middleware: adds the held-run banner to console pages (HTML, signed-in admin) while the
/// latest user sync run is held.
pub async fn held_banner(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if !path.starts_with("/console")
        || path.starts_with("/console/login")
        || path.starts_with("/console/assets")
    {
        return next.run(req).await;
    }
    let headers = req.headers().clone();
    let res = next.run(req).await;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !html {
        return res;
    }
    // Looked up after the page's own handler, which decides about expired sessions first.
    let Some(session) = crate::session::current_admin(&state, &headers).await else {
        return res;
    };
    let Some(run) = state.app.held_run().await else {
        return res;
    };
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The page could not be completed.",
        )
            .into_response();
    };
    let text = String::from_utf8_lossy(&bytes);
    const MARK: &str = "<main class=\"content\">";
    let out = match text.find(MARK) {
        Some(i) => {
            let at = i + MARK.len();
            format!(
                "{}{}{}",
                &text[..at],
                banner_html(&run, &session.csrf_token),
                &text[at..]
            )
        }
        None => text.into_owned(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> SyncForm {
        SyncForm::from_settings(&SyncSettings::default())
    }

    #[test]
    fn default_settings_round_trip_through_the_form() {
        let (s, _) = form().apply(&Settings::default()).unwrap();
        assert_eq!(s.sync, SyncSettings::default());
    }

    #[test]
    fn bad_values_are_refused_with_a_sentence() {
        let mut f = form();
        f.start_extension = "12a".into();
        assert_eq!(
            f.apply(&Settings::default()).unwrap_err(),
            "The start extension must be a whole number (you entered '12a')."
        );
        let mut f = form();
        f.end_extension = "50".into();
        assert!(f
            .apply(&Settings::default())
            .unwrap_err()
            .contains("must not be below the start extension"));
        let mut f = form();
        f.scope = "groups".into();
        assert_eq!(
            f.apply(&Settings::default()).unwrap_err(),
            "Choose at least one group, or sync all users."
        );
        let mut f = form();
        f.nightly_at = "25:00".into();
        assert!(f
            .apply(&Settings::default())
            .unwrap_err()
            .contains("sync.nightly_at"));
        let mut f = form();
        f.max_deletion_percent = "120".into();
        assert!(f
            .apply(&Settings::default())
            .unwrap_err()
            .contains("between 0 and 100"));
    }

    #[test]
    fn banner_escapes_names_and_carries_the_csrf_token() {
        let run = SyncRun {
            id: "r1".into(),
            kind: SyncKind::Users,
            status: SyncStatus::Held,
            started_at: chrono::Utc::now(),
            finished_at: None,
            report: pbx365_domain::SyncReport {
                disabled: vec![ReportItem {
                    extension: Some("101".into()),
                    name: Some("<b>Eve</b>".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
        };
        let html = banner_html(&run, "tok");
        assert!(
            html.contains("101 &lt;b&gt;Eve&lt;/b&gt;")
                && html.contains("value=\"tok\"")
                && html.contains("Approve these deletions")
        );
    }
}
