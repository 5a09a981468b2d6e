//! Change-notification subscriptions as the tenant stores them.

use chrono::{DateTime, Utc};

/// A change-notification subscription.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Subscription id.
    pub id: String,
    /// Resource as given (e.g. `users`, `/users/{id}/contacts`).
    pub resource: String,
    /// Normalised collection key the resource watches (see [`super::ChangeEvent::collection`]).
    pub collection: String,
    /// Comma-separated change types.
    pub change_type: String,
    /// Where notifications go.
    pub notification_url: String,
    /// Where lifecycle notifications go.
    pub lifecycle_url: Option<String>,
    /// Secret echoed in every notification (never returned by the API).
    pub client_state: Option<String>,
    /// Expiry.
    pub expiration: DateTime<Utc>,
    /// Client id of the creating app.
    pub app_id: String,
    /// `includeResourceData`.
    pub include_resource_data: bool,
    /// `latestSupportedTlsVersion`.
    pub tls_version: String,
}
