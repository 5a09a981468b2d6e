//! Extensions: listing, creating, changing and deleting local ones, admin rights, profiles and
//! photos. Synced extensions (from Microsoft 365) are read-only here except for admin rights
//! and the profile.

use crate::{App, AppError, Missing};
use chrono::{DateTime, Utc};
use pbx365_domain::{
    Extension, ExtensionNumber, ExtensionSource, NewExtension, Profile, ProfileSource,
    ProfileState, ValidationError,
};
use pbx365_store::StoreError;
use serde::{Deserialize, Serialize};

/// An extension as the API and `pbx365 ext list --json` show it (SPEC §8 field names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExtensionView {
    /// The dialable number.
    pub number: String,
    /// Given name.
    pub first_name: String,
    /// Surname.
    pub last_name: String,
    /// Name shown on phones and in the directory.
    pub display_name: String,
    /// Mail address.
    pub email: Option<String>,
    /// Mobile number.
    pub mobile: Option<String>,
    /// Number presented on outbound calls.
    pub outbound_caller_id: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Job title.
    pub job_title: Option<String>,
    /// Office location.
    pub office: Option<String>,
    /// A disabled extension cannot register or be rung.
    pub enabled: bool,
    /// `local` or `m365`.
    pub source: ExtensionSource,
    /// Microsoft object id of a synced extension.
    pub m365_id: Option<String>,
    /// Extension groups it belongs to.
    pub groups: Vec<String>,
    /// Current profile.
    pub profile: Profile,
    /// Whether a photo is stored (`GET …/photo`).
    pub has_photo: bool,
    /// May sign in to the management console.
    pub is_admin: bool,
    /// On a call now, as Kamailio's dialogs say (`GET /api/v1/extensions/{number}` only, when
    /// this instance pushes to a Kamailio that answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_call: Option<bool>,
}

impl From<&Extension> for ExtensionView {
    fn from(e: &Extension) -> Self {
        ExtensionView {
            number: e.number.to_string(),
            first_name: e.first_name.clone(),
            last_name: e.last_name.clone(),
            display_name: e.display_name.clone(),
            email: e.email.clone(),
            mobile: e.mobile.clone(),
            outbound_caller_id: e.outbound_caller_id.clone(),
            department: e.department.clone(),
            job_title: e.job_title.clone(),
            office: e.office.clone(),
            enabled: e.enabled,
            source: e.source,
            m365_id: e.m365_id.clone(),
            groups: e.groups.clone(),
            profile: e.profile.profile,
            has_photo: e.photo.is_some(),
            is_admin: e.is_admin,
            on_call: None,
        }
    }
}

/// An extension's profile as `GET|PUT …/profile` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProfileView {
    /// Current profile.
    pub profile: Profile,
    /// `manual` or `calendar`.
    pub source: ProfileSource,
    /// When a calendar-set profile ends.
    pub until: Option<DateTime<Utc>>,
}

impl From<&ProfileState> for ProfileView {
    fn from(p: &ProfileState) -> Self {
        ProfileView {
            profile: p.profile,
            source: p.source,
            until: p.until,
        }
    }
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// The refusal of a change to a synced extension's directory data.
fn read_only_synced() -> AppError {
    ValidationError::ReadOnlySynced("this extension's directory data").into()
}

impl App {
    /// Every extension ordered by number.
    pub async fn extensions(&self) -> Result<Vec<Extension>, AppError> {
        Ok(self.store.list_extensions().await?)
    }

    /// One extension.
    pub async fn extension(&self, number: &str) -> Result<Extension, AppError> {
        self.store.get_extension(number).await?.ok_or_else(|| {
            AppError::not_found(
                Missing::Extension,
                format!("extension '{}' does not exist", clip(number)),
            )
        })
    }

    /// Creates a local extension: the number (as typed) must fit the configured lengths and be
    /// free, the fields must validate.
    pub async fn create_extension(
        &self,
        actor: &str,
        number: &str,
        fields: NewExtension,
    ) -> Result<Extension, AppError> {
        let number = ExtensionNumber::parse(number.trim(), self.number_rules())?;
        let fields = fields.validated()?;
        let ext = match self
            .store
            .create_local_extension(number.as_str(), &fields)
            .await
        {
            Ok(e) => e,
            Err(source @ StoreError::Conflict { .. }) => {
                return Err(AppError::NumberTaken {
                    number: number.to_string(),
                    source,
                })
            }
            Err(e) => return Err(e.into()),
        };
        self.audit(
            actor,
            "extension.create",
            number.as_str(),
            &ext.display_name,
        )
        .await;
        self.wake_sip();
        Ok(ext)
    }

    /// Replaces the directory fields of a local extension; synced ones are refused.
    pub async fn update_extension(
        &self,
        actor: &str,
        number: &str,
        fields: NewExtension,
    ) -> Result<Extension, AppError> {
        let current = self.extension(number).await?;
        if current.source != ExtensionSource::Local {
            return Err(read_only_synced());
        }
        let fields = fields.validated()?;
        let ext = self
            .store
            .update_local_extension(current.number.as_str(), &fields)
            .await?;
        self.audit(actor, "extension.update", number, &ext.display_name)
            .await;
        self.wake_sip();
        Ok(ext)
    }

    /// Deletes a local extension with its photo and personal phonebook; synced ones are
    /// refused. Returns what was deleted.
    pub async fn delete_extension(&self, actor: &str, number: &str) -> Result<Extension, AppError> {
        let current = self.extension(number).await?;
        if current.source != ExtensionSource::Local {
            return Err(read_only_synced());
        }
        self.store.delete_extension(current.number.as_str()).await?;
        self.wake_sip();
        self.audit(actor, "extension.delete", number, &current.display_name)
            .await;
        Ok(current)
    }

    /// Grants or revokes console admin rights (also on synced extensions).
    pub async fn set_extension_admin(
        &self,
        actor: &str,
        number: &str,
        is_admin: bool,
    ) -> Result<Extension, AppError> {
        self.extension(number).await?;
        self.store.set_extension_admin(number, is_admin).await?;
        let action = if is_admin {
            "extension.admin.grant"
        } else {
            "extension.admin.revoke"
        };
        self.audit(actor, action, number, "").await;
        self.extension(number).await
    }

    /// Sets the profile by hand (also on synced extensions); a manual change wins over the
    /// calendar until its next entry starts. `until`, when given, must lie in the future.
    pub async fn set_profile(
        &self,
        actor: &str,
        number: &str,
        profile: Profile,
        until: Option<DateTime<Utc>>,
    ) -> Result<ProfileState, AppError> {
        if let Some(until) = until {
            if until <= self.now() {
                return Err(AppError::Invalid("until must lie in the future".into()));
            }
        }
        let ext = self.extension(number).await?;
        let state = ProfileState {
            profile,
            source: ProfileSource::Manual,
            until,
            return_to: None,
        };
        self.store.set_profile(ext.number.as_str(), &state).await?;
        let mut routed = ext.clone();
        routed.profile = state.clone();
        self.profile_written(&routed, actor, "extension.profile", profile.as_str())
            .await;
        Ok(state)
    }

    /// What follows every profile write, by hand or by the calendar: Kamailio's routing (and
    /// so the phones) and the audit log.
    pub(crate) async fn profile_written(
        &self,
        ext: &Extension,
        actor: &str,
        action: &str,
        detail: &str,
    ) {
        // The store write noted the change in the SIP feed; the pusher reads it now.
        self.wake_sip();
        self.audit(actor, action, ext.number.as_str(), detail).await;
    }

    /// The extension's photo as stored: (content type, bytes), or `None`.
    pub async fn photo(&self, number: &str) -> Result<Option<(String, Vec<u8>)>, AppError> {
        Ok(self.store.get_photo(number).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_app as app;

    fn named(name: &str) -> NewExtension {
        NewExtension {
            display_name: name.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_taken_number_is_refused_with_the_console_sentence() {
        let (app, _dir) = app().await;
        app.create_extension("t", "100", named("Ann"))
            .await
            .unwrap();
        let err = app
            .create_extension("t", " 100 ", named("Bob"))
            .await
            .unwrap_err();
        assert!(matches!(err, AppError::NumberTaken { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "Extension 100 already exists; choose another number."
        );
        let audit = app.store.list_audit(10).await.unwrap();
        assert_eq!(audit.len(), 1, "only the created one is audited");
    }

    #[tokio::test]
    async fn synced_extensions_refuse_directory_changes() {
        let (app, _dir) = app().await;
        let err = app.delete_extension("t", "999").await.unwrap_err();
        assert!(matches!(
            err,
            AppError::NotFound {
                what: Missing::Extension,
                ..
            }
        ));
        let err = app
            .create_extension("t", "12a", named("X"))
            .await
            .unwrap_err();
        assert!(matches!(err, AppError::Validation(_)), "{err:?}");
    }
}
