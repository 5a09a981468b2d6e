//! Mailboxes: contact folders, contacts, events and the mailbox change log.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// A contact folder.
#[derive(Clone, Debug)]
pub struct ContactFolder {
    /// Folder id.
    pub id: String,
    /// `displayName`.
    pub display_name: String,
    /// Parent folder id (the default folder's id for top-level folders).
    pub parent_folder_id: String,
}

/// A personal contact; `props` holds the Graph properties other than the bookkeeping ones.
#[derive(Clone, Debug)]
pub struct Contact {
    /// Contact id.
    pub id: String,
    /// Folder holding the contact.
    pub folder_id: String,
    /// Graph properties (displayName, emailAddresses, phones, …).
    pub props: Map<String, Value>,
    /// `createdDateTime`.
    pub created: String,
    /// `lastModifiedDateTime`.
    pub modified: String,
    /// `changeKey`.
    pub change_key: String,
}

/// The contact properties Graph always returns, with their value when unset: `null` for these,
/// `[]` for collections, `{}` for addresses (https://learn.microsoft.com/graph/api/resources/contact,
/// and the response example of https://learn.microsoft.com/graph/api/contact-get).
const CONTACT_NULLS: &[&str] = &[
    "assistantName",
    "birthday",
    "businessHomePage",
    "companyName",
    "department",
    "displayName",
    "fileAs",
    "generation",
    "givenName",
    "initials",
    "jobTitle",
    "manager",
    "middleName",
    "mobilePhone",
    "nickName",
    "officeLocation",
    "personalNotes",
    "profession",
    "spouseName",
    "surname",
    "title",
    "yomiCompanyName",
    "yomiGivenName",
    "yomiSurname",
];
/// Collection properties of a contact (`[]` when unset).
const CONTACT_LISTS: &[&str] = &[
    "businessPhones",
    "categories",
    "children",
    "emailAddresses",
    "homePhones",
    "imAddresses",
];
/// Address properties of a contact (`{}` when unset).
const CONTACT_ADDRESSES: &[&str] = &["businessAddress", "homeAddress", "otherAddress"];

impl Contact {
    /// Graph JSON of the contact: every documented property, unset ones as Graph shows them.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(
            "@odata.etag".into(),
            json!(format!("W/\"{}\"", self.change_key)),
        );
        m.insert("id".into(), json!(self.id));
        for k in CONTACT_NULLS {
            m.insert(k.to_string(), Value::Null);
        }
        for k in CONTACT_LISTS {
            m.insert(k.to_string(), json!([]));
        }
        for k in CONTACT_ADDRESSES {
            m.insert(k.to_string(), json!({}));
        }
        m.insert("createdDateTime".into(), json!(self.created));
        m.insert("lastModifiedDateTime".into(), json!(self.modified));
        m.insert("changeKey".into(), json!(self.change_key));
        m.insert("parentFolderId".into(), json!(self.folder_id));
        for (k, v) in &self.props {
            m.insert(k.clone(), v.clone());
        }
        m
    }
}

/// A calendar event (single instance or series master); `props` holds Graph properties.
#[derive(Clone, Debug)]
pub struct Event {
    /// Event id.
    pub id: String,
    /// Graph properties: subject, start, end, isAllDay, showAs, recurrence, …
    pub props: Map<String, Value>,
    /// `createdDateTime`.
    pub created: String,
    /// `lastModifiedDateTime`.
    pub modified: String,
    /// `changeKey`.
    pub change_key: String,
}

/// What a mailbox change log entry is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemKind {
    /// A contact.
    Contact,
    /// An event.
    Event,
}

/// One entry in a mailbox's change log.
#[derive(Clone, Debug)]
pub struct MailboxChange {
    /// Tenant-wide sequence number.
    pub seq: u64,
    /// Contact or event.
    pub kind: ItemKind,
    /// Item id.
    pub id: String,
    /// Folder of the contact at the time of the change.
    pub folder_id: String,
    /// The item is gone.
    pub removed: bool,
    /// Last state of a removed event (to report its occurrences as removed).
    pub removed_event: Option<Event>,
}

/// A user's (or shared) mailbox: contact folders, contacts, events.
#[derive(Clone, Debug, Default)]
pub struct Mailbox {
    /// Id of the default Contacts folder.
    pub default_folder_id: String,
    /// Contact folders below the default one (any depth).
    pub folders: Vec<ContactFolder>,
    /// Contacts by id.
    pub contacts: BTreeMap<String, Contact>,
    /// Events by id.
    pub events: BTreeMap<String, Event>,
    /// Change log for contact and calendarView delta.
    pub log: Vec<MailboxChange>,
}

impl Mailbox {
    /// An empty mailbox with a fresh default folder id.
    pub fn new(default_folder_id: String) -> Mailbox {
        Mailbox {
            default_folder_id,
            ..Default::default()
        }
    }

    /// Whether `id` names the default folder or one of the child folders.
    pub fn has_folder(&self, id: &str) -> bool {
        id == self.default_folder_id || self.folders.iter().any(|f| f.id == id)
    }
}

/// Copies `patch` into `props`, skipping the `read_only` properties (a PATCH never changes them).
pub fn merge_props(props: &mut Map<String, Value>, patch: Map<String, Value>, read_only: &[&str]) {
    for (k, v) in patch {
        if !read_only.contains(&k.as_str()) {
            props.insert(k, v);
        }
    }
}
