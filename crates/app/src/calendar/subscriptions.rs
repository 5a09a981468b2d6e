//! Change notifications on each followed user's events (`/users/{id}/events`), through the
//! subscriptions every followed mailbox shares with contact sync
//! ([`pbx365_sync::mailbox_subscriptions`]): a notification marks the user
//! (`calendar:dirty:{id}`) and the calendar task re-reads that calendar within seconds.
//!
//! https://learn.microsoft.com/graph/outlook-change-notifications-overview ·
//! https://learn.microsoft.com/graph/change-notifications-lifecycle-events

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use pbx365_graph::GraphClient;
use pbx365_store::{Store, StoreResult};
use pbx365_sync::mailbox_subscriptions::{self, EVENTS};

/// Brings the calendar subscriptions in line with `users` (Microsoft 365 ids, lower case);
/// returns how many could not be created (logged once; the fallback delta read covers them).
pub async fn ensure(
    graph: &GraphClient,
    store: &Store,
    public_url: &str,
    users: &HashSet<String>,
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    let done = mailbox_subscriptions::ensure(graph, store, public_url, &EVENTS, users, now).await?;
    if !done.failed.is_empty() {
        tracing::warn!(
            failed = done.failed.len(),
            "creating calendar subscriptions failed; those calendars are read by the fallback delta read until it works"
        );
    }
    Ok(done.failed.len())
}

/// Takes the marks the receiver left (`calendar:dirty:{id}`): the users to re-read.
pub async fn take_marks(store: &Store) -> StoreResult<HashSet<String>> {
    EVENTS.take_marks(store).await
}
