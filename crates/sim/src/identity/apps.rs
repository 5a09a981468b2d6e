//! App registrations: client id, secret, certificates, redirect URIs, application permissions
//! and whether an admin consented to them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha1::Digest as _;

/// A registered application (and its service principal in the sim's only tenant).
#[derive(Clone)]
pub struct App {
    /// Client (application) id GUID.
    pub client_id: String,
    /// Object id of the service principal (`oid`/`sub` of app-only tokens).
    pub sp_object_id: String,
    /// Display name.
    pub display_name: String,
    /// Registered redirect URIs (must match exactly).
    pub redirect_uris: Vec<String>,
    /// Client secret, if any (never returned or logged).
    pub client_secret: Option<String>,
    /// Uploaded certificates.
    pub certificates: Vec<AppCertificate>,
    /// Permissions in the app registration's required permissions (`User.Read.All`, …).
    pub permissions: Vec<String>,
    /// Whether an admin granted them.
    pub consented: bool,
}

/// A certificate uploaded for an app.
#[derive(Clone)]
pub struct AppCertificate {
    /// base64url SHA-1 thumbprint (`x5t`).
    pub x5t: String,
    /// base64url SHA-256 thumbprint (`x5t#S256`).
    pub x5t_s256: String,
    /// Uppercase hex SHA-1 thumbprint, as the portal shows it.
    pub thumbprint_hex: String,
    /// RSA modulus (big-endian).
    pub n: Vec<u8>,
    /// RSA exponent (big-endian).
    pub e: Vec<u8>,
    /// Validity start, unix seconds.
    pub not_before: i64,
    /// Validity end, unix seconds.
    pub not_after: i64,
}

/// Why a certificate was refused.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// No CERTIFICATE block in the PEM.
    #[error("the body holds no PEM \"CERTIFICATE\" block")]
    NoCertificate,
    /// DER could not be parsed.
    #[error("the certificate cannot be parsed: {0}")]
    Parse(String),
    /// Not an RSA key (Entra's client assertions use RSA).
    #[error("the certificate's public key is not RSA")]
    NotRsa,
}

impl AppCertificate {
    /// Parses the first certificate of a PEM text. Expired certificates are accepted on upload
    /// so tests can exercise AADSTS700027 "The key used is expired".
    pub fn from_pem(pem_text: &str) -> Result<AppCertificate, CertError> {
        let blocks =
            pem::parse_many(pem_text.as_bytes()).map_err(|e| CertError::Parse(e.to_string()))?;
        let block = blocks
            .into_iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or(CertError::NoCertificate)?;
        let der = block.contents();
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| CertError::Parse(e.to_string()))?;
        let (n, e) = super::keys::rsa_components(der).ok_or(CertError::NotRsa)?;
        let sha1 = sha1::Sha1::digest(der);
        Ok(AppCertificate {
            x5t: URL_SAFE_NO_PAD.encode(sha1),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der)),
            thumbprint_hex: sha1.iter().map(|b| format!("{b:02X}")).collect(),
            n,
            e,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }
}

/// Body of `POST /_sim/apps`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewApp {
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// Redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Client secret to accept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// A certificate (PEM) to accept assertions signed by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_pem: Option<String>,
    /// Application permissions (`User.Read.All`, …).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Whether admin consent is already granted.
    #[serde(default)]
    pub consented: bool,
    /// Client id to use (a fresh GUID when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// Body of `PUT /_sim/apps/{id}/permissions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PermissionsUpdate {
    /// Application permissions.
    pub permissions: Vec<String>,
    /// Whether admin consent is granted.
    pub consented: bool,
}

impl App {
    /// Roles in app-only tokens: the permissions, once consented.
    pub fn granted_roles(&self) -> Vec<String> {
        if self.consented {
            self.permissions.clone()
        } else {
            Vec::new()
        }
    }
}
