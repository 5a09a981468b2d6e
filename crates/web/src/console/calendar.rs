//! Settings > Integrations > Microsoft 365 > Calendar (issue 13, SPEC §6): calendar status on
//! or off, the Show As -> profile map, which extensions follow their calendar, how far ahead
//! calendars are read. The standard edition explains that it needs PRO and offers nothing to
//! switch on. Every change is a CSRF-checked POST.

use super::auth::ConsoleAdmin;
use super::error::ConsoleError;
use crate::html::{render, sentence};
use crate::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use pbx365_domain::calendar::{ShowAs, ShowAsMap};
use pbx365_domain::settings::Edition;
use pbx365_domain::Profile;
use serde_json::json;
use std::collections::BTreeMap;

/// The page's path.
pub const CALENDAR: &str = "/console/settings/integrations/microsoft365/calendar";

/// Routes of the page.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route(CALENDAR, get(calendar_page).post(save))
}

/// One row of the map: the Show As value, its label, and (value, label, selected) choices.
pub(crate) struct MapRow {
    pub key: &'static str,
    pub label: &'static str,
    pub choices: Vec<(&'static str, &'static str, bool)>,
}

/// Settings > Integrations > Microsoft 365 > Calendar.
#[derive(Template)]
#[template(path = "console/calendar.html")]
pub(crate) struct CalendarPage {
    pub chrome: crate::html::Chrome,
    pub error: Option<String>,
    pub pro: bool,
    pub enabled: bool,
    pub rows: Vec<MapRow>,
    pub all: bool,
    pub numbers: String,
    pub look_ahead_hours: u32,
}

fn show_as_label(s: ShowAs) -> &'static str {
    match s {
        ShowAs::Free => "Free",
        ShowAs::Tentative => "Tentative",
        ShowAs::Busy => "Busy",
        ShowAs::Oof => "Away (Out of office)",
        ShowAs::WorkingElsewhere => "Working elsewhere",
        ShowAs::Unknown => "Unknown",
    }
}

fn page(
    state: &AppState,
    admin: &ConsoleAdmin,
    notice: Option<String>,
    error: Option<String>,
) -> CalendarPage {
    let s = state.app.settings();
    let map = ShowAsMap::from_settings(&s.calendar.map).unwrap_or_default();
    let rows = ShowAs::ALL
        .into_iter()
        .map(|v| {
            let current = map.profile(v);
            let mut choices = vec![("none", "No change", current.is_none())];
            choices.extend(
                Profile::ALL
                    .into_iter()
                    .map(|p| (p.as_str(), p.label(), current == Some(p))),
            );
            MapRow {
                key: v.as_str(),
                label: show_as_label(v),
                choices,
            }
        })
        .collect();
    CalendarPage {
        chrome: admin.chrome("calendar", notice),
        error,
        pro: s.edition == Edition::Pro,
        enabled: s.calendar.enabled,
        rows,
        all: s.calendar.all_extensions(),
        numbers: s
            .calendar
            .extensions
            .iter()
            .filter(|e| e.trim() != "all")
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        look_ahead_hours: s.calendar.look_ahead_hours,
    }
}

/// The calendar status settings. Admin only.
async fn calendar_page(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
) -> Result<Response, ConsoleError> {
    let (notice, error) = admin.take_flash(&state).await;
    Ok(render(StatusCode::OK, &page(&state, &admin, notice, error)))
}

/// Saves the calendar status settings (CSRF-checked; refused on the standard edition). Admin only.
async fn save(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let form: BTreeMap<String, String> = admin.form(&body)?;
    let again = |e: String| {
        render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(&state, &admin, None, Some(e)),
        )
    };
    let map: BTreeMap<String, String> = ShowAs::ALL
        .into_iter()
        .filter_map(|v| {
            form.get(&format!("map_{}", v.as_str()))
                .map(|p| (v.as_str().to_string(), p.clone()))
        })
        .collect();
    let extensions: Vec<String> = if form.get("scope").map(String::as_str) == Some("selected") {
        form.get("numbers")
            .map(String::as_str)
            .unwrap_or_default()
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect()
    } else {
        vec!["all".into()]
    };
    let hours = match form
        .get("look_ahead_hours")
        .map(|h| h.trim().parse::<u32>())
    {
        None => state.app.settings().calendar.look_ahead_hours,
        Some(Ok(h)) => h,
        Some(Err(_)) => {
            return Ok(again(
                "The look-ahead is a number of hours, e.g. 36.".into(),
            ))
        }
    };
    let overrides = vec![
        (
            "calendar.enabled".to_string(),
            json!(form.contains_key("enabled")),
        ),
        ("calendar.map".to_string(), json!(map)),
        ("calendar.extensions".to_string(), json!(extensions)),
        ("calendar.look_ahead_hours".to_string(), json!(hours)),
    ];
    if let Err(e) = state.app.store_settings(&overrides).await {
        return Ok(again(sentence(e)));
    }
    state.app.wake_sync();
    let on = if form.contains_key("enabled") {
        "on"
    } else {
        "off"
    };
    state
        .app
        .audit(&admin.name, "calendar.settings", on, "")
        .await;
    Ok(admin
        .flash_to(&state, true, "The calendar settings were saved.", CALENDAR)
        .await)
}
