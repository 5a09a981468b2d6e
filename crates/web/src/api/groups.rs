//! `/api/v1/groups`: extension groups and their members.

use super::{audit, ApiJson, ApiPath};
use crate::auth::Authenticated;
use crate::error::ErrorBody;
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pbx365_domain::error::check_len;
use pbx365_domain::{ExtensionGroup, ValidationError, AZURE_AD_GROUP};
use serde::Deserialize;

/// Body of `POST /api/v1/groups`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    /// Unique name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

async fn find(state: &AppState, name: &str) -> Result<ExtensionGroup, ApiError> {
    state
        .store
        .list_groups()
        .await?
        .into_iter()
        .find(|g| g.name == name)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "group '{}' does not exist",
                name.chars().take(64).collect::<String>()
            ))
        })
}

fn builtin(name: &str) -> ApiError {
    ApiError::conflict(format!(
        "the group '{name}' is built in: its members follow the Microsoft 365 sync and it cannot be deleted"
    ))
}

/// All extension groups with their members. Admins.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", responses((status = 200, body = [ExtensionGroup])))]
pub async fn list(
    _: Authenticated,
    State(state): State<AppState>,
) -> Result<Json<Vec<ExtensionGroup>>, ApiError> {
    Ok(Json(state.store.list_groups().await?))
}

/// Creates a group. Admins.
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", request_body = GroupInput,
    responses((status = 201, body = ExtensionGroup), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    who: Authenticated,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<GroupInput>,
) -> Result<(StatusCode, Json<ExtensionGroup>), ApiError> {
    let name = input.name.trim();
    if name.is_empty() {
        return Err(ValidationError::Empty("group name").into());
    }
    check_len("group name", name, 64)?;
    check_len("group description", &input.description, 1024)?;
    if name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "the group name must not contain control characters",
        ));
    }
    let group = state
        .store
        .create_group(name, input.description.trim())
        .await?;
    audit(&state, &who.actor, "group.create", name, "").await;
    Ok((StatusCode::CREATED, Json(group)))
}

/// Deletes a group (not the built-in one); its extensions stay. Admins.
#[utoipa::path(delete, path = "/api/v1/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "Group name")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    who: Authenticated,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let group = find(&state, &name).await?;
    if group.builtin || group.name == AZURE_AD_GROUP {
        return Err(builtin(&group.name));
    }
    state.store.delete_group(&name).await?;
    audit(&state, &who.actor, "group.delete", &name, "").await;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds an extension to a group. Admins.
#[utoipa::path(put, path = "/api/v1/groups/{name}/members/{number}", tag = "groups",
    params(("name" = String, Path, description = "Group name"), ("number" = String, Path, description = "Extension number")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add_member(
    who: Authenticated,
    State(state): State<AppState>,
    ApiPath((name, number)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let group = find(&state, &name).await?;
    if group.builtin {
        return Err(builtin(&group.name));
    }
    super::extensions::load(&state, &number).await?;
    if !group.members.contains(&number) {
        state.store.add_group_member(&name, &number).await?;
        audit(&state, &who.actor, "group.member.add", &name, &number).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Removes an extension from a group. Admins.
#[utoipa::path(delete, path = "/api/v1/groups/{name}/members/{number}", tag = "groups",
    params(("name" = String, Path, description = "Group name"), ("number" = String, Path, description = "Extension number")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove_member(
    who: Authenticated,
    State(state): State<AppState>,
    ApiPath((name, number)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let group = find(&state, &name).await?;
    if group.builtin {
        return Err(builtin(&group.name));
    }
    if !group.members.contains(&number) {
        return Err(ApiError::not_found(format!(
            "extension '{}' is not a member of group '{}'",
            number.chars().take(40).collect::<String>(),
            group.name
        )));
    }
    state.store.remove_group_member(&name, &number).await?;
    audit(&state, &who.actor, "group.member.remove", &name, &number).await;
    Ok(StatusCode::NO_CONTENT)
}
