//! The simulator's own CA and server certificate, generated at start.
//!
//! Microsoft's client libraries insist on https authorities, so the sim serves HTTPS by default
//! with a certificate for `127.0.0.1`/`localhost` issued by a CA that clients are told to trust
//! (`--ca-out`, [`crate::SimHandle::ca_pem`]).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

/// The generated CA and the server certificate it issued.
pub struct ServerTls {
    /// CA certificate, PEM.
    pub ca_pem: String,
    /// Server certificate chain (leaf then CA), PEM.
    pub chain_pem: String,
    /// Server private key, PKCS#8 PEM (never logged).
    pub key_pem: String,
}

/// Generates a fresh CA and a server certificate for 127.0.0.1, ::1 and localhost.
pub fn generate() -> Result<ServerTls, rcgen::Error> {
    install_crypto_provider();
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "m365-sim local CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key)?;

    let leaf_key = KeyPair::generate()?;
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()])?;
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "m365-sim");
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key)?;

    Ok(ServerTls {
        ca_pem: ca.pem(),
        chain_pem: format!("{}{}", leaf.pem(), ca.pem()),
        key_pem: leaf_key.serialize_pem(),
    })
}

/// Installs aws-lc-rs as rustls' process-wide provider (reqwest's `-no-provider` TLS feature
/// expects one to be installed; a provider installed earlier is kept).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A reqwest client (rustls, aws-lc-rs) that trusts `ca_pem` when given.
pub fn client_trusting(ca_pem: Option<&str>) -> Result<reqwest::Client, reqwest::Error> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .pool_idle_timeout(std::time::Duration::from_secs(30));
    if let Some(pem) = ca_pem {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?);
    }
    builder.build()
}
