//! `PUT /import_metadata` of what `GET /export_metadata` served: the VM comes back with its
//! VBDs on the very VDIs it had (found by SR UUID and location, or through `vdi:` mappings);
//! `dry_run` creates nothing; a disk that cannot be found fails the import with
//! `VDI_LOCATION_MISSING` and leaves nothing behind, unless `force`.

use crate::support;

use std::collections::BTreeMap;

use support::{demo, vm_named};
use xapi_core::client::SessionHandle;

/// userdevice → VDI of the disk VBDs of `vm`.
async fn disks(session: &SessionHandle, vm: &str) -> BTreeMap<String, String> {
    support::disk_vbds(session, vm).await.into_iter().collect()
}

async fn export_metadata(session: &SessionHandle, vm: &str) -> Vec<u8> {
    support::download(session, "/export_metadata", &[("ref", vm)]).await
}

/// Import; the task's status and result (or error info joined by spaces).
async fn import_metadata(
    session: &SessionHandle,
    query: &[(&str, &str)],
    tar: Vec<u8>,
) -> (String, String) {
    support::put_and_wait(session, "/import_metadata", query, tar).await
}

async fn count(session: &SessionHandle, class: &str) -> usize {
    support::all_of(session, class).await.len()
}

#[tokio::test]
async fn a_destroyed_vm_comes_back_on_its_own_disks() {
    let (_sim, session) = demo().await;
    let vm = vm_named(&session, "legacy-crm").await;
    let uuid: String = session.call("VM.get_uuid", (&vm,)).await.unwrap();
    let before = disks(&session, &vm).await;
    assert!(before.len() > 1, "the VM has several disks");
    let tar = export_metadata(&session, &vm).await;
    let _: () = session.call("VM.destroy", (&vm,)).await.unwrap();
    let (vms, vbds) = (count(&session, "VM").await, count(&session, "VBD").await);

    let (status, result) = import_metadata(
        &session,
        &[("restore", "true"), ("dry_run", "true")],
        tar.clone(),
    )
    .await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(count(&session, "VM").await, vms, "dry_run creates no VM");
    assert_eq!(count(&session, "VBD").await, vbds, "dry_run creates no VBD");

    let (status, result) = import_metadata(&session, &[("restore", "true")], tar).await;
    assert_eq!(status, "success", "{result}");
    let back: String = session.call("VM.get_by_uuid", (&uuid,)).await.unwrap();
    assert!(
        result.contains(&back),
        "the task result names the VM: {result}"
    );
    assert_eq!(disks(&session, &back).await, before, "same VBDs, same VDIs");
    let version: i64 = session.call("VM.get_version", (&back,)).await.unwrap();
    assert_eq!(version, 1, "a full restore bumps VM.version");
}

#[tokio::test]
async fn vdi_mapping_points_a_disk_elsewhere() {
    let (_sim, session) = demo().await;
    let vm = vm_named(&session, "legacy-crm").await;
    let before = disks(&session, &vm).await;
    let (device, first) = before
        .iter()
        .next()
        .map(|(d, v)| (d.clone(), v.clone()))
        .unwrap();
    let other = vm_named(&session, "mail").await;
    let other_vdi = disks(&session, &other).await.into_values().next().unwrap();
    let first_uuid: String = session.call("VDI.get_uuid", (&first,)).await.unwrap();
    let other_uuid: String = session.call("VDI.get_uuid", (&other_vdi,)).await.unwrap();
    let tar = export_metadata(&session, &vm).await;
    let key = format!("vdi:{first_uuid}");
    let (status, result) = import_metadata(&session, &[(&key, &other_uuid)], tar).await;
    assert_eq!(status, "success", "{result}");
    let copy = result
        .split("OpaqueRef:")
        .nth(1)
        .map(|rest| format!("OpaqueRef:{}", &rest[..36]))
        .expect("a VM in the result");
    let mut expected = before.clone();
    expected.insert(device, other_vdi);
    assert_eq!(disks(&session, &copy).await, expected);
}

#[tokio::test]
async fn a_missing_disk_fails_unless_forced() {
    let (_sim, session) = demo().await;
    let vm = vm_named(&session, "legacy-crm").await;
    let uuid: String = session.call("VM.get_uuid", (&vm,)).await.unwrap();
    let before = disks(&session, &vm).await;
    let tar = export_metadata(&session, &vm).await;
    let _: () = session.call("VM.destroy", (&vm,)).await.unwrap();
    let (gone_device, gone) = before
        .iter()
        .next()
        .map(|(d, v)| (d.clone(), v.clone()))
        .unwrap();
    let location: String = session.call("VDI.get_location", (&gone,)).await.unwrap();
    let _: () = session.call("VDI.destroy", (&gone,)).await.unwrap();
    let (vms, vbds, vifs) = (
        count(&session, "VM").await,
        count(&session, "VBD").await,
        count(&session, "VIF").await,
    );

    let (status, error) = import_metadata(&session, &[("restore", "true")], tar.clone()).await;
    assert_eq!(status, "failure");
    assert!(error.starts_with("VDI_LOCATION_MISSING "), "{error}");
    assert!(error.ends_with(&location), "{error}");
    assert_eq!(
        (
            count(&session, "VM").await,
            count(&session, "VBD").await,
            count(&session, "VIF").await
        ),
        (vms, vbds, vifs),
        "nothing stays from the failed import"
    );

    let (status, result) =
        import_metadata(&session, &[("restore", "true"), ("force", "true")], tar).await;
    assert_eq!(status, "success", "{result}");
    let back: String = session.call("VM.get_by_uuid", (&uuid,)).await.unwrap();
    let mut expected = before.clone();
    expected.remove(&gone_device);
    assert_eq!(
        disks(&session, &back).await,
        expected,
        "the missing disk and its VBD are skipped"
    );
}

#[tokio::test]
async fn vdi_mapping_by_scsi_id() {
    let (_sim, session) = demo().await;
    let vm = vm_named(&session, "legacy-crm").await;
    let before = disks(&session, &vm).await;
    let (device, first) = before
        .iter()
        .next()
        .map(|(d, v)| (d.clone(), v.clone()))
        .unwrap();
    let other = vm_named(&session, "mail").await;
    let other_vdi = disks(&session, &other).await.into_values().next().unwrap();
    let _: () = session
        .call("VDI.add_to_sm_config", (&first, "SCSIid", "src-lun-1"))
        .await
        .unwrap();
    let _: () = session
        .call("VDI.add_to_sm_config", (&other_vdi, "SCSIid", "dst-lun-9"))
        .await
        .unwrap();
    let tar = export_metadata(&session, &vm).await;
    let (status, result) = import_metadata(&session, &[("vdi:src-lun-1", "dst-lun-9")], tar).await;
    assert_eq!(status, "success", "{result}");
    let copy = result
        .split("OpaqueRef:")
        .nth(1)
        .map(|rest| format!("OpaqueRef:{}", &rest[..36]))
        .expect("a VM in the result");
    let mut expected = before.clone();
    expected.insert(device, other_vdi);
    assert_eq!(disks(&session, &copy).await, expected);
}
