//! Groups: the groups a sync scope can name, and their members (nested groups flattened by
//! `transitiveMembers`); which of some groups a user belongs to (`checkMemberGroups`, for
//! single sign-on); member writes are there for tests shaping the simulated tenant.
//!
//! https://learn.microsoft.com/graph/api/resources/group · https://learn.microsoft.com/graph/api/group-list-transitivemembers ·
//! https://learn.microsoft.com/graph/api/group-post-members ·
//! https://learn.microsoft.com/graph/api/directoryobject-checkmembergroups

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::error::GraphError;
use crate::transport::{seg, GraphClient, GraphRequest};

/// The groups collection, relative to `/v1.0`.
const GROUPS: &str = "/groups";

/// What a member reference (`@odata.id`) points at: directory objects on Graph v1.0.
const DIRECTORY_OBJECTS: &str = "https://graph.microsoft.com/v1.0/directoryObjects";

/// A group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Object id.
    pub id: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Mail.
    pub mail: Option<String>,
    /// Description.
    pub description: Option<String>,
}

/// A directory object from a group's members (user, group, device, orgContact, servicePrincipal).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryObject {
    /// `#microsoft.graph.user`, `#microsoft.graph.group`, …
    #[serde(rename = "@odata.type")]
    pub odata_type: Option<String>,
    /// Object id.
    pub id: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Mail, if any.
    pub mail: Option<String>,
}

impl DirectoryObject {
    /// Whether this member is a user.
    pub fn is_user(&self) -> bool {
        self.odata_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("#microsoft.graph.user"))
    }
}

fn path(group: &str) -> String {
    format!("{GROUPS}/{}", seg(group))
}

/// Every group (id, name, mail, description).
pub fn list_request() -> GraphRequest {
    GraphRequest::get(format!(
        "{GROUPS}?$select=id,displayName,mail,description&$top=999"
    ))
}

/// Every member of a group, nested groups' members included.
pub fn transitive_members_request(group: &str) -> GraphRequest {
    GraphRequest::get(format!(
        "{}/transitiveMembers?$select=id,displayName,mail&$top=999",
        path(group)
    ))
}

/// The direct members of a group.
pub fn members_request(group: &str) -> GraphRequest {
    GraphRequest::get(format!("{}/members?$top=999", path(group)))
}

/// Adds a directory object (`member`: its id) to a group.
pub fn add_member_request(group: &str, member: &str) -> GraphRequest {
    let body = serde_json::json!({ "@odata.id": format!("{DIRECTORY_OBJECTS}/{}", seg(member)) });
    GraphRequest::with_json(Method::POST, format!("{}/members/$ref", path(group)), body)
}

/// Removes a direct member from a group.
pub fn remove_member_request(group: &str, member: &str) -> GraphRequest {
    GraphRequest::new(
        Method::DELETE,
        format!("{}/members/{}/$ref", path(group), seg(member)),
    )
}

/// Most group ids one `checkMemberGroups` request may name (Microsoft's documented limit).
pub const CHECK_MEMBER_GROUPS_LIMIT: usize = 20;

/// Asks which of `group_ids` (at most [`CHECK_MEMBER_GROUPS_LIMIT`]) user `user` is a member
/// of, transitively.
pub fn check_member_groups_request(user: &str, group_ids: &[String]) -> GraphRequest {
    GraphRequest::with_json(
        Method::POST,
        format!("/users/{}/checkMemberGroups", seg(user)),
        serde_json::json!({ "groupIds": group_ids }),
    )
}

#[derive(Deserialize)]
struct IdList {
    value: Vec<String>,
}

impl GraphClient {
    /// Those of `group_ids` that user `user` (object id) belongs to, directly or through nested
    /// groups (`checkMemberGroups` is transitive), asked 20 at a time. An unknown user is
    /// Graph's 404.
    pub async fn check_member_groups(
        &self,
        user: &str,
        group_ids: &[String],
    ) -> Result<Vec<String>, GraphError> {
        let mut found = Vec::new();
        for chunk in group_ids.chunks(CHECK_MEMBER_GROUPS_LIMIT) {
            let list: IdList = self
                .send(check_member_groups_request(user, chunk))
                .await?
                .json()?;
            found.extend(list.value);
        }
        Ok(found)
    }

    /// Groups (id, name, mail).
    pub async fn list_groups(&self) -> Result<Vec<Group>, GraphError> {
        self.get_all(list_request()).await
    }

    /// Transitive members of a group (nested groups flattened).
    pub async fn group_transitive_members(
        &self,
        group_id: &str,
    ) -> Result<Vec<DirectoryObject>, GraphError> {
        self.get_all(transitive_members_request(group_id)).await
    }
}
