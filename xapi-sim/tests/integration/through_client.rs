//! The simulator driven by `xapi_core::client` over real sockets, on both wire protocols: calls,
//! failures, tasks, transparent re-login, TLS pinning and an XVA export verified chunk by chunk.

use crate::support;

use std::collections::BTreeMap;

use xapi_backup::format::xva::{ReadOptions, XvaReader};
use xapi_core::Error;
use xapi_core::client::{Client, Password, Protocol, SessionHandle, TlsPolicy};
use xapi_sim::{DEFAULT_PASSWORD, Scenario, SimConfig, SimHandle, Simulator};

async fn demo() -> SimHandle {
    let sim = support::start(Scenario::Demo, false).await;
    sim.clock().set_speed(10_000.0);
    sim
}

/// The fields of a VM record these tests look at (the others are skipped).
#[derive(Debug, serde::Deserialize)]
struct VmSummary {
    power_state: String,
    is_a_template: bool,
    appliance: String,
}

/// A halted VM outside any vApp, and not a template.
async fn halted_vm(session: &SessionHandle) -> String {
    let records: BTreeMap<String, VmSummary> =
        session.call("VM.get_all_records", ()).await.unwrap();
    records
        .into_iter()
        .find(|(_, r)| {
            r.power_state == "Halted" && !r.is_a_template && r.appliance == "OpaqueRef:NULL"
        })
        .map(|(vm, _)| vm)
        .expect("the demo has a halted standalone VM")
}

fn failure(err: Error) -> Vec<String> {
    match err {
        Error::Api(f) => std::iter::once(f.code.as_str().to_owned())
            .chain(f.params)
            .collect(),
        other => panic!("expected a XAPI failure, got {other}"),
    }
}

async fn calls_failures_and_tasks(protocol: Protocol) {
    let sim = demo().await;
    let session = support::login_over(&sim, sim.url(), protocol).await;
    let vms: Vec<String> = session.call("VM.get_all", ()).await.unwrap();
    assert!(vms.len() >= 20);
    let vm = halted_vm(&session).await;
    let name: String = session.call("VM.get_name_label", (&vm,)).await.unwrap();
    let err = session
        .call::<()>("VM.clean_shutdown", (&vm,))
        .await
        .unwrap_err();
    assert_eq!(
        failure(err),
        ["VM_BAD_POWER_STATE", vm.as_str(), "running", "halted"]
    );
    let err = session
        .call::<String>("VM.get_name_label", ("OpaqueRef:nope",))
        .await
        .unwrap_err();
    assert_eq!(failure(err), ["HANDLE_INVALID", "VM", "OpaqueRef:nope"]);

    let clone: String = session
        .call_async::<String>("VM.clone", (&vm, format!("{name} clone")))
        .await
        .unwrap()
        .wait()
        .await
        .expect("the clone task succeeds");
    let clone_name: String = session.call("VM.get_name_label", (&clone,)).await.unwrap();
    assert_eq!(clone_name, format!("{name} clone"));
    let disks: Vec<String> = session.call("VM.get_VBDs", (&clone,)).await.unwrap();
    let original_disks: Vec<String> = session.call("VM.get_VBDs", (&vm,)).await.unwrap();
    assert_eq!(disks.len(), original_disks.len());

    let started = session
        .call_async::<()>("VM.start", (&clone, false, false))
        .await
        .unwrap();
    started.wait().await.expect("the start task succeeds");
    let state: String = session.call("VM.get_power_state", (&clone,)).await.unwrap();
    assert_eq!(state, "Running");
    let failed = session
        .call_async::<()>("VM.start", (&clone, false, false))
        .await
        .unwrap();
    assert_eq!(
        failure(failed.wait().await.unwrap_err())[0],
        "VM_BAD_POWER_STATE"
    );
    session
        .call::<()>("VM.hard_shutdown", (&clone,))
        .await
        .unwrap();
    session.call::<()>("VM.destroy", (&clone,)).await.unwrap();
    let err = session
        .call::<String>("VM.get_name_label", (&clone,))
        .await
        .unwrap_err();
    assert_eq!(failure(err)[0], "HANDLE_INVALID");
}

#[tokio::test]
async fn xmlrpc_calls_failures_and_tasks() {
    calls_failures_and_tasks(Protocol::XmlRpc).await;
}

#[tokio::test]
async fn jsonrpc_calls_failures_and_tasks() {
    calls_failures_and_tasks(Protocol::JsonRpc).await;
}

#[tokio::test]
async fn session_is_shared_between_protocols() {
    let sim = demo().await;
    let xml = support::login_over(&sim, sim.url(), Protocol::XmlRpc).await;
    let json_client = Client::builder(sim.url())
        .protocol(Protocol::JsonRpc)
        .build()
        .unwrap();
    let json = json_client.attach_session(xml.reference());
    let from_xml: Vec<String> = xml.call("host.get_all", ()).await.unwrap();
    let from_json: Vec<String> = json.call("host.get_all", ()).await.unwrap();
    assert_eq!(from_xml, from_json);
    assert_eq!(from_json.len(), 2);
}

#[tokio::test]
async fn client_logs_in_again_after_session_invalid() {
    let sim = demo().await;
    let session = support::login_over(&sim, sim.url(), Protocol::JsonRpc).await;
    let before = session.reference();
    sim.faults().invalidate_session_after(0);
    let pools: Vec<String> = session
        .call("pool.get_all", ())
        .await
        .expect("re-login is transparent");
    assert_eq!(pools.len(), 1);
    assert_ne!(
        session.reference(),
        before,
        "a new session replaced the invalidated one"
    );
}

#[tokio::test]
async fn pinned_tls_accepts_the_printed_fingerprint_only() {
    let sim = Simulator::start(SimConfig {
        tls: true,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let pin = sim.fingerprint().unwrap().parse().unwrap();
    let client = Client::builder(sim.url())
        .tls(TlsPolicy::Pinned(pin))
        .build()
        .unwrap();
    let session = client
        .login_with_password("root", Password::new(DEFAULT_PASSWORD), "1.0", "tests")
        .await
        .expect("the pinned certificate is accepted");
    let hosts: Vec<String> = session.call("host.get_all", ()).await.unwrap();
    assert_eq!(hosts.len(), 1);
    let wrong = "00".repeat(32).parse().unwrap();
    let client = Client::builder(sim.url())
        .tls(TlsPolicy::Pinned(wrong))
        .build()
        .unwrap();
    assert!(
        client
            .login_with_password("root", Password::new(DEFAULT_PASSWORD), "1.0", "tests")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn export_streams_a_verified_xva() {
    let sim = demo().await;
    let session = support::login_over(&sim, sim.url(), Protocol::XmlRpc).await;
    let vm = halted_vm(&session).await;
    let uuid: String = session.call("VM.get_uuid", (&vm,)).await.unwrap();
    let mut sizes = Vec::new();
    for vbd in session
        .call::<Vec<String>>("VM.get_VBDs", (&vm,))
        .await
        .unwrap()
    {
        // CD drives' images are not exported (as xapi's export leaves them out)
        let kind: String = session.call("VBD.get_type", (&vbd,)).await.unwrap();
        if kind != "Disk" {
            continue;
        }
        let vdi: String = session.call("VBD.get_VDI", (&vbd,)).await.unwrap();
        let size: u64 = session.call("VDI.get_virtual_size", (&vdi,)).await.unwrap();
        sizes.push(size);
    }
    for compression in ["false", "zstd", "gzip"] {
        let download = session
            .get(
                "/export",
                &[("uuid", &uuid), ("use_compression", compression)],
                None,
            )
            .await
            .expect("the export starts");
        let task = download.task_id.clone().expect("a task-id header");
        assert_eq!(download.content_length, None);
        let mut reader = XvaReader::open(download.into_async_read(), ReadOptions::default())
            .await
            .expect("a well-formed XVA");
        let vms = reader.ova_xml().vms();
        assert_eq!(vms.len(), 1);
        assert_eq!(vms[0].uuid, Some(uuid.as_str()));
        let mut exported: Vec<u64> = reader.disks().iter().map(|d| d.virtual_size).collect();
        exported.sort_unstable();
        let mut expected = sizes.clone();
        expected.sort_unstable();
        assert_eq!(exported, expected);
        let mut nonzero = 0;
        while let Some(chunk) = reader.next_chunk().await.expect("every checksum matches") {
            if chunk.data.iter().any(|b| *b != 0) {
                nonzero += 1;
            }
        }
        assert!(
            nonzero >= sizes.len(),
            "each disk has data in its first chunk"
        );
        let status: String = session.call("task.get_status", (&task,)).await.unwrap();
        assert_eq!(
            status, "success",
            "export with use_compression={compression}"
        );
    }
}

#[tokio::test]
async fn export_without_a_session_is_refused() {
    let sim = demo().await;
    let session = support::login_over(&sim, sim.url(), Protocol::XmlRpc).await;
    let vm = halted_vm(&session).await;
    session.logout().await.unwrap();
    let session = support::login_over(&sim, sim.url(), Protocol::XmlRpc).await;
    let stale = Client::builder(sim.url())
        .build()
        .unwrap()
        .attach_session(xapi_core::wire::Ref::new("OpaqueRef:stale"));
    let err = stale
        .get("/export", &[("ref", &vm)], None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Http { status: 401, .. }), "{err}");
    drop(session);
}
