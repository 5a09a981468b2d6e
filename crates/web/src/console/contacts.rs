//! Settings › Integrations › Microsoft 365 › Contacts (issue 14, PRO): personal contact sync on
//! or off, the shared mailboxes whose contacts fill the company phonebook (added by address and
//! checked against Microsoft 365, each with its entry count and last sync), and the default
//! country numbers are normalised with. On the standard edition the page explains that contact
//! sync needs PRO and offers nothing to switch on. Every change is a CSRF-checked POST.

use super::auth::ConsoleAdmin;
use super::error::ConsoleError;
use crate::html::{render, sentence};
use crate::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::SecondsFormat;
use pbx365_app::AppError;
use pbx365_domain::phonebook::is_known_country;
use pbx365_domain::settings::Edition;
use serde::Deserialize;
use serde_json::json;

/// The page's path.
pub const CONTACTS: &str = "/console/settings/integrations/microsoft365/contacts";

/// Routes of the page.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(CONTACTS, get(contacts_page).post(save))
        .route(&format!("{CONTACTS}/mailboxes"), post(add_mailbox))
        .route(
            &format!("{CONTACTS}/mailboxes/remove"),
            post(remove_mailbox),
        )
}

/// One shared mailbox on the page.
pub(crate) struct MailboxRow {
    pub address: String,
    pub entries: String,
    pub last_sync: String,
}

/// Settings › Integrations › Microsoft 365 › Contacts.
#[derive(Template)]
#[template(path = "console/contacts.html")]
pub(crate) struct ContactsPage {
    pub chrome: crate::html::Chrome,
    pub error: Option<String>,
    pub pro: bool,
    pub personal: bool,
    pub default_country: String,
    pub mailboxes: Vec<MailboxRow>,
    pub personal_books: u64,
    pub personal_entries: u64,
}

async fn page(
    state: &AppState,
    admin: &ConsoleAdmin,
    notice: Option<String>,
    error: Option<String>,
) -> Result<ContactsPage, ConsoleError> {
    let settings = state.app.settings();
    let c = &settings.contacts;
    let synced = state.app.contact_mailboxes().await?;
    let mailboxes = c
        .shared_mailboxes
        .iter()
        .map(|address| {
            let status = synced
                .iter()
                .find(|s| s.mailbox == address.to_ascii_lowercase());
            MailboxRow {
                address: address.clone(),
                entries: status.map_or("—".into(), |s| s.entries.to_string()),
                last_sync: status
                    .and_then(|s| s.last_sync)
                    .map_or("not yet".into(), |t| {
                        t.to_rfc3339_opts(SecondsFormat::Secs, true)
                            .replace('T', " ")
                    }),
            }
        })
        .collect();
    let personal: Vec<_> = synced.iter().filter(|s| s.owner_number.is_some()).collect();
    Ok(ContactsPage {
        chrome: admin.chrome("contacts", notice),
        error,
        pro: settings.edition == Edition::Pro,
        personal: c.personal,
        default_country: c.default_country.clone(),
        mailboxes,
        personal_books: personal.len() as u64,
        personal_entries: personal.iter().map(|s| s.entries).sum(),
    })
}

/// The contact sync settings and the shared mailboxes. Admin only.
async fn contacts_page(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
) -> Result<Response, ConsoleError> {
    let (notice, error) = admin.take_flash(&state).await;
    Ok(render(
        StatusCode::OK,
        &page(&state, &admin, notice, error).await?,
    ))
}

/// Stores `overrides` and comes back to the page with `done`, or shows the page with the error.
async fn store(
    state: &AppState,
    admin: &ConsoleAdmin,
    overrides: Vec<(String, serde_json::Value)>,
    done: String,
) -> Result<Response, ConsoleError> {
    if let Err(e) = state.app.store_settings(&overrides).await {
        return Ok(render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(state, admin, None, Some(sentence(e))).await?,
        ));
    }
    state
        .app
        .audit(&admin.name, "contacts.settings", "contacts", &done)
        .await;
    Ok(admin.flash_to(state, true, &done, CONTACTS).await)
}

async fn refuse(
    state: &AppState,
    admin: &ConsoleAdmin,
    why: String,
) -> Result<Response, ConsoleError> {
    Ok(render(
        StatusCode::UNPROCESSABLE_ENTITY,
        &page(state, admin, None, Some(why)).await?,
    ))
}

#[derive(Deserialize)]
struct SettingsForm {
    #[serde(default)]
    personal: Option<String>,
    #[serde(default)]
    default_country: String,
}

/// Saves personal sync on/off and the default country (CSRF-checked). Admin only.
async fn save(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let form: SettingsForm = admin.form(&body)?;
    let country = form.default_country.trim().to_ascii_uppercase();
    if !is_known_country(&country) {
        let why = format!(
            "'{}' is not a country code: enter two letters such as US, DE or GB.",
            form.default_country
                .trim()
                .chars()
                .take(16)
                .collect::<String>()
        );
        return refuse(&state, &admin, why).await;
    }
    let overrides = vec![
        (
            "contacts.personal".to_string(),
            json!(form.personal.is_some()),
        ),
        ("contacts.default_country".to_string(), json!(country)),
    ];
    store(
        &state,
        &admin,
        overrides,
        "The contact sync settings were saved.".into(),
    )
    .await
}

#[derive(Deserialize)]
struct MailboxForm {
    #[serde(default)]
    address: String,
}

/// Adds a shared mailbox after checking it against Microsoft 365 (CSRF-checked). Admin only.
async fn add_mailbox(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let form: MailboxForm = admin.form(&body)?;
    let address = form.address.trim().to_ascii_lowercase();
    let settings = state.app.settings();
    if settings.edition != Edition::Pro {
        return refuse(&state, &admin, sentence(pbx365_sync_needs_pro())).await;
    }
    if !address.contains('@') || address.len() > 254 {
        return refuse(
            &state,
            &admin,
            "Enter the mail address of the shared mailbox.".into(),
        )
        .await;
    }
    let mut list = settings.contacts.shared_mailboxes.clone();
    if list.iter().any(|m| m.eq_ignore_ascii_case(&address)) {
        return refuse(&state, &admin, format!("{address} is in the list already.")).await;
    }
    if let Err(e) = state.app.check_contact_mailbox(&settings, &address).await {
        return refuse(&state, &admin, sentence(e)).await;
    }
    list.push(address.clone());
    let overrides = vec![("contacts.shared_mailboxes".to_string(), json!(list))];
    let done = format!(
        "{address} was added: its contacts go to the company phonebook with the next contact sync."
    );
    store(&state, &admin, overrides, done).await
}

/// Takes a shared mailbox off the list; the next contact sync removes its entries (CSRF-checked).
/// Admin only.
async fn remove_mailbox(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let form: MailboxForm = admin.form(&body)?;
    let address = form.address.trim().to_string();
    let list: Vec<String> = state
        .app
        .settings()
        .contacts
        .shared_mailboxes
        .iter()
        .filter(|m| !m.eq_ignore_ascii_case(&address))
        .cloned()
        .collect();
    let overrides = vec![("contacts.shared_mailboxes".to_string(), json!(list))];
    let done = format!("{address} was removed: the next contact sync removes its entries from the company phonebook.");
    store(&state, &admin, overrides, done).await
}

fn pbx365_sync_needs_pro() -> AppError {
    AppError::Invalid("contact sync needs the PRO edition".into())
}
