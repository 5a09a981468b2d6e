//! The console pages behind sign-in, and the web client start page.

use super::auth::ConsoleAdmin;
use super::error::ConsoleError;
use super::views::{
    ExtensionFields, ExtensionFormPage, ExtensionRow, ExtensionsPage, M365Page, PhonebookPage,
    PhonebookRow, SyncPage, SyncRunRow,
};
use crate::html::{render, sentence};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use pbx365_app::AppError;
use pbx365_domain::{
    Extension, ExtensionSource, NewExtension, PhoneKind, PhonebookOwner, Profile, ProfileSource,
    SyncKind, SyncStatus, ValidationError,
};
use serde::Deserialize;

/// Handler result: the page, or the error page.
type Page = Result<Response, ConsoleError>;

/// `/console`: the extension list is the console's home. Admin only.
pub(crate) async fn home(_admin: ConsoleAdmin) -> Response {
    Redirect::to("/console/extensions").into_response()
}

/// `/console/settings`: the only settings page so far. Admin only.
pub(crate) async fn settings_home(_admin: ConsoleAdmin) -> Response {
    Redirect::to("/console/settings/integrations/microsoft365").into_response()
}

/// A confirmation after a change, named by a fixed key so no free text travels in the URL.
#[derive(Deserialize, Default)]
pub(crate) struct DoneQuery {
    done: Option<String>,
    number: Option<String>,
}

impl DoneQuery {
    fn notice(&self) -> Option<String> {
        let n = self
            .number
            .as_deref()
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))?;
        match self.done.as_deref()? {
            "added" => Some(format!("Extension {n} was added.")),
            "saved" => Some(format!("Extension {n} was saved.")),
            "deleted" => Some(format!("Extension {n} was deleted.")),
            "profile" => Some(format!("The profile of extension {n} was set.")),
            _ => None,
        }
    }
}

fn initials(e: &Extension) -> String {
    let from = |s: &str| s.chars().find(|c| c.is_alphanumeric());
    let pair: String = match (from(&e.first_name), from(&e.last_name)) {
        (Some(a), Some(b)) => [a, b].into_iter().collect(),
        _ => e
            .display_name
            .chars()
            .filter(|c| c.is_alphanumeric())
            .take(2)
            .collect(),
    };
    pair.to_uppercase()
}

/// The extension list with source, state, profile and photo. Admin only.
pub(crate) async fn extensions(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    Query(q): Query<DoneQuery>,
) -> Page {
    let calls = state.app.users_on_calls().await.unwrap_or_default();
    let rows = state
        .app
        .extensions()
        .await?
        .iter()
        .map(|e| ExtensionRow {
            number: e.number.to_string(),
            display_name: e.display_name.clone(),
            initials: initials(e),
            email: e.email.clone().unwrap_or_default(),
            department: e.department.clone().unwrap_or_default(),
            synced: e.source == ExtensionSource::M365,
            enabled: e.enabled,
            is_admin: e.is_admin,
            profile_key: e.profile.profile.as_str(),
            profile_label: e.profile.profile.label(),
            has_photo: e.photo.is_some(),
            on_call: calls.contains(e.number.as_str()),
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &ExtensionsPage {
            chrome: admin.chrome("extensions", q.notice()),
            rows,
        },
    ))
}

fn fields_of(e: &Extension) -> ExtensionFields {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    ExtensionFields {
        first_name: e.first_name.clone(),
        last_name: e.last_name.clone(),
        display_name: e.display_name.clone(),
        email: s(&e.email),
        mobile: s(&e.mobile),
        outbound_caller_id: s(&e.outbound_caller_id),
        department: s(&e.department),
        job_title: s(&e.job_title),
        office: s(&e.office),
    }
}

fn to_new_extension(f: &ExtensionFields) -> NewExtension {
    let opt = |v: &str| Some(v.to_string());
    NewExtension {
        first_name: f.first_name.clone(),
        last_name: f.last_name.clone(),
        display_name: f.display_name.clone(),
        email: opt(&f.email),
        mobile: opt(&f.mobile),
        outbound_caller_id: opt(&f.outbound_caller_id),
        department: opt(&f.department),
        job_title: opt(&f.job_title),
        office: opt(&f.office),
    }
}

/// (value, label, selected) of every profile, the extension's own one selected.
fn profile_choices(e: &Extension) -> Vec<(&'static str, &'static str, bool)> {
    Profile::ALL
        .into_iter()
        .map(|p| (p.as_str(), p.label(), p == e.profile.profile))
        .collect()
}

/// Says so when the calendar set the current profile (a manual change replaces it).
fn profile_note(e: &Extension) -> Option<String> {
    (e.profile.source == ProfileSource::Calendar).then(|| match e.profile.until {
        Some(until) => format!(
            "The Outlook calendar set the current profile until {}.",
            when(until)
        ),
        None => "The Outlook calendar set the current profile.".to_string(),
    })
}

#[derive(Deserialize)]
struct ProfileField {
    #[serde(default)]
    profile: String,
}

/// Sets an extension's profile by hand (local and synced extensions alike). Admin only.
pub(crate) async fn extension_profile(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    Path(number): Path<String>,
    body: Bytes,
) -> Page {
    let field = admin.form::<ProfileField>(&body)?;
    let ext = state.app.extension(&number).await?;
    let profile: Profile = field.profile.parse().map_err(|e| {
        ConsoleError::page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unknown profile",
            sentence(e),
        )
    })?;
    state
        .app
        .set_profile(&admin.name, ext.number.as_str(), profile, None)
        .await?;
    Ok(Redirect::to(&format!(
        "/console/extensions?done=profile&number={}",
        ext.number
    ))
    .into_response())
}

/// The empty "Add extension" form. Admin only.
pub(crate) async fn extension_new(admin: ConsoleAdmin) -> Response {
    render(
        StatusCode::OK,
        &ExtensionFormPage {
            chrome: admin.chrome("extensions", None),
            is_new: true,
            read_only: false,
            can_delete: false,
            number: String::new(),
            form: ExtensionFields::default(),
            error: None,
            profiles: vec![],
            profile_note: None,
        },
    )
}

#[derive(Deserialize)]
struct NumberField {
    #[serde(default)]
    number: String,
}

/// Creates a local extension from the form; a bad field re-shows the form with the sentence and
/// everything typed. Admin only.
pub(crate) async fn extension_create(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Page {
    let number = admin.form::<NumberField>(&body)?.number.trim().to_string();
    let fields = admin.form::<ExtensionFields>(&body)?;
    let again = |error: String, number: String, form: ExtensionFields| {
        render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ExtensionFormPage {
                chrome: admin.chrome("extensions", None),
                is_new: true,
                read_only: false,
                can_delete: false,
                number,
                form,
                error: Some(error),
                profiles: vec![],
                profile_note: None,
            },
        )
    };
    let created = state
        .app
        .create_extension(&admin.name, &number, to_new_extension(&fields))
        .await;
    match created {
        Ok(ext) => Ok(Redirect::to(&format!(
            "/console/extensions?done=added&number={}",
            ext.number
        ))
        .into_response()),
        Err(e @ AppError::NumberTaken { .. }) => Ok(again(e.to_string(), number, fields)),
        Err(AppError::Validation(e)) => Ok(again(sentence(e), number, fields)),
        Err(e) => Err(e.into()),
    }
}

/// One extension: editable when local, read-only when synced. Admin only.
pub(crate) async fn extension_edit(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> Page {
    let ext = state.app.extension(&number).await?;
    let local = ext.source == ExtensionSource::Local;
    Ok(render(
        StatusCode::OK,
        &ExtensionFormPage {
            chrome: admin.chrome("extensions", None),
            is_new: false,
            read_only: !local,
            can_delete: local,
            number: ext.number.to_string(),
            form: fields_of(&ext),
            error: None,
            profiles: profile_choices(&ext),
            // Why, when the calendar holds it: "Do Not Disturb — calendar: 'Board meeting'
            // until 14:30" ("Busy (private)" for a private entry).
            profile_note: match state.app.calendar_reason(&ext).await {
                Some(why) => Some(format!("Now: {why}.")),
                None => profile_note(&ext),
            },
        },
    ))
}

/// Saves a local extension's fields. Admin only.
pub(crate) async fn extension_update(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    Path(number): Path<String>,
    body: Bytes,
) -> Page {
    let fields = admin.form::<ExtensionFields>(&body)?;
    let ext = state.app.extension(&number).await?;
    match state
        .app
        .update_extension(&admin.name, ext.number.as_str(), to_new_extension(&fields))
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!(
            "/console/extensions?done=saved&number={}",
            ext.number
        ))
        .into_response()),
        Err(AppError::Validation(ValidationError::ReadOnlySynced(_))) => Err(ConsoleError::page(
            StatusCode::CONFLICT,
            "Read-only extension",
            sentence(ValidationError::ReadOnlySynced("this extension")),
        )),
        Err(AppError::Validation(e)) => Ok(render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ExtensionFormPage {
                chrome: admin.chrome("extensions", None),
                is_new: false,
                read_only: false,
                can_delete: true,
                number: ext.number.to_string(),
                form: fields,
                error: Some(sentence(e)),
                profiles: profile_choices(&ext),
                profile_note: profile_note(&ext),
            },
        )),
        Err(e) => Err(e.into()),
    }
}

/// Deletes a local extension. Admin only.
pub(crate) async fn extension_delete(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    Path(number): Path<String>,
    body: Bytes,
) -> Page {
    admin.form::<Vec<(String, String)>>(&body)?;
    let ext = state.app.extension(&number).await?;
    match state
        .app
        .delete_extension(&admin.name, ext.number.as_str())
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!(
            "/console/extensions?done=deleted&number={}",
            ext.number
        ))
        .into_response()),
        Err(AppError::Validation(ValidationError::ReadOnlySynced(_))) => Err(ConsoleError::page(
            StatusCode::CONFLICT,
            "Read-only extension",
            "This extension comes from Microsoft 365 and cannot be deleted here; the sync disables it \
             when the user leaves Microsoft 365.",
        )),
        Err(e) => Err(e.into()),
    }
}

/// An extension's photo for the list thumbnail. Admin only.
pub(crate) async fn extension_photo(
    _admin: ConsoleAdmin,
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> Page {
    Ok(crate::html::photo_response(state.app.photo(&number).await?))
}

fn kind_label(k: PhoneKind) -> &'static str {
    match k {
        PhoneKind::Business => "business",
        PhoneKind::Mobile => "mobile",
        PhoneKind::Home => "home",
        PhoneKind::Other => "other",
    }
}

/// The company phonebook. Admin only.
pub(crate) async fn phonebook(admin: ConsoleAdmin, State(state): State<AppState>) -> Page {
    let entries = state
        .app
        .phonebook(&PhonebookOwner::Company)
        .await?
        .into_iter()
        .map(|e| PhonebookRow {
            display_name: e.display_name,
            company: e.company.unwrap_or_default(),
            numbers: e
                .numbers
                .into_iter()
                .map(|n| (kind_label(n.kind), n.raw))
                .collect(),
            emails: e.emails,
            synced: e.m365_id.is_some(),
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &PhonebookPage {
            chrome: admin.chrome("phonebook", None),
            entries,
        },
    ))
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn status_label(s: SyncStatus) -> &'static str {
    match s {
        SyncStatus::Running => "Running",
        SyncStatus::Completed => "Completed",
        SyncStatus::Held => "Held (deletion guard)",
        SyncStatus::Failed => "Failed",
        SyncStatus::DryRun => "Dry run",
    }
}

fn kind_name(k: SyncKind) -> &'static str {
    match k {
        SyncKind::Users => "Users",
        SyncKind::Contacts => "Contacts",
        SyncKind::Calendar => "Calendar",
        SyncKind::All => "All",
    }
}

/// Sync history, newest first. Admin only.
pub(crate) async fn sync_runs(admin: ConsoleAdmin, State(state): State<AppState>) -> Page {
    let runs = state
        .app
        .sync_runs(50)
        .await?
        .into_iter()
        .map(|r| SyncRunRow {
            id: r.id.clone(),
            started: when(r.started_at),
            finished: r.finished_at.map(when).unwrap_or_else(|| "—".into()),
            kind: kind_name(r.kind),
            status_key: r.status.as_str(),
            status_label: status_label(r.status),
            created: r.report.created.len(),
            updated: r.report.updated.len(),
            disabled: r.report.disabled.len(),
            deleted: r.report.deleted.len(),
            skipped: r.report.skipped.len(),
            errors: r.report.errors.len(),
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &SyncPage {
            chrome: admin.chrome("sync", None),
            runs,
        },
    ))
}

/// Settings > Integrations > Microsoft 365: connection state and the Redirect URI. Admin only.
pub(crate) async fn m365(admin: ConsoleAdmin, State(state): State<AppState>) -> Response {
    let settings = state.settings();
    let public_url = settings.effective_public_url();
    let base = public_url.trim_end_matches('/');
    render(
        StatusCode::OK,
        &M365Page {
            chrome: admin.chrome("m365", None),
            redirect_uri: format!("{base}/oauth2office2"),
            https: base.to_ascii_lowercase().starts_with("https://"),
            tenant_id: settings.m365.tenant_id.clone(),
            client_id: settings.m365.client_id.clone(),
        },
    )
}
