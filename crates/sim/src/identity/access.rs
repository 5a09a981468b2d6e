//! The access check every Graph handler runs: bearer token -> [`AppPrincipal`], then
//! [`AppPrincipal::require`] against the token's `roles` (app-only) or `scp` (delegated).
//!
//! Errors use Graph's envelope (https://learn.microsoft.com/graph/errors) with `request-id`,
//! `client-request-id` and `date` in `innerError` and as response headers.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::state::SimState;

/// The audience of Graph access tokens.
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";
/// Graph's well-known application id (also accepted as audience).
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

pub use super::claims::AccessClaims;

/// The caller of a Graph request, from a verified access token.
#[derive(Debug, Clone)]
pub struct AppPrincipal {
    /// Client id of the calling app.
    pub app_id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Application permissions (app-only tokens).
    pub roles: Vec<String>,
    /// Delegated scopes (delegated tokens).
    pub scopes: Vec<String>,
    /// Signed-in user's object id (delegated tokens).
    pub user_id: Option<String>,
}

impl AppPrincipal {
    /// True for app-only tokens.
    pub fn is_app_only(&self) -> bool {
        self.user_id.is_none()
    }

    /// True when the token grants `permission` (a `ReadWrite` grant implies the `Read` one).
    pub fn has(&self, permission: &str) -> bool {
        let granted = if self.is_app_only() {
            &self.roles
        } else {
            &self.scopes
        };
        granted.iter().any(|g| implies(g, permission))
    }

    /// Ok when the token grants any of `any_of`; else Graph's 403.
    ///
    /// A token with neither `roles` nor `scp` gets `AccessDenied` "Either scp or roles claim need
    /// to be present in the token." (graph-facts §1, OBSERVED); otherwise a directory-style
    /// `Authorization_RequestDenied` (https://learn.microsoft.com/graph/errors).
    pub fn require(&self, any_of: &[&str]) -> Result<(), Response> {
        if self.roles.is_empty() && self.scopes.is_empty() {
            return Err(graph_error(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "Either scp or roles claim need to be present in the token.",
            ));
        }
        if any_of.is_empty() || any_of.iter().any(|p| self.has(p)) {
            return Ok(());
        }
        Err(graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ))
    }
}

/// Whether the granted permission `granted` covers `wanted`.
fn implies(granted: &str, wanted: &str) -> bool {
    if granted.eq_ignore_ascii_case(wanted) {
        return true;
    }
    // X.ReadWrite.All covers X.Read.All; X.ReadWrite covers X.Read.
    if let Some(base) = wanted.strip_suffix(".Read.All") {
        if granted.eq_ignore_ascii_case(&format!("{base}.ReadWrite.All")) {
            return true;
        }
    }
    if let Some(base) = wanted.strip_suffix(".Read") {
        if granted.eq_ignore_ascii_case(&format!("{base}.ReadWrite")) {
            return true;
        }
    }
    // Directory-wide grants cover user and group reads.
    let directory_read = ["User.Read.All", "Group.Read.All", "GroupMember.Read.All"];
    if directory_read
        .iter()
        .any(|w| w.eq_ignore_ascii_case(wanted))
    {
        return granted.eq_ignore_ascii_case("Directory.Read.All")
            || granted.eq_ignore_ascii_case("Directory.ReadWrite.All");
    }
    false
}

/// Verifies the `Authorization: Bearer` token of a Graph request.
///
/// 401 `InvalidAuthenticationToken` when it is missing, malformed, badly signed, for another
/// audience or tenant, or outside its lifetime.
pub fn app_from_headers(state: &SimState, headers: &HeaderMap) -> Result<AppPrincipal, Response> {
    let unauthorized = |msg: &str| {
        let mut r = graph_error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", msg);
        // A 401 carries the challenge saying where to get a token and for which resource
        // (https://learn.microsoft.com/entra/msal/dotnet/advanced/extract-authentication-parameters).
        let challenge = format!(
            "Bearer realm=\"\", authorization_uri=\"{}/{}/oauth2/authorize\", client_id=\"{GRAPH_APP_ID}\"",
            state.base_url, state.tenant_id
        );
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, v);
        }
        r
    };
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(unauthorized("Access token is empty."));
    };
    let value = value.to_str().unwrap_or("");
    let token = match value.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
        _ => return Err(unauthorized("Access token is empty.")),
    };
    if token.is_empty() {
        return Err(unauthorized("Access token is empty."));
    }
    let claims = verify_access_token(state, token).map_err(|e| unauthorized(e.message()))?;
    Ok(AppPrincipal {
        app_id: claims.appid,
        tenant_id: claims.tid,
        roles: claims.roles.unwrap_or_default(),
        scopes: claims
            .scp
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        user_id: (claims.idtyp == "user").then_some(claims.oid),
    })
}

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// Not a JWT, or a header we cannot use.
    Malformed,
    /// Signature does not verify against a published key.
    BadSignature,
    /// Expired or not yet valid.
    Lifetime,
    /// Wrong audience, issuer or tenant.
    WrongAudience,
}

impl TokenProblem {
    /// Graph's message for the problem.
    pub fn message(self) -> &'static str {
        match self {
            TokenProblem::Malformed => "IDX14100: JWT is not well formed, there are no dots (.).",
            TokenProblem::BadSignature => "Access token validation failure. Invalid signature.",
            TokenProblem::Lifetime => "Access token has expired or is not yet valid.",
            TokenProblem::WrongAudience => "Invalid audience.",
        }
    }
}

/// Verifies signature, lifetime, audience and issuer of a sim-issued Graph access token.
pub fn verify_access_token(state: &SimState, token: &str) -> Result<AccessClaims, TokenProblem> {
    let now = chrono::Utc::now().timestamp();
    // Fast path: a token verified before, still within its lifetime, its key still published.
    // Saves an RSA verification + JSON decode per Graph request (benchmarks: ≥ 5,000 GETs/s).
    if let Some((claims, kid)) = state
        .verified_tokens
        .read()
        .expect("token cache lock")
        .get(token)
    {
        if now >= claims.nbf && now < claims.exp {
            if state.keys.read().expect("keys lock").find(kid).is_some() {
                return Ok(claims.clone());
            }
        } else {
            return Err(TokenProblem::Lifetime);
        }
    }
    let claims = verify_uncached(state, token)?;
    let mut cache = state.verified_tokens.write().expect("token cache lock");
    if cache.len() >= 10_000 {
        cache.retain(|_, (c, _)| c.exp > now);
        if cache.len() >= 10_000 {
            cache.clear();
        }
    }
    let kid = jsonwebtoken::decode_header(token)
        .ok()
        .and_then(|h| h.kid)
        .unwrap_or_default();
    cache.insert(token.to_string(), (claims.clone(), kid));
    Ok(claims)
}

fn verify_uncached(state: &SimState, token: &str) -> Result<AccessClaims, TokenProblem> {
    use jsonwebtoken::{Algorithm, Validation};
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenProblem::Malformed)?;
    if header.alg != Algorithm::RS256 {
        return Err(TokenProblem::BadSignature);
    }
    let kid = header.kid.ok_or(TokenProblem::BadSignature)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[GRAPH_AUDIENCE, GRAPH_APP_ID]);
    validation.set_issuer(&[format!("https://sts.windows.net/{}/", state.tenant_id)]);
    validation.leeway = 0;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
    let keys = state.keys.read().expect("keys lock");
    let key = keys.find(&kid).ok_or(TokenProblem::BadSignature)?;
    jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
        .map(|d| d.claims)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature | K::ImmatureSignature => TokenProblem::Lifetime,
                K::InvalidAudience | K::InvalidIssuer => TokenProblem::WrongAudience,
                K::InvalidSignature => TokenProblem::BadSignature,
                _ => TokenProblem::Malformed,
            }
        })
}

impl FromRequestParts<Arc<SimState>> for AppPrincipal {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<SimState>,
    ) -> Result<Self, Self::Rejection> {
        app_from_headers(state, &parts.headers)
    }
}

tokio::task_local! {
    /// The caller's `client-request-id` while its request is answered (set by the middleware
    /// in `crate::server`), so that error bodies can echo it.
    pub static CLIENT_REQUEST_ID: Option<String>;
}

/// A Graph error response: `{"error":{"code","message","innerError":{date, request-id,
/// client-request-id}}}` plus the `request-id`/`client-request-id` headers.
///
/// `client-request-id` is the caller's own id when it sent one ("Client request Id as sent by
/// the client application", https://learn.microsoft.com/graph/errors), else the request id.
pub fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = CLIENT_REQUEST_ID
        .try_with(|c| c.clone())
        .ok()
        .flatten()
        .unwrap_or_else(|| request_id.clone());
    let date = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let body = serde_json::json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": date,
                "request-id": request_id,
                "client-request-id": client_request_id,
            }
        }
    });
    let mut resp = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&client_request_id) {
        resp.headers_mut().insert("client-request-id", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::implies;

    #[test]
    fn readwrite_grant_covers_read() {
        assert!(implies("User.ReadWrite.All", "User.Read.All"));
        assert!(implies("Contacts.ReadWrite", "Contacts.Read"));
        assert!(implies("Directory.Read.All", "User.Read.All"));
        assert!(!implies("User.Read.All", "User.ReadWrite.All"));
        assert!(!implies("Calendars.Read", "Contacts.Read"));
    }
}
