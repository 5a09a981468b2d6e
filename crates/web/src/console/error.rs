//! [`ConsoleError`]: what a console handler answers when it cannot go on — a full page with a
//! title and a sentence, or an already finished answer (the form shown again with its error).
//! Handlers return `Result<Response, ConsoleError>` and use `?`.

use crate::html::{error_page, sentence};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pbx365_app::{AppError, Missing};
use pbx365_store::StoreError;

/// A console request that ends in an error page (or another finished answer).
pub enum ConsoleError {
    /// A full-page message with a link back to the console.
    Page {
        /// HTTP status.
        status: StatusCode,
        /// Heading.
        title: &'static str,
        /// The sentence.
        message: String,
    },
    /// A finished answer (e.g. the form again, with what to correct).
    Answer(Box<Response>),
}

impl ConsoleError {
    /// A full-page message.
    pub fn page(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        ConsoleError::Page {
            status,
            title,
            message: message.into(),
        }
    }

    /// The 500 page for a failure the admin cannot fix from here; details go to the log.
    pub fn server(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "console request failed");
        Self::page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The server could not complete this request. The server log has the details.",
        )
    }

    /// The 403 page for a form without a valid CSRF token.
    pub fn csrf() -> Self {
        Self::page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form was not sent from your current console session, so nothing was changed. \
             Reload the page and try again.",
        )
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            ConsoleError::Page {
                status,
                title,
                message,
            } => error_page(status, title, &message),
            ConsoleError::Answer(res) => *res,
        }
    }
}

impl From<Response> for ConsoleError {
    fn from(res: Response) -> Self {
        ConsoleError::Answer(Box::new(res))
    }
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        ConsoleError::server(e)
    }
}

impl From<AppError> for ConsoleError {
    fn from(e: AppError) -> Self {
        use StatusCode as S;
        match e {
            AppError::NotFound {
                what: Missing::Extension,
                ..
            } => Self::page(
                S::NOT_FOUND,
                "Not found",
                "There is no extension with this number.",
            ),
            AppError::NotFound {
                what: Missing::SyncRun,
                ..
            } => Self::page(
                S::NOT_FOUND,
                "No such sync run",
                "This sync run does not exist.",
            ),
            AppError::NotFound { message, .. } => {
                Self::page(S::NOT_FOUND, "Not found", sentence(message))
            }
            e @ AppError::Unavailable(_) => {
                Self::page(S::CONFLICT, "Microsoft 365 is not connected", e.to_string())
            }
            e @ AppError::NothingToApprove => {
                Self::page(S::CONFLICT, "Nothing to approve", e.to_string())
            }
            AppError::Sync(e) => Self::page(S::CONFLICT, "The sync could not run", sentence(e)),
            e @ (AppError::Validation(_) | AppError::Invalid(_)) => {
                Self::page(S::UNPROCESSABLE_ENTITY, "Not accepted", sentence(e))
            }
            e @ (AppError::Conflict(_) | AppError::NumberTaken { .. }) => {
                Self::page(S::CONFLICT, "Not possible", sentence(e))
            }
            e @ (AppError::Microsoft(_)
            | AppError::Keys(_)
            | AppError::Internal(_)
            | AppError::Store(_)) => Self::server(e),
        }
    }
}
