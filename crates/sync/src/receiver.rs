//! The core of the Graph change-notification receiver (`POST /api/m365/notifications`); the web
//! crate wraps it in an axum handler. Kept here so the engine's tests drive the same code.
//!
//! The validation handshake answers with the token as plain text; notifications are checked
//! against the stored subscription's clientState in constant time, persisted (deduplicated) and
//! acknowledged with 202 at once; the [`crate::SyncService`] loop turns them into delta rounds
//! (notifications are hints, not truth).
//!
//! https://learn.microsoft.com/graph/change-notifications-delivery-webhooks ·
//! https://learn.microsoft.com/graph/change-notifications-lifecycle-events

use pbx365_store::{Store, SubscriptionRecord};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Longest validation token accepted (Microsoft's are a few hundred characters).
pub const MAX_TOKEN_LEN: usize = 4096;

/// The answer to send: `status`, and when `text` is set a `text/plain; charset=utf-8` body
/// (always with `X-Content-Type-Options: nosniff`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Plain-text body.
    pub text: Option<String>,
    /// Something was persisted: wake the worker.
    pub persisted: bool,
}

impl Reply {
    fn text(status: u16, body: impl Into<String>) -> Self {
        Reply {
            status,
            text: Some(body.into()),
            persisted: false,
        }
    }
}

/// Handles one POST: `query` is the raw query string, `body` the raw body.
pub async fn handle(store: &Store, query: Option<&str>, body: &[u8]) -> Reply {
    // Validation: POST ?validationToken=… -> 200 text/plain with exactly the decoded token.
    if let Some(q) = query {
        let named = q
            .split('&')
            .any(|p| p == "validationToken" || p.starts_with("validationToken="));
        if named {
            let token = serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .ok()
                .and_then(|pairs| {
                    pairs
                        .into_iter()
                        .find(|(k, _)| k == "validationToken")
                        .map(|(_, v)| v)
                });
            return match token {
                Some(t) if t.len() > MAX_TOKEN_LEN => {
                    Reply::text(400, "the validation token is too long")
                }
                Some(t) if !t.is_empty() => Reply::text(200, t),
                _ => Reply::text(400, "the validation token is missing or empty"),
            };
        }
    }
    let payload: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return Reply::text(400, "expected a JSON change notification"),
    };
    let Some(items) = payload.get("value").and_then(|v| v.as_array()) else {
        return Reply::text(400, "expected a JSON object with a \"value\" array");
    };
    let subs = match store.list_subscriptions().await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot read subscriptions; asking Microsoft to retry");
            return Reply::text(503, "try again later");
        }
    };
    let (mut persisted, mut failed, mut forged) = (0usize, 0usize, 0usize);
    for item in items {
        let Some(sub) = matching_subscription(&subs, item) else {
            forged += 1;
            continue;
        };
        if let Some((watch, mailbox)) = crate::mailbox_subscriptions::watched(&sub.resource) {
            // A mailbox's events or contacts: a hint to re-read that mailbox (any instance may
            // receive it; the instance running calendar status or contact sync reads the marks).
            match mark_mailbox(store, sub, watch, mailbox, item).await {
                Ok(()) => persisted += 1,
                Err(e) => {
                    tracing::error!(error = %e, what = watch.label, "a notification could not be persisted");
                    failed += 1;
                }
            }
            continue;
        }
        let mut clean = item.clone();
        if let Some(o) = clean.as_object_mut() {
            o.remove("clientState");
        }
        let key = dedup_key(&sub.id, &clean);
        match store.enqueue_notification(&key, &clean).await {
            Ok(_) => persisted += 1,
            Err(e) => {
                tracing::error!(error = %e, "a change notification could not be persisted");
                failed += 1;
            }
        }
    }
    if forged > 0 {
        // A wrong or missing clientState is treated as forged: dropped, counted, still answered 2xx.
        metrics::counter!("pbx365_notifications_forged_total").increment(forged as u64);
        tracing::warn!(
            count = forged,
            "dropped change notifications with an unknown subscription or a wrong clientState"
        );
    }
    metrics::counter!("pbx365_notifications_received_total").increment(persisted as u64);
    if failed > 0 && persisted == 0 {
        return Reply::text(503, "try again later");
    }
    Reply {
        status: 202,
        text: None,
        persisted: persisted > 0,
    }
}

/// Marks `mailbox` for a re-read by the owner of `watch`. Lifecycle events: a removed
/// subscription is forgotten and a reauthorization request asks for a renewal, both with a
/// request for upkeep, so the owner's next step makes or renews it (then the re-read catches
/// what was missed); `missed` needs only the re-read.
async fn mark_mailbox(
    store: &Store,
    sub: &SubscriptionRecord,
    watch: crate::mailbox_subscriptions::Watch,
    mailbox: &str,
    item: &serde_json::Value,
) -> pbx365_store::StoreResult<()> {
    let event = item
        .get("lifecycleEvent")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let now = chrono::Utc::now().to_rfc3339();
    if event.eq_ignore_ascii_case("subscriptionRemoved") {
        store.delete_subscription(&sub.id).await?;
        store.set_kv(watch.upkeep_key, &now).await?;
    } else if event.eq_ignore_ascii_case("reauthorizationRequired") {
        let key = format!("{}{}", crate::mailbox_subscriptions::RENEW_PREFIX, sub.id);
        store.set_kv(&key, &now).await?;
        store.set_kv(watch.upkeep_key, &now).await?;
    }
    watch.mark(store, mailbox).await
}

/// The stored subscription the item names, when its clientState matches (compared in constant time).
fn matching_subscription<'a>(
    subs: &'a [SubscriptionRecord],
    item: &serde_json::Value,
) -> Option<&'a SubscriptionRecord> {
    let id = item.get("subscriptionId")?.as_str()?;
    let given = item
        .get("clientState")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let sub = subs.iter().find(|s| s.id.eq_ignore_ascii_case(id))?;
    bool::from(sub.client_state.as_bytes().ct_eq(given.as_bytes())).then_some(sub)
}

/// Graph may deliver the same notification more than once: the key is a hash of what makes it
/// the same event (subscription, change type, resource, etag / lifecycle event and time).
fn dedup_key(sub_id: &str, item: &serde_json::Value) -> String {
    let s = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let etag = item
        .pointer("/resourceData/@odata.etag")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    // Without an id or etag two different changes would look alike: then no dedup (the time is
    // part of the key), which is safe because processing is idempotent.
    let unique = if s("id").is_empty() && etag.is_empty() && s("lifecycleEvent").is_empty() {
        chrono::Utc::now()
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .to_string()
    } else {
        String::new()
    };
    let parts = [
        unique,
        sub_id.to_string(),
        s("id"),
        s("changeType"),
        s("resource"),
        etag.to_string(),
        s("lifecycleEvent"),
        s("subscriptionExpirationDateTime"),
    ];
    hex::encode(Sha256::digest(parts.join("\u{1f}").as_bytes()))
}
