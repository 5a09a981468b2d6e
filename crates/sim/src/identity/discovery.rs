//! OpenID Connect discovery and the JWKS.
//!
//! https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::authorize::error_page;
use super::issuer::check_tenant;
use crate::state::SimState;

/// `GET /{tenant}/v2.0/.well-known/openid-configuration` (callers: any OIDC client).
pub async fn openid_configuration(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
) -> Response {
    if let Err(e) = check_tenant(&state, &tenant, true) {
        return (e.status, Json(e.body())).into_response();
    }
    let base = &state.base_url;
    // For common/organizations the issuer is the literal template (graph-facts §3).
    let issuer_tenant = if state.is_own_tenant(&tenant) {
        state.tenant_id.clone()
    } else {
        "{tenantid}".to_string()
    };
    Json(serde_json::json!({
        "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{issuer_tenant}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{tenant}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
            "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid",
            "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{base}/{tenant}/kerberos"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }))
    .into_response()
}

/// `GET /{tenant}/discovery/v2.0/keys` (callers: relying parties validating tokens).
pub async fn jwks(State(state): State<Arc<SimState>>, Path(tenant): Path<String>) -> Response {
    if let Err(e) = check_tenant(&state, &tenant, true) {
        return error_page(&e);
    }
    let issuer = format!("{}/{}/v2.0", state.base_url, state.tenant_id);
    let keys = state.keys.read().expect("keys lock");
    let list: Vec<_> = keys.published().map(|k| k.jwk(&issuer)).collect();
    Json(serde_json::json!({ "keys": list })).into_response()
}
