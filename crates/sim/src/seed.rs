//! Seed JSON loading (`--seed FILE`, `POST /_sim/seed`); the deterministic `--users N`
//! generator lives in [`crate::tenant::generate`].
//!
//! Seed format (issue 3): `{"tenant": {"id", "domain"}, "users": [Graph user + "password" +
//! "photo" (base64)], "groups": [{"id", "displayName", "members": [ids]}], "contacts":
//! {"<user id|upn>": [Graph contact + optional "parentFolder"]}, "events": {"<user id|upn>":
//! [Graph event]}}`. Every refusal names the JSON path of the problem, e.g.
//! `users[3].id: not a GUID`.

use base64::Engine;
use serde_json::{Map, Value};

use crate::tenant::{
    derived_id, fill_organizer, generate, normalize_event, now_str, Contact, ContactFolder, Event,
    Group, Mailbox, Photo, Tenant, User,
};
use crate::SimConfig;

/// A seed that could not be loaded; the message names the JSON path of the problem.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SeedError(pub String);

fn err(path: &str, msg: impl std::fmt::Display) -> SeedError {
    SeedError(format!("{path}: {msg}"))
}

/// Builds the tenant from `config.users` (generated first) and `config.seed` (applied on top).
pub fn build_tenant(
    config: &SimConfig,
    tenant_id: &str,
    domain: &str,
) -> Result<Tenant, SeedError> {
    let mut t = Tenant::new(tenant_id.to_ascii_lowercase(), domain.to_string());
    if config.users > 0 {
        generate(&mut t, config.users, config.rng_seed);
    }
    if let Some(seed) = &config.seed {
        load_seed(&mut t, seed)?;
    }
    Ok(t)
}

/// True for a GUID in the 8-4-4-4-12 form.
pub fn is_guid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok()
}

/// Validates the seed's `tenant` block without applying it (the caller picks id and domain).
pub fn seed_tenant(seed: &Value) -> Result<(Option<String>, Option<String>), SeedError> {
    let Some(t) = seed.get("tenant") else {
        return Ok((None, None));
    };
    let t = t
        .as_object()
        .ok_or_else(|| err("tenant", "expected an object"))?;
    let id = match t.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if is_guid(s) => Some(s.to_ascii_lowercase()),
        Some(_) => return Err(err("tenant.id", "not a GUID")),
    };
    let domain = match t.get("domain") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.contains('.') && !s.contains('@') => Some(s.clone()),
        Some(_) => {
            return Err(err(
                "tenant.domain",
                "expected a domain name such as contoso.example",
            ))
        }
    };
    Ok((id, domain))
}

/// Applies a seed on top of `t` (validating everything first, so a bad seed changes nothing).
pub fn load_seed(t: &mut Tenant, seed: &Value) -> Result<(), SeedError> {
    let root = seed
        .as_object()
        .ok_or_else(|| SeedError("$: the seed must be a JSON object".into()))?;
    for key in root.keys() {
        if !["tenant", "users", "groups", "contacts", "events"].contains(&key.as_str()) {
            return Err(err(
                key,
                "unknown key (expected tenant, users, groups, contacts, events)",
            ));
        }
    }
    seed_tenant(seed)?;
    // Work on a copy so a failure loses nothing.
    let mut work = t.clone();
    apply(&mut work, root)?;
    *t = work;
    Ok(())
}

fn apply(t: &mut Tenant, root: &Map<String, Value>) -> Result<(), SeedError> {
    let empty = Vec::new();
    let users = match root.get("users") {
        None => &empty,
        Some(Value::Array(a)) => a,
        Some(_) => return Err(err("users", "expected an array")),
    };
    for (i, u) in users.iter().enumerate() {
        let path = format!("users[{i}]");
        let user = parse_user(u, &path, &t.domain)?;
        t.insert_user(user).map_err(|e| err(&path, e))?;
    }
    let groups = match root.get("groups") {
        None => &empty,
        Some(Value::Array(a)) => a,
        Some(_) => return Err(err("groups", "expected an array")),
    };
    // Groups first without members, so members may name groups defined later.
    let mut pending = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let path = format!("groups[{i}]");
        let o = g
            .as_object()
            .ok_or_else(|| err(&path, "expected an object"))?;
        let id = match o.get("id") {
            None => crate::tenant::new_id(),
            Some(Value::String(s)) if is_guid(s) => s.to_ascii_lowercase(),
            Some(_) => return Err(err(&format!("{path}.id"), "not a GUID")),
        };
        if t.groups.contains_key(&id) || t.users.contains_key(&id) {
            return Err(err(
                &format!("{path}.id"),
                format!("duplicate object id {id}"),
            ));
        }
        let display_name = o
            .get("displayName")
            .and_then(|v| v.as_str())
            .ok_or_else(|| err(&format!("{path}.displayName"), "required string"))?;
        let opt = |k: &str| -> Result<Option<String>, SeedError> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(err(&format!("{path}.{k}"), "expected a string")),
            }
        };
        let group = Group {
            id: id.clone(),
            display_name: display_name.to_string(),
            description: opt("description")?,
            mail: opt("mail")?,
            mail_nickname: opt("mailNickname")?,
            security_enabled: o
                .get("securityEnabled")
                .and_then(|v| v.as_bool())
                .unwrap_or(true),
            mail_enabled: o
                .get("mailEnabled")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            members: Vec::new(),
        };
        t.insert_group(group);
        pending.push((path, id, o.get("members").cloned()));
    }
    for (path, id, members) in pending {
        let members = match members {
            None => continue,
            Some(Value::Array(a)) => a,
            Some(_) => return Err(err(&format!("{path}.members"), "expected an array of ids")),
        };
        for (j, m) in members.iter().enumerate() {
            let mpath = format!("{path}.members[{j}]");
            let m = m
                .as_str()
                .ok_or_else(|| err(&mpath, "expected a user or group id"))?;
            let mid = t
                .user_id(m)
                .or_else(|| {
                    t.groups
                        .contains_key(&m.to_ascii_lowercase())
                        .then(|| m.to_ascii_lowercase())
                })
                .ok_or_else(|| err(&mpath, format!("no user or group with id or UPN '{m}'")))?;
            let g = t.groups.get_mut(&id).expect("inserted");
            if !g.members.contains(&mid) {
                g.members.push(mid);
            }
        }
    }
    if let Some(c) = root.get("contacts") {
        let c = c
            .as_object()
            .ok_or_else(|| err("contacts", "expected an object keyed by user id or UPN"))?;
        for (owner, list) in c {
            let opath = format!("contacts[\"{owner}\"]");
            let uid = t
                .user_id(owner)
                .ok_or_else(|| err(&opath, format!("no user with id or UPN '{owner}'")))?;
            let list = list
                .as_array()
                .ok_or_else(|| err(&opath, "expected an array of contacts"))?;
            for (i, contact) in list.iter().enumerate() {
                let path = format!("{opath}[{i}]");
                let o = contact
                    .as_object()
                    .ok_or_else(|| err(&path, "expected an object"))?;
                let mut props = o.clone();
                let folder_name = match props.remove("parentFolder") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) if !s.trim().is_empty() => Some(s),
                    Some(_) => {
                        return Err(err(
                            &format!("{path}.parentFolder"),
                            "expected a folder name",
                        ))
                    }
                };
                let id = match props.remove("id") {
                    None => derived_id(&uid, &format!("seed-contact-{i}")),
                    Some(Value::String(s)) if !s.is_empty() => s,
                    Some(_) => return Err(err(&format!("{path}.id"), "expected a string")),
                };
                validate_contact(&props, &path)?;
                let mb = t.mailbox_mut(&uid);
                if mb.contacts.contains_key(&id) {
                    return Err(err(
                        &format!("{path}.id"),
                        format!("duplicate contact id {id}"),
                    ));
                }
                let folder_id = match folder_name {
                    None => mb.default_folder_id.clone(),
                    Some(name) => folder_by_name(mb, &uid, &name),
                };
                let now = now_str();
                mb.contacts.insert(
                    id.clone(),
                    Contact {
                        id,
                        folder_id,
                        props,
                        created: now.clone(),
                        modified: now,
                        change_key: "seed".into(),
                    },
                );
            }
        }
    }
    if let Some(e) = root.get("events") {
        let e = e
            .as_object()
            .ok_or_else(|| err("events", "expected an object keyed by user id or UPN"))?;
        for (owner, list) in e {
            let opath = format!("events[\"{owner}\"]");
            let uid = t
                .user_id(owner)
                .ok_or_else(|| err(&opath, format!("no user with id or UPN '{owner}'")))?;
            let list = list
                .as_array()
                .ok_or_else(|| err(&opath, "expected an array of events"))?;
            for (i, ev) in list.iter().enumerate() {
                let path = format!("{opath}[{i}]");
                let o = ev
                    .as_object()
                    .ok_or_else(|| err(&path, "expected an object"))?;
                let mut props = o.clone();
                let id = match props.remove("id") {
                    None => derived_id(&uid, &format!("seed-event-{i}")),
                    Some(Value::String(s)) if !s.is_empty() => s,
                    Some(_) => return Err(err(&format!("{path}.id"), "expected a string")),
                };
                normalize_event(&mut props)
                    .map_err(|(field, msg)| err(&format!("{path}.{field}"), msg))?;
                if let Some(owner) = t.users.get(&uid) {
                    fill_organizer(&mut props, owner);
                }
                let now = now_str();
                t.mailbox_mut(&uid).events.insert(
                    id.clone(),
                    Event {
                        id,
                        props,
                        created: now.clone(),
                        modified: now,
                        change_key: "seed".into(),
                    },
                );
            }
        }
    }
    Ok(())
}

/// The id of the child folder `name` of the default folder, creating it if needed.
fn folder_by_name(mb: &mut Mailbox, uid: &str, name: &str) -> String {
    if let Some(f) = mb.folders.iter().find(|f| f.display_name == name) {
        return f.id.clone();
    }
    let id = derived_id(uid, &format!("folder-{name}"));
    mb.folders.push(ContactFolder {
        id: id.clone(),
        display_name: name.to_string(),
        parent_folder_id: mb.default_folder_id.clone(),
    });
    id
}

/// Type checks of the contact properties a PBX reads; the error names the field.
pub fn validate_contact(props: &Map<String, Value>, path: &str) -> Result<(), SeedError> {
    for k in [
        "displayName",
        "givenName",
        "surname",
        "mobilePhone",
        "companyName",
        "jobTitle",
    ] {
        if let Some(v) = props.get(k) {
            if !(v.is_string() || v.is_null()) {
                return Err(err(&format!("{path}.{k}"), "expected a string"));
            }
        }
    }
    for k in ["businessPhones", "homePhones"] {
        if let Some(v) = props.get(k) {
            let ok = v.is_null()
                || v.as_array()
                    .is_some_and(|a| a.iter().all(|x| x.is_string()));
            if !ok {
                return Err(err(&format!("{path}.{k}"), "expected an array of strings"));
            }
        }
    }
    if let Some(v) = props.get("emailAddresses") {
        let a = v
            .as_array()
            .ok_or_else(|| err(&format!("{path}.emailAddresses"), "expected an array"))?;
        for (i, e) in a.iter().enumerate() {
            if !e.get("address").is_some_and(|a| a.is_string()) {
                return Err(err(
                    &format!("{path}.emailAddresses[{i}].address"),
                    "expected a string",
                ));
            }
        }
    }
    Ok(())
}

fn parse_user(u: &Value, path: &str, domain: &str) -> Result<User, SeedError> {
    let o = u
        .as_object()
        .ok_or_else(|| err(path, "expected an object"))?;
    let id = match o.get("id") {
        None => crate::tenant::new_id(),
        Some(Value::String(s)) if is_guid(s) => s.to_ascii_lowercase(),
        Some(_) => return Err(err(&format!("{path}.id"), "not a GUID")),
    };
    let mut user = User {
        id,
        user_type: "Member".into(),
        account_enabled: true,
        ..Default::default()
    };
    for (k, v) in o {
        let kpath = format!("{path}.{k}");
        match k.as_str() {
            "id" => {}
            "photo" => {
                let b64 = v
                    .as_str()
                    .ok_or_else(|| err(&kpath, "expected base64 PNG or JPEG"))?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| err(&kpath, "not valid base64"))?;
                user.photo = Some(
                    Photo::from_bytes(bytes)
                        .ok_or_else(|| err(&kpath, "not a PNG or JPEG image"))?,
                );
            }
            "password" => {
                user.password = Some(
                    v.as_str()
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| err(&kpath, "expected a non-empty string"))?
                        .to_string(),
                )
            }
            _ => user.set(k, v).map_err(|m| {
                // `set` messages start with the property name; prefix the full path.
                let msg = m.split_once(": ").map(|(_, r)| r.to_string()).unwrap_or(m);
                err(&kpath, msg)
            })?,
        }
    }
    if user.user_principal_name.is_empty() {
        // Derive one from mailNickname or mail, as the portal would require one.
        let local = o
            .get("mailNickname")
            .and_then(|v| v.as_str())
            .or_else(|| user.mail.as_deref().and_then(|m| m.split('@').next()))
            .ok_or_else(|| {
                err(
                    &format!("{path}.userPrincipalName"),
                    "required (name@domain)",
                )
            })?;
        user.user_principal_name = format!("{local}@{domain}");
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tenant() -> Tenant {
        Tenant::new(crate::tenant::new_id(), "contoso.example".into())
    }

    #[test]
    fn bad_seed_names_the_json_path() {
        let mut t = tenant();
        let seed = json!({"users": [{"userPrincipalName": "a@contoso.example"}, {"id": "nope", "userPrincipalName": "b@contoso.example"}]});
        let e = load_seed(&mut t, &seed).unwrap_err();
        assert_eq!(e.to_string(), "users[1].id: not a GUID");
        assert!(t.users.is_empty(), "a refused seed changes nothing");
        let seed =
            json!({"users": [{"userPrincipalName": "a@contoso.example", "accountEnabled": "yes"}]});
        assert_eq!(
            load_seed(&mut t, &seed).unwrap_err().to_string(),
            "users[0].accountEnabled: expected true or false"
        );
        let seed = json!({"groups": [{"displayName": "G", "members": ["x@contoso.example"]}]});
        assert_eq!(
            load_seed(&mut t, &seed).unwrap_err().to_string(),
            "groups[0].members[0]: no user or group with id or UPN 'x@contoso.example'"
        );
    }

    #[test]
    fn seed_loads_users_groups_contacts_and_events() {
        let mut t = tenant();
        let seed = json!({
            "users": [{"id": "11111111-1111-1111-1111-111111111111", "userPrincipalName": "ann@contoso.example", "displayName": "Ann", "password": "pw"}],
            "groups": [{"id": "22222222-2222-2222-2222-222222222222", "displayName": "G", "members": ["ann@contoso.example"]}],
            "contacts": {"ann@contoso.example": [{"displayName": "Bob", "parentFolder": "Friends"}, {"displayName": "Carl"}]},
            "events": {"ann@contoso.example": [{"subject": "x", "start": {"dateTime": "2025-01-01T10:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2025-01-01T11:00:00", "timeZone": "UTC"}}]}
        });
        load_seed(&mut t, &seed).unwrap();
        let mb = t.mailbox("11111111-1111-1111-1111-111111111111");
        assert_eq!(mb.contacts.len(), 2);
        assert_eq!(mb.folders[0].display_name, "Friends");
        assert_eq!(mb.events.len(), 1);
        assert!(t.check_password("ann@contoso.example", "pw").is_some());
    }
}
