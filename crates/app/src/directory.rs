//! What reads the phonebooks (issue 14, SPEC §5): caller-name lookup, the directory desk phones
//! download or search (company phonebook plus extensions), the export token and the LDAP bind
//! credential (`[phonebook]`), stored hashed and compared in constant time.

use crate::secrets::{hash_secret, random_token, secrets_equal};
use crate::settings::{kv_key, CONSOLE_KEYS};
use crate::{App, AppError, Missing};
use pbx365_domain::directory::{cards, DirectoryCard};
use pbx365_domain::phonebook::{check_dialable, dial_forms, to_e164};
use pbx365_domain::settings::PhonebookSettings;
use pbx365_domain::{CallerName, CallerSource, Extension, PhonebookEntry, PhonebookOwner};
use serde_json::{json, Value};

/// Prefix of a stored export token digest (hex SHA-256 of the token).
pub const TOKEN_HASH_PREFIX: &str = "sha256:";

/// The LDAP settings the console sets.
#[derive(Debug, Clone, Default)]
pub struct LdapChange {
    /// `IP:PORT`, or `None` to turn the server off.
    pub listen: Option<String>,
    /// The DN phones bind with (`None`: no bind DN).
    pub bind_dn: Option<String>,
    /// A new bind password; `None` keeps the stored one.
    pub new_password: Option<String>,
    /// Searches without a bind are answered.
    pub anonymous: bool,
}

impl App {
    /// Who `number` is, for the phone that `extension` (when given) is called on: that
    /// extension's personal phonebook first, then the company phonebook, then the extensions
    /// (their number, mobile or outbound caller ID). Each step is an index read.
    pub async fn lookup_caller(
        &self,
        number: &str,
        extension: Option<&str>,
    ) -> Result<CallerName, AppError> {
        check_dialable(number)?;
        if let Some(x) = extension {
            self.extension(x).await?;
        }
        let country = self.settings().contacts.default_country.clone();
        let e164 = to_e164(number, &country);
        let answer =
            |name: String, source, entry: Option<&PhonebookEntry>, ext: Option<&str>| CallerName {
                number: number.to_string(),
                e164: e164.clone(),
                name,
                source,
                entry_id: entry.map(|e| e.id.clone()),
                extension: ext.map(str::to_string),
                company: entry.and_then(|e| e.company.clone()),
                kind: None,
            };
        if let Some(e) = &e164 {
            let mut books = Vec::new();
            if let Some(x) = extension {
                books.push((
                    PhonebookOwner::Personal(x.to_string()),
                    CallerSource::Personal,
                ));
            }
            books.push((PhonebookOwner::Company, CallerSource::Company));
            for (owner, source) in books {
                if let Some((entry, kind)) = self.store.phonebook_entry_by_e164(&owner, e).await? {
                    let mut found = answer(entry.display_name.clone(), source, Some(&entry), None);
                    found.kind = Some(kind);
                    return Ok(found);
                }
            }
        }
        let digits: String = number.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.chars().all(|c| c.is_ascii_digit()) {
            if let Some(x) = self.store.get_extension(&digits).await? {
                if x.enabled {
                    return Ok(answer(
                        x.display_name.clone(),
                        CallerSource::Extension,
                        None,
                        Some(x.number.as_str()),
                    ));
                }
            }
        }
        if let Some(e) = &e164 {
            let hits = self.store.extensions_by_dial_forms(&dial_forms(e)).await?;
            let same = |raw: &Option<String>| {
                raw.as_deref()
                    .is_some_and(|r| to_e164(r, &country).as_deref() == Some(e.as_str()))
            };
            if let Some(x) = hits
                .iter()
                .find(|x| x.enabled && (same(&x.mobile) || same(&x.outbound_caller_id)))
            {
                return Ok(answer(
                    x.display_name.clone(),
                    CallerSource::Extension,
                    None,
                    Some(x.number.as_str()),
                ));
            }
        }
        Err(AppError::not_found(
            Missing::PhonebookEntry,
            "no phonebook entry or extension has this number",
        ))
    }

    /// The directory desk phones see: the company phonebook and the enabled extensions.
    pub async fn directory_cards(&self) -> Result<Vec<DirectoryCard>, AppError> {
        let company = self.store.list_phonebook(&PhonebookOwner::Company).await?;
        let extensions: Vec<Extension> = self.store.list_extensions().await?;
        Ok(cards(&company, &extensions))
    }

    /// `[phonebook]` as stored now: the running settings with the phonebook keys the console
    /// stored read again, so a token rotated or a password changed on another instance of a
    /// cluster counts here at once (a few key reads).
    pub async fn phonebook_settings(&self) -> Result<PhonebookSettings, AppError> {
        let mut tree = serde_json::to_value(&self.settings().phonebook)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        for key in CONSOLE_KEYS.iter().filter(|k| k.starts_with("phonebook.")) {
            if let Some(raw) = self.store.get_kv(&kv_key(key)).await? {
                let value: Value =
                    serde_json::from_str(&raw).map_err(|e| AppError::Internal(e.to_string()))?;
                tree[key.trim_start_matches("phonebook.")] = value;
            }
        }
        serde_json::from_value(tree).map_err(|e| AppError::Internal(e.to_string()))
    }

    /// True when `presented` is the export token (constant-time; false while none is set, or
    /// when the stored settings cannot be read).
    pub async fn export_token_matches(&self, presented: &str) -> bool {
        let Ok(p) = self.phonebook_settings().await else {
            return false;
        };
        let Some(stored) = p.export_token.as_deref() else {
            return false;
        };
        let want = match stored.strip_prefix(TOKEN_HASH_PREFIX) {
            Some(digest) => digest.to_ascii_lowercase(),
            None => hash_secret(stored),
        };
        !presented.is_empty() && secrets_equal(&hash_secret(presented), &want)
    }

    /// A new export token: stored as its digest, returned once; the previous one stops working.
    pub async fn rotate_export_token(&self, actor: &str) -> Result<String, AppError> {
        let token = random_token();
        self.store_setting(
            "phonebook.export_token",
            json!(format!("{TOKEN_HASH_PREFIX}{}", hash_secret(&token))),
        )
        .await?;
        self.audit(actor, "phonebook.export_token", "phonebook", "new token")
            .await;
        Ok(token)
    }

    /// Turns the exports off (no token works any more).
    pub async fn remove_export_token(&self, actor: &str) -> Result<(), AppError> {
        self.store_setting("phonebook.export_token", Value::Null)
            .await?;
        self.audit(actor, "phonebook.export_token", "phonebook", "removed")
            .await;
        Ok(())
    }

    /// Stores the LDAP settings of the console; a new password is stored as an Argon2 hash.
    /// The server takes a changed address at the next start.
    pub async fn set_ldap(&self, actor: &str, change: LdapChange) -> Result<(), AppError> {
        let opt = |s: Option<String>| {
            s.map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .map_or(Value::Null, Value::String)
        };
        let mut overrides = vec![
            ("phonebook.ldap_listen".to_string(), opt(change.listen)),
            ("phonebook.ldap_bind_dn".to_string(), opt(change.bind_dn)),
            (
                "phonebook.ldap_anonymous".to_string(),
                json!(change.anonymous),
            ),
        ];
        if let Some(pw) = change.new_password {
            let phc = crate::password::hash_password(&pw)
                .map_err(|e| AppError::Invalid(format!("LDAP bind password: {e}")))?;
            overrides.push(("phonebook.ldap_bind_password".to_string(), json!(phc)));
        }
        self.store_settings(&overrides).await?;
        self.audit(
            actor,
            "phonebook.ldap",
            "phonebook",
            "LDAP settings changed",
        )
        .await;
        Ok(())
    }

    /// [`bind_matches`] with the running settings.
    pub fn ldap_bind_matches(&self, dn: &str, password: &str) -> bool {
        bind_matches(&self.settings().phonebook, dn, password)
    }
}

/// True when `dn`/`password` is the LDAP bind credential of `p`. The DN compares
/// case-insensitively without spaces around its parts; the password in constant time (an Argon2
/// hash when the console set it). Costly: run it off the async threads.
pub fn bind_matches(p: &PhonebookSettings, dn: &str, password: &str) -> bool {
    let (Some(want_dn), Some(stored)) = (&p.ldap_bind_dn, &p.ldap_bind_password) else {
        return false;
    };
    if password.is_empty() || normalize_dn(dn) != normalize_dn(want_dn) {
        crate::password::burn_verification(password);
        return false;
    }
    if stored.starts_with("$argon2") {
        crate::password::verify_password(password, stored)
    } else {
        secrets_equal(&hash_secret(password), &hash_secret(stored))
    }
}

/// A DN compared the way LDAP does for our simple names: attribute names and values
/// case-insensitive, spaces around `,` and `=` ignored.
pub fn normalize_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| match rdn.split_once('=') {
            Some((a, v)) => format!("{}={}", a.trim(), v.trim()),
            None => rdn.trim().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbx365_domain::PhoneKind;

    #[tokio::test]
    async fn the_export_token_is_stored_hashed_and_rotates() {
        let (app, _dir) = crate::test_app().await;
        assert!(!app.export_token_matches("").await);
        assert!(!app.export_token_matches("anything").await);
        let token = app.rotate_export_token("t").await.unwrap();
        assert!(app.export_token_matches(&token).await);
        let stored = app.settings().phonebook.export_token.clone().unwrap();
        assert!(stored.starts_with(TOKEN_HASH_PREFIX) && !stored.contains(&token));
        let next = app.rotate_export_token("t").await.unwrap();
        assert!(!app.export_token_matches(&token).await);
        assert!(app.export_token_matches(&next).await);

        // Another instance of the cluster (same database) rotates: the old token stops at once.
        let other = App::new(app.store.clone(), (*app.settings()).clone());
        let third = other.rotate_export_token("t").await.unwrap();
        assert!(!app.export_token_matches(&next).await);
        assert!(app.export_token_matches(&third).await);
        app.remove_export_token("t").await.unwrap();
        assert!(!app.export_token_matches(&third).await);
    }

    #[tokio::test]
    async fn the_ldap_password_is_stored_hashed() {
        let (app, _dir) = crate::test_app().await;
        app.set_ldap(
            "t",
            LdapChange {
                listen: Some("127.0.0.1:0".into()),
                bind_dn: Some("cn=phones, dc=pbx365".into()),
                new_password: Some("desk phone secret".into()),
                anonymous: false,
            },
        )
        .await
        .unwrap();
        let p = app.settings().phonebook.clone();
        assert!(p
            .ldap_bind_password
            .as_deref()
            .unwrap()
            .starts_with("$argon2"));
        assert!(app.ldap_bind_matches("CN=Phones,DC=pbx365", "desk phone secret"));
        assert!(!app.ldap_bind_matches("cn=phones,dc=pbx365", "wrong"));
        assert!(!app.ldap_bind_matches("cn=other,dc=pbx365", "desk phone secret"));
        assert!(!app.ldap_bind_matches("", ""));
    }

    #[tokio::test]
    async fn lookup_goes_personal_then_company_then_extensions() {
        let (app, _dir) = crate::test_app().await;
        app.store_setting("contacts.default_country", json!("DE"))
            .await
            .unwrap();
        let ext = |n: &str, mobile: &str| pbx365_domain::extension::NewExtension {
            first_name: "Ext".into(),
            last_name: n.into(),
            display_name: format!("Ext {n}"),
            mobile: Some(mobile.into()),
            ..Default::default()
        };
        app.store
            .create_local_extension("201", &ext("201", "0170 1111111"))
            .await
            .unwrap();
        app.store
            .create_local_extension("202", &ext("202", "+49 (30) 555-0000"))
            .await
            .unwrap();
        let entry = |name: &str, number: &str| crate::phonebook::EntryInput {
            display_name: name.into(),
            numbers: vec![crate::phonebook::NumberInput {
                kind: PhoneKind::Mobile,
                number: number.into(),
            }],
            ..Default::default()
        };
        app.create_phonebook_entry(
            "t",
            PhonebookOwner::Company,
            entry("Company Dora", "+49 30 1234567"),
        )
        .await
        .unwrap();
        app.create_phonebook_entry(
            "t",
            PhonebookOwner::Personal("201".into()),
            entry("My Dora", "030 1234567"),
        )
        .await
        .unwrap();

        let hit = app
            .lookup_caller("+49301234567", Some("201"))
            .await
            .unwrap();
        assert_eq!(
            (hit.name.as_str(), hit.source),
            ("My Dora", CallerSource::Personal)
        );
        assert_eq!(hit.kind, Some(PhoneKind::Mobile));
        let hit = app.lookup_caller("0301234567", Some("202")).await.unwrap();
        assert_eq!(
            (hit.name.as_str(), hit.source),
            ("Company Dora", CallerSource::Company)
        );
        assert_eq!(hit.e164.as_deref(), Some("+49301234567"));
        let hit = app.lookup_caller("+49 170 1111111", None).await.unwrap();
        assert_eq!(
            (hit.name.as_str(), hit.extension.as_deref()),
            ("Ext 201", Some("201"))
        );
        let hit = app.lookup_caller("0305550000", None).await.unwrap();
        assert_eq!(hit.extension.as_deref(), Some("202"));
        let hit = app.lookup_caller("202", None).await.unwrap();
        assert_eq!(hit.source, CallerSource::Extension);
        assert!(matches!(
            app.lookup_caller("+49301111111", None).await,
            Err(AppError::NotFound { .. })
        ));
        assert!(matches!(
            app.lookup_caller("+49301234567", Some("999")).await,
            Err(AppError::NotFound {
                what: Missing::Extension,
                ..
            })
        ));
        assert!(matches!(
            app.lookup_caller("call me", None).await,
            Err(AppError::Validation(_))
        ));
    }
}
