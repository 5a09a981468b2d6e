//! Console sessions (security checklist §5, OWASP ASVS 4.0.3 V3).
//!
//! - The session id is 256 random bits, sent only in the cookie; the store keeps its SHA-256
//!   (`SessionRecord::id_hash`), so a database leak does not hand out live sessions (ASVS 3.2.2).
//! - A new id is issued at every login; a cookie presented at login is deleted (ASVS 3.2.1).
//! - Logout deletes the record on the server (ASVS 3.3.1).
//! - Idle timeout 30 min, absolute timeout 12 h (ASVS 3.3.2 L2), measured with an injectable
//!   [`Clock`] so tests can move time.
//! - Cookie `HttpOnly; SameSite=Lax; Path=/`, plus `Secure` and the `__Host-` prefix when the
//!   public URL is https or the server terminates TLS (ASVS 3.4.1–3.4.5).
//! - Each session carries a CSRF token that every console form posts back.
//!
//! Session ids are secrets: they are never logged, and nothing here implements `Debug` over them.

use crate::login_throttle::{
    FailureMap, HashingTurn, LoginRefusal, LoginThrottle, FREE_FAILURES_PER_NAME,
};
use axum::http::{header, HeaderMap, HeaderValue};
use chrono::{DateTime, Duration, Utc};
pub use pbx365_app::clock::{Clock, ManualClock, SystemClock};
pub use pbx365_app::secrets::{hash_secret, random_token, secrets_equal};
use pbx365_store::{SessionRecord, Store, StoreError};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Cookie name over plain http (development, loopback).
pub const COOKIE_PLAIN: &str = "pbx365_session";
/// Cookie name over https: the `__Host-` prefix makes the browser insist on `Secure`, `Path=/`
/// and no `Domain`, so a sibling subdomain cannot plant or overwrite it.
pub const COOKIE_SECURE: &str = "__Host-pbx365_session";
/// Name of the pre-login cookie that carries the login form's CSRF token (double submit).
pub const LOGIN_COOKIE_PLAIN: &str = "pbx365_login";
/// `__Host-` variant of [`LOGIN_COOKIE_PLAIN`].
pub const LOGIN_COOKIE_SECURE: &str = "__Host-pbx365_login";

/// Name of the cookie that binds a Microsoft sign-in to the browser that started it (plain http).
pub const SSO_COOKIE_PLAIN: &str = "pbx365_sso";
/// `__Host-` variant of [`SSO_COOKIE_PLAIN`].
pub const SSO_COOKIE_SECURE: &str = "__Host-pbx365_sso";

/// Timeouts and cookie flavour of console sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// `Secure` + `__Host-` cookies (https public URL or TLS on the listener).
    pub secure: bool,
    /// Session ends after this long without a request.
    pub idle: Duration,
    /// Session ends this long after login, however active.
    pub absolute: Duration,
}

impl SessionPolicy {
    /// The ASVS L2 timeouts (30 min idle, 12 h absolute); secure cookies when `public_url` is
    /// https or the listener itself speaks TLS.
    pub fn new(public_url: &str, tls: bool) -> Self {
        let https = public_url
            .trim()
            .to_ascii_lowercase()
            .starts_with("https://");
        SessionPolicy {
            secure: https || tls,
            idle: Duration::minutes(30),
            absolute: Duration::hours(12),
        }
    }

    /// Name of the session cookie.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            COOKIE_SECURE
        } else {
            COOKIE_PLAIN
        }
    }

    /// Name of the pre-login CSRF cookie.
    pub fn login_cookie_name(&self) -> &'static str {
        if self.secure {
            LOGIN_COOKIE_SECURE
        } else {
            LOGIN_COOKIE_PLAIN
        }
    }

    fn cookie(&self, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if let Some(secs) = max_age {
            c.push_str(&format!("; Max-Age={secs}"));
        }
        if self.secure {
            c.push_str("; Secure");
        }
        // Values are base64url or empty, so the header is always valid ASCII.
        HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Path=/"))
    }

    /// `Set-Cookie` value carrying a session id. No `Max-Age`: it is a browser-session cookie and
    /// the server enforces the timeouts.
    pub fn session_cookie(&self, id: &SessionId) -> HeaderValue {
        self.cookie(self.cookie_name(), &id.0, None)
    }

    /// `Set-Cookie` value that removes the session cookie.
    pub fn clear_session_cookie(&self) -> HeaderValue {
        self.cookie(self.cookie_name(), "", Some(0))
    }

    /// `Set-Cookie` value for the pre-login CSRF token (lives 1 hour).
    pub fn login_cookie(&self, token: &str) -> HeaderValue {
        self.cookie(self.login_cookie_name(), token, Some(3600))
    }

    /// Name of the Microsoft sign-in binding cookie.
    pub fn sso_cookie_name(&self) -> &'static str {
        if self.secure {
            SSO_COOKIE_SECURE
        } else {
            SSO_COOKIE_PLAIN
        }
    }

    /// `Set-Cookie` value binding a started Microsoft sign-in to this browser (lives as long as
    /// the sign-in may take). `SameSite=Lax` lets it ride on Microsoft's top-level redirect back.
    pub fn sso_cookie(&self, value: &str) -> HeaderValue {
        self.cookie(self.sso_cookie_name(), value, Some(600))
    }

    /// `Set-Cookie` value that removes the sign-in binding cookie.
    pub fn clear_sso_cookie(&self) -> HeaderValue {
        self.cookie(self.sso_cookie_name(), "", Some(0))
    }

    /// `Set-Cookie` value that removes the pre-login cookie.
    pub fn clear_login_cookie(&self) -> HeaderValue {
        self.cookie(self.login_cookie_name(), "", Some(0))
    }
}

/// A session id as the browser holds it. Deliberately no `Debug`/`Display`: it must not reach logs.
pub struct SessionId(String);

impl SessionId {
    /// The id's hex SHA-256, the only form the store sees.
    pub fn hash(&self) -> String {
        hash_secret(&self.0)
    }

    /// The raw value, for tests that replay a cookie.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The value of cookie `name` from all `Cookie` headers.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// How recent a password entry or Microsoft sign-in must be before a sensitive action: key
/// generation, admin consent, approving held deletions, a new SIP secret (ASVS 3.7.1).
pub const REAUTH_WITHIN_MINUTES: i64 = 5;

/// One session in its owner's list: never the id, only a handle derived from its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// Names the session in a revoke form (a hash of the store key, useless as a cookie).
    pub handle: String,
    /// The session of this very request.
    pub current: bool,
    /// Signed in.
    pub created_at: DateTime<Utc>,
    /// Last request.
    pub last_seen_at: DateTime<Utc>,
    /// Browser summary, e.g. "Firefox on Linux".
    pub browser: String,
}

/// The handle of a session in its owner's list: 128 bits of a hash of the stored id hash, so
/// neither the id nor the store key leaves the server.
fn session_handle(id_hash: &str) -> String {
    hash_secret(&format!("session-handle:{id_hash}"))[..32].to_string()
}

/// "Firefox on Linux" from a User-Agent header: enough for a person to tell their browsers
/// apart, nothing more is kept.
pub fn browser_summary(user_agent: &str) -> String {
    let ua = user_agent;
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chrome/", "Chrome"),
        ("Firefox/", "Firefox"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(token, _)| ua.contains(token))
    .map(|(_, name)| *name);
    let os = [
        ("Windows", "Windows"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Android", "Android"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(token, _)| ua.contains(token))
    .map(|(_, name)| *name);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_string(),
        (None, Some(o)) => format!("A browser on {o}"),
        (None, None) if ua.trim().is_empty() => String::new(),
        (None, None) => "Other client".to_string(),
    }
}

/// A logged-in console session, as found for a request.
#[derive(Clone)]
pub struct ActiveSession {
    /// The admin login name (or `ext:<number>` for an SSO session).
    pub subject: String,
    /// Token every console form (and cookie-authenticated API write) must send back.
    pub csrf_token: String,
    /// Hash of the id (store key); not secret, but not worth logging either.
    pub id_hash: String,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Last time the owner proved who they are (login or re-authentication).
    pub authenticated_at: DateTime<Utc>,
}

impl ActiveSession {
    /// True when `presented` equals this session's CSRF token (constant time).
    pub fn csrf_ok(&self, presented: &str) -> bool {
        secrets_equal(&self.csrf_token, presented)
    }
}

/// Why a request has no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSession {
    /// No cookie, or an id the server does not know (never issued, or logged out).
    Missing,
    /// The session was idle longer than allowed, or older than the absolute limit.
    Expired,
}

/// Why the session layer failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long the login of one name is refused after a run of failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Seconds to wait.
    pub retry_after_secs: i64,
}

/// Console sessions and login throttling: cheap to clone, shared through the app state.
#[derive(Clone)]
pub struct Sessions {
    store: Store,
    clock: Arc<dyn Clock>,
    policy: SessionPolicy,
    failures: Arc<Mutex<FailureMap>>,
    throttle: LoginThrottle,
}

impl Sessions {
    /// Sessions kept in `store`, timed by `clock`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, policy: SessionPolicy) -> Self {
        Sessions {
            store,
            clock,
            policy,
            failures: Arc::new(Mutex::new(FailureMap::new(FREE_FAILURES_PER_NAME))),
            throttle: LoginThrottle::default(),
        }
    }

    /// Sessions on the system clock with the policy for `public_url` / TLS (production).
    pub fn system(store: Store, public_url: &str, tls: bool) -> Self {
        Sessions::new(
            store,
            Arc::new(SystemClock),
            SessionPolicy::new(public_url, tls),
        )
    }

    /// The same sessions store and policy, timed by another clock (tests).
    pub fn with_clock(&self, clock: Arc<dyn Clock>) -> Self {
        Sessions::new(self.store.clone(), clock, self.policy)
    }

    /// The same store and clock with another cookie/timeout policy (tests, settings reload).
    pub fn with_policy(&self, policy: SessionPolicy) -> Self {
        Sessions::new(self.store.clone(), self.clock.clone(), policy)
    }

    /// The cookie and timeout policy.
    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    /// The clock sessions are timed by.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Starts a session for `subject` (after a successful login): a fresh id, a fresh CSRF token.
    /// Any session whose cookie came with the login request is deleted first, so an id planted
    /// before login (fixation) is worthless afterwards.
    pub async fn login(
        &self,
        subject: &str,
        request: &HeaderMap,
    ) -> Result<(SessionId, ActiveSession), SessionError> {
        if let Some(old) = cookie_value(request, self.policy.cookie_name()) {
            self.store.delete_session(&hash_secret(&old)).await?;
        }
        let id = SessionId(random_token());
        let now = self.clock.now();
        let record = SessionRecord {
            id_hash: id.hash(),
            subject: subject.to_string(),
            created_at: now,
            last_seen_at: now,
            csrf_token: random_token(),
            authenticated_at: now,
            user_agent: browser_summary(
                request
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
            ),
        };
        self.store.create_session(&record).await?;
        let active = ActiveSession {
            subject: record.subject,
            csrf_token: record.csrf_token,
            id_hash: record.id_hash,
            created_at: now,
            authenticated_at: now,
        };
        Ok((id, active))
    }

    /// The live session of a request, refreshing its idle timer; expired sessions are deleted.
    pub async fn current(
        &self,
        headers: &HeaderMap,
    ) -> Result<Result<ActiveSession, NoSession>, SessionError> {
        let Some(id) = cookie_value(headers, self.policy.cookie_name()).filter(|v| !v.is_empty())
        else {
            return Ok(Err(NoSession::Missing));
        };
        let id_hash = hash_secret(&id);
        let Some(rec) = self.store.get_session(&id_hash).await? else {
            return Ok(Err(NoSession::Missing));
        };
        let now = self.clock.now();
        if now - rec.last_seen_at >= self.policy.idle
            || now - rec.created_at >= self.policy.absolute
        {
            self.store.delete_session(&id_hash).await?;
            return Ok(Err(NoSession::Expired));
        }
        // Refreshing on every request would turn each page view into a write; a minute of
        // slack on a 30-minute idle limit does not matter.
        if now - rec.last_seen_at >= Duration::seconds(60) {
            self.store.touch_session(&id_hash, now).await?;
        }
        Ok(Ok(ActiveSession {
            subject: rec.subject,
            csrf_token: rec.csrf_token,
            id_hash: rec.id_hash,
            created_at: rec.created_at,
            authenticated_at: rec.authenticated_at,
        }))
    }

    /// True when the owner of `session` proved who they are within the last
    /// [`REAUTH_WITHIN_MINUTES`] (required before sensitive actions, ASVS 3.7.1).
    pub fn recently_authenticated(&self, session: &ActiveSession) -> bool {
        self.clock.now() - session.authenticated_at <= Duration::minutes(REAUTH_WITHIN_MINUTES)
    }

    /// Records that the owner of `session` just re-entered their password.
    pub async fn reauthenticated(&self, session: &ActiveSession) -> Result<(), SessionError> {
        self.store
            .reauthenticate_session(&session.id_hash, self.clock.now())
            .await?;
        Ok(())
    }

    /// The live sessions of `session`'s owner, the current one first, for their list.
    pub async fn list_own(
        &self,
        session: &ActiveSession,
    ) -> Result<Vec<SessionSummary>, SessionError> {
        let now = self.clock.now();
        let mut list: Vec<SessionSummary> = self
            .store
            .list_sessions_of(&session.subject)
            .await?
            .into_iter()
            .filter(|r| {
                now - r.last_seen_at < self.policy.idle && now - r.created_at < self.policy.absolute
            })
            .map(|r| SessionSummary {
                handle: session_handle(&r.id_hash),
                current: r.id_hash == session.id_hash,
                created_at: r.created_at,
                last_seen_at: r.last_seen_at,
                browser: if r.user_agent.is_empty() {
                    "Unknown browser".to_string()
                } else {
                    r.user_agent
                },
            })
            .collect();
        list.sort_by_key(|s| !s.current);
        Ok(list)
    }

    /// Ends the owner's session named by `handle` (from [`Self::list_own`]); true when one of
    /// their sessions had it. Another subject's sessions are never touched.
    pub async fn revoke_own(
        &self,
        session: &ActiveSession,
        handle: &str,
    ) -> Result<bool, SessionError> {
        for r in self.store.list_sessions_of(&session.subject).await? {
            if secrets_equal(&session_handle(&r.id_hash), handle) {
                return Ok(self
                    .store
                    .delete_session_of(&session.subject, &r.id_hash)
                    .await?);
            }
        }
        Ok(false)
    }

    /// Ends every other session of `session`'s owner ("sign out everywhere else"); returns how
    /// many ended.
    pub async fn revoke_others(&self, session: &ActiveSession) -> Result<u64, SessionError> {
        Ok(self
            .store
            .delete_other_sessions_of(&session.subject, &session.id_hash)
            .await?)
    }

    /// Ends the session of this request on the server (logout). Unknown cookies are ignored.
    pub async fn logout(&self, headers: &HeaderMap) -> Result<(), SessionError> {
        if let Some(id) = cookie_value(headers, self.policy.cookie_name()) {
            self.store.delete_session(&hash_secret(&id)).await?;
        }
        Ok(())
    }

    fn names(&self) -> std::sync::MutexGuard<'_, FailureMap> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err` with the wait when logins for `name` are currently refused after repeated failures.
    pub fn check_login_allowed(&self, name: &str) -> Result<(), Lockout> {
        self.names()
            .check(&name.to_lowercase(), self.clock.now())
            .map_err(|retry_after_secs| Lockout { retry_after_secs })
    }

    /// Records a failed login for `name`: after 5 failures each further one doubles the wait
    /// (1 s, 2 s, 4 s … up to 15 min). Counted per name whether or not it exists, so the
    /// throttle tells nothing about which names are real. At most
    /// [`crate::login_throttle::MAX_TRACKED`] names are remembered (oldest evicted first).
    pub fn record_login_failure(&self, name: &str) {
        let now = self.clock.now();
        self.names().fail(&name.to_lowercase(), now);
    }

    /// Clears the failure count of `name` after a successful login.
    pub fn record_login_success(&self, name: &str) {
        self.names().clear(&name.to_lowercase());
    }

    /// Lets a sign-in attempt go on to the password check, or says why not: its address or name
    /// is locked out, or no hashing turn came free in time. Hold the turn while verifying.
    pub async fn admit_login(
        &self,
        addr: Option<IpAddr>,
        name: &str,
    ) -> Result<HashingTurn, LoginRefusal> {
        let now = self.clock.now();
        self.throttle.check_address(addr, now)?;
        self.check_login_allowed(name)
            .map_err(|l| LoginRefusal::Name {
                retry_after_secs: l.retry_after_secs,
            })?;
        self.throttle.hashing_turn().await
    }

    /// Records a failed sign-in from `addr`.
    pub fn record_address_failure(&self, addr: Option<IpAddr>) {
        self.throttle.record_address_failure(addr, self.clock.now());
    }

    /// (names, addresses) whose failures are remembered: tests check both stay bounded.
    pub fn tracked_failures(&self) -> (usize, usize) {
        (self.names().len(), self.throttle.tracked_addresses())
    }

    /// Lowers the ceiling on remembered names and addresses (tests).
    pub fn limit_tracked(&self, cap: usize) {
        self.names().set_cap(cap);
        self.throttle.limit_tracked(cap);
    }
}

/// A console admin signed in through a session cookie.
#[derive(Clone)]
pub struct AdminSession {
    /// The admin's login name.
    pub admin: String,
    /// The session's CSRF token (forms post it; cookie-authenticated API writes send it as a header).
    pub csrf_token: String,
    /// The admin proved who they are within [`REAUTH_WITHIN_MINUTES`] (sensitive actions).
    pub recently_authenticated: bool,
}

/// The console admin behind the request's session cookie, if any (for the API's extractor).
/// Store failures count as "no session": the caller then answers 401 rather than leaking details.
pub async fn current_admin(state: &crate::AppState, headers: &HeaderMap) -> Option<AdminSession> {
    match state.sessions.current(headers).await {
        Ok(Ok(s)) if s.subject.starts_with(pbx365_app::sso::CONSOLE_SUBJECT) => state
            .app
            .sso_extension(pbx365_app::sso::Surface::Console, &s.subject)
            .await
            .map(|_| AdminSession {
                recently_authenticated: state.sessions.recently_authenticated(&s),
                admin: s.subject,
                csrf_token: s.csrf_token,
            }),
        Ok(Ok(s)) if !s.subject.starts_with("ext:") => Some(AdminSession {
            recently_authenticated: state.sessions.recently_authenticated(&s),
            admin: s.subject,
            csrf_token: s.csrf_token,
        }),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "session lookup failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_uses_the_plain_cookie_without_secure() {
        let p = SessionPolicy::new("http://127.0.0.1:8080", false);
        let c = p.session_cookie(&SessionId("abc".into()));
        assert_eq!(
            c.to_str().unwrap(),
            "pbx365_session=abc; Path=/; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn https_uses_the_host_prefix_and_secure() {
        for p in [
            SessionPolicy::new("https://pbx.example.com", false),
            SessionPolicy::new("http://x", true),
        ] {
            let c = p.session_cookie(&SessionId("abc".into()));
            assert_eq!(
                c.to_str().unwrap(),
                "__Host-pbx365_session=abc; Path=/; HttpOnly; SameSite=Lax; Secure"
            );
        }
    }

    #[test]
    fn browser_summaries_name_browser_and_system() {
        for (ua, want) in [
            ("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0", "Firefox on Linux"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0", "Edge on Windows"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", "Safari on iOS"),
            ("curl/8.4.0", "curl"),
            ("", ""),
        ] {
            assert_eq!(browser_summary(ua), want, "{ua}");
        }
    }

    #[test]
    fn cookie_value_finds_the_named_cookie_among_several_headers() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; pbx365_session_x=no"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("b=2;pbx365_session=yes"),
        );
        assert_eq!(cookie_value(&h, "pbx365_session").as_deref(), Some("yes"));
        assert_eq!(cookie_value(&h, "c"), None);
    }
}
