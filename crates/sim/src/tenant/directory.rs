//! Directory objects: users (with their Graph properties) and groups.

use serde_json::{json, Map, Value};

use super::Photo;

/// Password given to every generated user (so `pbx365 demo` can print sign-in names).
pub const GENERATED_PASSWORD: &str = "Sim-Passw0rd!";

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
