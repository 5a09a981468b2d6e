//! `/api/v1/extensions`: the PBX's extensions, their admin role, profile and photo.

use super::{ApiJson, ApiPath};
use crate::auth::Authenticated;
use crate::error::ErrorBody;
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use pbx365_domain::{NewExtension, Profile, ProfileSource, ValidationError};
use serde::{Deserialize, Serialize};

pub use pbx365_app::extensions::{ExtensionView, ProfileView};

/// The editable fields of a local extension. `number` is required on create; on update it may
/// be omitted or must equal the number in the path.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionInput {
    /// The dialable number (digits; length per `extension_digits`).
    pub number: Option<String>,
    /// Given name.
    #[serde(default)]
    pub first_name: String,
    /// Surname.
    #[serde(default)]
    pub last_name: String,
    /// Shown name; derived from first and last name when empty.
    #[serde(default)]
    pub display_name: String,
    /// Mail address.
    pub email: Option<String>,
    /// Mobile number.
    pub mobile: Option<String>,
    /// Outbound caller ID.
    pub outbound_caller_id: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Job title.
    pub job_title: Option<String>,
    /// Office location.
    pub office: Option<String>,
}

impl ExtensionInput {
    /// The fields as the use case takes them (validated there).
    fn fields(self) -> NewExtension {
        let display_name =
            super::fit_display_name(self.display_name, &self.first_name, &self.last_name);
        NewExtension {
            first_name: self.first_name,
            last_name: self.last_name,
            display_name,
            email: self.email,
            mobile: self.mobile,
            outbound_caller_id: self.outbound_caller_id,
            department: self.department,
            job_title: self.job_title,
            office: self.office,
        }
    }
}

/// Body of `PUT …/admin`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminInput {
    /// Grant (true) or revoke (false) console admin rights.
    pub is_admin: bool,
}

/// Body of `PUT …/profile`: a manual change.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    /// `available`, `away`, `dnd`, `lunch` or `business_trip`.
    #[schema(value_type = Profile)]
    pub profile: String,
    /// Only `manual` may be set through the API (the calendar sync sets `calendar`).
    #[schema(value_type = Option<ProfileSource>)]
    pub source: Option<String>,
    /// Optional end of the manual profile.
    pub until: Option<DateTime<Utc>>,
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Lists every extension ordered by number. Admins (console session or API token).
#[utoipa::path(get, path = "/api/v1/extensions", tag = "extensions",
    responses((status = 200, body = [ExtensionView]), (status = 401, body = ErrorBody)))]
pub async fn list(
    _: Authenticated,
    State(state): State<AppState>,
) -> Result<Json<Vec<ExtensionView>>, ApiError> {
    let all = state.app.extensions().await?;
    Ok(Json(all.iter().map(ExtensionView::from).collect()))
}

/// One extension. Admins.
#[utoipa::path(get, path = "/api/v1/extensions/{number}", tag = "extensions",
    params(("number" = String, Path, description = "Extension number")),
    responses((status = 200, body = ExtensionView), (status = 404, body = ErrorBody)))]
pub async fn get_one(
    _: Authenticated,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
) -> Result<Json<ExtensionView>, ApiError> {
    let mut view = ExtensionView::from(&state.app.extension(&number).await?);
    view.on_call = state.app.on_call(&view.number).await;
    Ok(Json(view))
}

/// Creates a local extension. Admins.
#[utoipa::path(post, path = "/api/v1/extensions", tag = "extensions", request_body = ExtensionInput,
    responses((status = 201, body = ExtensionView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    who: Authenticated,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<ExtensionInput>,
) -> Result<(StatusCode, Json<ExtensionView>), ApiError> {
    let raw = input
        .number
        .clone()
        .ok_or(ValidationError::Empty("number"))?;
    let ext = state
        .app
        .create_extension(&who.actor, &raw, input.fields())
        .await?;
    Ok((StatusCode::CREATED, Json(ExtensionView::from(&ext))))
}

/// Replaces the directory fields of a local extension; synced ones are refused. Admins.
#[utoipa::path(put, path = "/api/v1/extensions/{number}", tag = "extensions", request_body = ExtensionInput,
    params(("number" = String, Path, description = "Extension number")),
    responses((status = 200, body = ExtensionView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "synced from Microsoft 365"), (status = 422, body = ErrorBody)))]
pub async fn update(
    who: Authenticated,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
    ApiJson(input): ApiJson<ExtensionInput>,
) -> Result<Json<ExtensionView>, ApiError> {
    if let Some(n) = &input.number {
        if n.trim() != number {
            return Err(ApiError::conflict(format!(
                "the number cannot be changed ('{}' in the body, '{}' in the path); create a new extension instead",
                clip(n),
                clip(&number)
            )));
        }
    }
    let ext = state
        .app
        .update_extension(&who.actor, &number, input.fields())
        .await?;
    Ok(Json(ExtensionView::from(&ext)))
}

/// Deletes a local extension with its photo and personal phonebook; synced ones are refused.
/// Admins.
#[utoipa::path(delete, path = "/api/v1/extensions/{number}", tag = "extensions",
    params(("number" = String, Path, description = "Extension number")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    who: Authenticated,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.app.delete_extension(&who.actor, &number).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Grants or revokes console admin rights (also on synced extensions). Admins.
#[utoipa::path(put, path = "/api/v1/extensions/{number}/admin", tag = "extensions", request_body = AdminInput,
    params(("number" = String, Path, description = "Extension number")),
    responses((status = 200, body = ExtensionView), (status = 404, body = ErrorBody)))]
pub async fn set_admin(
    who: Authenticated,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
    ApiJson(input): ApiJson<AdminInput>,
) -> Result<Json<ExtensionView>, ApiError> {
    let ext = state
        .app
        .set_extension_admin(&who.actor, &number, input.is_admin)
        .await?;
    Ok(Json(ExtensionView::from(&ext)))
}

/// The extension's profile and who set it. Admins.
#[utoipa::path(get, path = "/api/v1/extensions/{number}/profile", tag = "profiles",
    params(("number" = String, Path, description = "Extension number")),
    responses((status = 200, body = ProfileView), (status = 404, body = ErrorBody)))]
pub async fn get_profile(
    _: Authenticated,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
) -> Result<Json<ProfileView>, ApiError> {
    Ok(Json(ProfileView::from(
        &state.app.extension(&number).await?.profile,
    )))
}

/// Sets the profile manually (also on synced extensions); a manual change wins over the
/// calendar until its next entry starts. Admins.
#[utoipa::path(put, path = "/api/v1/extensions/{number}/profile", tag = "profiles", request_body = ProfileInput,
    params(("number" = String, Path, description = "Extension number")),
    responses((status = 200, body = ProfileView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_profile(
    who: Authenticated,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
    ApiJson(input): ApiJson<ProfileInput>,
) -> Result<Json<ProfileView>, ApiError> {
    let profile: Profile = input.profile.trim().parse()?;
    match input.source.as_deref() {
        None | Some("manual") => {}
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "source '{}' cannot be set through the API: only manual changes are made here",
                clip(other)
            )))
        }
    }
    let new_state = state
        .app
        .set_profile(&who.actor, &number, profile, input.until)
        .await?;
    Ok(Json(ProfileView::from(&new_state)))
}

/// The extension's photo (as stored, e.g. `image/jpeg`). Admins.
#[utoipa::path(get, path = "/api/v1/extensions/{number}/photo", tag = "extensions",
    params(("number" = String, Path, description = "Extension number")),
    responses((status = 200, content_type = "image/jpeg", body = Vec<u8>), (status = 404, body = ErrorBody)))]
pub async fn photo(
    _: Authenticated,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
) -> Result<Response, ApiError> {
    state.app.extension(&number).await?;
    let (content_type, bytes) = state.app.photo(&number).await?.ok_or_else(|| {
        ApiError::not_found(format!("extension '{}' has no photo", clip(&number)))
    })?;
    // Only image types are served as such; anything else would let stored bytes act as a page.
    let content_type = if content_type.starts_with("image/") && !content_type.contains("svg") {
        content_type
    } else {
        "application/octet-stream".to_string()
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, max-age=300".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        bytes,
    )
        .into_response())
}
