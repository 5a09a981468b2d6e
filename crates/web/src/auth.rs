//! Who is calling the API: a console session (cookie) or an API token (`Authorization: Bearer`).

use crate::{session, ApiError, AppState};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use pbx365_app::credentials;

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerKind {
    /// A console admin session cookie.
    Session,
    /// An API token.
    ApiToken,
}

/// An authenticated API caller; extracting it refuses the request with 401 otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// Audit actor: the admin name or `api-token:<name>`.
    pub actor: String,
    /// Session or token.
    pub kind: CallerKind,
    /// Proved who they are recently: an API token always, a console session within
    /// [`crate::session::REAUTH_WITHIN_MINUTES`] of its sign-in or password re-entry.
    pub fresh: bool,
}

impl Authenticated {
    /// Refuses a sensitive action (ASVS 3.7.1: approving held deletions) to a console session
    /// whose owner has not proved who they are recently, as the console's own pages do.
    pub fn require_fresh(&self) -> Result<(), ApiError> {
        if self.fresh {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this action needs a recent sign-in: confirm your password in the console \
                 (it is asked for again after {} minutes), or call with an API token",
                crate::session::REAUTH_WITHIN_MINUTES
            )))
        }
    }
}

/// Header a cookie-authenticated caller sends with unsafe methods (the session's CSRF token).
pub const CSRF_HEADER: &str = "x-csrf-token";

pub use pbx365_app::admins::{hash_token, new_token, random_password};

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            // A bearer header is decisive: a bad token is refused even if a cookie is present.
            let token = value
                .to_str()
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(ApiError::unauthorized)?;
            // Expired and revoked tokens get a sentence saying so (issue 9 item 5).
            let checked =
                credentials::authenticate_api_token(&state.store, token, state.app.now()).await?;
            return match checked {
                Ok(name) => Ok(Authenticated {
                    actor: format!("api-token:{name}"),
                    kind: CallerKind::ApiToken,
                    fresh: true,
                }),
                Err(refusal) => Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    refusal.to_string(),
                )),
            };
        }
        let info = session::current_admin(state, &parts.headers)
            .await
            .ok_or_else(ApiError::unauthorized)?;
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            // Cookies ride along on cross-site requests; the CSRF token proves the page is ours.
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let ok: bool = crate::session::secrets_equal(sent, &info.csrf_token);
            if !ok || info.csrf_token.is_empty() {
                return Err(ApiError::forbidden(format!(
                    "send the session's CSRF token in the {CSRF_HEADER} header with cookie-authenticated changes"
                )));
            }
        }
        Ok(Authenticated {
            actor: info.admin,
            kind: CallerKind::Session,
            fresh: info.recently_authenticated,
        })
    }
}
