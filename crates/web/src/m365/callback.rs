//! `GET {public_url}/oauth2office2`: the one redirect URI registered in Azure. It ends the admin
//! consent and, later, every SSO sign-in; the single-use `state` says which. The answer is
//! checked and exchanged by [`pbx365_app::App::finish_oauth`]; this handler finds the browser's
//! console session and shows the outcome.

use super::CONFIGURE;
use crate::html::{render, MessagePage};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use pbx365_app::m365::{ConsentOutcome, ConsentSession, RedirectOutcome};
use std::collections::HashMap;

/// `GET /oauth2office2`. Anyone may call it; it changes something only for a valid state.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let session = match state.sessions.current(&headers).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(_)) => None,
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed in the OAuth callback");
            None
        }
    };
    let binding = crate::sso::binding(&state, &headers);
    let done = state
        .app
        .finish_oauth(
            session.as_ref().map(|s| ConsentSession {
                id_hash: &s.id_hash,
                subject: &s.subject,
            }),
            binding.as_deref(),
            &params,
        )
        .await;
    let done = match done {
        RedirectOutcome::Consent(c) => c,
        RedirectOutcome::SignIn(Ok(signed_in)) => {
            return crate::sso::signed_in(&state, &headers, signed_in).await
        }
        RedirectOutcome::SignIn(Err(refusal)) => return crate::sso::refused(&state, &refusal),
    };
    let res = match done {
        ConsentOutcome::Page {
            session,
            ok,
            message,
        } => {
            state.app.set_flash(&session, ok, &message).await;
            // 303 to a clean URL: the state (and any code) does not stay in the history.
            Redirect::to(CONFIGURE).into_response()
        }
        ConsentOutcome::Alone {
            status,
            title,
            message,
        } => render(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            &MessagePage {
                title: title.to_string(),
                message,
                back_href: CONFIGURE.to_string(),
                back_label: "Back to the Microsoft 365 settings".to_string(),
            },
        ),
    };
    crate::html::private(res)
}
