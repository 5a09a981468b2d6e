//! Injected faults (`POST /_sim/faults`): error statuses, latency, dropped notifications and
//! expired delta tokens.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The sim's Graph routes as fault patterns and request-count keys, so that clients' tests name
/// them through the sim instead of spelling Graph paths themselves.
pub mod routes {
    /// Every Graph v1.0 request.
    pub const GRAPH: &str = "/v1.0/";
    /// `/users/delta` (a full or delta round of users).
    pub const USERS_DELTA: &str = "/v1.0/users/delta";
    /// Subscription create, renew and delete.
    pub const SUBSCRIPTIONS: &str = "/v1.0/subscriptions";
    /// The request-count key of photo downloads.
    pub const PHOTO_VALUE_COUNT: &str = "GET /v1.0/users/{id}/photo/$value";
}

/// One fault rule as posted to `/_sim/faults`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FaultSpec {
    /// Path prefix (`/v1.0/users`), or a regex matched anywhere in the path.
    pub path: String,
    /// Only this HTTP method (any when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Status to answer with: 429, 500 or 503 (none: only latency/flags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `Retry-After` seconds sent with the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<f64>,
    /// Fire this many times, then the rule is spent (unlimited when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Fire on every n-th matching request only (n, 2n, 3n, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<u64>,
    /// Delay matching requests by this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// While the rule exists, change notifications are not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_notifications: Option<bool>,
    /// Delta tokens issued before this rule was added are answered as expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_delta_tokens: Option<bool>,
}

/// Why a fault rule was refused.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// Status outside 429/500/503 (and other 4xx/5xx).
    #[error("status must be an HTTP error status (for example 429, 500 or 503), got {0}")]
    BadStatus(u16),
    /// `every` of 0.
    #[error("every must be at least 1")]
    ZeroEvery,
    /// Empty path.
    #[error("path must not be empty")]
    EmptyPath,
}

struct Rule {
    spec: FaultSpec,
    regex: Option<regex::Regex>,
    seen: u64,
    fired: u64,
}

/// What a request should suffer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultHit {
    /// Extra latency in milliseconds.
    pub latency_ms: u64,
    /// Error status to answer with instead of handling the request.
    pub status: Option<u16>,
    /// `Retry-After` seconds.
    pub retry_after: Option<f64>,
}

/// The set of active fault rules.
#[derive(Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    delta_epoch: AtomicU64,
}

impl Faults {
    /// Adds a rule.
    pub fn add(&self, spec: FaultSpec) -> Result<(), FaultError> {
        if spec.path.is_empty() {
            return Err(FaultError::EmptyPath);
        }
        if let Some(s) = spec.status {
            if !(400..=599).contains(&s) {
                return Err(FaultError::BadStatus(s));
            }
        }
        if spec.every == Some(0) {
            return Err(FaultError::ZeroEvery);
        }
        if spec.expire_delta_tokens == Some(true) {
            self.delta_epoch.fetch_add(1, Ordering::SeqCst);
        }
        let regex = regex::Regex::new(&spec.path).ok();
        self.rules.lock().expect("faults lock").push(Rule {
            spec,
            regex,
            seen: 0,
            fired: 0,
        });
        Ok(())
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules.lock().expect("faults lock").clear();
    }

    /// The active rules.
    pub fn list(&self) -> Vec<FaultSpec> {
        self.rules
            .lock()
            .expect("faults lock")
            .iter()
            .map(|r| r.spec.clone())
            .collect()
    }

    /// True while a rule asks to drop change notifications.
    pub fn drop_notifications(&self) -> bool {
        self.rules
            .lock()
            .expect("faults lock")
            .iter()
            .any(|r| r.spec.drop_notifications == Some(true))
    }

    /// Current delta-token epoch (see [`crate::state::SimState::delta_epoch`]).
    pub fn delta_epoch(&self) -> u64 {
        self.delta_epoch.load(Ordering::SeqCst)
    }

    /// Applies the rules to one request: the first rule with a status that fires wins; latency
    /// of all matching rules adds up.
    pub fn on_request(&self, method: &str, path: &str) -> FaultHit {
        let mut hit = FaultHit::default();
        let mut rules = self.rules.lock().expect("faults lock");
        for rule in rules.iter_mut() {
            if !rule.matches(method, path) {
                continue;
            }
            if let Some(count) = rule.spec.count {
                if rule.fired >= count {
                    continue;
                }
            }
            rule.seen += 1;
            if let Some(every) = rule.spec.every {
                if rule.seen % every != 0 {
                    continue;
                }
            }
            let mut fired = false;
            if let Some(ms) = rule.spec.latency_ms {
                hit.latency_ms += ms;
                fired = true;
            }
            if hit.status.is_none() {
                if let Some(status) = rule.spec.status {
                    hit.status = Some(status);
                    hit.retry_after = rule.spec.retry_after;
                    fired = true;
                }
            }
            if fired {
                rule.fired += 1;
            }
        }
        hit
    }
}

impl Rule {
    fn matches(&self, method: &str, path: &str) -> bool {
        if let Some(m) = &self.spec.method {
            if !m.eq_ignore_ascii_case(method) {
                return false;
            }
        }
        path.starts_with(&self.spec.path) || self.regex.as_ref().is_some_and(|r| r.is_match(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str) -> FaultSpec {
        FaultSpec {
            path: path.into(),
            status: Some(429),
            ..Default::default()
        }
    }

    #[test]
    fn count_limits_how_often_a_rule_fires() {
        let f = Faults::default();
        f.add(FaultSpec {
            count: Some(2),
            ..spec("/v1.0/users")
        })
        .unwrap();
        let statuses: Vec<_> = (0..4)
            .map(|_| f.on_request("GET", "/v1.0/users").status)
            .collect();
        assert_eq!(statuses, vec![Some(429), Some(429), None, None]);
    }

    #[test]
    fn every_fires_on_each_nth_match_only() {
        let f = Faults::default();
        f.add(FaultSpec {
            every: Some(3),
            ..spec("/v1.0/")
        })
        .unwrap();
        let fired: Vec<_> = (0..6)
            .map(|_| f.on_request("GET", "/v1.0/users").status.is_some())
            .collect();
        assert_eq!(fired, vec![false, false, true, false, false, true]);
    }

    #[test]
    fn regex_and_method_narrow_the_match() {
        let f = Faults::default();
        f.add(FaultSpec {
            method: Some("POST".into()),
            ..spec(r"^/v1\.0/users/[^/]+/contacts$")
        })
        .unwrap();
        assert_eq!(f.on_request("GET", "/v1.0/users/a/contacts").status, None);
        assert_eq!(
            f.on_request("POST", "/v1.0/users/a/contacts").status,
            Some(429)
        );
        assert_eq!(f.on_request("POST", "/v1.0/users/a/events").status, None);
    }

    #[test]
    fn expire_delta_tokens_bumps_the_epoch() {
        let f = Faults::default();
        let before = f.delta_epoch();
        f.add(FaultSpec {
            path: "/v1.0/users/delta".into(),
            expire_delta_tokens: Some(true),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(f.delta_epoch(), before + 1);
    }
}
