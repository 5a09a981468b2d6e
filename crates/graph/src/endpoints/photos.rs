//! Profile photos: metadata (size, content type, `@odata.mediaEtag`) and bytes (`$value`), one
//! at a time or as `$batch` sub-requests, whose binary answers come back base64-encoded. Any 404
//! means "no photo"; photos are not tracked by delta, so the etag tells a change.
//!
//! https://learn.microsoft.com/graph/api/profilephoto-get · https://learn.microsoft.com/graph/api/resources/profilephoto ·
//! https://learn.microsoft.com/graph/json-batching#response-format

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::GraphError;
use crate::transport::{BatchRequest, BatchResponse, GraphClient, GraphRequest};

/// What every photo path ends with (the user's photo resource), before an optional `/$value`.
const PHOTO: &str = "/photo";

/// How errors name the metadata route.
const METADATA_ROUTE: &str = "/users/{id}/photo";

/// How errors name the bytes route.
const VALUE_ROUTE: &str = "/users/{id}/photo/$value";

/// Profile photo metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoMeta {
    /// Size id, e.g. `240X240`.
    pub id: Option<String>,
    /// Pixels.
    pub width: Option<u32>,
    /// Pixels.
    pub height: Option<u32>,
    /// e.g. `image/jpeg`.
    #[serde(rename = "@odata.mediaContentType")]
    pub media_content_type: Option<String>,
    /// Changes when the photo changes (photos are not tracked by delta).
    #[serde(rename = "@odata.mediaEtag")]
    pub media_etag: Option<String>,
}

/// A photo's bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Photo {
    /// Content-Type of the answer.
    pub content_type: String,
    /// Image bytes.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Photo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Photo({}, {} bytes)",
            self.content_type,
            self.bytes.len()
        )
    }
}

/// A photo's bytes as a `$batch` answer gives them: the headers may be missing.
#[derive(Clone, PartialEq, Eq)]
pub struct PhotoValue {
    /// The `ETag` header (the same value as the metadata's `@odata.mediaEtag`).
    pub etag: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// Image bytes.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for PhotoValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhotoValue")
            .field("etag", &self.etag)
            .field("content_type", &self.content_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

fn metadata_path(user: &str) -> String {
    format!("{}{PHOTO}", super::users::path(user))
}

fn value_path(user: &str) -> String {
    format!("{}/$value", metadata_path(user))
}

/// Whether a path (or a `"METHOD /path"` route key) is a photo route: pbx365 reaches those only
/// as `$batch` sub-requests, which is how request counts leave them out.
pub fn is_photo_path(path: &str) -> bool {
    path.contains(PHOTO)
}

/// The `$batch` sub-request `request_id` for `user`'s photo metadata.
pub fn metadata_request(request_id: impl Into<String>, user: &str) -> BatchRequest {
    BatchRequest::get(request_id, metadata_path(user))
}

/// The `$batch` sub-request `request_id` for `user`'s photo bytes (largest size available).
pub fn value_request(request_id: impl Into<String>, user: &str) -> BatchRequest {
    BatchRequest::get(request_id, value_path(user))
}

/// The answer to a [`metadata_request`]: `None` when the user has no photo. A body that is no
/// photo metadata is [`GraphError::BadResponse`].
pub fn metadata_from_batch(r: &BatchResponse) -> Result<Option<PhotoMeta>, GraphError> {
    if r.status == 404 {
        return Ok(None);
    }
    if let Some(err) = r.error(METADATA_ROUTE) {
        return Err(err);
    }
    let body = r.body.clone().unwrap_or(serde_json::Value::Null);
    serde_json::from_value::<PhotoMeta>(body)
        .map(Some)
        .map_err(|e| GraphError::BadResponse(format!("unreadable photo metadata ({e})")))
}

/// The answer to a [`value_request`]: `None` when the user has no photo. Bytes that are not
/// base64 are [`GraphError::BadResponse`].
pub fn value_from_batch(r: &BatchResponse) -> Result<Option<PhotoValue>, GraphError> {
    if r.status == 404 {
        return Ok(None);
    }
    if let Some(err) = r.error(VALUE_ROUTE) {
        return Err(err);
    }
    let etag = r.header("etag").map(str::to_string);
    let content_type = r.header("content-type").map(str::to_string);
    match &r.body {
        Some(serde_json::Value::String(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map(|bytes| {
                Some(PhotoValue {
                    etag,
                    content_type,
                    bytes,
                })
            })
            .map_err(|e| {
                GraphError::BadResponse(format!("photo bytes are not valid base64 ({e})"))
            }),
        other => Err(GraphError::BadResponse(format!(
            "unexpected photo body {}",
            other.as_ref().map(|v| v.to_string()).unwrap_or_default()
        ))),
    }
}

impl GraphClient {
    /// Photo metadata; `None` when the user has no photo (any 404).
    pub async fn photo_meta(&self, user: &str) -> Result<Option<PhotoMeta>, GraphError> {
        let req = GraphRequest::get(metadata_path(user)).mailbox(user);
        match self.send(req).await {
            Ok(r) => r.json().map(Some),
            Err(GraphError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Photo bytes (largest available); `None` when the user has no photo (any 404).
    pub async fn photo(&self, user: &str) -> Result<Option<Photo>, GraphError> {
        let req = GraphRequest::get(value_path(user)).mailbox(user);
        match self.send(req).await {
            Ok(r) => Ok(Some(Photo {
                content_type: r
                    .header("content-type")
                    .unwrap_or_else(|| "image/jpeg".into()),
                bytes: r.body,
            })),
            Err(GraphError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)], body: serde_json::Value) -> BatchResponse {
        BatchResponse {
            id: "0".into(),
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Some(body),
        }
    }

    #[test]
    fn batch_answers_become_photos_or_no_photo() {
        assert_eq!(
            metadata_request("7", "ann@x.com").url,
            "/users/ann@x.com/photo"
        );
        assert_eq!(value_request("7", "a b").url, "/users/a%20b/photo/$value");
        assert!(is_photo_path("GET /v1.0/users/{id}/photo/$value"));

        let missing = answer(
            404,
            &[],
            serde_json::json!({"error": {"code": "ImageNotFound"}}),
        );
        assert_eq!(metadata_from_batch(&missing).unwrap(), None);
        assert_eq!(value_from_batch(&missing).unwrap(), None);

        let meta = answer(200, &[], serde_json::json!({"@odata.mediaEtag": "\"e1\""}));
        let meta = metadata_from_batch(&meta).unwrap().unwrap();
        assert_eq!(meta.media_etag.as_deref(), Some("\"e1\""));

        let value = answer(
            200,
            &[("ETag", "\"e1\""), ("Content-Type", "image/png")],
            serde_json::json!("AQID"),
        );
        let value = value_from_batch(&value).unwrap().unwrap();
        assert_eq!(value.bytes, [1, 2, 3]);
        assert_eq!(value.etag.as_deref(), Some("\"e1\""));
        assert_eq!(value.content_type.as_deref(), Some("image/png"));

        let bad = answer(200, &[], serde_json::json!("not base64!"));
        let err = value_from_batch(&bad).unwrap_err();
        assert!(matches!(err, GraphError::BadResponse(ref d) if d.contains("not valid base64")));
    }
}
