//! Console sign-in and sign-out, the signed-in-admin extractor, and CSRF checks on forms.

use super::views::{render, ErrorPage, LoginPage};
use crate::session::{cookie_value, random_token, secrets_equal, ActiveSession, NoSession};
use crate::{password, AppState};
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use pbx365_domain::AuditEntry;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Where sign-in leads when no (acceptable) `return_to` was given.
pub const DEFAULT_RETURN: &str = "/console";

/// The post-sign-in target if `raw` is a plain relative console path, else `/console`.
///
/// Only paths under `/console` are accepted, and nothing a browser could read as another host:
/// no `//`, no backslash, no encoded slash or backslash, no control characters or spaces, no `..`
/// (RFC 9700 §4.11 open redirector; security checklist R3.4).
pub fn safe_return_to(raw: Option<&str>) -> String {
    let Some(r) = raw else {
        return DEFAULT_RETURN.to_string();
    };
    let lower = r.to_ascii_lowercase();
    let under_console = r == "/console"
        || r.starts_with("/console/")
        || r.starts_with("/console?")
        || r.starts_with("/console#");
    let clean = r.len() <= 2048
        && !r.contains("//")
        && !r.contains('\\')
        && !r.contains("..")
        && !r.chars().any(|c| c.is_control() || c.is_whitespace())
        && !lower.contains("%2f")
        && !lower.contains("%5c")
        && !lower.contains("%2e")
        && !(0..0x20).any(|b| lower.contains(&format!("%{b:02x}")));
    if under_console && clean {
        r.to_string()
    } else {
        DEFAULT_RETURN.to_string()
    }
}

/// A signed-in console admin; extracting it sends everyone else to the sign-in page.
pub struct ConsoleAdmin {
    /// Login name.
    pub name: String,
    /// The session behind it.
    pub session: ActiveSession,
}

impl ConsoleAdmin {
    /// Parses a posted form after checking its `csrf` field against the session: a missing or
    /// wrong token answers 403 and changes nothing.
    // The error is the finished page to send back; boxing it would only add noise at call sites.
    #[allow(clippy::result_large_err)]
    pub(crate) fn form<T: DeserializeOwned>(&self, body: &Bytes) -> Result<T, Response> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        let sent = pairs
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if sent.is_empty() || !self.session.csrf_ok(sent) {
            return Err(csrf_refused());
        }
        serde_urlencoded::from_bytes(body).map_err(|e| {
            error_page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                &format!("The form could not be read: {e}."),
            )
        })
    }
}

/// The 403 page for a form without a valid CSRF token.
pub(crate) fn csrf_refused() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form was not sent from your current console session, so nothing was changed. \
         Reload the page and try again.",
    )
}

/// A full-page message with a link back to the console.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(
        status,
        &ErrorPage {
            title: title.to_string(),
            message: message.to_string(),
            back_href: "/console".into(),
            back_label: "Back to the console".into(),
        },
    )
}

/// The 500 page for a failure the admin cannot fix from here; details go to the log.
pub(crate) fn server_failure(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console request failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The server could not complete this request. The server log has the details.",
    )
}

fn login_redirect(parts: &Parts, expired: bool) -> String {
    let mut target = String::from("/console/login");
    let mut sep = '?';
    if matches!(parts.method, Method::GET | Method::HEAD) {
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/console");
        let back = safe_return_to(Some(path));
        if back != DEFAULT_RETURN {
            let enc: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
            target.push_str(&format!("?return_to={enc}"));
            sep = '&';
        }
    }
    if expired {
        target.push(sep);
        target.push_str("expired=1");
    }
    target
}

impl FromRequestParts<AppState> for ConsoleAdmin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match state.sessions.current(&parts.headers).await {
            Ok(Ok(session)) if !session.subject.starts_with("ext:") => Ok(ConsoleAdmin {
                name: session.subject.clone(),
                session,
            }),
            Ok(Ok(_)) | Ok(Err(NoSession::Missing)) => {
                Err(Redirect::to(&login_redirect(parts, false)).into_response())
            }
            Ok(Err(NoSession::Expired)) => Err((
                [(
                    header::SET_COOKIE,
                    state.sessions.policy().clear_session_cookie(),
                )],
                Redirect::to(&login_redirect(parts, true)),
            )
                .into_response()),
            Err(e) => Err(server_failure(e)),
        }
    }
}

/// Query of the sign-in page.
#[derive(Deserialize, Default)]
pub(crate) struct LoginQuery {
    return_to: Option<String>,
    expired: Option<String>,
    logged_out: Option<String>,
}

fn login_form(
    state: &AppState,
    status: StatusCode,
    return_to: String,
    username: String,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let token = random_token();
    let page = LoginPage {
        error,
        notice,
        return_to,
        login_csrf: token.clone(),
        username,
    };
    let mut res = render(status, &page);
    res.headers_mut().append(
        header::SET_COOKIE,
        state.sessions.policy().login_cookie(&token),
    );
    res
}

/// The sign-in page. Anyone may call it; a signed-in admin is sent on to `return_to`.
pub(crate) async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let return_to = safe_return_to(q.return_to.as_deref());
    if let Ok(Ok(s)) = state.sessions.current(&headers).await {
        if !s.subject.starts_with("ext:") {
            return Redirect::to(&return_to).into_response();
        }
    }
    let notice = if q.expired.is_some() {
        Some("Your session has expired. Please sign in again.".to_string())
    } else if q.logged_out.is_some() {
        Some("You have signed out.".to_string())
    } else {
        None
    };
    login_form(
        &state,
        StatusCode::OK,
        return_to,
        String::new(),
        None,
        notice,
    )
}

/// Fields of the sign-in form.
#[derive(Deserialize, Default)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    return_to: Option<String>,
    #[serde(default)]
    login_csrf: String,
}

/// The one message for an unknown name and a wrong password, so the page does not reveal which
/// admin names exist.
pub const BAD_CREDENTIALS: &str = "The user name or password is not correct.";

/// Checks a sign-in and starts a session. Anyone may call it.
pub(crate) async fn login_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: LoginForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let return_to = safe_return_to(form.return_to.as_deref());
    let username = form.username.trim().to_string();
    let sessions = &state.sessions;

    // Double-submit token of the pre-login cookie: stops another site from signing the browser
    // in to an account of the attacker's choosing (login CSRF).
    let cookie = cookie_value(&headers, sessions.policy().login_cookie_name()).unwrap_or_default();
    if cookie.is_empty() || !secrets_equal(&cookie, &form.login_csrf) {
        return login_form(
            &state,
            StatusCode::FORBIDDEN,
            return_to,
            username,
            Some("The sign-in form expired. Please enter your password again.".into()),
            None,
        );
    }
    if username.is_empty() || form.password.is_empty() {
        return login_form(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            return_to,
            username,
            Some("Enter your user name and password.".into()),
            None,
        );
    }
    if let Err(lock) = sessions.check_login_allowed(&username) {
        return login_form(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            return_to,
            username,
            Some(format!(
                "Too many failed sign-ins for this user name. Try again in {} seconds.",
                lock.retry_after_secs
            )),
            None,
        );
    }
    let admin = match state.store.get_admin(&username).await {
        Ok(a) => a,
        Err(e) => return server_failure(e),
    };
    let password = form.password;
    // Argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || match admin {
        Some(a) => password::verify_password(&password, &a.password_hash),
        None => {
            password::burn_verification(&password);
            false
        }
    })
    .await
    .unwrap_or(false);
    if !ok {
        sessions.record_login_failure(&username);
        tracing::warn!(user = ?username, "console sign-in refused");
        return login_form(
            &state,
            StatusCode::UNAUTHORIZED,
            return_to,
            username,
            Some(BAD_CREDENTIALS.into()),
            None,
        );
    }
    sessions.record_login_success(&username);
    let (id, _active) = match sessions.login(&username, &headers).await {
        Ok(s) => s,
        Err(e) => return server_failure(e),
    };
    tracing::info!(user = ?username, "console sign-in");
    audit(&state, &username, "console.login", &username).await;
    let mut res = Redirect::to(&return_to).into_response();
    // Two cookies: `append`, because a header array in a response tuple would replace the first.
    res.headers_mut()
        .append(header::SET_COOKIE, sessions.policy().session_cookie(&id));
    res.headers_mut()
        .append(header::SET_COOKIE, sessions.policy().clear_login_cookie());
    res
}

/// Ends the session on the server and clears the cookie. Called by a signed-in admin.
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let policy = *state.sessions.policy();
    let session = match state.sessions.current(&headers).await {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => {
            return (
                [(header::SET_COOKIE, policy.clear_session_cookie())],
                Redirect::to("/console/login"),
            )
                .into_response()
        }
        Err(e) => return server_failure(e),
    };
    let admin = ConsoleAdmin {
        name: session.subject.clone(),
        session,
    };
    if let Err(refused) = admin.form::<Vec<(String, String)>>(&body) {
        return refused;
    }
    if let Err(e) = state.sessions.logout(&headers).await {
        return server_failure(e);
    }
    audit(&state, &admin.name, "console.logout", &admin.name).await;
    (
        [(header::SET_COOKIE, policy.clear_session_cookie())],
        Redirect::to("/console/login?logged_out=1"),
    )
        .into_response()
}

/// Appends to the audit log; a failure is logged, not shown (the action itself succeeded).
pub(crate) async fn audit(state: &AppState, actor: &str, action: &str, target: &str) {
    let entry = AuditEntry {
        at: state.sessions.clock().now(),
        actor: actor.to_string(),
        action: action.to_string(),
        target: target.to_string(),
        detail: String::new(),
    };
    if let Err(e) = state.store.audit(&entry).await {
        tracing::warn!(error = %e, action, "audit entry not written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_redirect_attempts_fall_back_to_the_console() {
        for bad in [
            "//evil",
            "https://evil",
            "/\\evil",
            "%2F%2Fevil",
            "/console//evil.example",
            "/console/%2F%2Fevil",
            "/console/..%2F..%2F",
            "/console/../x",
            "javascript:alert(1)",
            "/consolex",
            "/console\t/x",
            "",
            "/",
        ] {
            assert_eq!(safe_return_to(Some(bad)), "/console", "{bad:?}");
        }
        assert_eq!(safe_return_to(None), "/console");
    }

    #[test]
    fn console_paths_are_kept() {
        for good in [
            "/console",
            "/console/extensions",
            "/console/sync?x=1",
            "/console/extensions/100/edit",
        ] {
            assert_eq!(safe_return_to(Some(good)), good);
        }
    }
}
