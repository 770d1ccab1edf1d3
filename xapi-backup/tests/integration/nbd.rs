//! The NBD client against real servers: `qemu-nbd` serving a disk file (plain), and the
//! simulator's hosts over TLS pinned to the certificate `VDI.get_nbd_info` returns; the bytes
//! read back equal the disk's, with several requests in flight.

use std::process::Stdio;
use std::time::Duration;

use xapi_backup::incremental::nbd::{NbdClient, NbdError, NbdTarget, connect_any};
use xapi_core::client::{Client, Password, TlsPolicy};
use xapi_sim::{DEFAULT_PASSWORD, Scenario, SimConfig, Simulator};

/// A disk image with a recognisable pattern and holes: 8 MiB + 64 KiB.
fn pattern_disk(path: &std::path::Path) -> Vec<u8> {
    let mut bytes = vec![0_u8; 8 * 1024 * 1024 + 65536];
    for (i, chunk) in bytes.chunks_mut(4096).enumerate() {
        if i % 3 != 1 {
            for (j, b) in chunk.iter_mut().enumerate() {
                *b = u8::try_from((i * 31 + j * 7) % 251).unwrap();
            }
        }
    }
    std::fs::write(path, &bytes).unwrap();
    bytes
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `qemu-nbd` serving `path` read-only on loopback under the export name `disk`.
struct QemuNbd {
    child: tokio::process::Child,
    address: String,
}

impl QemuNbd {
    async fn serve(path: &std::path::Path) -> Self {
        let port = free_port();
        let child = tokio::process::Command::new("qemu-nbd")
            .args([
                "--read-only",
                "--persistent",
                "--shared=8",
                "-f",
                "raw",
                "-x",
                "disk",
            ])
            .args(["-b", "127.0.0.1", "-p", &port.to_string()])
            .arg(path)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("qemu-nbd (Debian qemu-utils) is installed");
        let address = format!("127.0.0.1:{port}");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(&address).await.is_ok() {
                return Self { child, address };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("qemu-nbd did not listen on {address}");
    }
}

impl Drop for QemuNbd {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test]
async fn qemu_nbd_serves_the_disk_that_is_read_back_pipelined() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disk.raw");
    let original = pattern_disk(&path);
    let server = QemuNbd::serve(&path).await;

    let mut client = NbdClient::connect(&NbdTarget::plain(&server.address, "disk"))
        .await
        .unwrap();
    let export = client.export();
    assert_eq!(export.size, original.len() as u64);
    assert!(export.is_read_only());

    // the whole disk, 1 MiB pieces, 8 in flight, delivered in order
    let mut read = Vec::with_capacity(original.len());
    let ranges = [(0, original.len() as u64)];
    client
        .read_ranges(&ranges, 8, |offset, data| {
            assert_eq!(offset, read.len() as u64, "pieces come in offset order");
            read.extend_from_slice(&data);
            Ok(())
        })
        .await
        .unwrap();
    assert!(read == original, "the bytes read are the disk's");

    // scattered ranges, as changed blocks are
    let ranges = [(65536, 65536), (3 << 20, 128 * 1024), (8 << 20, 65536)];
    let mut pieces = Vec::new();
    client
        .read_ranges(&ranges, 4, |offset, data| {
            pieces.push((offset, data));
            Ok(())
        })
        .await
        .unwrap();
    for (offset, data) in &pieces {
        let at = usize::try_from(*offset).unwrap();
        assert_eq!(&original[at..at + data.len()], &data[..]);
    }
    let one = client.read(4096, 4096).await.unwrap();
    assert_eq!(&one[..], &original[4096..8192]);

    // outside the export: refused before anything is sent
    let err = client.read(original.len() as u64, 4096).await.unwrap_err();
    assert!(matches!(err, NbdError::BadRange { .. }), "{err}");
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn an_unknown_export_or_a_closed_port_is_a_typed_error_and_the_next_server_is_tried() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disk.raw");
    pattern_disk(&path);
    let server = QemuNbd::serve(&path).await;
    let err = NbdClient::connect(&NbdTarget::plain(&server.address, "nope"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            NbdError::OptionRefused {
                option: "NBD_OPT_GO",
                ..
            }
        ),
        "{err}"
    );
    let closed = NbdTarget::plain(format!("127.0.0.1:{}", free_port()), "disk");
    let good = NbdTarget::plain(&server.address, "disk");
    let client = connect_any(&[closed.clone(), good]).await.unwrap();
    assert_eq!(client.export().size, 8 * 1024 * 1024 + 65536);
    let err = connect_any(&[closed]).await.unwrap_err();
    assert!(matches!(err, NbdError::NoServer { tried: 1, .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_serves_a_vdi_over_tls_pinned_to_its_certificate() {
    let sim = Simulator::start(SimConfig {
        tls: true,
        ..SimConfig::with_scenario(Scenario::Demo)
    })
    .await
    .unwrap();
    let fingerprint = sim.fingerprint().unwrap().parse().unwrap();
    let session = Client::builder(sim.url())
        .tls(TlsPolicy::Pinned(fingerprint))
        .build()
        .unwrap()
        .login_with_password("root", Password::new(DEFAULT_PASSWORD), "1.0", "nbd test")
        .await
        .unwrap();
    let vms = session.vm().get_all_records().await.unwrap();
    let mail = vms.values().find(|vm| &*vm.name_label == "mail").unwrap();
    let vbd = session.vbd().get_record(&mail.vbds[0]).await.unwrap();
    let vdi = session.vdi().get_record(&vbd.vdi).await.unwrap();
    let infos = session.vdi().get_nbd_info(&vbd.vdi).await.unwrap();
    assert!(!infos.is_empty());
    let targets: Vec<NbdTarget> = infos
        .iter()
        .map(|info| NbdTarget::from_info(info).unwrap())
        .collect();
    assert!(
        targets.iter().all(|t| t.tls.is_some()),
        "the demo's NBD network wants TLS"
    );

    let mut client = connect_any(&targets).await.unwrap();
    let original = std::fs::read(sim.disk_image("primary", &vdi.uuid).unwrap()).unwrap();
    assert_eq!(client.export().size, original.len() as u64);
    let mut read = Vec::with_capacity(original.len());
    client
        .read_ranges(&[(0, original.len() as u64)], 8, |_, data| {
            read.extend_from_slice(&data);
            Ok(())
        })
        .await
        .unwrap();
    assert!(
        original.iter().any(|&b| b != 0),
        "the demo disk has content"
    );
    assert!(read == original, "the blocks read over TLS are the disk's");
    client.disconnect().await.unwrap();

    // a certificate other than the one returned is refused
    let mut wrong = infos[0].clone();
    wrong.cert = infos
        .iter()
        .map(|i| i.cert.clone())
        .find(|c| *c != infos[0].cert)
        .unwrap_or_else(|| OTHER_CERT.into());
    let err = NbdClient::connect(&NbdTarget::from_info(&wrong).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, NbdError::Tls { .. }), "{err}");
}

/// A self-signed certificate that no simulator host holds.
const OTHER_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBfTCCASOgAwIBAgIUQ2b6mFp1u6G0P1X7o1nVdV3K2l0wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbm90LWEtaG9zdDAeFw0yNjAxMDEwMDAwMDBaFw0zNjAxMDEw
MDAwMDBaMBQxEjAQBgNVBAMMCW5vdC1hLWhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQ3m0D0m9o0kQ3q6mJbGk8S3cF0Zl1lH1jv7xH2kqk0pV4yV0rZ8g6W
9xN1q8b2YpU5m0b0n6kFJqJtFv8qD8y9o1MwUTAdBgNVHQ4EFgQU2c0rQ8m7s0pL
0Cz6x0b1mY2q8l8wHwYDVR0jBBgwFoAU2c0rQ8m7s0pL0Cz6x0b1mY2q8l8wDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEA1j0m6hQ2Y9m7Zq4yQ3gQ
M2f0b8d1yP9q0rL5c2p0a1ICIBp1l0a9b8m6Q2x0d1f4g7h8i9j0k1l2m3n4o5p6
q7r8
-----END CERTIFICATE-----
";
