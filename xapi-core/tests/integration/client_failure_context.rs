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

fn capture(level: tracing::Level) -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(level)
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
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
