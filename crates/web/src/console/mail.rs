//! Settings > Mail server (issue 16): the transport (`microsoft365` with a sender mailbox, or
//! SMTP), the admin address, welcome mail, "Send test mail", and the outbox (queued with the
//! expected send time, sent, failed with the reason, Retry). Every change is a CSRF-checked POST.

use super::auth::ConsoleAdmin;
use super::error::ConsoleError;
use crate::html::{render, sentence};
use crate::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use pbx365_app::AppError;
use pbx365_domain::settings::MailTransport;
use serde::Deserialize;
use serde_json::json;

/// The page's path.
pub const MAIL: &str = "/console/settings/mail";

/// Routes of the page.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(MAIL, get(mail_page).post(save))
        .route(&format!("{MAIL}/test"), post(send_test))
        .route(&format!("{MAIL}/outbox/{{id}}/retry"), post(retry))
}

/// One outbox row.
pub(crate) struct OutboxRow {
    pub id: String,
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub status: &'static str,
    pub when: String,
    pub error: String,
    pub failed: bool,
}

/// Settings > Mail server.
#[derive(Template)]
#[template(path = "console/mail.html")]
pub(crate) struct MailPage {
    pub chrome: crate::html::Chrome,
    pub error: Option<String>,
    pub transport: &'static str,
    pub sender: String,
    pub admin_address: String,
    pub smtp_host: String,
    pub smtp_port: String,
    pub smtp_user: String,
    pub welcome: bool,
    pub counts: (u64, u64, u64),
    pub rows: Vec<OutboxRow>,
}

fn when(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
        .replace('T', " ")
}

async fn page(
    state: &AppState,
    admin: &ConsoleAdmin,
    notice: Option<String>,
    error: Option<String>,
) -> Result<MailPage, ConsoleError> {
    let settings = state.app.settings();
    let m = &settings.mail;
    let counts = state.app.outbox_counts().await?;
    let rows = state
        .app
        .outbox(100)
        .await?
        .into_iter()
        .map(|e| {
            let m = &e.mail;
            OutboxRow {
                id: m.id.clone(),
                kind: m.kind.clone(),
                to: m.to.join(", "),
                subject: m.subject.clone(),
                status: m.status.label(),
                when: match (m.status, e.expected_at, m.sent_at) {
                    (pbx365_domain::OutboxStatus::Pending, Some(at), _) => {
                        format!("expected {}", when(at))
                    }
                    (_, _, Some(at)) => when(at),
                    _ => when(m.created_at),
                },
                error: m.last_error.clone().unwrap_or_default(),
                failed: m.status == pbx365_domain::OutboxStatus::Failed,
            }
        })
        .collect();
    Ok(MailPage {
        chrome: admin.chrome("mail", notice),
        error,
        transport: match m.transport {
            MailTransport::None => "none",
            MailTransport::Microsoft365 => "microsoft365",
            MailTransport::Smtp => "smtp",
        },
        sender: m.sender.clone().unwrap_or_default(),
        admin_address: m.admin_address.clone().unwrap_or_default(),
        smtp_host: m.smtp_host.clone().unwrap_or_default(),
        smtp_port: m.smtp_port.map(|p| p.to_string()).unwrap_or_default(),
        smtp_user: m.smtp_user.clone().unwrap_or_default(),
        welcome: m.welcome,
        counts: (counts.queued + counts.sending, counts.sent, counts.failed),
        rows,
    })
}

/// The mail server settings and the outbox. Admin only.
async fn mail_page(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
) -> Result<Response, ConsoleError> {
    let (notice, error) = admin.take_flash(&state).await;
    Ok(render(
        StatusCode::OK,
        &page(&state, &admin, notice, error).await?,
    ))
}

#[derive(Deserialize)]
struct SettingsForm {
    #[serde(default)]
    transport: String,
    #[serde(default)]
    sender: String,
    #[serde(default)]
    admin_address: String,
    #[serde(default)]
    smtp_host: String,
    #[serde(default)]
    smtp_port: String,
    #[serde(default)]
    smtp_user: String,
    #[serde(default)]
    welcome: Option<String>,
}

fn opt(s: &str) -> serde_json::Value {
    let s = s.trim();
    if s.is_empty() {
        serde_json::Value::Null
    } else {
        json!(s)
    }
}

/// Saves the mail server settings (CSRF-checked); a Microsoft 365 sender is checked against the
/// tenant before it is saved. Admin only.
async fn save(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let form: SettingsForm = admin.form(&body)?;
    let again = |e: String| async {
        Ok::<_, ConsoleError>(render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(&state, &admin, None, Some(e)).await?,
        ))
    };
    let transport = match form.transport.as_str() {
        "none" | "microsoft365" | "smtp" => form.transport.clone(),
        _ => return again("Choose a mail server: none, Microsoft 365 or SMTP.".into()).await,
    };
    let port = match form.smtp_port.trim() {
        "" => serde_json::Value::Null,
        p => match p.parse::<u16>() {
            Ok(n) if n > 0 => json!(n),
            _ => {
                return again(format!(
                    "SMTP port '{p}' is not a port number (1 to 65535)."
                ))
                .await
            }
        },
    };
    let overrides = vec![
        ("mail.transport".to_string(), json!(transport)),
        ("mail.sender".to_string(), opt(&form.sender)),
        ("mail.admin_address".to_string(), opt(&form.admin_address)),
        ("mail.smtp_host".to_string(), opt(&form.smtp_host)),
        ("mail.smtp_port".to_string(), port),
        ("mail.smtp_user".to_string(), opt(&form.smtp_user)),
        ("mail.welcome".to_string(), json!(form.welcome.is_some())),
    ];
    let candidate = match pbx365_app::settings::apply(&state.app.settings(), &overrides) {
        Ok(c) => c,
        Err(e) => return again(sentence(AppError::Invalid(e.to_string()))).await,
    };
    if candidate.mail.transport == MailTransport::Microsoft365 {
        if let Err(e) = state.app.check_mail_server(&candidate).await {
            return again(sentence(e)).await;
        }
    }
    if let Err(e) = state.app.store_settings(&overrides).await {
        return again(sentence(e)).await;
    }
    state
        .app
        .audit(&admin.name, "mail.settings", &transport, "")
        .await;
    Ok(admin
        .flash_to(&state, true, "The mail server settings were saved.", MAIL)
        .await)
}

#[derive(Deserialize)]
struct TestForm {
    #[serde(default)]
    to: String,
}

/// **Send test mail** (CSRF-checked): queues a test mail and says when it is expected to go, or
/// why it cannot. Admin only.
async fn send_test(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let form: TestForm = admin.form(&body)?;
    let (ok, message) = match state.app.send_test_mail(Some(&admin.name), &form.to).await {
        Ok(q) => (
            true,
            format!(
                "A test mail to {} is queued{}.",
                form.to.trim(),
                q.expected_at
                    .map(|t| format!(" (expected {})", when(t)))
                    .unwrap_or_default()
            ),
        ),
        Err(e) => (false, format!("No test mail was sent: {}", sentence(e))),
    };
    Ok(admin.flash_to(&state, ok, &message, MAIL).await)
}

/// **Retry** a failed mail (CSRF-checked). Admin only.
async fn retry(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    #[derive(Deserialize)]
    struct Empty {}
    let _: Empty = admin.form(&body)?;
    let (ok, message) = match state.app.retry_mail(&admin.name, &id).await {
        Ok(()) => (true, "The mail is queued again.".to_string()),
        Err(e) => (false, sentence(e)),
    };
    Ok(admin.flash_to(&state, ok, &message, MAIL).await)
}
