//! Every error the identity platform or Graph can give pbx365, as a sentence an admin can act on.
//!
//! Microsoft's codes: https://learn.microsoft.com/entra/identity-platform/reference-error-codes ,
//! https://learn.microsoft.com/graph/errors . We match on codes and statuses, never on message
//! text, except to tell apart the variants of AADSTS700027 (expired vs. unknown key), which share
//! one code. The raw code and request id are kept for the log.

use serde::Deserialize;
use std::fmt;

use crate::keys::KeyError;

/// Microsoft's own words for an error, kept for logs (never shown as the main sentence).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawError {
    /// HTTP status (0 when there was no HTTP answer).
    pub status: u16,
    /// `AADSTS700016`, `Authorization_RequestDenied`, …
    pub code: String,
    /// The OAuth `error` string, for token-endpoint errors.
    pub oauth_error: Option<String>,
    /// First line of Microsoft's message.
    pub message: String,
    /// `request-id` (Graph) or `trace_id` (identity platform).
    pub request_id: Option<String>,
    /// `correlation_id` / `client-request-id`.
    pub correlation_id: Option<String>,
}

impl fmt::Display for RawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} {}", self.status, self.code)?;
        if let Some(e) = &self.oauth_error {
            write!(f, " ({e})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(r) = &self.request_id {
            write!(f, " [request-id {r}]")?;
        }
        if let Some(c) = &self.correlation_id {
            write!(f, " [correlation-id {c}]")?;
        }
        Ok(())
    }
}

/// One of the five application permissions pbx365 asks for, and what breaks without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequiredPermission {
    /// Graph application permission name.
    pub name: &'static str,
    /// What stops working without it.
    pub breaks: &'static str,
}

/// The permissions pbx365 needs (SPEC §2), alphabetical as the console lists them.
pub const REQUIRED_PERMISSIONS: [RequiredPermission; 5] = [
    RequiredPermission {
        name: "Calendars.Read",
        breaks: "calendar status is off: extensions do not follow their Outlook calendars",
    },
    RequiredPermission {
        name: "Contacts.Read",
        breaks: "contact sync is off: Outlook and shared-mailbox contacts do not reach the phonebooks",
    },
    RequiredPermission {
        name: "Directory.Read.All",
        breaks: "group-based user sync is off: members of the chosen groups cannot be read",
    },
    RequiredPermission {
        name: "Mail.Send",
        breaks: "mail through Microsoft 365 is off: pbx365 cannot send alerts or voicemail mail",
    },
    RequiredPermission {
        name: "User.Read.All",
        breaks: "user sync is off: no extensions are created or updated from Microsoft 365, and no photos",
    },
];

/// The table of required permissions with what stops working without each.
pub fn required_permissions() -> &'static [RequiredPermission] {
    &REQUIRED_PERMISSIONS
}

/// The required permissions absent from a token's `roles`.
pub fn missing_permissions(roles: &[String]) -> Vec<RequiredPermission> {
    REQUIRED_PERMISSIONS
        .iter()
        .filter(|p| !roles.iter().any(|r| r.eq_ignore_ascii_case(p.name)))
        .copied()
        .collect()
}

fn permission(name: &str) -> RequiredPermission {
    REQUIRED_PERMISSIONS
        .iter()
        .find(|p| p.name == name)
        .copied()
        .unwrap_or(REQUIRED_PERMISSIONS[4])
}

/// The permission a Graph request path needs (relative to `/v1.0`, query allowed).
pub fn permission_for_path(path: &str) -> RequiredPermission {
    let p = path
        .split('?')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let name = if p.contains("/contacts") || p.contains("/contactfolders") {
        "Contacts.Read"
    } else if p.contains("/calendar") || p.contains("/events") || p.contains("getschedule") {
        "Calendars.Read"
    } else if p.contains("/sendmail") {
        "Mail.Send"
    } else if p.starts_with("/groups")
        || p.starts_with("/directoryobjects")
        || p.contains("/memberof")
        || p.contains("transitivemembers")
    {
        "Directory.Read.All"
    } else {
        "User.Read.All"
    };
    permission(name)
}

/// A failure talking to Microsoft 365, as a sentence the admin can act on.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A setting is missing.
    #[error("{0}")]
    NotConfigured(&'static str),
    /// The key pair is missing or unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// AADSTS700016.
    #[error("the application (client) ID {client_id} is not registered in tenant {tenant} (check the ID on the Configure page)")]
    UnknownApp {
        /// Our client id.
        client_id: String,
        /// Our tenant.
        tenant: String,
        /// Microsoft's words.
        raw: Box<RawError>,
    },
    /// AADSTS700027, key not found.
    #[error("the certificate uploaded to app {client_id} does not match pbx365's key — upload public_key.pem again")]
    CertificateNotUploaded {
        /// Our client id.
        client_id: String,
        /// Microsoft's words.
        raw: Box<RawError>,
    },
    /// AADSTS700027, key expired.
    #[error("the certificate uploaded to app {client_id} has expired: generate a new key pair and upload public_key.pem")]
    CertificateExpired {
        /// Our client id.
        client_id: String,
        /// Microsoft's words.
        raw: Box<RawError>,
    },
    /// AADSTS700021/700023/700024 and other assertion problems.
    #[error("Microsoft rejected pbx365's signed sign-in request: {reason}")]
    AssertionRejected {
        /// What to check.
        reason: &'static str,
        /// Microsoft's words.
        raw: Box<RawError>,
    },
    /// AADSTS7000215/7000222.
    #[error("Microsoft reports an invalid or expired client secret: pbx365 signs in with a certificate — upload public_key.pem to the app registration")]
    BadSecret {
        /// Microsoft's words.
        raw: Box<RawError>,
    },
    /// AADSTS50059.
    #[error("no tenant was identified in the token request: click \"Sign in to Microsoft 365\" so pbx365 learns the tenant, or set m365.tenant_id")]
    TenantMissing {
        /// Microsoft's words.
        raw: Box<RawError>,
    },
    /// AADSTS90002 and friends.
    #[error("tenant {tenant} was not found: check m365.tenant_id or click \"Sign in to Microsoft 365\" again")]
    TenantNotFound {
        /// Our tenant.
        tenant: String,
        /// Microsoft's words.
        raw: Box<RawError>,
    },
    /// AADSTS65001/7000229, or a token without any roles.
    #[error("admin consent has not been granted: click \"Sign in to Microsoft 365\" on the Configure page and accept the permissions")]
    ConsentMissing {
        /// Microsoft's words, when there were any.
        raw: Option<Box<RawError>>,
    },
    /// 403 Authorization_RequestDenied / ErrorAccessDenied.
    #[error("permission {} is missing: {} (add it to the app registration and grant admin consent again)", .permission.name, .permission.breaks)]
    PermissionMissing {
        /// The permission the request needed.
        permission: RequiredPermission,
        /// Microsoft's words.
        raw: Box<RawError>,
    },
    /// 403 by an Exchange application access policy.
    #[error("an Exchange application access policy blocks pbx365 from this mailbox: add it to the policy's group or remove the policy")]
    MailboxAccessBlocked {
        /// Microsoft's words.
        raw: Box<RawError>,
    },
    /// 401 on Graph with a fresh token.
    #[error("Microsoft Graph did not accept pbx365's access token: check that the tenant and app ID are right")]
    TokenRejected {
        /// Microsoft's words.
        raw: Box<RawError>,
    },
    /// 429 after every retry.
    #[error("Microsoft 365 kept throttling pbx365 after {attempts} attempts: the next run continues where this one stopped")]
    Throttled {
        /// Attempts made.
        attempts: u32,
        /// Microsoft's words.
        raw: Box<RawError>,
    },
    /// 5xx after every retry.
    #[error("Microsoft 365 had a service problem (HTTP {}) after {attempts} attempts: the next run retries", .raw.status)]
    ServiceUnavailable {
        /// Attempts made.
        attempts: u32,
        /// Microsoft's words.
        raw: Box<RawError>,
    },
    /// Connection, DNS or TLS failure.
    #[error("cannot reach {host}: {detail}")]
    Network {
        /// The host we tried.
        host: String,
        /// What went wrong.
        detail: String,
    },
    /// No answer in time.
    #[error("{host} did not answer within {secs} seconds: check the network or proxy")]
    Timeout {
        /// The host we tried.
        host: String,
        /// The timeout.
        secs: u64,
    },
    /// Expired delta link (400 syncStateNotFound/resyncRequired, or 410).
    #[error("the saved delta link has expired: a full resync is needed")]
    DeltaExpired {
        /// Microsoft's words.
        raw: Box<RawError>,
    },
    /// 404.
    #[error("not found in Microsoft 365 ({})", .raw.code)]
    NotFound {
        /// Microsoft's words.
        raw: Box<RawError>,
    },
    /// Any other identity-platform error.
    #[error("Microsoft's sign-in service refused pbx365's token request ({}): see the log for details", .raw.code)]
    Identity {
        /// Microsoft's words.
        raw: Box<RawError>,
    },
    /// Any other Graph error.
    #[error("Microsoft Graph refused the request (HTTP {} {}): {}", .raw.status, .raw.code, .raw.message)]
    Graph {
        /// Microsoft's words.
        raw: Box<RawError>,
    },
    /// A reply we cannot parse.
    #[error("Microsoft 365 sent a reply pbx365 cannot read ({0})")]
    BadResponse(String),
}

impl GraphError {
    /// Microsoft's raw code, message and request id, for the log.
    pub fn raw(&self) -> Option<&RawError> {
        use GraphError::*;
        match self {
            UnknownApp { raw, .. }
            | CertificateNotUploaded { raw, .. }
            | CertificateExpired { raw, .. }
            | AssertionRejected { raw, .. }
            | BadSecret { raw }
            | TenantMissing { raw }
            | TenantNotFound { raw, .. }
            | PermissionMissing { raw, .. }
            | MailboxAccessBlocked { raw }
            | TokenRejected { raw }
            | Throttled { raw, .. }
            | ServiceUnavailable { raw, .. }
            | DeltaExpired { raw }
            | NotFound { raw }
            | Identity { raw }
            | Graph { raw } => Some(raw.as_ref()),
            ConsentMissing { raw } => raw.as_deref(),
            NotConfigured(_) | Key(_) | Network { .. } | Timeout { .. } | BadResponse(_) => None,
        }
    }

    /// What the admin should do, in a few words (doctor's "fix" column).
    pub fn fix(&self) -> &'static str {
        use GraphError::*;
        match self {
            NotConfigured(_) => "fill in the Microsoft 365 Configure page (or m365.* settings)",
            Key(KeyError::ReadableByOthers { .. } | KeyError::WritableByOthers { .. }) => {
                "chmod 600 the private key file"
            }
            Key(_) => "generate a new key pair and upload public_key.pem to the app registration",
            UnknownApp { .. } => "check the Application (client) ID and the tenant",
            CertificateNotUploaded { .. } => {
                "upload public_key.pem to the app registration (Certificates & secrets)"
            }
            CertificateExpired { .. } => "generate a new key pair and upload public_key.pem",
            AssertionRejected { .. } => "check the server clock and the Application (client) ID",
            BadSecret { .. } => "upload public_key.pem to the app registration",
            TenantMissing { .. } | TenantNotFound { .. } => {
                "click \"Sign in to Microsoft 365\" or set m365.tenant_id"
            }
            ConsentMissing { .. } => "click \"Sign in to Microsoft 365\" and grant admin consent",
            PermissionMissing { .. } => {
                "add the permission in the app registration and grant admin consent"
            }
            MailboxAccessBlocked { .. } => "adjust the Exchange application access policy",
            TokenRejected { .. } => "check the tenant and Application (client) ID",
            Throttled { .. } | ServiceUnavailable { .. } => "wait; pbx365 retries on its next run",
            Network { .. } | Timeout { .. } => "check DNS, firewall, proxy and m365.ca_file",
            DeltaExpired { .. } => "none: pbx365 runs a full resync",
            NotFound { .. } | Identity { .. } | Graph { .. } | BadResponse(_) => {
                "see the log line with the request id"
            }
        }
    }

    /// Whether a later attempt may succeed without the admin changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            GraphError::Throttled { .. }
                | GraphError::ServiceUnavailable { .. }
                | GraphError::Network { .. }
                | GraphError::Timeout { .. }
        )
    }
}

/// Body of an identity-platform error.
#[derive(Debug, Default, Deserialize)]
struct TokenErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<i64>,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    suberror: Option<String>,
}

/// Turns a token-endpoint error answer into our error.
pub(crate) fn from_token_error(
    status: u16,
    body: &[u8],
    client_id: &str,
    tenant: &str,
) -> GraphError {
    let parsed: TokenErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let description = parsed.error_description.clone().unwrap_or_default();
    let first_line = description.lines().next().unwrap_or_default().to_string();
    // The code is in error_codes; older answers only carry it in the description text.
    let code = parsed.error_codes.first().copied().or_else(|| {
        let rest = description.strip_prefix("AADSTS")?;
        rest.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    });
    let raw = Box::new(RawError {
        status,
        code: code
            .map(|c| format!("AADSTS{c}"))
            .unwrap_or_else(|| parsed.error.clone().unwrap_or_default()),
        oauth_error: parsed.error.clone(),
        message: first_line,
        request_id: parsed.trace_id.clone(),
        correlation_id: parsed.correlation_id.clone(),
    });
    let lower = description.to_ascii_lowercase();
    let (client_id, tenant) = (client_id.to_string(), tenant.to_string());
    match code {
        Some(700016) => GraphError::UnknownApp { client_id, tenant, raw },
        Some(700027) if lower.contains("expired") => GraphError::CertificateExpired { client_id, raw },
        Some(700027) => GraphError::CertificateNotUploaded { client_id, raw },
        Some(7000215 | 7000222) => GraphError::BadSecret { raw },
        Some(50059) => GraphError::TenantMissing { raw },
        Some(90002 | 90013 | 900023 | 90019) => GraphError::TenantNotFound { tenant, raw },
        Some(65001 | 7000229 | 500011) => GraphError::ConsentMissing { raw: Some(raw) },
        Some(700021) => GraphError::AssertionRejected {
            reason: "its app ID does not match the Application (client) ID: re-enter the ID on the Configure page",
            raw,
        },
        Some(700023) => GraphError::AssertionRejected {
            reason: "its audience does not match the token endpoint: check m365.authority_url and m365.tenant_id",
            raw,
        },
        Some(700024) => GraphError::AssertionRejected {
            reason: "it is outside its valid time range: check the server clock (NTP)",
            raw,
        },
        _ if parsed.suberror.as_deref() == Some("consent_required") => GraphError::ConsentMissing { raw: Some(raw) },
        _ if status == 429 => GraphError::Throttled { attempts: 1, raw },
        _ if status >= 500 => GraphError::ServiceUnavailable { attempts: 1, raw },
        _ => GraphError::Identity { raw },
    }
}

/// Body of a Graph error: `{"error":{"code","message","innerError":{"request-id"|"requestId", …}}}`.
#[derive(Debug, Default, Deserialize)]
struct GraphErrorEnvelope {
    #[serde(default)]
    error: GraphErrorBody,
}

#[derive(Debug, Default, Deserialize)]
struct GraphErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default, alias = "innererror", rename = "innerError")]
    inner: Option<serde_json::Value>,
}

/// Parses a Graph error body into the raw record.
pub(crate) fn graph_raw(status: u16, body: &[u8], header_request_id: Option<String>) -> RawError {
    let env: GraphErrorEnvelope = serde_json::from_slice(body).unwrap_or_default();
    let inner = env.error.inner.unwrap_or_default();
    let inner_id = ["request-id", "requestId"]
        .iter()
        .find_map(|k| inner.get(k).and_then(|v| v.as_str()).map(str::to_string));
    RawError {
        status,
        code: env.error.code,
        oauth_error: None,
        message: env
            .error
            .message
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        request_id: header_request_id.or(inner_id),
        correlation_id: inner
            .get("client-request-id")
            .and_then(|v| v.as_str())
            .map(str::to_string),
    }
}

/// Whether an answer means the delta link has expired (any casing of the codes, or 410).
pub(crate) fn is_delta_expired(raw: &RawError) -> bool {
    raw.status == 410
        || (raw.status == 400
            && (raw.code.eq_ignore_ascii_case("syncStateNotFound")
                || raw.code.eq_ignore_ascii_case("resyncRequired")))
}

/// Turns a final (non-retried) Graph error answer into our error.
pub(crate) fn from_graph_error(raw: RawError, path: &str, token_has_roles: bool) -> GraphError {
    let raw = Box::new(raw);
    if is_delta_expired(&raw) {
        return GraphError::DeltaExpired { raw };
    }
    match raw.status {
        401 => GraphError::TokenRejected { raw },
        403 if !token_has_roles => GraphError::ConsentMissing { raw: Some(raw) },
        403 if raw.message.contains("RAOP") || raw.message.contains("AccessPolicy") => {
            GraphError::MailboxAccessBlocked { raw }
        }
        403 if raw.code.eq_ignore_ascii_case("AccessDenied")
            && raw.message.contains("roles claim") =>
        {
            GraphError::ConsentMissing { raw: Some(raw) }
        }
        403 if raw.code.eq_ignore_ascii_case("Authorization_RequestDenied")
            || raw.code.eq_ignore_ascii_case("ErrorAccessDenied")
            || raw.code.eq_ignore_ascii_case("AccessDenied") =>
        {
            GraphError::PermissionMissing {
                permission: permission_for_path(path),
                raw,
            }
        }
        404 => GraphError::NotFound { raw },
        429 => GraphError::Throttled { attempts: 1, raw },
        s if s >= 500 => GraphError::ServiceUnavailable { attempts: 1, raw },
        _ => GraphError::Graph { raw },
    }
}

/// Turns a transport failure into our error, naming the host.
pub(crate) fn from_transport(err: &reqwest::Error, host: &str, timeout_secs: u64) -> GraphError {
    if err.is_timeout() {
        return GraphError::Timeout {
            host: host.to_string(),
            secs: timeout_secs,
        };
    }
    let mut chain = Vec::new();
    let mut src: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = src {
        let s = e.to_string();
        if !chain.iter().any(|c: &String| c.contains(&s)) {
            chain.push(s);
        }
        src = e.source();
    }
    let text = chain.join(": ");
    let detail = if text.contains("UnknownIssuer") || text.contains("invalid peer certificate") {
        format!("its TLS certificate is not trusted ({text}); behind a TLS-inspecting proxy set m365.ca_file to the proxy's CA")
    } else {
        text
    };
    GraphError::Network {
        host: host.to_string(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_err(code: i64, desc: &str) -> GraphError {
        let body = serde_json::json!({"error":"invalid_client","error_description":desc,"error_codes":[code],
            "trace_id":"t-1","correlation_id":"c-1"});
        from_token_error(401, body.to_string().as_bytes(), "app-1", "tenant-1")
    }

    #[test]
    fn aadsts_codes_become_their_own_sentences() {
        let e = token_err(
            700016,
            "AADSTS700016: Application with identifier 'x' was not found",
        );
        assert!(
            e.to_string()
                .contains("is not registered in tenant tenant-1"),
            "{e}"
        );
        assert_eq!(e.raw().unwrap().request_id.as_deref(), Some("t-1"));
        let e = token_err(700027, "AADSTS700027: Client assertion failed signature validation. [Reason - The key was not found.]");
        assert!(e.to_string().contains("upload public_key.pem again"), "{e}");
        let e = token_err(
            700027,
            "AADSTS700027: ... [Reason - The key used is expired.]",
        );
        assert!(e.to_string().contains("has expired"), "{e}");
        let e = token_err(7000215, "AADSTS7000215: Invalid client secret provided.");
        assert!(matches!(e, GraphError::BadSecret { .. }));
        let e = token_err(
            50059,
            "AADSTS50059: No tenant-identifying information found",
        );
        assert!(matches!(e, GraphError::TenantMissing { .. }));
        let e = token_err(
            65001,
            "AADSTS65001: The user or administrator has not consented",
        );
        assert!(e.to_string().contains("admin consent has not been granted"));
    }

    #[test]
    fn graph_403_names_the_missing_permission_and_what_breaks() {
        let raw = graph_raw(
            403,
            br#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges","innerError":{"request-id":"r-9"}}}"#,
            None,
        );
        assert_eq!(raw.request_id.as_deref(), Some("r-9"));
        let e = from_graph_error(raw, "/users/u1/contactFolders/f/contacts/delta", true);
        assert!(
            e.to_string()
                .starts_with("permission Contacts.Read is missing: contact sync is off"),
            "{e}"
        );
    }

    #[test]
    fn expired_delta_in_any_casing_or_410_is_delta_expired() {
        for (status, code) in [
            (400, "syncStateNotFound"),
            (400, "RESYNCREQUIRED"),
            (410, "SyncStateNotFound"),
            (410, ""),
        ] {
            let raw = RawError {
                status,
                code: code.into(),
                ..Default::default()
            };
            assert!(matches!(
                from_graph_error(raw, "/users/delta", true),
                GraphError::DeltaExpired { .. }
            ));
        }
    }

    #[test]
    fn missing_permissions_lists_what_the_token_lacks() {
        let roles = vec!["User.Read.All".to_string(), "mail.send".to_string()];
        let names: Vec<_> = missing_permissions(&roles).iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            ["Calendars.Read", "Contacts.Read", "Directory.Read.All"]
        );
    }
}
