//! `POST /{tenant}/oauth2/v2.0/token`: client credentials (certificate assertion or secret) and
//! authorization code + PKCE.
//!
//! https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
//! https://learn.microsoft.com/entra/identity-platform/certificate-credentials
//! https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#redeem-a-code-for-an-access-token

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::Digest;

use super::access::{AccessClaims, GRAPH_APP_ID, GRAPH_AUDIENCE};
use super::apps::App;
use super::errors::AadError;
use super::issuer::{app_not_found, check_tenant, sign};
use crate::state::SimState;

/// The only client assertion type Entra accepts.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the client proved its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret` (form or HTTP Basic): `appidacr` "1".
    Secret,
    /// Certificate-signed client assertion: `appidacr` "2".
    Certificate,
}

impl ClientAuth {
    fn appidacr(self) -> &'static str {
        match self {
            ClientAuth::Secret => "1",
            ClientAuth::Certificate => "2",
        }
    }
}

/// `POST /{tenant}/oauth2/v2.0/token` (callers: any OAuth client).
pub async fn token(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match token_inner(&state, &tenant, &headers, &body).await {
        Ok(json) => {
            let mut resp = Json(json).into_response();
            resp.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store, no-cache"),
            );
            resp
        }
        Err(e) => e.into_response(),
    }
}

fn missing(param: &str) -> AadError {
    AadError::oauth(
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{param}'."),
    )
}

async fn token_inner(
    state: &SimState,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Value, AadError> {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .map_err(|_| {
            AadError::oauth(
                "invalid_request",
                900144,
                "The request body must be application/x-www-form-urlencoded.",
            )
        })?
        .into_iter()
        .collect();
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| missing("grant_type"))?;
    let is_client_credentials = grant_type == "client_credentials";
    check_tenant(state, tenant, !is_client_credentials)?;

    let basic = basic_credentials(headers);
    let client_id = form
        .get("client_id")
        .cloned()
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
        .ok_or_else(|| missing("client_id"))?;
    let app = state
        .apps
        .lock()
        .expect("apps lock")
        .get(&client_id.to_ascii_lowercase())
        .cloned()
        .ok_or_else(|| app_not_found(&client_id, &state.tenant_id))?;

    let auth = authenticate(state, &app, &form, basic.map(|(_, s)| s))?;

    match grant_type.as_str() {
        "client_credentials" => {
            let scope = form.get("scope").ok_or_else(|| missing("scope"))?;
            check_app_scope(scope)?;
            let token = issue_app_token(state, &app, auth);
            let lifetime = state.config.token_lifetime_secs;
            Ok(serde_json::json!({
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            }))
        }
        "authorization_code" => super::authorize::redeem_code(state, &app, &form).await,
        "refresh_token" => super::authorize::redeem_refresh_token(state, &app, &form).await,
        other => Err(AadError::oauth(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}

/// `scope` of client credentials: one resource with `/.default` (AADSTS70011 otherwise).
fn check_app_scope(scope: &str) -> Result<(), AadError> {
    let ok = scope.split_whitespace().count() == 1
        && [GRAPH_AUDIENCE, GRAPH_APP_ID].iter().any(|r| {
            let s = scope.trim();
            s.eq_ignore_ascii_case(&format!("{r}/.default"))
                || s.eq_ignore_ascii_case(&format!("{r}//.default"))
        });
    if ok {
        Ok(())
    } else {
        Err(AadError::oauth(
            "invalid_scope",
            70011,
            format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid. The client credentials flow needs https://graph.microsoft.com/.default."
            ),
        ))
    }
}

/// `client_id:client_secret` from an HTTP Basic header (RFC 6749 §2.3.1, form-urlencoded parts).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((unescape(id), unescape(secret)))
}

/// Client authentication: certificate assertion or secret.
pub(crate) fn authenticate(
    state: &SimState,
    app: &App,
    form: &HashMap<String, String>,
    basic_secret: Option<String>,
) -> Result<ClientAuth, AadError> {
    if let Some(assertion) = form.get("client_assertion") {
        match form.get("client_assertion_type") {
            Some(t) if t == JWT_BEARER => {}
            Some(_) => {
                return Err(AadError::oauth(
                    "invalid_request",
                    50027,
                    format!("Invalid client_assertion_type; it must be '{JWT_BEARER}'."),
                ))
            }
            None => return Err(missing("client_assertion_type")),
        }
        verify_assertion(state, app, assertion)?;
        return Ok(ClientAuth::Certificate);
    }
    if let Some(secret) = form.get("client_secret").cloned().or(basic_secret) {
        let ok = app
            .client_secret
            .as_deref()
            .is_some_and(|s| constant_time_eq(s.as_bytes(), secret.as_bytes()));
        if ok {
            return Ok(ClientAuth::Secret);
        }
        return Err(AadError::oauth(
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                app.client_id
            ),
        ));
    }
    Err(AadError::oauth(
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let ha = sha2::Sha256::digest(a);
    let hb = sha2::Sha256::digest(b);
    ha.iter()
        .zip(hb.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Claims of a client assertion.
#[derive(Debug, Deserialize)]
struct AssertionClaims {
    #[serde(default)]
    aud: serde_json::Value,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    jti: Option<String>,
    /// NumericDate may be fractional (MSAL for Python sends floats).
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    nbf: Option<f64>,
}

fn hex_thumbprint(b64url: &str) -> String {
    URL_SAFE_NO_PAD
        .decode(b64url.trim_end_matches('='))
        .map(|b| b.iter().map(|x| format!("{x:02X}")).collect())
        .unwrap_or_else(|_| b64url.to_string())
}

/// Verifies a certificate-signed client assertion (graph-facts §1): PS256 + `x5t#S256` or
/// RS256 + `x5t`, signature against a registered certificate, `iss` = `sub` = client_id,
/// `aud` = this token endpoint, `exp`/`nbf` with skew, `jti` not seen before.
fn verify_assertion(state: &SimState, app: &App, assertion: &str) -> Result<(), AadError> {
    let invalid = |code: u32, text: String| AadError::oauth("invalid_client", code, text);
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| {
        invalid(
            50027,
            "JWT token is invalid or is malformed (client assertion).".to_string(),
        )
    })?;
    if !matches!(
        header.alg,
        Algorithm::PS256
            | Algorithm::RS256
            | Algorithm::PS384
            | Algorithm::RS384
            | Algorithm::PS512
            | Algorithm::RS512
    ) {
        return Err(invalid(
            700027,
            format!(
                "Client assertion contains an invalid signature. [Reason - The algorithm {:?} is not supported.]",
                header.alg
            ),
        ));
    }
    let thumb = header
        .x5t_s256
        .clone()
        .or_else(|| header.x5t.clone())
        .unwrap_or_default();
    // MSAL for Python sends the thumbprints base64url *with* padding; compare without it.
    let unpadded = |v: &Option<String>| v.as_deref().map(|s| s.trim_end_matches('=').to_string());
    let (want_s256, want_sha1) = (unpadded(&header.x5t_s256), unpadded(&header.x5t));
    let cert = app.certificates.iter().find(|c| {
        want_s256.as_deref() == Some(c.x5t_s256.as_str())
            || want_sha1.as_deref() == Some(c.x5t.as_str())
    });
    let Some(cert) = cert else {
        return Err(invalid(
            700027,
            format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.]",
                hex_thumbprint(&thumb),
                app.client_id
            ),
        ));
    };
    let now = chrono::Utc::now().timestamp();
    if now > cert.not_after || now < cert.not_before {
        return Err(invalid(
            700027,
            format!(
                "The certificate with identifier used to sign the client assertion is expired on application. [Reason - The key used is expired., Thumbprint of key used by client: '{}', Found key 'Start={}, End={}']",
                cert.thumbprint_hex,
                fmt_time(cert.not_before),
                fmt_time(cert.not_after)
            ),
        ));
    }
    let key = DecodingKey::from_rsa_raw_components(&cert.n, &cert.e);
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation)
        .map_err(|e| {
            if let jsonwebtoken::errors::ErrorKind::Json(_) = e.kind() {
                return invalid(
                    50027,
                    "JWT token is invalid or is malformed (the client assertion's claims cannot be read).".to_string(),
                );
            }
            invalid(
                700027,
                format!(
                    "Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '{}', Found key 'Start={}, End={}']",
                    cert.thumbprint_hex,
                    fmt_time(cert.not_before),
                    fmt_time(cert.not_after)
                ),
            )
        })?
        .claims;

    let id_matches = |v: &Option<String>| {
        v.as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(&app.client_id))
    };
    if !id_matches(&claims.iss) || !id_matches(&claims.sub) {
        return Err(invalid(
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .".to_string(),
        ));
    }
    let auds: Vec<String> = match &claims.aud {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    };
    if !auds.iter().any(|a| audience_ok(state, a)) {
        return Err(invalid(
            700023,
            format!(
                "Client assertion audience claim does not match Realm issuer. Expected {}/{}/oauth2/v2.0/token. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
                state.base_url, state.tenant_id
            ),
        ));
    }
    let skew = state.config.clock_skew_secs as i64;
    let exp = claims.exp.map(|v| v as i64).ok_or_else(|| {
        invalid(
            700024,
            "Client assertion is missing the 'exp' claim.".to_string(),
        )
    })?;
    let nbf = claims.nbf.map(|v| v as i64).unwrap_or(i64::MIN);
    if now > exp + skew || now + skew < nbf {
        return Err(invalid(
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
                fmt_time(now),
                if nbf == i64::MIN { "-".to_string() } else { fmt_time(nbf) },
                fmt_time(exp)
            ),
        ));
    }
    let Some(jti) = claims.jti.filter(|j| !j.is_empty()) else {
        return Err(invalid(
            700027,
            "Client assertion is missing the 'jti' claim. [Reason - A unique jti is required.]"
                .to_string(),
        ));
    };
    // No AADSTS number is documented for a replayed assertion; the sim refuses it as an
    // invalid client assertion so replay protection is exercised.
    let mut used = state.used_jti.lock().expect("jti lock");
    used.retain(|_, until| *until >= now);
    let key = format!("{}|{jti}", app.client_id);
    if used.contains_key(&key) {
        return Err(invalid(
            700027,
            "Client assertion contains an invalid signature. [Reason - The assertion's jti was already used (replay).]".to_string(),
        ));
    }
    used.insert(key, exp + skew);
    Ok(())
}

fn fmt_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%m/%d/%Y %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// Whether `aud` names this token endpoint (tenant GUID or domain; `localhost` or 127.0.0.1).
fn audience_ok(state: &SimState, aud: &str) -> bool {
    let norm = |s: &str| {
        s.trim_end_matches('/')
            .to_ascii_lowercase()
            .replace("://localhost:", "://127.0.0.1:")
    };
    let aud = norm(aud);
    let base = norm(&state.base_url);
    [&state.tenant_id, &state.domain].iter().any(|t| {
        ["/oauth2/v2.0/token", "/oauth2/token", "/v2.0", ""]
            .iter()
            .any(|suffix| aud == norm(&format!("{base}/{t}{suffix}")))
    })
}

/// An app-only Graph access token (graph-facts §1): `roles` only when consented.
pub fn issue_app_token(state: &SimState, app: &App, auth: ClientAuth) -> String {
    let now = chrono::Utc::now().timestamp();
    let iss = format!("https://sts.windows.net/{}/", state.tenant_id);
    let roles = app.granted_roles();
    let claims = AccessClaims {
        aud: GRAPH_AUDIENCE.to_string(),
        iss: iss.clone(),
        idp: Some(iss),
        iat: now,
        nbf: now,
        exp: now + state.config.token_lifetime_secs as i64,
        appid: app.client_id.clone(),
        appidacr: auth.appidacr().to_string(),
        app_displayname: Some(app.display_name.clone()),
        idtyp: "app".into(),
        oid: app.sp_object_id.clone(),
        sub: app.sp_object_id.clone(),
        tid: state.tenant_id.clone(),
        roles: (!roles.is_empty()).then_some(roles),
        scp: None,
        upn: None,
        name: None,
        uti: URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes()),
        ver: "1.0".into(),
    };
    sign(state, &claims, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_scope_must_be_graph_default() {
        assert!(check_app_scope("https://graph.microsoft.com/.default").is_ok());
        assert!(check_app_scope("00000003-0000-0000-c000-000000000000/.default").is_ok());
        assert!(check_app_scope("User.Read.All").is_err());
        assert!(check_app_scope("https://graph.microsoft.com/.default openid").is_err());
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode("abc:s%2Bcr%3At"));
        h.insert(axum::http::header::AUTHORIZATION, v.parse().unwrap());
        assert_eq!(basic_credentials(&h), Some(("abc".into(), "s+cr:t".into())));
    }
}
