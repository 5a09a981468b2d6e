//! Loading the settings: defaults <- TOML file <- `PBX365_*` environment, then validation.
//! Every failure is one sentence that names the key or file.

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use pbx365_domain::settings::Settings;
use std::path::{Path, PathBuf};

/// The file read when `--config` is not given.
pub const DEFAULT_FILE: &str = "pbx365.toml";

/// Environment prefix of settings.
const ENV_PREFIX: &str = "PBX365_";

/// Variables with the prefix that are process options, not settings.
const ENV_NOT_SETTINGS: &[&str] = &["log_format"];

/// A configuration problem, as one sentence.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Loads, merges and validates the settings. `explicit` is `--config FILE`: it must exist,
/// whereas a missing default `pbx365.toml` simply means "defaults and environment only".
pub fn load(explicit: Option<&Path>) -> Result<Settings, ConfigError> {
    load_with_env(explicit, Env::prefixed(ENV_PREFIX))
}

fn load_with_env(explicit: Option<&Path>, env: Env) -> Result<Settings, ConfigError> {
    let (path, required) = match explicit {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_FILE), false),
    };
    let file_name = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => None,
        Err(e) => {
            return Err(ConfigError(format!(
                "cannot read the configuration file {file_name}: {}",
                io_reason(&e)
            )))
        }
    };
    let mut figment = Figment::new();
    if let Some(text) = &text {
        // Parse first ourselves: toml's error carries the position, which we turn into a line.
        if let Err(e) = text.parse::<toml::Table>() {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            // toml's message may span lines ("invalid string\nexpected ..."): keep one sentence.
            let msg = e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(": ");
            let msg = msg.trim_end_matches('.').to_string();
            return Err(ConfigError(match line {
                Some(l) => format!("{file_name} is not valid TOML: line {l}: {msg}"),
                None => format!("{file_name} is not valid TOML: {msg}"),
            }));
        }
        figment = figment.merge(Toml::string(text));
    }
    figment = figment.merge(env.ignore(ENV_NOT_SETTINGS).split("__"));
    let settings: Settings = figment.extract().map_err(|e| describe(e, &file_name))?;
    settings
        .validate()
        .map_err(|e| ConfigError(format!("{e}")))?;
    check_files(&settings)?;
    Ok(settings)
}

/// Turns figment's error into a sentence naming the key and where it was written.
fn describe(err: figment::Error, file_name: &str) -> ConfigError {
    use figment::error::Kind;
    let err = err
        .into_iter()
        .next()
        .expect("an error holds at least one error");
    let from_env = err
        .metadata
        .as_ref()
        .is_some_and(|m| m.name.contains("environment"));
    let mut path = err.path.clone();
    if let Kind::UnknownField(field, _) = &err.kind {
        // figment usually records the unknown key in the path already.
        if path.last() != Some(field) {
            path.push(field.clone());
        }
    }
    let key = path.join(".");
    let source = if from_env {
        format!(
            "environment variable {ENV_PREFIX}{}",
            path.iter()
                .map(|p| p.to_ascii_uppercase())
                .collect::<Vec<_>>()
                .join("__")
        )
    } else {
        file_name.to_string()
    };
    let sentence = match &err.kind {
        Kind::UnknownField(..) => format!("unknown setting `{key}` in {source}"),
        Kind::InvalidType(actual, expected) => {
            format!(
                "setting `{key}` in {source} has the wrong type: found {actual}, expected {}",
                plain(expected)
            )
        }
        Kind::InvalidValue(actual, expected) => {
            format!(
                "setting `{key}` in {source} has an invalid value {actual}: expected {}",
                plain(expected)
            )
        }
        Kind::UnknownVariant(actual, expected) => format!(
            "setting `{key}` in {source} is '{actual}': use one of {}",
            expected.join(", ")
        ),
        other => format!("setting `{key}` in {source}: {other}"),
    };
    ConfigError(sentence)
}

/// Serde's "expected" texts name Rust types; say them the way a person writes TOML.
fn plain(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" | "i32" | "i64" => "a whole number".into(),
        "a boolean" => "true or false".into(),
        other => other.into(),
    }
}

/// The OS reason without the "(os error N)" suffix.
pub fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Files the settings name must be readable now, not when first used.
fn check_files(settings: &Settings) -> Result<(), ConfigError> {
    if let Some(tls) = &settings.tls {
        // Readability of both first: "cannot read" is the more basic problem.
        let mut contents = Vec::new();
        for (what, path) in [("certificate", &tls.cert_file), ("key", &tls.key_file)] {
            let bytes = std::fs::read(path).map_err(|e| {
                ConfigError(format!(
                    "cannot read TLS {what} file {}: {}",
                    path.display(),
                    io_reason(&e)
                ))
            })?;
            contents.push((what, path, bytes));
        }
        for (what, path, bytes) in contents {
            let (marker, kind): (&[u8], &str) = if what == "key" {
                (b"PRIVATE KEY-----", "private key")
            } else {
                (b"-----BEGIN CERTIFICATE-----", "certificate")
            };
            if !bytes.windows(marker.len()).any(|w| w == marker) {
                return Err(ConfigError(format!(
                    "TLS {what} file {} holds no PEM {kind}",
                    path.display()
                )));
            }
        }
    }
    if let Some(ca) = &settings.m365.ca_file {
        std::fs::read(ca).map_err(|e| {
            ConfigError(format!(
                "cannot read setting `m365.ca_file` {}: {}",
                ca.display(),
                io_reason(&e)
            ))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pbx365.toml");
        std::fs::write(&file, text).unwrap();
        // A private, test-only prefix keeps the test independent of the real environment.
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let prefix = format!("PBX365T{n}X{}_", std::process::id());
        for (k, v) in env {
            std::env::set_var(format!("{prefix}{k}"), v);
        }
        let r = load_with_env(Some(&file), Env::prefixed(&prefix));
        for (k, _) in env {
            std::env::remove_var(format!("{prefix}{k}"));
        }
        r.map_err(|e| {
            ConfigError(
                e.0.replace(&file.display().to_string(), "pbx365.toml")
                    .replace(&prefix, "PBX365_"),
            )
        })
    }

    #[test]
    fn file_and_environment_merge_with_environment_winning() {
        let s = load_text(
            "listen = \"127.0.0.1:9000\"\n[sync]\npoll_minutes = 3\n",
            &[("SYNC__POLL_MINUTES", "9")],
        )
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:9000");
        assert_eq!(s.sync.poll_minutes, 9);
    }

    #[test]
    fn unknown_key_is_named_with_its_file() {
        let err = load_text("[sync]\nfoo = 1\n", &[]).unwrap_err();
        assert_eq!(err.0, "unknown setting `sync.foo` in pbx365.toml");
    }

    #[test]
    fn unknown_environment_key_names_the_variable() {
        let err = load_text("", &[("M365__CLIENTID", "x")]).unwrap_err();
        assert_eq!(
            err.0,
            "unknown setting `m365.clientid` in environment variable PBX365_M365__CLIENTID"
        );
    }

    #[test]
    fn bad_url_names_the_key() {
        let err = load_text("[m365]\ngraph_url = \"graph.microsoft.com\"\n", &[]).unwrap_err();
        assert!(
            err.0.contains("m365.graph_url") && err.0.contains("not an http(s) URL"),
            "{}",
            err.0
        );
    }

    #[test]
    fn broken_toml_names_the_line() {
        let err = load_text("listen = \"127.0.0.1:1\"\n\nedition = \n", &[]).unwrap_err();
        assert!(
            err.0.starts_with("pbx365.toml is not valid TOML: line 3"),
            "{}",
            err.0
        );
    }

    #[test]
    fn wrong_type_is_explained() {
        let err = load_text("[sync]\npoll_minutes = \"often\"\n", &[]).unwrap_err();
        assert!(
            err.0.contains("`sync.poll_minutes`") && err.0.contains("whole number"),
            "{}",
            err.0
        );
    }

    #[test]
    fn unreadable_tls_key_is_named() {
        let err = load_text(
            "[tls]\ncert_file = \"/etc/hostname\"\nkey_file = \"/nonexistent/k.pem\"\n",
            &[],
        )
        .unwrap_err();
        assert_eq!(
            err.0,
            "cannot read TLS key file /nonexistent/k.pem: No such file or directory"
        );
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = load(Some(Path::new("/nonexistent/pbx365.toml"))).unwrap_err();
        assert_eq!(err.0, "cannot read the configuration file /nonexistent/pbx365.toml: No such file or directory");
    }
}
