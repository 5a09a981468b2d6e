//! Change notifications on one Outlook collection of each followed mailbox: a user's events
//! (calendar status) or contacts (contact sync). One subscription per mailbox, made like user
//! sync's (random clientState, validated by Graph against the receiver), renewed before expiry,
//! renewed at once when Graph asks for reauthorization, recreated when removed, deleted when the
//! mailbox is no longer followed. The receiver turns a notification into a mark
//! (`{prefix}{mailbox}`) that the owner of the collection takes and answers with a read of that
//! mailbox only (notifications are hints, the read is the truth).
//!
//! `/users/{id}/contacts` covers every contact of the mailbox, child folders included
//! (https://learn.microsoft.com/graph/outlook-change-notifications-overview, "Contacts: changes
//! to all personal contacts in a user's mailbox"); Outlook subscriptions last at most 10,080
//! minutes (https://learn.microsoft.com/graph/change-notifications-overview#subscription-lifetime);
//! lifecycle events: https://learn.microsoft.com/graph/change-notifications-lifecycle-events.

use std::collections::HashSet;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use pbx365_graph::{GraphClient, NewSubscription};
use pbx365_store::{Store, StoreResult, SubscriptionRecord};

use crate::subscriptions::{new_client_state, NOTIFICATION_PATH};

/// Outlook subscriptions last under 10,080 minutes (graph-facts §8); we ask for a little less.
pub const LIFETIME_MINUTES: i64 = 10_000;

/// Renew when less than this is left.
pub const RENEW_MARGIN_HOURS: i64 = 24;

/// Where the receiver asks for a subscription's renewal (`reauthorizationRequired`):
/// `subscription:renew:{id}`.
pub const RENEW_PREFIX: &str = "subscription:renew:";

/// One watched collection of a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    /// The collection under `/users/{mailbox}/`.
    pub collection: &'static str,
    /// The receiver's marks: `{mark_prefix}{mailbox}` (lower case).
    pub mark_prefix: &'static str,
    /// Set by the receiver when a lifecycle event asks for upkeep before the next timer.
    pub upkeep_key: &'static str,
    /// What the subscriptions serve, for log lines.
    pub label: &'static str,
}

/// Calendar status: each followed user's events.
pub const EVENTS: Watch = Watch {
    collection: "events",
    mark_prefix: "calendar:dirty:",
    upkeep_key: "calendar:upkeep",
    label: "calendar",
};

/// Contact sync: each followed mailbox's contacts (every folder).
pub const CONTACTS: Watch = Watch {
    collection: "contacts",
    mark_prefix: "contacts:dirty:",
    upkeep_key: "contacts:upkeep",
    label: "contact",
};

/// Every watched collection.
pub const ALL: [Watch; 2] = [EVENTS, CONTACTS];

impl Watch {
    /// The subscription resource of `mailbox`.
    pub fn resource(&self, mailbox: &str) -> String {
        format!("/users/{mailbox}/{}", self.collection)
    }

    /// The mailbox of `resource` if it is this collection's (`/users/{mailbox}/{collection}`).
    pub fn mailbox_of<'a>(&self, resource: &'a str) -> Option<&'a str> {
        let rest = resource.trim_start_matches('/');
        let rest = rest
            .strip_prefix("users/")
            .or_else(|| rest.strip_prefix("Users/"))?;
        let (mailbox, collection) = rest.split_once('/')?;
        (collection.eq_ignore_ascii_case(self.collection) && !mailbox.is_empty()).then_some(mailbox)
    }

    /// Marks `mailbox` for a read by the collection's owner.
    pub async fn mark(&self, store: &Store, mailbox: &str) -> StoreResult<()> {
        let key = format!("{}{}", self.mark_prefix, mailbox.to_ascii_lowercase());
        store.set_kv(&key, &Utc::now().to_rfc3339()).await
    }

    /// Takes the marks the receiver left: the mailboxes to read (lower case).
    pub async fn take_marks(&self, store: &Store) -> StoreResult<HashSet<String>> {
        let mut out = HashSet::new();
        for (key, value) in store.list_kv(self.mark_prefix).await? {
            // Only the mark read is removed: a newer one stays for the next look.
            if store.take_kv(&key, &value).await? {
                if let Some(m) = key.strip_prefix(self.mark_prefix) {
                    out.insert(m.to_string());
                }
            }
        }
        Ok(out)
    }

    /// Whether a lifecycle event asked for upkeep since the last one (and clears the request).
    pub async fn take_upkeep_request(&self, store: &Store) -> StoreResult<bool> {
        match store.get_kv(self.upkeep_key).await? {
            Some(v) => store.take_kv(self.upkeep_key, &v).await,
            None => Ok(false),
        }
    }
}

/// The watch a subscription resource belongs to, with its mailbox.
pub fn watched(resource: &str) -> Option<(Watch, &str)> {
    ALL.iter()
        .find_map(|w| w.mailbox_of(resource).map(|m| (*w, m)))
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What an upkeep round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upkeep {
    /// Subscriptions created.
    pub created: usize,
    /// Subscriptions renewed.
    pub renewed: usize,
    /// Subscriptions deleted (mailbox no longer followed, duplicate, expired).
    pub deleted: usize,
    /// Mailboxes whose subscription could not be made (their poll covers them), lower case.
    pub failed: Vec<String>,
}

/// Brings the subscriptions of `watch` in line with `mailboxes` (lower case): creates missing
/// ones, renews those close to expiry or whose renewal the receiver asked for, deletes those of
/// mailboxes no longer followed. A failure to create is returned, not raised: the caller warns
/// and its poll covers that mailbox.
pub async fn ensure(
    graph: &GraphClient,
    store: &Store,
    public_url: &str,
    watch: &Watch,
    mailboxes: &HashSet<String>,
    now: DateTime<Utc>,
) -> StoreResult<Upkeep> {
    let url = format!("{}{NOTIFICATION_PATH}", public_url.trim_end_matches('/'));
    let renew_asked: HashSet<String> = store
        .list_kv(RENEW_PREFIX)
        .await?
        .into_iter()
        .filter_map(|(k, _)| k.strip_prefix(RENEW_PREFIX).map(str::to_string))
        .collect();
    let mut have = HashSet::new();
    let mut done = Upkeep::default();
    for rec in store.list_subscriptions().await? {
        let Some(mailbox) = watch.mailbox_of(&rec.resource).map(str::to_ascii_lowercase) else {
            continue;
        };
        if !mailboxes.contains(&mailbox) || rec.expires_at <= now || have.contains(&mailbox) {
            if rec.expires_at > now {
                if let Err(e) = graph.delete_subscription(&rec.id).await {
                    tracing::warn!(error = %e, what = watch.label, "deleting a subscription failed");
                }
            }
            store.delete_subscription(&rec.id).await?;
            done.deleted += 1;
            continue;
        }
        let asked = renew_asked.contains(&rec.id);
        if asked || rec.expires_at - now < Duration::hours(RENEW_MARGIN_HOURS) {
            let exp = now + Duration::minutes(LIFETIME_MINUTES);
            if asked {
                store
                    .delete_kv(&format!("{RENEW_PREFIX}{}", rec.id))
                    .await?;
            }
            if graph.renew_subscription(&rec.id, &iso(exp)).await.is_ok() {
                store
                    .put_subscription(&SubscriptionRecord {
                        expires_at: exp,
                        ..rec.clone()
                    })
                    .await?;
                done.renewed += 1;
            } else {
                // Gone or refused at Microsoft: made again below.
                store.delete_subscription(&rec.id).await?;
                done.deleted += 1;
                continue;
            }
        }
        have.insert(mailbox);
    }
    let mut missing: Vec<&String> = mailboxes.iter().filter(|m| !have.contains(*m)).collect();
    missing.sort();
    for mailbox in missing {
        let resource = watch.resource(mailbox);
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
                done.created += 1;
            }
            Err(e) => {
                if done.failed.is_empty() {
                    tracing::debug!(error = %e, what = watch.label, %mailbox, "creating a subscription failed");
                }
                done.failed.push(mailbox.clone());
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_names_its_watch_and_mailbox() {
        assert_eq!(watched("/users/ABC/events"), Some((EVENTS, "ABC")));
        assert_eq!(
            watched("Users/shared@contoso.example/Contacts"),
            Some((CONTACTS, "shared@contoso.example"))
        );
        assert_eq!(watched("users"), None);
        assert_eq!(watched("/users/abc/contactFolders/x/contacts"), None);
        assert_eq!(CONTACTS.resource("m"), "/users/m/contacts");
    }
}
