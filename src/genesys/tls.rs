//! TLS and the HTTP client every outgoing request uses (Genesys and the
//! webhooks): rustls with the `ring` provider and the Mozilla root set
//! (webpki-roots). No OpenSSL, nothing from the system.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// Errors building a TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM certificate could not be read.
    #[error("bad PEM certificate: {0}")]
    Pem(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// An HTTP client for the current thread (awc clients are `!Send`):
/// `timeout` bounds connecting, the TLS handshake and each request;
/// redirects are not followed; it names itself `queuewatch/<version>`.
pub fn http_client(tls: &Arc<ClientConfig>, timeout: std::time::Duration) -> awc::Client {
    let connector = awc::Connector::new()
        .rustls_0_23(tls.clone())
        .timeout(timeout)
        .handshake_timeout(timeout);
    awc::Client::builder()
        .connector(connector)
        .timeout(timeout)
        .disable_redirects()
        .add_default_header((
            awc::http::header::USER_AGENT,
            concat!("queuewatch/", env!("CARGO_PKG_VERSION")),
        ))
        .finish()
}

/// Builds the client TLS configuration: webpki roots plus `extra_roots_pem`
/// (PEM certificates, e.g. a private CA in front of Genesys, or a test CA).
pub fn client_config(extra_roots_pem: &[u8]) -> Result<Arc<ClientConfig>, TlsError> {
    // Also make ring the process default, so that any rustls user in the
    // process that builds a config without naming a provider cannot panic.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if !extra_roots_pem.is_empty() {
        for cert in CertificateDer::pem_slice_iter(extra_roots_pem) {
            let cert = cert.map_err(|e| TlsError::Pem(e.to_string()))?;
            roots.add(cert)?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
