//! The self-signed certificate served with `--tls`, and its SHA-256 fingerprint.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

use crate::error::Error;

/// A TLS acceptor and what clients need to pin it.
#[derive(Clone)]
pub(crate) struct TlsIdentity {
    /// Accepts TLS connections with the generated certificate.
    pub(crate) acceptor: TlsAcceptor,
    /// Lower-case hex SHA-256 of the certificate's DER.
    pub(crate) fingerprint: String,
    /// The certificate in PEM form (what `VDI.get_nbd_info` hands out as `cert`).
    pub(crate) cert_pem: String,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Make a fresh self-signed certificate for `localhost` and `127.0.0.1`.
pub(crate) fn self_signed() -> Result<TlsIdentity, Error> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified =
        rcgen::generate_simple_self_signed(names).map_err(|e| Error::Tls(e.to_string()))?;
    let cert_der: CertificateDer<'static> = certified.cert.der().clone();
    let fingerprint = hex(&Sha256::digest(cert_der.as_ref()));
    let cert_pem = certified.cert.pem();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key)
        .map_err(|e| Error::Tls(e.to_string()))?;
    Ok(TlsIdentity {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        fingerprint,
        cert_pem,
    })
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}
