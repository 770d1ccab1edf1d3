//! NBD over TLS on networks of purpose `nbd`: `NBD_OPT_STARTTLS` with the certificate that
//! `VDI.get_nbd_info` returns, read by a Rust client pinned to it and by qemu-img; a client
//! that skips STARTTLS is refused as qemu-nbd refuses it.

use crate::support;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;
use xapi_core::client::SessionHandle;
use xapi_sim::{Scenario, SimHandle};

const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const OPT_EXPORT_NAME: u32 = 1;
const OPT_STARTTLS: u32 = 5;
const OPT_GO: u32 = 7;
const REP_ACK: u32 = 1;
const REP_INFO: u32 = 3;
const REP_ERR_POLICY: u32 = 0x8000_0002;
const REP_ERR_INVALID: u32 = 0x8000_0003;
const REP_ERR_TLS_REQD: u32 = 0x8000_0005;

#[derive(Debug, serde::Deserialize)]
struct NbdInfo {
    exportname: String,
    address: String,
    port: i64,
    cert: String,
    subject: String,
}

/// The demo with `--tls`, a session on its primary pool, and the first disk of `mail`.
async fn demo() -> (SimHandle, SessionHandle, String) {
    let sim = support::start(Scenario::Demo, true).await;
    let session = support::login(&sim).await;
    let vdi = support::first_disk_of(&session, "mail").await;
    (sim, session, vdi)
}

/// The master's entry.
async fn nbd_info(session: &SessionHandle, vdi: &str) -> NbdInfo {
    support::nbd_infos(session, vdi).await.remove(0)
}

/// Connect to the NBD server of `info` and go through the greeting.
async fn connect(info: &NbdInfo) -> TcpStream {
    let mut tcp = TcpStream::connect((info.address.as_str(), info.port as u16))
        .await
        .unwrap();
    greet(&mut tcp).await;
    tcp
}

/// [`connect`], then `NBD_OPT_STARTTLS`, which the server must accept.
async fn connect_starttls(info: &NbdInfo) -> TcpStream {
    let mut tcp = connect(info).await;
    send_option(&mut tcp, OPT_STARTTLS, &[]).await;
    assert_eq!(read_reply(&mut tcp, OPT_STARTTLS).await.0, REP_ACK);
    tcp
}

/// Read the server greeting and send the client flags (fixed newstyle, no zeroes).
async fn greet<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) {
    assert_eq!(stream.read_u64().await.unwrap(), NBDMAGIC);
    assert_eq!(stream.read_u64().await.unwrap(), IHAVEOPT);
    let flags = stream.read_u16().await.unwrap();
    assert_eq!(flags & 1, 1, "fixed newstyle");
    stream.write_u32(3).await.unwrap();
}

async fn send_option<S: AsyncWrite + Unpin>(stream: &mut S, option: u32, data: &[u8]) {
    stream.write_u64(IHAVEOPT).await.unwrap();
    stream.write_u32(option).await.unwrap();
    stream.write_u32(data.len() as u32).await.unwrap();
    stream.write_all(data).await.unwrap();
    stream.flush().await.unwrap();
}

/// One option reply: its type and data.
async fn read_reply<S: AsyncRead + Unpin>(stream: &mut S, option: u32) -> (u32, Vec<u8>) {
    assert_eq!(stream.read_u64().await.unwrap(), REPLY_MAGIC);
    assert_eq!(stream.read_u32().await.unwrap(), option);
    let kind = stream.read_u32().await.unwrap();
    let length = stream.read_u32().await.unwrap();
    let mut data = vec![0; length as usize];
    stream.read_exact(&mut data).await.unwrap();
    (kind, data)
}

fn go_payload(name: &str) -> Vec<u8> {
    let mut data = (name.len() as u32).to_be_bytes().to_vec();
    data.extend_from_slice(name.as_bytes());
    data.extend_from_slice(&0_u16.to_be_bytes());
    data
}

/// `NBD_OPT_GO` on `name`: the export size.
async fn go<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, name: &str) -> u64 {
    send_option(stream, OPT_GO, &go_payload(name)).await;
    let (kind, info) = read_reply(stream, OPT_GO).await;
    assert_eq!(kind, REP_INFO, "{}", String::from_utf8_lossy(&info));
    let size = u64::from_be_bytes(info[2..10].try_into().unwrap());
    assert_eq!(read_reply(stream, OPT_GO).await.0, REP_ACK);
    size
}

/// `NBD_CMD_READ` of `length` bytes at `offset`.
async fn read_block<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    handle: u64,
    offset: u64,
    length: u32,
) -> Vec<u8> {
    stream.write_u32(0x2560_9513).await.unwrap();
    stream.write_u16(0).await.unwrap();
    stream.write_u16(0).await.unwrap();
    stream.write_u64(handle).await.unwrap();
    stream.write_u64(offset).await.unwrap();
    stream.write_u32(length).await.unwrap();
    stream.flush().await.unwrap();
    assert_eq!(stream.read_u32().await.unwrap(), 0x6744_6698);
    assert_eq!(
        stream.read_u32().await.unwrap(),
        0,
        "read error at {offset}"
    );
    assert_eq!(stream.read_u64().await.unwrap(), handle);
    let mut data = vec![0; length as usize];
    stream.read_exact(&mut data).await.unwrap();
    data
}

#[tokio::test]
async fn starttls_pinned_to_the_returned_cert_reads_the_vdi() {
    let (sim, session, vdi) = demo().await;
    let uuid: String = session.call("VDI.get_uuid", (&vdi,)).await.unwrap();
    let info = nbd_info(&session, &vdi).await;
    assert!(
        info.cert.starts_with("-----BEGIN CERTIFICATE-----"),
        "{info:?}"
    );
    assert_eq!(info.subject, "primary-host-1", "the master's host name");
    let der = support::der_of_pem(&info.cert);
    assert_eq!(
        support::hex(&Sha256::digest(&der)),
        sim.fingerprint().unwrap(),
        "NBD presents the host certificate the HTTPS server presents"
    );

    let tcp = connect_starttls(&info).await;
    let mut tls = support::pinned_connector(&der)
        .connect(support::any_name(), tcp)
        .await
        .expect("the handshake succeeds with the pinned certificate");
    // a second STARTTLS is invalid
    send_option(&mut tls, OPT_STARTTLS, &[]).await;
    assert_eq!(read_reply(&mut tls, OPT_STARTTLS).await.0, REP_ERR_INVALID);
    let size = go(&mut tls, &info.exportname).await;
    let original = std::fs::read(sim.disk_image("primary", &uuid).unwrap()).unwrap();
    assert_eq!(size, original.len() as u64);
    let mut read = Vec::with_capacity(original.len());
    let mut offset = 0;
    let mut handle = 1;
    while offset < size {
        let length = (size - offset).min(1 << 20) as u32;
        read.extend(read_block(&mut tls, handle, offset, length).await);
        offset += u64::from(length);
        handle += 1;
    }
    assert!(
        original.iter().any(|&b| b != 0),
        "the demo disk has content"
    );
    assert!(read == original, "the blocks read over TLS are the disk's");
}

#[tokio::test]
async fn a_client_without_starttls_is_refused_with_tls_reqd() {
    let (_sim, session, vdi) = demo().await;
    let info = nbd_info(&session, &vdi).await;
    let mut tcp = connect(&info).await;
    send_option(&mut tcp, OPT_GO, &go_payload(&info.exportname)).await;
    let (kind, message) = read_reply(&mut tcp, OPT_GO).await;
    assert_eq!(
        kind,
        REP_ERR_TLS_REQD,
        "{}",
        String::from_utf8_lossy(&message)
    );
    // the old-style option has no error reply: the server hangs up
    send_option(&mut tcp, OPT_EXPORT_NAME, info.exportname.as_bytes()).await;
    let mut rest = Vec::new();
    let read = tcp.read_to_end(&mut rest).await;
    assert!(
        read.is_err() || rest.is_empty(),
        "no export before TLS: {rest:?}"
    );
}

#[tokio::test]
async fn plain_networks_refuse_starttls_by_policy() {
    let sim = support::start(Scenario::Demo, false).await;
    let session = support::login(&sim).await;
    let vdi = support::first_disk_of(&session, "mail").await;
    let info = nbd_info(&session, &vdi).await;
    let mut tcp = connect(&info).await;
    send_option(&mut tcp, OPT_STARTTLS, &[]).await;
    assert_eq!(read_reply(&mut tcp, OPT_STARTTLS).await.0, REP_ERR_POLICY);
    assert!(
        go(&mut tcp, &info.exportname).await > 0,
        "plain NBD goes on"
    );
}

#[tokio::test]
async fn qemu_img_reads_over_tls_with_the_returned_cert_as_ca() {
    let (sim, session, vdi) = demo().await;
    let uuid: String = session.call("VDI.get_uuid", (&vdi,)).await.unwrap();
    let info = nbd_info(&session, &vdi).await;
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("pki");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("ca-cert.pem"), &info.cert).unwrap();
    let object = format!(
        "tls-creds-x509,id=tls0,endpoint=client,verify-peer=on,dir={}",
        creds.display()
    );
    let export = info.exportname.replace('\\', "\\\\").replace('"', "\\\"");
    // tls-hostname: the certificate must be valid for the subject get_nbd_info names
    let spec = format!(
        r#"json:{{"driver":"raw","file":{{"driver":"nbd","server":{{"type":"inet","host":"{}","port":"{}"}},"export":"{export}","tls-creds":"tls0","tls-hostname":"{}"}}}}"#,
        info.address, info.port, info.subject
    );
    let copy = dir.path().join("copy.raw");
    let output = Command::new("qemu-img")
        .args(["convert", "--object", &object, "-O", "raw", &spec])
        .arg(&copy)
        .output()
        .await
        .expect("qemu-img runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() && stderr.contains("TLS") && stderr.contains("not supported") {
        eprintln!("skipped: this qemu-img has no TLS support: {stderr}");
        return;
    }
    assert!(
        output.status.success(),
        "qemu-img convert over TLS: {stderr}"
    );
    let original = std::fs::read(sim.disk_image("primary", &uuid).unwrap()).unwrap();
    assert!(
        std::fs::read(&copy).unwrap() == original,
        "qemu-img copied the exact bytes over TLS"
    );

    // without the credentials qemu is refused
    let plain = format!(
        r#"json:{{"driver":"raw","file":{{"driver":"nbd","server":{{"type":"inet","host":"{}","port":"{}"}},"export":"{export}"}}}}"#,
        info.address, info.port
    );
    let output = Command::new("qemu-img")
        .args(["info", &plain])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success(), "a plain client gets no export");
}

#[tokio::test]
async fn each_host_serves_the_disk_under_its_own_certificate() {
    let (sim, session, vdi) = demo().await;
    let uuid: String = session.call("VDI.get_uuid", (&vdi,)).await.unwrap();
    let original = std::fs::read(sim.disk_image("primary", &uuid).unwrap()).unwrap();
    let infos = support::nbd_infos::<NbdInfo>(&session, &vdi).await;
    let member = &infos[1];
    assert_eq!(member.subject, "primary-host-2", "the member's host name");
    assert_ne!(
        member.cert, infos[0].cert,
        "the member has a certificate of its own"
    );

    // the member's certificate opens the member's server; the master's does not
    let master_der = support::der_of_pem(&infos[0].cert);
    let tcp = connect_starttls(member).await;
    assert!(
        support::pinned_connector(&master_der)
            .connect(support::any_name(), tcp)
            .await
            .is_err(),
        "the master's pin is refused by the member"
    );

    let der = support::der_of_pem(&member.cert);
    let tcp = connect_starttls(member).await;
    let mut tls = support::pinned_connector(&der)
        .connect(support::any_name(), tcp)
        .await
        .expect("the member's own certificate is accepted");
    let size = go(&mut tls, &member.exportname).await;
    assert_eq!(size, original.len() as u64);
    let head = read_block(&mut tls, 1, 0, 1 << 20).await;
    assert!(
        head == original[..1 << 20],
        "the member serves the same disk"
    );
}
