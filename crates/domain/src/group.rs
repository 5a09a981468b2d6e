//! Extension groups, including the built-in group of synced extensions.

use serde::{Deserialize, Serialize};

/// The built-in group every extension synced from Microsoft 365 belongs to.
pub const AZURE_AD_GROUP: &str = "Azure AD";

/// A named set of extensions (ring groups, permissions, phonebook views).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExtensionGroup {
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Built-in groups cannot be renamed or deleted.
    pub builtin: bool,
    /// Extension numbers in the group.
    pub members: Vec<String>,
}
