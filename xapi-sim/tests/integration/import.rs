//! `PUT /import` of an XVA made by `GET /export`: a new VM with new identity, or a restore that
//! keeps UUIDs and MACs and bumps `VM.version`; disks arrive byte for byte.

use crate::support;

use std::collections::BTreeMap;

use xapi_core::client::SessionHandle;
use xapi_sim::SimHandle;

async fn export(session: &SessionHandle, vm: &str, compression: &str) -> Vec<u8> {
    let query = [("ref", vm), ("use_compression", compression)];
    support::download(session, "/export", &query).await
}

/// Import and return the task's status, result and other_config.
async fn import(
    session: &SessionHandle,
    query: &[(&str, &str)],
    xva: Vec<u8>,
) -> (String, String, BTreeMap<String, String>) {
    let task = support::upload(session, "/import", query, xva).await;
    let (status, result) = support::task_outcome(session, &task).await;
    let other: BTreeMap<String, String> = session
        .call("task.get_other_config", (&task,))
        .await
        .unwrap();
    (status, result, other)
}

/// The image bytes of each disk of a VM, in VBD userdevice order, and the VIF MACs.
async fn disks_and_macs(
    sim: &SimHandle,
    session: &SessionHandle,
    vm: &str,
) -> (Vec<Vec<u8>>, Vec<String>) {
    let mut disks = Vec::new();
    let mut vbds: Vec<(String, String)> = Vec::new();
    for vbd in session
        .call::<Vec<String>>("VM.get_VBDs", (vm,))
        .await
        .unwrap()
    {
        let device: String = session.call("VBD.get_userdevice", (&vbd,)).await.unwrap();
        vbds.push((device, vbd));
    }
    vbds.sort();
    for (_, vbd) in vbds {
        let vdi: String = session.call("VBD.get_VDI", (&vbd,)).await.unwrap();
        let uuid: String = session.call("VDI.get_uuid", (&vdi,)).await.unwrap();
        disks.push(std::fs::read(sim.disk_image("primary", &uuid).unwrap()).unwrap());
    }
    let mut macs = Vec::new();
    for vif in session
        .call::<Vec<String>>("VM.get_VIFs", (vm,))
        .await
        .unwrap()
    {
        macs.push(
            session
                .call::<String>("VIF.get_MAC", (&vif,))
                .await
                .unwrap(),
        );
    }
    (disks, macs)
}

#[tokio::test]
async fn import_makes_a_new_vm_with_the_same_disks() {
    let (sim, session) = support::demo().await;
    let vms: Vec<String> = session
        .call("VM.get_by_name_label", ("legacy-crm",))
        .await
        .unwrap();
    let original = &vms[0];
    let xva = export(&session, original, "zstd").await;
    let (status, result, other) = import(&session, &[], xva).await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(
        other.get("object_creation").map(String::as_str),
        Some("complete")
    );
    let imported = result
        .trim_start_matches("<value><array><data><value>")
        .trim_end_matches("</value></data></array></value>")
        .to_owned();
    assert!(
        imported.starts_with("OpaqueRef:") && imported != *original,
        "{result}"
    );
    // as every VM xapi makes, the import has a metrics row of its own
    let metrics: String = session.call("VM.get_metrics", (&imported,)).await.unwrap();
    let original_metrics: String = session.call("VM.get_metrics", (original,)).await.unwrap();
    assert_ne!(metrics, original_metrics);
    let _: String = session
        .call("VM_metrics.get_uuid", (&metrics,))
        .await
        .expect("the imported VM's metrics exist");
    let name: String = session
        .call("VM.get_name_label", (&imported,))
        .await
        .unwrap();
    assert_eq!(name, "legacy-crm");
    let uuids: Vec<String> = vec![
        session.call("VM.get_uuid", (original,)).await.unwrap(),
        session.call("VM.get_uuid", (&imported,)).await.unwrap(),
    ];
    assert_ne!(uuids[0], uuids[1], "a plain import gets a new UUID");
    let version: i64 = session.call("VM.get_version", (&imported,)).await.unwrap();
    assert_eq!(version, 0);
    let (original_disks, original_macs) = disks_and_macs(&sim, &session, original).await;
    let (imported_disks, imported_macs) = disks_and_macs(&sim, &session, &imported).await;
    assert_eq!(original_disks.len(), 2);
    assert_eq!(
        imported_disks, original_disks,
        "the disks arrive byte for byte"
    );
    assert_ne!(imported_macs, original_macs, "a plain import gets new MACs");
}

#[tokio::test]
async fn restore_keeps_identity_and_bumps_the_version() {
    let (sim, session) = support::demo().await;
    let vms: Vec<String> = session
        .call("VM.get_by_name_label", ("backup-proxy",))
        .await
        .unwrap();
    let original = vms[0].clone();
    let uuid: String = session.call("VM.get_uuid", (&original,)).await.unwrap();
    let (disks, macs) = disks_and_macs(&sim, &session, &original).await;
    let xva = export(&session, &original, "false").await;
    // the halted VM in place has the same version as the exported one: xapi refuses to
    // replace it unless forced
    let (status, result, _) = import(&session, &[("restore", "true")], xva.clone()).await;
    assert_eq!(status, "failure");
    assert!(
        result.starts_with(&format!("VM_TO_IMPORT_IS_NOT_NEWER_VERSION {original} 0 0")),
        "{result}"
    );
    let (status, result, _) =
        import(&session, &[("restore", "true"), ("force", "true")], xva).await;
    assert_eq!(status, "success", "{result}");
    let restored: String = session.call("VM.get_by_uuid", (&uuid,)).await.unwrap();
    assert_ne!(
        restored, original,
        "the halted VM with that UUID was replaced"
    );
    let version: i64 = session.call("VM.get_version", (&restored,)).await.unwrap();
    assert_eq!(version, 1);
    let (restored_disks, restored_macs) = disks_and_macs(&sim, &session, &restored).await;
    assert_eq!(restored_disks, disks);
    assert_eq!(restored_macs, macs, "a restore keeps the MACs");
}

#[tokio::test]
async fn restore_over_a_running_vm_fails_unless_forced() {
    let (_sim, session) = support::demo().await;
    let vms: Vec<String> = session
        .call("VM.get_by_name_label", ("dns-1",))
        .await
        .unwrap();
    // xapi exports only a halted VM: halt it for the export, then start it again
    let () = session.call("VM.hard_shutdown", (&vms[0],)).await.unwrap();
    let xva = export(&session, &vms[0], "false").await;
    let () = session
        .call("VM.start", (&vms[0], false, false))
        .await
        .unwrap();
    let (status, _, _) = import(&session, &[("restore", "true")], xva.clone()).await;
    assert_eq!(status, "failure");
    let (status, result, _) =
        import(&session, &[("restore", "true"), ("force", "true")], xva).await;
    assert_eq!(status, "success", "{result}");
}
