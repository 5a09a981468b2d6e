//! The persistent outbox of pbx365's own mail.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a mail is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Waiting to be sent (or to be retried).
    Pending,
    /// Accepted by the mail transport.
    Sent,
    /// Given up, with the reason.
    Failed,
}

impl OutboxStatus {
    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Failed => "failed",
        }
    }

    /// Parses the stored text form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(OutboxStatus::Pending),
            "sent" => Some(OutboxStatus::Sent),
            "failed" => Some(OutboxStatus::Failed),
            _ => None,
        }
    }
}

/// A mail pbx365 sends (welcome mail, sync alert, certificate warning, test mail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OutboxMail {
    /// Id.
    pub id: String,
    /// Recipient addresses.
    pub to: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// State.
    pub status: OutboxStatus,
    /// Attempts so far.
    pub attempts: u32,
    /// Not before this time (backoff).
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
}
