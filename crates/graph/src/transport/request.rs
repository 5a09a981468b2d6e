//! One Graph request and its answer, generic over resources, plus the URL pieces every
//! endpoint shares: the `/v1.0` prefix, path-segment encoding and query-value encoding.
//!
//! https://learn.microsoft.com/graph/use-the-api · Query options: https://learn.microsoft.com/graph/query-parameters

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::error::GraphError;

/// The path of the Graph API version pbx365 speaks, appended to `m365.graph_url`.
pub const API_PATH: &str = "/v1.0";

/// `{graph_url}/v1.0`: the base every relative request URL is resolved against.
pub fn api_base(graph_url: &str) -> String {
    format!("{}{API_PATH}", graph_url.trim_end_matches('/'))
}

/// Whether a path (or a `"METHOD /path"` route key, as m365-sim counts them) is a Graph API
/// call rather than an identity platform or control request.
pub fn is_api_path(path: &str) -> bool {
    let path = path.split_once(' ').map_or(path, |(_, p)| p);
    path.strip_prefix(API_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

/// Percent-encodes one path segment (an id or a mailbox address).
pub fn seg(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// Percent-encodes one query value (e.g. an ISO 8601 instant with `+` and `:`).
pub(crate) fn query_value(value: &str) -> String {
    utf8_percent_encode(value, NON_ALPHANUMERIC).to_string()
}

/// A request to Graph.
#[derive(Debug, Clone)]
pub struct GraphRequest {
    /// Method.
    pub method: Method,
    /// Path relative to `/v1.0` (e.g. `/users?$top=1`) or an absolute nextLink/deltaLink.
    pub url: String,
    /// Extra headers (e.g. `Prefer`, `ConsistencyLevel`).
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: Option<serde_json::Value>,
    /// Mailbox this request touches (Outlook's per-mailbox concurrency limit applies).
    pub mailbox: Option<String>,
}

impl GraphRequest {
    /// A request without a body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        GraphRequest {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            mailbox: None,
        }
    }

    /// A GET.
    pub fn get(url: impl Into<String>) -> Self {
        GraphRequest::new(Method::GET, url)
    }

    /// A request with a JSON body.
    pub fn with_json(method: Method, url: impl Into<String>, body: serde_json::Value) -> Self {
        GraphRequest {
            body: Some(body),
            ..GraphRequest::new(method, url)
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Asks for pages of at most `size` items (`Prefer: odata.maxpagesize`); Graph may send
    /// fewer (https://learn.microsoft.com/graph/paging).
    pub fn max_page_size(self, size: u32) -> Self {
        self.header("Prefer", &format!("odata.maxpagesize={size}"))
    }

    /// Marks the mailbox the request touches.
    pub fn mailbox(mut self, mailbox: &str) -> Self {
        self.mailbox = Some(mailbox.to_ascii_lowercase());
        self
    }
}

/// A successful Graph answer.
#[derive(Debug, Clone)]
pub struct GraphResponse {
    /// HTTP status (2xx).
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl GraphResponse {
    /// The body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, GraphError> {
        serde_json::from_slice(&self.body).map_err(|e| GraphError::BadResponse(e.to_string()))
    }

    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<String> {
        header(&self.headers, name)
    }
}

pub(crate) fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded_and_api_paths_recognised() {
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
        assert_eq!(seg("ann@contoso.com"), "ann@contoso.com");
        assert!(is_api_path("GET /v1.0/users/{id}"));
        assert!(is_api_path("/v1.0/$batch"));
        assert!(!is_api_path("POST /tid/oauth2/v2.0/token"));
        assert!(!is_api_path("/v1.0beta/users"));
        assert_eq!(
            api_base("https://graph.example/"),
            "https://graph.example/v1.0"
        );
    }
}
