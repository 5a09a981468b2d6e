//! The web client at `/` (SPEC §10 Web paths): an extension user signs in with Microsoft and
//! sees their extension (number, name, photo, caller ID), sets their own profile, reads their
//! personal phonebook and the company directory, manages their SIP secret, and signs out.
//! Server-rendered like the console; every change is a CSRF-checked POST through the same use
//! cases the API and console use.
//!
//! A web client session (`ext:<number>`) is bound to its extension: it reaches only that
//! extension's data and never the console; it ends as soon as the extension is disabled,
//! removed or no longer allowed to sign in.

use crate::html::render;
use crate::session::{secrets_equal, ActiveSession};
use crate::sso::start_url;
use crate::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use pbx365_app::sso::Surface;
use pbx365_domain::{Extension, PhonebookEntry, PhonebookOwner, Profile};

pub use crate::session::REAUTH_WITHIN_MINUTES;

/// Routes of the web client.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/logout", post(logout))
        .route("/me/profile", post(set_profile))
        .route("/me/sip-secret", post(new_sip_secret))
        .route("/me/sessions/revoke", post(revoke_session))
        .route("/me/sessions/others", post(revoke_other_sessions))
        .route("/directory/{number}/photo", get(photo))
        .layer(axum::middleware::from_fn(crate::html::security_headers))
}

/// A signed-in web client user; extracting it refuses everyone else.
pub struct WebUser {
    /// The extension, as stored now.
    pub ext: Extension,
    /// The session behind it.
    pub session: ActiveSession,
}

/// Why there is no web client user.
pub enum NotSignedIn {
    /// Show the sign-in page.
    Landing,
    /// The store failed.
    Broken,
}

impl IntoResponse for NotSignedIn {
    fn into_response(self) -> Response {
        match self {
            NotSignedIn::Landing => Redirect::to("/").into_response(),
            NotSignedIn::Broken => crate::html::webclient_error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The page could not be shown; the server log has the details.",
            ),
        }
    }
}

async fn web_user(state: &AppState, headers: &HeaderMap) -> Result<WebUser, NotSignedIn> {
    let session = match state.sessions.current(headers).await {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => return Err(NotSignedIn::Landing),
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            return Err(NotSignedIn::Broken);
        }
    };
    match state
        .app
        .sso_extension(Surface::WebClient, &session.subject)
        .await
    {
        Some(ext) => Ok(WebUser { ext, session }),
        None => Err(NotSignedIn::Landing),
    }
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = NotSignedIn;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        web_user(state, &parts.headers).await
    }
}

impl WebUser {
    /// Keeps `message` for the user's next page view (a notice, or an error when not `ok`) and
    /// sends the browser back to the web client's page: the end of every web client form.
    async fn flash_home(&self, state: &AppState, ok: bool, message: &str) -> Response {
        state
            .app
            .set_flash(&self.session.id_hash, ok, message)
            .await;
        Redirect::to("/").into_response()
    }

    fn csrf_ok(&self, body: &Bytes) -> bool {
        let sent = crate::html::posted_csrf(body);
        !sent.is_empty() && secrets_equal(&self.session.csrf_token, &sent)
    }

    fn field(body: &Bytes, name: &str) -> String {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        pairs
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or_default()
    }
}

/// The web client before sign-in.
#[derive(Template)]
#[template(path = "webclient.html")]
pub(crate) struct WebClientPage {
    pub sso: bool,
    pub sign_in_href: String,
    pub notice: Option<String>,
}

/// One row of a phonebook or the directory.
pub(crate) struct Row {
    pub name: String,
    pub number: String,
    pub detail: String,
    pub photo: Option<String>,
}

/// The signed-in web client.
#[derive(Template)]
#[template(path = "webclient/home.html")]
pub(crate) struct HomePage {
    pub number: String,
    pub name: String,
    pub caller_id: String,
    pub photo: Option<String>,
    pub csrf: String,
    pub profile: &'static str,
    pub profiles: Vec<(&'static str, &'static str)>,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub personal: Vec<Row>,
    pub directory: Vec<Row>,
    pub sip: Option<(String, String)>,
    pub new_secret: Option<String>,
    /// The user's sessions (signed in, last seen, browser; never the id).
    pub rows: Vec<crate::console::SessionRow>,
    /// Where a session row's "Sign out" posts.
    pub revoke_action: &'static str,
}

fn entry_rows(entries: Vec<PhonebookEntry>) -> Vec<Row> {
    entries
        .into_iter()
        .map(|e| Row {
            name: e.display_name,
            number: e
                .numbers
                .iter()
                .map(|n| n.raw.clone())
                .collect::<Vec<_>>()
                .join(", "),
            detail: e.company.unwrap_or_default(),
            photo: None,
        })
        .collect()
}

async fn home_page(
    state: &AppState,
    user: &WebUser,
    notice: Option<String>,
    error: Option<String>,
    new_secret: Option<String>,
) -> Response {
    let ext = &user.ext;
    let number = ext.number.as_str().to_string();
    let personal = state
        .app
        .phonebook(&PhonebookOwner::Personal(number.clone()))
        .await
        .map(entry_rows)
        .unwrap_or_default();
    let mut directory: Vec<Row> = state
        .app
        .extensions()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.enabled)
        .map(|e| Row {
            photo: e
                .photo
                .as_ref()
                .map(|_| format!("/directory/{}/photo", e.number)),
            name: e.display_name.clone(),
            number: e.number.as_str().to_string(),
            detail: e.department.clone().unwrap_or_default(),
        })
        .collect();
    directory.extend(
        state
            .app
            .phonebook(&PhonebookOwner::Company)
            .await
            .map(entry_rows)
            .unwrap_or_default(),
    );
    let sip = state
        .app
        .sip_status()
        .map(|_| (state.app.settings().effective_sip_domain(), number.clone()));
    let rows = match state.sessions.list_own(&user.session).await {
        Ok(list) => crate::console::session_rows(list),
        Err(e) => {
            tracing::error!(error = %e, "listing the user's sessions failed");
            Vec::new()
        }
    };
    let page = HomePage {
        rows,
        revoke_action: "/me/sessions/revoke",
        photo: ext
            .photo
            .as_ref()
            .map(|_| format!("/directory/{number}/photo")),
        name: ext.display_name.clone(),
        caller_id: ext.outbound_caller_id.clone().unwrap_or_default(),
        csrf: user.session.csrf_token.clone(),
        profile: ext.profile.profile.as_str(),
        profiles: Profile::ALL
            .iter()
            .map(|p| (p.as_str(), p.label()))
            .collect(),
        notice,
        error,
        personal,
        directory,
        sip,
        new_secret,
        number,
    };
    let mut res = render(StatusCode::OK, &page);
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `/`: the signed-in user's page, or the sign-in page. Anyone may call it.
async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match web_user(&state, &headers).await {
        Ok(user) => {
            let (notice, error) = state.app.take_flash_sentences(&user.session.id_hash).await;
            home_page(&state, &user, notice, error, None).await
        }
        Err(NotSignedIn::Broken) => NotSignedIn::Broken.into_response(),
        Err(NotSignedIn::Landing) => render(
            StatusCode::OK,
            &WebClientPage {
                sso: state.app.sso_enabled(Surface::WebClient),
                sign_in_href: start_url(Surface::WebClient, "/", false),
                notice: None,
            },
        ),
    }
}

fn csrf_refused() -> Response {
    crate::html::webclient_error_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "The form expired or did not come from this page. Reload the page and try again.",
    )
}

/// Sets the user's own profile. The signed-in user only.
async fn set_profile(user: WebUser, State(state): State<AppState>, body: Bytes) -> Response {
    if !user.csrf_ok(&body) {
        return csrf_refused();
    }
    let raw = WebUser::field(&body, "profile");
    let (ok, message) = match raw.parse::<Profile>() {
        Ok(p) => match state
            .app
            .set_profile(&user.session.subject, user.ext.number.as_str(), p, None)
            .await
        {
            Ok(_) => (true, format!("Your profile is now {}.", p.label())),
            Err(e) => (false, crate::html::sentence(e)),
        },
        Err(e) => (false, crate::html::sentence(e)),
    };
    user.flash_home(&state, ok, &message).await
}

/// Sets a new SIP secret and shows it once; a sign-in older than a few minutes is sent through
/// a fresh Microsoft sign-in first. The signed-in user only.
async fn new_sip_secret(user: WebUser, State(state): State<AppState>, body: Bytes) -> Response {
    if !user.csrf_ok(&body) {
        return csrf_refused();
    }
    if state.app.sip_status().is_none() {
        return crate::html::webclient_error_page(
            StatusCode::CONFLICT,
            "Phones are not connected",
            "This PBX does not run its SIP bridge, so there is no SIP account to change.",
        );
    }
    if !state.sessions.recently_authenticated(&user.session) {
        return Redirect::to(&start_url(Surface::WebClient, "/", true)).into_response();
    }
    match state
        .app
        .rotate_sip_secret(&user.session.subject, user.ext.number.as_str())
        .await
    {
        Ok(secret) => {
            home_page(
                &state,
                &user,
                Some("Your new SIP secret is shown below once. Enter it in your phone now; the old one no longer works.".into()),
                None,
                Some(secret),
            )
            .await
        }
        Err(e) => home_page(&state, &user, None, Some(crate::html::sentence(e)), None).await,
    }
}

/// Ends one of the user's own sessions (CSRF-checked). The signed-in user only.
async fn revoke_session(user: WebUser, State(state): State<AppState>, body: Bytes) -> Response {
    if !user.csrf_ok(&body) {
        return csrf_refused();
    }
    let handle = WebUser::field(&body, "session");
    let (ok, message) = match state.sessions.revoke_own(&user.session, &handle).await {
        Ok(true) => {
            state
                .app
                .audit(
                    &user.session.subject,
                    "session.revoke",
                    user.ext.number.as_str(),
                    "",
                )
                .await;
            (true, "The session was signed out.")
        }
        Ok(false) => (false, "That session had already ended."),
        Err(e) => {
            tracing::error!(error = %e, "revoking a session failed");
            return NotSignedIn::Broken.into_response();
        }
    };
    user.flash_home(&state, ok, message).await
}

/// Ends every other session of the user ("sign out everywhere else", CSRF-checked). The
/// signed-in user only.
async fn revoke_other_sessions(
    user: WebUser,
    State(state): State<AppState>,
    body: Bytes,
) -> Response {
    if !user.csrf_ok(&body) {
        return csrf_refused();
    }
    let n = match state.sessions.revoke_others(&user.session).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "revoking sessions failed");
            return NotSignedIn::Broken.into_response();
        }
    };
    state
        .app
        .audit(
            &user.session.subject,
            "session.revoke_others",
            user.ext.number.as_str(),
            format!("{n} ended"),
        )
        .await;
    user.flash_home(
        &state,
        true,
        &format!("Signed out everywhere else ({n} other session(s) ended)."),
    )
    .await
}

/// A directory photo. Signed-in web client users only.
async fn photo(
    _user: WebUser,
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> Response {
    match state.app.photo(&number).await {
        Ok(photo) => crate::html::photo_response(photo),
        Err(e) => {
            tracing::error!(error = %e, "reading a photo failed");
            NotSignedIn::Broken.into_response()
        }
    }
}

/// Ends the web client session on the server. The signed-in user (a stale cookie just goes home).
async fn logout(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let policy = *state.sessions.policy();
    if let Ok(user) = web_user(&state, &headers).await {
        if !user.csrf_ok(&body) {
            return csrf_refused();
        }
        if let Err(e) = state.sessions.logout(&headers).await {
            tracing::error!(error = %e, "logout failed");
            return NotSignedIn::Broken.into_response();
        }
        state
            .app
            .audit(
                &user.session.subject,
                "webclient.logout",
                user.ext.number.as_str(),
                "",
            )
            .await;
    }
    (
        [(header::SET_COOKIE, policy.clear_session_cookie())],
        Redirect::to("/"),
    )
        .into_response()
}
