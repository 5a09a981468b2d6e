//! Templates of the Microsoft 365 pages and their view models.

use askama::Template;

pub(crate) use crate::html::Chrome;

/// The outcome of the last action (a redirect carries it to the page).
pub(crate) struct Outcome {
    /// Success (green) or failure (red).
    pub ok: bool,
    /// The sentence.
    pub message: String,
}

/// The certificate pbx365 signs with (or is about to).
pub(crate) struct CertView {
    /// SHA-1 thumbprint, hex (what the Azure portal shows).
    pub thumbprint: String,
    /// Subject (`CN=host`).
    pub subject: String,
    /// `YYYY-MM-DD`.
    pub not_after: String,
    /// Days until expiry (negative once expired).
    pub days_left: i64,
}

/// One of the five permissions, as the last token showed it.
pub(crate) struct PermissionRow {
    /// `User.Read.All` …
    pub name: &'static str,
    /// In the token's roles.
    pub granted: bool,
    /// What stops working without it.
    pub breaks: &'static str,
}

/// Permissions of the last token.
pub(crate) struct PermissionsView {
    /// When they were read.
    pub at: String,
    /// Tenant of the token.
    pub tenant: String,
    /// The five rows.
    pub rows: Vec<PermissionRow>,
    /// Number granted.
    pub granted: usize,
}

/// One line of the last "Check connection".
pub(crate) struct CheckRow {
    /// What was checked.
    pub name: String,
    /// Passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do.
    pub fix: String,
}

/// The last connection check.
pub(crate) struct ChecksView {
    /// When it ran.
    pub at: String,
    /// Its lines.
    pub rows: Vec<CheckRow>,
    /// True when every line passed.
    pub all_ok: bool,
}

/// Settings > Integrations > Microsoft 365 > Configure.
#[derive(Template)]
#[template(path = "m365/configure.html")]
pub(crate) struct ConfigurePage {
    pub chrome: Chrome,
    pub redirect_uri: String,
    pub https: bool,
    /// The value in the Application (client) ID field (as typed when refused).
    pub client_id_field: String,
    pub client_id_error: Option<String>,
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
    pub cert: Option<CertView>,
    /// A newer certificate waiting for its first token (rotation).
    pub pending_cert: Option<CertView>,
    /// Certificate expiry warning (30/14/7/1 days, or expired).
    pub banner: Option<String>,
    pub outcome: Option<Outcome>,
    pub permissions: Option<PermissionsView>,
    pub checks: Option<ChecksView>,
}
