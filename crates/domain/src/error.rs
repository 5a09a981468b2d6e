//! Validation errors: each one carries a sentence a person can act on.

/// Why a value was refused; `Display` is the human sentence shown in the API, console and CLI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// An extension number that is not a digit string of the allowed length.
    #[error("extension number '{value}' is not valid: use {min} to {max} digits (0-9) only")]
    ExtensionNumber {
        value: String,
        min: usize,
        max: usize,
    },
    /// An email address that cannot be one.
    #[error("'{0}' is not a valid email address (expected name@domain)")]
    Email(String),
    /// A GUID such as a client or tenant id in the wrong shape.
    #[error("'{value}' is not a valid {what}: expected a GUID like 00000000-0000-0000-0000-000000000000")]
    Guid { what: &'static str, value: String },
    /// A required field that was empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// A field longer than the store keeps.
    #[error("{field} is too long: at most {max} characters")]
    TooLong { field: &'static str, max: usize },
    /// An unknown profile name.
    #[error("'{0}' is not a profile: use available, away, dnd, lunch or business_trip")]
    Profile(String),
    /// A phone number with characters a phone cannot dial.
    #[error("'{0}' is not a phone number: use digits, spaces, + - ( ) / . only")]
    Phone(String),
    /// A time of day not in HH:MM form.
    #[error("'{0}' is not a time of day: use HH:MM, e.g. \"02:00\"")]
    TimeOfDay(String),
    /// A range whose start lies after its end.
    #[error("{what}: the start ({start}) must not be greater than the end ({end})")]
    Range {
        what: &'static str,
        start: String,
        end: String,
    },
    /// A field that a synced (Microsoft 365) record does not allow to change.
    #[error("{0} comes from Microsoft 365 and is read-only here; change it in Microsoft 365")]
    ReadOnlySynced(&'static str),
}

/// Checks that `value` holds at most `max` characters.
pub fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.chars().count() > max {
        Err(ValidationError::TooLong { field, max })
    } else {
        Ok(())
    }
}

/// Checks the simple shape of an email address (`local@domain.tld`, no spaces).
pub fn check_email(value: &str) -> Result<(), ValidationError> {
    let bad = || ValidationError::Email(value.to_string());
    let (local, domain) = value.split_once('@').ok_or_else(bad)?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && value.len() <= 320;
    if ok {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_shapes() {
        assert!(check_email("anna@contoso.com").is_ok());
        assert!(check_email("anna.b+x@sub.contoso.de").is_ok());
        for bad in [
            "",
            "anna",
            "anna@",
            "@contoso.com",
            "anna@contoso",
            "an na@contoso.com",
            "a@b@c.com",
        ] {
            let err = check_email(bad).unwrap_err();
            assert!(err.to_string().contains("not a valid email"), "{bad}");
        }
    }

    #[test]
    fn length_limit_names_the_field() {
        let err = check_len("display name", &"x".repeat(300), 256).unwrap_err();
        assert_eq!(
            err.to_string(),
            "display name is too long: at most 256 characters"
        );
    }
}
