//! `pbx365 m365 doctor`: checks the Microsoft 365 connection end to end and says what is wrong.
//!
//! Order: configuration, key pair, certificate expiry, token, each permission, Graph
//! reachability, and (with a public URL) a test subscription whose validation request must reach
//! us. A check that cannot run because an earlier one failed is reported as failed with the reason.

use chrono::{Duration, Utc};
use pbx365_domain::settings::Settings;
use std::path::Path;

use crate::endpoints::subscriptions::{NewSubscription, USERS_RESOURCE};
use crate::endpoints::users;
use crate::error::{missing_permissions, GraphError, REQUIRED_PERMISSIONS};
use crate::keys::{ExpiryStatus, KeyStore, Slot};
use crate::transport::{GraphClient, GraphConfig};

/// One line of the doctor's report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found (a sentence).
    pub detail: String,
    /// What to do about a failure (or a warning).
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn from_error(name: impl Into<String>, e: &GraphError) -> Self {
        if let Some(raw) = e.raw() {
            tracing::warn!(check = "doctor", raw = %raw, error = %e, "doctor check failed");
        }
        Check::fail(name, e.to_string(), e.fix())
    }
}

/// Where change notifications must arrive (SPEC §8).
pub fn notification_url(public_url: &str) -> String {
    format!(
        "{}/api/m365/notifications",
        public_url.trim_end_matches('/')
    )
}

/// Runs every check; the CLI prints one line per check and exits non-zero if any failed.
pub async fn run_checks(
    settings: &Settings,
    data_dir: &Path,
    public_url: Option<&str>,
) -> Vec<Check> {
    let mut out = Vec::new();

    // 1. Configuration.
    let config = match settings.validate() {
        Err(e) => {
            out.push(Check::fail(
                "configuration",
                e.to_string(),
                format!("correct `{}` in the configuration", e.key),
            ));
            None
        }
        Ok(()) if settings.m365.client_id.is_none() => {
            out.push(Check::fail(
                "configuration",
                "the Application (client) ID is not set",
                "enter it on the Microsoft 365 Configure page (m365.client_id)",
            ));
            None
        }
        Ok(()) if settings.m365.tenant_id.is_none() => {
            out.push(Check::fail(
                "configuration",
                "the tenant is not known yet",
                "click \"Sign in to Microsoft 365\" on the Configure page (or set m365.tenant_id)",
            ));
            None
        }
        Ok(()) => match GraphConfig::from_settings(&settings.m365) {
            Ok(c) => {
                out.push(Check::pass(
                    "configuration",
                    format!(
                        "app {} in tenant {} via {} and {}",
                        settings.m365.client_id.as_deref().unwrap_or_default(),
                        settings.m365.tenant_id.as_deref().unwrap_or_default(),
                        c.authority_url,
                        c.graph_url
                    ),
                ));
                Some(c)
            }
            Err(e) => {
                out.push(Check::from_error("configuration", &e));
                None
            }
        },
    };

    // 2. Key pair (present, private, key and certificate belong together).
    let keys = KeyStore::new(data_dir);
    let credential = match keys.load(Slot::Active) {
        Ok(Some(c)) => {
            let cert = c.certificate();
            let mut detail = format!(
                "private key and certificate match ({}, thumbprint {})",
                cert.subject, cert.thumbprint_hex
            );
            if keys.exists(Slot::Pending) {
                detail.push_str("; a new key pair is waiting for its certificate to be uploaded");
            }
            out.push(Check::pass("key pair", detail));
            Some(cert.clone())
        }
        Ok(None) => {
            let e = GraphError::Key(crate::keys::KeyError::Missing);
            out.push(Check::from_error("key pair", &e));
            None
        }
        Err(e) => {
            out.push(Check::from_error("key pair", &GraphError::Key(e)));
            None
        }
    };

    // 3. Certificate expiry.
    match &credential {
        Some(cert) => out.push(match cert.expiry(Utc::now()) {
            ExpiryStatus::Valid { days_left } => Check::pass(
                "certificate expiry",
                format!(
                    "valid until {} ({days_left} days)",
                    cert.not_after.format("%Y-%m-%d")
                ),
            ),
            ExpiryStatus::Warning { days_left, .. } => Check {
                name: "certificate expiry".into(),
                ok: true,
                detail: format!(
                    "expires on {} (in {days_left} days)",
                    cert.not_after.format("%Y-%m-%d")
                ),
                fix: Some(
                    "generate a new key pair and upload its public_key.pem before then".into(),
                ),
            },
            ExpiryStatus::Expired => Check::fail(
                "certificate expiry",
                format!(
                    "the certificate expired on {}",
                    cert.not_after.format("%Y-%m-%d")
                ),
                "generate a new key pair and upload public_key.pem",
            ),
        }),
        None => out.push(Check::fail(
            "certificate expiry",
            "no certificate to check",
            "generate a key pair",
        )),
    }

    // 4. Token.
    let client = match (&config, &credential) {
        (Some(c), Some(_)) => match GraphClient::new(c.clone(), keys.clone()) {
            Ok(client) => Some(client),
            Err(e) => {
                out.push(Check::from_error("token", &e));
                None
            }
        },
        _ => {
            out.push(Check::fail(
                "token",
                "skipped: configuration or key pair missing",
                "fix the checks above",
            ));
            None
        }
    };
    let token = match &client {
        Some(client) => {
            client.tokens().invalidate().await;
            match client.token().await {
                Ok(t) => {
                    let expected = settings.m365.tenant_id.as_deref().unwrap_or_default();
                    match t.tenant_id.as_deref() {
                        Some(tid)
                            if !tid.eq_ignore_ascii_case(expected)
                                && uuid::Uuid::parse_str(expected).is_ok() =>
                        {
                            out.push(Check::fail(
                                "token",
                                format!("the token was issued for tenant {tid}, not {expected}"),
                                "click \"Sign in to Microsoft 365\" again to record the right tenant",
                            ));
                        }
                        _ => out.push(Check::pass(
                            "token",
                            format!(
                                "app-only token acquired for tenant {} ({} permissions granted)",
                                t.tenant_id.as_deref().unwrap_or(expected),
                                t.roles.len()
                            ),
                        )),
                    }
                    Some(t)
                }
                Err(e) => {
                    out.push(Check::from_error("token", &e));
                    None
                }
            }
        }
        None => None,
    };

    // 5. Each permission.
    match &token {
        Some(t) if t.roles.is_empty() => {
            let e = GraphError::ConsentMissing { raw: None };
            for p in REQUIRED_PERMISSIONS {
                out.push(Check::fail(
                    format!("permission {}", p.name),
                    format!("{e}; without it {}", p.breaks),
                    e.fix(),
                ));
            }
        }
        Some(t) => {
            let missing = missing_permissions(&t.roles);
            for p in REQUIRED_PERMISSIONS {
                if missing.contains(&p) {
                    out.push(Check::fail(
                        format!("permission {}", p.name),
                        format!("permission {} is missing: {}", p.name, p.breaks),
                        "add it under API permissions (Application) and click \"Sign in to Microsoft 365\" to grant consent",
                    ));
                } else {
                    out.push(Check::pass(format!("permission {}", p.name), "granted"));
                }
            }
        }
        None => {
            for p in REQUIRED_PERMISSIONS {
                out.push(Check::fail(
                    format!("permission {}", p.name),
                    "skipped: no token",
                    "fix the token check",
                ));
            }
        }
    }

    // 6. Graph reachability.
    let reachable = match (&client, &token) {
        (Some(client), Some(_)) => match client.send(users::probe_request()).await {
            Ok(_) => {
                out.push(Check::pass(
                    "Microsoft Graph",
                    format!("{} answers", client.base_url()),
                ));
                true
            }
            Err(e) => {
                out.push(Check::from_error("Microsoft Graph", &e));
                false
            }
        },
        _ => {
            out.push(Check::fail(
                "Microsoft Graph",
                "skipped: no token",
                "fix the token check",
            ));
            false
        }
    };

    // 7. Change notifications reach us.
    if let Some(public) = public_url.filter(|u| !u.trim().is_empty()) {
        let url = notification_url(public);
        let name = "change notifications";
        // Microsoft itself judges the URL (it must be HTTPS and answer the validation request).
        if let (Some(client), true) = (&client, reachable) {
            let sub = NewSubscription {
                change_type: "updated,deleted".into(),
                notification_url: url.clone(),
                lifecycle_notification_url: None,
                resource: USERS_RESOURCE.into(),
                expiration_date_time: (Utc::now() + Duration::minutes(45))
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                client_state: Some(uuid::Uuid::new_v4().simple().to_string()),
            };
            match client.create_subscription(&sub).await {
                Ok(created) => {
                    let cleanup = client.delete_subscription(&created.id).await;
                    let mut detail = format!("Microsoft's validation request reached {url}");
                    if let Err(e) = cleanup {
                        detail.push_str(&format!(
                            " (the test subscription could not be deleted: {e})"
                        ));
                    }
                    out.push(Check::pass(name, detail));
                }
                Err(e) => {
                    let mut c = Check::from_error(name, &e);
                    c.detail = format!("the test subscription to {url} failed: {e}");
                    c.fix = Some(format!(
                        "make {url} reachable from the internet over HTTPS (public_url must be https; check firewall, reverse proxy and certificate); until then pbx365 falls back to polling"
                    ));
                    out.push(c);
                }
            }
        } else {
            out.push(Check::fail(
                name,
                "skipped: Microsoft Graph is not reachable",
                "fix the checks above",
            ));
        }
    }
    out
}
