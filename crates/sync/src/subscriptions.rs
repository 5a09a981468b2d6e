//! Graph change-notification subscriptions for users (and groups when groups are the scope):
//! created with a random clientState, renewed before expiry, recreated when removed, and the
//! processing of the notification inbox (notifications are hints: they trigger a delta round).
//!
//! https://learn.microsoft.com/graph/change-notifications-delivery-webhooks ·
//! https://learn.microsoft.com/graph/change-notifications-lifecycle-events

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use pbx365_graph::{GraphClient, GraphError, NewSubscription};
use pbx365_store::{InboxNotification, Store, SubscriptionRecord};
use rand::RngCore;

use crate::error::SyncResult;

/// Directory subscriptions may last up to 41,760 minutes; we ask for a little less
/// (https://learn.microsoft.com/graph/change-notifications-overview#subscription-lifetime).
pub const LIFETIME_MINUTES: i64 = 41_000;

/// Renew when less than this is left.
pub const RENEW_MARGIN_HOURS: i64 = 72;

/// The path Graph posts to, appended to `public_url`.
pub const NOTIFICATION_PATH: &str = "/api/m365/notifications";

/// A fresh clientState: 256 random bits, hex (64 chars, under Graph's 128-char limit).
pub fn new_client_state() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// What the inbox asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxActions {
    /// At least one change notification: run a delta round.
    pub delta: bool,
    /// A `missed` lifecycle event: run a full resync.
    pub full: bool,
    /// Subscriptions to recreate (`subscriptionRemoved`) or reauthorize were handled.
    pub lifecycle: usize,
}

/// Reads what the notifications ask for; lifecycle events are handled here (reauthorize,
/// recreate), change notifications just request a delta round.
pub async fn triage(
    graph: &GraphClient,
    store: &Store,
    public_url: &str,
    notes: &[InboxNotification],
    resources: &[String],
) -> SyncResult<InboxActions> {
    let mut actions = InboxActions::default();
    for n in notes {
        let event = n
            .payload
            .get("lifecycleEvent")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let sub_id = n
            .payload
            .get("subscriptionId")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        match event {
            "" => actions.delta = true,
            e if e.eq_ignore_ascii_case("reauthorizationRequired") => {
                actions.lifecycle += 1;
                if let Err(err) = graph.reauthorize_subscription(sub_id).await {
                    tracing::warn!(error = %err, "reauthorizing a subscription failed; renewing it instead");
                    let exp = expiry_from(Utc::now());
                    if let Err(err) = graph.renew_subscription(sub_id, &iso(exp)).await {
                        tracing::warn!(error = %err, "renewing the subscription failed; it will be recreated");
                        store.delete_subscription(sub_id).await?;
                    } else {
                        update_expiry(store, sub_id, exp).await?;
                    }
                }
            }
            e if e.eq_ignore_ascii_case("subscriptionRemoved") => {
                actions.lifecycle += 1;
                store.delete_subscription(sub_id).await?;
                actions.delta = true;
            }
            e if e.eq_ignore_ascii_case("missed") => {
                actions.lifecycle += 1;
                actions.full = true;
            }
            other => tracing::info!(event = other, "ignoring an unknown lifecycle event"),
        }
    }
    if actions.lifecycle > 0 {
        ensure(graph, store, public_url, resources, Utc::now()).await?;
    }
    Ok(actions)
}

async fn update_expiry(store: &Store, id: &str, exp: DateTime<Utc>) -> SyncResult<()> {
    if let Some(mut rec) = store
        .list_subscriptions()
        .await?
        .into_iter()
        .find(|s| s.id == id)
    {
        rec.expires_at = exp;
        store.put_subscription(&rec).await?;
    }
    Ok(())
}

fn expiry_from(now: DateTime<Utc>) -> DateTime<Utc> {
    now + Duration::minutes(LIFETIME_MINUTES)
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Makes sure one live subscription exists per resource: creates missing ones, renews those
/// expiring within the margin (recreating when renewal fails), and deletes ones no longer wanted.
pub async fn ensure(
    graph: &GraphClient,
    store: &Store,
    public_url: &str,
    resources: &[String],
    now: DateTime<Utc>,
) -> SyncResult<()> {
    let url = format!("{}{NOTIFICATION_PATH}", public_url.trim_end_matches('/'));
    // A mailbox's events and contacts subscriptions are calendar status's and contact sync's own.
    let existing: Vec<_> = store
        .list_subscriptions()
        .await?
        .into_iter()
        .filter(|s| crate::mailbox_subscriptions::watched(&s.resource).is_none())
        .collect();
    for rec in &existing {
        if !resources.iter().any(|r| r == &rec.resource) {
            match graph.delete_subscription(&rec.id).await {
                Ok(()) | Err(GraphError::NotFound { .. }) => {}
                Err(e) => tracing::warn!(error = %e, "deleting an unneeded subscription failed"),
            }
            store.delete_subscription(&rec.id).await?;
        }
    }
    for resource in resources {
        let current = existing
            .iter()
            .find(|s| &s.resource == resource && s.expires_at > now);
        if let Some(rec) = current {
            if rec.expires_at - now > Duration::hours(RENEW_MARGIN_HOURS) {
                continue;
            }
            let exp = expiry_from(now);
            match graph.renew_subscription(&rec.id, &iso(exp)).await {
                Ok(_) => {
                    let mut r = rec.clone();
                    r.expires_at = exp;
                    store.put_subscription(&r).await?;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, resource = %resource, "renewing a subscription failed; recreating it");
                    store.delete_subscription(&rec.id).await?;
                }
            }
        }
        for stale in existing
            .iter()
            .filter(|s| &s.resource == resource && s.expires_at <= now)
        {
            store.delete_subscription(&stale.id).await?;
        }
        let client_state = new_client_state();
        let exp = expiry_from(now);
        let created = graph
            .create_subscription(&NewSubscription {
                change_type: "updated,deleted".into(),
                notification_url: url.clone(),
                lifecycle_notification_url: Some(url.clone()),
                resource: resource.clone(),
                expiration_date_time: iso(exp),
                client_state: Some(client_state.clone()),
            })
            .await?;
        let expires_at = DateTime::parse_from_rfc3339(&created.expiration_date_time)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(exp);
        store
            .put_subscription(&SubscriptionRecord {
                id: created.id,
                resource: resource.clone(),
                client_state,
                expires_at,
            })
            .await?;
        tracing::info!(resource = %resource, "created a change-notification subscription");
    }
    Ok(())
}
