//! The control API under `/_sim` (only what Microsoft has no API for).

use std::sync::Arc;

use crate::state::SimState;

/// Identity/core control routes (full paths under `/_sim`).
pub fn router() -> axum::Router<Arc<SimState>> {
    axum::Router::new()
}
