//! The RSA key pair and self-signed certificate pbx365 signs client assertions with, and where
//! they live on disk.
//!
//! Microsoft's certificate credentials: https://learn.microsoft.com/entra/identity-platform/certificate-credentials
//! One file per slot holds the private key and its certificate, so promoting a new pair is one
//! atomic rename. The private key never leaves this module except as the PEM written to disk.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use pbx365_domain::settings::AssertionAlg;
use sha1::Digest as _;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, Zeroizing};

use crate::secret::SecretString;

/// Days before a certificate's expiry at which pbx365 warns (console banner, log, mail).
pub const EXPIRY_WARNING_DAYS: [u32; 4] = [30, 14, 7, 1];

/// How long a generated certificate is valid.
pub const CERTIFICATE_VALIDITY_DAYS: i64 = 730;

/// Something wrong with the key pair or its file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No key pair exists yet.
    #[error("no key pair has been generated yet: click \"Generate new key pair\" on the Microsoft 365 Configure page or run `pbx365 m365 keygen`")]
    Missing,
    /// The key file's mode lets other users read it.
    #[error("the private key file {path} is readable by other users (mode {mode:04o}): run chmod 600 {path}")]
    ReadableByOthers {
        /// The key file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file's mode lets other users change it.
    #[error("the private key file {path} is writable by other users (mode {mode:04o}): run chmod 600 {path}")]
    WritableByOthers {
        /// The key file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Reading or writing a file failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What we tried.
        action: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file does not hold what it should.
    #[error("{path} does not hold a usable private key and certificate ({what}): generate a new key pair")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        what: String,
    },
    /// Key and certificate are from different pairs.
    #[error("the private key and the certificate in {path} do not belong together: generate a new key pair and upload its public_key.pem")]
    Mismatch {
        /// The file.
        path: String,
    },
    /// The crypto library refused to generate or sign.
    #[error("cannot {0} with the RSA key (crypto library error)")]
    Crypto(&'static str),
    /// The host name cannot go into a certificate.
    #[error("'{0}' cannot be used as the certificate's host name: set public_url to the PBX's public https URL")]
    BadHost(String),
}

/// What the certificate says about itself (everything public).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// PEM (`-----BEGIN CERTIFICATE-----`), the `public_key.pem` admins upload to Azure.
    pub pem: String,
    /// DER bytes.
    pub der: Vec<u8>,
    /// base64url SHA-1 thumbprint of the DER (`x5t`).
    pub x5t: String,
    /// base64url SHA-256 thumbprint of the DER (`x5t#S256`).
    pub x5t_s256: String,
    /// Upper-case hex SHA-1 thumbprint, as the Azure portal shows it.
    pub thumbprint_hex: String,
    /// Subject distinguished name.
    pub subject: String,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
}

impl CertificateInfo {
    /// Parses a PEM certificate (first CERTIFICATE block).
    pub fn from_pem(pem_text: &str) -> Result<Self, String> {
        let block = pem::parse_many(pem_text)
            .map_err(|e| format!("not PEM: {e}"))?
            .into_iter()
            .find(|p| p.tag() == "CERTIFICATE")
            .ok_or_else(|| "no CERTIFICATE block".to_string())?;
        Self::from_der(block.contents())
    }

    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let ts = |t: x509_parser::time::ASN1Time| {
            DateTime::<Utc>::from_timestamp(t.timestamp(), 0).unwrap_or_default()
        };
        let sha1 = sha1::Sha1::digest(der);
        let sha256 = sha2::Sha256::digest(der);
        Ok(CertificateInfo {
            pem: pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec())).replace("\r\n", "\n"),
            der: der.to_vec(),
            x5t: URL_SAFE_NO_PAD.encode(sha1),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha256),
            thumbprint_hex: sha1.iter().map(|b| format!("{b:02X}")).collect(),
            subject: cert.subject().to_string(),
            not_before: ts(cert.validity().not_before),
            not_after: ts(cert.validity().not_after),
        })
    }

    /// The RSAPublicKey DER inside the certificate.
    fn public_key_bits(&self) -> Result<Vec<u8>, String> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(&self.der).map_err(|e| e.to_string())?;
        Ok(cert.public_key().subject_public_key.data.to_vec())
    }

    /// Which expiry warning applies at `now`.
    pub fn expiry(&self, now: DateTime<Utc>) -> ExpiryStatus {
        expiry_status(self.not_after, now)
    }
}

/// Where a certificate stands relative to its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryStatus {
    /// More than 30 days left.
    Valid {
        /// Whole days left.
        days_left: i64,
    },
    /// Within one of the warning thresholds (30/14/7/1 days).
    Warning {
        /// The smallest threshold reached: 30, 14, 7 or 1.
        threshold_days: u32,
        /// Whole days left (0 means less than a day).
        days_left: i64,
    },
    /// Past notAfter: Microsoft refuses assertions signed with it.
    Expired,
}

/// The warning threshold (30/14/7/1 days) that applies at `now` for a certificate ending at `not_after`.
pub fn expiry_status(not_after: DateTime<Utc>, now: DateTime<Utc>) -> ExpiryStatus {
    if now >= not_after {
        return ExpiryStatus::Expired;
    }
    let left = not_after - now;
    let days_left = left.num_days();
    let threshold = EXPIRY_WARNING_DAYS
        .iter()
        .rev()
        .find(|t| left <= Duration::days(i64::from(**t)))
        .copied();
    match threshold {
        Some(threshold_days) => ExpiryStatus::Warning {
            threshold_days,
            days_left,
        },
        None => ExpiryStatus::Valid { days_left },
    }
}

/// The threshold (30/14/7/1) to warn about now, if it is smaller than the last one warned about;
/// callers persist the returned value so each warning goes out once.
pub fn expiry_warning_due(
    not_after: DateTime<Utc>,
    now: DateTime<Utc>,
    last_warned: Option<u32>,
) -> Option<u32> {
    let threshold = match expiry_status(not_after, now) {
        ExpiryStatus::Valid { .. } => return None,
        ExpiryStatus::Warning { threshold_days, .. } => threshold_days,
        ExpiryStatus::Expired => 0,
    };
    match last_warned {
        Some(last) if last <= threshold => None,
        _ => Some(threshold),
    }
}

/// A private key with its certificate, ready to sign client assertions.
pub struct Credential {
    key: RsaKeyPair,
    cert: CertificateInfo,
}

impl fmt::Debug for Credential {
    // The private key is never printed, only the public certificate's identity.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("subject", &self.cert.subject)
            .field("x5t#S256", &self.cert.x5t_s256)
            .field("not_after", &self.cert.not_after)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

impl Credential {
    /// Parses PEM text holding a private key (PKCS#8 or PKCS#1) and a certificate, and checks they match.
    pub fn from_pem(text: &str, origin: &str) -> Result<Self, KeyError> {
        let malformed = |what: String| KeyError::Malformed {
            path: origin.to_string(),
            what,
        };
        let blocks = pem::parse_many(text).map_err(|e| malformed(format!("not PEM: {e}")))?;
        let mut key = None;
        let mut cert = None;
        for block in blocks {
            let tag = block.tag().to_string();
            let mut der = Zeroizing::new(block.into_contents());
            match tag.as_str() {
                "PRIVATE KEY" => {
                    key = Some(
                        RsaKeyPair::from_pkcs8(&der)
                            .map_err(|e| malformed(format!("private key: {e}")))?,
                    )
                }
                "RSA PRIVATE KEY" => {
                    key = Some(
                        RsaKeyPair::from_der(&der)
                            .map_err(|e| malformed(format!("private key: {e}")))?,
                    )
                }
                "CERTIFICATE" if cert.is_none() => {
                    cert = Some(CertificateInfo::from_der(&der).map_err(malformed)?)
                }
                _ => {}
            }
            der.zeroize();
        }
        let key = key.ok_or_else(|| malformed("no PRIVATE KEY block".into()))?;
        let cert = cert.ok_or_else(|| malformed("no CERTIFICATE block".into()))?;
        if cert.public_key_bits().map_err(malformed)? != key.public_key().as_ref() {
            return Err(KeyError::Mismatch {
                path: origin.to_string(),
            });
        }
        Ok(Credential { key, cert })
    }

    /// The certificate (public).
    pub fn certificate(&self) -> &CertificateInfo {
        &self.cert
    }

    /// Signs `message` with RSA-PSS/SHA-256 (PS256) or RSA PKCS#1 v1.5/SHA-256 (RS256).
    pub fn sign(&self, alg: AssertionAlg, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let padding: &'static dyn signature::RsaEncoding = match alg {
            AssertionAlg::PS256 => &signature::RSA_PSS_SHA256,
            AssertionAlg::RS256 => &signature::RSA_PKCS1_SHA256,
        };
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(padding, &SystemRandom::new(), message, &mut sig)
            .map_err(|_| KeyError::Crypto("sign"))?;
        Ok(sig)
    }
}

/// A freshly generated pair: the private key PEM (secret) and the certificate PEM (public).
pub struct GeneratedPair {
    /// PKCS#8 `PRIVATE KEY` PEM.
    pub private_key_pem: SecretString,
    /// `CERTIFICATE` PEM.
    pub certificate_pem: String,
}

impl fmt::Debug for GeneratedPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedPair")
            .field("private_key_pem", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// The host part of a URL or `host:port` (what the certificate subject names).
pub fn host_of(public_url: &str) -> String {
    let rest = public_url.split_once("://").map_or(public_url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default().to_string();
    }
    authority.split(':').next().unwrap_or_default().to_string()
}

/// Generates an RSA 2048 key and a self-signed X.509 v3 certificate valid 2 years naming `host`.
pub fn generate_pair(host: &str) -> Result<GeneratedPair, KeyError> {
    let now = Utc::now();
    generate_pair_valid(
        host,
        now - Duration::minutes(5),
        now + Duration::days(CERTIFICATE_VALIDITY_DAYS),
    )
}

/// Like [`generate_pair`] with an explicit validity window (tests use it for expired certificates).
pub fn generate_pair_valid(
    host: &str,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<GeneratedPair, KeyError> {
    let key =
        RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Crypto("generate a key"))?;
    let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key)
        .map_err(|_| KeyError::Crypto("export the key"))?;
    let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
    let certificate_pem = self_signed_certificate(&pkcs8, host, not_before, not_after)?;
    Ok(GeneratedPair {
        private_key_pem: SecretString::new(pem_encode("PRIVATE KEY", &pkcs8)),
        certificate_pem,
    })
}

/// A self-signed certificate over the PKCS#8 RSA key `pkcs8`, subject CN = `host`.
pub fn self_signed_certificate(
    pkcs8: &[u8],
    host: &str,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<String, KeyError> {
    let host = host.trim();
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(KeyError::BadHost(host.to_string()));
    }
    // rcgen keeps its own copy of the DER for the few milliseconds of signing; it is dropped
    // (not zeroized, rcgen offers no way) when this function returns.
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8);
    let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256)
        .map_err(|_| KeyError::Crypto("load the key for the certificate"))?;
    // A SAN is informative only (Entra matches on the thumbprint); skip it if the host is not a DNS name.
    let mut params = rcgen::CertificateParams::new(vec![host.to_string()]).unwrap_or_default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, host);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "pbx365");
    params.not_before = std::time::SystemTime::from(not_before).into();
    params.not_after = std::time::SystemTime::from(not_after).into();
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).map_err(|_| KeyError::Crypto("draw a serial number"))?;
    serial[0] &= 0x7f; // positive INTEGER
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params
        .self_signed(&signer)
        .map_err(|_| KeyError::Crypto("sign the certificate"))?;
    Ok(cert.pem().replace("\r\n", "\n"))
}

fn pem_encode(tag: &str, der: &[u8]) -> String {
    let b64 = Zeroizing::new(STANDARD.encode(der));
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str(&format!("-----BEGIN {tag}-----\n"));
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {tag}-----\n"));
    out
}

/// Which stored pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The pair tokens are acquired with.
    Active,
    /// A newer pair waiting for its first token (rotation).
    Pending,
}

/// Where the key pairs live: `{data_dir}/m365/` (mode 0700), one 0600 file per slot.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
}

/// What [`KeyStore::generate`] did.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The new certificate, to offer as `public_key.pem`.
    pub certificate: CertificateInfo,
    /// `Active` for a first pair, `Pending` when it waits to replace the active one.
    pub slot: Slot,
}

impl KeyStore {
    /// The key store under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        KeyStore {
            dir: data_dir.join("m365"),
        }
    }

    /// The directory holding the key files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of a slot (private key + certificate PEM).
    pub fn path(&self, slot: Slot) -> PathBuf {
        self.dir.join(match slot {
            Slot::Active => "credential.pem",
            Slot::Pending => "credential.pending.pem",
        })
    }

    /// Whether a slot holds a file.
    pub fn exists(&self, slot: Slot) -> bool {
        self.path(slot).exists()
    }

    /// Generates a pair for `host`: it becomes active when none exists yet, otherwise pending
    /// (the active one keeps working until the pending one has produced a token).
    pub fn generate(&self, host: &str) -> Result<Generated, KeyError> {
        let slot = if self.exists(Slot::Active) {
            Slot::Pending
        } else {
            Slot::Active
        };
        let pair = generate_pair(host)?;
        self.install(slot, &pair)?;
        let certificate = CertificateInfo::from_pem(&pair.certificate_pem).map_err(|what| {
            KeyError::Malformed {
                path: self.path(slot).display().to_string(),
                what,
            }
        })?;
        tracing::info!(slot = ?slot, x5t_s256 = %certificate.x5t_s256, "generated a new Microsoft 365 key pair");
        Ok(Generated { certificate, slot })
    }

    /// Generates a pending pair for `host` (rotation), returning its certificate PEM.
    pub fn generate_pending(&self, host: &str) -> Result<String, KeyError> {
        let pair = generate_pair(host)?;
        self.install(Slot::Pending, &pair)?;
        Ok(pair.certificate_pem)
    }

    /// Writes a pair into a slot (file 0600 in a 0700 directory, replaced atomically).
    pub fn install(&self, slot: Slot, pair: &GeneratedPair) -> Result<(), KeyError> {
        self.ensure_dir()?;
        let mut text = Zeroizing::new(String::new());
        text.push_str(pair.private_key_pem.expose());
        text.push_str(&pair.certificate_pem);
        if !pair.certificate_pem.ends_with('\n') {
            text.push('\n');
        }
        // Refuse nonsense before it replaces a working file.
        Credential::from_pem(&text, &self.path(slot).display().to_string())?;
        let target = self.path(slot);
        let tmp = self.dir.join(format!(".{}.tmp", uuid::Uuid::new_v4()));
        let io = |action, path: &Path| {
            let path = path.display().to_string();
            move |source| KeyError::Io {
                action,
                path,
                source,
            }
        };
        {
            let mut file = open_private(&tmp).map_err(io("create", &tmp))?;
            file.write_all(text.as_bytes()).map_err(io("write", &tmp))?;
            file.sync_all().map_err(io("write", &tmp))?;
        }
        std::fs::rename(&tmp, &target).map_err(io("replace", &target))?;
        Ok(())
    }

    /// Loads a slot; `Ok(None)` when it holds no file. Refuses a key file other users can read.
    pub fn load(&self, slot: Slot) -> Result<Option<Credential>, KeyError> {
        let path = self.path(slot);
        let shown = path.display().to_string();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(KeyError::Io {
                    action: "read",
                    path: shown,
                    source,
                })
            }
        };
        check_mode(&meta, &shown)?;
        let bytes = Zeroizing::new(std::fs::read(&path).map_err(|source| KeyError::Io {
            action: "read",
            path: shown.clone(),
            source,
        })?);
        let text = std::str::from_utf8(&bytes).map_err(|_| KeyError::Malformed {
            path: shown.clone(),
            what: "not text".into(),
        })?;
        Credential::from_pem(text, &shown).map(Some)
    }

    /// Checks that no key file (active, pending, previous) is readable or writable by other
    /// users; `pbx365 serve` calls this at start-up and refuses to start otherwise.
    pub fn check_file_modes(&self) -> Result<(), KeyError> {
        for path in [
            self.path(Slot::Active),
            self.path(Slot::Pending),
            self.dir.join("credential.previous.pem"),
        ] {
            match std::fs::metadata(&path) {
                Ok(meta) => check_mode(&meta, &path.display().to_string())?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(KeyError::Io {
                        action: "read",
                        path: path.display().to_string(),
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// Loads the active pair, or says none was generated.
    pub fn load_active(&self) -> Result<Credential, KeyError> {
        self.load(Slot::Active)?.ok_or(KeyError::Missing)
    }

    /// Makes the pending pair the active one (after it produced a token). The old active pair is
    /// kept as `credential.previous.pem` for the record.
    pub fn promote(&self) -> Result<(), KeyError> {
        let pending = self.path(Slot::Pending);
        if !pending.exists() {
            return Ok(());
        }
        let active = self.path(Slot::Active);
        if active.exists() {
            let previous = self.dir.join("credential.previous.pem");
            std::fs::rename(&active, &previous).map_err(|source| KeyError::Io {
                action: "archive",
                path: active.display().to_string(),
                source,
            })?;
        }
        std::fs::rename(&pending, &active).map_err(|source| KeyError::Io {
            action: "promote",
            path: pending.display().to_string(),
            source,
        })?;
        tracing::info!("the new Microsoft 365 key pair produced a token and is now the active one");
        Ok(())
    }

    /// Drops the pending pair.
    pub fn discard_pending(&self) -> Result<(), KeyError> {
        match std::fs::remove_file(self.path(Slot::Pending)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(KeyError::Io {
                action: "delete",
                path: self.path(Slot::Pending).display().to_string(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// The certificate admins should upload: the pending one if a rotation is under way, else the active one.
    pub fn certificate_for_upload(&self) -> Result<Option<CertificateInfo>, KeyError> {
        for slot in [Slot::Pending, Slot::Active] {
            if let Some(c) = self.load(slot)? {
                return Ok(Some(c.certificate().clone()));
            }
        }
        Ok(None)
    }

    fn ensure_dir(&self) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            action: "create directory",
            path: self.dir.display().to_string(),
            source,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(io)?;
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io)?;
        }
        #[cfg(not(unix))]
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        Ok(())
    }
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn check_mode(meta: &std::fs::Metadata, path: &str) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o044 != 0 {
        return Err(KeyError::ReadableByOthers {
            path: path.to_string(),
            mode,
        });
    }
    if mode & 0o022 != 0 {
        return Err(KeyError::WritableByOthers {
            path: path.to_string(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_meta: &std::fs::Metadata, _path: &str) -> Result<(), KeyError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pair_loads_and_its_certificate_names_the_host() {
        let pair = generate_pair("pbx.example.com").unwrap();
        let text = format!("{}{}", pair.private_key_pem.expose(), pair.certificate_pem);
        let cred = Credential::from_pem(&text, "test").unwrap();
        let cert = cred.certificate();
        assert!(
            cert.subject.contains("CN=pbx.example.com"),
            "{}",
            cert.subject
        );
        let days = (cert.not_after - cert.not_before).num_days();
        assert!((729..=731).contains(&days), "{days}");
        assert_eq!(cert.x5t.len(), 27);
        assert_eq!(cert.x5t_s256.len(), 43);
        assert!(!format!("{cred:?}").contains("PRIVATE"));
        assert!(cred.sign(AssertionAlg::PS256, b"x").unwrap().len() == 256);
    }

    #[test]
    fn key_from_another_pair_is_a_mismatch() {
        let a = generate_pair("a.example").unwrap();
        let b = generate_pair("b.example").unwrap();
        let text = format!("{}{}", a.private_key_pem.expose(), b.certificate_pem);
        assert!(matches!(
            Credential::from_pem(&text, "x"),
            Err(KeyError::Mismatch { .. })
        ));
    }

    #[test]
    fn expiry_thresholds_are_30_14_7_1_days() {
        let now = Utc::now();
        let at = |d: i64, h: i64| expiry_status(now + Duration::days(d) + Duration::hours(h), now);
        assert!(matches!(at(45, 0), ExpiryStatus::Valid { days_left: 45 }));
        assert!(matches!(
            at(30, 0),
            ExpiryStatus::Warning {
                threshold_days: 30,
                ..
            }
        ));
        assert!(matches!(
            at(20, 0),
            ExpiryStatus::Warning {
                threshold_days: 30,
                ..
            }
        ));
        assert!(matches!(
            at(14, 0),
            ExpiryStatus::Warning {
                threshold_days: 14,
                ..
            }
        ));
        assert!(matches!(
            at(6, 23),
            ExpiryStatus::Warning {
                threshold_days: 7,
                ..
            }
        ));
        assert!(matches!(
            at(0, 5),
            ExpiryStatus::Warning {
                threshold_days: 1,
                days_left: 0
            }
        ));
        assert_eq!(at(0, -1), ExpiryStatus::Expired);
    }

    #[test]
    fn each_expiry_warning_is_due_once() {
        let now = Utc::now();
        let end = now + Duration::days(10);
        assert_eq!(expiry_warning_due(end, now, None), Some(14));
        assert_eq!(expiry_warning_due(end, now, Some(30)), Some(14));
        assert_eq!(expiry_warning_due(end, now, Some(14)), None);
        assert_eq!(
            expiry_warning_due(end, now + Duration::days(4), Some(14)),
            Some(7)
        );
        assert_eq!(
            expiry_warning_due(end, now + Duration::days(11), Some(1)),
            Some(0),
            "expired"
        );
        assert_eq!(
            expiry_warning_due(now + Duration::days(90), now, None),
            None
        );
    }

    #[test]
    fn host_is_taken_from_the_public_url() {
        assert_eq!(host_of("https://pbx.example.com:8443/x"), "pbx.example.com");
        assert_eq!(host_of("http://127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(host_of("https://[::1]:9/"), "::1");
        assert_eq!(host_of("pbx.local"), "pbx.local");
    }
}
