//! Uploads that follow redirects, over real sockets: xapi's `/import` answers `302` to the host
//! that sees the SR, often before it reads a byte of the body.

use crate::mock_xapi;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use mock_xapi::{Answer, Mock, Seen, pattern};
use xapi_core::Error;
use xapi_core::api::Task;
use xapi_core::client::{Client, SessionHandle};
use xapi_core::wire::Ref;

const SESSION: &str = "OpaqueRef:11111111-2222-3333-4444-555555555555";
const TASK: &str = "OpaqueRef:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

fn session_for(url: &str) -> SessionHandle {
    Client::builder(url)
        .build()
        .expect("valid url")
        .attach_session(Ref::new(SESSION))
}

fn cookie_of(seen: &Seen) -> Option<String> {
    seen.header("cookie").map(str::to_owned)
}

/// The host that sees the SR: takes the body, answers 200 with a task id.
async fn target_host() -> (Mock, Arc<Mutex<Vec<Seen>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let log = bodies.clone();
    let server = mock_xapi::start(move |seen| {
        log.lock().unwrap().push(seen.clone());
        if cookie_of(seen).is_some_and(|c| c.contains(SESSION)) {
            Answer::new(200, "").header("task-id", TASK)
        } else {
            Answer::new(401, "cookie missing after redirect")
        }
    })
    .await;
    (server, bodies)
}

/// A body of `pattern(len)` produced lazily in 256 KiB chunks, counting the opens and the
/// bytes each open produced.
struct Source {
    len: usize,
    opens: Arc<AtomicUsize>,
    produced: Arc<Mutex<Vec<Arc<AtomicU64>>>>,
}

impl Source {
    fn new(len: usize) -> Self {
        Self {
            len,
            opens: Arc::new(AtomicUsize::new(0)),
            produced: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn opener(
        &self,
    ) -> impl FnMut() -> std::future::Ready<
        Result<futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>>, std::io::Error>,
    > + use<> {
        let len = self.len;
        let opens = self.opens.clone();
        let produced = self.produced.clone();
        move || {
            opens.fetch_add(1, Ordering::SeqCst);
            let counter = Arc::new(AtomicU64::new(0));
            produced.lock().unwrap().push(counter.clone());
            let data = Bytes::from(pattern(len));
            let chunk = 256 * 1024;
            let stream = futures::stream::iter((0..len).step_by(chunk).map(move |start| {
                let piece = data.slice(start..(start + chunk).min(len));
                counter.fetch_add(piece.len() as u64, Ordering::SeqCst);
                Ok(piece)
            }));
            std::future::ready(Ok(
                Box::pin(stream) as futures::stream::BoxStream<'static, _>
            ))
        }
    }

    fn produced(&self) -> Vec<u64> {
        self.produced
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect()
    }
}

#[tokio::test]
async fn early_redirect_stops_sending_and_the_body_reaches_the_other_host() {
    let (target, received) = target_host().await;
    let location = format!("{}/import?sr_id=OpaqueRef:sr-2", target.url);
    let first =
        mock_xapi::start_answer_first(move |_| Answer::new(302, "").header("location", &location))
            .await;
    let len = 48 << 20;
    let source = Source::new(len);
    let task: Ref<Task> = Ref::new("OpaqueRef:import-task");
    let upload = session_for(&first.url)
        .put_reopenable(
            "/import",
            &[("sr_id", "OpaqueRef:sr-2")],
            Some(&task),
            len as u64,
            source.opener(),
        )
        .await
        .expect("upload follows the redirect");
    assert_eq!(upload.status, 200);
    assert_eq!(upload.bytes_sent, len as u64);
    assert_eq!(upload.task_id, Some(Ref::new(TASK)));
    assert_eq!(source.opens.load(Ordering::SeqCst), 2);
    let produced = source.produced();
    assert!(
        produced[0] < (len as u64) / 2,
        "the redirected attempt should stop early, it produced {} of {len} bytes",
        produced[0]
    );
    let seen = received.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].query, "sr_id=OpaqueRef:sr-2");
    let cookie = cookie_of(&seen[0]).expect("cookie re-added on the new host");
    assert!(
        cookie.contains(&format!("session_id={SESSION}")),
        "{cookie}"
    );
    assert!(cookie.contains("task_id=OpaqueRef:import-task"), "{cookie}");
    assert_eq!(
        seen[0].header("content-length"),
        Some(len.to_string().as_str())
    );
    assert!(
        seen[0].body == pattern(len),
        "the other host got other bytes"
    );
}

#[tokio::test]
async fn seekable_body_is_rewound_to_where_it_started_after_a_late_redirect() {
    let (target, received) = target_host().await;
    let location = format!("{}/import_raw_vdi?vdi=OpaqueRef:v&format=raw", target.url);
    // This host reads the whole body before redirecting: the reader must be rewound.
    let first = mock_xapi::start(move |seen| {
        assert_eq!(seen.body.len(), 1_000_000, "first host got the whole body");
        Answer::new(302, "").header("location", &location)
    })
    .await;
    let file = pattern(1_000_100);
    let mut reader = std::io::Cursor::new(file.clone());
    reader.set_position(100);
    let upload = session_for(&first.url)
        .put_seekable(
            "/import_raw_vdi",
            &[("vdi", "OpaqueRef:v"), ("format", "raw")],
            None,
            reader,
            1_000_000,
        )
        .await
        .expect("upload follows the redirect");
    assert_eq!(upload.bytes_sent, 1_000_000);
    let seen = received.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/import_raw_vdi");
    assert!(
        seen[0].body == file[100..],
        "the other host got other bytes"
    );
    assert_eq!(first.requests().len(), 1);
}

#[tokio::test]
async fn one_shot_put_refuses_a_redirect_and_names_the_reopenable_variant() {
    let first = mock_xapi::start_answer_first(|_| {
        Answer::new(302, "").header(
            "location",
            "https://10.0.0.2/import?sr_id=x&session_id=OpaqueRef:secret",
        )
    })
    .await;
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![Ok(Bytes::from_static(b"0123456789"))];
    let err = session_for(&first.url)
        .put("/import", &[], None, futures::stream::iter(chunks), 10)
        .await
        .expect_err("a one-shot body cannot follow a redirect");
    let text = err.to_string();
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    assert!(text.contains("put_reopenable"), "{text}");
    assert!(text.contains("10.0.0.2"), "{text}");
    assert!(
        !text.contains("OpaqueRef:secret"),
        "credentials leaked: {text}"
    );
}

#[tokio::test]
async fn upload_redirect_loops_are_bounded() {
    let url = Arc::new(Mutex::new(String::new()));
    let own = url.clone();
    let looping = mock_xapi::start_answer_first(move |_| {
        let location = format!("{}/import", own.lock().unwrap());
        Answer::new(302, "").header("location", &location)
    })
    .await;
    *url.lock().unwrap() = looping.url.clone();
    let source = Source::new(4096);
    let err = session_for(&looping.url)
        .put_reopenable("/import", &[], None, 4096, source.opener())
        .await
        .expect_err("a redirect loop fails");
    assert!(err.to_string().contains("more than 5 redirects"), "{err}");
    assert_eq!(source.opens.load(Ordering::SeqCst), 6);
}

#[tokio::test]
async fn a_body_that_cannot_be_reopened_is_a_body_error() {
    let (target, _) = target_host().await;
    let location = format!("{}/import", target.url);
    let first =
        mock_xapi::start_answer_first(move |_| Answer::new(302, "").header("location", &location))
            .await;
    let mut opens = 0;
    let err = session_for(&first.url)
        .put_reopenable("/import", &[], None, 4, move || {
            opens += 1;
            let outcome = if opens == 1 {
                Ok(futures::stream::iter(vec![Ok::<_, std::io::Error>(
                    Bytes::from_static(b"abcd"),
                )]))
            } else {
                Err(std::io::Error::other("backup file vanished"))
            };
            std::future::ready(outcome)
        })
        .await
        .expect_err("the second open fails");
    assert!(matches!(err, Error::Body { .. }), "{err:?}");
    assert!(err.to_string().contains("backup file vanished"), "{err}");
}

#[tokio::test]
async fn upload_redirect_applies_the_target_hosts_pin() {
    let cert_a = mock_xapi::self_signed();
    let cert_b = mock_xapi::self_signed();
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    let b = mock_xapi::start_tls(&cert_b, move |seen| {
        log.lock().unwrap().push(seen.body.clone());
        Answer::new(200, "").header("task-id", TASK)
    })
    .await;
    let b_port = b.addr.expect("tcp").port();
    let location = format!("https://localhost:{b_port}/import?sr_id=OpaqueRef:sr-b");
    let a = mock_xapi::start_tls(&cert_a, move |_| {
        Answer::new(302, "").header("location", &location)
    })
    .await;
    let pin_a = xapi_core::client::Sha256Fingerprint::of_der(&cert_a.der);
    let pin_b = xapi_core::client::Sha256Fingerprint::of_der(&cert_b.der);

    // Without a pin for the member, the body goes nowhere near it.
    let source = Source::new(100_000);
    let err = Client::builder(&a.url)
        .tls(xapi_core::client::TlsPolicy::Pinned(pin_a))
        .build()
        .expect("client")
        .attach_session(Ref::new(SESSION))
        .put_reopenable("/import", &[], None, 100_000, source.opener())
        .await
        .expect_err("no pin for the redirect target");
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(b.requests().is_empty());

    // With its pin, the member gets the whole body.
    let source = Source::new(100_000);
    let upload = Client::builder(&a.url)
        .tls(xapi_core::client::TlsPolicy::Pinned(pin_a))
        .pin_host(&format!("localhost:{b_port}"), pin_b)
        .build()
        .expect("client")
        .attach_session(Ref::new(SESSION))
        .put_reopenable("/import", &[], None, 100_000, source.opener())
        .await
        .expect("redirect followed under the member's pin");
    assert_eq!(upload.task_id, Some(Ref::new(TASK)));
    let bodies = received.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0] == pattern(100_000), "the member got other bytes");
}

#[tokio::test]
async fn expired_session_on_upload_logs_in_again_and_sends_the_body_again() {
    let logins = Arc::new(AtomicUsize::new(0));
    let count = logins.clone();
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    let server = mock_xapi::start(move |seen| {
        if seen.method == http::Method::POST {
            let call = seen.rpc();
            return match call.method.as_str() {
                "session.login_with_password" => {
                    let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                    Answer::ok(&call, mock_xapi::s(&format!("OpaqueRef:session-{n}")))
                }
                _ => Answer::ok(&call, mock_xapi::s("")),
            };
        }
        // The first session has expired by the time the upload starts.
        if cookie_of(seen).is_some_and(|c| c.contains("session_id=OpaqueRef:session-1")) {
            return Answer::new(401, "");
        }
        log.lock().unwrap().push(seen.body.clone());
        Answer::new(200, "").header("task-id", TASK)
    })
    .await;
    let session = Client::builder(&server.url)
        .build()
        .expect("client")
        .login_with_password(
            "root",
            xapi_core::client::Password::new("pw"),
            "1.0",
            "tests",
        )
        .await
        .expect("login");
    let source = Source::new(300_000);
    let upload = session
        .put_reopenable("/import", &[], None, 300_000, source.opener())
        .await
        .expect("upload after logging in again");
    assert_eq!(upload.status, 200);
    assert_eq!(logins.load(Ordering::SeqCst), 2);
    assert_eq!(source.opens.load(Ordering::SeqCst), 2);
    let bodies = received.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0] == pattern(300_000));
}
