//! Change notifications on each followed user's events (`/users/{id}/events`), managed like
//! user sync's: a random clientState, validated by Graph against the receiver, renewed before
//! expiry, recreated when removed (the receiver forgets a removed one), deleted when the user
//! is no longer followed. A notification marks the user (`calendar:dirty:{id}`) and the
//! calendar task re-reads that calendar within seconds.
//!
//! https://learn.microsoft.com/graph/outlook-change-notifications-overview ·
//! https://learn.microsoft.com/graph/change-notifications-lifecycle-events

use std::collections::HashSet;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use pbx365_graph::{GraphClient, NewSubscription};
use pbx365_store::{Store, StoreResult, SubscriptionRecord};
use pbx365_sync::subscriptions::{calendar_user, new_client_state, NOTIFICATION_PATH};

/// Outlook event subscriptions last under 10,080 minutes (graph-facts §8); a little less.
pub const LIFETIME_MINUTES: i64 = 10_000;

/// Renew when less than this is left.
pub const RENEW_MARGIN_HOURS: i64 = 24;

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Brings the calendar subscriptions in line with `users` (Microsoft 365 ids); returns how
/// many could not be created or renewed (logged; the fallback delta read covers them).
pub async fn ensure(
    graph: &GraphClient,
    store: &Store,
    public_url: &str,
    users: &HashSet<String>,
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    let url = format!("{}{NOTIFICATION_PATH}", public_url.trim_end_matches('/'));
    let mut have = HashSet::new();
    let mut failed = 0;
    for rec in store.list_subscriptions().await? {
        let Some(uid) = calendar_user(&rec.resource).map(str::to_ascii_lowercase) else {
            continue;
        };
        if !users.contains(&uid) || rec.expires_at <= now || have.contains(&uid) {
            if rec.expires_at > now {
                if let Err(e) = graph.delete_subscription(&rec.id).await {
                    tracing::warn!(error = %e, "deleting a calendar subscription failed");
                }
            }
            store.delete_subscription(&rec.id).await?;
            continue;
        }
        if rec.expires_at - now < Duration::hours(RENEW_MARGIN_HOURS) {
            let exp = now + Duration::minutes(LIFETIME_MINUTES);
            if graph.renew_subscription(&rec.id, &iso(exp)).await.is_ok() {
                store
                    .put_subscription(&SubscriptionRecord {
                        expires_at: exp,
                        ..rec.clone()
                    })
                    .await?;
            } else {
                store.delete_subscription(&rec.id).await?;
                continue;
            }
        }
        have.insert(uid);
    }
    for uid in users.iter().filter(|u| !have.contains(*u)) {
        let resource = format!("/users/{uid}/events");
        let client_state = new_client_state();
        let exp = now + Duration::minutes(LIFETIME_MINUTES);
        let created = graph
            .create_subscription(&NewSubscription {
                change_type: "created,updated,deleted".into(),
                notification_url: url.clone(),
                lifecycle_notification_url: Some(url.clone()),
                resource: resource.clone(),
                expiration_date_time: iso(exp),
                client_state: Some(client_state.clone()),
            })
            .await;
        match created {
            Ok(sub) => {
                let expires_at = DateTime::parse_from_rfc3339(&sub.expiration_date_time)
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or(exp);
                store
                    .put_subscription(&SubscriptionRecord {
                        id: sub.id,
                        resource,
                        client_state,
                        expires_at,
                    })
                    .await?;
            }
            Err(e) => {
                failed += 1;
                if failed == 1 {
                    tracing::warn!(error = %e, "creating a calendar subscription failed; calendars are read by the fallback delta read until it works");
                }
            }
        }
    }
    Ok(failed)
}

/// Takes the marks the receiver left (`calendar:dirty:{id}`): the users to re-read.
pub async fn take_marks(store: &Store) -> StoreResult<HashSet<String>> {
    let mut out = HashSet::new();
    for (key, value) in store
        .list_kv(pbx365_sync::subscriptions::CALENDAR_DIRTY)
        .await?
    {
        // Only the mark read is removed: a newer one stays for the next look.
        if store.take_kv(&key, &value).await? {
            if let Some(uid) = key.strip_prefix(pbx365_sync::subscriptions::CALENDAR_DIRTY) {
                out.insert(uid.to_string());
            }
        }
    }
    Ok(out)
}
