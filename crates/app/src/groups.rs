//! Extension groups and their members. The built-in group of synced users follows the
//! Microsoft 365 sync and cannot be changed here.

use crate::{App, AppError, Missing};
use pbx365_domain::error::check_len;
use pbx365_domain::{ExtensionGroup, ValidationError, AZURE_AD_GROUP};

fn builtin(name: &str) -> AppError {
    AppError::Conflict(format!(
        "the group '{name}' is built in: its members follow the Microsoft 365 sync and it cannot be deleted"
    ))
}

impl App {
    /// All extension groups with their members.
    pub async fn groups(&self) -> Result<Vec<ExtensionGroup>, AppError> {
        Ok(self.store.list_groups().await?)
    }

    async fn group(&self, name: &str) -> Result<ExtensionGroup, AppError> {
        self.groups()
            .await?
            .into_iter()
            .find(|g| g.name == name)
            .ok_or_else(|| {
                AppError::not_found(
                    Missing::Group,
                    format!(
                        "group '{}' does not exist",
                        name.chars().take(64).collect::<String>()
                    ),
                )
            })
    }

    /// Creates a group.
    pub async fn create_group(
        &self,
        actor: &str,
        name: &str,
        description: &str,
    ) -> Result<ExtensionGroup, AppError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(ValidationError::Empty("group name").into());
        }
        check_len("group name", name, 64)?;
        check_len("group description", description, 1024)?;
        if name.chars().any(char::is_control) {
            return Err(AppError::Invalid(
                "the group name must not contain control characters".into(),
            ));
        }
        let group = self.store.create_group(name, description.trim()).await?;
        self.audit(actor, "group.create", name, "").await;
        Ok(group)
    }

    /// Deletes a group (not the built-in one); its extensions stay.
    pub async fn delete_group(&self, actor: &str, name: &str) -> Result<(), AppError> {
        let group = self.group(name).await?;
        if group.builtin || group.name == AZURE_AD_GROUP {
            return Err(builtin(&group.name));
        }
        self.store.delete_group(name).await?;
        self.audit(actor, "group.delete", name, "").await;
        Ok(())
    }

    /// Adds an extension to a group (nothing happens when it is a member already).
    pub async fn add_group_member(
        &self,
        actor: &str,
        name: &str,
        number: &str,
    ) -> Result<(), AppError> {
        let group = self.group(name).await?;
        if group.builtin {
            return Err(builtin(&group.name));
        }
        self.extension(number).await?;
        if !group.members.iter().any(|m| m == number) {
            self.store.add_group_member(name, number).await?;
            self.audit(actor, "group.member.add", name, number).await;
        }
        Ok(())
    }

    /// Removes an extension from a group.
    pub async fn remove_group_member(
        &self,
        actor: &str,
        name: &str,
        number: &str,
    ) -> Result<(), AppError> {
        let group = self.group(name).await?;
        if group.builtin {
            return Err(builtin(&group.name));
        }
        if !group.members.iter().any(|m| m == number) {
            return Err(AppError::not_found(
                Missing::Member,
                format!(
                    "extension '{}' is not a member of group '{}'",
                    number.chars().take(40).collect::<String>(),
                    group.name
                ),
            ));
        }
        self.store.remove_group_member(name, number).await?;
        self.audit(actor, "group.member.remove", name, number).await;
        Ok(())
    }
}
