//! Datamodel rules of the RPC layer that real clients lean on, over real sockets on both wire
//! protocols: trailing parameters added in later releases may be left out, and messages that
//! only look like accessors are not answered as field reads; the legacy event API.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use xapi_core::Error;
use xapi_core::client::{Protocol, SessionHandle};
use xapi_core::wire::{DateTime, Value};

/// An event record of `event.next`.
type Event = BTreeMap<String, Value>;

async fn first_guest(session: &SessionHandle) -> String {
    let vms: Vec<String> = session
        .call("VM.get_by_name_label", ("test-vm",))
        .await
        .expect("VM.get_by_name_label");
    vms.into_iter().next().expect("the demo has test-vm")
}

fn failure_of(err: &Error) -> (String, Vec<String>) {
    match err {
        Error::Api(failure) => (failure.code.to_string(), failure.params.clone()),
        other => panic!("expected a XAPI failure, got {other}"),
    }
}

#[tokio::test]
async fn optional_trailing_parameters_may_be_left_out() {
    for protocol in [Protocol::XmlRpc, Protocol::JsonRpc] {
        let (_sim, session) = support::demo_over(protocol).await;
        let vm = first_guest(&session).await;
        // VM.snapshot gained `ignore_vdis` in a later release: old clients send two arguments
        let snapshot: String = session
            .call("VM.snapshot", (&vm, "before-upgrade"))
            .await
            .expect("VM.snapshot without ignore_vdis");
        let of: String = session
            .call("VM.get_snapshot_of", (&snapshot,))
            .await
            .expect("snapshot_of");
        assert_eq!(of, vm, "{protocol:?}");
        // all of them given is fine too
        let _: String = session
            .call("VM.snapshot", (&vm, "explicit", Vec::<String>::new()))
            .await
            .expect("VM.snapshot with ignore_vdis");
        // a required parameter missing is still a count mismatch, counted without the session
        let err = session
            .call::<String>("VM.snapshot", (&vm,))
            .await
            .expect_err("new_name is required");
        assert_eq!(
            failure_of(&err),
            (
                "MESSAGE_PARAMETER_COUNT_MISMATCH".to_owned(),
                vec!["VM.snapshot".to_owned(), "2".to_owned(), "1".to_owned()]
            ),
            "{protocol:?}"
        );
        // one too many is ignored, as xapi's dispatcher ignores surplus defaulted parameters
        let _: String = session
            .call("VM.snapshot", (&vm, "x", Vec::<String>::new(), "surplus"))
            .await
            .expect("five parameters");
        // a message without defaults takes exactly its parameters
        let err = session
            .call::<String>("VM.get_name_label", (&vm, "surplus"))
            .await
            .expect_err("three parameters");
        assert_eq!(
            failure_of(&err).0,
            "MESSAGE_PARAMETER_COUNT_MISMATCH",
            "{protocol:?}"
        );
    }
}

#[tokio::test]
async fn snapshot_leaves_out_ignored_disks() {
    let (_sim, session) = support::demo_over(Protocol::JsonRpc).await;
    let vms: Vec<String> = session.call("VM.get_all", ()).await.expect("VMs");
    let mut multi_disk = None;
    for vm in vms {
        let vbds: Vec<String> = session.call("VM.get_VBDs", (&vm,)).await.expect("VBDs");
        let template: bool = session
            .call("VM.get_is_a_template", (&vm,))
            .await
            .expect("is_a_template");
        if vbds.len() >= 2 && !template {
            multi_disk = Some((vm, vbds));
            break;
        }
    }
    let (vm, vbds) = multi_disk.expect("the demo has a VM with several disks");
    let mut disks = Vec::new();
    for vbd in &vbds {
        let vdi: String = session.call("VBD.get_VDI", (vbd,)).await.expect("VDI");
        disks.push(vdi);
    }
    let ignored = disks[1].clone();
    let snapshot: String = session
        .call(
            "VM.snapshot",
            (&vm, "without-scratch", vec![ignored.clone()]),
        )
        .await
        .expect("VM.snapshot with ignore_vdis");
    let snap_vbds: Vec<String> = session
        .call("VM.get_VBDs", (&snapshot,))
        .await
        .expect("snapshot VBDs");
    assert_eq!(snap_vbds.len(), vbds.len() - 1);
    let mut originals = Vec::new();
    for vbd in &snap_vbds {
        let vdi: String = session.call("VBD.get_VDI", (vbd,)).await.expect("VDI");
        let of: String = session
            .call("VDI.get_snapshot_of", (&vdi,))
            .await
            .expect("snapshot_of");
        originals.push(of);
    }
    assert!(!originals.contains(&ignored), "{originals:?}");
    assert!(originals.contains(&disks[0]), "{originals:?}");
}

#[tokio::test]
async fn host_clock_and_accessor_lookalikes() {
    let (_sim, session) = support::demo_over(Protocol::XmlRpc).await;
    let hosts: Vec<String> = session.call("host.get_all", ()).await.expect("hosts");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let servertime: DateTime = session
        .call("host.get_servertime", (&hosts[0],))
        .await
        .expect("host.get_servertime");
    let served =
        u64::try_from(servertime.to_unix_seconds().expect("a UTC time")).expect("after 1970");
    assert!(
        served + 1 >= before && served <= before + 5,
        "servertime {servertime} vs local {before}"
    );
    // a declared message that is not a field read: not answered as one
    let vm = first_guest(&session).await;
    let err = session
        .call::<Vec<String>>("VM.get_data_sources", (&vm,))
        .await
        .expect_err("not simulated");
    assert_eq!(
        failure_of(&err),
        (
            "NOT_IMPLEMENTED".to_owned(),
            vec!["VM.get_data_sources".to_owned()]
        )
    );
}

#[tokio::test]
async fn legacy_event_register_and_next() {
    let (sim, session) = support::demo_over(Protocol::XmlRpc).await;
    let err = session
        .call::<Value>("event.next", ())
        .await
        .expect_err("not registered yet");
    assert_eq!(failure_of(&err).0, "SESSION_NOT_REGISTERED");

    let _: Value = session
        .call("event.register", (vec!["VM"],))
        .await
        .expect("event.register");
    let vm = first_guest(&session).await;
    // event.next blocks until something changes after the registration
    let waiter = {
        let session = session.clone();
        tokio::spawn(async move { session.call::<Vec<Event>>("event.next", ()).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiter.is_finished(),
        "event.next returned with nothing changed"
    );
    let _: Value = session
        .call("VM.set_name_label", (&vm, "renamed-by-test"))
        .await
        .expect("rename");
    let events = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("event.next wakes up")
        .expect("the task runs")
        .expect("event.next answers");
    let text = |e: &Event, k: &str| match e.get(k) {
        Some(Value::String(s)) => s.clone(),
        other => panic!("{k}: {other:?}"),
    };
    assert!(
        events.iter().any(|e| text(e, "class") == "vm"
            && text(e, "operation") == "mod"
            && text(e, "ref") == vm),
        "{events:?}"
    );
    // classes not registered are not reported; unregister drops the class
    let _: Value = session
        .call("event.unregister", (vec!["vm"],))
        .await
        .expect("event.unregister");
    let _: Value = session
        .call("event.register", (vec!["pool"],))
        .await
        .expect("event.register pool");
    let pools: Vec<String> = session.call("pool.get_all", ()).await.expect("pools");
    let _: Value = session
        .call("VM.set_name_label", (&vm, "not-reported"))
        .await
        .expect("rename");
    let _: Value = session
        .call("pool.set_name_description", (&pools[0], "changed"))
        .await
        .expect("pool change");
    let events: Vec<Event> = session.call("event.next", ()).await.expect("event.next");
    assert!(!events.is_empty());
    assert!(
        events.iter().all(|e| text(e, "class") == "pool"),
        "{events:?}"
    );
    drop(sim);
}
