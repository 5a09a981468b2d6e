//! `/api/v1/extensions`: the PBX's extensions, their admin role, profile and photo.

use super::{audit, ApiJson, ApiPath};
use crate::auth::Authenticated;
use crate::error::ErrorBody;
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use pbx365_domain::{
    Extension, ExtensionNumber, ExtensionSource, NewExtension, Profile, ProfileSource,
    ProfileState, ValidationError,
};
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
        }
    }
}

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
    fn fields(self) -> Result<NewExtension, ValidationError> {
        NewExtension {
            first_name: self.first_name,
            last_name: self.last_name,
            display_name: self.display_name,
            email: self.email,
            mobile: self.mobile,
            outbound_caller_id: self.outbound_caller_id,
            department: self.department,
            job_title: self.job_title,
            office: self.office,
        }
        .validated()
    }
}

/// Body of `PUT …/admin`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminInput {
    /// Grant (true) or revoke (false) console admin rights.
    pub is_admin: bool,
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

impl From<&ProfileState> for ProfileView {
    fn from(p: &ProfileState) -> Self {
        ProfileView {
            profile: p.profile,
            source: p.source,
            until: p.until,
        }
    }
}

pub(crate) async fn load(state: &AppState, number: &str) -> Result<Extension, ApiError> {
    state
        .store
        .get_extension(number)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("extension '{}' does not exist", clip(number))))
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

fn read_only_synced() -> ApiError {
    ValidationError::ReadOnlySynced("this extension's directory data").into()
}

/// Lists every extension ordered by number. Admins (console session or API token).
#[utoipa::path(get, path = "/api/v1/extensions", tag = "extensions",
    responses((status = 200, body = [ExtensionView]), (status = 401, body = ErrorBody)))]
pub async fn list(
    _: Authenticated,
    State(state): State<AppState>,
) -> Result<Json<Vec<ExtensionView>>, ApiError> {
    let all = state.store.list_extensions().await?;
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
    Ok(Json(ExtensionView::from(&load(&state, &number).await?)))
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
    let number = ExtensionNumber::parse(raw.trim(), state.number_rules())?;
    let fields = input.fields()?;
    let ext = state
        .store
        .create_local_extension(number.as_str(), &fields)
        .await?;
    audit(
        &state,
        &who.actor,
        "extension.create",
        number.as_str(),
        &ext.display_name,
    )
    .await;
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
            return Err(ApiError::invalid(format!(
                "the number cannot be changed ('{}' in the body, '{}' in the path); create a new extension instead",
                clip(n),
                clip(&number)
            )));
        }
    }
    let current = load(&state, &number).await?;
    if current.source != ExtensionSource::Local {
        return Err(read_only_synced());
    }
    let fields = input.fields()?;
    let ext = state.store.update_local_extension(&number, &fields).await?;
    audit(
        &state,
        &who.actor,
        "extension.update",
        &number,
        &ext.display_name,
    )
    .await;
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
    let current = load(&state, &number).await?;
    if current.source != ExtensionSource::Local {
        return Err(read_only_synced());
    }
    state.store.delete_extension(&number).await?;
    audit(
        &state,
        &who.actor,
        "extension.delete",
        &number,
        &current.display_name,
    )
    .await;
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
    load(&state, &number).await?;
    state
        .store
        .set_extension_admin(&number, input.is_admin)
        .await?;
    let action = if input.is_admin {
        "extension.admin.grant"
    } else {
        "extension.admin.revoke"
    };
    audit(&state, &who.actor, action, &number, "").await;
    Ok(Json(ExtensionView::from(&load(&state, &number).await?)))
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
        &load(&state, &number).await?.profile,
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
    if let Some(until) = input.until {
        if until <= Utc::now() {
            return Err(ApiError::invalid("until must lie in the future"));
        }
    }
    load(&state, &number).await?;
    let new_state = ProfileState {
        profile,
        source: ProfileSource::Manual,
        until: input.until,
        return_to: None,
    };
    state.store.set_profile(&number, &new_state).await?;
    audit(
        &state,
        &who.actor,
        "extension.profile",
        &number,
        profile.as_str(),
    )
    .await;
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
    load(&state, &number).await?;
    let (content_type, bytes) = state.store.get_photo(&number).await?.ok_or_else(|| {
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
