//! `GET {public_url}/oauth2office2`: the one redirect URI registered in Azure. It ends the admin
//! consent (this module) and, later, every SSO sign-in; the single-use `state` says which.
//!
//! Admin consent answer (https://learn.microsoft.com/entra/identity-platform/v2-admin-consent):
//! `admin_consent=True&tenant=…&state=…` (v2 adds `scope`), or `error` + `error_description`
//! (+ `admin_consent=True` in v2's decline example). None of it is trusted: the state must be
//! ours, unused, unexpired and bound to this browser's console session (R3.2), and the tenant is
//! recorded only after pbx365 got an app-only token for it whose `tid` matches (R3.8).

use super::views::{render, MessagePage};
use super::{audit, record_permissions, set_flash, store_setting, CONFIGURE};
use crate::session::{hash_secret, secrets_equal, ActiveSession};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use pbx365_domain::Guid;
use pbx365_graph::{GraphClient, GraphConfig, GraphError, KeyStore, RawError};
use pbx365_store::OAuthState;
use std::collections::HashMap;

/// `purpose` of the state stored when an admin starts admin consent.
pub const ADMIN_CONSENT: &str = "admin_consent";

/// What a finished callback leads to.
enum Done {
    /// Show `message` on the Configure page of this session.
    Page {
        session: String,
        ok: bool,
        message: String,
    },
    /// No console session to show it in: a page right here.
    Alone {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
}

/// The sentence for a callback that did not come from a sign-in started here.
const FORGED: &str = "This sign-in answer does not belong to a sign-in started from this browser (it is unknown, \
already used or expired), so nothing was changed. Click \"Sign in to Microsoft 365\" to start again.";

/// `GET /oauth2office2`. Anyone may call it; it changes something only for a valid state.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let session = match state.sessions.current(&headers).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(_)) => None,
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed in the OAuth callback");
            None
        }
    };
    let done = handle(&state, session.as_ref(), &params).await;
    finish(&state, done).await
}

async fn handle(
    state: &AppState,
    session: Option<&ActiveSession>,
    params: &HashMap<String, String>,
) -> Done {
    let refuse = |message: &str| match session {
        Some(s) => Done::Page {
            session: s.id_hash.clone(),
            ok: false,
            message: message.to_string(),
        },
        None => Done::Alone {
            status: StatusCode::BAD_REQUEST,
            title: "Sign-in not accepted",
            message: message.to_string(),
        },
    };
    let Some(value) = params.get("state").filter(|s| !s.is_empty()) else {
        tracing::warn!("OAuth callback without state refused");
        return refuse(FORGED);
    };
    // Single use: taking it deletes it, whatever happens next.
    let taken = match state
        .store
        .take_oauth_state(&hash_secret(value), Utc::now())
        .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "reading the OAuth state failed");
            return refuse("The sign-in answer could not be checked; the server log has the details. Nothing was changed.");
        }
    };
    let Some(flow) = taken else {
        tracing::warn!("OAuth callback with an unknown, used or expired state refused");
        return refuse(FORGED);
    };
    // Extension point: each purpose finishes its own flow. SSO sign-ins (`sso_console`,
    // `sso_webclient`) add their arm here, with their own binding check (pre-login cookie).
    match flow.purpose.as_str() {
        ADMIN_CONSENT => admin_consent(state, session, &flow, params).await,
        other => {
            tracing::warn!(
                purpose = other,
                "OAuth callback for a flow this version does not handle"
            );
            refuse(FORGED)
        }
    }
}

/// Finishes admin consent for the console session the state was bound to.
async fn admin_consent(
    state: &AppState,
    session: Option<&ActiveSession>,
    flow: &OAuthState,
    params: &HashMap<String, String>,
) -> Done {
    // Bound to the admin's console session: another browser (or a logged-out one) gets nothing.
    let Some(session) = session.filter(|s| {
        !s.subject.starts_with("ext:") && secrets_equal(&s.id_hash, &flow.session_hash)
    }) else {
        tracing::warn!(
            "admin-consent callback from a session other than the one that started it refused"
        );
        return match session {
            Some(s) => Done::Page {
                session: s.id_hash.clone(),
                ok: false,
                message: FORGED.to_string(),
            },
            None => Done::Alone {
                status: StatusCode::BAD_REQUEST,
                title: "Sign-in not accepted",
                message: format!(
                    "{FORGED} If you started it, sign in to the console in this browser first."
                ),
            },
        };
    };
    let page = |ok: bool, message: String| Done::Page {
        session: session.id_hash.clone(),
        ok,
        message,
    };
    let client_id = flow.data["client_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let admin = flow.data["admin"]
        .as_str()
        .unwrap_or(&session.subject)
        .to_string();

    if let Some(error) = params.get("error").filter(|e| !e.is_empty()) {
        let description = params
            .get("error_description")
            .map(String::as_str)
            .unwrap_or_default();
        let e = redirect_error(error, description, &client_id, &super::redirect_uri(state));
        tracing::warn!(error = %error, description = %description.replace(['\r', '\n'], " "), "admin consent failed");
        return page(false, format!("Microsoft 365 was not connected: {e}"));
    }
    if !params
        .get("admin_consent")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return page(false, "Microsoft did not confirm the admin consent, so nothing was changed. Click \"Sign in to Microsoft 365\" and accept the permissions.".into());
    }
    let settings = state.settings();
    if settings.m365.client_id.as_deref() != Some(client_id.as_str()) {
        return page(false, "The Application (client) ID was changed while you were signing in, so nothing was recorded. Click \"Sign in to Microsoft 365\" again.".into());
    }
    // Untrusted until a token for it proves it (R3.8).
    let claimed = match params.get("tenant").map(|t| Guid::parse("tenant ID", t)) {
        Some(Ok(g)) => g,
        _ => {
            return page(false, "Microsoft's answer did not name the tenant as a GUID, so nothing was recorded. Click \"Sign in to Microsoft 365\" again.".into())
        }
    };
    let mut config = match GraphConfig::from_settings(&settings.m365) {
        Ok(c) => c,
        Err(e) => {
            return page(
                false,
                format!("Admin consent was granted, but pbx365 cannot use it yet: {e}."),
            )
        }
    };
    config.tenant_id = Some(claimed.as_str().to_string());
    config.client_id = Some(client_id.clone());
    // A new client has an empty cache: the token is fresh and carries the roles just granted.
    let token = match GraphClient::new(config, KeyStore::new(state.data_dir())) {
        Ok(client) => client.token().await,
        Err(e) => Err(e),
    };
    let token = match token {
        Ok(t) => t,
        Err(e) => {
            if let Some(raw) = e.raw() {
                tracing::warn!(raw = %raw, "token after admin consent refused");
            }
            return page(false, format!("Admin consent was granted, but pbx365 could not get a token for tenant {}: {e}. Nothing was recorded.", claimed.as_str()));
        }
    };
    match token.tenant_id.as_deref() {
        Some(tid) if tid.eq_ignore_ascii_case(claimed.as_str()) => {}
        other => {
            tracing::warn!(claimed = %claimed.as_str(), token_tid = ?other, "admin-consent tenant does not match the token's tid");
            return page(false, format!(
                "Microsoft issued the token for tenant {}, not for tenant {} named in the sign-in answer, so nothing was recorded.",
                other.unwrap_or("(none)"),
                claimed.as_str()
            ));
        }
    }
    if let Err(e) =
        store_setting(state, "m365.tenant_id", serde_json::json!(claimed.as_str())).await
    {
        tracing::error!(error = %e, "storing m365.tenant_id failed");
        return page(
            false,
            "The tenant could not be saved; the server log has the details.".into(),
        );
    }
    record_permissions(state, claimed.as_str(), &token.roles).await;
    let missing = pbx365_graph::missing_permissions(&token.roles);
    audit(
        state,
        &admin,
        "m365.admin_consent",
        claimed.as_str(),
        &format!("{} of 5 permissions", 5 - missing.len()),
    )
    .await;
    tracing::info!(tenant = %claimed.as_str(), roles = ?token.roles, "Microsoft 365 admin consent recorded");
    if missing.is_empty() {
        page(
            true,
            format!(
                "Connected to Microsoft 365 tenant {}: all five permissions are granted.",
                claimed.as_str()
            ),
        )
    } else {
        let names: Vec<&str> = missing.iter().map(|p| p.name).collect();
        page(false, format!(
            "Connected to Microsoft 365 tenant {}, but {} of the five permissions {} missing: {}. Add {} to the app registration (Application permissions) and sign in again.",
            claimed.as_str(),
            missing.len(),
            if missing.len() == 1 { "is" } else { "are" },
            names.join(", "),
            if missing.len() == 1 { "it" } else { "them" },
        ))
    }
}

/// Microsoft's error redirect as the graph crate's sentence (the raw code goes to the log).
fn redirect_error(error: &str, description: &str, client_id: &str, redirect_uri: &str) -> String {
    let code: Option<u64> = description
        .find("AADSTS")
        .map(|i| &description[i + 6..])
        .and_then(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        });
    let raw = RawError {
        status: 400,
        code: code
            .map(|c| format!("AADSTS{c}"))
            .unwrap_or_else(|| error.to_string()),
        oauth_error: Some(error.to_string()),
        message: description.lines().next().unwrap_or_default().to_string(),
        request_id: None,
        correlation_id: None,
    };
    let e = match (error, code) {
        (_, Some(700016)) => GraphError::UnknownApp { client_id: client_id.into(), tenant: "the tenant you signed in to".into(), raw: raw.into() },
        (_, Some(50011)) => {
            return format!(
                "the Redirect URI {redirect_uri} is not registered in the app registration: add it under Authentication (platform Web) and sign in again"
            )
        }
        (_, Some(90002 | 90013 | 900023)) => GraphError::TenantNotFound { tenant: "named in the sign-in".into(), raw: raw.into() },
        ("access_denied" | "consent_required", _) | (_, Some(65001 | 65004)) => GraphError::ConsentMissing { raw: Some(raw.into()) },
        _ => GraphError::Identity { raw: raw.into() },
    };
    e.to_string()
}

async fn finish(state: &AppState, done: Done) -> Response {
    let mut res = match done {
        Done::Page {
            session,
            ok,
            message,
        } => {
            set_flash(state, &session, ok, &message).await;
            // 303 to a clean URL: the state (and any code) does not stay in the history.
            Redirect::to(CONFIGURE).into_response()
        }
        Done::Alone {
            status,
            title,
            message,
        } => render(
            status,
            &MessagePage {
                title: title.to_string(),
                message,
            },
        ),
    };
    let h = res.headers_mut();
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declined_consent_reads_as_consent_not_granted() {
        let s = redirect_error(
            "consent_required",
            "AADSTS65004: User declined to consent to access the app.",
            "c",
            "r",
        );
        assert!(s.contains("admin consent has not been granted"), "{s}");
        let s = redirect_error("access_denied", "The admin canceled the request", "c", "r");
        assert!(s.contains("admin consent has not been granted"), "{s}");
    }

    #[test]
    fn unknown_app_and_redirect_mismatch_name_what_to_fix() {
        let s = redirect_error(
            "unauthorized_client",
            "AADSTS700016: Application with identifier 'x' was not found",
            "abc",
            "r",
        );
        assert!(s.contains("abc") && s.contains("not registered"), "{s}");
        let s = redirect_error(
            "invalid_request",
            "AADSTS50011: The redirect URI 'x' does not match",
            "abc",
            "https://p/oauth2office2",
        );
        assert!(s.contains("https://p/oauth2office2"), "{s}");
    }
}
