//! Directory search behind the console's users/groups picker: the first 20 users or groups
//! whose name starts with what the admin typed.
//!
//! `$filter=startswith(...)` on `displayName` and `userPrincipalName` is a default (not
//! advanced) query, so no `ConsistencyLevel: eventual` header is needed.
//! https://learn.microsoft.com/graph/api/user-list
//! https://learn.microsoft.com/graph/api/group-list

use crate::client::seg;
use crate::{GraphClient, GraphError, GraphRequest};
use serde::Deserialize;

/// Most results one search returns (`$top`).
pub const TOP: usize = 20;
/// Most characters of the typed prefix sent to Graph.
pub const MAX_PREFIX: usize = 64;

/// One user or group found by a search.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryHit {
    /// Microsoft object id.
    pub id: String,
    /// Display name, when Graph has one.
    pub display_name: Option<String>,
    /// A user's sign-in name (groups have none).
    pub user_principal_name: Option<String>,
    /// Mail address.
    pub mail: Option<String>,
}

#[derive(Deserialize)]
struct Page {
    value: Vec<DirectoryHit>,
}

/// The prefix as sent: trimmed, at most [`MAX_PREFIX`] characters, quotes doubled (OData
/// string literals escape `'` as `''`).
fn literal(prefix: &str) -> String {
    let text: String = prefix.trim().chars().take(MAX_PREFIX).collect();
    text.replace('\'', "''")
}

/// The request URL of [`search_users`], relative to the Graph base URL.
pub fn users_url(prefix: &str) -> String {
    let lit = literal(prefix);
    let filter =
        format!("startswith(displayName,'{lit}') or startswith(userPrincipalName,'{lit}')");
    format!(
        "/users?$select=id,displayName,userPrincipalName,mail&$top={TOP}&$filter={}",
        seg(&filter)
    )
}

/// The request URL of [`search_groups`], relative to the Graph base URL.
pub fn groups_url(prefix: &str) -> String {
    let lit = literal(prefix);
    let filter = format!("startswith(displayName,'{lit}')");
    format!(
        "/groups?$select=id,displayName,mail&$top={TOP}&$filter={}",
        seg(&filter)
    )
}

/// Users whose display name or sign-in name starts with `prefix` (first page, at most 20).
pub async fn search_users(
    client: &GraphClient,
    prefix: &str,
) -> Result<Vec<DirectoryHit>, GraphError> {
    let page: Page = client
        .send(GraphRequest::get(users_url(prefix)))
        .await?
        .json()?;
    Ok(page.value)
}

/// Groups whose display name starts with `prefix` (first page, at most 20).
pub async fn search_groups(
    client: &GraphClient,
    prefix: &str,
) -> Result<Vec<DirectoryHit>, GraphError> {
    let page: Page = client
        .send(GraphRequest::get(groups_url(prefix)))
        .await?
        .json()?;
    Ok(page.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_escapes_quotes_and_encodes_the_filter() {
        assert_eq!(
            users_url(" O'Brien "),
            format!(
                "/users?$select=id,displayName,userPrincipalName,mail&$top=20&$filter={}",
                seg("startswith(displayName,'O''Brien') or startswith(userPrincipalName,'O''Brien')")
            )
        );
        assert_eq!(
            groups_url("Sales"),
            format!(
                "/groups?$select=id,displayName,mail&$top=20&$filter={}",
                seg("startswith(displayName,'Sales')")
            )
        );
        let long = "x".repeat(100);
        assert!(users_url(&long).contains(&"x".repeat(64)));
        assert!(!users_url(&long).contains(&"x".repeat(65)));
    }
}
