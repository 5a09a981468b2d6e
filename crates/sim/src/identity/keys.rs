//! The simulator's token signing keys and their JWKS.
//!
//! Entra publishes more than one key at a time and rolls them without notice; relying parties
//! must accept any published key and re-fetch the JWKS on an unknown `kid`
//! (https://learn.microsoft.com/entra/identity-platform/signing-key-rollover).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use sha1::Digest;

/// One RSA signing key with its self-signed certificate (for `x5t`/`x5c`).
pub struct SigningKey {
    /// Key id; like Entra's v1 keys it equals the certificate's SHA-1 thumbprint (`x5t`).
    pub kid: String,
    /// base64url SHA-1 thumbprint of the certificate.
    pub x5t: String,
    /// Certificate DER, standard base64 (JWKS `x5c`).
    pub x5c: String,
    /// RSA modulus, base64url.
    pub n: String,
    /// RSA exponent, base64url.
    pub e: String,
    /// Private key for signing (never logged).
    pub encoding: EncodingKey,
    /// Public key for verifying our own tokens.
    pub decoding: DecodingKey,
    /// Unix time after which a rotated-out key is no longer published.
    pub retire_at: Option<i64>,
}

/// Error generating a key.
#[derive(Debug, thiserror::Error)]
#[error("signing key generation failed: {0}")]
pub struct KeyError(pub String);

impl SigningKey {
    /// Generates a fresh RSA-2048 key and certificate.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let err = |e: &dyn std::fmt::Display| KeyError(e.to_string());
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).map_err(|e| err(&e))?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| err(&e))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "accounts.m365-sim.local");
        let cert = params.self_signed(&kp).map_err(|e| err(&e))?;
        let der = cert.der().to_vec();
        let x5t = URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&der));
        let (n, e) = rsa_components(&der).ok_or_else(|| KeyError("no RSA key in cert".into()))?;
        let encoding =
            EncodingKey::from_rsa_pem(kp.serialize_pem().as_bytes()).map_err(|e| err(&e))?;
        let decoding = DecodingKey::from_rsa_raw_components(&n, &e);
        Ok(SigningKey {
            kid: x5t.clone(),
            x5t,
            x5c: STANDARD.encode(&der),
            n: URL_SAFE_NO_PAD.encode(&n),
            e: URL_SAFE_NO_PAD.encode(&e),
            encoding,
            decoding,
            retire_at: None,
        })
    }

    /// The JWKS entry.
    pub fn jwk(&self, issuer: &str) -> serde_json::Value {
        serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.x5t,
            "n": self.n,
            "e": self.e,
            "x5c": [self.x5c],
            "issuer": issuer,
        })
    }
}

/// Modulus and exponent (big-endian, no leading zero) of an RSA certificate's public key.
pub fn rsa_components(cert_der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    match cert.public_key().parsed().ok()? {
        x509_parser::public_key::PublicKey::RSA(rsa) => Some((
            strip_zeros(rsa.modulus).to_vec(),
            strip_zeros(rsa.exponent).to_vec(),
        )),
        _ => None,
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[i..]
}

/// The published keys; the first one signs.
pub struct KeySet {
    keys: Vec<SigningKey>,
}

impl KeySet {
    /// A signing key plus a second published key, as Entra always lists more than one.
    pub fn generate() -> Result<KeySet, KeyError> {
        Ok(KeySet {
            keys: vec![SigningKey::generate()?, SigningKey::generate()?],
        })
    }

    /// The key that signs new tokens.
    pub fn current(&self) -> &SigningKey {
        &self.keys[0]
    }

    /// A published key by `kid`.
    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        let now = chrono::Utc::now().timestamp();
        self.keys
            .iter()
            .find(|k| k.kid == kid && k.retire_at.is_none_or(|t| t > now))
    }

    /// Published keys (not yet retired).
    pub fn published(&self) -> impl Iterator<Item = &SigningKey> {
        let now = chrono::Utc::now().timestamp();
        self.keys
            .iter()
            .filter(move |k| k.retire_at.is_none_or(|t| t > now))
    }

    /// Signs with a new key from now on; older keys stay published for `grace_secs`.
    pub fn rotate(&mut self, new_key: SigningKey, grace_secs: u64) {
        let now = chrono::Utc::now().timestamp();
        self.keys.retain(|k| k.retire_at.is_none_or(|t| t > now));
        for k in &mut self.keys {
            if k.retire_at.is_none() {
                k.retire_at = Some(now + grace_secs as i64);
            }
        }
        self.keys.insert(0, new_key);
    }
}
