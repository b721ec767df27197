//! HTTPS for the API, the web page and the S3 endpoint (rustls).
//!
//! The certificate chain and its private key come from PEM files
//! (`--tls-cert`, `--tls-key`), read once at start so that a wrong path, a
//! file that holds no certificate, or a key that does not match fails the
//! start with a clear line instead of every handshake later. Only HTTP/1.1
//! is offered, as the servers speak. The handshake runs in the
//! connection's own task, bounded by [`HANDSHAKE_TIMEOUT`], so a client
//! that connects and says nothing holds one connection slot for a while,
//! never the accept loop.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;

/// How long a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the certificate or the key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file cannot be read or parsed.
    #[error("cannot read the TLS certificate {}: {reason}", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key file cannot be read, or holds no private key.
    #[error("cannot read the TLS private key {}: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key does not go with the certificate, or rustls refuses them.
    #[error("cannot use the TLS certificate and key: {0}")]
    Config(String),
}

/// The acceptor for the certificate chain in `cert` and the key in `key`
/// (PKCS#8, PKCS#1 or SEC1), both PEM.
///
/// # Errors
/// [`TlsError`] naming the file and what is wrong with it.
pub fn load(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let cert_error = |reason: String| TlsError::Certificate {
        path: cert.to_owned(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("it holds no PEM certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_owned(),
        reason: e.to_string(),
    })?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
