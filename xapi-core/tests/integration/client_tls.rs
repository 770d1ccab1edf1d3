//! TLS policies against a real rustls server with a self-signed certificate made by rcgen.

use crate::mock_xapi;

use std::io::Write;
use std::sync::{Arc, Mutex};

use mock_xapi::Answer;
use xapi_core::Error;
use xapi_core::client::{Client, Sha256Fingerprint, TlsPolicy, fetch_fingerprint};
use xapi_core::wire::Ref;

async fn pong_server(cert: &mock_xapi::TestCert) -> mock_xapi::Mock {
    mock_xapi::start_tls(cert, |_| Answer::new(200, "pong")).await
}

async fn ping(url: &str, policy: TlsPolicy) -> Result<String, Error> {
    let client = Client::builder(url).tls(policy).build()?;
    let session = client.attach_session(Ref::new("OpaqueRef:s"));
    let body = session.get("/ping", &[], None).await?.bytes(1024).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn pinned_fingerprint_is_accepted() {
    let cert = mock_xapi::self_signed();
    let server = pong_server(&cert).await;
    let pin = Sha256Fingerprint::of_der(&cert.der);
    assert_eq!(
        ping(&server.url, TlsPolicy::Pinned(pin))
            .await
            .expect("pinned"),
        "pong"
    );
}

#[tokio::test]
async fn pinned_policy_ignores_the_name_in_the_certificate() {
    // The certificate names 127.0.0.1 and localhost; reach it as "localhost" and as the IP.
    let cert = mock_xapi::self_signed();
    let server = pong_server(&cert).await;
    let port = server.addr.expect("tcp").port();
    let pin = Sha256Fingerprint::of_der(&cert.der);
    let by_name = format!("https://localhost:{port}");
    assert_eq!(
        ping(&by_name, TlsPolicy::Pinned(pin))
            .await
            .expect("pinned"),
        "pong"
    );
}

#[tokio::test]
async fn pin_mismatch_is_refused_before_anything_is_sent() {
    let cert = mock_xapi::self_signed();
    let server = pong_server(&cert).await;
    let wrong = Sha256Fingerprint::of_der(b"some other certificate");
    let err = ping(&server.url, TlsPolicy::Pinned(wrong))
        .await
        .expect_err("wrong pin");
    match &err {
        Error::Tls { reason, url } => {
            assert!(reason.contains("does not match"), "{reason}");
            assert!(url.starts_with("https://127.0.0.1:"), "{url}");
        }
        other => panic!("expected Tls, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert!(
        server.requests().is_empty(),
        "a request reached an untrusted server"
    );
}

#[tokio::test]
async fn verified_policy_refuses_a_self_signed_certificate() {
    let cert = mock_xapi::self_signed();
    let server = pong_server(&cert).await;
    let err = ping(&server.url, TlsPolicy::Verified)
        .await
        .expect_err("self-signed is not trusted by the web pki");
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn custom_ca_bundle_trusts_its_certificate() {
    let cert = mock_xapi::self_signed();
    let server = pong_server(&cert).await;
    let other = mock_xapi::self_signed();
    let trusted = ping(
        &server.url,
        TlsPolicy::CustomCa(cert.pem.clone().into_bytes()),
    )
    .await;
    // rustls-webpki accepts a self-signed end-entity certificate as its own trust anchor.
    assert_eq!(trusted.expect("trusted by its own bundle"), "pong");
    let err = ping(&server.url, TlsPolicy::CustomCa(other.pem.into_bytes()))
        .await
        .expect_err("another CA");
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn danger_accept_invalid_connects_and_warns() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = crate::client_failure_context::on_this_thread(subscriber);

    let cert = mock_xapi::self_signed();
    let server = pong_server(&cert).await;
    assert_eq!(
        ping(&server.url, TlsPolicy::DangerAcceptInvalid)
            .await
            .expect("accepted"),
        "pong"
    );
    let log = String::from_utf8(captured.0.lock().expect("log lock").clone()).expect("utf-8");
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("without verification"), "{log}");
    assert!(
        log.contains(&Sha256Fingerprint::of_der(&cert.der).to_string()),
        "the warning names the fingerprint to pin: {log}"
    );
}

#[tokio::test]
async fn fetch_fingerprint_returns_the_presented_certificate_and_sends_nothing() {
    let cert = mock_xapi::self_signed();
    let server = pong_server(&cert).await;
    let fingerprint = fetch_fingerprint(&server.url).await.expect("fingerprint");
    assert_eq!(fingerprint, Sha256Fingerprint::of_der(&cert.der));
    assert!(server.requests().is_empty());
    // Trust on first use: the fetched fingerprint works as a pin.
    assert_eq!(
        ping(&server.url, TlsPolicy::Pinned(fingerprint))
            .await
            .expect("pinned"),
        "pong"
    );
}

#[tokio::test]
async fn fetch_fingerprint_needs_https() {
    let err = fetch_fingerprint("http://127.0.0.1:1")
        .await
        .expect_err("http");
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
}

#[tokio::test]
async fn redirect_to_an_unpinned_host_is_refused_under_a_pin() {
    let cert_a = mock_xapi::self_signed();
    let cert_b = mock_xapi::self_signed();
    let b = pong_server(&cert_b).await;
    let b_port = b.addr.expect("tcp").port();
    let location = format!("https://localhost:{b_port}/ping");
    let a = mock_xapi::start_tls(&cert_a, move |_| {
        Answer::new(302, "").header("location", &location)
    })
    .await;
    let pin_a = Sha256Fingerprint::of_der(&cert_a.der);
    let err = ping(&a.url, TlsPolicy::Pinned(pin_a))
        .await
        .expect_err("no pin for the redirect target");
    assert!(
        err.to_string().contains("no certificate pin for host"),
        "{err}"
    );
    assert!(b.requests().is_empty());

    // With a pin for the member, the redirect is followed and that pin is applied.
    let client = Client::builder(&a.url)
        .tls(TlsPolicy::Pinned(pin_a))
        .pin_host(
            &format!("localhost:{b_port}"),
            Sha256Fingerprint::of_der(&cert_b.der),
        )
        .build()
        .expect("client");
    let body = client
        .attach_session(Ref::new("OpaqueRef:s"))
        .get("/ping", &[], None)
        .await
        .expect("redirect followed")
        .bytes(64)
        .await
        .expect("body");
    assert_eq!(body, "pong");
    assert_eq!(b.requests().len(), 1);
}

/// Presents one certificate but signs the handshake with another key: what an attacker who
/// copied a host's (public) certificate would do.
#[derive(Debug)]
struct StolenCertificate(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for StolenCertificate {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[tokio::test]
async fn pinned_policy_still_verifies_the_handshake_signature() {
    let genuine = mock_xapi::self_signed();
    let attacker = mock_xapi::self_signed();
    let attacker_key = rustls::crypto::ring::sign::any_supported_type(
        &rustls::pki_types::PrivateKeyDer::Pkcs8(attacker.key_der.clone().into()),
    )
    .expect("signing key");
    let impostor = rustls::sign::CertifiedKey::new(vec![genuine.der.clone()], attacker_key);
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_cert_resolver(Arc::new(StolenCertificate(Arc::new(impostor))));
    let server = mock_xapi::start_tls_with(
        "127.0.0.1",
        0,
        config,
        Arc::new(|_: &mock_xapi::Seen| Answer::new(200, "pong")),
    )
    .await
    .expect("bind");
    let pin = Sha256Fingerprint::of_der(&genuine.der);
    let err = ping(&server.url, TlsPolicy::Pinned(pin))
        .await
        .expect_err("the presented certificate matches the pin but the key does not");
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(server.requests().is_empty());
}
