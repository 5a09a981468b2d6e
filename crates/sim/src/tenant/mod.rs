//! The simulated tenant's data: users, groups, photos, mailboxes (contacts, contact folders,
//! events), the sent-mail outbox, and the change logs that delta queries read.
//!
//! Everything here is plain data plus bookkeeping: these modules import nothing from
//! `crate::graph`, `crate::identity` or `crate::control` (only `crate::tz`); the handlers depend
//! on them, never the other way round. HTTP shapes live in `crate::graph`.

mod calendar;
mod directory;
pub mod generate;
mod mailbox;
mod photo;
mod subscription;

use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

pub use calendar::{fill_organizer, instances, normalize_event, parse_dtz, FieldError, Instance};
pub use directory::{Group, User, GENERATED_PASSWORD, USER_DEFAULT_PROPS, USER_KNOWN_PROPS};
pub use generate::{generate, generate_mailbox, RECEPTION_INDEX};
pub use mailbox::{merge_props, Contact, ContactFolder, Event, ItemKind, Mailbox, MailboxChange};
pub use photo::{
    fnv32, image_info, render_png, render_png_sized, Photo, PhotoData, GENERATED_PHOTO_SIZE,
    PHOTO_SIZES,
};
pub use subscription::Subscription;

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
    pub subscriptions: BTreeMap<String, Subscription>,
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

/// A new `changeKey` for an Outlook item (changes on every write).
pub fn new_change_key() -> String {
    new_id()[..8].to_string()
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
            (Some(seed), Some(idx)) => generate_mailbox(seed, idx, user.expect("some")),
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
    use serde_json::json;

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
        assert_eq!(
            image_info(&bytes),
            Some(("image/png", GENERATED_PHOTO_SIZE, GENERATED_PHOTO_SIZE))
        );
        assert_eq!(image_info(&p.bytes_at(48)), Some(("image/png", 48, 48)));
        assert_eq!(Photo::generated(7).etag, p.etag);
    }
}
