//! Settings (SPEC §8): the TOML file, `PBX365_*` environment, and console-stored overrides all
//! deserialise into these types. Unknown keys are refused; `validate` checks values and names the key.

use crate::{Guid, ValidationError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Every setting of a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address the server binds.
    pub listen: String,
    /// The URL Microsoft and browsers reach; `http://{listen}` when unset.
    pub public_url: Option<String>,
    /// Private key, photos, SQLite file.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; `sqlite://{data_dir}/pbx365.db` when unset.
    pub database_url: Option<String>,
    /// `standard` or `pro`.
    pub edition: Edition,
    /// Extension number lengths.
    pub extension_digits: DigitRange,
    /// Optional TLS for the server itself.
    pub tls: Option<TlsSettings>,
    /// Microsoft 365 connection.
    pub m365: M365Settings,
    /// User sync.
    pub sync: SyncSettings,
    /// Single sign-on.
    pub sso: SsoSettings,
    /// Contact sync (PRO).
    pub contacts: ContactSettings,
    /// Calendar status (PRO).
    pub calendar: CalendarSettings,
    /// pbx365's own mail.
    pub mail: MailSettings,
    /// Phones: Kamailio as the SIP engine (`[sip]`).
    pub sip: SipSettings,
    /// The company directory for desk phones: exports and LDAP (`[phonebook]`).
    pub phonebook: PhonebookSettings,
    /// Days sync runs and notification dedup keys are kept (the newest 100 runs always stay).
    pub retention_days: u32,
    /// Console and web client session timeouts (`[sessions]`).
    pub sessions: SessionSettings,
}

/// Session timeouts (`[sessions]`, security checklist §5: ASVS 3.3.2 L2 by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    /// A session ends after this many minutes without a request.
    pub idle_minutes: u32,
    /// A session ends this many hours after sign-in, however active.
    pub absolute_hours: u32,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            idle_minutes: 30,
            absolute_hours: 12,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            data_dir: PathBuf::from("./pbx365-data"),
            database_url: None,
            edition: Edition::Pro,
            extension_digits: DigitRange::default(),
            tls: None,
            m365: M365Settings::default(),
            sync: SyncSettings::default(),
            sso: SsoSettings::default(),
            contacts: ContactSettings::default(),
            calendar: CalendarSettings::default(),
            mail: MailSettings::default(),
            sip: SipSettings::default(),
            phonebook: PhonebookSettings::default(),
            retention_days: DEFAULT_RETENTION_DAYS,
            sessions: SessionSettings::default(),
        }
    }
}

/// Default of [`Settings::retention_days`] (SPEC §10).
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

/// Largest accepted [`Settings::retention_days`] (100 years; more cannot be meant).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// Product edition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Edition {
    /// User sync, photos, caller ID, SSO, mail.
    Standard,
    /// Standard plus contact sync and calendar status.
    Pro,
}

/// Allowed lengths of extension numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DigitRange {
    /// Fewest digits.
    pub min: usize,
    /// Most digits.
    pub max: usize,
}

impl Default for DigitRange {
    fn default() -> Self {
        DigitRange { min: 2, max: 8 }
    }
}

/// Server certificate and key files (PEM).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// Certificate chain.
    pub cert_file: PathBuf,
    /// Private key.
    pub key_file: PathBuf,
}

/// Signature scheme of the client assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum AssertionAlg {
    /// RSA-PSS + `x5t#S256` (current Microsoft docs).
    #[default]
    PS256,
    /// RSA PKCS#1 v1.5 + `x5t` (older docs).
    RS256,
}

/// Where Microsoft is and which app pbx365 is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct M365Settings {
    /// Tenant GUID (set by the Configure page after consent, or here).
    pub tenant_id: Option<String>,
    /// Application (client) ID.
    pub client_id: Option<String>,
    /// Identity platform base.
    pub authority_url: String,
    /// Graph base; `/v1.0` is appended.
    pub graph_url: String,
    /// Extra CA (PEM) trusted for both endpoints.
    pub ca_file: Option<PathBuf>,
    /// Client assertion signature scheme.
    pub assertion_alg: AssertionAlg,
}

impl Default for M365Settings {
    fn default() -> Self {
        M365Settings {
            tenant_id: None,
            client_id: None,
            authority_url: "https://login.microsoftonline.com".into(),
            graph_url: "https://graph.microsoft.com".into(),
            ca_file: None,
            assertion_alg: AssertionAlg::PS256,
        }
    }
}

/// Which Microsoft 365 users become extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncScope {
    /// Every enabled member.
    #[default]
    All,
    /// The users listed in `scope_ids`.
    Users,
    /// Transitive members of the groups listed in `scope_ids`.
    Groups,
}

/// User sync settings (`[sync]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSettings {
    /// Turns user sync on.
    pub enabled: bool,
    /// First extension number for synced users.
    pub start_extension: u64,
    /// Last one (optional).
    pub end_extension: Option<u64>,
    /// Office phone (`businessPhones[0]`) becomes the outbound caller ID.
    pub caller_id_from_office_phone: bool,
    /// Sync photos.
    pub photos: bool,
    /// Which users.
    pub scope: SyncScope,
    /// Object ids of users or groups, per `scope`.
    pub scope_ids: Vec<String>,
    /// Daily full reconciliation, `HH:MM` server time.
    pub nightly_at: String,
    /// Delta poll interval (fallback when notifications cannot reach us).
    pub poll_minutes: u32,
    /// Disabled extensions are deleted after this many days.
    pub delete_after_days: u32,
    /// Mass-deletion guard: most extensions one run may disable or delete.
    pub max_deletions: u32,
    /// Mass-deletion guard as a share of synced extensions.
    pub max_deletion_percent: u32,
    /// How long an instance's hold on the sync jobs lasts unless renewed: when it dies, another
    /// instance sharing the database takes the jobs over after this (SPEC §9: within 30 s).
    pub lease_ttl_secs: u32,
}

/// The shortest and longest `sync.lease_ttl_secs`: the holder renews every third of it, and a
/// dead instance's jobs must move within 30 s.
pub const LEASE_TTL_SECS: std::ops::RangeInclusive<u32> = 2..=25;

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            enabled: true,
            start_extension: 100,
            end_extension: None,
            caller_id_from_office_phone: true,
            photos: true,
            scope: SyncScope::All,
            scope_ids: Vec::new(),
            nightly_at: "02:00".into(),
            poll_minutes: 5,
            delete_after_days: 30,
            max_deletions: 50,
            max_deletion_percent: 10,
            lease_ttl_secs: 20,
        }
    }
}

/// Who may use single sign-on on a surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SsoMode {
    /// No Microsoft sign-in.
    #[default]
    Off,
    /// Every synced extension.
    All,
    /// Only the selected extensions and groups.
    Selected,
}

/// SSO settings (`[sso]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SsoSettings {
    /// Management console.
    pub console: SsoMode,
    /// Web client.
    pub webclient: SsoMode,
    /// Extension numbers allowed when `selected`.
    pub selected_extensions: Vec<String>,
    /// Microsoft 365 groups (object ids) whose members, also through nested groups, are
    /// allowed when `selected`; checked against Graph at each sign-in.
    pub selected_groups: Vec<String>,
    /// Display names of [`Self::selected_groups`] as picked in the console (shown instead of
    /// the id; optional).
    pub selected_group_names: std::collections::BTreeMap<String, String>,
    /// pbx365 extension groups (by name) whose extensions are allowed when `selected`.
    pub selected_extension_groups: Vec<String>,
}

/// Contact sync settings (`[contacts]`, PRO).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContactSettings {
    /// Personal contacts -> personal phonebooks.
    pub personal: bool,
    /// Shared mailboxes whose contacts fill the company phonebook.
    pub shared_mailboxes: Vec<String>,
    /// Country for numbers written without a country code (ISO 3166 alpha-2).
    pub default_country: String,
}

impl Default for ContactSettings {
    fn default() -> Self {
        ContactSettings {
            personal: false,
            shared_mailboxes: Vec::new(),
            default_country: "US".into(),
        }
    }
}

/// Calendar status settings (`[calendar]`, PRO).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalendarSettings {
    /// Turns calendar-driven status on.
    pub enabled: bool,
    /// Show As -> profile overrides (e.g. `busy = "dnd"`, `oof = "none"`).
    pub map: std::collections::BTreeMap<String, String>,
    /// `["all"]` (every synced extension; also when empty) or extension numbers.
    pub extensions: Vec<String>,
    /// How far ahead calendars are read, in hours (default 36).
    pub look_ahead_hours: u32,
    /// Minutes between the fallback delta reads of every calendar (default 240: notifications
    /// carry changes within seconds; this catches what they lose, and keeps the steady state
    /// under half a read per user per hour with notifications included).
    pub poll_minutes: u32,
}

impl Default for CalendarSettings {
    fn default() -> Self {
        CalendarSettings {
            enabled: false,
            map: Default::default(),
            extensions: Vec::new(),
            look_ahead_hours: 36,
            poll_minutes: 240,
        }
    }
}

impl CalendarSettings {
    /// Whether every synced extension follows its calendar (`all` or no list).
    pub fn all_extensions(&self) -> bool {
        self.extensions.is_empty() || self.extensions.iter().any(|e| e.trim() == "all")
    }

    /// Whether extension `number` follows its calendar.
    pub fn covers(&self, number: &str) -> bool {
        self.all_extensions() || self.extensions.iter().any(|e| e.trim() == number)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        crate::calendar::ShowAsMap::from_settings(&self.map).map_err(|message| SettingsError {
            key: "calendar.map",
            message,
        })?;
        if let Some(bad) = self
            .extensions
            .iter()
            .map(|e| e.trim())
            .find(|e| *e != "all" && (e.is_empty() || !e.chars().all(|c| c.is_ascii_digit())))
        {
            return Err(SettingsError {
                key: "calendar.extensions",
                message: format!("'{bad}' is not an extension number: use all or numbers"),
            });
        }
        if !(1..=24 * 41).contains(&self.look_ahead_hours) {
            return Err(SettingsError {
                key: "calendar.look_ahead_hours",
                message: "calendar.look_ahead_hours must be 1 to 984 (41 days)".into(),
            });
        }
        if !(1..=1440).contains(&self.poll_minutes) {
            return Err(SettingsError {
                key: "calendar.poll_minutes",
                message: "calendar.poll_minutes must be 1 to 1440".into(),
            });
        }
        Ok(())
    }
}

/// Mail transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// No mail is sent (mail stays in the outbox).
    #[default]
    None,
    /// Graph `sendMail`.
    Microsoft365,
    /// An SMTP server.
    Smtp,
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (a relay on the same host only).
    None,
}

/// Mail settings (`[mail]`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSettings {
    /// Transport.
    pub transport: MailTransport,
    /// Sender mailbox.
    pub sender: Option<String>,
    /// Where alerts go.
    pub admin_address: Option<String>,
    /// SMTP host.
    pub smtp_host: Option<String>,
    /// SMTP port.
    pub smtp_port: Option<u16>,
    /// SMTP user.
    pub smtp_user: Option<String>,
    /// SMTP password (file or environment only; never shown by the console).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_password: Option<String>,
    /// SMTP connection security.
    pub smtp_tls: SmtpTls,
    /// Send a welcome mail to the user of a newly synced extension (off by default).
    pub welcome: bool,
    /// Messages per minute per sender mailbox (Exchange Online allows 30).
    pub max_per_minute: u32,
    /// Recipients per day per sender mailbox (Exchange Online allows 10,000).
    pub max_recipients_per_day: u32,
}

impl std::fmt::Debug for MailSettings {
    /// Everything but the SMTP password (settings are logged at start-up).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("transport", &self.transport)
            .field("sender", &self.sender)
            .field("admin_address", &self.admin_address)
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_user", &self.smtp_user)
            .field("smtp_password", &self.smtp_password.as_ref().map(|_| "***"))
            .field("smtp_tls", &self.smtp_tls)
            .field("welcome", &self.welcome)
            .field("max_per_minute", &self.max_per_minute)
            .field("max_recipients_per_day", &self.max_recipients_per_day)
            .finish()
    }
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            transport: MailTransport::None,
            sender: None,
            admin_address: None,
            smtp_host: None,
            smtp_port: None,
            smtp_user: None,
            smtp_password: None,
            smtp_tls: SmtpTls::Starttls,
            welcome: false,
            max_per_minute: 30,
            max_recipients_per_day: 10_000,
        }
    }
}

/// What a call to an extension in a profile gets (`[sip]` `away`, `business_trip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SipRoute {
    /// `486 Busy Here`.
    Busy,
    /// `480 Temporarily Unavailable`.
    Unavailable,
    /// Forwarded to the extension's mobile number through `sip.trunk_uri`.
    Mobile,
}

/// Phones (`[sip]`, SPEC §8): where Kamailio listens and how calls follow the profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipSettings {
    /// SIP domain and digest realm; the host of `public_url` when unset.
    pub domain: Option<String>,
    /// Kamailio's SIP address (UDP and TCP).
    pub listen: String,
    /// Kamailio's JSON-RPC endpoint (`http://IP:PORT/RPC`), which pbx365 pushes profiles to.
    pub rpc_url: String,
    /// `serve`/`demo` run Kamailio as a supervised child; unset: when `kamailio` is on PATH.
    pub manage_kamailio: Option<bool>,
    /// Calls to an extension that is `away`.
    pub away: SipRoute,
    /// Calls to an extension on `business_trip`.
    pub business_trip: SipRoute,
    /// Trunk for the `mobile` route (`sip:HOST[:PORT]`); the mobile number becomes its user part.
    pub trunk_uri: Option<String>,
}

impl Default for SipSettings {
    fn default() -> Self {
        SipSettings {
            domain: None,
            listen: "0.0.0.0:5060".into(),
            rpc_url: "http://127.0.0.1:5071/RPC".into(),
            manage_kamailio: None,
            away: SipRoute::Unavailable,
            business_trip: SipRoute::Unavailable,
            trunk_uri: None,
        }
    }
}

impl SipSettings {
    /// The address and port of `rpc_url` (Kamailio listens there), or why it has none.
    pub fn rpc_addr(&self) -> Result<std::net::SocketAddr, SettingsError> {
        let bad = |why: &str| SettingsError {
            key: "sip.rpc_url",
            message: format!(
                "'{}' {why}: use http://IP:PORT/RPC, e.g. http://127.0.0.1:5071/RPC",
                self.rpc_url
            ),
        };
        let rest = self
            .rpc_url
            .strip_prefix("http://")
            .ok_or_else(|| bad("is not an http:// URL"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if !path.starts_with("/RPC") {
            return Err(bad("does not end in /RPC"));
        }
        authority
            .parse()
            .map_err(|_| bad("does not name an IP address and port"))
    }
}

/// The directory for desk phones (`[phonebook]`, SPEC §5): the token of the export URLs and the
/// read-only LDAP server. Secrets are kept as hashes when the console sets them (`sha256:` hex
/// of the export token, an Argon2 PHC string of the bind password); a file may hold them plain.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhonebookSettings {
    /// Token in the export URLs (`?token=`); no exports while unset.
    pub export_token: Option<String>,
    /// Address of the LDAP server (`IP:PORT`); off while unset.
    pub ldap_listen: Option<String>,
    /// DN under which the directory is served.
    pub ldap_base_dn: String,
    /// The DN phones bind with.
    pub ldap_bind_dn: Option<String>,
    /// Its password.
    pub ldap_bind_password: Option<String>,
    /// Searches without a bind (or an anonymous bind) are answered.
    pub ldap_anonymous: bool,
    /// LDAPS: certificate chain (PEM); with `ldap_tls_key`.
    pub ldap_tls_cert: Option<PathBuf>,
    /// LDAPS: private key (PEM).
    pub ldap_tls_key: Option<PathBuf>,
    /// Most entries one search returns, whatever the phone asks for.
    pub ldap_max_results: u32,
}

impl Default for PhonebookSettings {
    fn default() -> Self {
        PhonebookSettings {
            export_token: None,
            ldap_listen: None,
            ldap_base_dn: "dc=pbx365".into(),
            ldap_bind_dn: None,
            ldap_bind_password: None,
            ldap_anonymous: false,
            ldap_tls_cert: None,
            ldap_tls_key: None,
            ldap_max_results: 500,
        }
    }
}

impl std::fmt::Debug for PhonebookSettings {
    /// Everything but the secrets (settings are logged at start-up).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "***");
        f.debug_struct("PhonebookSettings")
            .field("export_token", &hidden(&self.export_token))
            .field("ldap_listen", &self.ldap_listen)
            .field("ldap_base_dn", &self.ldap_base_dn)
            .field("ldap_bind_dn", &self.ldap_bind_dn)
            .field("ldap_bind_password", &hidden(&self.ldap_bind_password))
            .field("ldap_anonymous", &self.ldap_anonymous)
            .field("ldap_tls_cert", &self.ldap_tls_cert)
            .field("ldap_tls_key", &self.ldap_tls_key)
            .field("ldap_max_results", &self.ldap_max_results)
            .finish()
    }
}

impl PhonebookSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        if let Some(l) = &self.ldap_listen {
            if l.parse::<std::net::SocketAddr>().is_err() {
                return Err(SettingsError {
                    key: "phonebook.ldap_listen",
                    message: format!(
                        "'{l}' is not an address: use IP:PORT, e.g. 0.0.0.0:389, or leave it unset"
                    ),
                });
            }
        }
        let dn_ok = |dn: &str| {
            !dn.trim().is_empty()
                && dn.len() <= 512
                && dn.split(',').all(|rdn| {
                    rdn.split_once('=')
                        .is_some_and(|(a, v)| !a.trim().is_empty() && !v.trim().is_empty())
                })
        };
        if !dn_ok(&self.ldap_base_dn) {
            return Err(SettingsError {
                key: "phonebook.ldap_base_dn",
                message: format!(
                    "'{}' is not a DN, e.g. dc=pbx365,dc=example",
                    self.ldap_base_dn
                ),
            });
        }
        if let Some(dn) = &self.ldap_bind_dn {
            if !dn_ok(dn) {
                return Err(SettingsError {
                    key: "phonebook.ldap_bind_dn",
                    message: format!("'{dn}' is not a DN, e.g. cn=phones,dc=pbx365"),
                });
            }
        }
        if self.ldap_tls_cert.is_some() != self.ldap_tls_key.is_some() {
            return Err(SettingsError {
                key: "phonebook.ldap_tls_cert",
                message: "LDAPS needs both phonebook.ldap_tls_cert and phonebook.ldap_tls_key"
                    .into(),
            });
        }
        if self.ldap_max_results == 0 {
            return Err(SettingsError {
                key: "phonebook.ldap_max_results",
                message: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

fn is_domain_name(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
}

fn check_url(key: &'static str, value: &str) -> Result<(), SettingsError> {
    let ok = (value.starts_with("http://") || value.starts_with("https://"))
        && value.len() > "https://".len()
        && !value.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(SettingsError {
            key,
            message: format!("'{value}' is not an http(s) URL"),
        })
    }
}

/// A setting with a bad value: the key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting `{key}`: {message}")]
pub struct SettingsError {
    /// The key, as written in the TOML file.
    pub key: &'static str,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// Parses `HH:MM` into (hour, minute).
pub fn parse_time_of_day(value: &str) -> Result<(u32, u32), ValidationError> {
    let bad = || ValidationError::TimeOfDay(value.to_string());
    let (h, m) = value.split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h < 24 && m < 60 {
        Ok((h, m))
    } else {
        Err(bad())
    }
}

impl Settings {
    /// `public_url`, or `http://{listen}`, without a trailing slash.
    pub fn effective_public_url(&self) -> String {
        let url = self.public_url.clone().unwrap_or_else(|| {
            let scheme = if self.tls.is_some() { "https" } else { "http" };
            format!("{scheme}://{}", self.listen)
        });
        url.trim_end_matches('/').to_string()
    }

    /// The SIP domain (digest realm): `sip.domain`, or the host of the public URL.
    pub fn effective_sip_domain(&self) -> String {
        if let Some(d) = &self.sip.domain {
            return d.clone();
        }
        let url = self.effective_public_url();
        let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or_default();
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if host.starts_with('[') {
            return host.split(']').next().unwrap_or(host).to_string() + "]";
        }
        host.split(':').next().unwrap_or(host).to_string()
    }

    /// `database_url`, or the SQLite file in `data_dir`.
    pub fn effective_database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}/pbx365.db", self.data_dir.display()))
    }

    /// Checks every value; the error names the key and says what to write instead.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(SettingsError {
                key: "listen",
                message: format!(
                    "'{}' is not an address: use IP:PORT, e.g. 127.0.0.1:8080",
                    self.listen
                ),
            });
        }
        if let Some(u) = &self.public_url {
            check_url("public_url", u)?;
        }
        if let Some(db) = &self.database_url {
            if !(db.starts_with("sqlite:")
                || db.starts_with("postgres://")
                || db.starts_with("postgresql://"))
            {
                return Err(SettingsError {
                    key: "database_url",
                    message: format!("'{db}' is not supported: use sqlite://FILE or postgres://…"),
                });
            }
        }
        let t = self.sessions;
        if t.idle_minutes == 0 || t.absolute_hours == 0 || t.idle_minutes > t.absolute_hours * 60 {
            return Err(SettingsError {
                key: "sessions",
                message: format!(
                    "idle_minutes {} / absolute_hours {} must both be at least 1, and the idle limit no longer than the absolute one",
                    t.idle_minutes, t.absolute_hours
                ),
            });
        }
        let d = self.extension_digits;
        if d.min == 0 || d.min > d.max || d.max > 18 {
            return Err(SettingsError {
                key: "extension_digits",
                message: format!(
                    "min {} / max {} must satisfy 1 <= min <= max <= 18",
                    d.min, d.max
                ),
            });
        }
        check_url("m365.authority_url", &self.m365.authority_url)?;
        check_url("m365.graph_url", &self.m365.graph_url)?;
        if let Some(t) = &self.m365.tenant_id {
            Guid::parse("tenant id", t).map_err(|e| SettingsError {
                key: "m365.tenant_id",
                message: e.to_string(),
            })?;
        }
        if let Some(c) = &self.m365.client_id {
            Guid::parse("Application (client) ID", c).map_err(|e| SettingsError {
                key: "m365.client_id",
                message: e.to_string(),
            })?;
        }
        let s = &self.sync;
        let digits = |n: u64| n.to_string().len();
        if !(d.min..=d.max).contains(&digits(s.start_extension)) {
            return Err(SettingsError {
                key: "sync.start_extension",
                message: format!(
                    "{} must have {} to {} digits",
                    s.start_extension, d.min, d.max
                ),
            });
        }
        if let Some(end) = s.end_extension {
            if end < s.start_extension {
                return Err(SettingsError {
                    key: "sync.end_extension",
                    message: format!(
                        "{end} is below sync.start_extension ({})",
                        s.start_extension
                    ),
                });
            }
        }
        parse_time_of_day(&s.nightly_at).map_err(|e| SettingsError {
            key: "sync.nightly_at",
            message: e.to_string(),
        })?;
        if s.poll_minutes == 0 {
            return Err(SettingsError {
                key: "sync.poll_minutes",
                message: "must be at least 1".into(),
            });
        }
        if !LEASE_TTL_SECS.contains(&s.lease_ttl_secs) {
            return Err(SettingsError {
                key: "sync.lease_ttl_secs",
                message: format!(
                    "{} must be {} to {} seconds (another instance takes a dead one's jobs over \
                     after it, within 30 s)",
                    s.lease_ttl_secs,
                    LEASE_TTL_SECS.start(),
                    LEASE_TTL_SECS.end()
                ),
            });
        }
        if s.max_deletion_percent > 100 {
            return Err(SettingsError {
                key: "sync.max_deletion_percent",
                message: "must be 0 to 100".into(),
            });
        }
        if s.scope != SyncScope::All {
            for id in &s.scope_ids {
                Guid::parse("object id", id).map_err(|e| SettingsError {
                    key: "sync.scope_ids",
                    message: e.to_string(),
                })?;
            }
        }
        for id in &self.sso.selected_groups {
            Guid::parse("object id", id).map_err(|_| SettingsError {
                key: "sso.selected_groups",
                message: format!(
                    "'{id}' is not a Microsoft 365 group object id (a GUID); pbx365 extension \
                     groups go in sso.selected_extension_groups"
                ),
            })?;
        }
        let m = &self.mail;
        for (key, addr) in [
            ("mail.sender", &m.sender),
            ("mail.admin_address", &m.admin_address),
        ] {
            if let Some(a) = addr.as_deref().filter(|a| !a.trim().is_empty()) {
                if !crate::outbox::is_mail_address(a) {
                    return Err(SettingsError {
                        key,
                        message: format!("'{a}' is not a mail address"),
                    });
                }
            }
        }
        if m.max_per_minute == 0 || m.max_recipients_per_day == 0 {
            return Err(SettingsError {
                key: "mail.max_per_minute",
                message: "mail.max_per_minute and mail.max_recipients_per_day must be at least 1"
                    .into(),
            });
        }
        if !(1..=MAX_RETENTION_DAYS).contains(&self.retention_days) {
            return Err(SettingsError {
                key: "retention_days",
                message: format!(
                    "{} must be 1 to {MAX_RETENTION_DAYS} days",
                    self.retention_days
                ),
            });
        }
        self.validate_sip()?;
        self.phonebook.validate()?;
        self.calendar.validate()?;
        if self.edition == Edition::Standard {
            if self.contacts.personal || !self.contacts.shared_mailboxes.is_empty() {
                return Err(SettingsError {
                    key: "contacts",
                    message: "contact sync needs the PRO edition".into(),
                });
            }
            if self.calendar.enabled {
                return Err(SettingsError {
                    key: "calendar.enabled",
                    message: "calendar status needs the PRO edition".into(),
                });
            }
        }
        Ok(())
    }
}

impl Settings {
    fn validate_sip(&self) -> Result<(), SettingsError> {
        let sip = &self.sip;
        if let Some(d) = &sip.domain {
            if !is_domain_name(d) {
                return Err(SettingsError {
                    key: "sip.domain",
                    message: format!("'{d}' is not a domain name or IP address"),
                });
            }
        }
        if sip.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(SettingsError {
                key: "sip.listen",
                message: format!(
                    "'{}' is not an address: use IP:PORT, e.g. 0.0.0.0:5060",
                    sip.listen
                ),
            });
        }
        sip.rpc_addr()?;
        let mobile = sip.away == SipRoute::Mobile || sip.business_trip == SipRoute::Mobile;
        match &sip.trunk_uri {
            Some(t) if !t.starts_with("sip:") || !is_domain_name(&t[4..]) => Err(SettingsError {
                key: "sip.trunk_uri",
                message: format!("'{t}' is not a trunk address: use sip:HOST or sip:HOST:PORT"),
            }),
            None if mobile => Err(SettingsError {
                key: "sip.trunk_uri",
                message: "the `mobile` route forwards through a trunk: set sip.trunk_uri".into(),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_timeouts_default_to_asvs_l2_and_refuse_nonsense() {
        let s = Settings::default();
        assert_eq!(
            (s.sessions.idle_minutes, s.sessions.absolute_hours),
            (30, 12)
        );
        let mut s = Settings::default();
        s.sessions.idle_minutes = 0;
        assert_eq!(s.validate().unwrap_err().key, "sessions");
        s.sessions.idle_minutes = 13 * 60;
        assert_eq!(s.validate().unwrap_err().key, "sessions");
        s.sessions.idle_minutes = 15;
        assert!(s.validate().is_ok());
    }

    #[test]
    fn calendar_settings_default_to_all_36_hours_and_name_bad_keys() {
        let s = Settings::default();
        assert!(s.calendar.all_extensions() && s.calendar.covers("100"));
        assert_eq!(s.calendar.look_ahead_hours, 36);
        let mut s = Settings::default();
        s.calendar.extensions = vec!["100".into(), "101".into()];
        assert!(s.calendar.covers("101") && !s.calendar.covers("102"));
        s.calendar.map.insert("busy".into(), "nap".into());
        assert_eq!(s.validate().unwrap_err().key, "calendar.map");
        let mut s = Settings::default();
        s.calendar.extensions = vec!["ann".into()];
        assert_eq!(s.validate().unwrap_err().key, "calendar.extensions");
        let mut s = Settings::default();
        s.calendar.look_ahead_hours = 0;
        assert_eq!(s.validate().unwrap_err().key, "calendar.look_ahead_hours");
    }

    #[test]
    fn sip_defaults_and_mistakes_name_their_key() {
        let s = Settings::default();
        assert_eq!(s.effective_sip_domain(), "127.0.0.1");
        let s = Settings {
            public_url: Some("https://pbx.example.com:8443/x".into()),
            ..Settings::default()
        };
        assert_eq!(s.effective_sip_domain(), "pbx.example.com");
        assert_eq!(s.sip.rpc_addr().unwrap(), "127.0.0.1:5071".parse().unwrap());

        let mut s = Settings::default();
        s.sip.rpc_url = "http://localhost:5071/RPC".into();
        assert_eq!(s.validate().unwrap_err().key, "sip.rpc_url");
        let mut s = Settings::default();
        s.sip.listen = "5060".into();
        assert_eq!(s.validate().unwrap_err().key, "sip.listen");
        let mut s = Settings::default();
        s.sip.away = SipRoute::Mobile;
        let err = s.validate().unwrap_err();
        assert_eq!(err.key, "sip.trunk_uri");
        assert!(err.message.contains("set sip.trunk_uri"), "{err}");
        s.sip.trunk_uri = Some("sip:trunk.example.com:5060".into());
        s.validate().unwrap();
        s.sip.domain = Some("bad domain".into());
        assert_eq!(s.validate().unwrap_err().key, "sip.domain");
    }

    #[test]
    fn phonebook_settings_name_their_key_and_hide_their_secrets() {
        let mut s = Settings::default();
        assert_eq!(s.phonebook.ldap_listen, None, "LDAP is off by default");
        s.phonebook.ldap_listen = Some("389".into());
        assert_eq!(s.validate().unwrap_err().key, "phonebook.ldap_listen");
        s.phonebook.ldap_listen = Some("127.0.0.1:389".into());
        s.phonebook.ldap_bind_dn = Some("phones".into());
        assert_eq!(s.validate().unwrap_err().key, "phonebook.ldap_bind_dn");
        s.phonebook.ldap_bind_dn = Some("cn=phones,dc=pbx365".into());
        s.phonebook.ldap_tls_cert = Some("ldap.crt".into());
        assert_eq!(s.validate().unwrap_err().key, "phonebook.ldap_tls_cert");
        s.phonebook.ldap_tls_key = Some("ldap.key".into());
        s.phonebook.export_token = Some("very-secret-token".into());
        s.phonebook.ldap_bind_password = Some("very-secret-password".into());
        s.validate().unwrap();
        let shown = format!("{:?}", s.phonebook);
        assert!(!shown.contains("very-secret"), "{shown}");
    }

    #[test]
    fn defaults_are_valid_and_derive_urls() {
        let s = Settings::default();
        s.validate().unwrap();
        assert_eq!(s.effective_public_url(), "http://127.0.0.1:8080");
        assert_eq!(
            s.effective_database_url(),
            "sqlite://./pbx365-data/pbx365.db"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut s = Settings::default();
        s.m365.graph_url = "graph.microsoft.com".into();
        assert_eq!(s.validate().unwrap_err().key, "m365.graph_url");

        let mut s = Settings::default();
        s.sync.nightly_at = "25:00".into();
        assert_eq!(s.validate().unwrap_err().key, "sync.nightly_at");

        for ttl in [1, 26] {
            let mut s = Settings::default();
            s.sync.lease_ttl_secs = ttl;
            let err = s.validate().unwrap_err();
            assert_eq!(err.key, "sync.lease_ttl_secs");
            assert!(err.to_string().contains("must be 2 to 25 seconds"), "{err}");
        }

        let s = Settings {
            retention_days: 0,
            ..Settings::default()
        };
        assert_eq!(s.validate().unwrap_err().key, "retention_days");
        assert_eq!(Settings::default().retention_days, 90);

        let mut s = Settings {
            edition: Edition::Standard,
            ..Settings::default()
        };
        s.contacts.personal = true;
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("contact sync needs the PRO edition"));
    }
}
