//! Uploads are taken over as xapi takes them (reference §5.4): `200 OK` with the `task-id` header
//! goes out before the body is read, the outcome arrives through the task, and the response
//! ends when the work is done. Checked from a raw socket the way Xen Orchestra's `putResource`
//! sends a stream of unknown length: a `Content-Length` of 1 PiB, the bytes, and no close. An
//! import that fails early stops reading and closes: the SDK's `put` still hands back the task
//! (`Upload::stopped_early`).

use crate::support;

use std::time::Duration;

use support::{demo, download, first_disk_of, task_outcome, vm_named};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use xapi_sim::SimHandle;

/// Xen Orchestra's length for a body whose length it does not know.
const ONE_PIB: u64 = 1 << 50;

/// The status line and headers (lower-case names) of a response, read up to the blank line.
async fn read_head(reader: &mut BufReader<TcpStream>) -> (String, Vec<(String, String)>) {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).await.unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    (status_line.trim_end().to_owned(), headers)
}

/// Read the rest of the response, failing with `why` if the server has not ended it within
/// `seconds`.
async fn read_rest(reader: &mut BufReader<TcpStream>, seconds: u64, why: &str) -> Vec<u8> {
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(seconds), reader.read_to_end(&mut rest))
        .await
        .expect(why)
        .unwrap();
    rest
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Send the head of `PUT target` with `content_length`, then read the response head before any
/// body byte is sent; fails if the answer waits for the body.
async fn put_head_first(
    sim: &SimHandle,
    target: &str,
    content_length: u64,
) -> (BufReader<TcpStream>, String, Vec<(String, String)>) {
    let mut stream = TcpStream::connect(sim.addr()).await.unwrap();
    let head = format!(
        "PUT {target} HTTP/1.1\r\nHost: {}\r\nContent-Length: {content_length}\r\n\r\n",
        sim.addr()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(stream);
    let (status, headers) = tokio::time::timeout(Duration::from_secs(10), read_head(&mut reader))
        .await
        .expect("the answer comes before the body is sent");
    (reader, status, headers)
}

#[tokio::test]
async fn a_vm_import_of_unknown_length_is_taken_over_first_and_ends_with_the_archive() {
    let (sim, session) = demo().await;
    let vm = vm_named(&session, "legacy-crm").await;
    let xva = download(&session, "/export", &[("ref", &vm)]).await;
    let target = format!("/import/?session_id={}", session.reference());
    let (mut reader, status, headers) = put_head_first(&sim, &target, ONE_PIB).await;
    assert_eq!(status, "HTTP/1.0 200 OK");
    assert_eq!(header(&headers, "connection"), Some("close"));
    assert_eq!(header(&headers, "content-length"), None);
    let task = header(&headers, "task-id")
        .expect("a task-id header")
        .to_owned();
    let (pending, _) = task_outcome(&session, &task).await;
    assert_eq!(pending, "pending", "nothing has been read yet");

    // the archive, then nothing more and no close: the server ends the response once the
    // archive's end has been read and the task is complete
    reader.get_mut().write_all(&xva).await.unwrap();
    let rest = read_rest(&mut reader, 60, "the response ends when the import is done").await;
    assert!(rest.is_empty(), "no body: the outcome is on the task");
    let (status, result) = task_outcome(&session, &task).await;
    assert_eq!(status, "success", "{result}");
    assert!(result.contains("OpaqueRef:"), "{result}");
}

#[tokio::test]
async fn a_failed_import_is_reported_on_the_task_after_a_200() {
    let (sim, session) = demo().await;
    let target = format!("/import?session_id={}", session.reference());
    let garbage = vec![0x5a_u8; 4096];
    let (mut reader, status, headers) = put_head_first(&sim, &target, garbage.len() as u64).await;
    assert_eq!(status, "HTTP/1.0 200 OK");
    let task = header(&headers, "task-id").unwrap().to_owned();
    reader.get_mut().write_all(&garbage).await.unwrap();
    let rest = read_rest(
        &mut reader,
        30,
        "the response ends when the import has failed",
    )
    .await;
    assert!(rest.is_empty(), "no body: the outcome is on the task");
    let (status, info) = task_outcome(&session, &task).await;
    assert_eq!(status, "failure");
    assert!(info.starts_with("IMPORT_ERROR"), "{info}");
}

#[tokio::test]
async fn a_raw_disk_upload_is_taken_over_before_its_body_and_a_bad_target_is_refused_first() {
    let (sim, session) = demo().await;
    let vdi = first_disk_of(&session, "legacy-crm").await;
    let body = vec![0xa5_u8; 1 << 20];
    let target = format!(
        "/import_raw_vdi?session_id={}&vdi={vdi}&format=raw",
        session.reference()
    );
    let (mut reader, status, headers) = put_head_first(&sim, &target, body.len() as u64).await;
    assert_eq!(status, "HTTP/1.0 200 OK");
    let task = header(&headers, "task-id").unwrap().to_owned();
    reader.get_mut().write_all(&body).await.unwrap();
    let rest = read_rest(
        &mut reader,
        30,
        "the response ends when the disk is written",
    )
    .await;
    assert!(rest.is_empty(), "no body: the outcome is on the task");
    let (status, result) = task_outcome(&session, &task).await;
    assert_eq!(status, "success", "{result}");
    assert!(result.contains(&vdi), "{result}");

    // no VDI and a VHD body cannot go straight into an SR: xapi refuses before it reads
    let target = format!(
        "/import_raw_vdi?session_id={}&format=vhd",
        session.reference()
    );
    let (_, status, _) = put_head_first(&sim, &target, 1024).await;
    assert!(status.ends_with("400 Bad Request"), "{status}");
}

#[tokio::test]
async fn paths_are_routed_by_longest_prefix_and_unclaimed_ones_are_forbidden() {
    let (sim, session) = demo().await;
    let vm = vm_named(&session, "legacy-crm").await;
    // Xen Orchestra's spelling of the export path
    let xva = download(&session, "/export/", &[("ref", &vm)]).await;
    assert!(xva.len() > 1024);
    let mut stream = TcpStream::connect(sim.addr()).await.unwrap();
    let head = format!(
        "GET /no/such/handler HTTP/1.1\r\nHost: {}\r\n\r\n",
        sim.addr()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader).await;
    assert_eq!(status, "HTTP/1.1 403 Forbidden");
    assert_eq!(header(&headers, "connection"), Some("close"));
}

#[tokio::test]
async fn an_import_without_a_usable_sr_is_refused_before_the_body() {
    let (sim, session) = demo().await;
    // no such SR: xapi's lookup raises before it answers, a 500, and the task fails
    let target = format!(
        "/import?session_id={}&sr_uuid=00000000-0000-0000-0000-000000000000",
        session.reference()
    );
    let (_, status, headers) = put_head_first(&sim, &target, 4096).await;
    assert_eq!(status, "HTTP/1.1 500 Internal Server Error");
    assert!(header(&headers, "task-id").is_none());

    // an ISO library: 400, SR_OPERATION_NOT_SUPPORTED on the task
    let sr: String = session
        .call(
            "SR.introduce",
            (
                "5c0b0e5e-0000-4000-8000-0000000150ff",
                "ISO library",
                "",
                "iso",
                "iso",
                true,
                std::collections::BTreeMap::<String, String>::new(),
            ),
        )
        .await
        .unwrap();
    let task: String = session
        .call("task.create", ("import into an ISO SR", ""))
        .await
        .unwrap();
    let target = format!(
        "/import?session_id={}&sr_id={sr}&task_id={task}",
        session.reference()
    );
    let (_, status, _) = put_head_first(&sim, &target, 4096).await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    let (status, info) = task_outcome(&session, &task).await;
    assert_eq!(
        (status.as_str(), info.as_str()),
        ("failure", "SR_OPERATION_NOT_SUPPORTED")
    );
}

#[tokio::test]
async fn the_sdk_learns_the_task_of_an_upload_the_server_stopped_reading() {
    let (sim, session) = demo().await;
    // a VM with 30 MiB of data in its first disk, exported with its first chunk's checksum
    // wrong: the import fails at once, long before the body has been sent
    let vm = vm_named(&session, "legacy-crm").await;
    let vdi = first_disk_of(&session, "legacy-crm").await;
    let size: u64 = session.call("VDI.get_virtual_size", (&vdi,)).await.unwrap();
    let noise: Vec<u8> = (0..size)
        .map(|i| ((i * 2_654_435_761) >> 13) as u8 | 1)
        .collect();
    let (status, _) = support::put_and_wait(
        &session,
        "/import_raw_vdi",
        &[("vdi", &vdi), ("format", "raw")],
        noise,
    )
    .await;
    assert_eq!(status, "success");
    sim.faults().corrupt_next_export_checksum();
    let xva = download(&session, "/export", &[("ref", &vm)]).await;
    assert!(xva.len() as u64 > size);

    let length = xva.len() as u64;
    let stream = futures::stream::iter(
        xva.chunks(64 << 10)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let upload = session
        .put("/import", &[], None, stream, length)
        .await
        .expect("a 200 with a task, even though the server stopped reading");
    assert!(upload.stopped_early, "the server stopped reading early");
    assert!(upload.bytes_sent < length);
    let task = upload.task_id.expect("a task-id header").to_string();
    let (status, info) = task_outcome(&session, &task).await;
    assert_eq!(status, "failure");
    assert!(info.starts_with("IMPORT_ERROR"), "{info}");
}
