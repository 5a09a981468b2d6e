//! The read-only LDAPv3 directory for desk phones (issue 14, SPEC §5): the company phonebook
//! and the extensions as `inetOrgPerson` entries under `[phonebook] ldap_base_dn`, on
//! `[phonebook] ldap_listen`, over TLS (LDAPS) when a certificate is configured.
//!
//! The protocol is `ldap3_proto`'s (kanidm's maintained message types and BER codec); this
//! crate decides what the answers are: simple bind with the configured credential (anonymous
//! only when allowed), search with the filters phones send, size limits and the simple paged
//! results control (RFC 2696), and an LDAP error for everything else. A malformed message ends
//! its connection with a notice of disconnection (RFC 4511 §4.4.1); no request can stop the
//! server or keep a connection forever.

mod session;
pub mod tree;

use pbx365_app::App;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

pub use session::{Session, FAILURE_WINDOW, MAX_FAILED_BINDS};

/// Why the LDAP server could not start; each is one sentence.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    /// The address could not be bound.
    #[error("the LDAP directory cannot listen on {addr}: {reason}")]
    Bind { addr: String, reason: String },
    /// The TLS certificate or key could not be used.
    #[error("the LDAP directory cannot use the TLS certificate {cert} with key {key}: {reason}")]
    Tls {
        cert: String,
        key: String,
        reason: String,
    },
}

/// Most connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 256;
/// A bound connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// A connection that has not bound gets less time, so idle sockets cannot hold every slot.
pub const UNBOUND_TIMEOUT: Duration = Duration::from_secs(30);
/// A TLS handshake must finish within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound, not yet serving, LDAP listener (the real port is known before serving).
pub struct Bound {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl Bound {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// `ldaps` with TLS, else `ldap`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "ldaps"
        } else {
            "ldap"
        }
    }
}

/// Binds `addr`, loading the certificate and key (PEM) for LDAPS when given.
pub async fn bind(addr: &str, tls: Option<(&Path, &Path)>) -> Result<Bound, LdapError> {
    let listener = TcpListener::bind(addr).await.map_err(|e| LdapError::Bind {
        addr: addr.to_string(),
        reason: e.to_string(),
    })?;
    let tls = match tls {
        Some((cert, key)) => Some(acceptor(cert, key).map_err(|reason| LdapError::Tls {
            cert: cert.display().to_string(),
            key: key.display().to_string(),
            reason,
        })?),
        None => None,
    };
    Ok(Bound { listener, tls })
}

fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let certs = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("the certificate file holds no certificate".into());
    }
    let key = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .map_err(|e| e.to_string())?
        .ok_or("the key file holds no private key")?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| e.to_string())?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves the directory of `app` on `bound` until `shutdown` resolves. Each connection runs in
/// its own task, so nothing one client sends reaches another.
pub async fn serve(bound: Bound, app: App, shutdown: impl Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let directory = Arc::new(session::Directory::new(app));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = bound.listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors and the like: wait a moment rather than spin.
                tracing::warn!(error = %e, "LDAP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "LDAP connection refused: too many connections");
            continue;
        };
        let directory = directory.clone();
        let tls = bound.tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => Session::new(directory, peer.ip()).run(s).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "LDAPS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "LDAPS handshake timed out"),
                    }
                }
                None => Session::new(directory, peer.ip()).run(stream).await,
            }
        });
    }
}
