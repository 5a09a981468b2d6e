//! Sign-in throttling (issue 9 item 5, security checklist §5).
//!
//! Every sign-in attempt costs an Argon2 verification (19 MiB and tens of milliseconds of CPU),
//! also for names that do not exist. Without a bound, a flood of wrong logins with random names
//! queued hundreds of hashes on the blocking pool and took the server to gigabytes of memory. So:
//! - a GLOBAL cap on concurrent hashing: [`HASHING_PERMITS`] at a time; an attempt waits at most
//!   [`HASHING_WAIT`] for a turn, then is refused with 429;
//! - failures are counted per client address (IPv6 by /64) and per user name, each backing off
//!   after its free failures (1 s, 2 s, 4 s … up to 15 min);
//! - both failure maps hold at most [`MAX_TRACKED`] entries: the oldest are evicted first.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Password verifications that may run at the same time (the server has few cores; more would
/// only queue and hold memory).
pub const HASHING_PERMITS: usize = 3;
/// How long an attempt waits for a hashing turn before it is refused.
pub const HASHING_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// Most names (and most addresses) whose failures are remembered.
pub const MAX_TRACKED: usize = 10_000;
/// Failures a user name may have before its sign-ins back off.
pub const FREE_FAILURES_PER_NAME: u32 = 5;
/// Failures one client address may have before its sign-ins back off (several admins may share
/// an office's address, so more than per name).
pub const FREE_FAILURES_PER_ADDRESS: u32 = 20;
/// Longest back-off.
const MAX_LOCKOUT_SECS: i64 = 15 * 60;
/// A count whose last failure is older than this (and not locked) starts again from zero.
const FORGET_AFTER_SECS: i64 = 15 * 60;

/// The client address of a request (from the server's connection info), if known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64 (one host usually holds a
/// whole /64, so counting single IPv6 addresses would not slow anyone down).
fn address_key(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Why a sign-in attempt is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefusal {
    /// Every hashing turn was taken for longer than [`HASHING_WAIT`].
    #[error("Too many sign-in attempts right now. Try again in a minute.")]
    Busy,
    /// This client address failed too often.
    #[error(
        "Too many failed sign-ins from your address. Try again in {retry_after_secs} seconds."
    )]
    Address {
        /// Seconds to wait.
        retry_after_secs: i64,
    },
    /// This user name failed too often.
    #[error(
        "Too many failed sign-ins for this user name. Try again in {retry_after_secs} seconds."
    )]
    Name {
        /// Seconds to wait.
        retry_after_secs: i64,
    },
}

impl LoginRefusal {
    /// Seconds to put in `Retry-After`.
    pub fn retry_after_secs(&self) -> i64 {
        match self {
            LoginRefusal::Busy => 60,
            LoginRefusal::Address { retry_after_secs }
            | LoginRefusal::Name { retry_after_secs } => *retry_after_secs,
        }
    }
}

struct Failures {
    count: u32,
    locked_until: Option<DateTime<Utc>>,
    last: DateTime<Utc>,
}

/// Failure counts by key with a fixed ceiling on entries.
pub(crate) struct FailureMap {
    entries: HashMap<String, Failures>,
    free: u32,
    cap: usize,
}

impl FailureMap {
    /// An empty map; `free` failures are allowed before backing off.
    pub(crate) fn new(free: u32) -> Self {
        FailureMap {
            entries: HashMap::new(),
            free,
            cap: MAX_TRACKED,
        }
    }

    /// `Err(seconds to wait)` while `key` is locked out.
    pub(crate) fn check(&self, key: &str, now: DateTime<Utc>) -> Result<(), i64> {
        match self.entries.get(key).and_then(|f| f.locked_until) {
            Some(until) if until > now => Err((until - now).num_seconds().max(1)),
            _ => Ok(()),
        }
    }

    /// Counts a failure of `key`; after the free ones each doubles the wait.
    pub(crate) fn fail(&mut self, key: &str, now: DateTime<Utc>) {
        if !self.entries.contains_key(key) && self.entries.len() >= self.cap {
            self.evict_oldest();
        }
        let f = self.entries.entry(key.to_string()).or_insert(Failures {
            count: 0,
            locked_until: None,
            last: now,
        });
        let locked = f.locked_until.is_some_and(|u| u > now);
        if !locked && now - f.last >= Duration::seconds(FORGET_AFTER_SECS) {
            f.count = 0;
            f.locked_until = None;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        if f.count >= self.free {
            let exp = (f.count - self.free).min(20);
            let secs = (1i64 << exp).min(MAX_LOCKOUT_SECS);
            f.locked_until = Some(now + Duration::seconds(secs));
        }
    }

    /// Forgets `key` (after a successful sign-in).
    pub(crate) fn clear(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Lowers (or raises) the ceiling on entries (tests).
    pub(crate) fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops the oldest eighth of the entries (by last failure) in one pass, so that a flood of
    /// new keys costs one sort per `cap / 8` insertions, not a scan per insertion.
    fn evict_oldest(&mut self) {
        let drop = (self.cap / 8).max(1);
        let mut by_age: Vec<(DateTime<Utc>, String)> = self
            .entries
            .iter()
            .map(|(k, f)| (f.last, k.clone()))
            .collect();
        by_age.sort_unstable();
        for (_, k) in by_age.into_iter().take(drop) {
            self.entries.remove(&k);
        }
    }
}

/// The global hashing cap and the per-address failure counts; cheap to clone (shared).
#[derive(Clone)]
pub struct LoginThrottle {
    hashing: Arc<Semaphore>,
    wait: std::time::Duration,
    by_address: Arc<Mutex<FailureMap>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle::new(HASHING_PERMITS, HASHING_WAIT)
    }
}

/// A turn to hash a password; the next attempt may start when it is dropped.
pub struct HashingTurn(#[allow(dead_code)] OwnedSemaphorePermit);

impl LoginThrottle {
    /// `permits` concurrent verifications, each attempt waiting at most `wait` for one.
    pub fn new(permits: usize, wait: std::time::Duration) -> Self {
        LoginThrottle {
            hashing: Arc::new(Semaphore::new(permits.max(1))),
            wait,
            by_address: Arc::new(Mutex::new(FailureMap::new(FREE_FAILURES_PER_ADDRESS))),
        }
    }

    fn addresses(&self) -> std::sync::MutexGuard<'_, FailureMap> {
        self.by_address.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err` while `addr` is locked out.
    pub fn check_address(
        &self,
        addr: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<(), LoginRefusal> {
        match addr {
            Some(a) => self
                .addresses()
                .check(&address_key(a), now)
                .map_err(|retry_after_secs| LoginRefusal::Address { retry_after_secs }),
            None => Ok(()),
        }
    }

    /// Waits (briefly) for a turn to hash a password.
    pub async fn hashing_turn(&self) -> Result<HashingTurn, LoginRefusal> {
        match tokio::time::timeout(self.wait, self.hashing.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(HashingTurn(permit)),
            _ => Err(LoginRefusal::Busy),
        }
    }

    /// Counts a failed sign-in from `addr`.
    pub fn record_address_failure(&self, addr: Option<IpAddr>, now: DateTime<Utc>) {
        if let Some(a) = addr {
            self.addresses().fail(&address_key(a), now);
        }
    }

    /// Addresses whose failures are remembered (tests check the bound).
    pub fn tracked_addresses(&self) -> usize {
        self.addresses().len()
    }

    /// Lowers the ceiling on remembered addresses (tests).
    pub fn limit_tracked(&self, cap: usize) {
        self.addresses().set_cap(cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn the_map_never_holds_more_than_its_cap_and_evicts_the_oldest() {
        let mut m = FailureMap::new(5);
        m.cap = 16;
        for i in 0..1000 {
            m.fail(&format!("name{i}"), t(i));
            assert!(m.len() <= 16);
        }
        assert!(m.entries.contains_key("name999"));
        assert!(!m.entries.contains_key("name0"));
    }

    #[test]
    fn failures_back_off_after_the_free_ones_and_are_forgotten_later() {
        let mut m = FailureMap::new(3);
        for _ in 0..2 {
            m.fail("a", t(0));
        }
        assert_eq!(m.check("a", t(0)), Ok(()));
        m.fail("a", t(0));
        assert_eq!(m.check("a", t(0)), Err(1));
        assert_eq!(m.check("a", t(1)), Ok(()));
        // Long after, a single new failure does not lock again.
        m.fail("a", t(3600));
        assert_eq!(m.check("a", t(3600)), Ok(()));
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        let v4: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(v4), "192.0.2.7");
    }

    #[tokio::test]
    async fn an_attempt_is_refused_when_every_hashing_turn_stays_taken() {
        let throttle = LoginThrottle::new(1, std::time::Duration::from_millis(20));
        let held = throttle.hashing_turn().await.unwrap();
        assert_eq!(
            throttle.hashing_turn().await.err(),
            Some(LoginRefusal::Busy)
        );
        drop(held);
        assert!(throttle.hashing_turn().await.is_ok());
    }
}
