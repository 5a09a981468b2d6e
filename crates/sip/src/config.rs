//! The `kamailio.cfg` of a deployment, from its settings (`pbx365 sip config`).

use pbx365_domain::settings::{Settings, SettingsError, SipRoute};
use std::net::SocketAddr;

/// The configuration template; `{{NAME}}` marks the values filled in by [`KamailioConfig::render`].
const TEMPLATE: &str = include_str!("kamailio.cfg.tpl");

/// Failed authentications from one address within [`FAIL_WINDOW_S`] before it is banned.
pub const FAIL_LIMIT: u32 = 10;
/// Seconds a failed authentication is remembered.
pub const FAIL_WINDOW_S: u32 = 300;
/// Seconds a banned address stays banned.
pub const BAN_S: u32 = 600;

/// Why no configuration can be written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A `[sip]` setting is not usable.
    #[error(transparent)]
    Setting(#[from] SettingsError),
    /// The database URL is not one Kamailio can open.
    #[error("Kamailio cannot open the database {0}: use sqlite://FILE or postgres://USER:PASSWORD@HOST[:PORT]/DB")]
    Database(String),
}

/// Everything the configuration depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct KamailioConfig {
    /// SIP domain and digest realm.
    pub domain: String,
    /// SIP address (UDP and TCP).
    pub sip_listen: SocketAddr,
    /// JSON-RPC address.
    pub rpc_listen: SocketAddr,
    /// The store as Kamailio names it (`sqlite:///abs/file` or `postgres://…`).
    pub db_url: String,
    /// Calls to `away` extensions.
    pub away: SipRoute,
    /// Calls to `business_trip` extensions.
    pub business_trip: SipRoute,
    /// Trunk of the `mobile` route.
    pub trunk_uri: Option<String>,
    /// Log to stderr (a supervised child) instead of syslog (a service).
    pub log_stderr: bool,
    /// Worker processes per transport.
    pub children: u32,
}

impl KamailioConfig {
    /// The configuration for validated `settings` (its database URL as pbx365 opens it).
    pub fn from_settings(settings: &Settings) -> Result<KamailioConfig, ConfigError> {
        let sip = &settings.sip;
        let sip_listen = sip.listen.parse().map_err(|_| SettingsError {
            key: "sip.listen",
            message: format!("'{}' is not an address: use IP:PORT", sip.listen),
        })?;
        Ok(KamailioConfig {
            domain: settings.effective_sip_domain(),
            sip_listen,
            rpc_listen: sip.rpc_addr()?,
            db_url: kamailio_db_url(&settings.effective_database_url())?,
            away: sip.away,
            business_trip: sip.business_trip,
            trunk_uri: sip.trunk_uri.clone(),
            log_stderr: false,
            children: 4,
        })
    }

    /// The complete `kamailio.cfg`.
    pub fn render(&self) -> String {
        let rpc_ip = self.rpc_listen.ip();
        // Loopback RPC answers only loopback; otherwise only pbx365's address, the one it
        // listens on (the same host by design: pbx365 runs Kamailio or sits next to it).
        let (allow_text, allow_expr) = if rpc_ip.is_loopback() {
            (
                "127.0.0.1 and ::1".to_string(),
                "$si == \"127.0.0.1\" || $si == \"::1\"".to_string(),
            )
        } else {
            (rpc_ip.to_string(), format!("$si == \"{rpc_ip}\""))
        };
        let db_module = if self.db_url.starts_with("sqlite:") {
            "db_sqlite.so"
        } else {
            "db_postgres.so"
        };
        let listen = |a: SocketAddr| match a {
            SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
            SocketAddr::V4(v4) => v4.to_string(),
        };
        let mobile = match &self.trunk_uri {
            Some(trunk) => format!(
                "\tif ($sht(mob=>$rU) == $null) {{\n\t\tsend_reply(\"480\", \"Temporarily Unavailable\");\n\t\texit;\n\t}}\n\
                 \t$ru = \"sip:\" + $sht(mob=>$rU) + \"@{}\";\n\tif (!t_relay()) {{\n\t\tsl_reply_error();\n\t}}\n\texit;",
                trunk.trim_start_matches("sip:")
            ),
            None => "\tsend_reply(\"480\", \"Temporarily Unavailable\");\n\texit;".into(),
        };
        let route = |r: SipRoute| match r {
            SipRoute::Busy => "\tsend_reply(\"486\", \"Busy Here\");\n\texit;".to_string(),
            SipRoute::Unavailable => {
                "\tsend_reply(\"480\", \"Temporarily Unavailable\");\n\texit;".to_string()
            }
            SipRoute::Mobile => "\troute(MOBILE);".to_string(),
        };
        // pua sends its PUBLISH to this address (Kamailio's own SIP socket).
        let publish_to = match self.sip_listen {
            SocketAddr::V4(v4) if v4.ip().is_unspecified() => format!("127.0.0.1:{}", v4.port()),
            SocketAddr::V6(v6) if v6.ip().is_unspecified() => format!("[::1]:{}", v6.port()),
            a => listen(a),
        };
        let values: Vec<(&str, String)> = vec![
            ("DOMAIN", self.domain.clone()),
            ("DB_URL", self.db_url.clone()),
            ("DB_MODULE", db_module.into()),
            (
                "LOG_STDERR",
                if self.log_stderr { "yes" } else { "no" }.into(),
            ),
            ("CHILDREN", self.children.to_string()),
            ("SIP_LISTEN", listen(self.sip_listen)),
            ("RPC_LISTEN", listen(self.rpc_listen)),
            ("PUBLISH_TO", publish_to),
            ("RPC_PORT", self.rpc_listen.port().to_string()),
            ("RPC_ALLOW_EXPR", allow_expr),
            ("RPC_ALLOW", allow_text),
            ("FAIL_WINDOW", FAIL_WINDOW_S.to_string()),
            ("FAIL_LIMIT", FAIL_LIMIT.to_string()),
            ("BAN_SECONDS", BAN_S.to_string()),
            ("AWAY", route(self.away)),
            ("BUSINESS_TRIP", route(self.business_trip)),
            ("MOBILE", mobile),
        ];
        let mut out = TEMPLATE.to_string();
        for (name, value) in &values {
            out = out.replace(&format!("{{{{{name}}}}}"), value);
        }
        out
    }
}

/// pbx365's database URL as Kamailio's db modules write it: an absolute SQLite file path
/// (Kamailio runs in another directory), or the PostgreSQL URL without query parameters.
pub fn kamailio_db_url(url: &str) -> Result<String, ConfigError> {
    if let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            return Err(ConfigError::Database(url.into()));
        }
        let path = std::path::Path::new(path);
        let abs = std::path::absolute(path).map_err(|_| ConfigError::Database(url.into()))?;
        return Ok(format!("sqlite://{}", abs.display()));
    }
    if let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    {
        let base = rest.split('?').next().unwrap_or_default();
        if base.contains('@') && base.contains('/') {
            return Ok(format!("postgres://{base}"));
        }
    }
    Err(ConfigError::Database(crate::rpc::redact(url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> KamailioConfig {
        let settings = Settings {
            database_url: Some("sqlite:///var/lib/pbx365/pbx365.db".into()),
            public_url: Some("https://pbx.example.com".into()),
            ..Settings::default()
        };
        KamailioConfig::from_settings(&settings).unwrap()
    }

    #[test]
    fn every_placeholder_is_filled_and_the_store_is_named() {
        let cfg = sample().render();
        assert!(!cfg.contains("{{"), "unfilled placeholder");
        assert!(cfg.contains("#!define DBURL \"sqlite:///var/lib/pbx365/pbx365.db\""));
        assert!(cfg.contains("loadmodule \"db_sqlite.so\""));
        assert!(cfg.contains("auth_check(\"pbx.example.com\", \"sip_subscriber\", \"1\")"));
        assert!(cfg.contains("listen=udp:0.0.0.0:5060"));
        assert!(cfg.contains("listen=tcp:127.0.0.1:5071"));
        assert!(cfg.contains("$si == \"127.0.0.1\""));
        // pua publishes presence to Kamailio's own socket (loopback when it listens on all).
        assert!(cfg.contains(
            "modparam(\"pua\", \"outbound_proxy\", \"sip:127.0.0.1:5060;transport=udp\")"
        ));
        assert!(cfg.contains("modparam(\"pua\", \"db_url\", DBURL)"));
    }

    #[test]
    fn profile_routes_follow_the_settings() {
        let mut k = sample();
        k.away = SipRoute::Busy;
        k.business_trip = SipRoute::Mobile;
        k.trunk_uri = Some("sip:trunk.example.com:5080".into());
        let cfg = k.render();
        let away = cfg.split("route[AWAY] {").nth(1).unwrap();
        assert!(
            away.trim_start().starts_with("send_reply(\"486\""),
            "{away}"
        );
        let trip = cfg.split("route[BUSINESS_TRIP] {").nth(1).unwrap();
        assert!(trip.trim_start().starts_with("route(MOBILE);"));
        assert!(cfg.contains("@trunk.example.com:5080\""));
    }

    #[test]
    fn database_urls_become_kamailio_urls() {
        assert_eq!(
            kamailio_db_url("postgres://u:p@db:5432/pbx?sslmode=disable").unwrap(),
            "postgres://u:p@db:5432/pbx"
        );
        assert!(kamailio_db_url("sqlite://data/x.db")
            .unwrap()
            .ends_with("/data/x.db"));
        let err = kamailio_db_url("sqlite::memory:").unwrap_err().to_string();
        assert!(err.contains("Kamailio cannot open"), "{err}");
    }
}
