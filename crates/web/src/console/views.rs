//! Askama templates of the console and web client, and their row types.

pub(crate) use crate::html::Chrome;
use askama::Template;

/// The sign-in page.
#[derive(Template)]
#[template(path = "console/login.html")]
pub(crate) struct LoginPage {
    pub error: Option<String>,
    pub notice: Option<String>,
    pub return_to: String,
    pub login_csrf: String,
    pub username: String,
    /// "Sign in with Microsoft" link, when SSO is on for the console.
    pub sso_href: Option<String>,
}

/// One row of the extension list.
pub(crate) struct ExtensionRow {
    pub number: String,
    pub display_name: String,
    pub initials: String,
    pub email: String,
    pub department: String,
    pub synced: bool,
    pub enabled: bool,
    pub is_admin: bool,
    pub profile_key: &'static str,
    pub profile_label: &'static str,
    pub has_photo: bool,
    /// On a call now (Kamailio's dialogs).
    pub on_call: bool,
}

/// Extensions list.
#[derive(Template)]
#[template(path = "console/extensions.html")]
pub(crate) struct ExtensionsPage {
    pub chrome: Chrome,
    pub rows: Vec<ExtensionRow>,
}

/// The editable fields of the extension form, as typed.
#[derive(Default, serde::Deserialize)]
pub(crate) struct ExtensionFields {
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub mobile: String,
    #[serde(default)]
    pub outbound_caller_id: String,
    #[serde(default)]
    pub department: String,
    #[serde(default)]
    pub job_title: String,
    #[serde(default)]
    pub office: String,
}

/// Add / edit / view one extension.
#[derive(Template)]
#[template(path = "console/extension_form.html")]
pub(crate) struct ExtensionFormPage {
    pub chrome: Chrome,
    pub is_new: bool,
    pub read_only: bool,
    pub can_delete: bool,
    pub number: String,
    pub form: ExtensionFields,
    pub error: Option<String>,
    /// (value, label, selected) for the profile picker.
    pub profiles: Vec<(&'static str, &'static str, bool)>,
    /// Who set the current profile, when it was not a person.
    pub profile_note: Option<String>,
}

/// One phonebook row.
pub(crate) struct PhonebookRow {
    pub display_name: String,
    pub company: String,
    /// (kind, number as written)
    pub numbers: Vec<(&'static str, String)>,
    pub emails: Vec<String>,
    pub synced: bool,
}

/// The company phonebook.
#[derive(Template)]
#[template(path = "console/phonebook.html")]
pub(crate) struct PhonebookPage {
    pub chrome: Chrome,
    pub entries: Vec<PhonebookRow>,
}

/// One sync run row.
pub(crate) struct SyncRunRow {
    pub id: String,
    pub started: String,
    pub finished: String,
    pub kind: &'static str,
    pub status_key: &'static str,
    pub status_label: &'static str,
    pub created: usize,
    pub updated: usize,
    pub disabled: usize,
    pub deleted: usize,
    pub skipped: usize,
    pub errors: usize,
}

/// Sync history.
#[derive(Template)]
#[template(path = "console/sync.html")]
pub(crate) struct SyncPage {
    pub chrome: Chrome,
    pub runs: Vec<SyncRunRow>,
}

/// Settings > Integrations > Microsoft 365.
#[derive(Template)]
#[template(path = "console/m365.html")]
pub(crate) struct M365Page {
    pub chrome: Chrome,
    pub redirect_uri: String,
    pub https: bool,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
}
