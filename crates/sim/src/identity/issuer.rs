//! What the token, authorize, consent and discovery endpoints share: the tenant check of the
//! `{tenant}` path segment, the unknown-app error, the OIDC scopes and token signing.

use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;

use super::errors::AadError;
use crate::state::SimState;

/// OIDC scopes that need no consent.
pub const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// Resolves the `{tenant}` path segment of the token endpoint.
pub(crate) fn check_tenant(
    state: &SimState,
    tenant: &str,
    allow_common: bool,
) -> Result<(), AadError> {
    if state.is_own_tenant(tenant) {
        return Ok(());
    }
    let lower = tenant.to_ascii_lowercase();
    if ["common", "organizations", "consumers"].contains(&lower.as_str()) {
        if allow_common {
            return Ok(());
        }
        // OBSERVED (graph-facts §1): app-only with common/organizations -> AADSTS50059.
        return Err(AadError::oauth(
            "invalid_request",
            50059,
            "No tenant-identifying information found in either the request or implied by any provided credentials.",
        ));
    }
    Err(AadError::oauth(
        "invalid_request",
        90002,
        format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
        ),
    ))
}

/// AADSTS700016: the app is unknown in this tenant (`unauthorized_client`, OBSERVED).
pub(crate) fn app_not_found(client_id: &str, tenant: &str) -> AadError {
    AadError::oauth(
        "unauthorized_client",
        700016,
        format!(
            "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
        ),
    )
}

/// Signs any claims with the current signing key (RS256, `kid` and `x5t`).
pub(crate) fn sign<T: Serialize>(state: &SimState, claims: &T, with_x5t: bool) -> String {
    let keys = state.keys.read().expect("keys lock");
    let key = keys.current();
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("JWT".into());
    header.kid = Some(key.kid.clone());
    if with_x5t {
        header.x5t = Some(key.x5t.clone());
    }
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("RS256 signing with our own key")
}
