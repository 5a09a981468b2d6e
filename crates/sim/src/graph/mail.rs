//! `POST /users/{id}/sendMail` and the sim's outbox (`GET|DELETE /_sim/mail`).
//!
//! Docs: https://learn.microsoft.com/graph/api/user-sendmail ·
//! https://learn.microsoft.com/graph/outlook-large-attachments (graph-facts §11).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};

use super::outlook::{MailSend, Outlook};
use super::{graph_error, json_object};
use crate::state::SimState;
use crate::tenant::{now_str, SentMail};

/// Request size limit of Graph (graph-facts §11, OBSERVED 413).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Inline attachments must be under 3 MB.
pub const MAX_INLINE_ATTACHMENT_BYTES: usize = 3 * 1024 * 1024;

/// Mail routes.
pub fn routes() -> Router<Arc<SimState>> {
    Router::new().route("/v1.0/users/{id}/sendMail", post(send_mail))
}

fn bad(code: &str, msg: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, code, msg)
}

/// `POST /v1.0/users/{id}/sendMail` (app: Mail.Send) → 202 with an empty body.
async fn send_mail(
    State(state): State<Arc<SimState>>,
    call: Outlook<MailSend>,
    body: axum::body::Bytes,
) -> Result<Response, Response> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(graph_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "The maximum request length supported is 4MB.",
        ));
    }
    let obj = json_object(&body)?;
    let Some(message) = obj.get("message").filter(|m| m.is_object()) else {
        return Err(bad(
            "ErrorInvalidRequest",
            "The 'message' property is required.",
        ));
    };
    let recipients = ["toRecipients", "ccRecipients", "bccRecipients"]
        .iter()
        .filter_map(|k| message.get(*k).and_then(|v| v.as_array()))
        .flatten()
        .collect::<Vec<_>>();
    if recipients.is_empty() {
        return Err(bad("ErrorInvalidRecipients", "At least one recipient is not valid., A message can't be sent because it contains no recipients."));
    }
    for r in &recipients {
        let ok = r
            .get("emailAddress")
            .and_then(|e| e.get("address"))
            .and_then(|a| a.as_str())
            .is_some_and(|a| a.contains('@'));
        if !ok {
            return Err(bad(
                "ErrorInvalidRecipients",
                "At least one recipient is not valid.",
            ));
        }
    }
    if let Some(headers) = message
        .get("internetMessageHeaders")
        .and_then(|h| h.as_array())
    {
        for h in headers {
            let name = h.get("name").and_then(|n| n.as_str()).unwrap_or("");
            if !(name.starts_with("x-") || name.starts_with("X-")) {
                return Err(bad(
                    "InvalidInternetMessageHeader",
                    &format!(
                        "The internet message header name '{name}' should start with 'x-' or 'X-'."
                    ),
                ));
            }
        }
    }
    if let Some(atts) = message.get("attachments").and_then(|a| a.as_array()) {
        for a in atts {
            let Some(b64) = a.get("contentBytes").and_then(|c| c.as_str()) else {
                continue;
            };
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64) else {
                return Err(bad(
                    "ErrorInvalidRequest",
                    "An attachment's contentBytes is not valid base64.",
                ));
            };
            if bytes.len() >= MAX_INLINE_ATTACHMENT_BYTES {
                return Err(graph_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "ErrorAttachmentSizeLimitExceeded",
                    "Inline attachments must be smaller than 3 MB; use an upload session for larger files.",
                ));
            }
        }
    }
    let mut tenant = state.tenant.write().await;
    call.owner_still_there(&tenant)?;
    let uid = call.user_id.clone();
    let from = tenant.users[&uid].user_principal_name.clone();
    let mail = SentMail {
        from_user_id: uid,
        from,
        message: message.clone(),
        save_to_sent_items: obj
            .get("saveToSentItems")
            .and_then(|v| v.as_bool())
            .unwrap_or(true),
        sent_at: now_str(),
    };
    tenant.outbox.push(mail);
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /_sim/mail` (control): every accepted message, oldest first.
pub async fn list_outbox(State(state): State<Arc<SimState>>) -> Response {
    let tenant = state.tenant.read().await;
    let value: Vec<Value> = tenant
        .outbox
        .iter()
        .map(|m| serde_json::to_value(m).unwrap_or(Value::Null))
        .collect();
    axum::Json(json!({"value": value})).into_response()
}

/// `DELETE /_sim/mail` (control): empties the outbox.
pub async fn clear_outbox(State(state): State<Arc<SimState>>) -> Response {
    state.tenant.write().await.outbox.clear();
    StatusCode::NO_CONTENT.into_response()
}
