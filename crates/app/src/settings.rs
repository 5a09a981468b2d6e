//! Settings: the file and environment, with the console's values over them. Console-edited
//! settings are stored in the database under `setting:<key>` (JSON values) and applied over the
//! file/environment settings, so a console change wins over `pbx365.toml`.
//!
//! [`App::store_setting`] is how an adapter changes one; the CLI reads the effective settings
//! with [`load`].

use crate::{App, AppError};
use pbx365_domain::settings::{Settings, SettingsError};
use pbx365_store::{Store, StoreError};

/// Keys the console may change (SPEC §8 "Feature settings" plus the tenant connection).
pub const CONSOLE_KEYS: &[&str] = &[
    "m365.tenant_id",
    "m365.client_id",
    "sync.enabled",
    "sync.start_extension",
    "sync.end_extension",
    "sync.caller_id_from_office_phone",
    "sync.photos",
    "sync.scope",
    "sync.scope_ids",
    "sync.nightly_at",
    "sync.poll_minutes",
    "sync.delete_after_days",
    "sync.max_deletions",
    "sync.max_deletion_percent",
    "sso.console",
    "sso.webclient",
    "sso.selected_extensions",
    "sso.selected_groups",
    "sso.selected_group_names",
    "sso.selected_extension_groups",
    "contacts.personal",
    "contacts.shared_mailboxes",
    "contacts.default_country",
    "calendar.enabled",
    "calendar.map",
    "calendar.extensions",
    "calendar.look_ahead_hours",
    "calendar.poll_minutes",
    "mail.transport",
    "mail.sender",
    "mail.admin_address",
    "mail.smtp_host",
    "mail.smtp_port",
    "mail.smtp_user",
    "mail.welcome",
    "mail.max_per_minute",
    "mail.max_recipients_per_day",
    "phonebook.export_token",
    "phonebook.ldap_listen",
    "phonebook.ldap_bind_dn",
    "phonebook.ldap_bind_password",
    "phonebook.ldap_anonymous",
];

/// Why stored console settings could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    /// Reading the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored value does not fit the setting.
    #[error("setting `{key}` stored by the console is not valid: {reason}")]
    Value { key: String, reason: String },
    /// The combined settings do not validate.
    #[error(transparent)]
    Invalid(#[from] SettingsError),
}

/// The database key of a console setting.
pub fn kv_key(key: &str) -> String {
    format!("setting:{key}")
}

/// Applies `(key, JSON value)` overrides to `base`, then validates the result.
pub fn apply(
    base: &Settings,
    overrides: &[(String, serde_json::Value)],
) -> Result<Settings, OverrideError> {
    let mut tree = serde_json::to_value(base).map_err(|e| OverrideError::Value {
        key: "*".into(),
        reason: e.to_string(),
    })?;
    for (key, value) in overrides {
        if !CONSOLE_KEYS.contains(&key.as_str()) {
            return Err(OverrideError::Value {
                key: key.clone(),
                reason: "the console cannot change this setting".into(),
            });
        }
        let mut node = &mut tree;
        for part in key.split('.') {
            node = node
                .as_object_mut()
                .ok_or_else(|| OverrideError::Value {
                    key: key.clone(),
                    reason: "not a table".into(),
                })?
                .entry(part.to_string())
                .or_insert(serde_json::Value::Null);
        }
        *node = value.clone();
    }
    let settings: Settings = serde_json::from_value(tree).map_err(|e| OverrideError::Value {
        key: overrides
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        reason: e.to_string(),
    })?;
    settings.validate()?;
    Ok(settings)
}

/// Reads every stored console setting and applies it over `base` (file + environment).
pub async fn load(store: &Store, base: &Settings) -> Result<Settings, OverrideError> {
    let mut overrides = Vec::new();
    for key in CONSOLE_KEYS {
        if let Some(raw) = store.get_kv(&kv_key(key)).await? {
            let value = serde_json::from_str(&raw).map_err(|e| OverrideError::Value {
                key: key.to_string(),
                reason: e.to_string(),
            })?;
            overrides.push((key.to_string(), value));
        }
    }
    apply(base, &overrides)
}

impl App {
    /// Stores a console setting (it wins over the file) and applies it to the running
    /// application; refused with a sentence when the result would not validate.
    pub async fn store_setting(&self, key: &str, value: serde_json::Value) -> Result<(), AppError> {
        self.store_settings(&[(key.to_string(), value)]).await
    }

    /// Stores several console settings at once (validated together) and applies them.
    pub async fn store_settings(
        &self,
        overrides: &[(String, serde_json::Value)],
    ) -> Result<(), AppError> {
        let applied =
            apply(&self.settings(), overrides).map_err(|e| AppError::Invalid(e.to_string()))?;
        for (key, value) in overrides {
            self.store.set_kv(&kv_key(key), &value.to_string()).await?;
        }
        self.replace_settings(applied);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_values_win_over_the_file() {
        let mut base = Settings::default();
        base.sync.poll_minutes = 7;
        base.listen = "127.0.0.1:9999".into();
        let s = apply(
            &base,
            &[("sync.poll_minutes".into(), serde_json::json!(15))],
        )
        .unwrap();
        assert_eq!(s.sync.poll_minutes, 15);
        assert_eq!(s.listen, "127.0.0.1:9999");
    }

    #[test]
    fn bad_console_values_name_the_key() {
        let err = apply(
            &Settings::default(),
            &[("sync.nightly_at".into(), serde_json::json!("25:99"))],
        )
        .unwrap_err();
        assert!(err.to_string().contains("sync.nightly_at"), "{err}");
        let err = apply(
            &Settings::default(),
            &[("listen".into(), serde_json::json!("0.0.0.0:1"))],
        )
        .unwrap_err();
        assert!(err.to_string().contains("cannot change"), "{err}");
    }
}
