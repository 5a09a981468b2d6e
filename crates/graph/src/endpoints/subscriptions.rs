//! Change-notification subscriptions: create (Graph validates `notificationUrl` first), renew,
//! reauthorize, list and delete. Subscriptions on `users/{id}/…` resources count against that
//! mailbox's concurrency limit.
//!
//! https://learn.microsoft.com/graph/api/resources/subscription · https://learn.microsoft.com/graph/api/subscription-post-subscriptions ·
//! https://learn.microsoft.com/graph/change-notifications-lifecycle-events

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::error::GraphError;
use crate::transport::{seg, GraphClient, GraphRequest};

/// The subscriptions collection, relative to `/v1.0`.
const SUBSCRIPTIONS: &str = "/subscriptions";

/// The resource of a subscription to every user's changes.
pub const USERS_RESOURCE: &str = "users";

/// The resource of a subscription to every group's changes (membership included).
pub const GROUPS_RESOURCE: &str = "groups";

/// A change-notification subscription to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSubscription {
    /// `updated,deleted` for users.
    pub change_type: String,
    /// HTTPS URL of our receiver.
    pub notification_url: String,
    /// Lifecycle receiver (only settable at creation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle_notification_url: Option<String>,
    /// e.g. `users`, `/users/{id}/contacts`.
    pub resource: String,
    /// UTC ISO 8601.
    pub expiration_date_time: String,
    /// Secret echoed on every notification (≤128 chars); never logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
}

/// A subscription as Graph returns it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Id.
    pub id: String,
    /// Resource.
    #[serde(default)]
    pub resource: String,
    /// Change types.
    #[serde(default)]
    pub change_type: String,
    /// Receiver.
    #[serde(default)]
    pub notification_url: String,
    /// Lifecycle receiver.
    pub lifecycle_notification_url: Option<String>,
    /// Expiry (UTC ISO 8601).
    #[serde(default)]
    pub expiration_date_time: String,
    /// Secret (only returned to the creating app).
    pub client_state: Option<String>,
    /// App that created it.
    pub application_id: Option<String>,
}

impl std::fmt::Debug for Subscription {
    // clientState is a secret: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("resource", &self.resource)
            .field("change_type", &self.change_type)
            .field("notification_url", &self.notification_url)
            .field("expiration_date_time", &self.expiration_date_time)
            .finish_non_exhaustive()
    }
}

fn path(id: &str) -> String {
    format!("{SUBSCRIPTIONS}/{}", seg(id))
}

/// `users/{id}/…` resources live in a mailbox (per-mailbox limits apply).
fn mailbox_of_resource(resource: &str) -> Option<String> {
    let r = resource.trim_start_matches('/');
    let rest = r
        .strip_prefix("users/")
        .or_else(|| r.strip_prefix("Users/"))?;
    rest.split('/')
        .next()
        .filter(|m| !m.is_empty())
        .map(str::to_ascii_lowercase)
}

/// Creates `sub`.
pub fn create_request(sub: &NewSubscription) -> Result<GraphRequest, GraphError> {
    let body = serde_json::to_value(sub).map_err(|e| GraphError::BadResponse(e.to_string()))?;
    let req = GraphRequest::with_json(Method::POST, SUBSCRIPTIONS, body);
    Ok(match mailbox_of_resource(&sub.resource) {
        Some(m) => req.mailbox(&m),
        None => req,
    })
}

/// Moves a subscription's expiry to `expiration` (UTC ISO 8601).
pub fn renew_request(id: &str, expiration: &str) -> GraphRequest {
    let body = serde_json::json!({ "expirationDateTime": expiration });
    GraphRequest::with_json(Method::PATCH, path(id), body)
}

/// Reauthorizes a subscription after a `reauthorizationRequired` lifecycle event.
pub fn reauthorize_request(id: &str) -> GraphRequest {
    GraphRequest::new(Method::POST, format!("{}/reauthorize", path(id)))
}

/// Deletes a subscription.
pub fn delete_request(id: &str) -> GraphRequest {
    GraphRequest::new(Method::DELETE, path(id))
}

/// This app's subscriptions.
pub fn list_request() -> GraphRequest {
    GraphRequest::get(SUBSCRIPTIONS)
}

impl GraphClient {
    /// Creates a change-notification subscription (Graph validates `notificationUrl` first).
    pub async fn create_subscription(
        &self,
        sub: &NewSubscription,
    ) -> Result<Subscription, GraphError> {
        self.send(create_request(sub)?).await?.json()
    }

    /// Extends a subscription.
    pub async fn renew_subscription(
        &self,
        id: &str,
        expiration: &str,
    ) -> Result<Subscription, GraphError> {
        self.send(renew_request(id, expiration)).await?.json()
    }

    /// Deletes a subscription (a missing one counts as deleted).
    pub async fn delete_subscription(&self, id: &str) -> Result<(), GraphError> {
        match self.send(delete_request(id)).await {
            Ok(_) | Err(GraphError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// This app's subscriptions.
    pub async fn list_subscriptions(&self) -> Result<Vec<Subscription>, GraphError> {
        self.get_all(list_request()).await
    }

    /// Reauthorises a subscription after `reauthorizationRequired`.
    pub async fn reauthorize_subscription(&self, id: &str) -> Result<(), GraphError> {
        self.send(reauthorize_request(id)).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes_are_found_in_resources() {
        assert_eq!(
            mailbox_of_resource("/users/Ann@x.com/contacts").as_deref(),
            Some("ann@x.com")
        );
        assert_eq!(mailbox_of_resource(USERS_RESOURCE), None);
    }
}
