//! Where a resource's sync stands, kept in the store next to the data it describes: the delta
//! cursor (`cursor:{scope}`: planning a round, applying a stored plan, or between rounds), the
//! fingerprint of the settings the last full round ran with (`sync:{scope}:fingerprint`) and an
//! admin's approval of a held plan (`sync:approved_run` for users, `sync:{scope}:approved_run`
//! for other kinds). The plans themselves are rows of the store (`Store::create_sync_plan`).

use serde::{Deserialize, Serialize};

/// The phase a resource's sync is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Planning a full round into `plan`; `link` is the next page to read. (Without a plan: left
    /// by an older version or a given-up plan, and the next round is a fresh full round.)
    Full,
    /// Every page of the full round in `plan` is planned; its end is not; `link` is the delta link.
    Finishing,
    /// Applying the stored `plan`: `pages` of it are applied; `link` is the delta link stored when
    /// the plan is done.
    Applying,
    /// Between rounds; `link` is the delta link.
    Delta,
}

/// The stored cursor of one resource scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The phase.
    pub phase: Phase,
    /// The next page or the delta link.
    pub link: String,
    /// Pages of the plan stored (planning) or applied (applying).
    #[serde(default)]
    pub pages: u32,
    /// The stored plan being planned or applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
}

impl Cursor {
    /// A cursor in `phase` at `link` after `pages` pages.
    pub fn new(phase: Phase, link: impl Into<String>, pages: u32) -> Self {
        Cursor {
            phase,
            link: link.into(),
            pages,
            plan: None,
        }
    }

    /// The cursor of `phase` in the stored plan `plan`.
    pub fn in_plan(phase: Phase, link: impl Into<String>, pages: u32, plan: &str) -> Self {
        Cursor {
            plan: Some(plan.to_string()),
            ..Cursor::new(phase, link, pages)
        }
    }

    /// The stored form.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the stored form; an unreadable value is no cursor (the next round is full).
    pub fn decode(stored: &str) -> Option<Cursor> {
        serde_json::from_str(stored).ok()
    }
}

/// The store keys of one resource scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    scope: String,
}

impl Keys {
    /// The keys of `scope` (e.g. `users`).
    pub fn new(scope: impl Into<String>) -> Self {
        Keys {
            scope: scope.into(),
        }
    }

    /// The delta cursor.
    pub fn cursor(&self) -> String {
        format!("cursor:{}", self.scope)
    }

    /// The scope key itself (stored plans are kept per scope).
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The fingerprint of the settings of the last completed full round.
    pub fn fingerprint(&self) -> String {
        format!("sync:{}:fingerprint", self.scope)
    }

    /// The id of the held run an admin approved. User sync keeps the key it always had.
    pub fn approval(&self) -> String {
        if self.scope == "users" {
            "sync:approved_run".to_string()
        } else {
            format!("sync:{}:approved_run", self.scope)
        }
    }
}

/// An admin's approval of one held plan, valid for [`Approval::VALID_HOURS`] and used once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The held run approved.
    pub run: String,
    /// Its stored plan (the plan of `run` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// When it was given.
    pub at: chrono::DateTime<chrono::Utc>,
}

impl Approval {
    /// How long an approval waits for a run to use it.
    pub const VALID_HOURS: i64 = 24;

    /// The stored form.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the stored form; anything else is no approval.
    pub fn decode(stored: &str) -> Option<Approval> {
        serde_json::from_str(stored).ok()
    }

    /// Whether it may still be used at `now`.
    pub fn valid_at(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        now - self.at < chrono::Duration::hours(Self::VALID_HOURS)
    }
}
