//! Host certificates: self-signed, as a XenServer host's default server certificate, served
//! by HTTPS with `--tls` and by NBD on networks of purpose `nbd`; and their SHA-256
//! fingerprints.
//!
//! The certificates carry `basicConstraints CA:TRUE`, so that a client can take one as its own
//! trust anchor (qemu's `tls-creds-x509` refuses a `ca-cert.pem` without it).

use std::path::Path;
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
    /// The certificate's common name.
    pub(crate) subject: String,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("subject", &self.subject)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// The identity kept as `<stem>.crt.der` and `<stem>.key.der` (PKCS#8) in `dir`; when missing,
/// a fresh self-signed certificate with common name `subject`, valid for `subject`, every name
/// or IP address of `alt_names`, `localhost` and `127.0.0.1`, saved there (temporary names,
/// then renamed). A host thus keeps its certificate across restarts of a simulator with a
/// state directory, as a real host does.
pub(crate) fn stored_host_identity(
    dir: &Path,
    stem: &str,
    subject: &str,
    alt_names: &[String],
) -> Result<TlsIdentity, Error> {
    let cert_path = dir.join(format!("{stem}.crt.der"));
    let key_path = dir.join(format!("{stem}.key.der"));
    if let (Ok(cert), Ok(key)) = (std::fs::read(&cert_path), std::fs::read(&key_path)) {
        return identity_from(cert, key, subject);
    }
    let (cert, key) = self_signed(subject, alt_names)?;
    let io_error = |path: &Path, e: std::io::Error| Error::Tls(format!("{}: {e}", path.display()));
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    for (path, bytes) in [(&key_path, &key), (&cert_path, &cert)] {
        let temporary = path.with_extension("der.tmp");
        std::fs::write(&temporary, bytes)
            .and_then(|()| std::fs::rename(&temporary, path))
            .map_err(|e| io_error(path, e))?;
    }
    identity_from(cert, key, subject)
}

/// A self-signed CA certificate for `subject` and `alt_names` (plus `localhost` and
/// `127.0.0.1`) and its PKCS#8 key, both DER.
fn self_signed(subject: &str, alt_names: &[String]) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let tls_error = |e: &dyn std::fmt::Display| Error::Tls(e.to_string());
    let mut names: Vec<String> = vec![subject.to_owned()];
    for name in alt_names
        .iter()
        .map(String::as_str)
        .chain(["localhost", "127.0.0.1"])
    {
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| tls_error(&e))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, subject);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key_pair = rcgen::KeyPair::generate().map_err(|e| tls_error(&e))?;
    let cert = params.self_signed(&key_pair).map_err(|e| tls_error(&e))?;
    Ok((cert.der().to_vec(), key_pair.serialize_der()))
}

/// An identity from a certificate and its PKCS#8 key, both DER.
fn identity_from(cert: Vec<u8>, key: Vec<u8>, subject: &str) -> Result<TlsIdentity, Error> {
    let tls_error = |e: &dyn std::fmt::Display| Error::Tls(e.to_string());
    let fingerprint = hex(&Sha256::digest(&cert));
    let cert_pem = pem("CERTIFICATE", &cert);
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(cert)], key)
        .map_err(|e| tls_error(&e))?;
    Ok(TlsIdentity {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        fingerprint,
        cert_pem,
        subject: subject.to_owned(),
    })
}

/// PEM armour: base64 in lines of 64 characters.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
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
