//! The Microsoft 365 connection (SPEC §2): the Application (client) ID, the key pair and its
//! certificate (generation, rotation, expiry warnings), admin consent (the `/oauth2office2`
//! answer is checked and exchanged for a token here) and the connection check.
//!
//! Everything here talks to Microsoft only through the settings' endpoints (`m365.authority_url`,
//! `m365.graph_url`, `m365.ca_file`), so m365-sim and the real service are the same code path.

use crate::secrets::{hash_secret, random_token, secrets_equal};
use crate::{App, AppError};
use chrono::{DateTime, Utc};
use pbx365_domain::Guid;
use pbx365_graph::keys::ExpiryStatus;
use pbx365_graph::{GraphClient, GraphConfig, GraphError, RawError};
use pbx365_store::{OAuthState, Store};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use pbx365_graph::keys::{generate_pair, generate_pair_valid, host_of};
pub use pbx365_graph::{
    required_permissions, run_checks, CertificateInfo, Check, KeyStore, RequiredPermission, Slot,
};

/// The scope of the admin-consent request: every application permission configured on the app.
pub use pbx365_graph::token::GRAPH_DEFAULT_SCOPE;
/// `purpose` of the state stored when an admin starts admin consent.
pub const ADMIN_CONSENT: &str = "admin_consent";
/// How long a started admin consent may take.
const STATE_LIFETIME_MINUTES: i64 = 15;
/// kv key of the permissions seen in the last token (JSON [`LastPermissions`]).
const KV_PERMISSIONS: &str = "m365:last_permissions";
/// kv key of the last connection check (JSON [`LastCheck`]).
const KV_CHECK: &str = "m365:last_check";
/// kv key of the last expiry warning sent: `{thumbprint}:{threshold}`.
const KV_EXPIRY_WARNED: &str = "m365:expiry_warned";

/// Permissions of the last token pbx365 obtained (callback or check).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastPermissions {
    /// When.
    pub at: DateTime<Utc>,
    /// The token's `tid`.
    pub tenant: String,
    /// The token's `roles`.
    pub roles: Vec<String>,
}

/// One stored line of the last connection check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredCheck {
    /// What was checked.
    pub name: String,
    /// Passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do.
    pub fix: Option<String>,
}

/// The last connection check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastCheck {
    /// When it ran.
    pub at: DateTime<Utc>,
    /// Its lines.
    pub checks: Vec<StoredCheck>,
}

/// Everything the Configure page shows about the connection.
pub struct Connection {
    /// The certificate pbx365 signs with.
    pub cert: Option<CertificateInfo>,
    /// Why the key file cannot be used (wrong mode, damaged), when it cannot.
    pub key_error: Option<String>,
    /// A newer certificate waiting for its first token (rotation).
    pub pending_cert: Option<CertificateInfo>,
    /// Certificate expiry warning (30/14/7/1 days, or expired).
    pub banner: Option<String>,
    /// Permissions of the last token.
    pub permissions: Option<LastPermissions>,
    /// The last connection check.
    pub checks: Option<LastCheck>,
}

/// A key pair just generated.
pub struct NewKeyPair {
    /// The new certificate.
    pub certificate: CertificateInfo,
    /// `Active` for a first pair (used at once), `Pending` during a rotation.
    pub slot: Slot,
    /// Where the private key was written.
    pub key_path: PathBuf,
}

/// Generates a key pair and its self-signed certificate for the host of `public_url` in
/// `data_dir` (the first one is used at once; a later one waits until Microsoft accepts it).
pub fn generate_key_pair(data_dir: &Path, public_url: &str) -> Result<NewKeyPair, AppError> {
    let keys = KeyStore::new(data_dir);
    let g = keys
        .generate(&host_of(public_url))
        .map_err(|e| AppError::Keys(e.to_string()))?;
    Ok(NewKeyPair {
        key_path: keys.path(g.slot),
        certificate: g.certificate,
        slot: g.slot,
    })
}

/// Refuses a private key others can read: a leaked key (security checklist R5.2).
pub fn check_key_file_modes(data_dir: &Path) -> Result<(), AppError> {
    KeyStore::new(data_dir)
        .check_file_modes()
        .map_err(|e| AppError::Keys(e.to_string()))
}

/// The certificate the admin uploads (the new one during a rotation), if any.
pub fn certificate_for_upload(data_dir: &Path) -> Result<Option<String>, AppError> {
    KeyStore::new(data_dir)
        .certificate_for_upload()
        .map(|c| c.map(|c| c.pem))
        .map_err(|e| AppError::Keys(e.to_string()))
}

/// The active certificate, when a key pair exists.
pub fn active_certificate(data_dir: &Path) -> Result<Option<CertificateInfo>, AppError> {
    KeyStore::new(data_dir)
        .load(Slot::Active)
        .map(|c| c.map(|c| c.certificate().clone()))
        .map_err(|e| AppError::Keys(e.to_string()))
}

/// The console banner for the certificate pbx365 signs with: a sentence 30, 14, 7 and 1 days
/// before it expires and once it has expired, else `None` (also for no or unreadable keys).
pub fn expiry_banner(data_dir: &Path, now: DateTime<Utc>) -> Option<String> {
    let cred = KeyStore::new(data_dir).load(Slot::Active).ok().flatten()?;
    let cert = cred.certificate();
    let date = cert.not_after.format("%Y-%m-%d");
    match cert.expiry(now) {
        ExpiryStatus::Valid { .. } => None,
        ExpiryStatus::Warning { days_left, .. } => Some(format!(
            "The Microsoft 365 certificate expires on {date} (in {days_left} days): generate a new key pair and upload public_key.pem to the app registration before then."
        )),
        ExpiryStatus::Expired => Some(format!(
            "The Microsoft 365 certificate expired on {date}: pbx365 cannot reach Microsoft 365. Generate a new key pair and upload public_key.pem to the app registration."
        )),
    }
}

/// Logs the certificate-expiry warning once per threshold (30, 14, 7, 1 days, then expired) and
/// returns its sentence when it was due now (for a mail, once mail exists). The server checks
/// daily; the Configure page too, so an admin looking at the page is never ahead of the log.
pub async fn warn_certificate_expiry(
    store: &Store,
    data_dir: &Path,
    now: DateTime<Utc>,
) -> Option<String> {
    let cred = KeyStore::new(data_dir).load(Slot::Active).ok().flatten()?;
    let cert = cred.certificate();
    let last: Option<u32> = store
        .get_kv(KV_EXPIRY_WARNED)
        .await
        .ok()
        .flatten()
        .and_then(|v| {
            v.strip_prefix(&format!("{}:", cert.thumbprint_hex))
                .and_then(|t| t.parse().ok())
        });
    let due = pbx365_graph::keys::expiry_warning_due(cert.not_after, now, last)?;
    let sentence = expiry_banner(data_dir, now)?;
    tracing::warn!(thumbprint = %cert.thumbprint_hex, threshold_days = due, "{sentence}");
    if let Err(e) = store
        .set_kv(KV_EXPIRY_WARNED, &format!("{}:{due}", cert.thumbprint_hex))
        .await
    {
        tracing::warn!(error = %e, "could not remember the certificate-expiry warning");
    }
    Some(sentence)
}

/// The admin-consent URL (v2 endpoint) for `client_id`, answered at `redirect_uri` with `state`.
pub fn admin_consent_url(
    authority_url: &str,
    tenant: Option<&str>,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
) -> String {
    let tenant = tenant
        .filter(|t| !t.trim().is_empty())
        .unwrap_or("organizations");
    let query = serde_urlencoded::to_string([
        ("client_id", client_id),
        ("scope", GRAPH_DEFAULT_SCOPE),
        ("redirect_uri", redirect_uri),
        ("state", state),
    ])
    .unwrap_or_default();
    format!(
        "{}/{}/v2.0/adminconsent?{query}",
        authority_url.trim_end_matches('/'),
        url_segment(tenant)
    )
}

fn url_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The console session an admin-consent answer arrives in.
pub struct ConsentSession<'a> {
    /// Hash of the session id.
    pub id_hash: &'a str,
    /// The session's subject (admin name, or `ext:<number>` for an extension user).
    pub subject: &'a str,
}

/// What a finished `/oauth2office2` answer leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentOutcome {
    /// Show `message` on the Configure page of the session `session` (a session id hash).
    Page {
        /// The session id hash.
        session: String,
        /// Success or failure.
        ok: bool,
        /// The sentence.
        message: String,
    },
    /// No console session to show it in: a page of its own.
    Alone {
        /// HTTP status.
        status: u16,
        /// Page title.
        title: &'static str,
        /// The sentence.
        message: String,
    },
}

/// What an answer at the redirect URI led to: an admin consent, or a single sign-on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectOutcome {
    /// The admin consent flow (or an answer no flow claims).
    Consent(ConsentOutcome),
    /// A Microsoft sign-in: signed in, or refused with its own page.
    SignIn(Result<crate::sso::SsoSignedIn, crate::sso::SsoRefusal>),
}

/// The sentence for a callback that did not come from a sign-in started here.
const FORGED: &str = "This sign-in answer does not belong to a sign-in started from this browser (it is unknown, \
already used or expired), so nothing was changed. Click \"Sign in to Microsoft 365\" to start again.";

async fn read_json<T: serde::de::DeserializeOwned>(store: &Store, key: &str) -> Option<T> {
    let raw = store.get_kv(key).await.ok().flatten()?;
    serde_json::from_str(&raw).ok()
}

impl App {
    /// The redirect URI registered in Azure: `{public_url}/oauth2office2`.
    pub fn redirect_uri(&self) -> String {
        format!(
            "{}/oauth2office2",
            self.settings().effective_public_url().trim_end_matches('/')
        )
    }

    /// The connection as the Configure page shows it (also logs a due expiry warning).
    pub async fn connection(&self) -> Connection {
        let now = self.now();
        warn_certificate_expiry(&self.store, self.data_dir(), now).await;
        let keys = KeyStore::new(self.data_dir());
        let (cert, key_error) = match keys.load(Slot::Active) {
            Ok(c) => (c.map(|c| c.certificate().clone()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Connection {
            cert,
            key_error,
            pending_cert: keys
                .load(Slot::Pending)
                .ok()
                .flatten()
                .map(|c| c.certificate().clone()),
            banner: expiry_banner(self.data_dir(), now),
            permissions: read_json(&self.store, KV_PERMISSIONS).await,
            checks: read_json(&self.store, KV_CHECK).await,
        }
    }

    /// Checks the certificate's expiry at start and then every six hours; the warning itself is
    /// logged once per threshold (30, 14, 7, 1 days), however often this runs.
    pub fn watch_certificate_expiry(&self) -> tokio::task::JoinHandle<()> {
        let app = self.clone();
        tokio::spawn(async move {
            loop {
                let settings = app.settings();
                if let Some(sentence) =
                    warn_certificate_expiry(&app.store, &settings.data_dir, app.now()).await
                {
                    app.queue_certificate_alert(&sentence).await;
                }
                tokio::time::sleep(std::time::Duration::from_secs(6 * 3600)).await;
            }
        })
    }

    /// Saves the Application (client) ID (a GUID, else [`AppError::Validation`]). Another app
    /// than before forgets what was known about the old one's permissions.
    pub async fn save_client_id(&self, actor: &str, raw: &str) -> Result<Guid, AppError> {
        let guid = Guid::parse("Application (client) ID", raw)?;
        let previous = self.settings().m365.client_id.clone();
        self.store_setting("m365.client_id", serde_json::json!(guid.as_str()))
            .await?;
        if previous.as_deref() != Some(guid.as_str()) {
            let _ = self.store.delete_kv(KV_PERMISSIONS).await;
            let _ = self.store.delete_kv(KV_CHECK).await;
        }
        self.audit(actor, "m365.client_id", guid.as_str(), "").await;
        Ok(guid)
    }

    /// Generates a key pair for the public URL's host (off the async workers: RSA key
    /// generation takes a moment of CPU).
    pub async fn generate_keys(&self, actor: &str) -> Result<NewKeyPair, AppError> {
        let data_dir = self.data_dir().to_path_buf();
        let public_url = self.settings().effective_public_url();
        let result =
            tokio::task::spawn_blocking(move || generate_key_pair(&data_dir, &public_url)).await;
        match result {
            Ok(Ok(pair)) => {
                self.audit(actor, "m365.keygen", &pair.certificate.thumbprint_hex, "")
                    .await;
                Ok(pair)
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "key generation failed");
                Err(e)
            }
            Err(e) => {
                tracing::error!(error = %e, "key generation task failed");
                Err(AppError::Internal("the key generation task failed".into()))
            }
        }
    }

    /// Starts admin consent for the console session `session_hash`: a one-time `state`
    /// (stored hashed, bound to the session) and the URL to send the browser to. Refusals are
    /// [`AppError::Invalid`] sentences.
    pub async fn start_admin_consent(
        &self,
        actor: &str,
        session_hash: &str,
    ) -> Result<String, AppError> {
        let settings = self.settings();
        let Some(client_id) = settings.m365.client_id.clone().filter(|c| !c.is_empty()) else {
            return Err(AppError::Invalid(
                "Enter the Application (client) ID before signing in to Microsoft 365.".into(),
            ));
        };
        let keys = KeyStore::new(self.data_dir());
        if !keys.exists(Slot::Active) && !keys.exists(Slot::Pending) {
            return Err(AppError::Invalid("Generate a key pair and upload public_key.pem to the app registration before signing in: pbx365 proves the connection with it.".into()));
        }
        let value = random_token();
        let record = OAuthState {
            state_hash: hash_secret(&value),
            purpose: ADMIN_CONSENT.to_string(),
            session_hash: session_hash.to_string(),
            data: serde_json::json!({ "client_id": client_id, "admin": actor }),
            // Real time, not the app clock: the store expires states by the wall clock.
            expires_at: Utc::now() + chrono::Duration::minutes(STATE_LIFETIME_MINUTES),
        };
        if let Err(e) = self.store.put_oauth_state(&record).await {
            tracing::error!(error = %e, "storing the admin-consent state failed");
            return Err(AppError::Invalid(
                "The sign-in could not be started; the server log has the details.".into(),
            ));
        }
        let url = admin_consent_url(
            &settings.m365.authority_url,
            settings.m365.tenant_id.as_deref(),
            &client_id,
            &self.redirect_uri(),
            &value,
        );
        tracing::info!(client_id = %client_id, "admin consent started");
        Ok(url)
    }

    /// Checks an answer at the redirect URI and finishes its flow. Nothing in it is trusted: the
    /// state must be ours, unused, unexpired and bound to this browser's console session
    /// (R3.2), and the tenant is recorded only after pbx365 got an app-only token for it whose
    /// `tid` matches (R3.8).
    ///
    /// Admin consent answer (https://learn.microsoft.com/entra/identity-platform/v2-admin-consent):
    /// `admin_consent=True&tenant=…&state=…` (v2 adds `scope`), or `error` + `error_description`
    /// (+ `admin_consent=True` in v2's decline example).
    ///
    /// A sign-in's state (`sso_console`, `sso_webclient`) is finished by the SSO use case with
    /// the browser's binding cookie `sso_binding` ([`crate::sso`]).
    pub async fn finish_oauth(
        &self,
        session: Option<ConsentSession<'_>>,
        sso_binding: Option<&str>,
        params: &HashMap<String, String>,
    ) -> RedirectOutcome {
        let consent = |c: ConsentOutcome| RedirectOutcome::Consent(c);
        let refuse = |message: &str| match &session {
            Some(s) => ConsentOutcome::Page {
                session: s.id_hash.to_string(),
                ok: false,
                message: message.to_string(),
            },
            None => ConsentOutcome::Alone {
                status: 400,
                title: "Sign-in not accepted",
                message: message.to_string(),
            },
        };
        let Some(value) = params.get("state").filter(|s| !s.is_empty()) else {
            tracing::warn!("OAuth callback without state refused");
            return consent(refuse(FORGED));
        };
        // Single use: taking it deletes it, whatever happens next.
        let taken = match self
            .store
            .take_oauth_state(&hash_secret(value), Utc::now())
            .await
        {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "reading the OAuth state failed");
                return consent(refuse("The sign-in answer could not be checked; the server log has the details. Nothing was changed."));
            }
        };
        let Some(flow) = taken else {
            tracing::warn!("OAuth callback with an unknown, used or expired state refused");
            return consent(refuse(FORGED));
        };
        // Each purpose finishes its own flow, with its own binding check: the admin's console
        // session for consent, the sign-in cookie for SSO.
        if let Some(surface) = App::sso_surface(&flow.purpose) {
            return RedirectOutcome::SignIn(
                self.finish_sso(surface, &flow, sso_binding, params).await,
            );
        }
        match flow.purpose.as_str() {
            ADMIN_CONSENT => consent(self.admin_consent(session, &flow, params).await),
            other => {
                tracing::warn!(
                    purpose = other,
                    "OAuth callback for a flow this version does not handle"
                );
                consent(refuse(FORGED))
            }
        }
    }

    /// Finishes admin consent for the console session the state was bound to.
    async fn admin_consent(
        &self,
        session: Option<ConsentSession<'_>>,
        flow: &OAuthState,
        params: &HashMap<String, String>,
    ) -> ConsentOutcome {
        // Bound to the admin's console session: another browser (or a logged-out one) gets nothing.
        let Some(session) = session.as_ref().filter(|s| {
            !s.subject.starts_with("ext:") && secrets_equal(s.id_hash, &flow.session_hash)
        }) else {
            tracing::warn!(
                "admin-consent callback from a session other than the one that started it refused"
            );
            return match session {
                Some(s) => ConsentOutcome::Page {
                    session: s.id_hash.to_string(),
                    ok: false,
                    message: FORGED.to_string(),
                },
                None => ConsentOutcome::Alone {
                    status: 400,
                    title: "Sign-in not accepted",
                    message: format!(
                        "{FORGED} If you started it, sign in to the console in this browser first."
                    ),
                },
            };
        };
        let page = |ok: bool, message: String| ConsentOutcome::Page {
            session: session.id_hash.to_string(),
            ok,
            message,
        };
        let client_id = flow.data["client_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let admin = flow.data["admin"]
            .as_str()
            .unwrap_or(session.subject)
            .to_string();

        if let Some(error) = params.get("error").filter(|e| !e.is_empty()) {
            let description = params
                .get("error_description")
                .map(String::as_str)
                .unwrap_or_default();
            let e = redirect_error(error, description, &client_id, &self.redirect_uri());
            tracing::warn!(error = %error, description = %description.replace(['\r', '\n'], " "), "admin consent failed");
            return page(false, format!("Microsoft 365 was not connected: {e}"));
        }
        if !params
            .get("admin_consent")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return page(false, "Microsoft did not confirm the admin consent, so nothing was changed. Click \"Sign in to Microsoft 365\" and accept the permissions.".into());
        }
        let settings = self.settings();
        if settings.m365.client_id.as_deref() != Some(client_id.as_str()) {
            return page(false, "The Application (client) ID was changed while you were signing in, so nothing was recorded. Click \"Sign in to Microsoft 365\" again.".into());
        }
        // Untrusted until a token for it proves it (R3.8).
        let claimed = match params.get("tenant").map(|t| Guid::parse("tenant ID", t)) {
            Some(Ok(g)) => g,
            _ => {
                return page(false, "Microsoft's answer did not name the tenant as a GUID, so nothing was recorded. Click \"Sign in to Microsoft 365\" again.".into())
            }
        };
        let mut config = match GraphConfig::from_settings(&settings.m365) {
            Ok(c) => c,
            Err(e) => {
                return page(
                    false,
                    format!("Admin consent was granted, but pbx365 cannot use it yet: {e}."),
                )
            }
        };
        config.tenant_id = Some(claimed.as_str().to_string());
        config.client_id = Some(client_id.clone());
        // A new client has an empty cache: the token is fresh and carries the roles just granted.
        let token = match GraphClient::new(config, KeyStore::new(self.data_dir())) {
            Ok(client) => client.token().await,
            Err(e) => Err(e),
        };
        let token = match token {
            Ok(t) => t,
            Err(e) => {
                if let Some(raw) = e.raw() {
                    tracing::warn!(raw = %raw, "token after admin consent refused");
                }
                return page(false, format!("Admin consent was granted, but pbx365 could not get a token for tenant {}: {e}. Nothing was recorded.", claimed.as_str()));
            }
        };
        match token.tenant_id.as_deref() {
            Some(tid) if tid.eq_ignore_ascii_case(claimed.as_str()) => {}
            other => {
                tracing::warn!(claimed = %claimed.as_str(), token_tid = ?other, "admin-consent tenant does not match the token's tid");
                return page(false, format!(
                    "Microsoft issued the token for tenant {}, not for tenant {} named in the sign-in answer, so nothing was recorded.",
                    other.unwrap_or("(none)"),
                    claimed.as_str()
                ));
            }
        }
        if let Err(e) = self
            .store_setting("m365.tenant_id", serde_json::json!(claimed.as_str()))
            .await
        {
            tracing::error!(error = %e, "storing m365.tenant_id failed");
            return page(
                false,
                "The tenant could not be saved; the server log has the details.".into(),
            );
        }
        self.record_permissions(claimed.as_str(), &token.roles)
            .await;
        let missing = pbx365_graph::missing_permissions(&token.roles);
        self.audit(
            &admin,
            "m365.admin_consent",
            claimed.as_str(),
            format!("{} of 5 permissions", 5 - missing.len()),
        )
        .await;
        tracing::info!(tenant = %claimed.as_str(), roles = ?token.roles, "Microsoft 365 admin consent recorded");
        if missing.is_empty() {
            page(
                true,
                format!(
                    "Connected to Microsoft 365 tenant {}: all five permissions are granted.",
                    claimed.as_str()
                ),
            )
        } else {
            let names: Vec<&str> = missing.iter().map(|p| p.name).collect();
            page(false, format!(
                "Connected to Microsoft 365 tenant {}, but {} of the five permissions {} missing: {}. Add {} to the app registration (Application permissions) and sign in again.",
                claimed.as_str(),
                missing.len(),
                if missing.len() == 1 { "is" } else { "are" },
                names.join(", "),
                if missing.len() == 1 { "it" } else { "them" },
            ))
        }
    }

    /// Records the permissions of a token for the status box.
    async fn record_permissions(&self, tenant: &str, roles: &[String]) {
        let value = LastPermissions {
            at: Utc::now(),
            tenant: tenant.to_string(),
            roles: roles.to_vec(),
        };
        if let Err(e) = self
            .store
            .set_kv(
                KV_PERMISSIONS,
                &serde_json::to_string(&value).unwrap_or_default(),
            )
            .await
        {
            tracing::warn!(error = %e, "could not record the granted permissions");
        }
    }

    /// Runs the doctor's checks and keeps their result (and the permissions a token showed)
    /// for the Configure page.
    pub async fn check_connection(&self) {
        let settings = self.settings();
        let checks = run_checks(&settings, self.data_dir(), settings.public_url.as_deref()).await;
        // The token check's permission lines are the freshest view of what is granted.
        let granted: Vec<String> = checks
            .iter()
            .filter(|c| c.ok)
            .filter_map(|c| c.name.strip_prefix("permission ").map(str::to_string))
            .collect();
        let token_ok = checks.iter().any(|c| c.name == "token" && c.ok);
        if token_ok {
            let tenant = settings.m365.tenant_id.clone().unwrap_or_default();
            self.record_permissions(&tenant, &granted).await;
        }
        let stored = LastCheck {
            at: Utc::now(),
            checks: checks
                .into_iter()
                .map(|c| StoredCheck {
                    name: c.name,
                    ok: c.ok,
                    detail: c.detail,
                    fix: c.fix,
                })
                .collect(),
        };
        if let Err(e) = self
            .store
            .set_kv(
                KV_CHECK,
                &serde_json::to_string(&stored).unwrap_or_default(),
            )
            .await
        {
            tracing::warn!(error = %e, "could not keep the connection check");
        }
    }
}

/// Microsoft's error redirect as the graph crate's sentence (the raw code goes to the log).
fn redirect_error(error: &str, description: &str, client_id: &str, redirect_uri: &str) -> String {
    let code: Option<u64> = description
        .find("AADSTS")
        .map(|i| &description[i + 6..])
        .and_then(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        });
    let raw = RawError {
        status: 400,
        code: code
            .map(|c| format!("AADSTS{c}"))
            .unwrap_or_else(|| error.to_string()),
        oauth_error: Some(error.to_string()),
        message: description.lines().next().unwrap_or_default().to_string(),
        request_id: None,
        correlation_id: None,
    };
    let e = match (error, code) {
        (_, Some(700016)) => GraphError::UnknownApp { client_id: client_id.into(), tenant: "the tenant you signed in to".into(), raw: raw.into() },
        (_, Some(50011)) => {
            return format!(
                "the Redirect URI {redirect_uri} is not registered in the app registration: add it under Authentication (platform Web) and sign in again"
            )
        }
        (_, Some(90002 | 90013 | 900023)) => GraphError::TenantNotFound { tenant: "named in the sign-in".into(), raw: raw.into() },
        ("access_denied" | "consent_required", _) | (_, Some(65001 | 65004)) => GraphError::ConsentMissing { raw: Some(raw.into()) },
        _ => GraphError::Identity { raw: raw.into() },
    };
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_consent_url_uses_organizations_until_the_tenant_is_known() {
        let u = admin_consent_url(
            "https://login.example/",
            None,
            "c1",
            "https://pbx/oauth2office2",
            "s t",
        );
        assert_eq!(
            u,
            "https://login.example/organizations/v2.0/adminconsent?client_id=c1&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&redirect_uri=https%3A%2F%2Fpbx%2Foauth2office2&state=s+t"
        );
        let u = admin_consent_url("https://login.example", Some("t-1"), "c1", "r", "s");
        assert!(
            u.starts_with("https://login.example/t-1/v2.0/adminconsent?"),
            "{u}"
        );
    }

    #[test]
    fn declined_consent_reads_as_consent_not_granted() {
        let s = redirect_error(
            "consent_required",
            "AADSTS65004: User declined to consent to access the app.",
            "c",
            "r",
        );
        assert!(s.contains("admin consent has not been granted"), "{s}");
        let s = redirect_error("access_denied", "The admin canceled the request", "c", "r");
        assert!(s.contains("admin consent has not been granted"), "{s}");
    }

    #[test]
    fn unknown_app_and_redirect_mismatch_name_what_to_fix() {
        let s = redirect_error(
            "unauthorized_client",
            "AADSTS700016: Application with identifier 'x' was not found",
            "abc",
            "r",
        );
        assert!(s.contains("abc") && s.contains("not registered"), "{s}");
        let s = redirect_error(
            "invalid_request",
            "AADSTS50011: The redirect URI 'x' does not match",
            "abc",
            "https://p/oauth2office2",
        );
        assert!(s.contains("https://p/oauth2office2"), "{s}");
    }
}
