//! The simulated tenant's data: users, groups, photos, mailboxes (contacts, contact folders,
//! events), the sent-mail outbox, and the change logs that delta queries read.
//!
//! Everything here is plain data plus bookkeeping; HTTP shapes live in `crate::graph`.

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Password given to every generated user (so `pbx365 demo` can print sign-in names).
pub const GENERATED_PASSWORD: &str = "Sim-Passw0rd!";

/// A user's profile photo.
#[derive(Clone, Debug)]
pub enum PhotoData {
    /// Uploaded (seed or `PUT /photo/$value`) bytes.
    Bytes {
        /// Raw image bytes.
        data: Arc<Vec<u8>>,
        /// `image/png` or `image/jpeg`.
        content_type: String,
        /// Pixel width.
        width: u32,
        /// Pixel height.
        height: u32,
    },
    /// A generated 48x48 PNG, rendered on request from this seed (keeps `--users 100000` small).
    Generated {
        /// Deterministic render seed.
        seed: u64,
    },
}

/// A profile photo plus its media ETag (changes whenever the photo changes).
#[derive(Clone, Debug)]
pub struct Photo {
    /// The image.
    pub data: PhotoData,
    /// Value for `@odata.mediaEtag` (already quoted, e.g. `"\"BA09D118\""`).
    pub etag: String,
}

/// Side length of generated photos.
pub const GENERATED_PHOTO_SIZE: u32 = 48;

impl Photo {
    /// Photo from uploaded bytes; `None` when the bytes are neither PNG nor JPEG.
    pub fn from_bytes(data: Vec<u8>) -> Option<Photo> {
        let (content_type, width, height) = image_info(&data)?;
        let etag = format!("\"{:08X}\"", fnv32(&data));
        Some(Photo {
            data: PhotoData::Bytes {
                data: Arc::new(data),
                content_type: content_type.to_string(),
                width,
                height,
            },
            etag,
        })
    }

    /// A generated photo for `seed`.
    pub fn generated(seed: u64) -> Photo {
        Photo {
            data: PhotoData::Generated { seed },
            etag: format!("\"{:08X}\"", fnv32(&seed.to_le_bytes())),
        }
    }

    /// Content type, width and height.
    pub fn info(&self) -> (&str, u32, u32) {
        match &self.data {
            PhotoData::Bytes {
                content_type,
                width,
                height,
                ..
            } => (content_type, *width, *height),
            PhotoData::Generated { .. } => {
                ("image/png", GENERATED_PHOTO_SIZE, GENERATED_PHOTO_SIZE)
            }
        }
    }

    /// The image bytes (rendering generated photos on the fly).
    pub fn bytes(&self) -> Arc<Vec<u8>> {
        match &self.data {
            PhotoData::Bytes { data, .. } => data.clone(),
            PhotoData::Generated { seed } => Arc::new(render_png(*seed)),
        }
    }
}

/// FNV-1a 32-bit, used for short deterministic ETags.
pub fn fnv32(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in data {
        h ^= *b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h
}

/// Detects PNG/JPEG and reads the pixel size from the header.
pub fn image_info(data: &[u8]) -> Option<(&'static str, u32, u32)> {
    if data.len() >= 24 && data.starts_with(b"\x89PNG\r\n\x1a\n") {
        let w = u32::from_be_bytes(data[16..20].try_into().ok()?);
        let h = u32::from_be_bytes(data[20..24].try_into().ok()?);
        return Some(("image/png", w, h));
    }
    if data.len() >= 4 && data[0] == 0xFF && data[1] == 0xD8 {
        // Walk the JPEG segments to the first SOFn marker, which holds the size.
        let mut i = 2;
        while i + 9 < data.len() {
            if data[i] != 0xFF {
                i += 1;
                continue;
            }
            let marker = data[i + 1];
            let len = u16::from_be_bytes([data[i + 2], data[i + 3]]) as usize;
            if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
                let h = u16::from_be_bytes([data[i + 5], data[i + 6]]) as u32;
                let w = u16::from_be_bytes([data[i + 7], data[i + 8]]) as u32;
                return Some(("image/jpeg", w, h));
            }
            i += 2 + len;
        }
        return Some(("image/jpeg", 0, 0));
    }
    None
}

/// Renders a deterministic 48x48 PNG avatar: a coloured background with a lighter disc.
pub fn render_png(seed: u64) -> Vec<u8> {
    let s = GENERATED_PHOTO_SIZE;
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) ^ 0xD1B54A32D192ED03;
    let mut next = || {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51afd7ed558ccd);
        x ^= x >> 33;
        (x & 0xff) as u8
    };
    let bg = [next() / 2 + 40, next() / 2 + 40, next() / 2 + 40];
    let fg = [bg[0] / 2 + 120, bg[1] / 2 + 120, bg[2] / 2 + 120];
    let mut pixels = Vec::with_capacity((s * s * 3) as usize);
    let c = s as i32 / 2;
    for y in 0..s as i32 {
        for xx in 0..s as i32 {
            // head and shoulders silhouette
            let head = (xx - c).pow(2) + (y - 18).pow(2) < 81;
            let body = (xx - c).pow(2) + (y - 48).pow(2) < 300;
            let px = if head || body { fg } else { bg };
            pixels.extend_from_slice(&px);
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, s, s);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().expect("png header to memory");
        w.write_image_data(&pixels).expect("png data to memory");
    }
    out
}

/// A directory user (also used for shared mailboxes such as "Reception").
#[derive(Clone, Debug, Default)]
pub struct User {
    /// Object id (lowercase GUID).
    pub id: String,
    /// Sign-in name.
    pub user_principal_name: String,
    /// `displayName`.
    pub display_name: Option<String>,
    /// `givenName`.
    pub given_name: Option<String>,
    /// `surname`.
    pub surname: Option<String>,
    /// `mail`.
    pub mail: Option<String>,
    /// `mobilePhone`.
    pub mobile_phone: Option<String>,
    /// `businessPhones`.
    pub business_phones: Vec<String>,
    /// `jobTitle`.
    pub job_title: Option<String>,
    /// `department`.
    pub department: Option<String>,
    /// `officeLocation`.
    pub office_location: Option<String>,
    /// `preferredLanguage`.
    pub preferred_language: Option<String>,
    /// `Member` or `Guest`.
    pub user_type: String,
    /// `accountEnabled`.
    pub account_enabled: bool,
    /// Any other Graph properties from a seed or a POST, returned on `$select`.
    pub extra: Map<String, Value>,
    /// Sign-in password (never returned by Graph).
    pub password: Option<String>,
    /// Profile photo, if any.
    pub photo: Option<Photo>,
    /// Index in the generated organisation; its mailbox is generated lazily from it.
    pub gen_index: Option<u32>,
}

/// The user properties Graph returns when there is no `$select`
/// (https://learn.microsoft.com/graph/api/user-list#response).
pub const USER_DEFAULT_PROPS: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// Typed user properties the sim knows by name.
pub const USER_KNOWN_PROPS: &[&str] = &[
    "id",
    "userPrincipalName",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "mobilePhone",
    "businessPhones",
    "jobTitle",
    "department",
    "officeLocation",
    "preferredLanguage",
    "userType",
    "accountEnabled",
];

fn opt_str(v: &Option<String>) -> Value {
    v.as_ref()
        .map(|s| Value::String(s.clone()))
        .unwrap_or(Value::Null)
}

impl User {
    /// Canonical spelling of a property name (Graph matches `$select` names case-insensitively).
    pub fn canonical_prop(name: &str) -> String {
        USER_KNOWN_PROPS
            .iter()
            .find(|p| p.eq_ignore_ascii_case(name))
            .map(|p| p.to_string())
            .unwrap_or_else(|| name.to_string())
    }

    /// The value of a property (`Null` when unset).
    pub fn get(&self, name: &str) -> Value {
        match name {
            "id" => Value::String(self.id.clone()),
            "userPrincipalName" => Value::String(self.user_principal_name.clone()),
            "displayName" => opt_str(&self.display_name),
            "givenName" => opt_str(&self.given_name),
            "surname" => opt_str(&self.surname),
            "mail" => opt_str(&self.mail),
            "mobilePhone" => opt_str(&self.mobile_phone),
            "businessPhones" => json!(self.business_phones),
            "jobTitle" => opt_str(&self.job_title),
            "department" => opt_str(&self.department),
            "officeLocation" => opt_str(&self.office_location),
            "preferredLanguage" => opt_str(&self.preferred_language),
            "userType" => Value::String(self.user_type.clone()),
            "accountEnabled" => Value::Bool(self.account_enabled),
            other => self.extra.get(other).cloned().unwrap_or(Value::Null),
        }
    }

    /// Sets a property from JSON; the error names what was wrong with the value.
    pub fn set(&mut self, name: &str, value: &Value) -> Result<(), String> {
        fn s(name: &str, v: &Value) -> Result<Option<String>, String> {
            match v {
                Value::Null => Ok(None),
                Value::String(x) => Ok(Some(x.clone())),
                _ => Err(format!("{name}: expected a string or null")),
            }
        }
        let name = Self::canonical_prop(name);
        match name.as_str() {
            "id" => return Err("id: is read-only".into()),
            "userPrincipalName" => match value {
                Value::String(x) if x.contains('@') && !x.starts_with('@') => {
                    self.user_principal_name = x.clone()
                }
                _ => return Err("userPrincipalName: expected a string like name@domain".into()),
            },
            "displayName" => self.display_name = s(&name, value)?,
            "givenName" => self.given_name = s(&name, value)?,
            "surname" => self.surname = s(&name, value)?,
            "mail" => self.mail = s(&name, value)?,
            "mobilePhone" => self.mobile_phone = s(&name, value)?,
            "jobTitle" => self.job_title = s(&name, value)?,
            "department" => self.department = s(&name, value)?,
            "officeLocation" => self.office_location = s(&name, value)?,
            "preferredLanguage" => self.preferred_language = s(&name, value)?,
            "businessPhones" => match value {
                Value::Null => self.business_phones.clear(),
                Value::Array(a) => {
                    let mut out = Vec::new();
                    for (i, v) in a.iter().enumerate() {
                        match v {
                            Value::String(x) => out.push(x.clone()),
                            _ => return Err(format!("businessPhones[{i}]: expected a string")),
                        }
                    }
                    self.business_phones = out;
                }
                _ => return Err("businessPhones: expected an array of strings".into()),
            },
            "userType" => match value.as_str() {
                Some(t @ ("Member" | "Guest")) => self.user_type = t.to_string(),
                _ => return Err("userType: expected \"Member\" or \"Guest\"".into()),
            },
            "accountEnabled" => match value {
                Value::Bool(b) => self.account_enabled = *b,
                _ => return Err("accountEnabled: expected true or false".into()),
            },
            "password" | "passwordProfile" => {
                let pw = value
                    .as_str()
                    .or_else(|| value.get("password").and_then(|p| p.as_str()));
                match pw {
                    Some(p) => self.password = Some(p.to_string()),
                    None => return Err(format!("{name}: expected a password string")),
                }
            }
            _ => {
                self.extra.insert(name, value.clone());
            }
        }
        Ok(())
    }

    /// Graph JSON with the given properties (all of them, `null` when unset).
    pub fn to_json(&self, props: &[String]) -> Map<String, Value> {
        let mut m = Map::new();
        for p in props {
            m.insert(p.clone(), self.get(p));
        }
        m
    }
}

/// A group; `members` holds user and group ids (nesting allowed).
#[derive(Clone, Debug, Default)]
pub struct Group {
    /// Object id.
    pub id: String,
    /// `displayName`.
    pub display_name: String,
    /// `description`.
    pub description: Option<String>,
    /// `mail`.
    pub mail: Option<String>,
    /// `mailNickname`.
    pub mail_nickname: Option<String>,
    /// `securityEnabled`.
    pub security_enabled: bool,
    /// `mailEnabled`.
    pub mail_enabled: bool,
    /// Direct member object ids (users or groups).
    pub members: Vec<String>,
}

impl Group {
    /// Graph JSON of the group.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("displayName".into(), json!(self.display_name));
        m.insert("description".into(), opt_str(&self.description));
        m.insert("mail".into(), opt_str(&self.mail));
        m.insert("mailNickname".into(), opt_str(&self.mail_nickname));
        m.insert("mailEnabled".into(), json!(self.mail_enabled));
        m.insert("securityEnabled".into(), json!(self.security_enabled));
        m.insert("groupTypes".into(), json!([]));
        m
    }
}

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

impl Contact {
    /// Graph JSON of the contact.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
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

/// One entry in the directory change log (users and groups).
#[derive(Clone, Debug)]
pub struct DirChange {
    /// Tenant-wide sequence number.
    pub seq: u64,
    /// Object id.
    pub id: String,
    /// Changed properties; `None` means "created" (all properties).
    pub props: Option<Vec<String>>,
    /// The object was deleted.
    pub removed: bool,
}

/// A message accepted by `sendMail`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SentMail {
    /// Sender user id.
    pub from_user_id: String,
    /// Sender UPN.
    pub from: String,
    /// The Graph `message` object as posted.
    pub message: Value,
    /// `saveToSentItems`.
    pub save_to_sent_items: bool,
    /// When it was accepted (RFC 3339).
    pub sent_at: String,
}

/// The change a Graph write made, for change notifications.
#[derive(Clone, Debug)]
pub struct ChangeEvent {
    /// Resource collection as subscribed (`users`, `groups`, `users/{id}/contacts`, `users/{id}/events`).
    pub collection: String,
    /// Changed object id.
    pub id: String,
    /// `created`, `updated` or `deleted`.
    pub change_type: &'static str,
    /// `Users/{id}`-style resource path for the notification.
    pub resource: String,
    /// `@odata.type` for resourceData.
    pub odata_type: &'static str,
}

/// The whole tenant.
#[derive(Debug, Default, Clone)]
pub struct Tenant {
    /// Tenant id (GUID).
    pub id: String,
    /// Primary domain, e.g. `contoso.example`.
    pub domain: String,
    /// Users by id (ordered, which gives stable paging).
    pub users: BTreeMap<String, User>,
    upn_index: HashMap<String, String>,
    /// Groups by id.
    pub groups: BTreeMap<String, Group>,
    /// Materialised mailboxes by user id.
    pub mailboxes: HashMap<String, Mailbox>,
    /// Seed of the generated organisation (mailboxes of generated users are derived from it).
    pub gen_seed: Option<u64>,
    /// Last issued change sequence number.
    pub seq: u64,
    /// Directory change log (users).
    pub user_log: Vec<DirChange>,
    /// Directory change log (groups).
    pub group_log: Vec<DirChange>,
    /// Outbox of `sendMail`.
    pub outbox: Vec<SentMail>,
    /// Random id of this tenant instance; delta tokens from another instance are invalid.
    pub instance: String,
    /// Change-notification subscriptions by id.
    pub subscriptions: BTreeMap<String, crate::graph::subscriptions::Subscription>,
    /// Graph runtime state shared across reseeds (settings, throttling counters).
    pub runtime: Arc<crate::graph::runtime::GraphRuntime>,
}

/// Tenant errors for write operations.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TenantError {
    /// No such object.
    #[error("{0}")]
    NotFound(String),
    /// Invalid input.
    #[error("{0}")]
    Invalid(String),
    /// Uniqueness violated.
    #[error("{0}")]
    Conflict(String),
}

/// Now as Graph formats timestamps.
pub fn now_str() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A new random object id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Tenant {
    /// An empty tenant.
    pub fn new(id: String, domain: String) -> Tenant {
        Tenant {
            id,
            domain,
            users: BTreeMap::new(),
            upn_index: HashMap::new(),
            groups: BTreeMap::new(),
            mailboxes: HashMap::new(),
            gen_seed: None,
            seq: 0,
            user_log: Vec::new(),
            group_log: Vec::new(),
            outbox: Vec::new(),
            instance: new_id()[..8].to_string(),
            subscriptions: BTreeMap::new(),
            runtime: Default::default(),
        }
    }

    /// Next change sequence number.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Finds a user by id or UPN (case-insensitive), as `/users/{id|upn}` does.
    pub fn find_user(&self, id_or_upn: &str) -> Option<&User> {
        let key = id_or_upn.to_ascii_lowercase();
        if let Some(u) = self.users.get(&key) {
            return Some(u);
        }
        self.upn_index.get(&key).and_then(|id| self.users.get(id))
    }

    /// Resolves an id or UPN to the user id.
    pub fn user_id(&self, id_or_upn: &str) -> Option<String> {
        self.find_user(id_or_upn).map(|u| u.id.clone())
    }

    /// The user whose UPN (or id) and password match, for the sign-in page. Disabled accounts fail.
    pub fn check_password(&self, login: &str, password: &str) -> Option<&User> {
        let u = self.find_user(login.trim())?;
        let ok = u.account_enabled
            && u.password
                .as_deref()
                .is_some_and(|p| constant_time_eq(p.as_bytes(), password.as_bytes()));
        ok.then_some(u)
    }

    /// Adds a user during seeding (no change log entry: the initial state has sequence 0).
    pub fn insert_user(&mut self, mut user: User) -> Result<(), TenantError> {
        user.id = user.id.to_ascii_lowercase();
        let upn = user.user_principal_name.to_ascii_lowercase();
        if self.users.contains_key(&user.id) {
            return Err(TenantError::Conflict(format!(
                "Another object with the same value for property id already exists: {}",
                user.id
            )));
        }
        if self.upn_index.contains_key(&upn) {
            return Err(TenantError::Conflict(format!(
                "Another object with the same value for property userPrincipalName already exists: {}",
                user.user_principal_name
            )));
        }
        self.upn_index.insert(upn, user.id.clone());
        self.users.insert(user.id.clone(), user);
        Ok(())
    }

    /// Creates a user through Graph (logged for delta).
    pub fn create_user(&mut self, user: User) -> Result<String, TenantError> {
        let id = user.id.to_ascii_lowercase();
        self.insert_user(user)?;
        let seq = self.next_seq();
        self.user_log.push(DirChange {
            seq,
            id: id.clone(),
            props: None,
            removed: false,
        });
        Ok(id)
    }

    /// Applies a PATCH to a user; returns the id. Only properties whose value changed are logged.
    pub fn update_user(
        &mut self,
        id_or_upn: &str,
        patch: &Map<String, Value>,
    ) -> Result<String, TenantError> {
        let id = self
            .user_id(id_or_upn)
            .ok_or_else(|| TenantError::NotFound(format!("Resource '{id_or_upn}' does not exist or one of its queried reference-property objects are not present.")))?;
        let mut user = self.users[&id].clone();
        let mut changed = Vec::new();
        for (k, v) in patch {
            let canon = User::canonical_prop(k);
            let before = user.get(&canon);
            user.set(k, v).map_err(TenantError::Invalid)?;
            if user.get(&canon) != before {
                changed.push(canon);
            }
        }
        let old_upn = self.users[&id].user_principal_name.to_ascii_lowercase();
        let new_upn = user.user_principal_name.to_ascii_lowercase();
        if old_upn != new_upn {
            if self.upn_index.contains_key(&new_upn) {
                return Err(TenantError::Conflict(format!(
                    "Another object with the same value for property userPrincipalName already exists: {}",
                    user.user_principal_name
                )));
            }
            self.upn_index.remove(&old_upn);
            self.upn_index.insert(new_upn, id.clone());
        }
        self.users.insert(id.clone(), user);
        if !changed.is_empty() {
            let seq = self.next_seq();
            self.user_log.push(DirChange {
                seq,
                id: id.clone(),
                props: Some(changed),
                removed: false,
            });
        }
        Ok(id)
    }

    /// Deletes a user (soft delete in Graph terms), removing it from groups.
    pub fn delete_user(&mut self, id_or_upn: &str) -> Result<String, TenantError> {
        let id = self
            .user_id(id_or_upn)
            .ok_or_else(|| TenantError::NotFound(format!("Resource '{id_or_upn}' does not exist or one of its queried reference-property objects are not present.")))?;
        let u = self.users.remove(&id).expect("resolved id exists");
        self.upn_index
            .remove(&u.user_principal_name.to_ascii_lowercase());
        self.mailboxes.remove(&id);
        let seq = self.next_seq();
        self.user_log.push(DirChange {
            seq,
            id: id.clone(),
            props: None,
            removed: true,
        });
        let gids: Vec<String> = self
            .groups
            .values()
            .filter(|g| g.members.contains(&id))
            .map(|g| g.id.clone())
            .collect();
        for gid in gids {
            let _ = self.remove_member(&gid, &id);
        }
        Ok(id)
    }

    /// Sets or clears a user's photo. Photos are not tracked by delta (graph-facts §5).
    pub fn set_photo(
        &mut self,
        id_or_upn: &str,
        photo: Option<Photo>,
    ) -> Result<String, TenantError> {
        let id = self
            .user_id(id_or_upn)
            .ok_or_else(|| TenantError::NotFound(format!("User '{id_or_upn}' not found")))?;
        self.users.get_mut(&id).expect("exists").photo = photo;
        Ok(id)
    }

    /// Adds a group during seeding.
    pub fn insert_group(&mut self, mut group: Group) {
        group.id = group.id.to_ascii_lowercase();
        self.groups.insert(group.id.clone(), group);
    }

    /// Adds a member (user or group) to a group.
    pub fn add_member(&mut self, group_id: &str, member_id: &str) -> Result<(), TenantError> {
        let member_id = member_id.to_ascii_lowercase();
        if !self.users.contains_key(&member_id) && !self.groups.contains_key(&member_id) {
            return Err(TenantError::NotFound(format!(
                "Resource '{member_id}' does not exist or one of its queried reference-property objects are not present."
            )));
        }
        let g = self
            .groups
            .get_mut(&group_id.to_ascii_lowercase())
            .ok_or_else(|| TenantError::NotFound(format!("Resource '{group_id}' does not exist or one of its queried reference-property objects are not present.")))?;
        if g.members.contains(&member_id) {
            return Err(TenantError::Invalid(
                "One or more added object references already exist for the following modified properties: 'members'.".into(),
            ));
        }
        g.members.push(member_id.clone());
        let gid = g.id.clone();
        self.log_group(gid, format!("+{member_id}"));
        Ok(())
    }

    /// Removes a member from a group.
    pub fn remove_member(&mut self, group_id: &str, member_id: &str) -> Result<(), TenantError> {
        let member_id = member_id.to_ascii_lowercase();
        let g = self
            .groups
            .get_mut(&group_id.to_ascii_lowercase())
            .ok_or_else(|| TenantError::NotFound(format!("Resource '{group_id}' does not exist or one of its queried reference-property objects are not present.")))?;
        let before = g.members.len();
        g.members.retain(|m| *m != member_id);
        if g.members.len() == before {
            return Err(TenantError::NotFound(format!(
                "Resource '{member_id}' does not exist or one of its queried reference-property objects are not present."
            )));
        }
        let gid = g.id.clone();
        self.log_group(gid, format!("-{member_id}"));
        Ok(())
    }

    /// Logs a membership change; `change` is `+{id}` (added) or `-{id}` (removed), which group
    /// delta reports as `members@delta`.
    fn log_group(&mut self, gid: String, change: String) {
        let seq = self.next_seq();
        self.group_log.push(DirChange {
            seq,
            id: gid,
            props: Some(vec!["members".into(), change]),
            removed: false,
        });
    }

    /// Members of a group, flattened through nested groups (each group reported once).
    pub fn transitive_members(&self, group_id: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![group_id.to_ascii_lowercase()];
        seen.insert(group_id.to_ascii_lowercase());
        while let Some(g) = stack.pop() {
            if let Some(group) = self.groups.get(&g) {
                for m in &group.members {
                    if seen.insert(m.clone()) {
                        out.push(m.clone());
                        if self.groups.contains_key(m) {
                            stack.push(m.clone());
                        }
                    }
                }
            }
        }
        out
    }

    /// The mailbox of a user, materialising a generated one on first write access.
    pub fn mailbox_mut(&mut self, user_id: &str) -> &mut Mailbox {
        if !self.mailboxes.contains_key(user_id) {
            let mb = self.initial_mailbox(user_id);
            self.mailboxes.insert(user_id.to_string(), mb);
        }
        self.mailboxes.get_mut(user_id).expect("inserted")
    }

    /// The mailbox of a user for reading (generated mailboxes are derived without storing them).
    pub fn mailbox(&self, user_id: &str) -> std::borrow::Cow<'_, Mailbox> {
        match self.mailboxes.get(user_id) {
            Some(m) => std::borrow::Cow::Borrowed(m),
            None => std::borrow::Cow::Owned(self.initial_mailbox(user_id)),
        }
    }

    fn initial_mailbox(&self, user_id: &str) -> Mailbox {
        let user = self.users.get(user_id);
        match (self.gen_seed, user.and_then(|u| u.gen_index)) {
            (Some(seed), Some(idx)) => {
                crate::seed::generate_mailbox(seed, idx, user.expect("some"))
            }
            _ => Mailbox::new(derived_id(user_id, "contacts")),
        }
    }

    /// Records a mailbox change in the log.
    pub fn log_mailbox(
        &mut self,
        user_id: &str,
        kind: ItemKind,
        id: &str,
        folder_id: &str,
        removed_event: Option<Event>,
        removed: bool,
    ) {
        let seq = self.next_seq();
        let mb = self.mailbox_mut(user_id);
        mb.log.push(MailboxChange {
            seq,
            kind,
            id: id.to_string(),
            folder_id: folder_id.to_string(),
            removed,
            removed_event,
        });
    }
}

/// A stable, id-shaped string derived from a parent id and a label (e.g. default folder ids).
pub fn derived_id(parent: &str, label: &str) -> String {
    let a = fnv32(parent.as_bytes());
    let b = fnv32(label.as_bytes());
    let c = fnv32(format!("{parent}/{label}").as_bytes());
    format!("AAMk{a:08x}{b:08x}{c:08x}")
}

/// Compares secrets without early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, upn: &str) -> User {
        User {
            id: id.into(),
            user_principal_name: upn.into(),
            user_type: "Member".into(),
            account_enabled: true,
            password: Some("pw".into()),
            ..Default::default()
        }
    }

    #[test]
    fn users_are_found_by_id_or_upn_case_insensitively() {
        let mut t = Tenant::new(new_id(), "x.example".into());
        t.insert_user(user("AB", "Ann@x.example")).unwrap();
        assert_eq!(t.find_user("ann@X.example").unwrap().id, "ab");
        assert!(t.check_password("ann@x.example", "pw").is_some());
        assert!(t.check_password("ann@x.example", "nope").is_none());
    }

    #[test]
    fn update_logs_only_changed_properties() {
        let mut t = Tenant::new(new_id(), "x.example".into());
        t.insert_user(user("a", "a@x.example")).unwrap();
        let mut patch = Map::new();
        patch.insert("jobTitle".into(), json!("Boss"));
        patch.insert("accountEnabled".into(), json!(true));
        t.update_user("a", &patch).unwrap();
        assert_eq!(
            t.user_log.last().unwrap().props,
            Some(vec!["jobTitle".to_string()])
        );
    }

    #[test]
    fn generated_png_has_its_size_in_the_header() {
        let p = Photo::generated(7);
        let bytes = p.bytes();
        assert_eq!(image_info(&bytes), Some(("image/png", 48, 48)));
        assert_eq!(Photo::generated(7).etag, p.etag);
    }
}
