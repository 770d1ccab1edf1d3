//! A recovered VM points into the DR pool's database only: references mapped by UUID or
//! nulled, snapshots recovered with their VM, networks matched or made as xapi's import does.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use crate::support;
use crate::support::dr::{named, to};

use xapi_core::client::SessionHandle;

/// Every `OpaqueRef:` inside a JSON value but the null one.
fn refs_in(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) if s.starts_with("OpaqueRef:") && s != "OpaqueRef:NULL" => {
            out.push(s.clone());
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| refs_in(v, out)),
        serde_json::Value::Object(members) => {
            for (key, v) in members {
                refs_in(&serde_json::Value::String(key.clone()), out);
                refs_in(v, out);
            }
        }
        _ => {}
    }
}

/// A VIF on `network` for `vm` as device `device`.
async fn add_vif(session: &SessionHandle, vm: &str, network: &str, device: &str) {
    let record = serde_json::json!({
        "device": device, "network": network, "VM": vm, "MAC": format!("02:00:00:00:00:0{device}"), "MTU": 1500,
        "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {},
    });
    session
        .call::<String>("VIF.create", (record,))
        .await
        .unwrap();
}

/// A network called `name` on `bridge`.
async fn add_network(session: &SessionHandle, name: &str, bridge: &str) -> String {
    let record = serde_json::json!({
        "name_label": name, "name_description": "", "MTU": 1500, "other_config": {},
        "bridge": bridge, "tags": [],
    });
    session.call("network.create", (record,)).await.unwrap()
}

#[tokio::test]
async fn a_recovered_vm_and_its_snapshot_point_into_the_target_only() {
    let first = support::dr::both()[0];
    let (sim, primary, dr) = support::dr::demo(&[first]).await;
    let crm = support::vm_named(&primary, "legacy-crm").await;
    let hosts: Vec<String> = primary.call("host.get_all", ()).await.unwrap();
    primary
        .call::<()>("VM.set_affinity", (&crm, &hosts[0]))
        .await
        .unwrap();
    let nfs = support::dr::sr_named(&primary, "Shared NFS").await;
    primary
        .call::<()>("VM.set_suspend_SR", (&crm, &nfs))
        .await
        .unwrap();
    // networks: one matched by bridge on the DR side, one that only the primary has
    let storage = add_network(&primary, "storage", "xenbr1").await;
    let dmz = add_network(&primary, "dmz", "xenbr7").await;
    add_vif(&primary, &crm, &storage, "1").await;
    add_vif(&primary, &crm, &dmz, "2").await;
    let backend = add_network(&dr, "backend", "xenbr1").await;
    let snapshot: String = primary
        .call("VM.snapshot", (&crm, "before the upgrade"))
        .await
        .unwrap();
    let snapshot_uuid: String = primary.call("VM.get_uuid", (&snapshot,)).await.unwrap();

    let uuids = support::dr::sr_uuids(&primary, &[first]).await;
    support::dr::create_dr_task(&dr, &uuids).await.unwrap();
    let (vdi, _) = support::dr::metadata_vdi_on(&dr, &uuids[0]).await;
    let foreign = support::dr::open_metadata(&dr, &sim.pool("dr").unwrap().url, &vdi).await;
    let lost = named(&foreign, "VM", "legacy-crm").await;
    foreign
        .call::<()>("VM.recover", (&lost, to(&dr), false))
        .await
        .unwrap();

    let vm = named(&dr, "VM", "legacy-crm").await;
    let affinity: String = dr.call("VM.get_affinity", (&vm,)).await.unwrap();
    assert_eq!(
        affinity, "OpaqueRef:NULL",
        "the primary's host is not in the DR pool"
    );
    let suspend_sr: String = dr.call("VM.get_suspend_SR", (&vm,)).await.unwrap();
    assert_eq!(
        suspend_sr, "OpaqueRef:NULL",
        "the NFS SR is not in the DR pool"
    );

    // the snapshot came along, with its disks found on the mirror
    let snapshots: Vec<String> = dr.call("VM.get_snapshots", (&vm,)).await.unwrap();
    assert_eq!(snapshots.len(), 1);
    let uuid: String = dr.call("VM.get_uuid", (&snapshots[0],)).await.unwrap();
    assert_eq!(uuid, snapshot_uuid);
    let of: String = dr
        .call("VM.get_snapshot_of", (&snapshots[0],))
        .await
        .unwrap();
    assert_eq!(of, vm);
    assert_eq!(support::disk_vbds(&dr, &snapshots[0]).await.len(), 2);

    // networks: by name, by bridge, else made
    let mut by_device = BTreeMap::new();
    for vif in dr.call::<Vec<String>>("VM.get_VIFs", (&vm,)).await.unwrap() {
        let device: String = dr.call("VIF.get_device", (&vif,)).await.unwrap();
        let network: String = dr.call("VIF.get_network", (&vif,)).await.unwrap();
        by_device.insert(device, network);
    }
    assert_eq!(
        by_device["0"],
        named(&dr, "network", "Pool-wide network associated with eth0").await
    );
    assert_eq!(by_device["1"], backend);
    let made: String = dr
        .call("network.get_name_label", (&by_device["2"],))
        .await
        .unwrap();
    assert_eq!(made, "dmz");

    // every reference the recovered objects hold names an object of the DR pool
    let mut known = BTreeSet::new();
    for class in xapi_core::api::meta::CLASSES {
        if class.message("get_all").is_none() {
            continue;
        }
        if let Ok(all) = dr
            .call::<Vec<String>>(&format!("{}.get_all", class.name), ())
            .await
        {
            known.extend(all);
        }
    }
    let mut held = Vec::new();
    for object in [&vm, &snapshots[0]] {
        let record: serde_json::Value = dr.call("VM.get_record", (object,)).await.unwrap();
        refs_in(&record, &mut held);
        for (devices, class) in [("VBDs", "VBD"), ("VIFs", "VIF")] {
            for device in dr
                .call::<Vec<String>>(&format!("VM.get_{devices}"), (object,))
                .await
                .unwrap()
            {
                let record: serde_json::Value = dr
                    .call(&format!("{class}.get_record"), (&device,))
                    .await
                    .unwrap();
                refs_in(&record, &mut held);
            }
        }
    }
    let foreign_refs: Vec<&String> = held.iter().filter(|r| !known.contains(*r)).collect();
    assert!(foreign_refs.is_empty(), "{foreign_refs:?}");
}
