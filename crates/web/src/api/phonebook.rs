//! `/api/v1/phonebook/company` and `/api/v1/extensions/{number}/phonebook`: phonebooks with
//! several typed numbers per entry. Local entries are editable; synced ones are read-only.

use super::{ApiJson, ApiPath};
use crate::auth::Authenticated;
use crate::error::ErrorBody;
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pbx365_domain::{PhonebookEntry, PhonebookOwner};

pub use pbx365_app::phonebook::{EntryInput, NumberInput};

/// The company phonebook ordered by name. Admins.
#[utoipa::path(get, path = "/api/v1/phonebook/company", tag = "phonebooks",
    responses((status = 200, body = [PhonebookEntry])))]
pub async fn list_company(
    _: Authenticated,
    State(state): State<AppState>,
) -> Result<Json<Vec<PhonebookEntry>>, ApiError> {
    Ok(Json(state.app.phonebook(&PhonebookOwner::Company).await?))
}

/// Adds a local entry to the company phonebook. Admins.
#[utoipa::path(post, path = "/api/v1/phonebook/company", tag = "phonebooks", request_body = EntryInput,
    responses((status = 201, body = PhonebookEntry), (status = 422, body = ErrorBody)))]
pub async fn create_company(
    who: Authenticated,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<EntryInput>,
) -> Result<(StatusCode, Json<PhonebookEntry>), ApiError> {
    let created = state
        .app
        .create_phonebook_entry(&who.actor, PhonebookOwner::Company, fit_entry(input))
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Replaces a local company phonebook entry; synced entries are refused. Admins.
#[utoipa::path(put, path = "/api/v1/phonebook/company/{id}", tag = "phonebooks", request_body = EntryInput,
    params(("id" = String, Path, description = "Entry id")),
    responses((status = 200, body = PhonebookEntry), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_company(
    who: Authenticated,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<EntryInput>,
) -> Result<Json<PhonebookEntry>, ApiError> {
    let updated = state
        .app
        .update_phonebook_entry(&who.actor, PhonebookOwner::Company, &id, fit_entry(input))
        .await?;
    Ok(Json(updated))
}

/// Deletes a local company phonebook entry; synced entries are refused. Admins.
#[utoipa::path(delete, path = "/api/v1/phonebook/company/{id}", tag = "phonebooks",
    params(("id" = String, Path, description = "Entry id")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_company(
    who: Authenticated,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .delete_phonebook_entry(&who.actor, PhonebookOwner::Company, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An extension's personal phonebook ordered by name. Admins.
#[utoipa::path(get, path = "/api/v1/extensions/{number}/phonebook", tag = "phonebooks",
    params(("number" = String, Path, description = "Extension number")),
    responses((status = 200, body = [PhonebookEntry]), (status = 404, body = ErrorBody)))]
pub async fn list_personal(
    _: Authenticated,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
) -> Result<Json<Vec<PhonebookEntry>>, ApiError> {
    let owner = state.app.personal_phonebook(&number).await?;
    Ok(Json(state.app.phonebook(&owner).await?))
}

/// Adds a local entry to an extension's personal phonebook. Admins.
#[utoipa::path(post, path = "/api/v1/extensions/{number}/phonebook", tag = "phonebooks", request_body = EntryInput,
    params(("number" = String, Path, description = "Extension number")),
    responses((status = 201, body = PhonebookEntry), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_personal(
    who: Authenticated,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
    ApiJson(input): ApiJson<EntryInput>,
) -> Result<(StatusCode, Json<PhonebookEntry>), ApiError> {
    let owner = state.app.personal_phonebook(&number).await?;
    let created = state
        .app
        .create_phonebook_entry(&who.actor, owner, fit_entry(input))
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Replaces a local personal phonebook entry; synced entries are refused. Admins.
#[utoipa::path(put, path = "/api/v1/extensions/{number}/phonebook/{id}", tag = "phonebooks", request_body = EntryInput,
    params(("number" = String, Path, description = "Extension number"), ("id" = String, Path, description = "Entry id")),
    responses((status = 200, body = PhonebookEntry), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_personal(
    who: Authenticated,
    State(state): State<AppState>,
    ApiPath((number, id)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<EntryInput>,
) -> Result<Json<PhonebookEntry>, ApiError> {
    let owner = state.app.personal_phonebook(&number).await?;
    let updated = state
        .app
        .update_phonebook_entry(&who.actor, owner, &id, fit_entry(input))
        .await?;
    Ok(Json(updated))
}

/// Deletes a local personal phonebook entry; synced entries are refused. Admins.
#[utoipa::path(delete, path = "/api/v1/extensions/{number}/phonebook/{id}", tag = "phonebooks",
    params(("number" = String, Path, description = "Extension number"), ("id" = String, Path, description = "Entry id")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_personal(
    who: Authenticated,
    State(state): State<AppState>,
    ApiPath((number, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let owner = state.app.personal_phonebook(&number).await?;
    state
        .app
        .delete_phonebook_entry(&who.actor, owner, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The entry with its display name made to fit (see [`super::fit_display_name`]).
fn fit_entry(mut input: EntryInput) -> EntryInput {
    input.display_name =
        super::fit_display_name(input.display_name, &input.first_name, &input.last_name);
    input
}
