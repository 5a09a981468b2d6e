//! GUIDs as Microsoft uses them: object ids, tenant ids, client ids.

use crate::ValidationError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A GUID in canonical lower-case 8-4-4-4-12 form.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct Guid(String);

impl Guid {
    /// Parses a GUID, naming `what` (e.g. "Application (client) ID") in the error sentence.
    pub fn parse(what: &'static str, value: &str) -> Result<Self, ValidationError> {
        let trimmed = value.trim().trim_start_matches('{').trim_end_matches('}');
        uuid::Uuid::parse_str(trimmed)
            .ok()
            .filter(|_| trimmed.len() == 36)
            .map(|u| Guid(u.hyphenated().to_string()))
            .ok_or_else(|| ValidationError::Guid {
                what,
                value: value.to_string(),
            })
    }

    /// A fresh random GUID.
    pub fn new_random() -> Self {
        Guid(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    /// The canonical text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Guid {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Guid::parse("GUID", &value)
    }
}

impl From<Guid> for String {
    fn from(g: Guid) -> String {
        g.0
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_canonical_and_braced_guids_in_any_case() {
        let g = Guid::parse("client id", "{6731DE76-14A6-49AE-97BC-6EBA6914391E}").unwrap();
        assert_eq!(g.as_str(), "6731de76-14a6-49ae-97bc-6eba6914391e");
    }

    #[test]
    fn refuses_non_guids_with_a_sentence_naming_the_field() {
        for bad in [
            "",
            "abc",
            "6731de7614a649ae97bc6eba6914391e",
            "6731de76-14a6-49ae-97bc-6eba6914391",
        ] {
            let err = Guid::parse("Application (client) ID", bad).unwrap_err();
            assert!(
                err.to_string()
                    .contains("not a valid Application (client) ID"),
                "{bad}: {err}"
            );
        }
    }
}
