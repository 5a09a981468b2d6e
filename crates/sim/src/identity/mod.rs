//! The Microsoft identity platform side: token endpoint, authorize + sign-in page, admin
//! consent, discovery, JWKS, signing keys and the access check Graph handlers use.

pub mod access;
pub mod apps;
pub mod authorize;
pub mod claims;
pub mod consent;
pub mod discovery;
pub mod errors;
pub mod issuer;
pub mod keys;
pub mod token;

use std::sync::Arc;

use axum::routing::get;

use crate::state::SimState;

pub use access::{app_from_headers, graph_error, AppPrincipal};

/// Routes under `/{tenant}/…` (tenant = GUID, domain, or common/organizations where allowed).
pub fn router() -> axum::Router<Arc<SimState>> {
    axum::Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            axum::routing::post(token::token),
        )
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route(
            "/{tenant}/adminconsent",
            get(consent::v1_get).post(consent::v1_post),
        )
        .route(
            "/{tenant}/v2.0/adminconsent",
            get(consent::v2_get).post(consent::v2_post),
        )
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(discovery::jwks))
        .route("/{tenant}/discovery/keys", get(discovery::jwks))
}
