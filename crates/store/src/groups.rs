//! Extension groups and their members.

use crate::db::{conflict_or, flag};
use crate::extensions::{exists_in, not_found};
use crate::{Store, StoreError, StoreResult};
use pbx365_domain::ExtensionGroup;
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

fn group_not_found(name: &str) -> StoreError {
    StoreError::NotFound {
        what: "extension group",
        key: name.to_string(),
    }
}

async fn group_builtin(conn: &mut AnyConnection, name: &str) -> StoreResult<Option<bool>> {
    let v: Option<i64> = sqlx::query_scalar("SELECT builtin FROM extension_groups WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(v.map(flag))
}

/// Sorts numbers as numbers (shorter digit strings first).
fn sort_numbers(v: &mut [String]) {
    v.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
}

impl Store {
    /// All groups with members, ordered by name (the built-in "Azure AD" group always exists).
    pub async fn list_groups(&self) -> StoreResult<Vec<ExtensionGroup>> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query("SELECT name, description, builtin FROM extension_groups")
            .fetch_all(&mut *conn)
            .await?;
        let members = sqlx::query("SELECT group_name, number FROM extension_group_members")
            .fetch_all(&mut *conn)
            .await?;
        let mut by_group: HashMap<String, Vec<String>> = HashMap::new();
        for m in members {
            by_group
                .entry(m.try_get("group_name")?)
                .or_default()
                .push(m.try_get("number")?);
        }
        let mut groups = rows
            .iter()
            .map(|r| {
                let name: String = r.try_get("name")?;
                let mut members = by_group.remove(&name).unwrap_or_default();
                sort_numbers(&mut members);
                Ok(ExtensionGroup {
                    name,
                    description: r.try_get("description")?,
                    builtin: flag(r.try_get("builtin")?),
                    members,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        // Sorted here, not in SQL, so the order does not depend on the database's collation.
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(groups)
    }

    /// One group with its members.
    pub async fn get_group(&self, name: &str) -> StoreResult<Option<ExtensionGroup>> {
        Ok(self
            .list_groups()
            .await?
            .into_iter()
            .find(|g| g.name == name))
    }

    /// Creates a group; `Conflict` if the name exists.
    pub async fn create_group(&self, name: &str, description: &str) -> StoreResult<ExtensionGroup> {
        sqlx::query("INSERT INTO extension_groups (name, description, builtin) VALUES ($1, $2, 0)")
            .bind(name)
            .bind(description)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_or(e, "extension group", name))?;
        Ok(ExtensionGroup {
            name: name.to_string(),
            description: description.to_string(),
            builtin: false,
            members: vec![],
        })
    }

    /// Deletes a non-built-in group (its memberships go with it).
    pub async fn delete_group(&self, name: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        match group_builtin(&mut tx, name).await? {
            None => return Err(group_not_found(name)),
            Some(true) => {
                return Err(StoreError::BuiltIn {
                    what: "extension group",
                    key: name.to_string(),
                })
            }
            Some(false) => {}
        }
        sqlx::query("DELETE FROM extension_group_members WHERE group_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM extension_groups WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds an extension to a group (adding it twice is not an error).
    pub async fn add_group_member(&self, group: &str, number: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        if group_builtin(&mut tx, group).await?.is_none() {
            return Err(group_not_found(group));
        }
        if !exists_in(&mut tx, number).await? {
            return Err(not_found(number));
        }
        sqlx::query(
            "INSERT INTO extension_group_members (group_name, number) VALUES ($1, $2) \
             ON CONFLICT (group_name, number) DO NOTHING",
        )
        .bind(group)
        .bind(number)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes an extension from a group (removing a non-member is not an error).
    pub async fn remove_group_member(&self, group: &str, number: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        if group_builtin(&mut tx, group).await?.is_none() {
            return Err(group_not_found(group));
        }
        sqlx::query("DELETE FROM extension_group_members WHERE group_name = $1 AND number = $2")
            .bind(group)
            .bind(number)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
