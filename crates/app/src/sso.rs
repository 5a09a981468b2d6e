//! Single sign-on with Microsoft accounts (SPEC §4): who may sign in where, starting a sign-in
//! (single-use state bound to the browser, nonce, PKCE) and finishing it at the one redirect
//! URI: the ID token's `oid` + `tid` select the synced extension, then the surface's rules
//! (enabled, allowed set, admin role for the console) decide. Every refusal is a sentence of
//! its own and issues no session.

use crate::secrets::{hash_secret, random_token, secrets_equal};
use crate::App;
use chrono::Utc;
use pbx365_domain::settings::{Settings, SsoMode};
use pbx365_domain::{Extension, ExtensionSource};
use pbx365_graph::oidc::{pkce_pair, OidcError, RelyingParty};
use pbx365_graph::{GraphConfig, KeyStore};
use pbx365_store::OAuthState;
use std::collections::HashMap;
use std::sync::Arc;

/// Purpose of a console sign-in's stored state.
pub const SSO_CONSOLE: &str = "sso_console";
/// Purpose of a web client sign-in's stored state.
pub const SSO_WEBCLIENT: &str = "sso_webclient";
/// How long a started sign-in may take (Microsoft's codes live about 10 minutes).
const SIGN_IN_MINUTES: i64 = 10;
/// Longest wait for Graph's answer about a signing-in user's groups.
const GROUP_CHECK_SECS: u64 = 15;
/// Session subject prefix of a web client user (never a console admin).
pub const WEBCLIENT_SUBJECT: &str = "ext:";
/// Session subject prefix of a console admin who signed in with Microsoft.
pub const CONSOLE_SUBJECT: &str = "m365:";

/// Where a Microsoft sign-in leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The management console (`/console`).
    Console,
    /// The web client (`/`).
    WebClient,
}

impl Surface {
    /// `console` or `webclient`, as in `?surface=`.
    pub fn parse(raw: &str) -> Option<Surface> {
        match raw {
            "console" => Some(Surface::Console),
            "webclient" => Some(Surface::WebClient),
            _ => None,
        }
    }

    fn purpose(self) -> &'static str {
        match self {
            Surface::Console => SSO_CONSOLE,
            Surface::WebClient => SSO_WEBCLIENT,
        }
    }

    fn from_purpose(p: &str) -> Option<Surface> {
        match p {
            SSO_CONSOLE => Some(Surface::Console),
            SSO_WEBCLIENT => Some(Surface::WebClient),
            _ => None,
        }
    }

    /// The surface's mode in `settings`.
    pub fn mode(self, settings: &Settings) -> SsoMode {
        match self {
            Surface::Console => settings.sso.console,
            Surface::WebClient => settings.sso.webclient,
        }
    }

    /// Its home page, where an unacceptable return path leads.
    pub fn home(self) -> &'static str {
        match self {
            Surface::Console => "/console",
            Surface::WebClient => "/",
        }
    }

    /// Name in sentences.
    pub fn label(self) -> &'static str {
        match self {
            Surface::Console => "the management console",
            Surface::WebClient => "the web client",
        }
    }

    /// The session subject for extension `number` on this surface.
    pub fn subject(self, number: &str) -> String {
        match self {
            Surface::Console => format!("{CONSOLE_SUBJECT}{number}"),
            Surface::WebClient => format!("{WEBCLIENT_SUBJECT}{number}"),
        }
    }
}

/// `raw` when it is a relative path of this site, else `home`: no scheme, no `//` or
/// backslash (a browser reads either as another host), no encoded slash, backslash or dot, no
/// control characters or spaces, no `..` (RFC 9700 §4.11 open redirector).
pub fn safe_return_path(raw: Option<&str>, home: &str) -> String {
    let Some(r) = raw else {
        return home.to_string();
    };
    let lower = r.to_ascii_lowercase();
    let ok = r.starts_with('/')
        && r.len() <= 2048
        && !r.contains("//")
        && !r.contains('\\')
        && !r.contains("..")
        && !r.chars().any(|c| c.is_control() || c.is_whitespace())
        && !lower.contains("%2f")
        && !lower.contains("%5c")
        && !lower.contains("%2e")
        && !lower.contains("%25")
        && !(0..0x20).any(|b| lower.contains(&format!("%{b:02x}")));
    if ok {
        r.to_string()
    } else {
        home.to_string()
    }
}

/// A sign-in refused: a page of its own, no session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoRefusal {
    /// HTTP status.
    pub status: u16,
    /// Page title.
    pub title: &'static str,
    /// What happened and what to do.
    pub message: String,
    /// The surface (for the page's way back).
    pub surface: Surface,
}

impl SsoRefusal {
    fn new(surface: Surface, status: u16, title: &'static str, message: impl Into<String>) -> Self {
        SsoRefusal {
            status,
            title,
            message: message.into(),
            surface,
        }
    }

    fn failed(surface: Surface, e: impl std::fmt::Display) -> Self {
        SsoRefusal::new(
            surface,
            400,
            "Sign-in not accepted",
            format!("The Microsoft sign-in could not be completed: {e}. Nothing was signed in."),
        )
    }
}

/// A started sign-in: send the browser to `url`, with `binding` in the sign-in cookie.
pub struct SsoStart {
    /// The authorize URL.
    pub url: String,
    /// Value of the browser-binding cookie (its hash is stored with the state).
    pub binding: String,
}

/// A finished sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSignedIn {
    /// Where it was for.
    pub surface: Surface,
    /// The session subject (`ext:<number>` or `m365:<number>`).
    pub subject: String,
    /// The extension.
    pub number: String,
    /// Where to go now (already checked).
    pub return_to: String,
    /// A re-authentication before a sensitive action (the user must press its button again).
    pub fresh: bool,
}

/// The sentence of a callback whose state is unknown, used, expired or another browser's.
pub const NOT_THIS_BROWSER: &str = "This sign-in answer does not belong to a sign-in started from this browser (it is unknown, already used or expired), so nobody was signed in. Start the sign-in again.";

impl App {
    /// True when "Sign in with Microsoft" is offered on `surface`: not off, and the tenant and
    /// application are known.
    pub fn sso_enabled(&self, surface: Surface) -> bool {
        let s = self.settings();
        surface.mode(&s) != SsoMode::Off
            && s.m365.tenant_id.as_deref().is_some_and(|t| !t.is_empty())
            && s.m365.client_id.as_deref().is_some_and(|c| !c.is_empty())
    }

    /// The relying party for the current connection, kept (with its JWKS cache) until the
    /// connection settings change.
    pub fn relying_party(&self) -> Result<Arc<RelyingParty>, OidcError> {
        let settings = self.settings();
        let m = &settings.m365;
        let (Some(tenant), Some(client)) = (
            m.tenant_id.clone().filter(|t| !t.is_empty()),
            m.client_id.clone().filter(|c| !c.is_empty()),
        ) else {
            return Err(OidcError::Setup(
                "Microsoft 365 is not connected (no tenant or application ID)".into(),
            ));
        };
        let key = crate::context::graph_key(&settings);
        let mut slot = self.oidc.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((k, rp)) = slot.as_ref() {
            if *k == key {
                return Ok(rp.clone());
            }
        }
        let config = GraphConfig::from_settings(m).map_err(|e| OidcError::Setup(e.to_string()))?;
        let http = pbx365_graph::transport::http_client(&config)
            .map_err(|e| OidcError::Setup(e.to_string()))?;
        let rp = Arc::new(RelyingParty::new(
            http,
            &m.authority_url,
            &tenant,
            &client,
            m.assertion_alg,
            KeyStore::new(self.data_dir()),
        ));
        *slot = Some((key, rp.clone()));
        Ok(rp)
    }

    /// Starts a sign-in on `surface`: a single-use state (stored hashed, bound to the browser
    /// cookie returned in [`SsoStart::binding`]), a nonce and a PKCE verifier kept server-side.
    /// `fresh` asks Microsoft for a new password entry (re-authentication).
    pub async fn start_sso(
        &self,
        surface: Surface,
        return_to: Option<&str>,
        fresh: bool,
    ) -> Result<SsoStart, SsoRefusal> {
        if !self.sso_enabled(surface) {
            return Err(SsoRefusal::new(
                surface,
                403,
                "Microsoft sign-in is off",
                format!(
                    "Signing in with Microsoft is not enabled for {}. Ask your PBX administrator.",
                    surface.label()
                ),
            ));
        }
        let rp = self
            .relying_party()
            .map_err(|e| SsoRefusal::failed(surface, e))?;
        let state = random_token();
        let nonce = random_token();
        let binding = random_token();
        let (verifier, challenge) = pkce_pair();
        let return_to = safe_return_path(return_to, surface.home());
        let url = rp
            .authorize_url(&self.redirect_uri(), &state, &nonce, &challenge, fresh)
            .await
            .map_err(|e| SsoRefusal::failed(surface, e))?;
        let record = OAuthState {
            state_hash: hash_secret(&state),
            purpose: surface.purpose().to_string(),
            session_hash: hash_secret(&binding),
            data: serde_json::json!({
                "nonce": nonce,
                "verifier": verifier,
                "return_to": return_to,
                "fresh": fresh,
            }),
            // Real time, not the app clock: the store expires states by the wall clock.
            expires_at: Utc::now() + chrono::Duration::minutes(SIGN_IN_MINUTES),
        };
        if let Err(e) = self.store.put_oauth_state(&record).await {
            tracing::error!(error = %e, "storing the sign-in state failed");
            return Err(SsoRefusal::failed(
                surface,
                "the sign-in could not be stored",
            ));
        }
        Ok(SsoStart { url, binding })
    }

    /// The surface a stored state belongs to, if it is a sign-in.
    pub fn sso_surface(purpose: &str) -> Option<Surface> {
        Surface::from_purpose(purpose)
    }

    /// Finishes a sign-in whose (already taken) state is `flow`: the browser must present the
    /// binding cookie it got at the start; then code redemption, ID-token checks and the
    /// extension rules.
    pub(crate) async fn finish_sso(
        &self,
        surface: Surface,
        flow: &OAuthState,
        binding: Option<&str>,
        params: &HashMap<String, String>,
    ) -> Result<SsoSignedIn, SsoRefusal> {
        let bound = binding
            .filter(|b| !b.is_empty())
            .is_some_and(|b| secrets_equal(&hash_secret(b), &flow.session_hash));
        if !bound {
            tracing::warn!("sign-in answer without this browser's binding cookie refused");
            return Err(SsoRefusal::new(
                surface,
                400,
                "Sign-in not accepted",
                NOT_THIS_BROWSER,
            ));
        }
        if let Some(error) = params.get("error").filter(|e| !e.is_empty()) {
            let description = params
                .get("error_description")
                .map(String::as_str)
                .unwrap_or_default()
                .replace(['\r', '\n'], " ");
            tracing::warn!(error = %error, description = %description, "Microsoft sign-in failed");
            return Err(SsoRefusal::new(
                surface,
                400,
                "Sign-in not completed",
                format!("Microsoft did not sign you in ({error}: {description}). Nothing was signed in."),
            ));
        }
        let Some(code) = params.get("code").filter(|c| !c.is_empty()) else {
            return Err(SsoRefusal::failed(surface, "the answer carried no code"));
        };
        let text = |k: &str| flow.data[k].as_str().unwrap_or_default().to_string();
        let rp = self
            .relying_party()
            .map_err(|e| SsoRefusal::failed(surface, e))?;
        let refused = |e: OidcError| {
            tracing::warn!(error = %e, "Microsoft sign-in refused");
            match e {
                OidcError::OtherTenant { .. } => SsoRefusal::new(
                    surface,
                    403,
                    "Account from another organisation",
                    format!("{e}. Sign in with an account of your organisation."),
                ),
                other => SsoRefusal::failed(surface, other),
            }
        };
        let id_token = rp
            .redeem(code, &text("verifier"), &self.redirect_uri(), self.now())
            .await
            .map_err(refused)?;
        let claims = rp
            .validate(&id_token, &text("nonce"))
            .await
            .map_err(refused)?;
        let ext = match self.store.get_extension_by_m365_id(&claims.oid).await {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "looking up the signed-in user's extension failed");
                return Err(SsoRefusal::failed(
                    surface,
                    "the extension could not be read",
                ));
            }
        };
        let settings = self.settings();
        let (number, access) = check_extension(surface, &settings, ext.as_ref())?;
        if access == Access::IfInGroups {
            self.check_group_membership(surface, &settings, &claims.oid, &number)
                .await?;
        }
        let return_to = safe_return_path(Some(&text("return_to")), surface.home());
        let subject = surface.subject(&number);
        self.audit(
            &subject,
            match surface {
                Surface::Console => "console.login.sso",
                Surface::WebClient => "webclient.login.sso",
            },
            &number,
            "",
        )
        .await;
        tracing::info!(extension = %number, surface = surface.label(), "Microsoft sign-in");
        Ok(SsoSignedIn {
            surface,
            subject,
            number,
            return_to,
            fresh: flow.data["fresh"].as_bool().unwrap_or(false),
        })
    }

    /// Lets the user `oid` (extension `number`) in when they belong, directly or through
    /// nested groups, to one of the selected Microsoft 365 groups, asked of Graph
    /// (`checkMemberGroups`). Fails closed: Graph unreachable, the app lacking the permission
    /// or any other error refuses the sign-in with a page of its own, and is logged.
    async fn check_group_membership(
        &self,
        surface: Surface,
        settings: &Settings,
        oid: &str,
        number: &str,
    ) -> Result<(), SsoRefusal> {
        let groups = &settings.sso.selected_groups;
        let checked = match self.graph() {
            // Bounded: a person is waiting, and Graph's retries could otherwise take minutes.
            Ok(graph) => match tokio::time::timeout(
                std::time::Duration::from_secs(GROUP_CHECK_SECS),
                graph.check_member_groups(oid, groups),
            )
            .await
            {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err(format!(
                    "Microsoft 365 did not answer within {GROUP_CHECK_SECS} seconds"
                )),
            },
            Err(e) => Err(e.to_string()),
        };
        match checked {
            Ok(found) if !found.is_empty() => {
                tracing::info!(extension = %number, "sign-in allowed by Microsoft 365 group membership");
                Ok(())
            }
            Ok(_) => Err(not_allowed(surface, number)),
            Err(e) => {
                tracing::error!(extension = %number, error = %e, "checking Microsoft 365 group membership at sign-in failed; sign-in refused");
                Err(SsoRefusal::new(
                    surface,
                    503,
                    "Group membership could not be checked",
                    format!(
                        "Signing in to {} depends on your Microsoft 365 groups, and pbx365 could not ask Microsoft 365 about them ({e}). Nobody was signed in. Try again later; if this persists, your PBX administrator finds the details in the server log.",
                        surface.label()
                    ),
                ))
            }
        }
    }

    /// The extension behind a session subject, if it may still use `surface`: a web client or
    /// console session ends as soon as its extension is disabled, removed or leaves the
    /// allowed set. Microsoft 365 group membership is checked at sign-in only (a session lasts
    /// at most `[sessions] absolute_hours`); removing every selected group or switching the
    /// surface off ends such sessions at their next request.
    pub async fn sso_extension(&self, surface: Surface, subject: &str) -> Option<Extension> {
        let prefix = match surface {
            Surface::Console => CONSOLE_SUBJECT,
            Surface::WebClient => WEBCLIENT_SUBJECT,
        };
        let number = subject.strip_prefix(prefix)?;
        let ext = self.store.get_extension(number).await.ok().flatten()?;
        check_extension(surface, &self.settings(), Some(&ext)).ok()?;
        Some(ext)
    }
}

/// Whether the static rules let an extension in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Everyone on the surface, a selected extension or a member of a selected extension group.
    Granted,
    /// Only if the user belongs to one of the selected Microsoft 365 groups (asked of Graph).
    IfInGroups,
}

/// The refusal of a user outside the allowed set.
fn not_allowed(surface: Surface, number: &str) -> SsoRefusal {
    SsoRefusal::new(
        surface,
        403,
        "Not allowed to sign in here",
        format!(
            "Signing in with Microsoft to {} is not enabled for extension {number}. Ask your PBX administrator.",
            surface.label()
        ),
    )
}

/// The rules after a valid ID token: a synced extension, enabled, in the allowed set (or
/// possibly in it through Microsoft 365 groups: [`Access::IfInGroups`]), and for the console
/// with the admin role. Each refusal has its own page.
fn check_extension(
    surface: Surface,
    settings: &Settings,
    ext: Option<&Extension>,
) -> Result<(String, Access), SsoRefusal> {
    let Some(ext) = ext.filter(|e| e.source == ExtensionSource::M365) else {
        return Err(SsoRefusal::new(
            surface,
            403,
            "No extension for this account",
            "Your Microsoft account is not linked to an extension of this PBX. Ask your PBX administrator to include you in the user sync.",
        ));
    };
    let number = ext.number.as_str().to_string();
    if !ext.enabled {
        return Err(SsoRefusal::new(
            surface,
            403,
            "Extension disabled",
            format!("Your extension {number} is disabled, so you cannot sign in. Ask your PBX administrator."),
        ));
    }
    let sso = &settings.sso;
    let access = match surface.mode(settings) {
        SsoMode::Off => None,
        SsoMode::All => Some(Access::Granted),
        SsoMode::Selected
            if sso.selected_extensions.contains(&number)
                || ext
                    .groups
                    .iter()
                    .any(|g| sso.selected_extension_groups.contains(g)) =>
        {
            Some(Access::Granted)
        }
        SsoMode::Selected if !sso.selected_groups.is_empty() => Some(Access::IfInGroups),
        SsoMode::Selected => None,
    };
    let Some(access) = access else {
        return Err(not_allowed(surface, &number));
    };
    if surface == Surface::Console && !ext.is_admin {
        return Err(SsoRefusal::new(
            surface,
            403,
            "No console access",
            format!("Extension {number} has no administrator role, so it cannot open the management console. Use the web client at / instead."),
        ));
    }
    Ok((number, access))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_redirect_attempts_land_home() {
        for bad in [
            "//evil",
            "https://evil",
            "/\\evil",
            "\\\\evil",
            "%2F%2Fevil",
            "/%2F%2Fevil",
            "/%5Cevil",
            "/%252F%252Fevil",
            "/x/../..//evil",
            "/%2e%2e/evil",
            "javascript:alert(1)",
            "/\tx",
            "/ x",
            "evil",
            "",
        ] {
            assert_eq!(safe_return_path(Some(bad), "/"), "/", "{bad:?}");
        }
        assert_eq!(safe_return_path(None, "/"), "/");
    }

    #[test]
    fn own_paths_are_kept() {
        for good in ["/", "/phonebook", "/console/extensions?x=1", "/#sip"] {
            assert_eq!(safe_return_path(Some(good), "/"), good);
        }
    }
}
