//! Extensions: the PBX's users, local or synced from Microsoft 365.

use crate::error::{check_email, check_len, ValidationError};
use crate::profile::ProfileState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where an extension comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExtensionSource {
    /// Created in pbx365; fully editable.
    Local,
    /// Synced from Microsoft 365; directory fields are read-only.
    M365,
}

impl ExtensionSource {
    /// The stored text form (`local`/`m365`).
    pub fn as_str(self) -> &'static str {
        match self {
            ExtensionSource::Local => "local",
            ExtensionSource::M365 => "m365",
        }
    }

    /// Parses the stored text form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "local" => Some(ExtensionSource::Local),
            "m365" => Some(ExtensionSource::M365),
            _ => None,
        }
    }
}

/// How long extension numbers may be (digits). The PBX's dial plan decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberRules {
    /// Fewest digits.
    pub min_len: usize,
    /// Most digits.
    pub max_len: usize,
}

impl Default for NumberRules {
    fn default() -> Self {
        NumberRules {
            min_len: 2,
            max_len: 8,
        }
    }
}

/// An extension number: a digit string of a configured length range.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct ExtensionNumber(String);

impl ExtensionNumber {
    /// Parses and validates a number against `rules`.
    pub fn parse(value: &str, rules: NumberRules) -> Result<Self, ValidationError> {
        let ok = (rules.min_len..=rules.max_len).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(ExtensionNumber(value.to_string()))
        } else {
            Err(ValidationError::ExtensionNumber {
                value: value.chars().take(40).collect(),
                min: rules.min_len,
                max: rules.max_len,
            })
        }
    }

    /// Wraps a number already validated (e.g. read back from the store).
    pub fn from_trusted(value: String) -> Self {
        ExtensionNumber(value)
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number as an integer, for range arithmetic.
    pub fn value(&self) -> u64 {
        self.0.parse().unwrap_or(0)
    }
}

impl fmt::Display for ExtensionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored photo: what the store keeps about it (the bytes live beside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PhotoRef {
    /// Microsoft's `@odata.mediaEtag`, so unchanged photos are not downloaded again.
    pub etag: String,
    /// e.g. `image/jpeg`.
    pub content_type: String,
}

/// An extension as the directory holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Extension {
    /// The dialable number; the primary key.
    pub number: ExtensionNumber,
    /// Given name.
    pub first_name: String,
    /// Surname.
    pub last_name: String,
    /// Name shown on phones and in the directory.
    pub display_name: String,
    /// Mail address (Microsoft `mail`, else the UPN).
    pub email: Option<String>,
    /// Mobile number as written.
    pub mobile: Option<String>,
    /// Number presented on outbound calls (office phone when that option is on).
    pub outbound_caller_id: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Job title.
    pub job_title: Option<String>,
    /// Office location.
    pub office: Option<String>,
    /// A disabled extension cannot register or be rung.
    pub enabled: bool,
    /// Local or synced from Microsoft 365.
    pub source: ExtensionSource,
    /// Microsoft object id (`user.id`): the link that survives renames of mail and UPN.
    pub m365_id: Option<String>,
    /// Photo metadata, when a photo is stored.
    pub photo: Option<PhotoRef>,
    /// May sign in to the management console.
    pub is_admin: bool,
    /// Names of the extension groups it belongs to.
    pub groups: Vec<String>,
    /// Current status and who set it.
    pub profile: ProfileState,
    /// When sync disabled it (a deleted/disabled/out-of-scope user); deleted after the grace period.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The fields of an extension that a person or the sync provides.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewExtension {
    /// Given name.
    #[serde(default)]
    pub first_name: String,
    /// Surname.
    #[serde(default)]
    pub last_name: String,
    /// Shown name; derived from first and last name when empty.
    #[serde(default)]
    pub display_name: String,
    /// Mail address.
    pub email: Option<String>,
    /// Mobile number.
    pub mobile: Option<String>,
    /// Outbound caller ID.
    pub outbound_caller_id: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Job title.
    pub job_title: Option<String>,
    /// Office location.
    pub office: Option<String>,
}

/// Longest text field the directory keeps.
pub const MAX_FIELD_LEN: usize = 256;

impl NewExtension {
    /// Trims fields, fills the display name and checks every field; the error names the field.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        fn clean(v: &mut Option<String>) {
            if let Some(s) = v {
                let t = s.trim();
                *v = if t.is_empty() {
                    None
                } else {
                    Some(t.to_string())
                };
            }
        }
        self.first_name = self.first_name.trim().to_string();
        self.last_name = self.last_name.trim().to_string();
        self.display_name = self.display_name.trim().to_string();
        for v in [
            &mut self.email,
            &mut self.mobile,
            &mut self.outbound_caller_id,
            &mut self.department,
            &mut self.job_title,
            &mut self.office,
        ] {
            clean(v);
        }
        if self.display_name.is_empty() {
            self.display_name = format!("{} {}", self.first_name, self.last_name)
                .trim()
                .to_string();
        }
        if self.display_name.is_empty() {
            return Err(ValidationError::Empty("display name (or first/last name)"));
        }
        check_len("first name", &self.first_name, MAX_FIELD_LEN)?;
        check_len("last name", &self.last_name, MAX_FIELD_LEN)?;
        check_len("display name", &self.display_name, MAX_FIELD_LEN)?;
        for (field, v) in [
            ("department", &self.department),
            ("job title", &self.job_title),
            ("office", &self.office),
        ] {
            if let Some(v) = v {
                check_len(field, v, MAX_FIELD_LEN)?;
            }
        }
        if let Some(e) = &self.email {
            check_email(e)?;
        }
        for v in [&self.mobile, &self.outbound_caller_id]
            .into_iter()
            .flatten()
        {
            crate::phonebook::check_dialable(v)?;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_digit_strings_within_the_length_range() {
        let rules = NumberRules {
            min_len: 3,
            max_len: 5,
        };
        assert!(ExtensionNumber::parse("100", rules).is_ok());
        assert!(ExtensionNumber::parse("99999", rules).is_ok());
        for bad in ["10", "123456", "10a", " 100", "", "+100"] {
            let err = ExtensionNumber::parse(bad, rules).unwrap_err();
            assert!(err.to_string().contains("use 3 to 5 digits"), "{bad}");
        }
    }

    #[test]
    fn display_name_is_derived_and_fields_trimmed() {
        let e = NewExtension {
            first_name: " Anna ".into(),
            last_name: "Berg".into(),
            email: Some("  ".into()),
            ..Default::default()
        }
        .validated()
        .unwrap();
        assert_eq!(e.display_name, "Anna Berg");
        assert_eq!(e.email, None);
    }

    #[test]
    fn a_nameless_extension_is_refused() {
        let err = NewExtension::default().validated().unwrap_err();
        assert!(err.to_string().contains("display name"));
    }

    #[test]
    fn bad_email_is_refused() {
        let err = NewExtension {
            display_name: "X".into(),
            email: Some("nope".into()),
            ..Default::default()
        }
        .validated()
        .unwrap_err();
        assert!(matches!(err, ValidationError::Email(_)));
    }
}
