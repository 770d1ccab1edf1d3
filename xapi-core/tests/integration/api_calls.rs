//! Generated call handles over real sockets, in both encodings, against the mock XAPI of the
//! client tests: the wire method name, the positional parameters after the session reference,
//! typed results, async twins resolving through tasks, and typed failures.

use crate::mock_xapi;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mock_xapi::{Answer, RpcCall, Seen, V, s};
use xapi_core::Error;
use xapi_core::api::{ErrorCode, Pool, Vm, VmPowerState, VmRecord};
use xapi_core::client::{Client, Password, Protocol, SessionHandle};
use xapi_core::wire::Ref;

const PASSWORD: &str = "generated-api";

/// A pool that logs in, records every other call, and answers it with `answer`.
async fn serve(
    answer: impl Fn(&RpcCall) -> Answer + Send + Sync + 'static,
) -> (mock_xapi::Mock, Arc<Mutex<Vec<RpcCall>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen_calls = calls.clone();
    let server = mock_xapi::start(move |seen: &Seen| {
        let call = seen.rpc();
        match call.method.as_str() {
            "session.login_with_password" => Answer::ok(&call, s("OpaqueRef:session-1")),
            "session.logout" => Answer::ok(&call, s("")),
            _ => {
                seen_calls.lock().unwrap().push(call.clone());
                answer(&call)
            }
        }
    })
    .await;
    (server, calls)
}

async fn login(url: &str, protocol: Protocol) -> SessionHandle {
    Client::builder(url)
        .protocol(protocol)
        .task_poll_interval(Duration::from_millis(5))
        .build()
        .expect("client")
        .login_with_password("root", Password::new(PASSWORD), "1.0", "xapi-rs-api-tests")
        .await
        .expect("login")
}

fn vm_record(name: &str, power_state: &str) -> V {
    V::St(vec![
        ("uuid".into(), s("0f1d6f0e-4d4b-4bd1-8d0c-5a1cdb2c9e11")),
        ("name_label".into(), s(name)),
        ("power_state".into(), s(power_state)),
        ("memory_static_max".into(), s("8589934592")),
        ("VBDs".into(), V::A(vec![s("OpaqueRef:vbd-0")])),
        (
            "other_config".into(),
            V::St(vec![("tier".into(), s("gold"))]),
        ),
    ])
}

#[tokio::test]
async fn generated_calls_send_method_and_parameters_and_decode_results() {
    for protocol in [Protocol::JsonRpc, Protocol::XmlRpc] {
        let (server, calls) = serve(|call| match call.method.as_str() {
            "VM.get_all_records" => Answer::ok(
                call,
                V::St(vec![(
                    "OpaqueRef:vm-1".into(),
                    vm_record("web-01", "Running"),
                )]),
            ),
            "VM.get_power_state" => Answer::ok(call, s("Suspended")),
            "pool.get_all" => Answer::ok(call, V::A(vec![s("OpaqueRef:pool-1")])),
            _ => Answer::ok(call, s("")),
        })
        .await;
        let session = login(&server.url, protocol).await;
        let vm: Ref<Vm> = Ref::new("OpaqueRef:vm-1");

        let all: HashMap<Ref<Vm>, VmRecord> = session.vm().get_all_records().await.unwrap();
        let record = &all[&vm];
        assert_eq!(record.name_label, "web-01");
        assert_eq!(record.power_state, VmPowerState::Running);
        assert_eq!(record.memory_static_max, 8_589_934_592);
        assert_eq!(record.other_config["tier"], "gold");
        assert!(record.has_vendor_device, "missing field: datamodel default");

        assert_eq!(
            session.vm().get_power_state(&vm).await.unwrap(),
            VmPowerState::Suspended
        );
        let pools: Vec<Ref<Pool>> = session.pool().get_all().await.unwrap();
        assert_eq!(pools, [Ref::new("OpaqueRef:pool-1")]);
        session.vm().start(&vm, false, true).await.unwrap();
        session.vm().set_name_label(&vm, "web-02").await.unwrap();
        session
            .vm()
            .add_to_other_config(&vm, "backup", "nightly")
            .await
            .unwrap();

        let calls = calls.lock().unwrap().clone();
        let sent: Vec<(&str, Vec<&str>)> = calls
            .iter()
            .map(|c| {
                (
                    c.method.as_str(),
                    c.params.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        let (no, yes) = if protocol == Protocol::JsonRpc {
            ("false", "true")
        } else {
            ("0", "1")
        };
        assert_eq!(
            sent,
            [
                ("VM.get_all_records", vec!["OpaqueRef:session-1"]),
                (
                    "VM.get_power_state",
                    vec!["OpaqueRef:session-1", "OpaqueRef:vm-1"]
                ),
                ("pool.get_all", vec!["OpaqueRef:session-1"]),
                (
                    "VM.start",
                    vec!["OpaqueRef:session-1", "OpaqueRef:vm-1", no, yes]
                ),
                (
                    "VM.set_name_label",
                    vec!["OpaqueRef:session-1", "OpaqueRef:vm-1", "web-02"]
                ),
                (
                    "VM.add_to_other_config",
                    vec!["OpaqueRef:session-1", "OpaqueRef:vm-1", "backup", "nightly"]
                ),
            ],
            "{protocol:?}"
        );
    }
}

fn task_record(status: &str, result: &str) -> V {
    V::St(vec![
        ("uuid".into(), s("task-uuid")),
        ("status".into(), s(status)),
        ("progress".into(), V::D(1.0)),
        ("result".into(), s(result)),
        ("error_info".into(), V::A(Vec::new())),
    ])
}

#[tokio::test]
async fn async_twin_starts_the_task_and_resolves_to_the_typed_result() {
    for protocol in [Protocol::JsonRpc, Protocol::XmlRpc] {
        let (server, calls) = serve(|call| match call.method.as_str() {
            "Async.VM.clone" => Answer::ok(call, s("OpaqueRef:task-7")),
            "task.get_record" => Answer::ok(
                call,
                task_record("success", "<value>OpaqueRef:vm-clone</value>"),
            ),
            _ => Answer::ok(call, s("")),
        })
        .await;
        let session = login(&server.url, protocol).await;
        let handle = session
            .vm()
            .clone_async(&Ref::new("OpaqueRef:vm-1"), "web-01 copy")
            .await
            .unwrap();
        assert_eq!(handle.task().as_str(), "OpaqueRef:task-7");
        let clone: Ref<Vm> = handle.wait().await.unwrap();
        assert_eq!(clone.as_str(), "OpaqueRef:vm-clone");
        let first = calls.lock().unwrap()[0].clone();
        assert_eq!(first.method, "Async.VM.clone");
        assert_eq!(
            first.params,
            ["OpaqueRef:session-1", "OpaqueRef:vm-1", "web-01 copy"]
        );
    }
}

#[tokio::test]
async fn failures_of_generated_calls_carry_the_typed_code_and_named_parameters() {
    for protocol in [Protocol::JsonRpc, Protocol::XmlRpc] {
        let (server, _calls) = serve(|call| {
            Answer::failure(
                call,
                "VM_BAD_POWER_STATE",
                &[&call.params[1], "halted", "running"],
            )
        })
        .await;
        let session = login(&server.url, protocol).await;
        let err = session
            .vm()
            .clean_shutdown(&Ref::new("OpaqueRef:vm-9"))
            .await
            .unwrap_err();
        let Error::Api(failure) = err else {
            panic!("expected a XAPI failure, got {err:?}");
        };
        assert_eq!(failure.code, ErrorCode::VmBadPowerState);
        assert_eq!(failure.param("vm"), Some("OpaqueRef:vm-9"));
        assert_eq!(failure.param("expected"), Some("halted"));
        assert_eq!(failure.param("actual"), Some("running"));
    }
}
