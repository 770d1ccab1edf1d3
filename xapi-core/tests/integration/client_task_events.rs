//! Waiting for tasks with `event.from(["task/<ref>"], token, timeout)` over real sockets, in
//! both encodings: tokens, server-side timeouts, `EVENTS_LOST`, a destroyed task, the overall
//! deadline, and the fallback to polling on servers without `event.from`.

use crate::mock_xapi;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use mock_xapi::{Answer, Mock, RpcCall, V, s};
use xapi_core::Error;
use xapi_core::api::TaskStatusType as TaskStatus;
use xapi_core::client::{Client, Protocol, SessionHandle, TaskHandle};
use xapi_core::error::TimeoutKind;
use xapi_core::wire::Ref;

const SESSION: &str = "OpaqueRef:11111111-2222-3333-4444-555555555555";
const TASK: &str = "OpaqueRef:task-1";

fn task_record(status: &str, progress: f64, result: &str, error_info: &[&str]) -> V {
    V::St(vec![
        ("uuid".into(), s("task-uuid")),
        ("name_label".into(), s("Async.VM.clone")),
        ("status".into(), s(status)),
        ("progress".into(), V::D(progress)),
        ("result".into(), s(result)),
        (
            "error_info".into(),
            V::A(error_info.iter().map(|e| s(e)).collect()),
        ),
    ])
}

fn task_event(operation: &str, snapshot: Option<V>) -> V {
    let mut fields = vec![
        ("id".into(), s("17")),
        ("timestamp".into(), s("1700000000.0")),
        ("class".into(), s("task")),
        ("operation".into(), s(operation)),
        ("ref".into(), s(TASK)),
    ];
    if let Some(snapshot) = snapshot {
        fields.push(("snapshot".into(), snapshot));
    }
    V::St(fields)
}

fn batch(events: Vec<V>, token: &str) -> V {
    V::St(vec![
        ("events".into(), V::A(events)),
        ("valid_ref_counts".into(), V::St(vec![])),
        ("token".into(), s(token)),
    ])
}

/// What the mock answers to one `event.from` call with this token.
type Script = dyn Fn(&RpcCall, &str) -> Answer + Send + Sync;

/// A server where `task.get_record` answers `initial`, `event.from` follows `script`, and
/// `task.destroy` succeeds. Records the tokens `event.from` was called with.
async fn task_server(initial: V, script: Arc<Script>) -> (Mock, Arc<Mutex<Vec<String>>>) {
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let log = tokens.clone();
    let server = mock_xapi::start(move |seen| {
        let call = seen.rpc();
        assert_eq!(call.params[0], SESSION, "the session goes first");
        match call.method.as_str() {
            "task.get_record" => {
                assert_eq!(call.params[1], TASK);
                Answer::ok(&call, initial.clone())
            }
            "event.from" => {
                assert!(
                    call.params[1].contains(&format!("task/{TASK}")),
                    "subscription {}",
                    call.params[1]
                );
                assert!(
                    call.params[3].starts_with("60.1"),
                    "timeout {}",
                    call.params[3]
                );
                let token = call.params[2].clone();
                log.lock().unwrap().push(token.clone());
                script(&call, &token)
            }
            "task.destroy" => Answer::ok(&call, s("")),
            other => Answer::failure(&call, "MESSAGE_METHOD_UNKNOWN", &[other]),
        }
    })
    .await;
    (server, tokens)
}

fn session_for(url: &str, protocol: Protocol) -> SessionHandle {
    Client::builder(url)
        .protocol(protocol)
        .task_poll_interval(Duration::from_millis(10))
        .build()
        .expect("client")
        .attach_session(Ref::new(SESSION))
}

/// pending 0.0 -> pending 0.5 -> (server-side timeout, no event) -> success.
fn happy_script() -> Arc<Script> {
    Arc::new(|call, token| {
        let value = match token {
            // token "": the current state of the task, as an add
            "" => batch(
                vec![task_event(
                    "add",
                    Some(task_record("pending", 0.0, "", &[])),
                )],
                "00000000000000000001,00000000000000000000",
            ),
            "00000000000000000001,00000000000000000000" => batch(
                vec![task_event(
                    "mod",
                    Some(task_record("pending", 0.5, "", &[])),
                )],
                "00000000000000000002,00000000000000000000",
            ),
            "00000000000000000002,00000000000000000000" => {
                batch(vec![], "00000000000000000003,00000000000000000000")
            }
            _ => batch(
                vec![task_event(
                    "mod",
                    Some(task_record(
                        "success",
                        1.0,
                        "<value>OpaqueRef:vm-2</value>",
                        &[],
                    )),
                )],
                "00000000000000000004,00000000000000000000",
            ),
        };
        Answer::ok(call, value)
    })
}

#[tokio::test]
async fn wait_follows_event_from_tokens_instead_of_polling() {
    for protocol in [Protocol::JsonRpc, Protocol::XmlRpc] {
        let (server, tokens) =
            task_server(task_record("pending", 0.0, "", &[]), happy_script()).await;
        let session = session_for(&server.url, protocol);
        let mut seen = Vec::new();
        let vm: Ref<xapi_core::api::Host> = TaskHandle::new(session, Ref::new(TASK))
            .wait_with_progress(|p| seen.push(p.clone()))
            .await
            .expect("task succeeds");
        assert_eq!(vm, Ref::new("OpaqueRef:vm-2"), "{protocol:?}");
        let progress: Vec<(TaskStatus, f64)> =
            seen.into_iter().map(|p| (p.status, p.progress)).collect();
        assert_eq!(
            progress,
            vec![
                (TaskStatus::Pending, 0.0),
                (TaskStatus::Pending, 0.5),
                (TaskStatus::Success, 1.0)
            ],
            "{protocol:?}: each change reported once"
        );
        assert_eq!(
            *tokens.lock().unwrap(),
            vec![
                String::new(),
                "00000000000000000001,00000000000000000000".to_owned(),
                "00000000000000000002,00000000000000000000".to_owned(),
                "00000000000000000003,00000000000000000000".to_owned(),
            ],
            "{protocol:?}: every call resumes from the previous token"
        );
        let methods = server.methods();
        assert_eq!(
            methods.iter().filter(|m| *m == "task.get_record").count(),
            1,
            "{protocol:?}: no polling when event.from exists: {methods:?}"
        );
        assert_eq!(methods.last().map(String::as_str), Some("task.destroy"));
    }
}

#[tokio::test]
async fn progress_stream_follows_events_and_ends_with_the_final_status() {
    let (server, _) = task_server(task_record("pending", 0.0, "", &[]), happy_script()).await;
    let handle = TaskHandle::<()>::new(session_for(&server.url, Protocol::JsonRpc), Ref::new(TASK));
    let updates: Vec<(TaskStatus, f64)> = handle
        .progress()
        .map(|u| {
            let u = u.expect("update");
            (u.status, u.progress)
        })
        .collect()
        .await;
    assert_eq!(
        updates,
        vec![
            (TaskStatus::Pending, 0.0),
            (TaskStatus::Pending, 0.5),
            (TaskStatus::Success, 1.0)
        ]
    );
    assert!(
        !server.methods().contains(&"task.destroy".to_owned()),
        "the progress stream only observes"
    );
}

#[tokio::test]
async fn events_lost_reads_the_task_again_from_an_empty_token() {
    let calls = Arc::new(Mutex::new(0usize));
    let count = calls.clone();
    let script: Arc<Script> = Arc::new(move |call, token| {
        let mut n = count.lock().unwrap();
        *n += 1;
        match (*n, token) {
            (1, "") => Answer::ok(call, batch(vec![], "t1")),
            (2, "t1") => Answer::failure(call, "EVENTS_LOST", &[]),
            (3, "") => Answer::ok(
                call,
                batch(
                    vec![task_event(
                        "add",
                        Some(task_record(
                            "failure",
                            1.0,
                            "",
                            &["SR_FULL", "OpaqueRef:sr", "10", "20"],
                        )),
                    )],
                    "t2",
                ),
            ),
            (n, token) => panic!("unexpected event.from #{n} with token {token:?}"),
        }
    });
    let (server, _) = task_server(task_record("pending", 0.1, "", &[]), script).await;
    let err = TaskHandle::<()>::new(session_for(&server.url, Protocol::XmlRpc), Ref::new(TASK))
        .wait()
        .await
        .expect_err("the task failed");
    let failure = err.failure().expect("a xapi failure");
    assert_eq!(failure.code, xapi_core::api::ErrorCode::SrFull);
    assert_eq!(failure.params, vec!["OpaqueRef:sr", "10", "20"]);
}

#[tokio::test]
async fn a_task_destroyed_while_waiting_is_a_protocol_error() {
    let script: Arc<Script> =
        Arc::new(|call, _| Answer::ok(call, batch(vec![task_event("del", None)], "t1")));
    let (server, _) = task_server(task_record("pending", 0.0, "", &[]), script).await;
    let err = TaskHandle::<()>::new(session_for(&server.url, Protocol::JsonRpc), Ref::new(TASK))
        .wait()
        .await
        .expect_err("a destroyed task cannot be waited for");
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("task OpaqueRef:task-1 was destroyed before it finished"),
        "{err}"
    );
}

#[tokio::test]
async fn wait_gives_up_after_its_timeout_without_destroying_the_task() {
    // The server's event.from returns empty batches (its timeout passes) forever.
    let script: Arc<Script> = Arc::new(|call, _| {
        std::thread::sleep(Duration::from_millis(20));
        Answer::ok(call, batch(vec![], "same"))
    });
    let (server, _) = task_server(task_record("pending", 0.3, "", &[]), script).await;
    let err = TaskHandle::<()>::new(session_for(&server.url, Protocol::JsonRpc), Ref::new(TASK))
        .with_timeout(Duration::from_millis(300))
        .wait()
        .await
        .expect_err("the task never finishes");
    match err {
        Error::Timeout { url, kind, after } => {
            assert_eq!(url, TASK);
            assert_eq!(kind, TimeoutKind::Task);
            assert_eq!(after, Duration::from_millis(300));
        }
        other => panic!("expected a task timeout, got {other:?}"),
    }
    assert!(!server.methods().contains(&"task.destroy".to_owned()));
}

#[tokio::test]
async fn servers_without_event_from_are_polled() {
    let polls = Arc::new(Mutex::new(0usize));
    let count = polls.clone();
    let server = mock_xapi::start(move |seen| {
        let call = seen.rpc();
        match call.method.as_str() {
            "task.get_record" => {
                let mut n = count.lock().unwrap();
                *n += 1;
                let record = match *n {
                    1 => task_record("pending", 0.2, "", &[]),
                    2 => task_record("pending", 0.6, "", &[]),
                    _ => task_record("success", 1.0, "", &[]),
                };
                Answer::ok(&call, record)
            }
            "task.destroy" => Answer::ok(&call, s("")),
            other => Answer::failure(&call, "MESSAGE_METHOD_UNKNOWN", &[other]),
        }
    })
    .await;
    let mut seen = Vec::new();
    TaskHandle::<()>::new(session_for(&server.url, Protocol::XmlRpc), Ref::new(TASK))
        .wait_with_progress(|p| seen.push(p.progress))
        .await
        .expect("task succeeds");
    assert_eq!(seen, vec![0.2, 0.6, 1.0]);
    let methods = server.methods();
    assert_eq!(
        methods.iter().filter(|m| *m == "event.from").count(),
        1,
        "event.from is tried once: {methods:?}"
    );
    assert_eq!(methods.last().map(String::as_str), Some("task.destroy"));
}

#[tokio::test]
async fn a_server_losing_events_even_from_scratch_is_polled_not_spun_on() {
    let polls = Arc::new(Mutex::new(0usize));
    let count = polls.clone();
    let server = mock_xapi::start(move |seen| {
        let call = seen.rpc();
        match call.method.as_str() {
            "task.get_record" => {
                let mut n = count.lock().unwrap();
                *n += 1;
                let record = match *n {
                    1 | 2 => task_record("pending", 0.2, "", &[]),
                    3 => task_record("pending", 0.6, "", &[]),
                    _ => task_record("success", 1.0, "", &[]),
                };
                Answer::ok(&call, record)
            }
            "event.from" => Answer::failure(&call, "EVENTS_LOST", &[]),
            "task.destroy" => Answer::ok(&call, s("")),
            other => Answer::failure(&call, "MESSAGE_METHOD_UNKNOWN", &[other]),
        }
    })
    .await;
    let mut seen = Vec::new();
    let wait = TaskHandle::<()>::new(session_for(&server.url, Protocol::JsonRpc), Ref::new(TASK))
        .wait_with_progress(|p| seen.push(p.progress));
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("the wait ends: no loop asking for lost events again")
        .expect("task succeeds");
    assert_eq!(seen, vec![0.2, 0.6, 1.0]);
    let methods = server.methods();
    assert_eq!(
        methods.iter().filter(|m| *m == "event.from").count(),
        1,
        "EVENTS_LOST for an empty token is not asked again: {methods:?}"
    );
}
