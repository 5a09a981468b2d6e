//! A Microsoft 365 user as the sync rules see it (the graph crate converts Graph's JSON into this).

use serde::{Deserialize, Serialize};

/// The user properties the sync reads (`$select` of SPEC §3).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DirectoryUser {
    /// Object id: the stable link to an extension.
    pub id: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Surname.
    pub surname: Option<String>,
    /// Primary SMTP address.
    pub mail: Option<String>,
    /// User principal name.
    pub user_principal_name: Option<String>,
    /// Office phones; the first is the caller ID.
    pub business_phones: Vec<String>,
    /// Mobile phone.
    pub mobile_phone: Option<String>,
    /// Job title.
    pub job_title: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Office location.
    pub office_location: Option<String>,
    /// `Member` or `Guest`.
    pub user_type: Option<String>,
    /// Sign-in allowed.
    pub account_enabled: Option<bool>,
}
