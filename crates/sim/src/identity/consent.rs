//! Admin consent: `/{tenant}/adminconsent` (v1) and `/{tenant}/v2.0/adminconsent` (v2), with a
//! consent page listing the permissions and Accept/Cancel buttons.
//!
//! https://learn.microsoft.com/entra/identity-platform/v2-admin-consent
//! https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow#request-the-permissions-from-a-directory-admin

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::Form;

use super::apps::App;
use super::authorize::{error_page, esc, found, session_user, with_query};
use super::errors::AadError;
use super::issuer::{app_not_found, check_tenant};
use crate::state::SimState;

/// Which endpoint the request came through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

struct ConsentRequest {
    app: App,
    redirect_uri: String,
    p: HashMap<String, String>,
}

impl ConsentRequest {
    fn redirect(&self, extra: &[(&str, &str)]) -> Response {
        let mut params: Vec<(&str, &str)> = extra.to_vec();
        if let Some(s) = self.p.get("state") {
            params.push(("state", s));
        }
        found(&with_query(&self.redirect_uri, &params))
    }
}

/// Redirect URIs match a registered one exactly, or add path segments below it (v1 doc).
fn redirect_allowed(app: &App, uri: &str) -> bool {
    app.redirect_uris.iter().any(|r| {
        uri == r
            || uri
                .strip_prefix(r.trim_end_matches('/'))
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

fn check(
    state: &SimState,
    tenant: &str,
    p: HashMap<String, String>,
) -> Result<ConsentRequest, Response> {
    check_tenant(state, tenant, true).map_err(|e| error_page(&e))?;
    let client_id = p.get("client_id").cloned().unwrap_or_default();
    let app = state
        .apps
        .lock()
        .expect("apps lock")
        .get(&client_id.to_ascii_lowercase())
        .cloned()
        .ok_or_else(|| error_page(&app_not_found(&client_id, &state.tenant_id)))?;
    let redirect_uri = p
        .get("redirect_uri")
        .cloned()
        .or_else(|| app.redirect_uris.first().cloned())
        .unwrap_or_default();
    if !redirect_allowed(&app, &redirect_uri) {
        return Err(error_page(&AadError::oauth(
            "invalid_request",
            50011,
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{}'.",
                app.client_id
            ),
        )));
    }
    Ok(ConsentRequest {
        app,
        redirect_uri,
        p,
    })
}

/// `GET /{tenant}/adminconsent` (callers: an admin's browser).
pub async fn v1_get(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    get(&state, &tenant, &headers, p, Version::V1).await
}

/// `GET /{tenant}/v2.0/adminconsent` (callers: an admin's browser).
pub async fn v2_get(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    get(&state, &tenant, &headers, p, Version::V2).await
}

/// `POST /{tenant}/adminconsent`: the Accept/Cancel form.
pub async fn v1_post(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Form(p): Form<HashMap<String, String>>,
) -> Response {
    post(&state, &tenant, &headers, p, Version::V1).await
}

/// `POST /{tenant}/v2.0/adminconsent`: the Accept/Cancel form.
pub async fn v2_post(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Form(p): Form<HashMap<String, String>>,
) -> Response {
    post(&state, &tenant, &headers, p, Version::V2).await
}

async fn get(
    state: &SimState,
    tenant: &str,
    headers: &HeaderMap,
    p: HashMap<String, String>,
    version: Version,
) -> Response {
    let req = match check(state, tenant, p) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if version == Version::V2 && !req.p.contains_key("scope") {
        let desc = "AADSTS900144: The request body must contain the following parameter: 'scope'.";
        return req.redirect(&[("error", "invalid_request"), ("error_description", desc)]);
    }
    let signed_in = state
        .pending_signin
        .lock()
        .expect("signin lock")
        .clone()
        .or_else(|| session_user(headers));
    let signed_in_name = match &signed_in {
        Some(u) => state
            .tenant
            .read()
            .await
            .find_user(u)
            .map(|u| u.user_principal_name.clone()),
        None => None,
    };
    consent_page(&req, signed_in_name.as_deref(), None)
}

fn consent_page(req: &ConsentRequest, signed_in: Option<&str>, error: Option<&str>) -> Response {
    let hidden: String = req
        .p
        .iter()
        .filter(|(k, _)| !["login", "passwd", "action"].contains(&k.as_str()))
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(k),
                esc(v)
            )
        })
        .collect();
    let perms: String = if req.app.permissions.is_empty() {
        "<li>(no application permissions requested)</li>".to_string()
    } else {
        req.app
            .permissions
            .iter()
            .map(|p| {
                format!(
                    "<li class=\"permission\">{} (Microsoft Graph, application)</li>",
                    esc(p)
                )
            })
            .collect()
    };
    let who = match signed_in {
        Some(upn) => format!("<p id=\"signedIn\">Signed in as {}</p>", esc(upn)),
        None => "<label for=\"login\">Administrator account</label>\
                 <input type=\"email\" id=\"login\" name=\"login\" autocomplete=\"username\">\
                 <label for=\"passwd\">Password</label>\
                 <input type=\"password\" id=\"passwd\" name=\"passwd\" autocomplete=\"current-password\">"
            .to_string(),
    };
    let err = error
        .map(|e| format!("<p id=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Permissions requested</title></head>\
         <body><main><h1>Permissions requested</h1><h2 id=\"appName\">{app}</h2>{err}\
         <p>This app would like to:</p><ul id=\"permissions\">{perms}</ul>\
         <p>Accepting grants these permissions for your whole organization.</p>\
         <form method=\"POST\" id=\"consent\">{hidden}{who}\
         <button type=\"submit\" name=\"action\" value=\"accept\" id=\"accept\">Accept</button>\
         <button type=\"submit\" name=\"action\" value=\"cancel\" id=\"cancel\">Cancel</button>\
         </form></main></body></html>",
        app = esc(&req.app.display_name),
    ))
    .into_response()
}

async fn post(
    state: &SimState,
    tenant: &str,
    headers: &HeaderMap,
    mut p: HashMap<String, String>,
    version: Version,
) -> Response {
    let action = p.remove("action").unwrap_or_default();
    let login = p.remove("login").unwrap_or_default();
    let password = p.remove("passwd").unwrap_or_default();
    let req = match check(state, tenant, p) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if action != "accept" {
        // v1 doc example: error + "The admin canceled the request"; v2 doc example keeps
        // admin_consent=True with consent_required / AADSTS65004.
        return match version {
            Version::V1 => req.redirect(&[
                ("error", "access_denied"),
                ("error_description", "The admin canceled the request"),
            ]),
            Version::V2 => req.redirect(&[
                ("admin_consent", "True"),
                ("error", "consent_required"),
                (
                    "error_description",
                    "AADSTS65004: User declined to consent to access the app.",
                ),
            ]),
        };
    }
    let pending = state.pending_signin.lock().expect("signin lock").take();
    let signed_in = pending.is_some() || session_user(headers).is_some();
    if !signed_in {
        let ok = state
            .tenant
            .read()
            .await
            .check_password(&login, &password)
            .is_some();
        if !ok {
            return consent_page(&req, None, Some("Your account or password is incorrect."));
        }
    }
    if let Some(app) = state
        .apps
        .lock()
        .expect("apps lock")
        .get_mut(&req.app.client_id)
    {
        app.consented = true;
    }
    let tid = state.tenant_id.clone();
    match version {
        Version::V1 => req.redirect(&[("admin_consent", "True"), ("tenant", &tid)]),
        Version::V2 => {
            let scope = req.p.get("scope").cloned().unwrap_or_default();
            req.redirect(&[
                ("admin_consent", "True"),
                ("tenant", &tid),
                ("scope", &scope),
            ])
        }
    }
}
