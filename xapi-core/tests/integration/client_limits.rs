//! Deadlines, size limits and xapi's upload quirks, against raw TCP peers that misbehave on
//! purpose.

use crate::mock_xapi;

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use mock_xapi::Answer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use xapi_core::Error;
use xapi_core::client::{Client, Timeouts};
use xapi_core::error::{Retry, TimeoutKind};
use xapi_core::wire::{Limits, Ref};

fn short_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        call: Duration::from_millis(300),
        idle: Duration::from_secs(60),
        transfer_inactivity: Duration::from_millis(300),
    }
}

/// A peer that accepts connections, reads what comes, and runs `script` on each.
async fn raw_peer<F, Fut>(script: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(script(stream));
        }
    });
    url
}

/// Read a request head (up to the blank line); returns it as text.
async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test]
async fn a_call_without_answer_times_out() {
    let url = raw_peer(|mut stream| async move {
        let _ = read_head(&mut stream).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let client = Client::builder(&url)
        .timeouts(short_timeouts())
        .build()
        .expect("client");
    let started = std::time::Instant::now();
    let err = client
        .call_raw::<String>("session.login_with_password", ("root", "pw", "1.0", "t"))
        .await
        .expect_err("no answer");
    assert!(started.elapsed() < Duration::from_secs(5));
    match &err {
        Error::Timeout { kind, url, .. } => {
            assert_eq!(*kind, TimeoutKind::Call);
            assert!(url.ends_with("/jsonrpc"), "{url}");
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert_eq!(err.retry(), Retry::IfIdempotent, "the call may have run");
}

#[tokio::test]
async fn an_oversized_answer_is_refused() {
    let server = mock_xapi::start(|seen| {
        let call = seen.rpc();
        Answer::ok(&call, mock_xapi::s(&"x".repeat(10_000)))
    })
    .await;
    assert_refused_as_too_large(Client::builder(&server.url)).await;
}

/// A `host.get_log` call through `builder` with a response limit of 1,000 bytes fails with
/// `ResponseTooLarge`.
async fn assert_refused_as_too_large(builder: xapi_core::client::ClientBuilder) {
    let client = builder
        .limits(Limits {
            max_response_bytes: 1_000,
            ..Limits::default()
        })
        .build()
        .expect("client");
    let err = client
        .call_raw::<String>("host.get_log", ("OpaqueRef:h",))
        .await
        .expect_err("too large");
    assert!(
        matches!(err, Error::ResponseTooLarge { limit: 1_000, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_oversized_chunked_answer_is_refused_before_it_is_all_read() {
    // No Content-Length: the limit is found while the chunks arrive. The peer offers far more
    // than the limit and the client must stop reading (and not wait for the rest).
    let url = raw_peer(|mut stream| async move {
        let _ = read_head(&mut stream).await;
        let head =
            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n";
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = format!("{:x}\r\n{}\r\n", 400, "x".repeat(400));
        for _ in 0..10_000 {
            if stream.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await;
    assert_refused_as_too_large(
        Client::builder(&url).protocol(xapi_core::client::Protocol::XmlRpc),
    )
    .await;
}

#[tokio::test]
async fn a_stalled_download_times_out() {
    let url = raw_peer(|mut stream| async move {
        let _ = read_head(&mut stream).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\ntask-id: OpaqueRef:t\r\n\r\nfirst bytes")
            .await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let client = Client::builder(&url)
        .timeouts(short_timeouts())
        .build()
        .expect("client");
    let download = client
        .attach_session(Ref::new("OpaqueRef:s"))
        .get("/export", &[("uuid", "u")], None)
        .await
        .expect("head arrives");
    let mut stream = download.into_stream();
    let first = stream.next().await.expect("a chunk").expect("data");
    assert_eq!(first, Bytes::from_static(b"first bytes"));
    let err = stream.next().await.expect("an item").expect_err("stalled");
    assert!(
        matches!(
            err,
            Error::Timeout {
                kind: TimeoutKind::Inactivity,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_http_1_0_export_without_length_streams_to_the_close() {
    // What xapi's /export answers: HTTP/1.0, Connection: close, no Content-Length.
    let payload = mock_xapi::pattern(700_000);
    let served = payload.clone();
    let url = raw_peer(move |mut stream| {
        let served = served.clone();
        async move {
            let _ = read_head(&mut stream).await;
            let _ = stream
                .write_all(b"HTTP/1.0 200 OK\r\nConnection: close\r\ntask-id: OpaqueRef:t\r\ncontent-type: application/octet-stream\r\n\r\n")
                .await;
            for chunk in served.chunks(50_000) {
                let _ = stream.write_all(chunk).await;
            }
            let _ = stream.shutdown().await;
        }
    })
    .await;
    let download = Client::builder(&url)
        .build()
        .expect("client")
        .attach_session(Ref::new("OpaqueRef:s"))
        .get("/export", &[("uuid", "u")], None)
        .await
        .expect("head");
    assert_eq!(download.content_length, None);
    assert_eq!(download.task_id, Some(Ref::new("OpaqueRef:t")));
    let body = download.bytes(1 << 20).await.expect("body");
    assert!(body == payload);
}

#[tokio::test]
async fn put_waits_for_every_byte_when_the_server_answers_first() {
    // xapi's /import answers 200 before it reads the body; the upload must still complete.
    let (tx, rx) = tokio::sync::oneshot::channel::<(String, usize)>();
    let tx = std::sync::Mutex::new(Some(tx));
    let url = raw_peer(move |mut stream| {
        let tx = tx.lock().expect("lock").take();
        async move {
            let head = read_head(&mut stream).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ntask-id: OpaqueRef:import\r\ncontent-length: 0\r\ncontent-type: application/octet-stream\r\n\r\n")
                .await;
            let mut received = 0usize;
            let mut buf = vec![0u8; 65536];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => received += n,
                }
                if received >= 3_000_000 {
                    break;
                }
            }
            if let Some(tx) = tx {
                let _ = tx.send((head, received));
            }
        }
    })
    .await;
    let payload = mock_xapi::pattern(3_000_000);
    let chunks: Vec<Result<Bytes, std::io::Error>> = payload
        .chunks(100_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let upload = Client::builder(&url)
        .build()
        .expect("client")
        .attach_session(Ref::new("OpaqueRef:s"))
        .put(
            "/import",
            &[("sr_id", "OpaqueRef:sr")],
            None,
            futures::stream::iter(chunks),
            3_000_000,
        )
        .await
        .expect("upload");
    assert_eq!(upload.bytes_sent, 3_000_000);
    assert_eq!(upload.task_id, Some(Ref::new("OpaqueRef:import")));
    let (head, received) = rx.await.expect("peer report");
    assert_eq!(received, 3_000_000);
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-length: 3000000"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(head.contains("cookie: session_id=opaqueref:s"), "{head}");
}

#[tokio::test]
async fn a_kept_alive_connection_closed_by_the_server_is_replaced() {
    // A peer that answers one request per connection, then closes it without saying
    // "connection: close" (as a restarting xapi or an idle timeout would).
    let url = raw_peer(|mut stream| async move {
        let head = read_head(&mut stream).await.to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        let _ = stream.read_exact(&mut body).await;
        let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let answer =
            serde_json::json!({"jsonrpc": "2.0", "result": "OpaqueRef:pong", "id": request["id"]})
                .to_string();
        let _ = stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                    answer.len()
                )
                .as_bytes(),
            )
            .await;
        let _ = stream.shutdown().await;
    })
    .await;
    let client = Client::builder(&url).build().expect("client");
    // Half the calls come right after the previous answer (the close may not be noticed yet:
    // the request fails on the dead connection and is resent), half after a pause.
    for i in 0..6 {
        let answer: Ref<xapi_core::api::Session> = client
            .call_raw("session.login_with_password", ("root", "pw", "1.0", "t"))
            .await
            .expect("each call finds a live connection");
        assert_eq!(answer, Ref::new("OpaqueRef:pong"));
        if i % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
