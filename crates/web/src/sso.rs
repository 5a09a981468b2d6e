//! Single sign-on with Microsoft (SPEC §4): `GET /auth/microsoft?surface=webclient|console`
//! starts a sign-in; its answer arrives at the one redirect URI (`/oauth2office2`, see
//! [`crate::m365`]) and ends here in [`signed_in`] or [`refused`]. The protocol and the rules
//! live in [`pbx365_app::sso`]; this is the HTTP side: cookies, redirects and pages.

use crate::html::{private, render, MessagePage};
use crate::session::cookie_value;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use pbx365_app::sso::{SsoRefusal, SsoSignedIn, Surface};
use serde::Deserialize;

/// Where a sign-in starts.
pub const START: &str = "/auth/microsoft";

/// Routes of the sign-in start.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(START, get(start))
        .layer(axum::middleware::from_fn(crate::html::security_headers))
}

/// Query of [`START`].
#[derive(Deserialize, Default)]
struct StartQuery {
    surface: Option<String>,
    #[serde(rename = "return")]
    return_to: Option<String>,
    /// Asks for a fresh password entry (re-authentication before a sensitive action).
    fresh: Option<String>,
}

/// The URL that starts a sign-in on `surface`, coming back to `return_to`.
pub fn start_url(surface: Surface, return_to: &str, fresh: bool) -> String {
    let name = match surface {
        Surface::Console => "console",
        Surface::WebClient => "webclient",
    };
    let back: String = url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
    let mut u = format!("{START}?surface={name}&return={back}");
    if fresh {
        u.push_str("&fresh=1");
    }
    u
}

/// Starts a Microsoft sign-in: binds it to this browser with a cookie and sends the browser to
/// Microsoft. Anyone may call it; it is refused with a page when SSO is off for the surface.
async fn start(State(state): State<AppState>, Query(q): Query<StartQuery>) -> Response {
    let Some(surface) = Surface::parse(q.surface.as_deref().unwrap_or("webclient")) else {
        return crate::html::error_page(
            StatusCode::BAD_REQUEST,
            "Unknown sign-in",
            "A Microsoft sign-in is for the web client (surface=webclient) or the management console (surface=console).",
        );
    };
    match state
        .app
        .start_sso(surface, q.return_to.as_deref(), q.fresh.is_some())
        .await
    {
        Ok(started) => {
            let mut res = Redirect::to(&started.url).into_response();
            res.headers_mut().append(
                header::SET_COOKIE,
                state.sessions.policy().sso_cookie(&started.binding),
            );
            private(res)
        }
        Err(r) => refused(&state, &r),
    }
}

/// The browser's sign-in binding cookie, for the redirect URI.
pub fn binding(state: &AppState, headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, state.sessions.policy().sso_cookie_name())
}

/// A refused sign-in: its own page, the binding cookie cleared, no session.
pub fn refused(state: &AppState, r: &SsoRefusal) -> Response {
    let (back_href, back_label) = match r.surface {
        Surface::Console => ("/console/login", "Back to the console sign-in"),
        Surface::WebClient => ("/", "Back to the web client"),
    };
    let mut res = render(
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST),
        &MessagePage {
            title: r.title.to_string(),
            message: r.message.clone(),
            back_href: back_href.to_string(),
            back_label: back_label.to_string(),
        },
    );
    res.headers_mut().append(
        header::SET_COOKIE,
        state.sessions.policy().clear_sso_cookie(),
    );
    private(res)
}

/// The notice after a re-authentication with Microsoft.
pub const SIGNED_IN_AGAIN: &str =
    "Signed in again with Microsoft. Press the button again to go on; for the next few minutes you are not asked again.";

/// A successful sign-in: a new session (any session cookie the browser brought is deleted
/// first), the binding cookie cleared, on to the checked return path.
pub async fn signed_in(state: &AppState, headers: &HeaderMap, s: SsoSignedIn) -> Response {
    let sessions = &state.sessions;
    let (id, _active) = match sessions.login(&s.subject, headers).await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "starting a session after a Microsoft sign-in failed");
            return crate::html::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sign-in failed",
                "The session could not be started; the server log has the details.",
            );
        }
    };
    if s.fresh {
        // The POST that asked for the fresh sign-in is not repeated on its own: say so.
        state.app.set_flash(&id.hash(), true, SIGNED_IN_AGAIN).await;
    }
    let mut res = Redirect::to(&s.return_to).into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, sessions.policy().session_cookie(&id));
    res.headers_mut()
        .append(header::SET_COOKIE, sessions.policy().clear_sso_cookie());
    private(res)
}
