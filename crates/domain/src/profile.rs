//! Profiles (statuses) of an extension and who set them.

use crate::ValidationError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The status of an extension, which decides how calls to it are handled.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Reachable.
    #[default]
    Available,
    /// Away (also Outlook "Out of office").
    Away,
    /// Do Not Disturb (also Outlook "Busy").
    Dnd,
    /// At lunch.
    Lunch,
    /// "Business Trip / Holiday": calendar information is ignored while it is set.
    BusinessTrip,
}

impl Profile {
    /// Every profile, in the order the console lists them.
    pub const ALL: [Profile; 5] = [
        Profile::Available,
        Profile::Away,
        Profile::Dnd,
        Profile::Lunch,
        Profile::BusinessTrip,
    ];

    /// The stored and API text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Available => "available",
            Profile::Away => "away",
            Profile::Dnd => "dnd",
            Profile::Lunch => "lunch",
            Profile::BusinessTrip => "business_trip",
        }
    }

    /// The label a person reads.
    pub fn label(self) -> &'static str {
        match self {
            Profile::Available => "Available",
            Profile::Away => "Away",
            Profile::Dnd => "Do Not Disturb",
            Profile::Lunch => "Lunch",
            Profile::BusinessTrip => "Business Trip / Holiday",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Profile {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| ValidationError::Profile(s.chars().take(40).collect()))
    }
}

/// Who set the current profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProfileSource {
    /// A person (phone, web client, console, API).
    #[default]
    Manual,
    /// The Outlook calendar.
    Calendar,
}

impl ProfileSource {
    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileSource::Manual => "manual",
            ProfileSource::Calendar => "calendar",
        }
    }

    /// Parses the stored text form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "manual" => Some(ProfileSource::Manual),
            "calendar" => Some(ProfileSource::Calendar),
            _ => None,
        }
    }
}

/// The profile of an extension with its origin and, when the calendar set it, what to return to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProfileState {
    /// Current profile.
    pub profile: Profile,
    /// Who set it.
    pub source: ProfileSource,
    /// When a calendar-set profile ends.
    pub until: Option<DateTime<Utc>>,
    /// The profile to restore when the calendar entry ends.
    pub return_to: Option<Profile>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_round_trip_through_text() {
        for p in Profile::ALL {
            assert_eq!(p.as_str().parse::<Profile>().unwrap(), p);
        }
        let err = "busy".parse::<Profile>().unwrap_err();
        assert!(err
            .to_string()
            .contains("use available, away, dnd, lunch or business_trip"));
    }

    #[test]
    fn serde_uses_snake_case() {
        assert_eq!(
            serde_json::to_string(&Profile::BusinessTrip).unwrap(),
            "\"business_trip\""
        );
    }
}
