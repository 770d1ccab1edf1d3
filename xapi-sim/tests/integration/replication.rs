//! `SR.enable_database_replication` over the API: the metadata VDI's image, read back with
//! `xapi_dr::metadata`, holds the same persistent tables as `GET /pool/xmldbdump`.

use crate::support;

use std::collections::BTreeMap;

use xapi_core::client::{Client, Protocol};
use xapi_dr::metadata::read_redo_log;

#[derive(Debug, serde::Deserialize)]
struct VdiSummary {
    uuid: String,
    #[serde(rename = "type")]
    vdi_type: String,
    name_label: String,
}

#[tokio::test]
async fn metadata_vdi_holds_the_pool_database() {
    let (sim, session) = support::demo_over(Protocol::XmlRpc).await;
    let srs: Vec<String> = session
        .call("SR.get_by_name_label", ("Replicated iSCSI (DR)",))
        .await
        .unwrap();
    let sr = &srs[0];
    session
        .call::<()>("SR.assert_supports_database_replication", (sr,))
        .await
        .unwrap();
    session
        .call::<()>("SR.enable_database_replication", (sr,))
        .await
        .unwrap();

    // a series of changes after the first full database
    support::change_add_and_delete(&session, "replicated change", "backup-proxy clone").await;

    let vdis: BTreeMap<String, VdiSummary> = session.call("VDI.get_all_records", ()).await.unwrap();
    let metadata: Vec<&VdiSummary> = vdis.values().filter(|v| v.vdi_type == "metadata").collect();
    assert_eq!(metadata.len(), 1);
    assert_eq!(metadata[0].name_label, "Metadata for DR");
    let image_path = sim.disk_image("primary", &metadata[0].uuid).unwrap();
    let image = read_redo_log(std::fs::File::open(&image_path).unwrap()).unwrap();
    assert!(image.deltas_applied > 0);
    assert_eq!(
        support::persistent_tables(image.database),
        support::persistent_tables(support::dump(&session).await)
    );

    // a sync writes a fresh full database into the other half
    session.call::<()>("pool.sync_database", ()).await.unwrap();
    let synced = read_redo_log(std::fs::File::open(&image_path).unwrap()).unwrap();
    assert_ne!(synced.validity, image.validity);
    assert_eq!(synced.deltas_applied, 0);
    assert_eq!(
        support::persistent_tables(synced.database),
        support::persistent_tables(support::dump(&session).await)
    );

    session
        .call::<()>("SR.disable_database_replication", (sr,))
        .await
        .unwrap();
    let vdis: BTreeMap<String, VdiSummary> = session.call("VDI.get_all_records", ()).await.unwrap();
    assert!(
        vdis.values().all(|v| v.vdi_type != "metadata"),
        "the metadata VDI is destroyed"
    );
}

#[derive(Debug, serde::Deserialize)]
struct VmUuid {
    uuid: String,
}

#[tokio::test]
async fn open_database_reads_the_replicated_pool() {
    let (sim, session) = support::demo_over(Protocol::XmlRpc).await;
    let srs: Vec<String> = session
        .call("SR.get_by_name_label", ("Replicated iSCSI (DR)",))
        .await
        .unwrap();
    session
        .call::<()>("SR.enable_database_replication", (&srs[0],))
        .await
        .unwrap();
    let vms: Vec<String> = session
        .call("VM.get_by_name_label", ("mail",))
        .await
        .unwrap();
    session
        .call::<()>(
            "VM.set_name_description",
            (&vms[0], "seen through the metadata VDI"),
        )
        .await
        .unwrap();

    let vdis: BTreeMap<String, VdiSummary> = session.call("VDI.get_all_records", ()).await.unwrap();
    let (metadata_vdi, _) = vdis.iter().find(|(_, v)| v.vdi_type == "metadata").unwrap();
    let (user_vdi, _) = vdis.iter().find(|(_, v)| v.vdi_type == "user").unwrap();
    match session
        .call::<String>("VDI.open_database", (user_vdi,))
        .await
    {
        Err(xapi_core::Error::Api(f)) => {
            assert_eq!(f.code, xapi_core::api::ErrorCode::VdiIncompatibleType);
        }
        other => panic!("a user VDI holds no database: {other:?}"),
    }
    let foreign_ref: String = session
        .call("VDI.open_database", (metadata_vdi,))
        .await
        .unwrap();
    let client = Client::builder(sim.url())
        .protocol(Protocol::XmlRpc)
        .build()
        .unwrap();
    let foreign = client.attach_session(xapi_core::wire::Ref::new(foreign_ref));

    let live: BTreeMap<String, VmUuid> = session.call("VM.get_all_records", ()).await.unwrap();
    let seen: BTreeMap<String, VmUuid> = foreign.call("VM.get_all_records", ()).await.unwrap();
    let uuids = |m: &BTreeMap<String, VmUuid>| {
        m.values()
            .map(|v| v.uuid.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(uuids(&seen), uuids(&live));
    let description: String = foreign
        .call("VM.get_name_description", (&vms[0],))
        .await
        .unwrap();
    assert_eq!(description, "seen through the metadata VDI");

    let pools: Vec<String> = session.call("pool.get_all", ()).await.unwrap();
    let pool_uuid: String = session.call("pool.get_uuid", (&pools[0],)).await.unwrap();
    let cached: String = session
        .call("VDI.read_database_pool_uuid", (metadata_vdi,))
        .await
        .unwrap();
    assert_eq!(cached, pool_uuid);

    match foreign
        .call::<()>("VM.set_name_description", (&vms[0], "no"))
        .await
    {
        Err(xapi_core::Error::Api(f)) => {
            assert_eq!(f.code, xapi_core::api::ErrorCode::RbacPermissionDenied);
        }
        other => panic!("the foreign session is read-only: {other:?}"),
    }
    foreign.call::<()>("session.logout", ()).await.unwrap();
}

#[tokio::test]
async fn a_destroyed_vm_is_recovered_from_the_metadata_vdi() {
    let (sim, session) = support::demo_over(Protocol::XmlRpc).await;
    let srs: Vec<String> = session
        .call("SR.get_by_name_label", ("Replicated iSCSI (DR)",))
        .await
        .unwrap();
    session
        .call::<()>("SR.enable_database_replication", (&srs[0],))
        .await
        .unwrap();
    let vms: Vec<String> = session
        .call("VM.get_by_name_label", ("legacy-crm",))
        .await
        .unwrap();
    let vm = vms[0].clone();
    let uuid: String = session.call("VM.get_uuid", (&vm,)).await.unwrap();
    let vifs: Vec<String> = session.call("VM.get_VIFs", (&vm,)).await.unwrap();
    let mac: String = session.call("VIF.get_MAC", (&vifs[0],)).await.unwrap();
    let mut disks = Vec::new();
    for vbd in session
        .call::<Vec<String>>("VM.get_VBDs", (&vm,))
        .await
        .unwrap()
    {
        disks.push(
            session
                .call::<String>("VBD.get_VDI", (&vbd,))
                .await
                .unwrap(),
        );
    }
    disks.sort();
    let vdis: BTreeMap<String, VdiSummary> = session.call("VDI.get_all_records", ()).await.unwrap();
    let (metadata_vdi, _) = vdis.iter().find(|(_, v)| v.vdi_type == "metadata").unwrap();
    let foreign_ref: String = session
        .call("VDI.open_database", (metadata_vdi,))
        .await
        .unwrap();
    // then the disaster: the VM record is lost (its disks stay)
    session.call::<()>("VM.destroy", (&vm,)).await.unwrap();
    let client = Client::builder(sim.url())
        .protocol(Protocol::XmlRpc)
        .build()
        .unwrap();
    let foreign = client.attach_session(xapi_core::wire::Ref::new(foreign_ref));
    let to = session.reference().to_string();
    let lost: String = foreign.call("VM.get_by_uuid", (&uuid,)).await.unwrap();
    foreign
        .call::<()>("VM.assert_can_be_recovered", (&lost, &to))
        .await
        .unwrap();
    let missing: Vec<String> = foreign
        .call("VM.get_SRs_required_for_recovery", (&lost, &to))
        .await
        .unwrap();
    assert!(missing.is_empty());

    foreign
        .call::<()>("VM.recover", (&lost, &to, false))
        .await
        .unwrap();
    let back: String = session.call("VM.get_by_uuid", (&uuid,)).await.unwrap();
    let version: i64 = session.call("VM.get_version", (&back,)).await.unwrap();
    assert_eq!(version, 1, "a recovery bumps VM.version");
    let mut back_disks = Vec::new();
    for vbd in session
        .call::<Vec<String>>("VM.get_VBDs", (&back,))
        .await
        .unwrap()
    {
        back_disks.push(
            session
                .call::<String>("VBD.get_VDI", (&vbd,))
                .await
                .unwrap(),
        );
    }
    back_disks.sort();
    assert_eq!(
        back_disks, disks,
        "the recovered VM uses the disks that stayed"
    );
    let back_vifs: Vec<String> = session.call("VM.get_VIFs", (&back,)).await.unwrap();
    let back_mac: String = session.call("VIF.get_MAC", (&back_vifs[0],)).await.unwrap();
    assert_eq!(back_mac, mac);

    // the metadata copy (version 0) is not newer than the pool's (version 1) any more
    let again = foreign.call::<()>("VM.recover", (&lost, &to, false)).await;
    assert_eq!(
        support::failure_code(again),
        "VM_TO_IMPORT_IS_NOT_NEWER_VERSION"
    );
    // force replaces it, asynchronously, in a task of the target pool
    let task: String = foreign
        .call("Async.VM.recover", (&lost, &to, true))
        .await
        .unwrap();
    let mut status = String::from("pending");
    for _ in 0..200 {
        status = session.call("task.get_status", (&task,)).await.unwrap();
        if status != "pending" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, "success");

    let in_vapp: Vec<String> = foreign
        .call("VM.get_by_name_label", ("erp-reports",))
        .await
        .unwrap();
    let refused = foreign
        .call::<()>("VM.recover", (&in_vapp[0], &to, false))
        .await;
    assert_eq!(support::failure_code(refused), "VM_IS_PART_OF_AN_APPLIANCE");

    // the vApp instead: its members still in the pool block a plain recovery; force skips the
    // running ones and replaces the halted one
    let apps: Vec<String> = foreign
        .call("VM_appliance.get_by_name_label", ("erp",))
        .await
        .unwrap();
    foreign
        .call::<()>("VM_appliance.assert_can_be_recovered", (&apps[0], &to))
        .await
        .unwrap();
    let plain = foreign
        .call::<()>("VM_appliance.recover", (&apps[0], &to, false))
        .await;
    let code = support::failure_code(plain);
    assert!(
        code == "VM_BAD_POWER_STATE" || code == "VM_TO_IMPORT_IS_NOT_NEWER_VERSION",
        "running members and same-version copies block a plain recovery: {code}"
    );
    foreign
        .call::<()>("VM_appliance.recover", (&apps[0], &to, true))
        .await
        .unwrap();
    let app_uuid: String = foreign
        .call("VM_appliance.get_uuid", (&apps[0],))
        .await
        .unwrap();
    let local_app: String = session
        .call("VM_appliance.get_by_uuid", (&app_uuid,))
        .await
        .unwrap();
    let members: Vec<String> = session
        .call("VM_appliance.get_VMs", (&local_app,))
        .await
        .unwrap();
    let mut names = Vec::new();
    for member in &members {
        names.push(
            session
                .call::<String>("VM.get_name_label", (member,))
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        names,
        ["erp-reports"],
        "the halted member was recovered into the vApp"
    );
}

/// Database replication needs the SM feature `SR_METADATA`, which only LVM over iSCSI and LVM
/// over HBA have (xapi's `assert_supports_database_replication`): on NFS or local storage it
/// is `SR_OPERATION_NOT_SUPPORTED [sr]`, and the demo's two LVM over iSCSI SRs both accept it.
#[tokio::test]
async fn replication_needs_an_sm_driver_with_sr_metadata() {
    let (_sim, session) = support::demo().await;
    let nfs: Vec<String> = session
        .call("SR.get_by_name_label", ("Shared NFS",))
        .await
        .unwrap();
    for message in [
        "SR.assert_supports_database_replication",
        "SR.enable_database_replication",
    ] {
        let err = session.call::<()>(message, (&nfs[0],)).await.unwrap_err();
        match err {
            xapi_core::Error::Api(failure) => {
                assert_eq!(
                    failure.code,
                    xapi_core::api::ErrorCode::SrOperationNotSupported
                );
                assert_eq!(failure.params, [nfs[0].clone()]);
            }
            other => panic!("{message}: {other}"),
        }
    }
    // nothing is replicated at start
    let vdis: Vec<String> = session.call("VDI.get_all", ()).await.unwrap();
    for vdi in &vdis {
        let vdi_type: String = session.call("VDI.get_type", (vdi,)).await.unwrap();
        assert_ne!(
            vdi_type, "metadata",
            "no metadata VDI before a client enables replication"
        );
    }
    for name in ["Replicated iSCSI (DR)", "Replicated iSCSI (DR 2)"] {
        let srs: Vec<String> = session.call("SR.get_by_name_label", (name,)).await.unwrap();
        let sr_type: String = session.call("SR.get_type", (&srs[0],)).await.unwrap();
        assert_eq!(sr_type, "lvmoiscsi");
        session
            .call::<()>("SR.enable_database_replication", (&srs[0],))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Every pool lists the SM drivers its hosts have, with their features (a capability's
/// version after its slash, 1 otherwise).
#[tokio::test]
async fn sm_records_carry_the_drivers_features() {
    #[derive(serde::Deserialize)]
    struct Sm {
        #[serde(rename = "type")]
        driver_type: String,
        features: BTreeMap<String, i64>,
        capabilities: Vec<String>,
    }
    let (_sim, session) = support::demo().await;
    let records: BTreeMap<String, Sm> = session.call("SM.get_all_records", ()).await.unwrap();
    let by_type: BTreeMap<&str, &Sm> = records
        .values()
        .map(|s| (s.driver_type.as_str(), s))
        .collect();
    for with in ["lvmoiscsi", "lvmohba"] {
        assert_eq!(
            by_type[with].features.get("SR_METADATA"),
            Some(&1),
            "{with}"
        );
    }
    for without in ["nfs", "ext", "lvm", "iso"] {
        assert!(
            !by_type[without].features.contains_key("SR_METADATA"),
            "{without}"
        );
    }
    let nfs = by_type["nfs"];
    assert_eq!(nfs.features.get("VDI_RESET_ON_BOOT"), Some(&2));
    let mut names: Vec<&String> = nfs.features.keys().collect();
    let mut capabilities: Vec<&String> = nfs.capabilities.iter().collect();
    names.sort();
    capabilities.sort();
    assert_eq!(names, capabilities);
}
