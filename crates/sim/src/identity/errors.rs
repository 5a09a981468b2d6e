//! The identity platform's error envelope.
//!
//! `{"error","error_description":"AADSTSnnnnn: …\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: …",
//! "error_codes":[n],"timestamp","trace_id","correlation_id","error_uri"}`, 401 for
//! `invalid_client` and 400 otherwise (graph-facts §1;
//! https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#error-response-1).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An identity-platform error.
#[derive(Debug, Clone)]
pub struct AadError {
    /// HTTP status.
    pub status: StatusCode,
    /// OAuth error string (`invalid_client`, …).
    pub error: &'static str,
    /// AADSTS number.
    pub code: u32,
    /// Text after `AADSTSnnnnn: `.
    pub description: String,
    /// Optional `suberror` (`consent_required`).
    pub suberror: Option<&'static str>,
}

impl AadError {
    /// An error with an explicit status.
    pub fn new(status: StatusCode, error: &'static str, code: u32, description: &str) -> Self {
        AadError {
            status,
            error,
            code,
            description: description.to_string(),
            suberror: None,
        }
    }

    /// An error with the usual status for `error` (401 for `invalid_client`, else 400).
    pub fn oauth(error: &'static str, code: u32, description: impl Into<String>) -> Self {
        let status = if error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        AadError {
            status,
            error,
            code,
            description: description.into(),
            suberror: None,
        }
    }

    /// Adds a `suberror`.
    pub fn with_suberror(mut self, suberror: &'static str) -> Self {
        self.suberror = Some(suberror);
        self
    }

    /// The full `error_description` text.
    pub fn full_description(
        &self,
        trace_id: &str,
        correlation_id: &str,
        timestamp: &str,
    ) -> String {
        format!(
            "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
            self.code, self.description
        )
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let timestamp = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
        let mut body = serde_json::json!({
            "error": self.error,
            "error_description": self.full_description(&trace_id, &correlation_id, &timestamp),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        if let Some(s) = self.suberror {
            body["suberror"] = serde_json::Value::String(s.to_string());
        }
        body
    }
}

impl IntoResponse for AadError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        resp.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store, no-cache"),
        );
        resp
    }
}
