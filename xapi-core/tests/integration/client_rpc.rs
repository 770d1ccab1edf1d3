//! Sessions, calls, tasks and events over real sockets, in both encodings, against a mock XAPI
//! whose answers are written by hand.

use crate::mock_xapi;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use mock_xapi::{Answer, RpcCall, Seen, V, s};
use serde::Deserialize;
use xapi_core::Error;
use xapi_core::api::{ErrorCode, EventOperation, Task, TaskStatusType};
use xapi_core::client::{
    Client, EventItem, EventOptions, Password, Protocol, Sha256Fingerprint, TlsPolicy,
};
use xapi_core::wire::Ref;

const PASSWORD: &str = "correct horse battery staple";

/// A pool with one session per successful login (`OpaqueRef:session-<n>`), where
/// `pool.get_all` answers one pool ref; other methods go to `extra`.
fn pool_handler(
    logins: Arc<AtomicUsize>,
    extra: impl Fn(&RpcCall) -> Option<Answer> + Send + Sync + 'static,
) -> impl Fn(&Seen) -> Answer + Send + Sync + 'static {
    move |seen| {
        let call = seen.rpc();
        match call.method.as_str() {
            "session.login_with_password" => {
                if call.params.first().map(String::as_str) != Some("root")
                    || call.params.get(1).map(String::as_str) != Some(PASSWORD)
                {
                    return Answer::failure(&call, "SESSION_AUTHENTICATION_FAILED", &[]);
                }
                let n = logins.fetch_add(1, Ordering::SeqCst) + 1;
                Answer::ok(&call, s(&format!("OpaqueRef:session-{n}")))
            }
            "session.logout" => Answer::ok(&call, s("")),
            _ => extra(&call).unwrap_or_else(|| {
                if call.method == "pool.get_all" {
                    Answer::ok(&call, V::A(vec![s("OpaqueRef:pool-1")]))
                } else {
                    Answer::failure(&call, "MESSAGE_METHOD_UNKNOWN", &[&call.method])
                }
            }),
        }
    }
}

async fn login(url: &str, protocol: Protocol) -> xapi_core::client::SessionHandle {
    Client::builder(url)
        .protocol(protocol)
        .task_poll_interval(Duration::from_millis(10))
        .build()
        .expect("client")
        .login_with_password("root", Password::new(PASSWORD), "1.0", "xapi-rs-tests")
        .await
        .expect("login")
}

#[tokio::test]
async fn login_call_and_logout_over_json_rpc() {
    let logins = Arc::new(AtomicUsize::new(0));
    let server = mock_xapi::start(pool_handler(logins.clone(), |_| None)).await;
    let session = login(&server.url, Protocol::JsonRpc).await;
    let pools: Vec<Ref<xapi_core::api::Pool>> =
        session.call("pool.get_all", ()).await.expect("call");
    assert_eq!(pools, vec![Ref::new("OpaqueRef:pool-1")]);
    session.logout().await.expect("logout");

    let requests = server.requests();
    assert!(requests.iter().all(|r| r.path == "/jsonrpc"));
    let calls: Vec<RpcCall> = requests.iter().map(Seen::rpc).collect();
    assert_eq!(calls[1].method, "pool.get_all");
    assert_eq!(calls[1].params, vec!["OpaqueRef:session-1".to_owned()]);
    assert!(calls[1].v2, "JSON-RPC 2.0 requests carry \"jsonrpc\"");
    assert_eq!(calls[2].method, "session.logout");
    let err = session
        .call::<Vec<String>>("pool.get_all", ())
        .await
        .expect_err("logged out");
    assert!(matches!(err, Error::NotLoggedIn { .. }), "{err:?}");
}

#[tokio::test]
async fn login_and_call_over_xml_rpc() {
    let logins = Arc::new(AtomicUsize::new(0));
    let server = mock_xapi::start(pool_handler(logins, |call| {
        (call.method == "VM.get_name_label").then(|| Answer::ok(call, s("web & db")))
    }))
    .await;
    let session = login(&server.url, Protocol::XmlRpc).await;
    let name: String = session
        .call("VM.get_name_label", ("OpaqueRef:vm-1",))
        .await
        .expect("call");
    assert_eq!(name, "web & db");
    let requests = server.requests();
    assert!(requests.iter().all(|r| r.path == "/"));
    assert_eq!(
        requests[1].rpc().params,
        vec![
            "OpaqueRef:session-1".to_owned(),
            "OpaqueRef:vm-1".to_owned()
        ]
    );
    assert!(
        requests[1]
            .header("content-type")
            .is_some_and(|c| c.contains("xml"))
    );
}

#[tokio::test]
async fn auto_protocol_falls_back_to_xml_rpc_without_jsonrpc() {
    let logins = Arc::new(AtomicUsize::new(0));
    let inner = pool_handler(logins, |_| None);
    let server = mock_xapi::start(move |seen| {
        if seen.path == "/jsonrpc" {
            Answer::new(404, "<html>not found</html>").header("content-type", "text/html")
        } else {
            inner(seen)
        }
    })
    .await;
    let session = login(&server.url, Protocol::Auto).await;
    assert_eq!(session.client().protocol(), Protocol::XmlRpc);
    let _: Vec<String> = session.call("pool.get_all", ()).await.expect("call");
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        vec!["/jsonrpc", "/", "/"],
        "one probe, then XML-RPC for good"
    );
}

#[tokio::test]
async fn wrong_password_is_a_typed_failure() {
    let server = mock_xapi::start(pool_handler(Arc::new(AtomicUsize::new(0)), |_| None)).await;
    let err = Client::builder(&server.url)
        .build()
        .expect("client")
        .login_with_password("root", Password::new("wrong"), "1.0", "tests")
        .await
        .expect_err("refused");
    let failure = err.failure().expect("an api failure");
    assert_eq!(failure.code, ErrorCode::SessionAuthenticationFailed);
    assert!(
        !err.to_string().contains("wrong"),
        "the password leaked: {err}"
    );
}

#[tokio::test]
async fn session_invalid_logs_in_again_and_retries() {
    let logins = Arc::new(AtomicUsize::new(0));
    let server = mock_xapi::start(pool_handler(logins.clone(), |call| {
        // The first session dies (xapi restarted); the second one works.
        (call.method == "VM.get_all" && call.params[0] == "OpaqueRef:session-1")
            .then(|| Answer::failure(call, "SESSION_INVALID", &["OpaqueRef:session-1"]))
            .or_else(|| {
                (call.method == "VM.get_all")
                    .then(|| Answer::ok(call, V::A(vec![s("OpaqueRef:vm")])))
            })
    }))
    .await;
    let session = login(&server.url, Protocol::JsonRpc).await;
    let vms: Vec<String> = session.call("VM.get_all", ()).await.expect("retried");
    assert_eq!(vms, vec!["OpaqueRef:vm".to_owned()]);
    assert_eq!(logins.load(Ordering::SeqCst), 2);
    assert_eq!(session.reference(), Ref::new("OpaqueRef:session-2"));
    assert_eq!(
        server.methods(),
        vec![
            "session.login_with_password",
            "VM.get_all",
            "session.login_with_password",
            "VM.get_all"
        ]
    );
}

#[tokio::test]
async fn session_invalid_retries_are_bounded() {
    let logins = Arc::new(AtomicUsize::new(0));
    let server = mock_xapi::start(pool_handler(logins.clone(), |call| {
        (call.method == "VM.get_all")
            .then(|| Answer::failure(call, "SESSION_INVALID", &[&call.params[0]]))
    }))
    .await;
    let session = login(&server.url, Protocol::JsonRpc).await;
    let err = session
        .call::<Vec<String>>("VM.get_all", ())
        .await
        .expect_err("never valid");
    assert!(matches!(
        err.failure().map(|f| &f.code),
        Some(ErrorCode::SessionInvalid)
    ));
    assert_eq!(
        logins.load(Ordering::SeqCst),
        4,
        "one login plus three re-logins"
    );
}

/// Two servers on the same port, on 127.0.0.1 (the member) and 127.0.0.2 (the master).
async fn member_and_master(
    tls: Option<(&mock_xapi::TestCert, &mock_xapi::TestCert)>,
    member: mock_xapi::Handler,
    master: mock_xapi::Handler,
) -> (mock_xapi::Mock, mock_xapi::Mock) {
    for _ in 0..20 {
        let master_server = match tls {
            Some((_, cert)) => mock_xapi::start_tls_on("127.0.0.2", 0, cert, master.clone()).await,
            None => mock_xapi::start_on("127.0.0.2", 0, master.clone()).await,
        }
        .expect("bind 127.0.0.2");
        let port = master_server.addr.expect("tcp").port();
        let member_server = match tls {
            Some((cert, _)) => {
                mock_xapi::start_tls_on("127.0.0.1", port, cert, member.clone()).await
            }
            None => mock_xapi::start_on("127.0.0.1", port, member.clone()).await,
        };
        if let Ok(member_server) = member_server {
            return (member_server, master_server);
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

#[tokio::test]
async fn host_is_slave_moves_the_login_to_the_master() {
    let member: mock_xapi::Handler =
        Arc::new(|seen: &Seen| Answer::failure(&seen.rpc(), "HOST_IS_SLAVE", &["127.0.0.2"]));
    let master: mock_xapi::Handler =
        Arc::new(pool_handler(Arc::new(AtomicUsize::new(0)), |_| None));
    let (member, master) = member_and_master(None, member, master).await;
    let session = login(&member.url, Protocol::JsonRpc).await;
    assert!(session.client().url().starts_with("http://127.0.0.2:"));
    let _: Vec<String> = session
        .call("pool.get_all", ())
        .await
        .expect("call on master");
    assert_eq!(member.methods(), vec!["session.login_with_password"]);
    assert_eq!(
        master.methods(),
        vec!["session.login_with_password", "pool.get_all"]
    );
}

#[tokio::test]
async fn a_session_follows_the_master_when_it_moves() {
    // 127.0.0.1 is the master at login time, then becomes a member of the pool whose new
    // master is 127.0.0.2: it answers HOST_IS_SLAVE to everything.
    let demoted = Arc::new(AtomicUsize::new(0));
    let flag = demoted.clone();
    let first_master = pool_handler(Arc::new(AtomicUsize::new(0)), |_| None);
    let member: mock_xapi::Handler = Arc::new(move |seen: &Seen| {
        if flag.load(Ordering::SeqCst) == 1 {
            Answer::failure(&seen.rpc(), "HOST_IS_SLAVE", &["127.0.0.2"])
        } else {
            first_master(seen)
        }
    });
    let master: mock_xapi::Handler =
        Arc::new(pool_handler(Arc::new(AtomicUsize::new(100)), |_| None));
    let (member, master) = member_and_master(None, member, master).await;
    let session = login(&member.url, Protocol::JsonRpc).await;
    assert!(session.client().url().starts_with("http://127.0.0.1:"));
    demoted.store(1, Ordering::SeqCst);
    let pools: Vec<String> = session
        .call("pool.get_all", ())
        .await
        .expect("call follows");
    assert_eq!(pools, vec!["OpaqueRef:pool-1".to_owned()]);
    assert!(session.client().url().starts_with("http://127.0.0.2:"));
    assert_eq!(session.reference(), Ref::new("OpaqueRef:session-101"));
    assert_eq!(
        member.methods(),
        vec![
            "session.login_with_password",
            "pool.get_all",
            "session.login_with_password"
        ]
    );
    assert_eq!(
        master.methods(),
        vec!["session.login_with_password", "pool.get_all"]
    );
}

#[tokio::test]
async fn host_is_slave_under_a_pin_pins_the_master_to_the_thumbprint_header() {
    let member_cert = mock_xapi::self_signed();
    let master_cert = mock_xapi::self_signed();
    let master_pin = Sha256Fingerprint::of_der(&master_cert.der);
    // The exact text form of the header is not pinned down upstream: send lower case.
    let header = format!("sha-256:{}", master_pin.to_string().to_lowercase());
    let member: mock_xapi::Handler = Arc::new(move |seen: &Seen| {
        Answer::failure(&seen.rpc(), "HOST_IS_SLAVE", &["127.0.0.2"])
            .header("x-xenapi-response-host-certificate-thumbprint", &header)
    });
    let master: mock_xapi::Handler =
        Arc::new(pool_handler(Arc::new(AtomicUsize::new(0)), |_| None));
    let (member, master) =
        member_and_master(Some((&member_cert, &master_cert)), member, master).await;
    let session = Client::builder(&member.url)
        .tls(TlsPolicy::Pinned(Sha256Fingerprint::of_der(
            &member_cert.der,
        )))
        .build()
        .expect("client")
        .login_with_password("root", Password::new(PASSWORD), "1.0", "tests")
        .await
        .expect("login reaches the master");
    assert!(session.client().url().starts_with("https://127.0.0.2:"));
    assert_eq!(
        session.client().tls_policy(),
        &TlsPolicy::Pinned(master_pin)
    );
    let asked = &member.requests()[0];
    assert_eq!(
        asked.header("x-xenapi-request-host-certificate-thumbprint"),
        Some("sha-256:master")
    );
    assert_eq!(master.methods(), vec!["session.login_with_password"]);
}

#[tokio::test]
async fn host_is_slave_without_a_thumbprint_is_refused_under_a_pin() {
    let member_cert = mock_xapi::self_signed();
    let master_cert = mock_xapi::self_signed();
    let member: mock_xapi::Handler =
        Arc::new(|seen: &Seen| Answer::failure(&seen.rpc(), "HOST_IS_SLAVE", &["127.0.0.2"]));
    let master: mock_xapi::Handler =
        Arc::new(pool_handler(Arc::new(AtomicUsize::new(0)), |_| None));
    let (member, master) =
        member_and_master(Some((&member_cert, &master_cert)), member, master).await;
    let err = Client::builder(&member.url)
        .tls(TlsPolicy::Pinned(Sha256Fingerprint::of_der(
            &member_cert.der,
        )))
        .build()
        .expect("client")
        .login_with_password("root", Password::new(PASSWORD), "1.0", "tests")
        .await
        .expect_err("no way to trust the master");
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(
        master.requests().is_empty(),
        "the password went to an unpinned host"
    );
}

fn task_record(status: &str, progress: f64, result: &str, error_info: &[&str]) -> V {
    V::St(vec![
        ("uuid".into(), s("task-uuid")),
        ("status".into(), s(status)),
        ("progress".into(), V::D(progress)),
        ("result".into(), s(result)),
        (
            "error_info".into(),
            V::A(error_info.iter().map(|e| s(e)).collect()),
        ),
    ])
}

#[tokio::test]
async fn task_wait_reports_progress_decodes_the_result_and_destroys_the_task() {
    // This mock has no event.from (MESSAGE_METHOD_UNKNOWN): the wait polls task.get_record.
    // Waiting through event.from is tested in client_task_events.rs.
    for protocol in [Protocol::JsonRpc, Protocol::XmlRpc] {
        let polls = Arc::new(AtomicUsize::new(0));
        let counter = polls.clone();
        let server = mock_xapi::start(pool_handler(Arc::new(AtomicUsize::new(0)), move |call| {
            match call.method.as_str() {
                "Async.VM.clone" => Some(Answer::ok(call, s("OpaqueRef:task-1"))),
                "task.get_record" => {
                    assert_eq!(call.params[1], "OpaqueRef:task-1");
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    Some(Answer::ok(
                        call,
                        match n {
                            0 => task_record("pending", 0.0, "", &[]),
                            1 => task_record("pending", 0.5, "", &[]),
                            // xapi stores the result as XML-RPC text, whatever the protocol
                            _ => task_record("success", 1.0, "<value>OpaqueRef:vm-2</value>", &[]),
                        },
                    ))
                }
                "task.destroy" => Some(Answer::ok(call, s(""))),
                _ => None,
            }
        }))
        .await;
        let session = login(&server.url, protocol).await;
        let handle = session
            .call_async::<Ref<xapi_core::api::Host>>("VM.clone", ("OpaqueRef:vm-1", "copy"))
            .await
            .expect("async call");
        assert_eq!(handle.task(), &Ref::<Task>::new("OpaqueRef:task-1"));
        let mut seen = Vec::new();
        let clone = handle
            .wait_with_progress(|p| seen.push(p.clone()))
            .await
            .expect("task succeeds");
        assert_eq!(clone, Ref::new("OpaqueRef:vm-2"));
        let progress: Vec<f64> = seen.iter().map(|p| p.progress).collect();
        assert_eq!(progress, vec![0.0, 0.5, 1.0], "{protocol:?}");
        assert_eq!(
            seen.last().map(|p| &p.status),
            Some(&TaskStatusType::Success)
        );
        let methods = server.methods();
        assert_eq!(methods[1], "Async.VM.clone");
        assert_eq!(methods.last().map(String::as_str), Some("task.destroy"));
    }
}

#[tokio::test]
async fn task_progress_stream_ends_with_the_final_status() {
    let polls = Arc::new(AtomicUsize::new(0));
    let counter = polls.clone();
    let server = mock_xapi::start(pool_handler(Arc::new(AtomicUsize::new(0)), move |call| {
        (call.method == "task.get_record").then(|| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let progress = (n as f64 * 0.25).min(1.0);
            let status = if n >= 4 { "success" } else { "pending" };
            Answer::ok(call, task_record(status, progress, "", &[]))
        })
    }))
    .await;
    let session = login(&server.url, Protocol::JsonRpc).await;
    let handle = xapi_core::client::TaskHandle::<()>::new(session, Ref::new("OpaqueRef:t"));
    let updates: Vec<_> = handle.progress().collect().await;
    let progress: Vec<f64> = updates
        .into_iter()
        .map(|u| u.expect("update").progress)
        .collect();
    assert_eq!(progress, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
}

#[tokio::test]
async fn failed_task_gives_the_xapi_failure() {
    let server = mock_xapi::start(pool_handler(
        Arc::new(AtomicUsize::new(0)),
        |call| match call.method.as_str() {
            "task.get_record" => Some(Answer::ok(
                call,
                task_record("failure", 1.0, "", &["SR_FULL", "OpaqueRef:sr", "10", "20"]),
            )),
            "task.destroy" => Some(Answer::ok(call, s(""))),
            _ => None,
        },
    ))
    .await;
    let session = login(&server.url, Protocol::JsonRpc).await;
    let err = xapi_core::client::TaskHandle::<String>::new(session, Ref::new("OpaqueRef:t"))
        .wait()
        .await
        .expect_err("task failed");
    let failure = err.failure().expect("api failure");
    assert_eq!(failure.code, ErrorCode::SrFull);
    assert_eq!(failure.params, vec!["OpaqueRef:sr", "10", "20"]);
}

#[tokio::test]
async fn cancelled_task_is_a_typed_error() {
    let cancelled = Arc::new(AtomicUsize::new(0));
    let flag = cancelled.clone();
    let server = mock_xapi::start(pool_handler(
        Arc::new(AtomicUsize::new(0)),
        move |call| match call.method.as_str() {
            "task.cancel" => {
                flag.store(1, Ordering::SeqCst);
                Some(Answer::ok(call, s("")))
            }
            "task.get_record" => Some(Answer::ok(
                call,
                if flag.load(Ordering::SeqCst) == 1 {
                    task_record("cancelled", 0.3, "", &[])
                } else {
                    task_record("pending", 0.3, "", &[])
                },
            )),
            "task.destroy" => Some(Answer::ok(call, s(""))),
            _ => None,
        },
    ))
    .await;
    let session = login(&server.url, Protocol::XmlRpc).await;
    let handle = xapi_core::client::TaskHandle::<String>::new(session, Ref::new("OpaqueRef:t"));
    handle.cancel().await.expect("cancel accepted");
    let err = handle.wait().await.expect_err("cancelled");
    assert!(
        matches!(err, Error::TaskCancelled { ref task } if task == "OpaqueRef:t"),
        "{err:?}"
    );
}

#[derive(Debug, Deserialize, PartialEq)]
struct VmSnapshot {
    name_label: String,
}

fn event(op: &str, reference: &str, name: &str) -> V {
    V::St(vec![
        ("class".into(), s("vm")),
        ("operation".into(), s(op)),
        ("ref".into(), s(reference)),
        (
            "snapshot".into(),
            V::St(vec![("name_label".into(), s(name))]),
        ),
    ])
}

fn batch(events: Vec<V>, token: &str) -> V {
    V::St(vec![
        ("events".into(), V::A(events)),
        ("valid_ref_counts".into(), V::St(vec![])),
        ("token".into(), s(token)),
    ])
}

#[tokio::test]
async fn event_stream_follows_tokens_and_resyncs_after_events_lost() {
    for protocol in [Protocol::JsonRpc, Protocol::XmlRpc] {
        let from_start = Arc::new(AtomicUsize::new(0));
        let counter = from_start.clone();
        let server = mock_xapi::start(pool_handler(Arc::new(AtomicUsize::new(0)), move |call| {
            if call.method != "event.from" {
                return None;
            }
            assert_eq!(call.params.len(), 4, "session, classes, token, timeout");
            let token = call.params[2].as_str();
            Some(match token {
                "" if counter.fetch_add(1, Ordering::SeqCst) == 0 => Answer::ok(
                    call,
                    batch(vec![event("add", "OpaqueRef:vm-1", "web")], "t1"),
                ),
                "" => Answer::ok(
                    call,
                    batch(vec![event("mod", "OpaqueRef:vm-1", "web-2")], "t2"),
                ),
                "t1" => Answer::failure(call, "EVENTS_LOST", &[]),
                _ => Answer::ok(call, batch(vec![], token)),
            })
        }))
        .await;
        let session = login(&server.url, protocol).await;
        let options = EventOptions {
            timeout_secs: 5.0,
            ..EventOptions::default()
        };
        let mut stream = Box::pin(session.events::<VmSnapshot>(&["vm"], options));
        let mut items = Vec::new();
        for _ in 0..3 {
            items.push(stream.next().await.expect("item").expect("no error"));
        }
        drop(stream);
        let EventItem::Event {
            event: first,
            token: first_token,
        } = &items[0]
        else {
            panic!("expected an event, got {:?}", items[0])
        };
        assert_eq!(first.operation, EventOperation::Add);
        assert_eq!(first.r#ref, "OpaqueRef:vm-1");
        assert_eq!(
            first.snapshot,
            Some(VmSnapshot {
                name_label: "web".into()
            })
        );
        assert_eq!(first_token, "t1");
        assert_eq!(items[1], EventItem::Resync, "{protocol:?}");
        let EventItem::Event {
            event: third,
            token: third_token,
        } = &items[2]
        else {
            panic!("expected an event, got {:?}", items[2])
        };
        assert_eq!(third.operation, EventOperation::Mod);
        assert_eq!(
            third.snapshot,
            Some(VmSnapshot {
                name_label: "web-2".into()
            })
        );
        assert_eq!(third_token, "t2");

        let calls: Vec<RpcCall> = server
            .requests()
            .iter()
            .map(Seen::rpc)
            .filter(|c| c.method == "event.from")
            .collect();
        let tokens: Vec<&str> = calls.iter().take(3).map(|c| c.params[2].as_str()).collect();
        assert_eq!(
            tokens,
            vec!["", "t1", ""],
            "restarted from \"\" after EVENTS_LOST"
        );
        assert!(calls[0].params[1].contains("vm"));
        let timeout: f64 = calls[0].params[3].parse().expect("timeout is a number");
        assert!(
            (timeout - 5.0).abs() < f64::EPSILON,
            "{protocol:?}: {}",
            calls[0].params[3]
        );
        if !calls[0].json {
            let body = String::from_utf8_lossy(&server.requests().last().expect("request").body)
                .into_owned();
            assert!(
                body.contains("<double>"),
                "XML-RPC timeout is a double: {body}"
            );
        }
    }
}

#[tokio::test]
async fn an_html_500_is_a_protocol_error_naming_the_method() {
    let server = mock_xapi::start(|_| {
        Answer::new(
            500,
            "<html><body><h1>Internal Server Error</h1>bad request</body></html>",
        )
        .header("content-type", "text/html")
    })
    .await;
    let client = Client::builder(&server.url).build().expect("client");
    let err = client
        .call_raw::<String>("session.login_with_password", ("root", "x", "1.0", "t"))
        .await
        .expect_err("500");
    match &err {
        Error::Protocol { reason, .. } => {
            assert!(reason.contains("session.login_with_password"), "{reason}");
            assert!(reason.contains("Internal Server Error"), "{reason}");
        }
        other => panic!("expected Protocol, got {other:?}"),
    }
}

#[tokio::test]
async fn rpc_over_a_unix_socket() {
    let (server, _path) =
        mock_xapi::start_unix(pool_handler(Arc::new(AtomicUsize::new(0)), |_| None)).await;
    let session = login(&server.url, Protocol::XmlRpc).await;
    let pools: Vec<String> = session.call("pool.get_all", ()).await.expect("call");
    assert_eq!(pools, vec!["OpaqueRef:pool-1".to_owned()]);
}

#[tokio::test]
async fn dropping_the_last_clone_logs_out_in_the_background() {
    let server = mock_xapi::start(pool_handler(Arc::new(AtomicUsize::new(0)), |_| None)).await;
    let session = login(&server.url, Protocol::JsonRpc).await;
    let clone = session.clone();
    drop(session);
    assert!(!server.methods().contains(&"session.logout".to_owned()));
    drop(clone);
    for _ in 0..200 {
        if server.methods().contains(&"session.logout".to_owned()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the dropped session was not logged out");
}

#[tokio::test]
async fn session_debug_shows_neither_the_reference_nor_the_password() {
    let server = mock_xapi::start(pool_handler(Arc::new(AtomicUsize::new(0)), |_| None)).await;
    let session = login(&server.url, Protocol::JsonRpc).await;
    let shown = format!("{session:?}");
    assert!(!shown.contains("OpaqueRef"), "{shown}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(shown.contains("root"), "{shown}");
}

#[tokio::test]
async fn keep_alive_connections_are_reused() {
    let server = mock_xapi::start(pool_handler(Arc::new(AtomicUsize::new(0)), |_| None)).await;
    let session = login(&server.url, Protocol::JsonRpc).await;
    for _ in 0..20 {
        let _: Vec<String> = session.call("pool.get_all", ()).await.expect("call");
    }
    assert_eq!(server.requests().len(), 21);
    assert_eq!(
        server.connections(),
        1,
        "21 calls in sequence share one connection"
    );
}

#[tokio::test]
async fn event_stream_goes_on_after_a_retryable_error() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let inner = pool_handler(Arc::new(AtomicUsize::new(0)), |call| {
        (call.method == "event.from").then(|| {
            Answer::ok(
                call,
                batch(vec![event("add", "OpaqueRef:vm-1", "web")], "t1"),
            )
        })
    });
    let server = mock_xapi::start(move |seen| {
        let call = seen.rpc();
        if call.method == "event.from" && counter.fetch_add(1, Ordering::SeqCst) == 0 {
            return Answer::new(503, "");
        }
        inner(seen)
    })
    .await;
    let session = login(&server.url, Protocol::JsonRpc).await;
    let options = EventOptions {
        retry_delay: Duration::from_millis(10),
        ..EventOptions::default()
    };
    let mut stream = Box::pin(session.events::<VmSnapshot>(&["vm"], options));
    let first = stream.next().await.expect("an item");
    let err = first.expect_err("the 503 is reported");
    assert!(matches!(err, Error::Http { status: 503, .. }), "{err:?}");
    let second = stream
        .next()
        .await
        .expect("the stream goes on")
        .expect("event");
    assert!(
        matches!(second, EventItem::Event { ref event, .. } if event.r#ref == "OpaqueRef:vm-1")
    );
}

#[tokio::test]
async fn data_plane_401_logs_in_again_and_retries_once() {
    let inner = pool_handler(Arc::new(AtomicUsize::new(0)), |_| None);
    let server = mock_xapi::start(move |seen| {
        if seen.method == http::Method::GET {
            // The first session expired; the second is accepted.
            return if seen
                .header("cookie")
                .is_some_and(|c| c.contains("OpaqueRef:session-2"))
            {
                Answer::new(200, "<database/>")
            } else {
                Answer::new(401, "")
            };
        }
        inner(seen)
    })
    .await;
    let session = login(&server.url, Protocol::JsonRpc).await;
    let body = session
        .get("/pool/xmldbdump", &[], None)
        .await
        .expect("retried after login")
        .bytes(1024)
        .await
        .expect("body");
    assert_eq!(body, "<database/>");
    assert_eq!(session.reference(), Ref::new("OpaqueRef:session-2"));
}

#[tokio::test]
async fn a_created_task_follows_a_data_plane_transfer() {
    let server = mock_xapi::start(pool_handler(
        Arc::new(AtomicUsize::new(0)),
        |call| match call.method.as_str() {
            "task.create" => {
                assert_eq!(call.params[1..], ["export vm-1", "xapi-rs"]);
                Some(Answer::ok(call, s("OpaqueRef:transfer")))
            }
            "task.get_record" => Some(Answer::ok(call, task_record("success", 1.0, "", &[]))),
            "task.destroy" => Some(Answer::ok(call, s(""))),
            _ => None,
        },
    ))
    .await;
    let session = login(&server.url, Protocol::XmlRpc).await;
    let task = session
        .create_task("export vm-1", "xapi-rs")
        .await
        .expect("task.create");
    assert_eq!(task, Ref::new("OpaqueRef:transfer"));
    // A void task result ("") decodes as ().
    xapi_core::client::TaskHandle::<()>::new(session, task)
        .wait()
        .await
        .expect("finished");
}
