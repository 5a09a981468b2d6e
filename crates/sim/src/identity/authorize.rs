//! `/{tenant}/oauth2/v2.0/authorize`: the sign-in page, authorization codes (PKCE) and their
//! redemption with ID tokens.
//!
//! https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow
//! https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use sha2::Digest;

use super::access::{AccessClaims, GRAPH_AUDIENCE};
use super::apps::App;
use super::errors::AadError;
use super::issuer::{check_tenant, sign, OIDC_SCOPES};
use crate::state::SimState;

/// How long an authorization code can be redeemed ("about 10 minutes" per the auth-code doc).
pub const CODE_LIFETIME_SECS: i64 = 600;
/// Session cookie set after a form sign-in (single sign-on for later authorize requests).
pub const SESSION_COOKIE: &str = "m365sim_session";

pub use super::claims::{AuthCode, RefreshGrant};

/// HTML-escapes text for the sign-in and consent pages.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A full-page error, for problems that must not redirect (unknown app, unregistered redirect URI).
pub(crate) fn error_page(err: &AadError) -> Response {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign in to your account</title></head>\
         <body><h1>Sorry, but we're having trouble signing you in.</h1>\
         <p id=\"error\">AADSTS{}: {}</p></body></html>",
        err.code,
        esc(&err.description)
    );
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

/// A 302 redirect, as Entra answers (axum's `Redirect::to` would send 303).
pub(crate) fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(axum::http::header::LOCATION, v)]).into_response(),
        Err(_) => (
            StatusCode::BAD_REQUEST,
            "redirect URI is not a valid header value",
        )
            .into_response(),
    }
}

/// Appends query parameters to a redirect URI.
pub(crate) fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let q = serde_urlencoded::to_string(params).unwrap_or_default();
    if uri.contains('?') {
        format!("{uri}&{q}")
    } else {
        format!("{uri}?{q}")
    }
}

/// The user named by the session cookie, if any.
pub(crate) fn session_user(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// A validated authorize request: the app and the exact redirect URI.
struct Checked {
    app: App,
    redirect_uri: String,
    p: HashMap<String, String>,
}

impl Checked {
    fn state(&self) -> &str {
        self.p.get("state").map(String::as_str).unwrap_or("")
    }

    /// Sends the browser back with `error`/`error_description` (and `state`).
    fn redirect_error(&self, error: &str, code: u32, text: &str) -> Response {
        let desc = format!("AADSTS{code}: {text}");
        let mut params = vec![("error", error), ("error_description", desc.as_str())];
        if self.p.contains_key("state") {
            params.push(("state", self.state()));
        }
        respond(&self.redirect_uri, self.mode(), &params)
    }

    fn mode(&self) -> &str {
        self.p
            .get("response_mode")
            .map(String::as_str)
            .unwrap_or("query")
    }
}

/// Delivers parameters to the client by `response_mode`: query (302), fragment, or form_post.
fn respond(redirect_uri: &str, mode: &str, params: &[(&str, &str)]) -> Response {
    match mode {
        "form_post" => {
            let inputs: String = params
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                        esc(k),
                        esc(v)
                    )
                })
                .collect();
            Html(format!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>Working...</title></head>\
                 <body onload=\"document.forms[0].submit()\"><form method=\"POST\" action=\"{}\">{inputs}\
                 <noscript><button type=\"submit\">Continue</button></noscript></form></body></html>",
                esc(redirect_uri)
            ))
            .into_response()
        }
        "fragment" => {
            let q = serde_urlencoded::to_string(params).unwrap_or_default();
            found(&format!("{redirect_uri}#{q}"))
        }
        _ => found(&with_query(redirect_uri, params)),
    }
}

/// Checks tenant, client and redirect URI; problems here are shown as a page, never redirected.
fn check_request(
    state: &SimState,
    tenant: &str,
    p: HashMap<String, String>,
) -> Result<Checked, Response> {
    check_tenant(state, tenant, true).map_err(|e| error_page(&e))?;
    let client_id = p.get("client_id").cloned().unwrap_or_default();
    if client_id.is_empty() {
        return Err(error_page(&AadError::oauth(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        )));
    }
    let app = state
        .apps
        .lock()
        .expect("apps lock")
        .get(&client_id.to_ascii_lowercase())
        .cloned()
        .ok_or_else(|| error_page(&super::issuer::app_not_found(&client_id, &state.tenant_id)))?;
    let redirect_uri = match p.get("redirect_uri") {
        Some(r) => r.clone(),
        None if app.redirect_uris.len() == 1 => app.redirect_uris[0].clone(),
        None => {
            return Err(error_page(&AadError::oauth(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'redirect_uri'.",
            )))
        }
    };
    // The redirect URI must match a registered one exactly.
    if !app.redirect_uris.iter().any(|r| r == &redirect_uri) {
        return Err(error_page(&AadError::oauth(
            "invalid_request",
            50011,
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal.",
                app.client_id
            ),
        )));
    }
    Ok(Checked {
        app,
        redirect_uri,
        p,
    })
}

/// `GET /{tenant}/oauth2/v2.0/authorize` (callers: browsers sent by a relying party).
pub async fn authorize_get(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let req = match check_request(&state, &tenant, p) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if req.p.get("response_type").map(String::as_str) != Some("code") {
        return req.redirect_error(
            "unsupported_response_type",
            700054,
            "response_type must be 'code' (the simulator supports the authorization code flow).",
        );
    }
    if let Some(m) = req.p.get("code_challenge_method") {
        if m != "S256" && m != "plain" {
            return req.redirect_error(
                "invalid_request",
                501491,
                "Invalid code_challenge_method: only S256 and plain are supported.",
            );
        }
    }
    let prompt = req.p.get("prompt").cloned().unwrap_or_default();
    // `/_sim/signin` wins: the request completes as that user without the form.
    let pending = state.pending_signin.lock().expect("signin lock").take();
    if let Some(login) = pending {
        let user_id = state.tenant.read().await.user_id(&login);
        return match user_id {
            Some(id) => complete(&state, &req, &id, None),
            None => req.redirect_error(
                "invalid_request",
                50034,
                &format!("The user account {login} does not exist in the directory."),
            ),
        };
    }
    let session = session_user(&headers);
    let silent_ok = !matches!(prompt.as_str(), "login" | "select_account");
    if let (Some(user_id), true) = (&session, silent_ok) {
        let enabled = state
            .tenant
            .read()
            .await
            .find_user(user_id)
            .is_some_and(|u| u.account_enabled);
        if enabled {
            return complete(&state, &req, user_id, None);
        }
    }
    if prompt == "none" {
        return req.redirect_error(
            "login_required",
            50058,
            "A silent sign-in request was sent but no user is signed in.",
        );
    }
    sign_in_page(&req, None)
}

/// `POST /{tenant}/oauth2/v2.0/authorize`: the sign-in form (user name + password).
pub async fn authorize_post(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    Form(mut p): Form<HashMap<String, String>>,
) -> Response {
    let login = p.remove("login").unwrap_or_default();
    let password = p.remove("passwd").unwrap_or_default();
    let req = match check_request(&state, &tenant, p) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let user_id = state
        .tenant
        .read()
        .await
        .check_password(&login, &password)
        .map(|u| u.id.clone());
    match user_id {
        Some(id) => complete(&state, &req, &id, Some(&id)),
        None => sign_in_page(
            &req,
            Some("Your account or password is incorrect. If you don't remember your password, reset it now."),
        ),
    }
}

/// The HTML sign-in form; every authorize parameter rides along as a hidden field.
fn sign_in_page(req: &Checked, error: Option<&str>) -> Response {
    let hidden: String = req
        .p
        .iter()
        .filter(|(k, _)| k.as_str() != "login" && k.as_str() != "passwd")
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(k),
                esc(v)
            )
        })
        .collect();
    let hint = req.p.get("login_hint").map(String::as_str).unwrap_or("");
    let err = error
        .map(|e| format!("<p id=\"passwordError\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in to your account</title></head>\
         <body><main><h1>Sign in</h1><p>to continue to {app}</p>{err}\
         <form method=\"POST\" id=\"signin\">{hidden}\
         <label for=\"login\">Email, phone, or Skype</label>\
         <input type=\"email\" id=\"login\" name=\"login\" value=\"{hint}\" autocomplete=\"username\" required>\
         <label for=\"passwd\">Password</label>\
         <input type=\"password\" id=\"passwd\" name=\"passwd\" autocomplete=\"current-password\" required>\
         <button type=\"submit\" id=\"idSIButton9\">Sign in</button></form></main></body></html>",
        app = esc(&req.app.display_name),
        hint = esc(hint),
    );
    let mut resp = Html(body).into_response();
    resp.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    resp
}

/// Issues a code for `user_id` and sends the browser back to the client.
fn complete(state: &SimState, req: &Checked, user_id: &str, set_session: Option<&str>) -> Response {
    let code = format!(
        "1.sim.{}",
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    );
    let challenge = req.p.get("code_challenge").map(|c| {
        let method = req
            .p
            .get("code_challenge_method")
            .cloned()
            // A challenge without a method is treated as plain (auth-code doc).
            .unwrap_or_else(|| "plain".into());
        (c.clone(), method)
    });
    let now = chrono::Utc::now().timestamp();
    {
        let mut codes = state.auth_codes.lock().expect("codes lock");
        codes.retain(|_, c| c.expires_at > now - CODE_LIFETIME_SECS);
        codes.insert(
            code.clone(),
            AuthCode {
                client_id: req.app.client_id.clone(),
                redirect_uri: req.redirect_uri.clone(),
                user_id: user_id.to_string(),
                scope: req.p.get("scope").cloned().unwrap_or_default(),
                nonce: req.p.get("nonce").cloned(),
                code_challenge: challenge,
                expires_at: now + CODE_LIFETIME_SECS,
                redeemed: false,
            },
        );
    }
    let session_state = uuid::Uuid::new_v4().to_string();
    let mut params = vec![("code", code.as_str())];
    if req.p.contains_key("state") {
        params.push(("state", req.state()));
    }
    params.push(("session_state", session_state.as_str()));
    let mut resp = respond(&req.redirect_uri, req.mode(), &params);
    if let Some(user) = set_session {
        let cookie = format!("{SESSION_COOKIE}={user}; Path=/; HttpOnly; Secure; SameSite=None");
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(axum::http::header::SET_COOKIE, v);
        }
    }
    resp
}

fn grant_error(code: u32, text: impl Into<String>) -> AadError {
    AadError::oauth("invalid_grant", code, text)
}

/// Graph scope names from a requested scope string (`https://graph.microsoft.com/User.Read` ->
/// `User.Read`), without OIDC scopes.
fn graph_scopes(scope: &str) -> Vec<String> {
    scope
        .split_whitespace()
        .filter(|s| !OIDC_SCOPES.contains(&s.to_ascii_lowercase().as_str()))
        .map(|s| {
            s.strip_prefix("https://graph.microsoft.com/")
                .unwrap_or(s)
                .to_string()
        })
        .filter(|s| s != ".default")
        .collect()
}

/// Claims of ID tokens (v2.0).
#[derive(Debug, Serialize)]
struct IdClaims {
    aud: String,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    tid: String,
    sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    oid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    aio: String,
    rh: String,
    uti: String,
    ver: &'static str,
}

/// `grant_type=authorization_code` for an authenticated client: single-use code, same client
/// and redirect URI, PKCE verifier, consent for Graph scopes; returns ID + access token.
pub(crate) async fn redeem_code(
    state: &SimState,
    app: &App,
    form: &HashMap<String, String>,
) -> Result<serde_json::Value, AadError> {
    let code_value = form.get("code").ok_or_else(|| {
        AadError::oauth(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'code'.",
        )
    })?;
    let now = chrono::Utc::now().timestamp();
    let code = {
        let mut codes = state.auth_codes.lock().expect("codes lock");
        let Some(code) = codes.get_mut(code_value) else {
            return Err(grant_error(
                9002313,
                "Invalid request. Request is malformed or invalid. The provided authorization code is not valid.",
            ));
        };
        if code.redeemed {
            return Err(grant_error(
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            ));
        }
        if code.expires_at < now {
            return Err(grant_error(
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
            ));
        }
        code.redeemed = true;
        code.clone()
    };
    if !code.client_id.eq_ignore_ascii_case(&app.client_id) {
        return Err(grant_error(
            70000,
            "The provided value for the 'code' parameter is not valid. The code was issued to another client.",
        ));
    }
    if form.get("redirect_uri") != Some(&code.redirect_uri) {
        return Err(grant_error(
            70000,
            "The provided value for the 'redirect_uri' parameter is not valid. It must equal the redirect_uri of the authorization request.",
        ));
    }
    if let Some((challenge, method)) = &code.code_challenge {
        let verifier = form.get("code_verifier").ok_or_else(|| {
            grant_error(
                50148,
                "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.",
            )
        })?;
        let computed = if method == "S256" {
            URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
        } else {
            verifier.clone()
        };
        if &computed != challenge {
            return Err(grant_error(
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            ));
        }
    }
    issue_user_tokens(state, app, &code.user_id, &code.scope, code.nonce.clone()).await
}

/// Access token (+ ID token with `openid`, + refresh token with `offline_access`) for `user_id`
/// signed in to `app` with the requested `scope`: the answer of code redemption and of the
/// refresh-token grant (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow).
pub(crate) async fn issue_user_tokens(
    state: &SimState,
    app: &App,
    user_id: &str,
    scope: &str,
    nonce: Option<String>,
) -> Result<serde_json::Value, AadError> {
    let now = chrono::Utc::now().timestamp();
    // Graph scopes beyond User.Read need consent (65001, suberror consent_required; OBSERVED).
    let mut scopes = graph_scopes(scope);
    let missing: Vec<&String> = scopes
        .iter()
        .filter(|s| {
            let granted =
                app.consented && app.permissions.iter().any(|p| p.eq_ignore_ascii_case(s));
            !(s.eq_ignore_ascii_case("User.Read") || granted)
        })
        .collect();
    if !missing.is_empty() {
        return Err(grant_error(
            65001,
            format!(
                "The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource.",
                app.client_id, app.display_name
            ),
        )
        .with_suberror("consent_required"));
    }
    if scopes.is_empty() {
        scopes.push("User.Read".into());
    }

    let user = state
        .tenant
        .read()
        .await
        .find_user(user_id)
        .cloned()
        .ok_or_else(|| grant_error(50034, "The user account does not exist in the directory."))?;

    let requested: Vec<String> = scope
        .split_whitespace()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let has = |s: &str| requested.iter().any(|r| r == s);
    let lifetime = state.config.token_lifetime_secs as i64;
    let tid = state.tenant_id.clone();
    let uti = || URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());

    let mut scp: Vec<String> = OIDC_SCOPES
        .iter()
        .filter(|s| has(s) && **s != "offline_access")
        .map(|s| s.to_string())
        .collect();
    scp.extend(scopes.iter().cloned());
    let access = AccessClaims {
        aud: GRAPH_AUDIENCE.to_string(),
        iss: format!("https://sts.windows.net/{tid}/"),
        idp: None,
        iat: now,
        nbf: now,
        exp: now + lifetime,
        appid: app.client_id.clone(),
        appidacr: "1".into(),
        app_displayname: Some(app.display_name.clone()),
        idtyp: "user".into(),
        oid: user.id.clone(),
        sub: pairwise_sub(&app.client_id, &user.id),
        tid: tid.clone(),
        roles: None,
        scp: Some(scp.join(" ")),
        upn: Some(user.user_principal_name.clone()),
        name: user.display_name.clone(),
        uti: uti(),
        ver: "1.0".into(),
    };
    let access_token = sign(state, &access, true);
    let mut out = serde_json::json!({
        "token_type": "Bearer",
        "scope": scopes.iter().map(|s| format!("{GRAPH_AUDIENCE}/{s}")).chain(
            OIDC_SCOPES.iter().filter(|s| has(s)).map(|s| s.to_string())
        ).collect::<Vec<_>>().join(" "),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    });
    if has("openid") {
        let profile = has("profile");
        let id = IdClaims {
            aud: app.client_id.clone(),
            iss: format!("{}/{tid}/v2.0", state.base_url),
            iat: now,
            nbf: now,
            exp: now + state.config.id_token_lifetime_secs as i64,
            tid: tid.clone(),
            sub: pairwise_sub(&app.client_id, &user.id),
            oid: profile.then(|| user.id.clone()),
            preferred_username: profile.then(|| user.user_principal_name.clone()),
            name: if profile {
                user.display_name.clone()
            } else {
                None
            },
            email: if has("email") || user.user_type == "Guest" {
                user.mail.clone()
            } else {
                None
            },
            nonce,
            aio: uti(),
            rh: uti(),
            uti: uti(),
            ver: "2.0",
        };
        out["id_token"] = serde_json::Value::String(sign(state, &id, false));
    }
    if has("offline_access") {
        // An opaque refresh token, valid for 90 days of inactivity
        // (https://learn.microsoft.com/entra/identity-platform/refresh-tokens).
        let token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes()),
            URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
        );
        state.refresh_tokens.lock().expect("refresh lock").insert(
            token.clone(),
            RefreshGrant {
                client_id: app.client_id.clone(),
                user_id: user.id.clone(),
                scope: scope.to_string(),
                expires_at: now + 90 * 24 * 3600,
            },
        );
        out["refresh_token"] = serde_json::Value::String(token);
    }
    Ok(out)
}

/// `grant_type=refresh_token`: new tokens for the user and scopes the refresh token was issued
/// for; the old refresh token stays valid until it expires
/// (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#refresh-the-access-token).
pub(crate) async fn redeem_refresh_token(
    state: &SimState,
    app: &App,
    form: &HashMap<String, String>,
) -> Result<serde_json::Value, AadError> {
    let token = form.get("refresh_token").ok_or_else(|| {
        AadError::oauth(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'refresh_token'.",
        )
    })?;
    let grant = state
        .refresh_tokens
        .lock()
        .expect("refresh lock")
        .get(token)
        .cloned()
        .ok_or_else(|| {
            grant_error(
                9002313,
                "Invalid request. Request is malformed or invalid. The provided refresh token is not valid.",
            )
        })?;
    if grant.expires_at < chrono::Utc::now().timestamp() {
        return Err(grant_error(
            700082,
            "The refresh token has expired due to inactivity.",
        ));
    }
    if !grant.client_id.eq_ignore_ascii_case(&app.client_id) {
        return Err(grant_error(
            70000,
            "The provided value for the 'refresh_token' parameter is not valid. The token was issued to another client.",
        ));
    }
    // A `scope` on the refresh request may narrow, never widen, what was granted.
    let scope = match form.get("scope") {
        Some(s) => {
            let granted: Vec<String> = grant
                .scope
                .split_whitespace()
                .map(|g| g.to_ascii_lowercase())
                .collect();
            let wanted: Vec<String> = s
                .split_whitespace()
                .map(|w| w.to_ascii_lowercase())
                .collect();
            let bare = |w: &str| w.rsplit('/').next().unwrap_or(w).to_string();
            let widened = wanted.iter().any(|w| {
                !granted.iter().any(|g| bare(g) == bare(w)) && !OIDC_SCOPES.contains(&w.as_str())
            });
            if widened {
                return Err(grant_error(
                    65001,
                    "The user or administrator has not consented to use the application for the requested scopes.",
                )
                .with_suberror("consent_required"));
            }
            // Keep offline_access so the answer carries a new refresh token, as Entra's does.
            format!("{s} offline_access")
        }
        None => grant.scope.clone(),
    };
    issue_user_tokens(state, app, &grant.user_id, &scope, None).await
}

/// `sub` is pairwise: stable per (app, user), different between apps.
pub fn pairwise_sub(client_id: &str, user_id: &str) -> String {
    let d = sha2::Sha256::digest(format!("{client_id}|{user_id}").as_bytes());
    URL_SAFE_NO_PAD.encode(&d[..32])
}
