//! The HTTP data plane over real sockets: credentials in the cookie, `task-id`, redirects,
//! streaming downloads, `Content-Length` uploads, Unix sockets.

use crate::mock_xapi;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use mock_xapi::{Answer, pattern};
use tokio::io::AsyncReadExt;
use xapi_core::Error;
use xapi_core::api::Task;
use xapi_core::client::{Client, Protocol};
use xapi_core::error::Retry;
use xapi_core::wire::Ref;

const SESSION: &str = "OpaqueRef:11111111-2222-3333-4444-555555555555";
const TASK: &str = "OpaqueRef:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

fn session_for(url: &str) -> xapi_core::client::SessionHandle {
    Client::builder(url)
        .build()
        .expect("valid url")
        .attach_session(Ref::new(SESSION))
}

fn cookie_ok(seen: &mock_xapi::Seen) -> bool {
    seen.header("cookie")
        .is_some_and(|c| c.contains(&format!("session_id={SESSION}")))
}

#[tokio::test]
async fn get_sends_credentials_in_the_cookie_and_streams_the_body() {
    let payload = Bytes::from(pattern(3 << 20));
    let served = payload.clone();
    let server = mock_xapi::start(move |seen| {
        if seen.path != "/export" || !cookie_ok(seen) {
            return Answer::new(401, "no session");
        }
        Answer::new(200, served.clone()).header("task-id", TASK)
    })
    .await;
    let session = session_for(&server.url);
    let task: Ref<Task> = Ref::new(TASK);
    let download = session
        .get(
            "/export",
            &[("uuid", "vm-uuid-1"), ("use_compression", "zstd")],
            Some(&task),
        )
        .await
        .expect("export answers");
    assert_eq!(download.status, 200);
    assert_eq!(download.task_id, Some(Ref::new(TASK)));
    let mut stream = download.into_stream();
    let mut received = Vec::new();
    while let Some(chunk) = stream.next().await {
        received.extend_from_slice(&chunk.expect("chunk"));
    }
    assert_eq!(received.len(), payload.len());
    assert!(
        received == payload,
        "downloaded bytes differ from the served ones"
    );

    let request = &server.requests()[0];
    assert_eq!(request.query, "uuid=vm-uuid-1&use_compression=zstd");
    assert!(
        !request.query.contains("session_id"),
        "credentials leaked into the url"
    );
    let cookie = request.header("cookie").expect("cookie header");
    assert_eq!(cookie, format!("session_id={SESSION}; task_id={TASK}"));
}

#[tokio::test]
async fn get_follows_a_302_to_another_host_and_re_adds_the_cookie() {
    let payload = Bytes::from(pattern(100_000));
    let served = payload.clone();
    let target = mock_xapi::start(move |seen| {
        if cookie_ok(seen) {
            Answer::new(200, served.clone()).header("task-id", TASK)
        } else {
            Answer::new(401, "cookie missing after redirect")
        }
    })
    .await;
    let location = format!("{}/export_raw_vdi?vdi=OpaqueRef:v&format=raw", target.url);
    let origin =
        mock_xapi::start(move |_| Answer::new(302, "").header("location", &location)).await;
    let session = session_for(&origin.url);
    let download = session
        .get(
            "/export_raw_vdi",
            &[("vdi", "OpaqueRef:v"), ("format", "raw")],
            None,
        )
        .await
        .expect("redirect followed");
    assert!(download.url.starts_with(&target.url), "{}", download.url);
    let mut body = Vec::new();
    download
        .into_async_read()
        .read_to_end(&mut body)
        .await
        .expect("read body");
    assert!(body == payload);
    assert_eq!(origin.requests().len(), 1);
    let redirected = &target.requests()[0];
    assert_eq!(redirected.path, "/export_raw_vdi");
    assert_eq!(redirected.query, "vdi=OpaqueRef:v&format=raw");
    assert!(cookie_ok(redirected));
}

#[tokio::test]
async fn get_reports_an_http_error_with_the_url() {
    let server = mock_xapi::start(|_| Answer::new(404, "not here")).await;
    let err = session_for(&server.url)
        .get("/vncsnapshot", &[("uuid", "x")], None)
        .await
        .expect_err("404 is an error");
    match err {
        Error::Http { status, url } => {
            assert_eq!(status, 404);
            assert!(url.contains("/vncsnapshot?uuid=x"), "{url}");
        }
        other => panic!("expected Http, got {other:?}"),
    }
}

#[tokio::test]
async fn put_sends_content_length_and_never_chunked() {
    let received = Arc::new(Mutex::new(None));
    let log = received.clone();
    let server = mock_xapi::start(move |seen| {
        *log.lock().unwrap() = Some((
            seen.header("content-length").map(str::to_owned),
            seen.header("transfer-encoding").map(str::to_owned),
            seen.body.clone(),
        ));
        if seen.header("transfer-encoding").is_some() {
            // what xapi's /import does with chunked uploads
            return Answer::new(403, "IMPORT_ERROR_CANNOT_HANDLE_CHUNKED");
        }
        Answer::new(200, "").header("task-id", TASK)
    })
    .await;
    let payload = pattern(2 << 20);
    let chunks: Vec<Result<Bytes, std::io::Error>> = payload
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let upload = session_for(&server.url)
        .put(
            "/import",
            &[("sr_id", "OpaqueRef:sr")],
            None,
            futures::stream::iter(chunks),
            payload.len() as u64,
        )
        .await
        .expect("upload accepted");
    assert_eq!(upload.status, 200);
    assert_eq!(upload.bytes_sent, payload.len() as u64);
    assert_eq!(upload.task_id, Some(Ref::new(TASK)));
    let (length, chunked, body) = received.lock().unwrap().clone().expect("request seen");
    assert_eq!(length.as_deref(), Some(payload.len().to_string().as_str()));
    assert_eq!(chunked, None);
    assert!(body == payload, "server received different bytes");
}

#[tokio::test]
async fn put_from_a_reader_uploads_every_byte() {
    let server = mock_xapi::start(|seen| Answer::new(200, seen.body.len().to_string())).await;
    let payload = pattern(1_500_000);
    let upload = session_for(&server.url)
        .put_reader(
            "/import_raw_vdi",
            &[("vdi", "OpaqueRef:v"), ("format", "raw")],
            None,
            std::io::Cursor::new(payload.clone()),
            payload.len() as u64,
        )
        .await
        .expect("upload accepted");
    assert_eq!(upload.body, Bytes::from(payload.len().to_string()));
}

#[tokio::test]
async fn put_refuses_a_body_shorter_than_announced() {
    let server = mock_xapi::start(|_| Answer::new(200, "")).await;
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![Ok(Bytes::from_static(b"only ten b"))];
    let err = session_for(&server.url)
        .put("/import", &[], None, futures::stream::iter(chunks), 100)
        .await
        .expect_err("short body is an error");
    match err {
        Error::BodyLength {
            expected, actual, ..
        } => {
            assert_eq!(expected, 100);
            assert_eq!(actual, 10);
        }
        other => panic!("expected BodyLength, got {other:?}"),
    }
}

#[tokio::test]
async fn put_reports_the_failure_of_the_callers_stream() {
    let server = mock_xapi::start(|_| Answer::new(200, "")).await;
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"12345")),
        Err(std::io::Error::other("disk read failed at sector 8")),
    ];
    let err = session_for(&server.url)
        .put("/import", &[], None, futures::stream::iter(chunks), 100)
        .await
        .expect_err("a failing body is an error");
    assert!(
        err.to_string().contains("disk read failed at sector 8"),
        "{err}"
    );
}

#[tokio::test]
async fn data_plane_works_over_a_unix_socket() {
    let (server, _path) = mock_xapi::start_unix(|seen| {
        if cookie_ok(seen) {
            Answer::new(200, "<database/>")
        } else {
            Answer::new(401, "")
        }
    })
    .await;
    let download = session_for(&server.url)
        .get("/pool/xmldbdump", &[], None)
        .await
        .expect("unix socket answers");
    assert_eq!(download.bytes(1024).await.expect("body"), "<database/>");
    assert_eq!(server.requests()[0].header("host"), Some("localhost"));
}

#[tokio::test]
async fn a_dead_server_is_a_connect_error_safe_to_retry() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let err = session_for(&url)
        .get("/export", &[], None)
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert_eq!(err.retry(), Retry::Safe, "nothing was sent");
    assert!(!err.may_have_run());
}

#[tokio::test]
async fn a_connection_cut_after_the_request_may_have_run() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        // Read the whole request head, then hang up without answering.
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        drop(stream);
        seen
    });
    let err = Client::builder(&url)
        .protocol(Protocol::XmlRpc)
        .build()
        .expect("client")
        .call_raw::<String>("VM.snapshot", ("OpaqueRef:vm", "nightly"))
        .await
        .expect_err("the server hung up");
    let request = server.await.expect("server task");
    assert!(
        String::from_utf8_lossy(&request).starts_with("POST "),
        "the request reached the server"
    );
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert_eq!(
        err.retry(),
        Retry::IfIdempotent,
        "a VM.snapshot whose answer was lost may have run"
    );
    assert!(!err.is_retryable());
    assert!(err.may_have_run());
}

/// A one-shot server on a raw socket: reads the request head, then writes `answer` in the
/// given pieces (each flushed on its own); returns its URL and the request head it read.
async fn raw_server(answer: Vec<&'static [u8]>) -> (String, tokio::task::JoinHandle<String>) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let served = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            socket.read_exact(&mut byte).await.expect("request head");
            head.push(byte[0]);
        }
        for piece in answer {
            socket.write_all(piece).await.expect("write");
            socket.flush().await.expect("flush");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        String::from_utf8(head).expect("ascii head")
    });
    (url, served)
}

async fn download_all(url: &str) -> Result<Vec<u8>, Error> {
    let download = session_for(url).get("/export", &[], None).await?;
    let mut stream = download.into_stream();
    let mut received = Vec::new();
    while let Some(chunk) = stream.next().await {
        received.extend_from_slice(&chunk?);
    }
    Ok(received)
}

#[tokio::test]
async fn a_chunked_body_split_anywhere_is_decoded() {
    let (url, served) = raw_server(vec![
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n",
        b"\r\n5;ext=1\r\nhel",
        b"lo\r\n",
        b"6\r",
        b"\n world\r\n0\r\nTrailer: x\r\n\r\n",
    ])
    .await;
    assert_eq!(download_all(&url).await.expect("a body"), b"hello world");
    let head = served.await.expect("server");
    assert!(head.starts_with("GET /export HTTP/1.1\r\n"), "{head}");
    assert!(head.contains(&format!("session_id={SESSION}")), "{head}");
    assert!(head.contains("Connection: close\r\n"), "{head}");
}

#[tokio::test]
async fn a_close_delimited_body_ends_with_the_connection() {
    let (url, _served) = raw_server(vec![
        b"HTTP/1.0 200 OK\r\ntask-id: OpaqueRef:t\r\nConnection: close\r\n\r\nfirst ",
        b"second",
    ])
    .await;
    assert_eq!(download_all(&url).await.expect("a body"), b"first second");
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_a_transport_error() {
    let (url, _served) = raw_server(vec![
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
        b"12345",
    ])
    .await;
    let err = download_all(&url).await.expect_err("cut short");
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test]
async fn a_malformed_chunk_size_is_a_protocol_error() {
    let (url, _served) = raw_server(vec![
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    ])
    .await;
    let err = download_all(&url).await.expect_err("bad framing");
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
}
