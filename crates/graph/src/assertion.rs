//! The client assertion: a JWT signed with pbx365's private key that proves the app's identity
//! at the token endpoint.
//!
//! Format: https://learn.microsoft.com/entra/identity-platform/certificate-credentials
//! (PS256 + `x5t#S256` in the current revision, RS256 + `x5t` in older ones).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use pbx365_domain::settings::AssertionAlg;
use serde::Serialize;

use crate::keys::{Credential, KeyError};
use crate::secret::SecretString;

/// How long an assertion is valid; Microsoft advises 5–10 minutes.
pub const ASSERTION_LIFETIME_SECS: i64 = 600;

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5t: Option<&'a str>,
    #[serde(rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    x5t_s256: Option<&'a str>,
}

/// The claims of a client assertion.
#[derive(Debug, Serialize)]
pub struct AssertionClaims {
    /// The token endpoint: `{authority}/{tenant}/oauth2/v2.0/token`.
    pub aud: String,
    /// The client id.
    pub iss: String,
    /// The client id again.
    pub sub: String,
    /// A fresh GUID.
    pub jti: String,
    /// Now.
    pub nbf: i64,
    /// Now.
    pub iat: i64,
    /// Now + 10 minutes.
    pub exp: i64,
}

/// The token endpoint URL for a tenant.
pub fn token_endpoint(authority_url: &str, tenant: &str) -> String {
    format!(
        "{}/{}/oauth2/v2.0/token",
        authority_url.trim_end_matches('/'),
        tenant
    )
}

/// Builds and signs a client assertion for `client_id` at `tenant`.
pub fn client_assertion(
    credential: &Credential,
    alg: AssertionAlg,
    authority_url: &str,
    tenant: &str,
    client_id: &str,
    now: DateTime<Utc>,
) -> Result<SecretString, KeyError> {
    client_assertion_for(
        credential,
        alg,
        &token_endpoint(authority_url, tenant),
        client_id,
        now,
    )
}

/// Builds and signs a client assertion for `client_id` addressed to the token endpoint `aud`
/// (as discovery names it: the sign-in's code redemption).
pub fn client_assertion_for(
    credential: &Credential,
    alg: AssertionAlg,
    aud: &str,
    client_id: &str,
    now: DateTime<Utc>,
) -> Result<SecretString, KeyError> {
    let cert = credential.certificate();
    let header = match alg {
        AssertionAlg::PS256 => Header {
            alg: "PS256",
            typ: "JWT",
            x5t: None,
            x5t_s256: Some(&cert.x5t_s256),
        },
        AssertionAlg::RS256 => Header {
            alg: "RS256",
            typ: "JWT",
            x5t: Some(&cert.x5t),
            x5t_s256: None,
        },
    };
    let t = now.timestamp();
    let claims = AssertionClaims {
        aud: aud.to_string(),
        iss: client_id.to_string(),
        sub: client_id.to_string(),
        jti: uuid::Uuid::new_v4().to_string(),
        nbf: t,
        iat: t,
        exp: t + ASSERTION_LIFETIME_SECS,
    };
    let mut signing_input = format!("{}.{}", b64_json(&header), b64_json(&claims));
    let sig = credential.sign(alg, signing_input.as_bytes())?;
    signing_input.push('.');
    signing_input.push_str(&URL_SAFE_NO_PAD.encode(sig));
    Ok(SecretString::new(signing_input))
}

fn b64_json<T: Serialize>(value: &T) -> String {
    // Our header and claims structs hold only strings and integers: serialising cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate_pair;

    fn decode(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn ps256_assertion_verifies_and_carries_the_documented_claims() {
        let pair = generate_pair("pbx.example").unwrap();
        let cred = Credential::from_pem(
            &format!("{}{}", pair.private_key_pem.expose(), pair.certificate_pem),
            "t",
        )
        .unwrap();
        let now = Utc::now();
        let jwt = client_assertion(
            &cred,
            AssertionAlg::PS256,
            "https://login.example/",
            "tid",
            "cid",
            now,
        )
        .unwrap();
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        let h = decode(parts[0]);
        assert_eq!(h["alg"], "PS256");
        assert_eq!(h["x5t#S256"], cred.certificate().x5t_s256.as_str());
        assert!(h.get("x5t").is_none());
        let c = decode(parts[1]);
        assert_eq!(c["aud"], "https://login.example/tid/oauth2/v2.0/token");
        assert_eq!(c["iss"], "cid");
        assert_eq!(c["sub"], "cid");
        assert_eq!(c["exp"].as_i64().unwrap() - c["nbf"].as_i64().unwrap(), 600);

        // An independent verifier (jsonwebtoken) accepts the signature.
        let (_, x509) = x509_parser::parse_x509_certificate(&cred.certificate().der).unwrap();
        let spki = x509.public_key().subject_public_key.data.to_vec();
        let key = jsonwebtoken::DecodingKey::from_rsa_der(&spki);
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::PS256);
        v.set_audience(&["https://login.example/tid/oauth2/v2.0/token"]);
        jsonwebtoken::decode::<serde_json::Value>(jwt.expose(), &key, &v).unwrap();
    }

    #[test]
    fn rs256_assertion_uses_sha1_thumbprint() {
        let pair = generate_pair("pbx.example").unwrap();
        let cred = Credential::from_pem(
            &format!("{}{}", pair.private_key_pem.expose(), pair.certificate_pem),
            "t",
        )
        .unwrap();
        let jwt = client_assertion(
            &cred,
            AssertionAlg::RS256,
            "https://l",
            "t",
            "c",
            Utc::now(),
        )
        .unwrap();
        let h = decode(jwt.expose().split('.').next().unwrap());
        assert_eq!(h["alg"], "RS256");
        assert_eq!(h["x5t"], cred.certificate().x5t.as_str());
        let (_, x509) = x509_parser::parse_x509_certificate(&cred.certificate().der).unwrap();
        let key = jsonwebtoken::DecodingKey::from_rsa_der(
            x509.public_key().subject_public_key.data.as_ref(),
        );
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        v.set_audience(&["https://l/t/oauth2/v2.0/token"]);
        jsonwebtoken::decode::<serde_json::Value>(jwt.expose(), &key, &v).unwrap();
    }
}
