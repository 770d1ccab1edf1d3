//! A whole failover on the demo, as XenCenter's DR wizard drives it: replication on the
//! primary, `SR.probe` and `DR_task.create` on the DR pool, `VDI.open_database` on the mirrored
//! metadata VDI, `VM_appliance.recover`, start in order, `DR_task.destroy`.

use crate::support;

use std::collections::BTreeMap;

use xapi_core::client::{Client, Protocol, SessionHandle};
use xapi_sim::{DEMO_MIRROR_DEVICE_CONFIG, Scenario, SimConfig, SimHandle, Simulator};

#[derive(Debug, serde::Deserialize)]
struct VdiSummary {
    uuid: String,
    #[serde(rename = "type")]
    vdi_type: String,
    metadata_latest: bool,
}

/// The demo with replication on for the primary's mirrored SR: the simulator, root sessions on
/// the primary and on the DR pool, the SR's reference and UUID on the primary.
async fn replicating_demo() -> (SimHandle, SessionHandle, SessionHandle, String, String) {
    let sim = Simulator::start(SimConfig::with_scenario(Scenario::Demo))
        .await
        .unwrap();
    let primary = support::login_to(&sim, &sim.pool("primary").unwrap().url).await;
    let dr = support::login_to(&sim, &sim.pool("dr").unwrap().url).await;
    let srs: Vec<String> = primary
        .call("SR.get_by_name_label", ("Replicated iSCSI (DR)",))
        .await
        .unwrap();
    let sr_uuid: String = primary.call("SR.get_uuid", (&srs[0],)).await.unwrap();
    primary
        .call::<()>("SR.enable_database_replication", (&srs[0],))
        .await
        .unwrap();
    (sim, primary, dr, srs[0].clone(), sr_uuid)
}

/// `DR_task.create` on the DR pool for the mirror of the SR `sr_uuid`; the task.
async fn create_dr_task(dr: &SessionHandle, sr_uuid: &str) -> String {
    let config: BTreeMap<&str, &str> = DEMO_MIRROR_DEVICE_CONFIG.iter().copied().collect();
    dr.call("DR_task.create", ("lvmoiscsi", &config, vec![sr_uuid]))
        .await
        .unwrap()
}

/// The metadata VDI the DR pool found on the mirror, and its record.
async fn mirrored_metadata_vdi(dr: &SessionHandle) -> (String, VdiSummary) {
    let vdis: BTreeMap<String, VdiSummary> = dr.call("VDI.get_all_records", ()).await.unwrap();
    vdis.into_iter()
        .find(|(_, v)| v.vdi_type == "metadata")
        .expect("the mirror holds the metadata VDI")
}

#[tokio::test]
async fn failover_to_the_dr_pool() {
    let (sim, primary, dr, _, sr_uuid) = replicating_demo().await;
    sim.clock().set_speed(10_000.0);
    let web_db: Vec<String> = primary
        .call("VM.get_by_name_label", ("web-db",))
        .await
        .unwrap();
    primary
        .call::<()>(
            "VM.set_name_description",
            (&web_db[0], "replicated before the disaster"),
        )
        .await
        .unwrap();

    // the recovery site finds the mirrored SR
    let config: BTreeMap<&str, &str> = DEMO_MIRROR_DEVICE_CONFIG.iter().copied().collect();
    let hosts: Vec<String> = dr.call("host.get_all", ()).await.unwrap();
    let metadata = BTreeMap::from([("metadata", "true")]);
    let listing: String = dr
        .call("SR.probe", (&hosts[0], &config, "lvmoiscsi", &metadata))
        .await
        .unwrap();
    assert!(
        listing.contains(&format!("<UUID>{sr_uuid}</UUID>")),
        "{listing}"
    );
    let nothing: String = dr
        .call(
            "SR.probe",
            (
                &hosts[0],
                BTreeMap::from([("target", "198.51.100.1")]),
                "lvmoiscsi",
                &metadata,
            ),
        )
        .await
        .unwrap();
    assert!(!nothing.contains("<UUID>"));

    let task = create_dr_task(&dr, &sr_uuid).await;
    let introduced: Vec<String> = dr
        .call("DR_task.get_introduced_SRs", (&task,))
        .await
        .unwrap();
    assert_eq!(introduced.len(), 1);
    let (metadata_vdi, record) = mirrored_metadata_vdi(&dr).await;
    assert!(record.metadata_latest);
    assert!(sim.disk_image("dr", &record.uuid).unwrap().exists());

    // read the primary's database from the mirror and recover a vApp
    let foreign_ref: String = dr
        .call("VDI.open_database", (&metadata_vdi,))
        .await
        .unwrap();
    let foreign = Client::builder(&sim.pool("dr").unwrap().url)
        .protocol(Protocol::XmlRpc)
        .build()
        .unwrap()
        .attach_session(xapi_core::wire::Ref::new(foreign_ref));
    let to = dr.reference().to_string();
    let pool_uuid: String = dr
        .call("VDI.read_database_pool_uuid", (&metadata_vdi,))
        .await
        .unwrap();
    let primary_pools: Vec<String> = primary.call("pool.get_all", ()).await.unwrap();
    let primary_uuid: String = primary
        .call("pool.get_uuid", (&primary_pools[0],))
        .await
        .unwrap();
    assert_eq!(pool_uuid, primary_uuid);

    let on_nfs: Vec<String> = foreign
        .call("VM.get_by_name_label", ("dns-2",))
        .await
        .unwrap();
    assert_eq!(
        support::failure_code(
            foreign
                .call::<()>("VM.assert_can_be_recovered", (&on_nfs[0], &to))
                .await
        ),
        "VM_REQUIRES_SR"
    );
    let needed: Vec<String> = foreign
        .call("VM.get_SRs_required_for_recovery", (&on_nfs[0], &to))
        .await
        .unwrap();
    assert_eq!(needed.len(), 1, "the NFS SR is not mirrored");

    let apps: Vec<String> = foreign
        .call("VM_appliance.get_by_name_label", ("web-shop",))
        .await
        .unwrap();
    foreign
        .call::<()>("VM_appliance.assert_can_be_recovered", (&apps[0], &to))
        .await
        .unwrap();
    foreign
        .call::<()>("VM_appliance.recover", (&apps[0], &to, false))
        .await
        .unwrap();
    foreign.call::<()>("session.logout", ()).await.unwrap();

    let recovered_apps: Vec<String> = dr
        .call("VM_appliance.get_by_name_label", ("web-shop",))
        .await
        .unwrap();
    let members: Vec<String> = dr
        .call("VM_appliance.get_VMs", (&recovered_apps[0],))
        .await
        .unwrap();
    assert_eq!(members.len(), 4);
    let recovered_db: Vec<String> = dr.call("VM.get_by_name_label", ("web-db",)).await.unwrap();
    let description: String = dr
        .call("VM.get_name_description", (&recovered_db[0],))
        .await
        .unwrap();
    assert_eq!(description, "replicated before the disaster");
    let version: i64 = dr
        .call("VM.get_version", (&recovered_db[0],))
        .await
        .unwrap();
    assert_eq!(version, 1);

    dr.call::<()>("VM_appliance.start", (&recovered_apps[0], false))
        .await
        .unwrap();
    for vm in &members {
        let state: String = dr.call("VM.get_power_state", (vm,)).await.unwrap();
        assert_eq!(state, "Running");
    }

    // the SR the recovered VMs use survives the task's destruction
    dr.call::<()>("DR_task.destroy", (&task,)).await.unwrap();
    let kept: Vec<String> = dr
        .call("SR.get_by_uuid", (&sr_uuid,))
        .await
        .map(|sr: String| vec![sr])
        .unwrap();
    assert_eq!(kept.len(), 1);
}

/// xapi caches the metadata VDIs of a plugged SR: their pool UUID is known before any
/// `VDI.open_database`, and unplugging the SR forgets them.
#[tokio::test]
async fn plugging_the_mirror_caches_its_metadata_vdis_and_unplugging_forgets_them() {
    let (_sim, primary, dr, _, sr_uuid) = replicating_demo().await;
    let pools: Vec<String> = primary.call("pool.get_all", ()).await.unwrap();
    let primary_uuid: String = primary.call("pool.get_uuid", (&pools[0],)).await.unwrap();

    let task = create_dr_task(&dr, &sr_uuid).await;
    let (metadata_vdi, record) = mirrored_metadata_vdi(&dr).await;
    assert!(record.metadata_latest);
    let pool_uuid: String = dr
        .call("VDI.read_database_pool_uuid", (&metadata_vdi,))
        .await
        .unwrap();
    assert_eq!(pool_uuid, primary_uuid, "known without VDI.open_database");

    let sr: String = dr.call("SR.get_by_uuid", (&sr_uuid,)).await.unwrap();
    let pbds: Vec<String> = dr.call("SR.get_PBDs", (&sr,)).await.unwrap();
    for pbd in &pbds {
        dr.call::<()>("PBD.unplug", (pbd,)).await.unwrap();
    }
    let latest: bool = dr
        .call("VDI.get_metadata_latest", (&metadata_vdi,))
        .await
        .unwrap();
    assert!(!latest);
    let pool_uuid: String = dr
        .call("VDI.read_database_pool_uuid", (&metadata_vdi,))
        .await
        .unwrap();
    assert_eq!(pool_uuid, "");
    dr.call::<()>("DR_task.destroy", (&task,)).await.unwrap();
}
