//! Graph runtime state that is not tenant data (it survives reseeds): configurable limits
//! (graph-facts says "take the numbers as configurable defaults"), the Outlook
//! per-app-per-mailbox throttling counters and notification delivery bookkeeping.
//!
//! Plain data: the HTTP answers (429, the control API) are built in `crate::graph`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Configurable Graph behaviour (`GET|PUT /_sim/graph-settings`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GraphSettings {
    /// Status for expired users/groups delta tokens: 400 (MS blog 2020) or 410.
    pub directory_delta_expired_status: u16,
    /// Lifetime of directory delta tokens in seconds (7 days).
    pub directory_delta_token_secs: i64,
    /// Max subscription lifetime for users/groups, minutes (41,760).
    pub max_directory_subscription_minutes: i64,
    /// Max subscription lifetime for Outlook resources, minutes (10,080).
    pub max_outlook_subscription_minutes: i64,
    /// Max Outlook lifetime with `includeResourceData`, minutes (1,440).
    pub max_outlook_rich_subscription_minutes: i64,
    /// Shorter expirations are raised to this many minutes (45).
    pub min_subscription_minutes: i64,
    /// Time the notification endpoint has to answer the validation request, ms (10 s).
    pub validation_timeout_ms: u64,
    /// Time a receiver has to answer a notification POST, ms (3 s).
    pub delivery_timeout_ms: u64,
    /// Delivery attempts before a notification is dropped.
    pub delivery_attempts: u32,
    /// First retry delay in ms; doubles each retry.
    pub retry_base_ms: u64,
    /// Notifications for the same URL within this window share one POST (`value[]`), ms.
    pub batch_window_ms: u64,
    /// Outlook: concurrent requests per app + mailbox (4).
    pub mailbox_concurrency: u32,
    /// Outlook: requests per app + mailbox per 10 minutes (10,000).
    pub mailbox_requests_per_10_min: u32,
}

impl Default for GraphSettings {
    fn default() -> Self {
        GraphSettings {
            directory_delta_expired_status: 400,
            directory_delta_token_secs: 7 * 24 * 3600,
            max_directory_subscription_minutes: 41_760,
            max_outlook_subscription_minutes: 10_080,
            max_outlook_rich_subscription_minutes: 1_440,
            min_subscription_minutes: 45,
            validation_timeout_ms: 10_000,
            delivery_timeout_ms: 3_000,
            delivery_attempts: 6,
            retry_base_ms: 500,
            batch_window_ms: 25,
            mailbox_concurrency: 4,
            mailbox_requests_per_10_min: 10_000,
        }
    }
}

#[derive(Debug)]
struct MailboxUse {
    in_flight: u32,
    window_start: Instant,
    count: u32,
}

/// Mutable runtime shared by all handlers.
#[derive(Debug, Default)]
pub struct GraphRuntime {
    /// Current settings.
    pub settings: Mutex<GraphSettings>,
    mailbox_use: Mutex<HashMap<(String, String), MailboxUse>>,
    /// Per-subscription delivery counters for `GET /_sim/subscriptions`.
    pub delivery: Mutex<HashMap<String, DeliveryStats>>,
    /// Pending notifications per notification URL (batched into one POST).
    pub pending: Mutex<HashMap<String, Vec<serde_json::Value>>>,
}

impl GraphRuntime {
    /// A snapshot of the settings.
    pub fn settings(&self) -> GraphSettings {
        self.settings.lock().expect("settings lock").clone()
    }

    /// Admits one Outlook request for app + mailbox, or says which limit it is over
    /// (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits).
    pub fn enter_mailbox(
        self: &Arc<Self>,
        app_id: &str,
        mailbox: &str,
    ) -> Result<MailboxGuard, Throttled> {
        let s = self.settings();
        let key = (app_id.to_string(), mailbox.to_string());
        let mut map = self.mailbox_use.lock().expect("throttle lock");
        let now = Instant::now();
        let u = map.entry(key.clone()).or_insert(MailboxUse {
            in_flight: 0,
            window_start: now,
            count: 0,
        });
        if now.duration_since(u.window_start) >= Duration::from_secs(600) {
            u.window_start = now;
            u.count = 0;
        }
        if u.in_flight >= s.mailbox_concurrency {
            return Err(Throttled {
                message: "Application is over its MailboxConcurrency limit.",
                retry_after_secs: 1,
            });
        }
        if u.count >= s.mailbox_requests_per_10_min {
            let left = 600u64
                .saturating_sub(now.duration_since(u.window_start).as_secs())
                .max(1);
            return Err(Throttled {
                message: "Application is over its MailboxRequestRate limit.",
                retry_after_secs: left,
            });
        }
        u.in_flight += 1;
        u.count += 1;
        Ok(MailboxGuard {
            runtime: self.clone(),
            key,
        })
    }
}

/// An Outlook request over its app + mailbox budget (answered as 429 `ApplicationThrottled`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    /// Graph's message naming the limit.
    pub message: &'static str,
    /// Seconds for `Retry-After`.
    pub retry_after_secs: u64,
}

/// Holds one slot of a mailbox's concurrency budget until dropped.
pub struct MailboxGuard {
    runtime: Arc<GraphRuntime>,
    key: (String, String),
}

impl Drop for MailboxGuard {
    fn drop(&mut self) {
        if let Ok(mut map) = self.runtime.mailbox_use.lock() {
            if let Some(u) = map.get_mut(&self.key) {
                u.in_flight = u.in_flight.saturating_sub(1);
            }
        }
    }
}

/// Delivery counters of one subscription (control API).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeliveryStats {
    /// Notifications delivered (2xx).
    pub delivered: u64,
    /// Failed attempts (non-2xx or timeout).
    pub failed_attempts: u64,
    /// Notifications given up on after the last retry.
    pub dropped: u64,
    /// Notifications dropped by the `drop_notifications` fault.
    pub dropped_by_fault: u64,
    /// Status of the last attempt (0 = timeout or connection error).
    pub last_status: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifth_concurrent_request_for_a_mailbox_is_throttled() {
        let rt = Arc::new(GraphRuntime::default());
        let guards: Vec<_> = (0..4)
            .map(|_| rt.enter_mailbox("app", "mb").unwrap())
            .collect();
        let r = rt.enter_mailbox("app", "mb").err().unwrap();
        assert_eq!(r.retry_after_secs, 1);
        assert!(rt.enter_mailbox("app", "other").is_ok());
        drop(guards);
        assert!(rt.enter_mailbox("app", "mb").is_ok());
    }
}
