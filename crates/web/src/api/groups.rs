//! `/api/v1/groups`: extension groups and their members.

use super::{ApiJson, ApiPath};
use crate::auth::Authenticated;
use crate::error::ErrorBody;
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pbx365_domain::ExtensionGroup;
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

/// All extension groups with their members. Admins.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", responses((status = 200, body = [ExtensionGroup])))]
pub async fn list(
    _: Authenticated,
    State(state): State<AppState>,
) -> Result<Json<Vec<ExtensionGroup>>, ApiError> {
    Ok(Json(state.app.groups().await?))
}

/// Creates a group. Admins.
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", request_body = GroupInput,
    responses((status = 201, body = ExtensionGroup), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    who: Authenticated,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<GroupInput>,
) -> Result<(StatusCode, Json<ExtensionGroup>), ApiError> {
    let group = state
        .app
        .create_group(&who.actor, &input.name, &input.description)
        .await?;
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
    state.app.delete_group(&who.actor, &name).await?;
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
    state
        .app
        .add_group_member(&who.actor, &name, &number)
        .await?;
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
    state
        .app
        .remove_group_member(&who.actor, &name, &number)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
