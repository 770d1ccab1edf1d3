//! The demo's two mirrored SRs: one mirror broken early leaves a stale copy of the primary's
//! metadata, the other carries the newest; a failover from the newest copy while the primary is
//! lost, then a failback through the reversed mirror once the primary is back.

use crate::support;
use crate::support::dr::{
    both, create_dr_task, demo, metadata_vdi_on, named, open_metadata, sr_uuids, to,
};

use xapi_sim::MirrorMode;

#[derive(Debug, serde::Deserialize)]
struct Summary {
    uuid: String,
    #[serde(rename = "type")]
    vdi_type: String,
}

#[tokio::test]
async fn a_stale_copy_is_not_latest_and_a_failover_fails_back() {
    let (sim, primary, dr) = demo(&both()).await;
    let [first, second] = both();
    let uuids = sr_uuids(&primary, &both()).await;
    let web_db = support::vm_named(&primary, "web-db").await;
    primary
        .call::<()>("VM.set_name_description", (&web_db, "generation A"))
        .await
        .unwrap();
    // the second SR's mirror breaks: its DR-side copy stays at generation A
    assert_eq!(
        sim.set_sr_mirror_mode(second, MirrorMode::Broken).unwrap(),
        MirrorMode::Broken
    );
    assert_eq!(sim.sr_mirror_mode(first), Some(MirrorMode::Mirrored));
    primary
        .call::<()>("VM.set_name_description", (&web_db, "generation B"))
        .await
        .unwrap();

    // the disaster: mirroring halted, the primary lost
    sim.set_sr_mirror_mode(first, MirrorMode::Broken).unwrap();
    sim.set_reachable("primary", false).unwrap();
    create_dr_task(&dr, &uuids).await.unwrap();
    let (newest, newest_record) = metadata_vdi_on(&dr, &uuids[0]).await;
    let (stale, stale_record) = metadata_vdi_on(&dr, &uuids[1]).await;
    assert!(newest_record.metadata_latest);
    assert!(
        !stale_record.metadata_latest,
        "the stale copy is not the latest"
    );
    let dr_url = sim.pool("dr").unwrap().url.clone();
    let old = open_metadata(&dr, &dr_url, &stale).await;
    let old_db = named(&old, "VM", "web-db").await;
    let seen: String = old
        .call("VM.get_name_description", (&old_db,))
        .await
        .unwrap();
    assert_eq!(seen, "generation A");
    old.call::<()>("session.logout", ()).await.unwrap();

    let foreign = open_metadata(&dr, &dr_url, &newest).await;
    let app = named(&foreign, "VM_appliance", "web-shop").await;
    foreign
        .call::<()>("VM_appliance.recover", (&app, to(&dr), false))
        .await
        .unwrap();
    let local_app = named(&dr, "VM_appliance", "web-shop").await;
    dr.call::<()>("VM_appliance.start", (&local_app, false))
        .await
        .unwrap();
    let recovered = named(&dr, "VM", "web-db").await;
    let seen: String = dr
        .call("VM.get_name_description", (&recovered,))
        .await
        .unwrap();
    assert_eq!(seen, "generation B");
    dr.call::<()>(
        "VM.set_name_description",
        (&recovered, "changed at the DR site"),
    )
    .await
    .unwrap();

    // failback: the DR pool replicates its own database to the mirrored SR, the mirror is
    // reversed, the primary comes back and finds the DR pool's metadata on its SR
    let dr_sr: String = dr.call("SR.get_by_uuid", (&uuids[0],)).await.unwrap();
    dr.call::<()>("SR.enable_database_replication", (&dr_sr,))
        .await
        .unwrap();
    sim.reverse_mirror(first).unwrap();
    assert!(matches!(
        sim.reverse_mirror(first),
        Err(xapi_sim::Error::MirrorNotBroken(_))
    ));
    sim.set_reachable("primary", true).unwrap();
    // its old connection was cut while it was lost: a new login
    let primary = support::login_to(&sim, &sim.pool("primary").unwrap().url).await;
    let primary_app = named(&primary, "VM_appliance", "web-shop").await;
    primary
        .call::<()>("VM_appliance.hard_shutdown", (&primary_app,))
        .await
        .unwrap();
    let primary_sr: String = primary.call("SR.get_by_uuid", (&uuids[0],)).await.unwrap();
    primary.call::<()>("SR.scan", (&primary_sr,)).await.unwrap();
    let dr_pools: Vec<String> = dr.call("pool.get_all", ()).await.unwrap();
    let dr_pool_uuid: String = dr.call("pool.get_uuid", (&dr_pools[0],)).await.unwrap();
    let vdis: std::collections::BTreeMap<String, Summary> =
        primary.call("VDI.get_all_records", ()).await.unwrap();
    let mut dr_metadata = None;
    for (vdi, record) in &vdis {
        if record.vdi_type != "metadata" {
            continue;
        }
        let owner: String = primary
            .call("VDI.read_database_pool_uuid", (vdi,))
            .await
            .unwrap();
        if owner == dr_pool_uuid {
            dr_metadata = Some((vdi.clone(), record.uuid.clone()));
        }
    }
    let (dr_metadata, _) = dr_metadata.expect("the DR pool's metadata VDI on the primary");
    let back = open_metadata(&primary, &sim.pool("primary").unwrap().url, &dr_metadata).await;
    let app = named(&back, "VM_appliance", "web-shop").await;
    back.call::<()>("VM_appliance.recover", (&app, to(&primary), false))
        .await
        .unwrap();
    let failed_back = named(&primary, "VM", "web-db").await;
    let version: i64 = primary
        .call("VM.get_version", (&failed_back,))
        .await
        .unwrap();
    assert_eq!(version, 2, "recovered twice");
    let seen: String = primary
        .call("VM.get_name_description", (&failed_back,))
        .await
        .unwrap();
    assert_eq!(seen, "changed at the DR site");
}
