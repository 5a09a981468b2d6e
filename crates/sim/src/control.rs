//! The control API under `/_sim` (only what Microsoft has no API for): apps, certificates,
//! permissions, sign-in, faults, stats and key rotation. The Graph-side control routes (mail,
//! subscriptions, seed) live in `crate::graph::control_router`.
//!
//! Callers: test harnesses and demo scripts on loopback. Secrets posted here are never echoed.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Json;
use serde_json::json;

use crate::faults::FaultSpec;
use crate::identity::apps::{App, AppCertificate, NewApp, PermissionsUpdate};
use crate::identity::keys::SigningKey;
use crate::state::SimState;

/// Identity/core control routes (full paths under `/_sim`).
pub fn router() -> axum::Router<Arc<SimState>> {
    axum::Router::new()
        .route("/_sim/apps", post(create_app).get(list_apps))
        .route("/_sim/apps/{id}/certificates", post(add_certificate))
        .route("/_sim/apps/{id}/permissions", put(set_permissions))
        .route("/_sim/signin", post(signin))
        .route(
            "/_sim/faults",
            post(add_fault).delete(clear_faults).get(list_faults),
        )
        .route("/_sim/stats", get(get_stats).delete(clear_stats))
        .route("/_sim/keys/rotate", post(rotate_keys))
        .route("/_sim/health", get(health))
}

/// A control-API error: `{"error": "<sentence>"}`.
fn bad(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        bad(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON for this call: {e}"),
        )
    })
}

async fn health() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// `POST /_sim/apps` -> 201 `{"client_id"}`.
async fn create_app(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let new: NewApp = match parse(&body) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let client_id = match &new.client_id {
        Some(id) => match uuid::Uuid::parse_str(id) {
            Ok(u) => u.to_string(),
            Err(_) => {
                return bad(
                    StatusCode::BAD_REQUEST,
                    format!("client_id {id:?} is not a GUID"),
                )
            }
        },
        None => uuid::Uuid::new_v4().to_string(),
    };
    let mut certificates = Vec::new();
    if let Some(pem) = &new.certificate_pem {
        match AppCertificate::from_pem(pem) {
            Ok(c) => certificates.push(c),
            Err(e) => return bad(StatusCode::BAD_REQUEST, format!("certificate_pem: {e}")),
        }
    }
    for uri in &new.redirect_uris {
        if url::Url::parse(uri).is_err() {
            return bad(
                StatusCode::BAD_REQUEST,
                format!("redirect_uris: {uri:?} is not an absolute URL"),
            );
        }
    }
    let app = App {
        client_id: client_id.clone(),
        sp_object_id: uuid::Uuid::new_v4().to_string(),
        display_name: if new.display_name.is_empty() {
            "Test application".to_string()
        } else {
            new.display_name
        },
        redirect_uris: new.redirect_uris,
        client_secret: new.client_secret,
        certificates,
        permissions: new.permissions,
        consented: new.consented,
    };
    let mut apps = state.apps.lock().expect("apps lock");
    if apps.contains_key(&client_id) {
        return bad(
            StatusCode::CONFLICT,
            format!("an app with client_id {client_id} exists"),
        );
    }
    apps.insert(client_id.clone(), app);
    (StatusCode::CREATED, Json(json!({ "client_id": client_id }))).into_response()
}

/// `GET /_sim/apps`: registrations without secrets.
async fn list_apps(State(state): State<Arc<SimState>>) -> Response {
    let apps = state.apps.lock().expect("apps lock");
    let list: Vec<_> = apps
        .values()
        .map(|a| {
            json!({
                "client_id": a.client_id,
                "display_name": a.display_name,
                "redirect_uris": a.redirect_uris,
                "has_secret": a.client_secret.is_some(),
                "certificate_thumbprints": a.certificates.iter().map(|c| c.thumbprint_hex.clone()).collect::<Vec<_>>(),
                "permissions": a.permissions,
                "consented": a.consented,
            })
        })
        .collect();
    Json(json!({ "value": list })).into_response()
}

/// `POST /_sim/apps/{id}/certificates` with a PEM body (expired certificates are accepted).
async fn add_certificate(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    body: String,
) -> Response {
    let cert = match AppCertificate::from_pem(&body) {
        Ok(c) => c,
        Err(e) => return bad(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let thumb = cert.thumbprint_hex.clone();
    let mut apps = state.apps.lock().expect("apps lock");
    let Some(app) = apps.get_mut(&id.to_ascii_lowercase()) else {
        return bad(StatusCode::NOT_FOUND, format!("no app with client_id {id}"));
    };
    app.certificates.retain(|c| c.thumbprint_hex != thumb);
    app.certificates.push(cert);
    (StatusCode::CREATED, Json(json!({ "thumbprint": thumb }))).into_response()
}

/// `PUT /_sim/apps/{id}/permissions` `{"permissions", "consented"}`.
async fn set_permissions(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let update: PermissionsUpdate = match parse(&body) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let mut apps = state.apps.lock().expect("apps lock");
    let Some(app) = apps.get_mut(&id.to_ascii_lowercase()) else {
        return bad(StatusCode::NOT_FOUND, format!("no app with client_id {id}"));
    };
    app.permissions = update.permissions;
    app.consented = update.consented;
    Json(json!({ "permissions": app.permissions, "consented": app.consented })).into_response()
}

/// `POST /_sim/signin` `{"user": "<upn or id>"}`: the next authorize completes as that user.
async fn signin(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let v: serde_json::Value = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(user) = v.get("user").and_then(|u| u.as_str()) else {
        return bad(
            StatusCode::BAD_REQUEST,
            "the body must be {\"user\": \"<upn or id>\"}",
        );
    };
    let found = state
        .tenant
        .read()
        .await
        .find_user(user)
        .map(|u| u.id.clone());
    let Some(id) = found else {
        return bad(
            StatusCode::NOT_FOUND,
            format!("no user {user:?} in the tenant"),
        );
    };
    *state.pending_signin.lock().expect("signin lock") = Some(id.clone());
    Json(json!({ "user_id": id })).into_response()
}

/// `POST /_sim/faults`.
async fn add_fault(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let spec: FaultSpec = match parse(&body) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match state.faults.add(spec) {
        Ok(()) => (
            StatusCode::CREATED,
            Json(json!({ "faults": state.faults.list() })),
        )
            .into_response(),
        Err(e) => bad(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// `GET /_sim/faults`.
async fn list_faults(State(state): State<Arc<SimState>>) -> Response {
    Json(json!({ "faults": state.faults.list() })).into_response()
}

/// `DELETE /_sim/faults`.
async fn clear_faults(State(state): State<Arc<SimState>>) -> Response {
    state.faults.clear();
    Json(json!({ "faults": [] })).into_response()
}

/// `GET /_sim/stats`.
async fn get_stats(State(state): State<Arc<SimState>>) -> Response {
    Json(state.stats.snapshot()).into_response()
}

/// `DELETE /_sim/stats`.
async fn clear_stats(State(state): State<Arc<SimState>>) -> Response {
    state.stats.clear();
    Json(state.stats.snapshot()).into_response()
}

/// `POST /_sim/keys/rotate`: a new signing key; old keys stay published for the grace period.
async fn rotate_keys(State(state): State<Arc<SimState>>) -> Response {
    let key = match tokio::task::spawn_blocking(SigningKey::generate).await {
        Ok(Ok(k)) => k,
        Ok(Err(e)) => return bad(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => return bad(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let kid = key.kid.clone();
    let mut keys = state.keys.write().expect("keys lock");
    keys.rotate(key, state.config.key_grace_secs);
    let published: Vec<String> = keys.published().map(|k| k.kid.clone()).collect();
    Json(json!({ "kid": kid, "published": published })).into_response()
}
