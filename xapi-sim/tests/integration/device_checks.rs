//! xapi's checks on the generic constructors of devices (`VBD.create`, `VIF.create`,
//! `PBD.create`), on `blocked_operations` and `current_operations` of VMs, and on shrinking a
//! disk.

use std::time::Duration;

use serde_json::json;
use xapi_core::client::SessionHandle;

use crate::support;

/// The code and parameters of a XAPI failure; panics on success or another error.
async fn failure_of<T: serde::de::DeserializeOwned + std::fmt::Debug>(
    session: &SessionHandle,
    method: &str,
    params: impl serde::Serialize,
) -> (String, Vec<String>) {
    match session.call::<T>(method, params).await {
        Err(xapi_core::Error::Api(f)) => (f.code.as_str().to_owned(), f.params),
        other => panic!("{method}: expected a XAPI failure, got {other:?}"),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn vbd(
    vm: &str,
    vdi: &str,
    userdevice: &str,
    kind: &str,
    mode: &str,
    empty: bool,
) -> serde_json::Value {
    json!({
        "VM": vm, "VDI": vdi, "userdevice": userdevice, "bootable": false, "mode": mode,
        "type": kind, "unpluggable": true, "empty": empty, "other_config": {},
        "qos_algorithm_type": "", "qos_algorithm_params": {},
    })
}

fn vif(vm: &str, network: &str, device: &str, mac: &str) -> serde_json::Value {
    json!({
        "device": device, "network": network, "VM": vm, "MAC": mac, "MTU": 1500,
        "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {},
    })
}

#[tokio::test]
async fn vbd_create_checks_references_devices_and_modes() {
    let (_sim, session) = support::demo().await;
    let vm = support::vm_named(&session, "backup-proxy").await;
    let vdi = support::first_disk_of(&session, "backup-proxy").await;
    let ghost = "OpaqueRef:00000000-dead-beef-0000-000000000000";
    assert_eq!(
        failure_of::<String>(
            &session,
            "VBD.create",
            (vbd(ghost, &vdi, "5", "Disk", "RW", false),)
        )
        .await,
        ("HANDLE_INVALID".to_owned(), strings(&["VM", ghost]))
    );
    assert_eq!(
        failure_of::<String>(
            &session,
            "VBD.create",
            (vbd(&vm, ghost, "5", "Disk", "RW", false),)
        )
        .await,
        ("HANDLE_INVALID".to_owned(), strings(&["VDI", ghost]))
    );
    // backup-proxy's disk is userdevice 0: "0" and "xvda" both name it
    for device in ["0", "xvda", "hda"] {
        assert_eq!(
            failure_of::<String>(
                &session,
                "VBD.create",
                (vbd(&vm, &vdi, device, "Disk", "RW", false),)
            )
            .await,
            ("DEVICE_ALREADY_EXISTS".to_owned(), strings(&[device]))
        );
    }
    assert_eq!(
        failure_of::<String>(
            &session,
            "VBD.create",
            (vbd(&vm, &vdi, "banana", "Disk", "RW", false),)
        )
        .await,
        ("INVALID_DEVICE".to_owned(), strings(&["banana"]))
    );
    assert_eq!(
        failure_of::<String>(
            &session,
            "VBD.create",
            (vbd(&vm, "OpaqueRef:NULL", "3", "CD", "RW", true),)
        )
        .await
        .0,
        "VBD_CDS_MUST_BE_READONLY"
    );
    assert_eq!(
        failure_of::<String>(
            &session,
            "VBD.create",
            (vbd(&vm, "OpaqueRef:NULL", "3", "Disk", "RW", true),)
        )
        .await,
        (
            "VBD_NOT_REMOVABLE_MEDIA".to_owned(),
            strings(&["in constructor"])
        )
    );
    // an empty CD needs no VDI; autodetect takes the first free device
    let cd: String = session
        .call(
            "VBD.create",
            (vbd(&vm, "OpaqueRef:NULL", "autodetect", "CD", "RO", true),),
        )
        .await
        .expect("an empty CD drive");
    let device: String = session.call("VBD.get_userdevice", (&cd,)).await.unwrap();
    assert_eq!(device, "1");
    let vbds: Vec<String> = session.call("VM.get_VBDs", (&vm,)).await.unwrap();
    assert!(vbds.contains(&cd));
}

#[tokio::test]
async fn vif_create_checks_references_macs_and_devices() {
    let (_sim, session) = support::demo().await;
    let vm = support::vm_named(&session, "backup-proxy").await;
    let networks: Vec<String> = session.call("network.get_all", ()).await.unwrap();
    let network = &networks[0];
    let ghost = "OpaqueRef:00000000-dead-beef-0000-000000000000";
    assert_eq!(
        failure_of::<String>(
            &session,
            "VIF.create",
            (vif(ghost, network, "3", "02:00:00:00:00:01"),)
        )
        .await,
        ("HANDLE_INVALID".to_owned(), strings(&["VM", ghost]))
    );
    assert_eq!(
        failure_of::<String>(
            &session,
            "VIF.create",
            (vif(&vm, ghost, "3", "02:00:00:00:00:01"),)
        )
        .await,
        ("HANDLE_INVALID".to_owned(), strings(&["network", ghost]))
    );
    assert_eq!(
        failure_of::<String>(
            &session,
            "VIF.create",
            (vif(&vm, network, "eth3", "02:00:00:00:00:01"),)
        )
        .await,
        ("INVALID_DEVICE".to_owned(), strings(&["eth3"]))
    );
    for mac in ["02:00:00:00:00", "02:00:00:00:00:zz", "0200.0000.0001"] {
        assert_eq!(
            failure_of::<String>(&session, "VIF.create", (vif(&vm, network, "3", mac),)).await,
            ("MAC_INVALID".to_owned(), strings(&[mac]))
        );
    }
    // no mac_seed on the VM: xapi has no MAC to generate
    assert_eq!(
        failure_of::<String>(&session, "VIF.create", (vif(&vm, network, "3", ""),)).await,
        ("MAC_INVALID".to_owned(), strings(&[""]))
    );
    assert_eq!(
        failure_of::<String>(
            &session,
            "VIF.create",
            (vif(&vm, network, "0", "02:00:00:00:00:01"),)
        )
        .await,
        ("DEVICE_ALREADY_EXISTS".to_owned(), strings(&["0"]))
    );
    let made: String = session
        .call("VIF.create", (vif(&vm, network, "3", "02:00:00:00:00:01"),))
        .await
        .expect("a valid VIF");
    assert_eq!(
        session
            .call::<String>("VIF.get_MAC", (&made,))
            .await
            .unwrap(),
        "02:00:00:00:00:01"
    );
    // with a mac_seed, an empty MAC is generated
    session
        .call::<()>(
            "VM.add_to_other_config",
            (&vm, "mac_seed", "4c2c4a6f-5d45-4b28-9a56-8f1a2c0e3b11"),
        )
        .await
        .unwrap();
    let generated: String = session
        .call("VIF.create", (vif(&vm, network, "4", ""),))
        .await
        .expect("a generated MAC");
    let mac: String = session.call("VIF.get_MAC", (&generated,)).await.unwrap();
    assert_eq!(mac.len(), 17, "{mac}");
    assert!(
        session
            .call::<bool>("VIF.get_MAC_autogenerated", (&generated,))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn pbd_create_checks_the_sr_and_one_pbd_per_host() {
    let (_sim, session) = support::demo().await;
    let srs: Vec<String> = session
        .call("SR.get_by_name_label", ("Shared NFS",))
        .await
        .unwrap();
    let pbds: Vec<String> = session.call("SR.get_PBDs", (&srs[0],)).await.unwrap();
    let host: String = session.call("PBD.get_host", (&pbds[0],)).await.unwrap();
    let ghost = "OpaqueRef:00000000-dead-beef-0000-000000000000";
    let pbd = |sr: &str| json!({"host": host, "SR": sr, "device_config": {}, "other_config": {}});
    assert_eq!(
        failure_of::<String>(&session, "PBD.create", (pbd(ghost),)).await,
        ("HANDLE_INVALID".to_owned(), strings(&["SR", ghost]))
    );
    assert_eq!(
        failure_of::<String>(&session, "PBD.create", (pbd(&srs[0]),)).await,
        (
            "PBD_EXISTS".to_owned(),
            vec![srs[0].clone(), host.clone(), pbds[0].clone()]
        )
    );
}

#[tokio::test]
async fn blocked_operations_are_refused_with_their_reason() {
    let (_sim, session) = support::demo().await;
    let vm = support::vm_named(&session, "backup-proxy").await;
    session
        .call::<()>(
            "VM.add_to_blocked_operations",
            (&vm, "destroy", "kept for audit"),
        )
        .await
        .unwrap();
    assert_eq!(
        failure_of::<()>(&session, "VM.destroy", (&vm,)).await,
        (
            "OPERATION_BLOCKED".to_owned(),
            vec![vm.clone(), "kept for audit".to_owned()]
        )
    );
    session
        .call::<()>("VM.remove_from_blocked_operations", (&vm, "destroy"))
        .await
        .unwrap();
    session
        .call::<()>("VM.destroy", (&vm,))
        .await
        .expect("unblocked");
}

#[tokio::test]
async fn an_operation_in_progress_refuses_a_conflicting_one() {
    let (_sim, session) = support::demo().await;
    let vm = support::vm_named(&session, "backup-proxy").await;
    session
        .call::<()>("VM.set_start_delay", (&vm, 2_i64))
        .await
        .unwrap();
    let task: String = session
        .call("Async.VM.start", (&vm, false, false))
        .await
        .expect("Async.VM.start");
    // wait until the VM runs (the start then sleeps its start_delay)
    let mut operations = std::collections::BTreeMap::<String, String>::new();
    for _ in 0..100 {
        operations = session
            .call("VM.get_current_operations", (&vm,))
            .await
            .unwrap();
        if !operations.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (marker, op) = operations.iter().next().expect("the start is under way");
    assert_eq!(op, "start");
    assert_eq!(
        failure_of::<()>(&session, "VM.clean_shutdown", (&vm,)).await,
        (
            "OTHER_OPERATION_IN_PROGRESS".to_owned(),
            vec![
                "VM".to_owned(),
                vm.clone(),
                "start".to_owned(),
                marker.clone()
            ]
        )
    );
    // a snapshot waits its turn too
    assert_eq!(
        failure_of::<String>(&session, "VM.snapshot", (&vm, "during start"))
            .await
            .0,
        "OTHER_OPERATION_IN_PROGRESS"
    );
    // a start now is refused for the power state first, as xapi checks it before concurrency
    assert_eq!(
        failure_of::<()>(&session, "VM.start", (&vm, false, false))
            .await
            .0,
        "VM_BAD_POWER_STATE"
    );
    let (status, _) = loop {
        let outcome = support::task_outcome(&session, &task).await;
        if outcome.0 != "pending" {
            break outcome;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, "success");
    let after: std::collections::BTreeMap<String, String> = session
        .call("VM.get_current_operations", (&vm,))
        .await
        .unwrap();
    assert!(after.is_empty(), "{after:?}");
    session
        .call::<()>("VM.clean_shutdown", (&vm,))
        .await
        .expect("nothing in progress");
}

#[tokio::test]
async fn a_disk_does_not_shrink() {
    let (_sim, session) = support::demo().await;
    let vdi = support::first_disk_of(&session, "backup-proxy").await;
    let size: i64 = session.call("VDI.get_virtual_size", (&vdi,)).await.unwrap();
    assert_eq!(
        failure_of::<()>(&session, "VDI.resize", (&vdi, size - (1 << 20))).await,
        (
            "SR_BACKEND_FAILURE_79".to_owned(),
            strings(&["", "VDI Invalid size [opterr=shrinking not allowed]", ""])
        )
    );
    session
        .call::<()>("VDI.resize", (&vdi, size + (1 << 20)))
        .await
        .expect("growing");
    let grown: i64 = session.call("VDI.get_virtual_size", (&vdi,)).await.unwrap();
    assert_eq!(grown, size + (1 << 20));
}

/// A full export is an `export` operation on its VM while the bytes flow: a destroy waits,
/// a clone may run alongside (xapi lets copies and exports go together).
#[tokio::test]
async fn an_export_under_way_holds_off_a_destroy() {
    let (_sim, session) = support::demo().await;
    let vm = support::vm_named(&session, "backup-proxy").await;
    let download = session
        .get("/export", &[("ref", vm.as_str())], None)
        .await
        .expect("the export starts");
    let operations: std::collections::BTreeMap<String, String> = session
        .call("VM.get_current_operations", (&vm,))
        .await
        .unwrap();
    let (marker, op) = operations.iter().next().expect("the export is under way");
    assert_eq!(op, "export");
    assert_eq!(
        failure_of::<()>(&session, "VM.destroy", (&vm,)).await,
        (
            "OTHER_OPERATION_IN_PROGRESS".to_owned(),
            vec![
                "VM".to_owned(),
                vm.clone(),
                "export".to_owned(),
                marker.clone()
            ]
        )
    );
    let _: String = session
        .call("VM.clone", (&vm, "cloned during export"))
        .await
        .expect("a clone goes with an export");
    drop(download);
    let mut cleared = false;
    for _ in 0..200 {
        let now: std::collections::BTreeMap<String, String> = session
            .call("VM.get_current_operations", (&vm,))
            .await
            .unwrap();
        if now.is_empty() {
            cleared = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(cleared, "the export ends when its connection goes");
    // read to its end, an export has let go of the VM by the time the client has the bytes
    let xva = support::download(&session, "/export", &[("ref", vm.as_str())]).await;
    assert!(!xva.is_empty());
    session
        .call::<()>("VM.destroy", (&vm,))
        .await
        .expect("nothing in progress");
}
