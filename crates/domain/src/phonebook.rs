//! Phonebooks: the company phonebook and each extension's personal one.

use crate::ValidationError;
use serde::{Deserialize, Serialize};

/// Whose phonebook an entry is in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", content = "extension", rename_all = "snake_case")]
pub enum PhonebookOwner {
    /// Shared by everyone.
    Company,
    /// One extension's own (its Outlook contacts).
    Personal(String),
}

/// The kind of a phone number on an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PhoneKind {
    /// Office.
    Business,
    /// Mobile.
    Mobile,
    /// Home.
    Home,
    /// Anything else.
    Other,
}

/// One number on an entry: as written, and in E.164 when it could be normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PhoneNumber {
    /// Kind.
    pub kind: PhoneKind,
    /// As the person wrote it.
    pub raw: String,
    /// Normalised, for click-to-call and caller-name lookup.
    pub e164: Option<String>,
}

impl PhoneNumber {
    /// Builds a number, normalising it to E.164 with `default_country` (ISO 3166 alpha-2) for
    /// numbers written without a country code.
    pub fn new(kind: PhoneKind, raw: &str, default_country: &str) -> Self {
        PhoneNumber {
            kind,
            raw: raw.trim().to_string(),
            e164: to_e164(raw, default_country),
        }
    }
}

/// Normalises a number to E.164, or `None` when it is not a valid number.
pub fn to_e164(raw: &str, default_country: &str) -> Option<String> {
    let country = default_country
        .to_ascii_uppercase()
        .parse::<phonenumber::country::Id>()
        .ok();
    let parsed = phonenumber::parse(country, raw.trim()).ok()?;
    if !phonenumber::is_valid(&parsed) {
        return None;
    }
    Some(parsed.format().mode(phonenumber::Mode::E164).to_string())
}

/// The forms, digits with `+` kept, in which a number with this E.164 value may be written in a
/// directory field: `+4930123`, `004930123`, `01149…`, `4930123` and the national form with
/// its trunk prefix (`030123` in Germany). A lookup reads these few forms by index and then checks
/// each hit with [`to_e164`]; empty when `e164` is not a valid number.
pub fn dial_forms(e164: &str) -> Vec<String> {
    let Ok(parsed) = phonenumber::parse(None, e164) else {
        return Vec::new();
    };
    let international: String = e164.chars().filter(char::is_ascii_digit).collect();
    let national: String = parsed
        .format()
        .mode(phonenumber::Mode::National)
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let mut forms = vec![
        format!("+{international}"),
        format!("00{international}"),
        format!("011{international}"),
        international,
        national,
    ];
    forms.retain(|f| f.len() > 2);
    forms.dedup();
    forms
}

/// Where a caller's name was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallerSource {
    /// The called extension's personal phonebook.
    Personal,
    /// The company phonebook.
    Company,
    /// An extension (its number, mobile or outbound caller ID).
    Extension,
}

/// The answer of a caller-name lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallerName {
    /// The number as asked.
    pub number: String,
    /// It in E.164, when it is a valid number (normalised with `contacts.default_country`).
    pub e164: Option<String>,
    /// The name to show.
    pub name: String,
    /// Which directory had it.
    pub source: CallerSource,
    /// The phonebook entry (personal or company).
    pub entry_id: Option<String>,
    /// The extension: the one found (source `extension`).
    pub extension: Option<String>,
    /// The entry's company.
    pub company: Option<String>,
    /// Which of the entry's numbers matched.
    pub kind: Option<PhoneKind>,
}

/// Whether `code` is a country (ISO 3166 alpha-2) numbers can be normalised with.
pub fn is_known_country(code: &str) -> bool {
    code.len() == 2
        && code
            .to_ascii_uppercase()
            .parse::<phonenumber::country::Id>()
            .is_ok()
}

/// Checks that a number holds only what a phone can dial or a person writes around it.
pub fn check_dialable(raw: &str) -> Result<(), ValidationError> {
    let ok = !raw.trim().is_empty()
        && raw.len() <= 64
        && raw.chars().any(|c| c.is_ascii_digit())
        && raw
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()/.*#".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::Phone(raw.chars().take(40).collect()))
    }
}

/// An entry in a phonebook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PhonebookEntry {
    /// Stable id within pbx365.
    pub id: String,
    /// Which phonebook.
    pub owner: PhonebookOwner,
    /// Microsoft contact id for synced entries (read-only in pbx365); `None` for local ones.
    pub m365_id: Option<String>,
    /// Name shown.
    pub display_name: String,
    /// Given name.
    pub first_name: String,
    /// Surname.
    pub last_name: String,
    /// Company.
    pub company: Option<String>,
    /// Mail addresses.
    pub emails: Vec<String>,
    /// Phone numbers, several per entry.
    pub numbers: Vec<PhoneNumber>,
    /// Job title.
    #[serde(default)]
    pub job_title: Option<String>,
    /// Where a synced entry comes from: its mailbox (tags company entries with their shared
    /// mailbox); `None` for local entries.
    #[serde(default)]
    pub mailbox: Option<String>,
    /// Flagged: the entry has no phone number (kept, but nothing can dial it).
    #[serde(default)]
    pub no_number: bool,
}

impl PhonebookEntry {
    /// Sets the no-number flag from the numbers.
    pub fn flag(mut self) -> Self {
        self.no_number = self.numbers.is_empty();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_normalised_with_the_default_country() {
        assert_eq!(
            to_e164("030 1234567", "DE").as_deref(),
            Some("+49301234567")
        );
        assert_eq!(
            to_e164("+1 (425) 555-0100", "DE").as_deref(),
            Some("+14255550100")
        );
        assert_eq!(to_e164("hello", "DE"), None);
    }

    #[test]
    fn a_number_is_looked_up_in_the_forms_people_write_it() {
        let forms = dial_forms("+49301234567");
        for f in ["+49301234567", "0049301234567", "49301234567", "0301234567"] {
            assert!(forms.contains(&f.to_string()), "{f} missing from {forms:?}");
        }
        assert!(dial_forms("+14255550100").contains(&"4255550100".to_string()));
        assert!(dial_forms("nonsense").is_empty());
    }

    #[test]
    fn dialable_check() {
        assert!(check_dialable("+49 (30) 123-45").is_ok());
        assert!(check_dialable("call me").is_err());
        assert!(check_dialable("").is_err());
    }
}
