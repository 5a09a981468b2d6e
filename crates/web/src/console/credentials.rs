//! Settings > API tokens and Settings > Password (issue 9 item 5): the admin sees every API token
//! (name, created, last used, expiry; never the token) and revokes it, and changes their own
//! password. Every change is a CSRF-checked POST.

use super::auth::ConsoleAdmin;
use super::error::ConsoleError;
use crate::html::{render, sentence};
use crate::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use pbx365_app::credentials::{self, MIN_CHANGED_PASSWORD_LEN};
use pbx365_app::AppError;
use serde::Deserialize;

/// Routes of the two pages.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/settings/tokens", get(tokens_page))
        .route("/console/settings/tokens/revoke", post(token_revoke))
        .route(
            "/console/settings/password",
            get(password_page).post(password_submit),
        )
}

/// One row of the token list.
pub(crate) struct TokenRow {
    pub name: String,
    pub created: String,
    pub last_used: String,
    pub expires: String,
    pub expired: bool,
}

/// Settings > API tokens.
#[derive(Template)]
#[template(path = "console/tokens.html")]
pub(crate) struct TokensPage {
    pub chrome: crate::html::Chrome,
    pub rows: Vec<TokenRow>,
    pub error: Option<String>,
}

/// Settings > Password.
#[derive(Template)]
#[template(path = "console/password.html")]
pub(crate) struct PasswordPage {
    pub chrome: crate::html::Chrome,
    pub error: Option<String>,
    pub min_len: usize,
}

fn when(t: Option<DateTime<Utc>>, none: &str) -> String {
    t.map(|t| {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
            .replace('T', " ")
    })
    .unwrap_or_else(|| none.to_string())
}

/// The API tokens with a Revoke button each. Admin only.
async fn tokens_page(admin: ConsoleAdmin, State(state): State<AppState>) -> Response {
    let flash = state.app.take_flash(&admin.session.id_hash).await;
    let now = state.app.now();
    let tokens = match credentials::list_api_tokens(&state.store).await {
        Ok(t) => t,
        Err(e) => return ConsoleError::from(e).into_response(),
    };
    let rows = tokens
        .iter()
        .map(|t| TokenRow {
            name: t.name.clone(),
            created: when(Some(t.created_at), ""),
            last_used: when(t.last_used_at, "never"),
            expires: when(t.expires_at, "never"),
            expired: t.expired(now),
        })
        .collect();
    let (notice, error) = match flash {
        Some(f) if f.ok => (Some(f.message), None),
        Some(f) => (None, Some(f.message)),
        None => (None, None),
    };
    render(
        StatusCode::OK,
        &TokensPage {
            chrome: admin.chrome("tokens", notice),
            rows,
            error,
        },
    )
}

#[derive(Deserialize)]
struct RevokeForm {
    #[serde(default)]
    name: String,
}

/// Revokes every API token with the posted name (CSRF-checked). Admin only.
async fn token_revoke(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let form: RevokeForm = admin.form(&body)?;
    let name = form.name.trim();
    let n = credentials::revoke_api_tokens(&state.store, name).await?;
    let (ok, message) = if n == 0 {
        (false, format!("No API token is named “{name}”."))
    } else {
        state
            .app
            .audit(
                &admin.name,
                "api_token.revoke",
                name,
                format!("{n} revoked"),
            )
            .await;
        (
            true,
            format!("The API token “{name}” was revoked; it no longer works."),
        )
    };
    Ok(admin
        .flash_to(&state, ok, &message, "/console/settings/tokens")
        .await)
}

/// The change-password form. Admin only.
async fn password_page(admin: ConsoleAdmin, State(state): State<AppState>) -> Response {
    let flash = state.app.take_flash(&admin.session.id_hash).await;
    render(
        StatusCode::OK,
        &PasswordPage {
            chrome: admin.chrome("password", flash.map(|f| f.message)),
            error: None,
            min_len: MIN_CHANGED_PASSWORD_LEN,
        },
    )
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    repeat: String,
}

/// Changes the signed-in admin's password (CSRF-checked, current password required); every
/// other session of the admin ends. Admin only.
async fn password_submit(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let form: PasswordForm = admin.form(&body)?;
    let again = |status: StatusCode, error: String| -> Result<Response, ConsoleError> {
        Ok(render(
            status,
            &PasswordPage {
                chrome: admin.chrome("password", None),
                error: Some(error),
                min_len: MIN_CHANGED_PASSWORD_LEN,
            },
        ))
    };
    if form.new != form.repeat {
        return again(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The two new passwords differ; nothing was changed.".into(),
        );
    }
    let changed = credentials::change_admin_password(
        &state.store,
        &admin.name,
        Some(form.current),
        form.new,
        Some(&admin.session.id_hash),
    )
    .await;
    let ended = match changed {
        Ok(n) => n,
        Err(e @ AppError::Invalid(_)) => {
            return again(StatusCode::UNPROCESSABLE_ENTITY, sentence(e));
        }
        Err(e) => return Err(e.into()),
    };
    credentials::forget_initial_password(state.data_dir(), &admin.name);
    state
        .app
        .audit(&admin.name, "admin.password", &admin.name, "")
        .await;
    let message = match ended {
        0 => "Your password was changed.".to_string(),
        n => format!("Your password was changed; {n} other session(s) were signed out."),
    };
    Ok(admin
        .flash_to(&state, true, &message, "/console/settings/password")
        .await)
}
