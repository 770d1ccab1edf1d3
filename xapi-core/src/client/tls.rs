//! TLS policy: how a server's certificate is judged, and the rustls configurations that
//! enforce it.
//!
//! XAPI hosts serve self-signed certificates and are usually addressed by IP, so the practical
//! model is pinning by SHA-256 fingerprint ([`TlsPolicy::Pinned`]), obtained from XAPI's
//! `Certificate.fingerprint_sha256`, from trust on first use ([`fetch_fingerprint`]) or from the
//! thumbprint header of a `HOST_IS_SLAVE` answer.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::connection;
use super::endpoint::{Endpoint, Target};
use super::fingerprint::Sha256Fingerprint;
use crate::Error;

/// How the server's certificate is judged on `https://` connections.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsPolicy {
    /// Verify the chain against the web PKI roots (webpki-roots) and check the host name.
    Verified,
    /// Verify the chain against the CA certificates of this PEM bundle, and the host name.
    CustomCa(Vec<u8>),
    /// Accept exactly the certificate whose DER encoding has this SHA-256 fingerprint,
    /// whatever the name it carries. Handshake signatures are still verified, so the server must
    /// hold the certificate's private key.
    Pinned(Sha256Fingerprint),
    /// Accept any certificate. Only for labs: anyone on the path can read and change the traffic,
    /// including the password. Every new connection logs a warning.
    DangerAcceptInvalid,
}

impl fmt::Debug for TlsPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Verified => f.write_str("Verified"),
            Self::CustomCa(pem) => write!(f, "CustomCa({} bytes of PEM)", pem.len()),
            Self::Pinned(fp) => write!(f, "Pinned({fp})"),
            Self::DangerAcceptInvalid => f.write_str("DangerAcceptInvalid"),
        }
    }
}

impl TlsPolicy {
    /// A key that identifies the policy, so that connections made under one policy are never
    /// reused under another.
    pub(crate) fn cache_key(&self) -> String {
        match self {
            Self::Verified => "verified".into(),
            Self::CustomCa(pem) => format!("ca:{}", Sha256Fingerprint::of_der(pem).to_hex()),
            Self::Pinned(fp) => format!("pin:{}", fp.to_hex()),
            Self::DangerAcceptInvalid => "danger".into(),
        }
    }

    /// The rustls client configuration of this policy, for TLS connections to the pool that the
    /// client does not make itself (NBD's `NBD_OPT_STARTTLS`, pinned to the certificate
    /// `VDI.get_nbd_info` returns, for one).
    pub fn rustls_config(&self) -> Result<Arc<ClientConfig>, Error> {
        self.client_config()
    }

    /// Build the rustls configuration for this policy.
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, Error> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::TlsConfig(e.to_string()))?;
        let config = match self {
            Self::Verified => {
                let roots = webpki_roots::TLS_SERVER_ROOTS
                    .iter()
                    .cloned()
                    .collect::<RootCertStore>();
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Self::CustomCa(pem) => {
                let mut roots = RootCertStore::empty();
                for (index, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
                    let cert = cert.map_err(|e| {
                        Error::TlsConfig(format!("ca bundle: certificate {index}: {e}"))
                    })?;
                    roots.add(cert).map_err(|e| {
                        Error::TlsConfig(format!("ca bundle: certificate {index}: {e}"))
                    })?;
                }
                if roots.is_empty() {
                    return Err(Error::TlsConfig(
                        "ca bundle holds no PEM certificate".into(),
                    ));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Self::Pinned(pin) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                    pin: *pin,
                    algorithms: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth(),
            Self::DangerAcceptInvalid => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyVerifier {
                    algorithms: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The name rustls is given for a host (an IP address or a DNS name).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(host.to_owned()).map_err(|e| Error::InvalidUrl {
        url: host.to_owned(),
        reason: format!("not a valid tls server name: {e}"),
    })
}

/// Accepts exactly one certificate, by SHA-256 fingerprint, and verifies handshake signatures.
#[derive(Debug)]
struct PinnedVerifier {
    pin: Sha256Fingerprint,
    algorithms: WebPkiSupportedAlgorithms,
}

/// The handshake-signature half of a verifier: always checked with the provider's algorithms
/// (`self.algorithms`), whatever the verifier decides about the certificate itself.
macro_rules! check_handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    };
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Sha256Fingerprint::of_der(end_entity);
        if presented.matches(&self.pin) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "certificate fingerprint {presented} does not match the pinned {}",
                self.pin
            )))
        }
    }

    check_handshake_signatures!();
}

/// Accepts any certificate (loudly), still verifying that the server holds its key.
#[derive(Debug)]
struct AcceptAnyVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        tracing::warn!(
            server = ?server_name,
            fingerprint = %Sha256Fingerprint::of_der(end_entity),
            "tls certificate accepted without verification (TlsPolicy::DangerAcceptInvalid); \
             pin this fingerprint with TlsPolicy::Pinned instead"
        );
        Ok(ServerCertVerified::assertion())
    }

    check_handshake_signatures!();
}

/// Records the presented certificate's fingerprint, then aborts the handshake: nothing is
/// sent to a server that has not been trusted yet.
#[derive(Debug)]
struct CaptureVerifier {
    captured: Mutex<Option<Sha256Fingerprint>>,
    algorithms: WebPkiSupportedAlgorithms,
}

const CAPTURED: &str = "certificate fingerprint captured; handshake stopped on purpose";

impl ServerCertVerifier for CaptureVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut slot) = self.captured.lock() {
            *slot = Some(Sha256Fingerprint::of_der(end_entity));
        }
        Err(rustls::Error::General(CAPTURED.into()))
    }

    check_handshake_signatures!();
}

/// Connect to an `https://` URL and return the SHA-256 fingerprint of the certificate the
/// server presents, for trust on first use: show it to the user, then build the client with
/// [`TlsPolicy::Pinned`].
///
/// The handshake is aborted as soon as the certificate is seen; nothing else is exchanged.
pub async fn fetch_fingerprint(url: &str) -> Result<Sha256Fingerprint, Error> {
    const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
    let endpoint = Endpoint::parse(url)?;
    let Target::Tcp {
        host,
        port,
        tls: true,
    } = &endpoint.target
    else {
        return Err(Error::InvalidUrl {
            url: endpoint.to_string(),
            reason: "fetch_fingerprint needs an https:// url".into(),
        });
    };
    let provider = provider();
    let verifier = Arc::new(CaptureVerifier {
        captured: Mutex::new(None),
        algorithms: provider.signature_verification_algorithms,
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::TlsConfig(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let url_text = endpoint.to_string();
    let tcp = connection::connect_tcp(host, *port, CONNECT_TIMEOUT, &url_text).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let outcome =
        tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(server_name(host)?, tcp)).await;
    let captured = verifier.captured.lock().ok().and_then(|slot| *slot);
    match (captured, outcome) {
        (Some(fp), _) => Ok(fp),
        (None, Err(_)) => Err(Error::Timeout {
            url: url_text,
            kind: crate::error::TimeoutKind::Connect,
            after: CONNECT_TIMEOUT,
        }),
        (None, Ok(Err(e))) => Err(connection::classify_tls_error(e, &url_text)),
        (None, Ok(Ok(_))) => Err(Error::Tls {
            url: url_text,
            reason: "handshake finished without a server certificate".into(),
        }),
    }
}

/// Normalise a thumbprint header value (`sha-256:AA:BB...`, any case, any separators).
pub(crate) fn parse_thumbprint_header(value: &str) -> Option<Sha256Fingerprint> {
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_builds_a_config() {
        for policy in [
            TlsPolicy::Verified,
            TlsPolicy::Pinned(Sha256Fingerprint::of_der(b"x")),
            TlsPolicy::DangerAcceptInvalid,
        ] {
            policy.client_config().unwrap();
        }
    }

    #[test]
    fn a_ca_bundle_without_certificates_is_refused() {
        let err = TlsPolicy::CustomCa(b"not pem".to_vec())
            .client_config()
            .unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }

    #[test]
    fn policies_differ_in_cache_key() {
        let a = TlsPolicy::Pinned(Sha256Fingerprint::of_der(b"a")).cache_key();
        let b = TlsPolicy::Pinned(Sha256Fingerprint::of_der(b"b")).cache_key();
        assert_ne!(a, b);
        assert_ne!(
            TlsPolicy::Verified.cache_key(),
            TlsPolicy::DangerAcceptInvalid.cache_key()
        );
    }

    #[test]
    fn thumbprint_headers_normalise() {
        let fp = Sha256Fingerprint::of_der(b"cert");
        let header = format!("sha-256:{}", fp.to_string().to_lowercase());
        assert_eq!(parse_thumbprint_header(&header), Some(fp));
        assert_eq!(parse_thumbprint_header("garbage"), None);
    }
}
