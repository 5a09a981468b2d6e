//! Phones (SPEC §8): SIP secrets of extensions and the routing state Kamailio holds.
//!
//! Every change that alters how calls to an extension are routed (profile, display name,
//! deletion) goes to Kamailio through the [`SipPusher`] set with [`App::set_sip_pusher`] (by
//! `serve`/`demo`); without one (CLI commands, SIP not run by this process) Kamailio reads the
//! store at its next start.

use crate::{App, AppError};
use pbx365_domain::Extension;
use pbx365_sip::pusher::Update;
use pbx365_sip::{digest, SipPusher, SipStatus};

impl App {
    /// Sends routing changes to Kamailio through `pusher` from now on.
    pub fn set_sip_pusher(&self, pusher: SipPusher) {
        *self.sip.write().unwrap_or_else(|e| e.into_inner()) = Some(pusher);
    }

    /// The pusher's status (for the console), when this process pushes to Kamailio.
    pub fn sip_status(&self) -> Option<SipStatus> {
        self.sip
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(SipPusher::status)
    }

    /// Queues `update` of extension `number` for Kamailio (a no-op without a pusher).
    pub(crate) fn push_sip(&self, number: &str, update: Update) {
        if let Some(p) = self.sip.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            p.push(number, update);
        }
    }

    /// Queues the routing state of `ext` as stored now.
    pub(crate) fn push_sip_route(&self, ext: &Extension) {
        let update = if ext.enabled {
            Update::Route {
                profile: ext.profile.profile.as_str().to_string(),
                display_name: ext.display_name.clone(),
            }
        } else {
            Update::Remove
        };
        self.push_sip(ext.number.as_str(), update);
    }

    /// A new SIP secret for an enabled extension: returned once, stored only as its digest
    /// hashes for the SIP domain; the old secret stops working and its registrations end.
    pub async fn rotate_sip_secret(&self, actor: &str, number: &str) -> Result<String, AppError> {
        let ext = self.extension(number).await?;
        if !ext.enabled {
            return Err(AppError::Conflict(format!(
                "Extension {} is disabled; a disabled extension cannot register, so it gets no SIP secret.",
                ext.number
            )));
        }
        let realm = self.settings().effective_sip_domain();
        let user = ext.number.as_str();
        let secret = digest::new_secret();
        self.store
            .set_sip_credentials(
                user,
                &realm,
                &digest::ha1(user, &realm, &secret),
                &digest::ha1b(user, &realm, &secret),
                self.now(),
            )
            .await?;
        self.audit(actor, "extension.sip_secret", user, &realm)
            .await;
        self.push_sip(user, Update::Unregister);
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use crate::test_app;
    use crate::AppError;
    use pbx365_domain::NewExtension;

    #[tokio::test]
    async fn a_secret_is_stored_only_as_hashes_and_disabled_extensions_get_none() {
        let (app, dir) = test_app().await;
        app.create_extension(
            "t",
            "101",
            NewExtension {
                display_name: "Ann".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let first = app.rotate_sip_secret("t", "101").await.unwrap();
        let second = app.rotate_sip_secret("t", "101").await.unwrap();
        assert_ne!(first, second);
        assert_eq!(
            app.store.sip_credentials_realm("101").await.unwrap(),
            Some("127.0.0.1".into())
        );
        drop(app);
        // The secret's text is nowhere in the data directory (security checklist R7.1).
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(&second) && !text.contains(&first));
        }

        let (app, _dir) = test_app().await;
        let err = app.rotate_sip_secret("t", "999").await.unwrap_err();
        assert!(matches!(err, AppError::NotFound { .. }), "{err:?}");
    }
}
