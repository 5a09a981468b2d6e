//! Users: the directory's people as pbx365 reads them (list, one by id, delta rounds), and the
//! few writes tests and benchmarks make against the simulated tenant.
//!
//! https://learn.microsoft.com/graph/api/resources/user · https://learn.microsoft.com/graph/api/user-list ·
//! https://learn.microsoft.com/graph/api/user-delta

use pbx365_domain::DirectoryUser;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::error::GraphError;
use crate::transport::{seg, DeltaPage, GraphClient, GraphRequest, Removed};

/// The `$select` pbx365 uses for users (SPEC §3; department, userType, accountEnabled need it).
pub const USER_SELECT: &str = "id,displayName,givenName,surname,mail,userPrincipalName,businessPhones,mobilePhone,jobTitle,department,officeLocation,userType,accountEnabled";

/// The users collection, relative to `/v1.0`.
const USERS: &str = "/users";

/// A Graph user (the properties of [`USER_SELECT`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphUser {
    /// Object id.
    pub id: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Surname.
    pub surname: Option<String>,
    /// Mail.
    pub mail: Option<String>,
    /// UPN.
    pub user_principal_name: Option<String>,
    /// Office phones.
    pub business_phones: Option<Vec<String>>,
    /// Mobile.
    pub mobile_phone: Option<String>,
    /// Job title.
    pub job_title: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Office location.
    pub office_location: Option<String>,
    /// `Member` / `Guest`.
    pub user_type: Option<String>,
    /// Sign-in allowed.
    pub account_enabled: Option<bool>,
    /// Present on delta items for removed users.
    #[serde(rename = "@removed", skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removed>,
}

impl From<GraphUser> for DirectoryUser {
    fn from(u: GraphUser) -> Self {
        DirectoryUser {
            id: u.id,
            display_name: u.display_name,
            given_name: u.given_name,
            surname: u.surname,
            mail: u.mail,
            user_principal_name: u.user_principal_name,
            business_phones: u.business_phones.unwrap_or_default(),
            mobile_phone: u.mobile_phone,
            job_title: u.job_title,
            department: u.department,
            office_location: u.office_location,
            user_type: u.user_type,
            account_enabled: u.account_enabled,
        }
    }
}

/// One item of a users delta round.
// Items are handled one at a time, so the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    /// Created or changed: its current state (with `Prefer: return=minimal`, only changed fields).
    Changed(DirectoryUser),
    /// Removed from the directory.
    Removed {
        /// Object id.
        id: String,
        /// `changed` = soft-deleted (restorable for 30 days), `deleted` = permanently deleted.
        reason: String,
    },
}

impl From<GraphUser> for UserChange {
    fn from(mut u: GraphUser) -> Self {
        match u.removed.take() {
            Some(r) => UserChange::Removed {
                id: u.id,
                reason: r.reason,
            },
            None => UserChange::Changed(u.into()),
        }
    }
}

/// The largest page `/users/delta` serves.
pub const DELTA_MAX_PAGE: u32 = 999;

/// `/users/{id}`: one user by object id or UPN, relative to `/v1.0`.
pub fn path(id: &str) -> String {
    format!("{USERS}/{}", seg(id))
}

/// Every user with pbx365's `$select`, in pages as large as Graph allows.
pub fn list_request() -> GraphRequest {
    GraphRequest::get(format!("{USERS}?$select={USER_SELECT}&$top=999"))
}

/// One user with pbx365's `$select`.
pub fn get_request(id: &str) -> GraphRequest {
    GraphRequest::get(format!("{}?$select={USER_SELECT}", path(id)))
}

/// The cheapest read there is (one id): proves the token is accepted and `User.Read.All` granted.
pub fn probe_request() -> GraphRequest {
    GraphRequest::get(format!("{USERS}?$top=1&$select=id"))
}

/// The first URL of a full users delta round.
pub fn delta_start() -> String {
    format!("{USERS}/delta?$select={USER_SELECT}")
}

/// Creates a user (tests and benchmarks shape the simulated tenant this way).
pub fn create_request(body: serde_json::Value) -> GraphRequest {
    GraphRequest::with_json(Method::POST, USERS, body)
}

/// Changes a user's properties (`body`: the properties to set).
pub fn update_request(id: &str, body: serde_json::Value) -> GraphRequest {
    GraphRequest::with_json(Method::PATCH, path(id), body)
}

/// Deletes a user (soft delete: restorable for 30 days).
pub fn delete_request(id: &str) -> GraphRequest {
    GraphRequest::new(Method::DELETE, path(id))
}

impl GraphClient {
    /// Every user (with pbx365's `$select`), following paging.
    pub async fn list_users(&self) -> Result<Vec<DirectoryUser>, GraphError> {
        let users: Vec<GraphUser> = self.get_all(list_request()).await?;
        Ok(users.into_iter().map(Into::into).collect())
    }

    /// One user by id or UPN.
    pub async fn get_user(&self, id: &str) -> Result<DirectoryUser, GraphError> {
        let u: GraphUser = self.send(get_request(id)).await?.json()?;
        Ok(u.into())
    }

    /// The first URL of a full users delta round ([`delta_start`]).
    pub fn users_delta_start(&self) -> String {
        delta_start()
    }

    /// One page of a users delta round (`link`: [`Self::users_delta_start`], a nextLink or a saved deltaLink).
    pub async fn users_delta_page(&self, link: &str) -> Result<DeltaPage<UserChange>, GraphError> {
        let page: DeltaPage<GraphUser> = self.delta_page(GraphRequest::get(link)).await?;
        Ok(page.map(Into::into))
    }

    /// One page of a users delta round of at most `max_items` users ([`DELTA_MAX_PAGE`] for the
    /// fewest round trips). `$top` is not accepted by `/users/delta`; the page size is asked for
    /// with a header (https://learn.microsoft.com/graph/delta-query-overview, "odata.maxpagesize").
    pub async fn users_delta_page_of(
        &self,
        link: &str,
        max_items: u32,
    ) -> Result<DeltaPage<UserChange>, GraphError> {
        let req = GraphRequest::get(link).max_page_size(max_items);
        let page: DeltaPage<GraphUser> = self.delta_page(req).await?;
        Ok(page.map(Into::into))
    }

    /// A link that starts delta tracking from now without reading anything (`$deltatoken=latest`).
    pub async fn users_delta_latest(&self) -> Result<String, GraphError> {
        let start = format!("{}&$deltatoken=latest", delta_start());
        let page: DeltaPage<GraphUser> = self.delta_page(GraphRequest::get(start)).await?;
        Ok(page.next.link().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::ODataPage;

    #[test]
    fn delta_items_with_removed_become_removals() {
        let page: ODataPage<GraphUser> = serde_json::from_str(
            r#"{"value":[{"id":"a","displayName":"A","businessPhones":["+1 555"]},
                {"id":"b","@removed":{"reason":"changed"}}],"@odata.deltaLink":"https://g/v1.0/users/delta?$deltatoken=x"}"#,
        )
        .unwrap();
        let changes: Vec<UserChange> = page.value.into_iter().map(Into::into).collect();
        assert!(matches!(&changes[0], UserChange::Changed(u) if u.business_phones == ["+1 555"]));
        assert_eq!(
            changes[1],
            UserChange::Removed {
                id: "b".into(),
                reason: "changed".into()
            }
        );
        assert!(page.delta_link.is_some());
    }
}
