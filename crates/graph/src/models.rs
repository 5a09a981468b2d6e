//! Graph v1.0 resources as pbx365 reads and writes them (only the fields it uses).
//!
//! Shapes: https://learn.microsoft.com/graph/api/resources/user , …/contact , …/event ,
//! …/subscription , …/profilephoto , https://learn.microsoft.com/graph/api/calendar-getschedule .

use pbx365_domain::DirectoryUser;
use serde::{Deserialize, Serialize};

/// The `$select` pbx365 uses for users (SPEC §3; department, userType, accountEnabled need it).
pub const USER_SELECT: &str = "id,displayName,givenName,surname,mail,userPrincipalName,businessPhones,mobilePhone,jobTitle,department,officeLocation,userType,accountEnabled";

/// One page of an OData collection.
#[derive(Debug, Clone, Deserialize)]
pub struct ODataPage<T> {
    /// The items.
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    /// Next page, if any.
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
    /// Delta link on the last page of a delta round.
    #[serde(rename = "@odata.deltaLink", default)]
    pub delta_link: Option<String>,
}

/// `@removed` on a delta item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// `changed` (soft-deleted, restorable) or `deleted` (gone).
    #[serde(default)]
    pub reason: String,
}

/// A Graph user (the properties of [`USER_SELECT`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphUser {
    /// Object id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Given name.
    #[serde(default)]
    pub given_name: Option<String>,
    /// Surname.
    #[serde(default)]
    pub surname: Option<String>,
    /// Mail.
    #[serde(default)]
    pub mail: Option<String>,
    /// UPN.
    #[serde(default)]
    pub user_principal_name: Option<String>,
    /// Office phones.
    #[serde(default)]
    pub business_phones: Option<Vec<String>>,
    /// Mobile.
    #[serde(default)]
    pub mobile_phone: Option<String>,
    /// Job title.
    #[serde(default)]
    pub job_title: Option<String>,
    /// Department.
    #[serde(default)]
    pub department: Option<String>,
    /// Office location.
    #[serde(default)]
    pub office_location: Option<String>,
    /// `Member` / `Guest`.
    #[serde(default)]
    pub user_type: Option<String>,
    /// Sign-in allowed.
    #[serde(default)]
    pub account_enabled: Option<bool>,
    /// Present on delta items for removed users.
    #[serde(rename = "@removed", default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removed>,
}

impl From<GraphUser> for DirectoryUser {
    fn from(u: GraphUser) -> Self {
        DirectoryUser {
            id: u.id,
            display_name: u.display_name,
            given_name: u.given_name,
            surname: u.surname,
            mail: u.mail,
            user_principal_name: u.user_principal_name,
            business_phones: u.business_phones.unwrap_or_default(),
            mobile_phone: u.mobile_phone,
            job_title: u.job_title,
            department: u.department,
            office_location: u.office_location,
            user_type: u.user_type,
            account_enabled: u.account_enabled,
        }
    }
}

/// One item of a users delta round.
// Items are handled one at a time, so the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    /// Created or changed: its current state (with `Prefer: return=minimal`, only changed fields).
    Changed(DirectoryUser),
    /// Removed from the directory.
    Removed {
        /// Object id.
        id: String,
        /// `changed` = soft-deleted (restorable for 30 days), `deleted` = permanently deleted.
        reason: String,
    },
}

impl From<GraphUser> for UserChange {
    fn from(mut u: GraphUser) -> Self {
        match u.removed.take() {
            Some(r) => UserChange::Removed {
                id: u.id,
                reason: r.reason,
            },
            None => UserChange::Changed(u.into()),
        }
    }
}

/// A directory object from a group's members (user, group, device, orgContact, servicePrincipal).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryObject {
    /// `#microsoft.graph.user`, `#microsoft.graph.group`, …
    #[serde(rename = "@odata.type", default)]
    pub odata_type: Option<String>,
    /// Object id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Mail, if any.
    #[serde(default)]
    pub mail: Option<String>,
}

impl DirectoryObject {
    /// Whether this member is a user.
    pub fn is_user(&self) -> bool {
        self.odata_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("#microsoft.graph.user"))
    }
}

/// A group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Object id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Mail.
    #[serde(default)]
    pub mail: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
}

/// Profile photo metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoMeta {
    /// Size id, e.g. `240X240`.
    #[serde(default)]
    pub id: Option<String>,
    /// Pixels.
    #[serde(default)]
    pub width: Option<u32>,
    /// Pixels.
    #[serde(default)]
    pub height: Option<u32>,
    /// e.g. `image/jpeg`.
    #[serde(rename = "@odata.mediaContentType", default)]
    pub media_content_type: Option<String>,
    /// Changes when the photo changes (photos are not tracked by delta).
    #[serde(rename = "@odata.mediaEtag", default)]
    pub media_etag: Option<String>,
}

/// A photo's bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Photo {
    /// Content-Type of the answer.
    pub content_type: String,
    /// Image bytes.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Photo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Photo({}, {} bytes)",
            self.content_type,
            self.bytes.len()
        )
    }
}

/// An e-mail address with an optional name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAddress {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Address.
    #[serde(default)]
    pub address: Option<String>,
}

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalAddress {
    /// Street.
    #[serde(default)]
    pub street: Option<String>,
    /// City.
    #[serde(default)]
    pub city: Option<String>,
    /// State.
    #[serde(default)]
    pub state: Option<String>,
    /// Country.
    #[serde(default)]
    pub country_or_region: Option<String>,
    /// Postal code.
    #[serde(default)]
    pub postal_code: Option<String>,
}

/// An Outlook contact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// Id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Given name.
    #[serde(default)]
    pub given_name: Option<String>,
    /// Surname.
    #[serde(default)]
    pub surname: Option<String>,
    /// Company.
    #[serde(default)]
    pub company_name: Option<String>,
    /// Department.
    #[serde(default)]
    pub department: Option<String>,
    /// Job title.
    #[serde(default)]
    pub job_title: Option<String>,
    /// Mail addresses.
    #[serde(default)]
    pub email_addresses: Option<Vec<EmailAddress>>,
    /// Business phones.
    #[serde(default)]
    pub business_phones: Option<Vec<String>>,
    /// Home phones.
    #[serde(default)]
    pub home_phones: Option<Vec<String>>,
    /// Mobile.
    #[serde(default)]
    pub mobile_phone: Option<String>,
    /// Business address.
    #[serde(default)]
    pub business_address: Option<PhysicalAddress>,
    /// Folder.
    #[serde(default)]
    pub parent_folder_id: Option<String>,
    /// Change key.
    #[serde(default)]
    pub change_key: Option<String>,
    /// Last change.
    #[serde(default)]
    pub last_modified_date_time: Option<String>,
    /// Present on delta items for removed contacts (any reason: gone from this folder).
    #[serde(rename = "@removed", default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removed>,
}

/// A contact folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactFolder {
    /// Id.
    pub id: String,
    /// Name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Parent folder.
    #[serde(default)]
    pub parent_folder_id: Option<String>,
    /// Present on folder delta items for removed folders.
    #[serde(rename = "@removed", default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removed>,
}

/// `dateTimeTimeZone`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DateTimeTimeZone {
    /// e.g. `2019-03-15T12:00:00.0000000`.
    pub date_time: String,
    /// e.g. `UTC`.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// A calendar event (calendarView item).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Id.
    pub id: String,
    /// Subject.
    #[serde(default)]
    pub subject: Option<String>,
    /// `free`, `tentative`, `busy`, `oof`, `workingElsewhere`, `unknown`.
    #[serde(default)]
    pub show_as: Option<String>,
    /// Start.
    #[serde(default)]
    pub start: Option<DateTimeTimeZone>,
    /// End (exclusive).
    #[serde(default)]
    pub end: Option<DateTimeTimeZone>,
    /// All-day (floating midnight to midnight).
    #[serde(default)]
    pub is_all_day: Option<bool>,
    /// Cancelled.
    #[serde(default)]
    pub is_cancelled: Option<bool>,
    /// `singleInstance`, `occurrence`, `exception`, `seriesMaster`.
    #[serde(default, rename = "type")]
    pub event_type: Option<String>,
    /// `normal`, `private`, …
    #[serde(default)]
    pub sensitivity: Option<String>,
    /// Present on delta items for removed events.
    #[serde(rename = "@removed", default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removed>,
}

/// One item of a getSchedule answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleItem {
    /// Free/busy status (casing varies: compare case-insensitively).
    #[serde(default)]
    pub status: Option<String>,
    /// Start.
    #[serde(default)]
    pub start: Option<DateTimeTimeZone>,
    /// End.
    #[serde(default)]
    pub end: Option<DateTimeTimeZone>,
    /// Subject, if sharing allows.
    #[serde(default)]
    pub subject: Option<String>,
    /// Private, if sharing allows.
    #[serde(default)]
    pub is_private: Option<bool>,
}

/// `freeBusyError`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FreeBusyError {
    /// Message.
    #[serde(default)]
    pub message: Option<String>,
    /// Response code.
    #[serde(default)]
    pub response_code: Option<String>,
}

/// `scheduleInformation` for one address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleInformation {
    /// The address asked for.
    #[serde(default)]
    pub schedule_id: String,
    /// One digit per interval: 0 free, 1 tentative, 2 busy, 3 oof, 4 workingElsewhere.
    #[serde(default)]
    pub availability_view: Option<String>,
    /// The items.
    #[serde(default)]
    pub schedule_items: Vec<ScheduleItem>,
    /// Set when the address could not be resolved.
    #[serde(default)]
    pub error: Option<FreeBusyError>,
}

/// A change-notification subscription to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSubscription {
    /// `updated,deleted` for users.
    pub change_type: String,
    /// HTTPS URL of our receiver.
    pub notification_url: String,
    /// Lifecycle receiver (only settable at creation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle_notification_url: Option<String>,
    /// e.g. `users`, `/users/{id}/contacts`.
    pub resource: String,
    /// UTC ISO 8601.
    pub expiration_date_time: String,
    /// Secret echoed on every notification (≤128 chars); never logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
}

/// A subscription as Graph returns it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Id.
    pub id: String,
    /// Resource.
    #[serde(default)]
    pub resource: String,
    /// Change types.
    #[serde(default)]
    pub change_type: String,
    /// Receiver.
    #[serde(default)]
    pub notification_url: String,
    /// Lifecycle receiver.
    #[serde(default)]
    pub lifecycle_notification_url: Option<String>,
    /// Expiry (UTC ISO 8601).
    #[serde(default)]
    pub expiration_date_time: String,
    /// Secret (only returned to the creating app).
    #[serde(default)]
    pub client_state: Option<String>,
    /// App that created it.
    #[serde(default)]
    pub application_id: Option<String>,
}

impl std::fmt::Debug for Subscription {
    // clientState is a secret: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("resource", &self.resource)
            .field("change_type", &self.change_type)
            .field("notification_url", &self.notification_url)
            .field("expiration_date_time", &self.expiration_date_time)
            .finish_non_exhaustive()
    }
}

/// A recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    /// The address.
    pub email_address: EmailAddress,
}

impl Recipient {
    /// A recipient from a bare address.
    pub fn address(addr: &str) -> Self {
        Recipient {
            email_address: EmailAddress {
                name: None,
                address: Some(addr.to_string()),
            },
        }
    }
}

/// Message body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemBody {
    /// `Text` or `HTML`.
    pub content_type: String,
    /// The text.
    pub content: String,
}

/// A `fileAttachment` (under 3 MB each).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileAttachment {
    /// Always `#microsoft.graph.fileAttachment`.
    #[serde(rename = "@odata.type")]
    pub odata_type: String,
    /// File name.
    pub name: String,
    /// MIME type.
    pub content_type: String,
    /// Base64 bytes.
    pub content_bytes: String,
}

/// Custom header (`x-` prefix required).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternetMessageHeader {
    /// Name, starting with `x-`.
    pub name: String,
    /// Value.
    pub value: String,
}

/// A mail message for sendMail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailMessage {
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: ItemBody,
    /// To.
    pub to_recipients: Vec<Recipient>,
    /// Cc.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc_recipients: Vec<Recipient>,
    /// Bcc.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc_recipients: Vec<Recipient>,
    /// Custom headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub internet_message_headers: Vec<InternetMessageHeader>,
    /// Attachments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<FileAttachment>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_items_with_removed_become_removals() {
        let page: ODataPage<GraphUser> = serde_json::from_str(
            r#"{"value":[{"id":"a","displayName":"A","businessPhones":["+1 555"]},
                {"id":"b","@removed":{"reason":"changed"}}],"@odata.deltaLink":"https://g/v1.0/users/delta?$deltatoken=x"}"#,
        )
        .unwrap();
        let changes: Vec<UserChange> = page.value.into_iter().map(Into::into).collect();
        assert!(matches!(&changes[0], UserChange::Changed(u) if u.business_phones == ["+1 555"]));
        assert_eq!(
            changes[1],
            UserChange::Removed {
                id: "b".into(),
                reason: "changed".into()
            }
        );
        assert!(page.delta_link.is_some());
    }
}
