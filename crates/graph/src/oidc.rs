//! The OpenID Connect relying party of single sign-on: discovery, the authorize URL
//! (code + PKCE S256 + nonce, `response_mode=query`), code redemption with the certificate
//! assertion, and ID-token validation against the tenant's JWKS with key rotation.
//!
//! https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc ·
//! https://learn.microsoft.com/entra/identity-platform/claims-validation ·
//! https://learn.microsoft.com/entra/identity-platform/signing-key-rollover
//!
//! Written on `jsonwebtoken` (signature and `exp`/`nbf`) rather than the `openidconnect` crate:
//! Microsoft's multi-tenant discovery publishes a `{tenantid}` template issuer that a strict
//! library refuses, and the crate would bring a second HTTP/crypto stack into the build.
//! Every other claim is checked here, explicitly, one sentence per refusal.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pbx365_domain::settings::AssertionAlg;
use serde::Deserialize;
use sha2::Digest;
use std::time::{Duration, Instant};

use crate::assertion::client_assertion_for;
use crate::keys::KeyStore;

/// Keys older than this are fetched again before use (Microsoft: hourly background refresh).
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
/// An unknown `kid` re-fetches the JWKS at most this often (Microsoft: once per 5 minutes).
pub const FORCED_REFETCH_INTERVAL: Duration = Duration::from_secs(300);
/// Clock skew allowed on `exp`/`nbf`.
pub const CLOCK_SKEW_SECS: u64 = 120;
/// Scopes of a sign-in: `profile` carries `oid` (graph-facts §3).
pub const SIGN_IN_SCOPE: &str = "openid profile";

/// Why a sign-in could not be completed; each is a sentence for the refusal page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// Discovery or JWKS could not be read.
    #[error("the identity provider's metadata could not be read: {0}")]
    Metadata(String),
    /// The discovery document names another issuer.
    #[error("the identity provider's discovery document names issuer {found}, not {expected}")]
    IssuerMismatch {
        /// Expected issuer.
        expected: String,
        /// Published issuer.
        found: String,
    },
    /// The token endpoint refused the code.
    #[error("the identity provider refused to redeem the sign-in code: {0}")]
    Redeem(String),
    /// The ID token failed a check.
    #[error("the ID token was refused: {0}")]
    Token(String),
    /// The ID token is valid but from a tenant pbx365 is not connected to.
    #[error("the account belongs to Microsoft 365 tenant {found}, not to tenant {expected} this PBX is connected to")]
    OtherTenant {
        /// Our tenant.
        expected: String,
        /// The token's `tid`.
        found: String,
    },
    /// pbx365 itself cannot sign in (no key, no client id).
    #[error("{0}")]
    Setup(String),
}

/// What discovery says, as far as the sign-in uses it.
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderMetadata {
    /// Issuer (checked against the tenant-specific issuer).
    pub issuer: String,
    /// Where the browser signs in.
    pub authorization_endpoint: String,
    /// Where the code is redeemed.
    pub token_endpoint: String,
    /// The signing keys.
    pub jwks_uri: String,
}

/// The checked claims of an ID token that a sign-in uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdClaims {
    /// Object id of the user (Graph `user.id`).
    pub oid: String,
    /// Tenant GUID.
    pub tid: String,
    /// Subject (pairwise).
    pub sub: String,
    /// Display name, for logs only.
    pub name: Option<String>,
}

#[derive(Clone)]
struct Jwk {
    kid: Option<String>,
    key: DecodingKey,
}

#[derive(Default)]
struct JwksCache {
    keys: Vec<Jwk>,
    fetched_at: Option<Instant>,
    last_forced: Option<Instant>,
    fetches: u64,
}

/// The sign-in side of one tenant + app: cheap to share, caches discovery and keys.
pub struct RelyingParty {
    http: reqwest::Client,
    authority_url: String,
    tenant_id: String,
    client_id: String,
    alg: AssertionAlg,
    keys: KeyStore,
    meta: tokio::sync::Mutex<Option<ProviderMetadata>>,
    jwks: tokio::sync::Mutex<JwksCache>,
}

/// A PKCE verifier and its S256 challenge (RFC 7636 §4.2).
pub fn pkce_pair() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn meta_err(e: impl std::fmt::Display) -> OidcError {
    OidcError::Metadata(e.to_string())
}

fn bad(reason: &str) -> OidcError {
    OidcError::Token(reason.to_string())
}

impl RelyingParty {
    /// A relying party for `client_id` in `tenant_id` at `authority_url`, proving itself with the
    /// certificate in `keys`; `http` carries the trust roots (see [`crate::transport::http_client`]).
    pub fn new(
        http: reqwest::Client,
        authority_url: &str,
        tenant_id: &str,
        client_id: &str,
        alg: AssertionAlg,
        keys: KeyStore,
    ) -> Self {
        RelyingParty {
            http,
            authority_url: authority_url.trim_end_matches('/').to_string(),
            tenant_id: tenant_id.to_string(),
            client_id: client_id.to_string(),
            alg,
            keys,
            meta: tokio::sync::Mutex::new(None),
            jwks: tokio::sync::Mutex::new(JwksCache::default()),
        }
    }

    /// The tenant-specific issuer `{authority}/{tid}/v2.0` every ID token must carry.
    pub fn expected_issuer(&self) -> String {
        format!("{}/{}/v2.0", self.authority_url, self.tenant_id)
    }

    /// How often the JWKS was fetched (tests check the rate limit).
    pub async fn jwks_fetches(&self) -> u64 {
        self.jwks.lock().await.fetches
    }

    /// The discovery document of the tenant (fetched once, then kept).
    pub async fn metadata(&self) -> Result<ProviderMetadata, OidcError> {
        let mut slot = self.meta.lock().await;
        if let Some(m) = slot.as_ref() {
            return Ok(m.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.expected_issuer()
        );
        let res = self.http.get(&url).send().await.map_err(meta_err)?;
        if !res.status().is_success() {
            return Err(meta_err(format!("{url} answered {}", res.status())));
        }
        let meta: ProviderMetadata = res.json().await.map_err(meta_err)?;
        // Multi-tenant documents carry a `{tenantid}` template (graph-facts §3 issuer caveat).
        let issuer = meta.issuer.replace("{tenantid}", &self.tenant_id);
        if issuer != self.expected_issuer() {
            return Err(OidcError::IssuerMismatch {
                expected: self.expected_issuer(),
                found: meta.issuer,
            });
        }
        *slot = Some(meta.clone());
        Ok(meta)
    }

    /// The URL that starts a sign-in: code flow, PKCE S256, `nonce`, `response_mode=query`;
    /// `fresh` asks the user to enter their credentials again (`prompt=login`).
    pub async fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        challenge: &str,
        fresh: bool,
    ) -> Result<String, OidcError> {
        let meta = self.metadata().await?;
        let mut params = vec![
            ("client_id", self.client_id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("response_mode", "query"),
            ("scope", SIGN_IN_SCOPE),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ];
        if fresh {
            params.push(("prompt", "login"));
        }
        let q = serde_urlencoded::to_string(&params).map_err(meta_err)?;
        let sep = if meta.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!("{}{sep}{q}", meta.authorization_endpoint))
    }

    /// Redeems `code` with the PKCE verifier and the certificate assertion; returns the raw
    /// ID token (not yet checked).
    pub async fn redeem(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        now: DateTime<Utc>,
    ) -> Result<String, OidcError> {
        let meta = self.metadata().await?;
        let credential = self.keys.load_active().map_err(|e| {
            OidcError::Setup(format!(
                "pbx365 has no usable key pair to prove itself to Microsoft ({e})"
            ))
        })?;
        let assertion = client_assertion_for(
            &credential,
            self.alg,
            &meta.token_endpoint,
            &self.client_id,
            now,
        )
        .map_err(|e| OidcError::Setup(e.to_string()))?;
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", self.client_id.as_str()),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            ("scope", SIGN_IN_SCOPE),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.expose()),
        ];
        let res = self
            .http
            .post(&meta.token_endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|e| OidcError::Redeem(e.to_string()))?;
        let status = res.status();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        if !status.is_success() {
            let what = body["error_description"]
                .as_str()
                .or(body["error"].as_str())
                .unwrap_or("no reason given");
            return Err(OidcError::Redeem(format!("{status}: {what}")));
        }
        body["id_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| OidcError::Redeem("the answer carried no ID token".into()))
    }

    async fn fetch_jwks(&self, cache: &mut JwksCache) -> Result<(), OidcError> {
        let meta = self.metadata().await?;
        let res = self
            .http
            .get(&meta.jwks_uri)
            .send()
            .await
            .map_err(meta_err)?;
        if !res.status().is_success() {
            return Err(meta_err(format!(
                "{} answered {}",
                meta.jwks_uri,
                res.status()
            )));
        }
        let doc: serde_json::Value = res.json().await.map_err(meta_err)?;
        // Entries that are not RSA signing keys, or do not parse, are skipped, not fatal.
        let keys: Vec<Jwk> = doc["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|k| k["kty"] == "RSA" && k["use"].as_str().is_none_or(|u| u == "sig"))
            .filter_map(|k| {
                let key =
                    DecodingKey::from_rsa_components(k["n"].as_str()?, k["e"].as_str()?).ok()?;
                Some(Jwk {
                    kid: k["kid"].as_str().map(str::to_string),
                    key,
                })
            })
            .collect();
        cache.keys = keys;
        cache.fetched_at = Some(Instant::now());
        cache.fetches += 1;
        Ok(())
    }

    /// The keys a token with `kid` may be checked with: the matching key (re-fetching the JWKS
    /// once on an unknown `kid`, rate-limited), or every key when the token names none.
    async fn keys_for(&self, kid: Option<&str>) -> Result<Vec<DecodingKey>, OidcError> {
        let mut cache = self.jwks.lock().await;
        let stale = cache.fetched_at.is_none_or(|t| t.elapsed() >= JWKS_MAX_AGE);
        if stale {
            if let Err(e) = self.fetch_jwks(&mut cache).await {
                // A failed refresh keeps the last good keys (signing-key-rollover guidance).
                if cache.keys.is_empty() {
                    return Err(e);
                }
                tracing::warn!(error = %e, "JWKS refresh failed; using the last good keys");
            }
        }
        let Some(kid) = kid else {
            return Ok(cache.keys.iter().map(|k| k.key.clone()).collect());
        };
        let find = |c: &JwksCache| {
            c.keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .map(|k| k.key.clone())
        };
        if let Some(k) = find(&cache) {
            return Ok(vec![k]);
        }
        let may_refetch = cache
            .last_forced
            .is_none_or(|t| t.elapsed() >= FORCED_REFETCH_INTERVAL);
        if may_refetch && !stale {
            cache.last_forced = Some(Instant::now());
            self.fetch_jwks(&mut cache).await?;
            if let Some(k) = find(&cache) {
                return Ok(vec![k]);
            }
        }
        Err(bad(
            "it is signed with a key the identity provider does not publish",
        ))
    }

    /// Checks an ID token: RS256 signature by a published key, `iss` (tenant-specific), `tid`,
    /// `aud`, `exp`/`nbf` (with skew), `iat`, `sub`, `oid` and `nonce`.
    pub async fn validate(&self, id_token: &str, nonce: &str) -> Result<IdClaims, OidcError> {
        let header = id_token
            .split('.')
            .next()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .ok_or_else(|| bad("it is not a JWT"))?;
        // Only RS256 is advertised; `none`, HS256 (public key as secret) and others are refused
        // before any key is touched.
        if header["alg"] != "RS256" {
            return Err(bad(&format!(
                "it is signed with {} instead of RS256",
                header["alg"].as_str().unwrap_or("no algorithm")
            )));
        }
        let candidates = self.keys_for(header["kid"].as_str()).await?;
        let mut v = Validation::new(Algorithm::RS256);
        v.leeway = CLOCK_SKEW_SECS;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.validate_aud = false;
        v.set_required_spec_claims(&["exp"]);
        let mut verified = None;
        let mut last_err = None;
        for key in &candidates {
            match jsonwebtoken::decode::<serde_json::Value>(id_token, key, &v) {
                Ok(data) => {
                    verified = Some(data.claims);
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        let claims = match (verified, last_err) {
            (Some(c), _) => c,
            (None, Some(e)) => {
                return Err(bad(&match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        "it has expired".to_string()
                    }
                    jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                        "it is not valid yet (nbf)".to_string()
                    }
                    jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(c) => {
                        format!("it has no {c} claim")
                    }
                    _ => "its signature does not verify".to_string(),
                }))
            }
            (None, None) => return Err(bad("the identity provider publishes no signing key")),
        };
        let text = |name: &str| {
            claims[name]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let tid = text("tid").ok_or_else(|| bad("it has no tid (tenant) claim"))?;
        let iss = text("iss").ok_or_else(|| bad("it has no iss claim"))?;
        if iss != format!("{}/{}/v2.0", self.authority_url, tid) {
            return Err(bad(&format!("its issuer {iss} is not the expected one")));
        }
        if !tid.eq_ignore_ascii_case(&self.tenant_id) {
            return Err(OidcError::OtherTenant {
                expected: self.tenant_id.clone(),
                found: tid,
            });
        }
        let aud_ok = match &claims["aud"] {
            serde_json::Value::String(a) => a == &self.client_id,
            serde_json::Value::Array(list) => list.iter().any(|a| a == &self.client_id[..]),
            _ => false,
        };
        if !aud_ok {
            return Err(bad("it is not addressed to this application (aud)"));
        }
        // OIDC core 3.1.3.7 items 4-5: with several audiences `azp` must be present, and when
        // present it must be our client id, so a token issued to another party that merely
        // lists us is not taken as ours.
        let several = claims["aud"].as_array().is_some_and(|l| l.len() > 1);
        match claims.get("azp") {
            Some(serde_json::Value::String(azp)) if azp == &self.client_id => {}
            None if !several => {}
            Some(_) => {
                return Err(bad(
                    "it was issued to another application (azp is not this application)",
                ))
            }
            None => {
                return Err(bad(
                    "it names several audiences but no authorized party (azp)",
                ))
            }
        }
        if !claims["iat"].is_number() {
            return Err(bad("it has no iat claim"));
        }
        let sub = text("sub").ok_or_else(|| bad("it has no sub claim"))?;
        match claims["nonce"].as_str() {
            Some(n) if equal(n, nonce) => {}
            _ => return Err(bad("its nonce does not match this sign-in")),
        }
        let oid = text("oid").ok_or_else(|| bad("it has no oid (user object id) claim"))?;
        Ok(IdClaims {
            oid,
            tid,
            sub,
            name: text("name"),
        })
    }
}

/// Constant-time string comparison.
fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_the_s256_of_the_verifier() {
        let (v, c) = pkce_pair();
        assert!(v.len() >= 43);
        assert_eq!(
            c,
            URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(v.as_bytes()))
        );
        assert_ne!(pkce_pair().0, v);
    }
}
