//! Setup shared by the integration tests: start a simulator, log in, pin a certificate.
//! Each test file uses a part of it.
#![allow(dead_code, unreachable_pub)]

pub mod dr;

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsConnector;
use xapi_core::client::{Client, Password, Protocol, SessionHandle, TlsPolicy};
use xapi_sim::{DEFAULT_PASSWORD, Scenario, SimConfig, SimHandle, Simulator};

/// A simulator of `scenario`, with or without TLS.
pub async fn start(scenario: Scenario, tls: bool) -> SimHandle {
    Simulator::start(SimConfig {
        tls,
        ..SimConfig::with_scenario(scenario)
    })
    .await
    .expect("the simulator starts")
}

/// A simulator started with `config`, and a root session (JSON-RPC) on its first pool.
pub async fn start_and_login(config: SimConfig) -> (SimHandle, SessionHandle) {
    let sim = Simulator::start(config)
        .await
        .expect("the simulator starts");
    let session = login(&sim).await;
    (sim, session)
}

/// The demo (plain HTTP), and a root session (JSON-RPC) on its primary pool.
pub async fn demo() -> (SimHandle, SessionHandle) {
    start_and_login(SimConfig::with_scenario(Scenario::Demo)).await
}

/// The demo (plain HTTP), and a root session on its primary pool over `protocol`.
pub async fn demo_over(protocol: Protocol) -> (SimHandle, SessionHandle) {
    let sim = start(Scenario::Demo, false).await;
    let session = login_over(&sim, sim.url(), protocol).await;
    (sim, session)
}

/// The code of a XAPI failure; panics on anything else.
pub fn failure_code<T: std::fmt::Debug>(result: Result<T, xapi_core::Error>) -> String {
    match result {
        Err(xapi_core::Error::Api(f)) => f.code.as_str().to_owned(),
        other => panic!("expected a XAPI failure, got {other:?}"),
    }
}

/// Every entry of `VDI.get_nbd_info` for `vdi`, checked to be one per host that has the VDI's
/// SR plugged (the master first when it is one of them).
pub async fn nbd_infos<T: serde::de::DeserializeOwned + std::fmt::Debug>(
    session: &SessionHandle,
    vdi: &str,
) -> Vec<T> {
    let infos: Vec<T> = session.call("VDI.get_nbd_info", (vdi,)).await.unwrap();
    let sr: String = session.call("VDI.get_SR", (vdi,)).await.unwrap();
    let pbds: Vec<String> = session.call("SR.get_PBDs", (&sr,)).await.unwrap();
    let mut attached = 0;
    for pbd in &pbds {
        if session
            .call::<bool>("PBD.get_currently_attached", (pbd,))
            .await
            .unwrap()
        {
            attached += 1;
        }
    }
    assert_eq!(infos.len(), attached, "one entry per host: {infos:?}");
    infos
}

/// The first VM called `name`.
pub async fn vm_named(session: &SessionHandle, name: &str) -> String {
    let vms: Vec<String> = session.call("VM.get_by_name_label", (name,)).await.unwrap();
    vms.into_iter()
        .next()
        .unwrap_or_else(|| panic!("a VM called {name}"))
}

/// Every object of `class`, in no particular order.
pub async fn all_of(session: &SessionHandle, class: &str) -> Vec<String> {
    session.call(&format!("{class}.get_all"), ()).await.unwrap()
}

/// `(userdevice, VDI)` of each disk VBD (CD drives left out) of `vm`, in userdevice order.
pub async fn disk_vbds(session: &SessionHandle, vm: &str) -> Vec<(String, String)> {
    let mut disks = Vec::new();
    for vbd in session
        .call::<Vec<String>>("VM.get_VBDs", (vm,))
        .await
        .unwrap()
    {
        let kind: String = session.call("VBD.get_type", (&vbd,)).await.unwrap();
        if kind == "Disk" {
            let device: String = session.call("VBD.get_userdevice", (&vbd,)).await.unwrap();
            let vdi: String = session.call("VBD.get_VDI", (&vbd,)).await.unwrap();
            disks.push((device, vdi));
        }
    }
    disks.sort();
    disks
}

/// The whole body of `GET path?query` (up to 1 GiB).
pub async fn download(session: &SessionHandle, path: &str, query: &[(&str, &str)]) -> Vec<u8> {
    let download = session.get(path, query, None).await.unwrap();
    download.bytes(1 << 30).await.unwrap().to_vec()
}

/// `PUT path?query` with `body` (with a `Content-Length`); the task named by the response's
/// task-id header.
pub async fn upload(
    session: &SessionHandle,
    path: &str,
    query: &[(&str, &str)],
    body: Vec<u8>,
) -> String {
    let length = body.len() as u64;
    let stream =
        futures::stream::once(async move { Ok::<_, std::io::Error>(bytes::Bytes::from(body)) });
    let upload = session
        .put(path, query, None, stream, length)
        .await
        .unwrap();
    assert_eq!(
        upload.status, 200,
        "PUT {path}: as xapi, the outcome is on the task"
    );
    upload.task_id.expect("a task-id header").to_string()
}

/// The status of `task`, and its result or, when it failed, its error info joined by spaces.
pub async fn task_outcome(session: &SessionHandle, task: &str) -> (String, String) {
    let status: String = session.call("task.get_status", (task,)).await.unwrap();
    let result = if status == "failure" {
        let info: Vec<String> = session.call("task.get_error_info", (task,)).await.unwrap();
        info.join(" ")
    } else {
        session.call("task.get_result", (task,)).await.unwrap()
    };
    (status, result)
}

/// [`upload`] then [`task_outcome`].
pub async fn put_and_wait(
    session: &SessionHandle,
    path: &str,
    query: &[(&str, &str)],
    body: Vec<u8>,
) -> (String, String) {
    let task = upload(session, path, query, body).await;
    task_outcome(session, &task).await
}

/// One change of each kind a database delta carries, on the demo: `ldap`'s description becomes
/// `description` (a field), the halted `backup-proxy` is cloned as `clone_name` and tagged
/// `other_config:dr=yes` (a new object), `test-vm` is destroyed (a deletion). The clone.
pub async fn change_add_and_delete(
    session: &SessionHandle,
    description: &str,
    clone_name: &str,
) -> String {
    let ldap = vm_named(session, "ldap").await;
    session
        .call::<()>("VM.set_name_description", (&ldap, description))
        .await
        .unwrap();
    let halted = vm_named(session, "backup-proxy").await;
    let clone: String = session
        .call("VM.clone", (&halted, clone_name))
        .await
        .unwrap();
    session
        .call::<()>("VM.add_to_other_config", (&clone, "dr", "yes"))
        .await
        .unwrap();
    let doomed = vm_named(session, "test-vm").await;
    session.call::<()>("VM.destroy", (&doomed,)).await.unwrap();
    clone
}

/// The first disk (VDI reference) of the VM called `vm_name`.
pub async fn first_disk_of(session: &SessionHandle, vm_name: &str) -> String {
    let vms: Vec<String> = session
        .call("VM.get_by_name_label", (vm_name,))
        .await
        .unwrap();
    let vbds: Vec<String> = session.call("VM.get_VBDs", (&vms[0],)).await.unwrap();
    session.call("VBD.get_VDI", (&vbds[0],)).await.unwrap()
}

/// Run a tool (qemu-img, qemu-io) without blocking the runtime that serves it; its stdout.
/// Panics with the tool's stderr when it fails.
pub async fn run(program: &str, args: &[&str]) -> String {
    let output = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The pool database from `GET /pool/xmldbdump`.
pub async fn dump(session: &SessionHandle) -> xapi_dr::metadata::Database {
    let bytes = session
        .get("/pool/xmldbdump", &[], None)
        .await
        .unwrap()
        .bytes(64 << 20)
        .await
        .unwrap();
    xapi_dr::metadata::read_db_xml(&bytes[..]).unwrap()
}

/// Every table of a database, one-to-many sets recomputed, for comparisons.
pub fn persistent_tables(
    mut db: xapi_dr::metadata::Database,
) -> Vec<(String, xapi_dr::metadata::Table)> {
    db.recompute_relations();
    db.tables()
        .map(|(name, table)| (name.to_owned(), table.clone()))
        .collect()
}

/// A client of `url` (pinned to the simulator's certificate with TLS).
pub fn client(sim: &SimHandle, url: &str, protocol: Protocol) -> Client {
    let mut builder = Client::builder(url).protocol(protocol);
    if let Some(fingerprint) = sim.fingerprint() {
        builder = builder.tls(TlsPolicy::Pinned(fingerprint.parse().unwrap()));
    }
    builder.build().unwrap()
}

/// A root session on the first pool of `sim`.
pub async fn login(sim: &SimHandle) -> SessionHandle {
    login_to(sim, sim.url()).await
}

/// A root session (JSON-RPC) on the pool at `url`.
pub async fn login_to(sim: &SimHandle, url: &str) -> SessionHandle {
    login_over(sim, url, Protocol::JsonRpc).await
}

/// A root session on the pool at `url` over `protocol`.
pub async fn login_over(sim: &SimHandle, url: &str, protocol: Protocol) -> SessionHandle {
    client(sim, url, protocol)
        .login_with_password(
            "root",
            Password::new(DEFAULT_PASSWORD),
            "1.0",
            "xapi-sim tests",
        )
        .await
        .expect("root logs in")
}

/// `client` talks to a pool member of the demo's primary pool (master at 127.0.0.1, two
/// hosts): a login is refused with `HOST_IS_SLAVE` naming the master, and the client's own
/// login follows it there.
pub async fn assert_login_moves_to_the_master(client: &Client) {
    let raw = client
        .call_raw::<String>(
            "session.login_with_password",
            ("root", DEFAULT_PASSWORD, "1.0", "t"),
        )
        .await;
    match raw {
        Err(xapi_core::Error::Api(f)) => {
            assert_eq!(f.code, xapi_core::api::ErrorCode::HostIsSlave);
            assert_eq!(f.params, ["127.0.0.1"]);
        }
        other => panic!("a member refuses logins: {other:?}"),
    }
    let session = client
        .login_with_password("root", Password::new(DEFAULT_PASSWORD), "1.0", "t")
        .await
        .expect("the login moves to the master (pinned to its certificate with TLS)");
    let hosts: Vec<String> = session.call("host.get_all", ()).await.unwrap();
    assert_eq!(hosts.len(), 2);
}

/// The DER of the first certificate of a PEM text.
pub fn der_of_pem(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("a PEM certificate")
        .as_ref()
        .to_vec()
}

/// A TLS connector that accepts exactly the certificate `der` (whatever the name), with the
/// handshake signatures checked.
pub fn pinned_connector(der: &[u8]) -> TlsConnector {
    connector_pinned_to(&hex(&Sha256::digest(der)))
}

/// A TLS connector that accepts exactly the certificate whose DER has this lower-case hex
/// SHA-256 fingerprint (whatever the name), with the handshake signatures checked.
pub fn connector_pinned_to(fingerprint: &str) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedCert {
        fingerprint: fingerprint.to_ascii_lowercase(),
        provider: Arc::clone(&provider),
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// The server name to hand a connector (any: the pin decides).
pub fn any_name() -> ServerName<'static> {
    ServerName::try_from("xapi-sim.invalid").unwrap()
}

#[derive(Debug)]
struct PinnedCert {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if hex(&Sha256::digest(end_entity.as_ref())) == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}
