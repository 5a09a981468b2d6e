//! `/api/v1/phonebook/company` and `/api/v1/extensions/{number}/phonebook`: phonebooks with
//! several typed numbers per entry. Local entries are editable; synced ones are read-only.

use super::{audit, ApiJson, ApiPath};
use crate::auth::Authenticated;
use crate::error::ErrorBody;
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pbx365_domain::error::{check_email, check_len};
use pbx365_domain::extension::MAX_FIELD_LEN;
use pbx365_domain::phonebook::check_dialable;
use pbx365_domain::{PhoneKind, PhoneNumber, PhonebookEntry, PhonebookOwner, ValidationError};
use serde::Deserialize;

/// One number of an entry as a client writes it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberInput {
    /// `business`, `mobile`, `home` or `other`.
    pub kind: PhoneKind,
    /// The number as written; it is also normalised to E.164.
    pub number: String,
}

/// Body of creating or replacing a local phonebook entry.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryInput {
    /// Shown name; derived from first and last name (or company) when empty.
    #[serde(default)]
    pub display_name: String,
    /// Given name.
    #[serde(default)]
    pub first_name: String,
    /// Surname.
    #[serde(default)]
    pub last_name: String,
    /// Company.
    pub company: Option<String>,
    /// Mail addresses.
    #[serde(default)]
    pub emails: Vec<String>,
    /// Phone numbers.
    #[serde(default)]
    pub numbers: Vec<NumberInput>,
}

impl EntryInput {
    /// Checks every field and builds the entry (numbers normalised with `default_country`).
    fn into_entry(
        self,
        id: String,
        owner: PhonebookOwner,
        default_country: &str,
    ) -> Result<PhonebookEntry, ApiError> {
        let first_name = self.first_name.trim().to_string();
        let last_name = self.last_name.trim().to_string();
        let company = self
            .company
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        let mut display_name = self.display_name.trim().to_string();
        if display_name.is_empty() {
            display_name = format!("{first_name} {last_name}").trim().to_string();
        }
        if display_name.is_empty() {
            display_name = company.clone().unwrap_or_default();
        }
        if display_name.is_empty() {
            return Err(
                ValidationError::Empty("display name (or first/last name or company)").into(),
            );
        }
        check_len("display name", &display_name, MAX_FIELD_LEN)?;
        check_len("first name", &first_name, MAX_FIELD_LEN)?;
        check_len("last name", &last_name, MAX_FIELD_LEN)?;
        if let Some(c) = &company {
            check_len("company", c, MAX_FIELD_LEN)?;
        }
        if self.emails.len() > 20 || self.numbers.len() > 20 {
            return Err(ApiError::invalid(
                "an entry holds at most 20 mail addresses and 20 numbers",
            ));
        }
        let mut emails = Vec::new();
        for e in self.emails {
            let e = e.trim().to_string();
            check_email(&e)?;
            emails.push(e);
        }
        let mut numbers = Vec::new();
        for n in self.numbers {
            check_dialable(&n.number)?;
            numbers.push(PhoneNumber::new(n.kind, &n.number, default_country));
        }
        if numbers.is_empty() && emails.is_empty() {
            return Err(ApiError::invalid(
                "a phonebook entry needs at least one number or mail address",
            ));
        }
        Ok(PhonebookEntry {
            id,
            owner,
            m365_id: None,
            display_name,
            first_name,
            last_name,
            company,
            emails,
            numbers,
        })
    }
}

async fn personal_owner(state: &AppState, number: &str) -> Result<PhonebookOwner, ApiError> {
    super::extensions::load(state, number).await?;
    Ok(PhonebookOwner::Personal(number.to_string()))
}

async fn find_local(
    state: &AppState,
    owner: &PhonebookOwner,
    id: &str,
) -> Result<PhonebookEntry, ApiError> {
    let entry = state
        .store
        .list_phonebook(owner)
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "phonebook entry '{}' does not exist",
                id.chars().take(64).collect::<String>()
            ))
        })?;
    if entry.m365_id.is_some() {
        return Err(ValidationError::ReadOnlySynced("this phonebook entry").into());
    }
    Ok(entry)
}

async fn create(
    state: &AppState,
    actor: &str,
    owner: PhonebookOwner,
    input: EntryInput,
) -> Result<(StatusCode, Json<PhonebookEntry>), ApiError> {
    let country = state.settings().contacts.default_country.clone();
    let entry = input.into_entry(String::new(), owner, &country)?;
    let created = state.store.create_phonebook_entry(&entry).await?;
    audit(
        state,
        actor,
        "phonebook.create",
        &created.id,
        &created.display_name,
    )
    .await;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn update(
    state: &AppState,
    actor: &str,
    owner: PhonebookOwner,
    id: &str,
    input: EntryInput,
) -> Result<Json<PhonebookEntry>, ApiError> {
    find_local(state, &owner, id).await?;
    let country = state.settings().contacts.default_country.clone();
    let entry = input.into_entry(id.to_string(), owner, &country)?;
    let updated = state.store.update_phonebook_entry(&entry).await?;
    audit(state, actor, "phonebook.update", id, &updated.display_name).await;
    Ok(Json(updated))
}

async fn delete(
    state: &AppState,
    actor: &str,
    owner: PhonebookOwner,
    id: &str,
) -> Result<StatusCode, ApiError> {
    let entry = find_local(state, &owner, id).await?;
    state.store.delete_phonebook_entry(&owner, id).await?;
    audit(state, actor, "phonebook.delete", id, &entry.display_name).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The company phonebook ordered by name. Admins.
#[utoipa::path(get, path = "/api/v1/phonebook/company", tag = "phonebooks",
    responses((status = 200, body = [PhonebookEntry])))]
pub async fn list_company(
    _: Authenticated,
    State(state): State<AppState>,
) -> Result<Json<Vec<PhonebookEntry>>, ApiError> {
    Ok(Json(
        state.store.list_phonebook(&PhonebookOwner::Company).await?,
    ))
}

/// Adds a local entry to the company phonebook. Admins.
#[utoipa::path(post, path = "/api/v1/phonebook/company", tag = "phonebooks", request_body = EntryInput,
    responses((status = 201, body = PhonebookEntry), (status = 422, body = ErrorBody)))]
pub async fn create_company(
    who: Authenticated,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<EntryInput>,
) -> Result<(StatusCode, Json<PhonebookEntry>), ApiError> {
    create(&state, &who.actor, PhonebookOwner::Company, input).await
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
    update(&state, &who.actor, PhonebookOwner::Company, &id, input).await
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
    delete(&state, &who.actor, PhonebookOwner::Company, &id).await
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
    let owner = personal_owner(&state, &number).await?;
    Ok(Json(state.store.list_phonebook(&owner).await?))
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
    let owner = personal_owner(&state, &number).await?;
    create(&state, &who.actor, owner, input).await
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
    let owner = personal_owner(&state, &number).await?;
    update(&state, &who.actor, owner, &id, input).await
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
    let owner = personal_owner(&state, &number).await?;
    delete(&state, &who.actor, owner, &id).await
}
