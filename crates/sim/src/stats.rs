//! Request counters (`GET /_sim/stats`), keyed by method and route template.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Counts of requests served (the control API itself is not counted).
#[derive(Default)]
pub struct Stats {
    total: AtomicU64,
    by_route: Mutex<BTreeMap<String, u64>>,
}

/// The JSON of `GET /_sim/stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StatsSnapshot {
    /// All counted requests.
    pub total: u64,
    /// `"GET /v1.0/users/{id}"` -> count (route templates, not raw paths).
    pub by_route: BTreeMap<String, u64>,
}

impl StatsSnapshot {
    /// Count for one `"METHOD /template"` key (0 when absent).
    pub fn route(&self, key: &str) -> u64 {
        self.by_route.get(key).copied().unwrap_or(0)
    }
}

impl Stats {
    /// Counts one request.
    pub fn record(&self, method: &str, route: &str) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let key = format!("{method} {route}");
        *self
            .by_route
            .lock()
            .expect("stats lock")
            .entry(key)
            .or_insert(0) += 1;
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            total: self.total.load(Ordering::Relaxed),
            by_route: self.by_route.lock().expect("stats lock").clone(),
        }
    }

    /// Resets the counters.
    pub fn clear(&self) {
        let mut map = self.by_route.lock().expect("stats lock");
        map.clear();
        self.total.store(0, Ordering::Relaxed);
    }
}
