//! The audit log: who changed what, for admins to review.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who: an admin name, `api-token:<name>`, `sync`, or `system`.
    pub actor: String,
    /// What, e.g. `extension.create`.
    pub action: String,
    /// On what, e.g. an extension number.
    pub target: String,
    /// Free-form details (never secrets).
    pub detail: String,
}
