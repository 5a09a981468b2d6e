//! The Microsoft identity platform side: token endpoint, authorize + sign-in page, admin
//! consent, discovery, JWKS, signing keys and the access check Graph handlers use.

pub mod access;
pub mod apps;
pub mod authorize;
pub mod errors;
pub mod keys;

use std::sync::Arc;

use crate::state::SimState;

pub use access::{app_from_headers, graph_error, AppPrincipal};

/// Routes under `/{tenant}/…`.
pub fn router() -> axum::Router<Arc<SimState>> {
    axum::Router::new()
}
