//! The framing of data-plane responses on the wire, read from a raw socket: `GET /export` and
//! `GET /export_raw_vdi` answer as xapi does, `HTTP/1.0 200 OK` with `Connection: close`, no
//! `Content-Length` and no chunked encoding, the body running until the server closes the
//! connection (also when the request asked for an HTTP/1.1 keep-alive connection);
//! `GET /export_metadata` carries a `Content-Length`. The SDK's data plane still reads each body
//! completely.

use crate::support;

use std::time::Duration;

use support::{demo, vm_named};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use xapi_backup::format::xva::{ReadOptions, XvaReader};
use xapi_sim::{Scenario, SimHandle};

/// One response read from a raw socket until the server closes it.
struct Raw {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Send `GET target` as `version` (with `Connection: keep-alive` for HTTP/1.1) and read until
/// the server closes the connection; fails if that takes more than 30 s.
async fn raw_get(sim: &SimHandle, target: &str, version: &str) -> Raw {
    let mut stream = TcpStream::connect(sim.addr()).await.unwrap();
    let connection = if version == "HTTP/1.1" {
        "Connection: keep-alive\r\n"
    } else {
        ""
    };
    let head = format!(
        "GET {target} {version}\r\nHost: {}\r\n{connection}\r\n",
        sim.addr()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("the server closes the connection at the end of the body")
        .unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Raw {
        status_line,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// Every chunk of an XVA read and verified; the number of disk bytes.
async fn verified_disk_bytes(xva: Vec<u8>) -> u64 {
    let mut reader = XvaReader::open(std::io::Cursor::new(xva), ReadOptions::default())
        .await
        .expect("a readable XVA");
    let mut bytes = 0;
    while let Some(chunk) = reader.next_chunk().await.expect("every chunk verifies") {
        bytes += chunk.data.len() as u64;
    }
    bytes
}

fn assert_close_delimited(raw: &Raw) {
    assert_eq!(raw.status_line, "HTTP/1.0 200 OK");
    assert_eq!(raw.header("connection"), Some("close"));
    assert_eq!(raw.header("content-length"), None);
    assert_eq!(raw.header("transfer-encoding"), None);
    assert!(
        raw.header("task-id")
            .is_some_and(|t| t.starts_with("OpaqueRef:"))
    );
}

#[tokio::test]
async fn export_is_http_1_0_and_ends_when_the_server_closes() {
    let (sim, session) = demo().await;
    let vm = vm_named(&session, "legacy-crm").await;
    let target = format!("/export?session_id={}&ref={vm}", session.reference());
    for version in ["HTTP/1.1", "HTTP/1.0"] {
        let raw = raw_get(&sim, &target, version).await;
        assert_close_delimited(&raw);
        assert_eq!(
            raw.header("content-disposition"),
            Some("attachment; filename=\"export.xva\"")
        );
        let task = raw.header("task-id").unwrap().to_owned();
        assert!(verified_disk_bytes(raw.body).await > 0, "{version}");
        let status: String = session.call("task.get_status", (&task,)).await.unwrap();
        assert_eq!(status, "success", "{version}");
    }
}

#[tokio::test]
async fn database_dump_ends_when_the_server_closes() {
    let (sim, session) = demo().await;
    let target = format!("/pool/xmldbdump?session_id={}", session.reference());
    let raw = raw_get(&sim, &target, "HTTP/1.1").await;
    assert_close_delimited(&raw);
    assert_eq!(raw.header("content-type"), Some("text/xml"));
    let database = xapi_dr::metadata::read_db_xml(raw.body.as_slice()).expect("a whole DB XML");
    assert!(database.table("VM").is_some_and(|vms| vms.len() > 1));
}

#[tokio::test]
async fn export_metadata_carries_a_content_length() {
    let (sim, session) = demo().await;
    let vm = vm_named(&session, "legacy-crm").await;
    let target = format!(
        "/export_metadata?session_id={}&ref={vm}",
        session.reference()
    );
    let raw = raw_get(&sim, &target, "HTTP/1.0").await;
    assert!(
        raw.status_line.ends_with("200 OK"),
        "{} {}",
        raw.status_line,
        String::from_utf8_lossy(&raw.body)
    );
    let length: usize = raw
        .header("content-length")
        .expect("a Content-Length")
        .parse()
        .unwrap();
    assert_eq!(length, raw.body.len());
    assert_eq!(
        String::from_utf8_lossy(&raw.body[..7]),
        "ova.xml",
        "a tar whose first member is ova.xml"
    );
}

#[tokio::test]
async fn export_raw_vdi_ends_when_the_server_closes_in_every_format() {
    let (sim, session) = demo().await;
    let vm = vm_named(&session, "mail").await;
    let vbds: Vec<String> = session.call("VM.get_VBDs", (&vm,)).await.unwrap();
    let mut vdi = String::new();
    for vbd in vbds {
        let candidate: String = session.call("VBD.get_VDI", (&vbd,)).await.unwrap();
        if candidate != "OpaqueRef:NULL" {
            vdi = candidate;
            break;
        }
    }
    let uuid: String = session.call("VDI.get_uuid", (&vdi,)).await.unwrap();
    let image = std::fs::read(sim.disk_image("primary", &uuid).unwrap()).unwrap();
    for format in ["raw", "vhd", "tar"] {
        let target = format!(
            "/export_raw_vdi?session_id={}&vdi={uuid}&format={format}",
            session.reference()
        );
        let raw = raw_get(&sim, &target, "HTTP/1.1").await;
        assert_close_delimited(&raw);
        match format {
            "raw" => assert_eq!(raw.body, image),
            "vhd" => assert_eq!(&raw.body[raw.body.len() - 512..][..8], b"conectix"),
            _ => assert_eq!(&raw.body[..12], b"vdi/00000000"),
        }
    }
}

#[tokio::test]
async fn the_sdk_reads_close_delimited_bodies_to_the_end() {
    let (sim, session) = demo().await;
    let vm = vm_named(&session, "legacy-crm").await;
    let download = session.get("/export", &[("ref", &vm)], None).await.unwrap();
    assert_eq!(download.content_length, None);
    let bytes = download.bytes(1 << 30).await.unwrap().to_vec();
    let raw = raw_get(
        &sim,
        &format!("/export?session_id={}&ref={vm}", session.reference()),
        "HTTP/1.1",
    )
    .await;
    assert_eq!(
        verified_disk_bytes(bytes).await,
        verified_disk_bytes(raw.body).await,
        "the SDK reads as many disk bytes as the socket carries"
    );
}

#[tokio::test]
async fn a_close_delimited_export_reads_to_the_end_over_tls() {
    let sim = support::start(Scenario::Demo, true).await;
    let session = support::login(&sim).await;
    let vm = vm_named(&session, "legacy-crm").await;
    let download = session.get("/export", &[("ref", &vm)], None).await.unwrap();
    let task = download.task_id.clone().unwrap().to_string();
    let bytes = tokio::time::timeout(Duration::from_secs(60), download.bytes(1 << 30))
        .await
        .expect("the body ends when the server closes the TLS connection")
        .unwrap();
    assert!(verified_disk_bytes(bytes.to_vec()).await > 0);
    let status: String = session.call("task.get_status", (&task,)).await.unwrap();
    assert_eq!(status, "success");
}
