//! Where a resource's sync stands, kept in the store next to the data it describes: the delta
//! cursor (`cursor:{scope}`), the ids each page of an unfinished full round wanted
//! (`sync:{scope}:seen:{k}`), the fingerprint of the settings the last full round ran with
//! (`sync:{scope}:fingerprint`) and an admin's approval of a held run (`sync:approved_run` for
//! users, `sync:{scope}:approved_run` for other kinds).

use serde::{Deserialize, Serialize};

/// The phase a resource's sync is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Reading the pages of a full round; `link` is the next page.
    Full,
    /// All pages of a full round applied; the end-of-round removals are pending; `link` is the delta link.
    Finishing,
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
    /// Pages of the current full round already applied.
    #[serde(default)]
    pub pages: u32,
}

impl Cursor {
    /// A cursor in `phase` at `link` after `pages` pages.
    pub fn new(phase: Phase, link: impl Into<String>, pages: u32) -> Self {
        Cursor {
            phase,
            link: link.into(),
            pages,
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

    /// The ids page `k` of the unfinished full round wanted.
    pub fn seen(&self, k: u32) -> String {
        format!("sync:{}:seen:{k}", self.scope)
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

/// An admin's approval of one held run, valid for [`Approval::VALID_HOURS`] and used once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The held run approved.
    pub run: String,
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
