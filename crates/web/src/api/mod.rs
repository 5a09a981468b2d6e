//! The REST API under `/api/v1` (SPEC §8). Every data handler needs an admin: a console session
//! or an API token ([`crate::auth::Authenticated`]).

pub mod extensions;
pub mod groups;
pub mod lookup;
pub mod phonebook;
pub mod sync;

use crate::{ApiError, AppState};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

/// Routes of `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route(
            "/extensions",
            get(extensions::list).post(extensions::create),
        )
        .route(
            "/extensions/{number}",
            get(extensions::get_one)
                .put(extensions::update)
                .delete(extensions::delete),
        )
        .route("/extensions/{number}/admin", put(extensions::set_admin))
        .route(
            "/extensions/{number}/profile",
            get(extensions::get_profile).put(extensions::put_profile),
        )
        .route("/extensions/{number}/photo", get(extensions::photo))
        .route(
            "/extensions/{number}/phonebook",
            get(phonebook::list_personal).post(phonebook::create_personal),
        )
        .route(
            "/extensions/{number}/phonebook/{id}",
            put(phonebook::update_personal).delete(phonebook::delete_personal),
        )
        .route(
            "/phonebook/company",
            get(phonebook::list_company).post(phonebook::create_company),
        )
        .route(
            "/phonebook/company/{id}",
            put(phonebook::update_company).delete(phonebook::delete_company),
        )
        .route("/lookup", get(lookup::lookup))
        .route("/groups", get(groups::list).post(groups::create))
        .route("/groups/{name}", axum::routing::delete(groups::delete))
        .route(
            "/groups/{name}/members/{number}",
            put(groups::add_member).delete(groups::remove_member),
        )
        .route("/sync/runs", get(sync::list_runs))
        .route("/sync/runs/{id}", get(sync::get_run))
        .route(
            "/sync/runs/{id}/approve",
            axum::routing::post(sync::approve_run),
        )
        .route("/sync/{kind}", axum::routing::post(sync::start_run))
        .fallback(|| async {
            ApiError::not_found("there is no such API endpoint; see /api/v1/openapi.json")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not accept that method; see /api/v1/openapi.json",
            )
        })
}

/// The OpenAPI document. Anyone may read it (it describes the API, it holds no data).
async fn openapi_json(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(crate::openapi::document(state.settings().extension_digits))
}

/// A JSON body whose every rejection (content type, syntax, unknown or wrong fields) becomes the
/// API's error envelope with a sentence.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    use axum::http::StatusCode;
    match r {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with the header Content-Type: application/json",
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(format!(
            "the request body is not valid JSON: {}",
            serde_cause(&e.body_text())
        )),
        JsonRejection::JsonDataError(e) => ApiError::invalid(format!(
            "the request body does not fit: {}",
            serde_cause(&e.body_text())
        )),
        JsonRejection::BytesRejection(e) => {
            ApiError::bad_request(format!("the request body could not be read: {e}"))
        }
        other => ApiError::bad_request(format!(
            "the request body could not be read: {}",
            other.body_text()
        )),
    }
}

/// axum prefixes serde's message with its own words; keep serde's part, which names the field.
fn serde_cause(text: &str) -> String {
    let t = text
        .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
        .trim_start_matches("Failed to parse the request body as JSON: ");
    t.to_string()
}

/// Path parameters with the error envelope on rejection (400 when a segment cannot be read,
/// e.g. percent-encoded bytes that are not UTF-8).
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(e @ PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::bad_request(
                format!("the path is not valid: {}", e.body_text()),
            )),
            Err(e) => Err(ApiError::internal(&e.body_text())),
        }
    }
}

/// Query parameters with the error envelope on rejection: 400 when a parameter is unknown or
/// of the wrong type (the handler refuses a well-typed value out of range with 422).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e) => {
                let text = match &e {
                    QueryRejection::FailedToDeserializeQueryString(inner) => inner.body_text(),
                    other => other.body_text(),
                };
                Err(ApiError::bad_request(format!(
                    "the query string is not valid: {}",
                    text.trim_start_matches("Failed to deserialize query string: ")
                )))
            }
        }
    }
}

/// The display name to store: as sent, or, when it is blank and the name made of first and last
/// name would be longer than a directory field keeps, that name cut to fit (the document promises
/// that any first and last name within their limits are accepted).
pub(crate) fn fit_display_name(display_name: String, first_name: &str, last_name: &str) -> String {
    if !display_name.trim().is_empty() {
        return display_name;
    }
    let max = pbx365_domain::extension::MAX_FIELD_LEN;
    let derived = format!("{} {}", first_name.trim(), last_name.trim());
    let derived = derived.trim();
    if derived.chars().count() <= max {
        return display_name;
    }
    let cut: String = derived.chars().take(max).collect();
    cut.trim_end().to_string()
}
