//! Sync runs and their reports (SPEC §8 "Sync reports").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a run synchronises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncKind {
    /// Microsoft 365 users -> extensions.
    Users,
    /// Outlook contacts -> phonebooks.
    Contacts,
    /// Outlook calendars -> profiles.
    Calendar,
    /// All of the above.
    All,
}

impl SyncKind {
    /// The text form used in the CLI, API and store.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncKind::Users => "users",
            SyncKind::Contacts => "contacts",
            SyncKind::Calendar => "calendar",
            SyncKind::All => "all",
        }
    }

    /// Parses the text form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "users" => Some(SyncKind::Users),
            "contacts" => Some(SyncKind::Contacts),
            "calendar" => Some(SyncKind::Calendar),
            "all" => Some(SyncKind::All),
            _ => None,
        }
    }
}

impl fmt::Display for SyncKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run ended (or that it is still going).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    /// In progress.
    Running,
    /// Finished and applied.
    Completed,
    /// Stopped by the mass-deletion guard before changing anything; waits for approval.
    Held,
    /// Failed; the report's `errors` say why. Nothing already held was lost.
    Failed,
    /// Computed without writing (`--dry-run`, Preview).
    DryRun,
}

impl SyncStatus {
    /// The text form.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Running => "running",
            SyncStatus::Completed => "completed",
            SyncStatus::Held => "held",
            SyncStatus::Failed => "failed",
            SyncStatus::DryRun => "dry_run",
        }
    }

    /// Parses the text form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "running" => Some(SyncStatus::Running),
            "completed" => Some(SyncStatus::Completed),
            "held" => Some(SyncStatus::Held),
            "failed" => Some(SyncStatus::Failed),
            "dry_run" => Some(SyncStatus::DryRun),
            _ => None,
        }
    }
}

/// One line of a report: which extension / Microsoft object, and what about it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportItem {
    /// Extension number, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    /// Microsoft object id, when synced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub m365_id: Option<String>,
    /// Display name, so a person can read the report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Changed fields (`updated` items).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Why (`skipped` and `errors` items).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncReport {
    /// New extensions.
    pub created: Vec<ReportItem>,
    /// Changed extensions with the changed fields.
    pub updated: Vec<ReportItem>,
    /// Extensions disabled (user gone, disabled, guest or out of scope).
    pub disabled: Vec<ReportItem>,
    /// Extensions deleted after the grace period.
    pub deleted: Vec<ReportItem>,
    /// Users not provisioned, with the reason.
    pub skipped: Vec<ReportItem>,
    /// Errors, each a sentence.
    pub errors: Vec<ReportItem>,
}

impl SyncReport {
    /// True when the run changed nothing.
    pub fn is_noop(&self) -> bool {
        self.created.is_empty()
            && self.updated.is_empty()
            && self.disabled.is_empty()
            && self.deleted.is_empty()
    }

    /// Appends `other`'s lines to this report, list by list.
    pub fn append(&mut self, other: SyncReport) {
        self.created.extend(other.created);
        self.updated.extend(other.updated);
        self.disabled.extend(other.disabled);
        self.deleted.extend(other.deleted);
        self.skipped.extend(other.skipped);
        self.errors.extend(other.errors);
    }

    /// A report holding only an error sentence.
    pub fn push_error(&mut self, reason: impl Into<String>) {
        self.errors.push(ReportItem {
            reason: Some(reason.into()),
            ..Default::default()
        });
    }
}

/// A recorded run: the JSON object of `GET /api/v1/sync/runs/{id}` and `pbx365 sync --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncRun {
    /// Run id.
    pub id: String,
    /// What was synced.
    pub kind: SyncKind,
    /// Outcome.
    pub status: SyncStatus,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End (none while running).
    pub finished_at: Option<DateTime<Utc>>,
    /// The report, flattened into the object as SPEC §8 shows.
    #[serde(flatten)]
    pub report: SyncReport,
}
