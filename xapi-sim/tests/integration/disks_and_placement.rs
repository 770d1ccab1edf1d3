//! `VDI.snapshot`, `VDI.clone` and `VDI.copy` as a CBT incremental backup and a restore use
//! them, the free device numbers a client asks for before it plugs a disk or a NIC, and where a
//! VM may boot (`VM.get_possible_hosts`, `VM.assert_can_boot_here`, `VM.start_on`).

use crate::support;

use base64::Engine as _;
use support::{demo, failure_code, first_disk_of, put_and_wait, vm_named};
use xapi_core::client::SessionHandle;
use xapi_sim::SimHandle;

const MIB: usize = 1 << 20;

/// The `driver_params` of a snapshot or clone: none.
fn no_params() -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::new()
}
const CBT_BLOCK: usize = 64 << 10;

/// Write `bytes` at `offset` of `vdi` through `/import_raw_vdi` (chunked extents).
async fn write(session: &SessionHandle, vdi: &str, offset: u64, bytes: &[u8]) {
    let body = xapi_backup::format::chunked::encode_extents([(offset, bytes)]);
    let (status, result) = put_and_wait(
        session,
        "/import_raw_vdi",
        &[("vdi", vdi), ("format", "raw"), ("chunked", "")],
        body,
    )
    .await;
    assert_eq!(status, "success", "{result}");
}

async fn image(sim: &SimHandle, session: &SessionHandle, vdi: &str) -> Vec<u8> {
    let uuid: String = session.call("VDI.get_uuid", (vdi,)).await.unwrap();
    std::fs::read(sim.disk_image("primary", &uuid).unwrap()).unwrap()
}

/// The CBT blocks set in a `list_changed_blocks` answer.
fn changed_blocks(bitmap: &str) -> Vec<usize> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(bitmap)
        .unwrap();
    (0..bytes.len() * 8)
        .filter(|bit| bytes[bit / 8] & (0x80 >> (bit % 8)) != 0)
        .collect()
}

#[tokio::test]
async fn vdi_snapshots_keep_cbt_so_changed_blocks_can_be_listed_between_them() {
    let (sim, session) = demo().await;
    let vdi = first_disk_of(&session, "legacy-crm").await;
    let () = session.call("VDI.enable_cbt", (&vdi,)).await.unwrap();
    let first: String = session
        .call("VDI.snapshot", (&vdi, no_params()))
        .await
        .unwrap();
    assert!(
        session
            .call::<bool>("VDI.get_is_a_snapshot", (&first,))
            .await
            .unwrap()
    );
    assert_eq!(
        session
            .call::<String>("VDI.get_snapshot_of", (&first,))
            .await
            .unwrap(),
        vdi
    );
    assert!(
        session
            .call::<bool>("VDI.get_cbt_enabled", (&first,))
            .await
            .unwrap()
    );
    assert_eq!(
        image(&sim, &session, &first).await,
        image(&sim, &session, &vdi).await
    );

    write(&session, &vdi, 5 * CBT_BLOCK as u64, &[0xab; 10]).await;
    let second: String = session
        .call("VDI.snapshot", (&vdi, no_params()))
        .await
        .unwrap();
    let bitmap: String = session
        .call("VDI.list_changed_blocks", (&first, &second))
        .await
        .unwrap();
    assert_eq!(changed_blocks(&bitmap), vec![5]);

    // the first snapshot's data can go; its CBT log stays usable as a base
    let () = session.call("VDI.data_destroy", (&first,)).await.unwrap();
    let code = failure_code(
        session
            .call::<String>("VDI.snapshot", (&first, no_params()))
            .await,
    );
    assert_eq!(code, "VDI_INCOMPATIBLE_TYPE");
}

#[tokio::test]
async fn clones_and_copies_are_plain_disks_with_the_same_data() {
    let (sim, session) = demo().await;
    let vdi = first_disk_of(&session, "legacy-crm").await;
    write(&session, &vdi, MIB as u64, b"payload").await;
    let () = session.call("VDI.enable_cbt", (&vdi,)).await.unwrap();
    let data = image(&sim, &session, &vdi).await;

    let clone: String = session
        .call("VDI.clone", (&vdi, no_params()))
        .await
        .unwrap();
    assert!(
        !session
            .call::<bool>("VDI.get_cbt_enabled", (&clone,))
            .await
            .unwrap()
    );
    assert!(
        !session
            .call::<bool>("VDI.get_is_a_snapshot", (&clone,))
            .await
            .unwrap()
    );
    assert_eq!(image(&sim, &session, &clone).await, data);

    let srs: Vec<String> = session.call("SR.get_all", ()).await.unwrap();
    let sr_of_vdi: String = session.call("VDI.get_SR", (&vdi,)).await.unwrap();
    let null = "OpaqueRef:NULL";
    let copy: String = session
        .call("VDI.copy", (&vdi, &sr_of_vdi, null, null))
        .await
        .unwrap();
    assert_eq!(
        session
            .call::<String>("VDI.get_SR", (&copy,))
            .await
            .unwrap(),
        sr_of_vdi
    );
    assert_eq!(image(&sim, &session, &copy).await, data);
    assert!(srs.contains(&sr_of_vdi));
}

#[tokio::test]
async fn copy_into_an_existing_disk_checks_it_and_writes_only_what_differs_from_the_base() {
    let (sim, session) = demo().await;
    let vdi = first_disk_of(&session, "legacy-crm").await;
    let size: i64 = session.call("VDI.get_virtual_size", (&vdi,)).await.unwrap();
    let base: String = session
        .call("VDI.snapshot", (&vdi, no_params()))
        .await
        .unwrap();
    // the restore target already holds the base, plus a block the copy must leave alone
    let null = "OpaqueRef:NULL";
    let target: String = session
        .call("VDI.copy", (&base, null, null, null))
        .await
        .unwrap();
    write(&session, &target, 7 * MIB as u64, b"local").await;
    write(&session, &vdi, 2 * MIB as u64, b"changed since the base").await;

    let into: String = session
        .call("VDI.copy", (&vdi, null, &base, &target))
        .await
        .unwrap();
    assert_eq!(into, target);
    let restored = image(&sim, &session, &target).await;
    assert_eq!(&restored[2 * MIB..2 * MIB + 22], b"changed since the base");
    assert_eq!(&restored[7 * MIB..7 * MIB + 5], b"local");

    let sr: String = session.call("VDI.get_SR", (&vdi,)).await.unwrap();
    let small: String = session
        .call(
            "VDI.create",
            (serde_json::json!({
                "name_label": "too small", "SR": sr, "virtual_size": MIB, "type": "user",
                "sharable": false, "read_only": false, "other_config": {},
                "xenstore_data": {}, "sm_config": {}, "tags": []
            }),),
        )
        .await
        .unwrap();
    let result = session
        .call::<String>("VDI.copy", (&vdi, null, null, &small))
        .await;
    let Err(xapi_core::Error::Api(failure)) = result else {
        panic!("copying into a smaller disk must fail: {result:?}");
    };
    assert_eq!(failure.code, xapi_core::api::ErrorCode::VdiTooSmall);
    assert_eq!(failure.params, vec![small, size.to_string()]);
}

#[tokio::test]
async fn allowed_devices_leave_out_the_ones_in_use() {
    let (_sim, session) = demo().await;
    let vm = vm_named(&session, "legacy-crm").await;
    let vbds: Vec<String> = session.call("VM.get_VBDs", (&vm,)).await.unwrap();
    let mut in_use = Vec::new();
    for vbd in &vbds {
        in_use.push(
            session
                .call::<String>("VBD.get_userdevice", (vbd,))
                .await
                .unwrap(),
        );
    }
    let free: Vec<String> = session
        .call("VM.get_allowed_VBD_devices", (&vm,))
        .await
        .unwrap();
    assert_eq!(free.len(), 255 - in_use.len());
    assert!(in_use.iter().all(|d| !free.contains(d)));
    assert!(free.contains(&"254".to_owned()) && !free.contains(&"255".to_owned()));

    let vifs: Vec<String> = session.call("VM.get_VIFs", (&vm,)).await.unwrap();
    let free: Vec<String> = session
        .call("VM.get_allowed_VIF_devices", (&vm,))
        .await
        .unwrap();
    assert_eq!(free.len(), 16 - vifs.len());
    for vif in &vifs {
        let device: String = session.call("VIF.get_device", (vif,)).await.unwrap();
        assert!(!free.contains(&device));
    }
}

#[tokio::test]
async fn a_vm_boots_only_where_its_disks_srs_are_plugged() {
    let (_sim, session) = demo().await;
    let vm = vm_named(&session, "legacy-crm").await;
    let hosts: Vec<String> = session.call("host.get_all", ()).await.unwrap();
    let possible: Vec<String> = session.call("VM.get_possible_hosts", (&vm,)).await.unwrap();
    assert_eq!(
        possible.len(),
        hosts.len(),
        "the demo's shared SRs are on every host"
    );

    // unplug the disk's SR from one host: that host drops out
    let vdi = first_disk_of(&session, "legacy-crm").await;
    let sr: String = session.call("VDI.get_SR", (&vdi,)).await.unwrap();
    let pbds: Vec<String> = session.call("SR.get_PBDs", (&sr,)).await.unwrap();
    let unplugged_on: String = session.call("PBD.get_host", (&pbds[0],)).await.unwrap();
    let () = session.call("PBD.unplug", (&pbds[0],)).await.unwrap();
    let possible: Vec<String> = session.call("VM.get_possible_hosts", (&vm,)).await.unwrap();
    assert!(!possible.contains(&unplugged_on));
    let result = session
        .call::<()>("VM.assert_can_boot_here", (&vm, &unplugged_on))
        .await;
    let Err(xapi_core::Error::Api(failure)) = result else {
        panic!("the host lacks the SR: {result:?}");
    };
    assert_eq!(failure.code, xapi_core::api::ErrorCode::VmRequiresSr);
    assert_eq!(failure.params, vec![vm.clone(), sr.clone()]);
    let code = failure_code(
        session
            .call::<()>("VM.start_on", (&vm, &unplugged_on, false, false))
            .await,
    );
    assert_eq!(code, "VM_REQUIRES_SR");

    // a plain start goes where it can
    let () = session.call("VM.start", (&vm, false, false)).await.unwrap();
    let resident: String = session.call("VM.get_resident_on", (&vm,)).await.unwrap();
    assert!(possible.contains(&resident));
}

#[tokio::test]
async fn cbt_blocks_storage_motion_and_reset_on_boot_as_xapi_does() {
    let (_sim, session) = demo().await;
    let vdi = first_disk_of(&session, "legacy-crm").await;
    let vm = vm_named(&session, "legacy-crm").await;
    let () = session.call("VDI.enable_cbt", (&vdi,)).await.unwrap();

    // storage motion of the disk, or of its VM, is refused while CBT is on
    let sr: String = session.call("VDI.get_SR", (&vdi,)).await.unwrap();
    let refused = session
        .call::<String>("VDI.pool_migrate", (&vdi, &sr, no_params()))
        .await;
    match &refused {
        Err(xapi_core::Error::Api(failure)) => assert_eq!(failure.params, vec![vdi.clone()]),
        other => panic!("{other:?}"),
    }
    assert_eq!(failure_code(refused), "VDI_CBT_ENABLED");
    let refused = session
        .call::<String>(
            "VM.migrate_send",
            (
                &vm,
                no_params(),
                true,
                no_params(),
                no_params(),
                no_params(),
            ),
        )
        .await;
    assert_eq!(failure_code(refused), "VDI_CBT_ENABLED");
    let refused = session.call::<()>("VDI.set_on_boot", (&vdi, "reset")).await;
    assert_eq!(failure_code(refused), "VDI_CBT_ENABLED");

    // with CBT off the operations get past the check; a disk reset on boot cannot track changes
    let () = session.call("VDI.disable_cbt", (&vdi,)).await.unwrap();
    let past = session
        .call::<String>("VDI.pool_migrate", (&vdi, &sr, no_params()))
        .await;
    assert_eq!(failure_code(past), "NOT_IMPLEMENTED");
    let () = session
        .call("VDI.set_on_boot", (&vdi, "reset"))
        .await
        .unwrap();
    let on_boot: String = session.call("VDI.get_on_boot", (&vdi,)).await.unwrap();
    assert_eq!(on_boot, "reset");
    let refused = session.call::<()>("VDI.enable_cbt", (&vdi,)).await;
    assert_eq!(
        failure_code(refused),
        "VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION"
    );
    let () = session
        .call("VDI.set_on_boot", (&vdi, "persist"))
        .await
        .unwrap();
    let () = session.call("VDI.enable_cbt", (&vdi,)).await.unwrap();
}
