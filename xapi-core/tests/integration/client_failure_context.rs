//! Which call failed: `Error::Api` keeps its shape (the failure alone), and the method that
//! failed is on the `call` tracing span, with a debug event naming the code.

use crate::mock_xapi;

use std::io::Write;
use std::sync::{Arc, Mutex};

use mock_xapi::{Answer, V, s};
use xapi_core::Error;
use xapi_core::api::ErrorCode;
use xapi_core::client::{Client, Protocol, TaskHandle};
use xapi_core::wire::Ref;

const SESSION: &str = "OpaqueRef:11111111-2222-3333-4444-555555555555";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("log lock").clone()).expect("utf-8 log")
    }
}

fn capture(level: tracing::Level) -> (Captured, ThreadSubscriber) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(level)
        .finish();
    (captured, on_this_thread(subscriber))
}

/// A subscriber for the current thread, with what keeps it reliable while other tests run
/// on other threads.
pub(crate) struct ThreadSubscriber {
    _default: tracing::subscriber::DefaultGuard,
    _second: tracing::Dispatch,
}

/// Makes `subscriber` this thread's default. tracing-core works out a span or event site's
/// interest, the first time any thread reaches it, from that thread's default alone while a
/// single subscriber is registered: another test's thread (none) could then switch a site off
/// for this one too. A second, idle subscriber kept alive beside it makes every site ask all
/// registered subscribers.
pub(crate) fn on_this_thread(
    subscriber: impl tracing::Subscriber + Send + Sync + 'static,
) -> ThreadSubscriber {
    let second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    ThreadSubscriber {
        _default: tracing::subscriber::set_default(subscriber),
        _second: second,
    }
}

#[tokio::test]
async fn a_failed_call_keeps_the_failure_shape_and_logs_its_method() {
    let (log, _guard) = capture(tracing::Level::DEBUG);
    let server = mock_xapi::start(|seen| {
        let call = seen.rpc();
        match call.method.as_str() {
            "VM.start" => Answer::failure(
                &call,
                "VM_BAD_POWER_STATE",
                &["OpaqueRef:vm-1", "halted", "running"],
            ),
            _ => Answer::ok(&call, s("")),
        }
    })
    .await;
    let session = Client::builder(&server.url)
        .protocol(Protocol::JsonRpc)
        .build()
        .expect("client")
        .attach_session(Ref::new(SESSION));
    let err = session
        .call::<()>("VM.start", ("OpaqueRef:vm-1", false, false))
        .await
        .expect_err("the VM is running");
    // Callers match on the unchanged variant.
    let Error::Api(failure) = &err else {
        panic!("expected Error::Api, got {err:?}")
    };
    assert_eq!(failure.code, ErrorCode::VmBadPowerState);
    assert_eq!(failure.params, vec!["OpaqueRef:vm-1", "halted", "running"]);
    assert_eq!(
        err.to_string(),
        r#"xapi failure VM_BAD_POWER_STATE: ["OpaqueRef:vm-1", "halted", "running"]"#
    );
    let text = log.text();
    let line = text
        .lines()
        .find(|l| l.contains("xapi failure"))
        .unwrap_or_else(|| panic!("no failure event in the log: {text}"));
    assert!(line.contains("call{method=VM.start}"), "{line}");
    assert!(line.contains(r#"code="VM_BAD_POWER_STATE""#), "{line}");
    assert!(
        !text.contains(SESSION),
        "the session reference reached the log: {text}"
    );
}

#[tokio::test]
async fn a_failed_task_logs_its_failure_in_the_task_span() {
    let (log, _guard) = capture(tracing::Level::DEBUG);
    let server = mock_xapi::start(|seen| {
        let call = seen.rpc();
        match call.method.as_str() {
            "task.get_record" => Answer::ok(
                &call,
                V::St(vec![
                    ("status".into(), s("failure")),
                    ("progress".into(), V::D(1.0)),
                    ("result".into(), s("")),
                    (
                        "error_info".into(),
                        V::A(vec![s("SR_FULL"), s("10"), s("20")]),
                    ),
                ]),
            ),
            "task.destroy" => Answer::ok(&call, s("")),
            other => Answer::failure(&call, "MESSAGE_METHOD_UNKNOWN", &[other]),
        }
    })
    .await;
    let session = Client::builder(&server.url)
        .build()
        .expect("client")
        .attach_session(Ref::new(SESSION));
    let err = TaskHandle::<()>::new(session, Ref::new("OpaqueRef:import-task"))
        .wait()
        .await
        .expect_err("the task failed");
    assert!(err.is_code(&ErrorCode::SrFull), "{err:?}");
    let text = log.text();
    let line = text
        .lines()
        .find(|l| l.contains("xapi failure") && l.contains("SR_FULL"))
        .unwrap_or_else(|| panic!("no task failure event in the log: {text}"));
    assert!(line.contains("task{task=OpaqueRef:import-task}"), "{line}");
}

/// A log site of its own, so that the test below is the first to reach it.
fn log_site_for_the_interest_test() {
    tracing::warn!("reached the site");
}

#[test]
fn this_threads_subscriber_sees_a_site_another_thread_reached_first() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // With `tracing::subscriber::set_default` alone, this thread logs nothing: the other
    // thread, subscriber-less, reaches the site first and switches it off for every thread.
    let _guard = on_this_thread(subscriber);
    std::thread::spawn(log_site_for_the_interest_test)
        .join()
        .unwrap();
    log_site_for_the_interest_test();
    let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(text.contains("reached the site"), "{text:?}");
}
