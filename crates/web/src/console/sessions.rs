//! Confirming the password before a sensitive action, and Settings › Sessions.
//!
//! - `/console/reauth`: a password admin whose last sign-in or password entry is older than
//!   [`crate::session::REAUTH_WITHIN_MINUTES`] re-enters the password before key generation,
//!   admin consent or approving held deletions (ASVS 3.7.1). Wrong passwords count against the
//!   same login throttle as the sign-in page. Admins signed in with Microsoft get a fresh
//!   Microsoft sign-in instead ([`ConsoleAdmin::fresh_sign_in_needed`]).
//! - `/console/settings/sessions`: the admin's own sessions (signed in, last seen, browser;
//!   never the id), ending one or all the others (ASVS 3.3.4).

use super::auth::{safe_return_to, ConsoleAdmin, BAD_CREDENTIALS, REAUTH};
use super::error::ConsoleError;
use crate::html::render;
use crate::login_throttle::ClientAddr;
use crate::session::SessionSummary;
use crate::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::SecondsFormat;
use serde::Deserialize;

/// Settings › Sessions.
pub const SESSIONS: &str = "/console/settings/sessions";

/// Routes of the password confirmation and the session list.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(REAUTH, get(reauth_page).post(reauth_submit))
        .route(SESSIONS, get(sessions_page))
        .route(&format!("{SESSIONS}/revoke"), post(revoke))
        .route(&format!("{SESSIONS}/others"), post(revoke_others))
}

/// The password confirmation page.
#[derive(Template)]
#[template(path = "console/reauth.html")]
pub(crate) struct ReauthPage {
    pub chrome: crate::html::Chrome,
    pub error: Option<String>,
    pub return_to: String,
}

/// One row of the session list.
pub(crate) struct SessionRow {
    pub handle: String,
    pub current: bool,
    pub created: String,
    pub last_seen: String,
    pub browser: String,
}

/// Settings › Sessions.
#[derive(Template)]
#[template(path = "console/sessions.html")]
pub(crate) struct SessionsPage {
    pub chrome: crate::html::Chrome,
    pub error: Option<String>,
    pub rows: Vec<SessionRow>,
    /// Where a row's "Sign out" posts (the list template is shared with the web client).
    pub revoke_action: &'static str,
    /// The session's CSRF token for the rows' forms.
    pub csrf: String,
}

/// Rows for a session list (shared with the web client).
pub(crate) fn session_rows(list: Vec<SessionSummary>) -> Vec<SessionRow> {
    let when = |t: chrono::DateTime<chrono::Utc>| {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
            .replace('T', " ")
    };
    list.into_iter()
        .map(|s| SessionRow {
            handle: s.handle,
            current: s.current,
            created: when(s.created_at),
            last_seen: when(s.last_seen_at),
            browser: s.browser,
        })
        .collect()
}

#[derive(Deserialize, Default)]
struct ReauthQuery {
    return_to: Option<String>,
}

/// Asks a password admin for their password before a sensitive action. Admin only.
async fn reauth_page(
    admin: ConsoleAdmin,
    State(_state): State<AppState>,
    Query(q): Query<ReauthQuery>,
) -> Response {
    reauth_form(
        &admin,
        StatusCode::OK,
        safe_return_to(q.return_to.as_deref()),
        None,
    )
}

fn reauth_form(
    admin: &ConsoleAdmin,
    status: StatusCode,
    return_to: String,
    error: Option<String>,
) -> Response {
    let mut res = render(
        status,
        &ReauthPage {
            chrome: admin.chrome("", None),
            error,
            return_to,
        },
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    res
}

#[derive(Deserialize, Default)]
struct ReauthForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    return_to: Option<String>,
}

/// Checks the password (CSRF-checked, throttled like the sign-in page) and, when it is right,
/// marks the session as just authenticated and returns to the action's page. Admin only.
async fn reauth_submit(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let form: ReauthForm = admin.form(&body)?;
    let return_to = safe_return_to(form.return_to.as_deref());
    if admin
        .session
        .subject
        .starts_with(pbx365_app::sso::CONSOLE_SUBJECT)
    {
        // No local password: Microsoft asks for it.
        return Ok(Redirect::to(&crate::sso::start_url(
            pbx365_app::sso::Surface::Console,
            &return_to,
            true,
        ))
        .into_response());
    }
    if form.password.is_empty() {
        return Ok(reauth_form(
            &admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            return_to,
            Some("Enter your password.".into()),
        ));
    }
    let sessions = &state.sessions;
    let _turn = match sessions.admit_login(client, &admin.name).await {
        Ok(turn) => turn,
        Err(refusal) => {
            let mut res = reauth_form(
                &admin,
                StatusCode::TOO_MANY_REQUESTS,
                return_to,
                Some(refusal.to_string()),
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, refusal.retry_after_secs().into());
            return Ok(res);
        }
    };
    let ok = state
        .app
        .check_admin_password(&admin.name, form.password)
        .await?;
    if !ok {
        sessions.record_login_failure(&admin.name);
        sessions.record_address_failure(client);
        tracing::warn!(user = ?admin.name, "password confirmation refused");
        return Ok(reauth_form(
            &admin,
            StatusCode::UNAUTHORIZED,
            return_to,
            Some(BAD_CREDENTIALS.into()),
        ));
    }
    sessions.record_login_success(&admin.name);
    sessions
        .reauthenticated(&admin.session)
        .await
        .map_err(ConsoleError::server)?;
    state
        .app
        .audit(&admin.name, "console.reauth", &admin.name, "")
        .await;
    Ok(admin
        .flash_to(
            &state,
            true,
            "Password confirmed. You can go on for the next few minutes.",
            &return_to,
        )
        .await)
}

/// The admin's own sessions. Admin only.
async fn sessions_page(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
) -> Result<Response, ConsoleError> {
    let (notice, error) = admin.take_flash(&state).await;
    let list = state
        .sessions
        .list_own(&admin.session)
        .await
        .map_err(ConsoleError::server)?;
    let mut res = render(
        StatusCode::OK,
        &SessionsPage {
            chrome: admin.chrome("sessions", notice),
            error,
            rows: session_rows(list),
            revoke_action: "/console/settings/sessions/revoke",
            csrf: admin.session.csrf_token.clone(),
        },
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    Ok(res)
}

#[derive(Deserialize, Default)]
struct RevokeForm {
    #[serde(default)]
    session: String,
}

/// Ends one of the admin's own sessions (CSRF-checked). Admin only.
async fn revoke(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let form: RevokeForm = admin.form(&body)?;
    let ended = state
        .sessions
        .revoke_own(&admin.session, &form.session)
        .await
        .map_err(ConsoleError::server)?;
    let (ok, message) = if ended {
        state
            .app
            .audit(&admin.name, "session.revoke", &admin.name, "")
            .await;
        (true, "The session was signed out.")
    } else {
        (false, "That session had already ended.")
    };
    Ok(admin.flash_to(&state, ok, message, SESSIONS).await)
}

/// Ends every other session of the admin (CSRF-checked). Admin only.
async fn revoke_others(
    admin: ConsoleAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    admin.form::<Vec<(String, String)>>(&body)?;
    let n = state
        .sessions
        .revoke_others(&admin.session)
        .await
        .map_err(ConsoleError::server)?;
    state
        .app
        .audit(
            &admin.name,
            "session.revoke_others",
            &admin.name,
            format!("{n} ended"),
        )
        .await;
    Ok(admin
        .flash_to(
            &state,
            true,
            &format!("Signed out everywhere else ({n} other session(s) ended)."),
            SESSIONS,
        )
        .await)
}
