//! The error every API handler returns, rendered as `{"error": {"code", "message"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pbx365_app::sync::SyncError;
use pbx365_app::AppError;
use pbx365_domain::ValidationError;
use pbx365_store::StoreError;
use serde::Serialize;

/// An API failure: HTTP status, a stable machine code and a sentence a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `invalid_input`, `not_found`, `conflict`, `unauthorized`.
    pub code: &'static str,
    /// The human sentence.
    pub message: String,
}

/// Body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code and sentence of an error response.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: String,
    /// Sentence a person can act on.
    pub message: String,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 422: the input was understood but a value is not acceptable.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message)
    }

    /// 400: the request could not be read.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409: the request conflicts with what is stored (taken number, synced record).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 401: no or bad credentials.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in to the console or send Authorization: Bearer <api token>",
        )
    }

    /// 403: authenticated but not allowed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 500 with a generic sentence; the cause goes to the log only.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server could not complete the request; see the server log",
        )
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        match e {
            ValidationError::ReadOnlySynced(_) => ApiError::conflict(e.to_string()),
            _ => ApiError::invalid(e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => ApiError::not_found(e.to_string()),
            StoreError::Conflict { .. }
            | StoreError::NumberTaken { .. }
            | StoreError::ReadOnly { .. }
            | StoreError::BuiltIn { .. }
            | StoreError::LeaseLost { .. } => ApiError::conflict(e.to_string()),
            StoreError::Connect { .. } | StoreError::Migrate(_) | StoreError::Db(_) => {
                ApiError::internal(&e)
            }
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Validation(e) => e.into(),
            AppError::Store(e) | AppError::NumberTaken { source: e, .. } => e.into(),
            AppError::Invalid(m) => ApiError::invalid(m),
            AppError::NotFound { message, .. } => ApiError::not_found(message),
            AppError::Conflict(m) => ApiError::conflict(m),
            e @ (AppError::Unavailable(_)
            | AppError::NothingToApprove
            | AppError::Sync(SyncError::Disabled)) => ApiError::conflict(e.to_string()),
            AppError::Microsoft(m) => ApiError::new(StatusCode::BAD_GATEWAY, "bad_gateway", m),
            e @ (AppError::Sync(_) | AppError::Keys(_) | AppError::Internal(_)) => {
                ApiError::internal(&e)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}
