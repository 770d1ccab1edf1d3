//! The recovery site's storage calls: `SR.probe` honours its host and type, `DR_task.create`
//! rolls back what it introduced when it fails, `DR_task.destroy` unplugs through `PBD.unplug`.

use std::collections::BTreeMap;

use crate::support;
use crate::support::dr::{
    both, create_dr_task, demo, metadata_vdi_on, mirror_config, records, sr_uuids,
};

use xapi_core::api::ErrorCode;

#[tokio::test]
async fn probe_honours_its_host_and_type() {
    let (_sim, _primary, dr) = demo(&[both()[0]]).await;
    let hosts: Vec<String> = dr.call("host.get_all", ()).await.unwrap();
    let metadata = BTreeMap::from([("metadata", "true")]);
    let probe =
        |host: String, config: BTreeMap<&'static str, &'static str>, sr_type: &'static str| {
            let dr = &dr;
            let metadata = &metadata;
            async move {
                dr.call::<String>("SR.probe", (host, config, sr_type, metadata))
                    .await
            }
        };
    let listing = probe(hosts[0].clone(), mirror_config(), "lvmoiscsi")
        .await
        .unwrap();
    assert_eq!(listing.matches("<SR>").count(), 1, "{listing}");

    let no_host = probe(
        "OpaqueRef:no-such-host".into(),
        mirror_config(),
        "lvmoiscsi",
    )
    .await;
    assert_eq!(support::failure_code(no_host), "HANDLE_INVALID");
    let unknown = probe(hosts[0].clone(), mirror_config(), "btrfs").await;
    match unknown {
        Err(xapi_core::Error::Api(f)) => {
            assert_eq!(f.code, ErrorCode::SrUnknownDriver);
            assert_eq!(f.params, ["btrfs"]);
        }
        other => panic!("no such driver: {other:?}"),
    }
    // the NFS driver wants a server, and the FC driver sees no iSCSI LUN
    let nfs = probe(hosts[0].clone(), mirror_config(), "nfs").await;
    assert_eq!(support::failure_code(nfs), "SR_BACKEND_FAILURE_102");
    let fc = probe(hosts[0].clone(), mirror_config(), "lvmohba")
        .await
        .unwrap();
    assert!(!fc.contains("<SR>"), "{fc}");
    // an iSCSI target without its IQN: the IQNs it offers, in the error
    let target_only = BTreeMap::from([("target", mirror_config()["target"])]);
    match probe(hosts[0].clone(), target_only, "lvmoiscsi").await {
        Err(xapi_core::Error::Api(f)) => {
            assert_eq!(f.code.as_str(), "SR_BACKEND_FAILURE_96");
            assert!(
                f.params[2].contains(mirror_config()["targetIQN"]),
                "{:?}",
                f.params
            );
        }
        other => panic!("the IQN is missing: {other:?}"),
    }
    // DR needs a driver with SR_METADATA
    let config = mirror_config();
    let refused = dr
        .call::<String>("DR_task.create", ("nfs", &config, Vec::<String>::new()))
        .await;
    assert_eq!(support::failure_code(refused), "OPERATION_NOT_ALLOWED");
}

#[tokio::test]
async fn a_dr_task_that_fails_midway_rolls_back_and_destroy_unplugs() {
    let (sim, primary, dr) = demo(&both()).await;
    let uuids = sr_uuids(&primary, &both()).await;
    let before = records(&dr).await;
    // the second SR's plug fails: the first SR, already attached, goes again
    sim.faults()
        .fail_call("PBD.plug", 2, ErrorCode::SrBackendFailure);
    let failed = create_dr_task(&dr, &uuids).await;
    assert_eq!(support::failure_code(failed), "SR_BACKEND_FAILURE");
    assert_eq!(records(&dr).await, before, "nothing introduced is left");

    let task = create_dr_task(&dr, &uuids).await.unwrap();
    let introduced: Vec<String> = dr
        .call("DR_task.get_introduced_SRs", (&task,))
        .await
        .unwrap();
    assert_eq!(introduced.len(), 2);
    let mut metadata = Vec::new();
    for uuid in &uuids {
        let (vdi, record) = metadata_vdi_on(&dr, uuid).await;
        assert!(
            record.metadata_latest,
            "both copies are of the same generation"
        );
        metadata.push(vdi);
    }
    let pools: Vec<String> = primary.call("pool.get_all", ()).await.unwrap();
    let primary_uuid: String = primary.call("pool.get_uuid", (&pools[0],)).await.unwrap();
    let cached: String = dr
        .call("VDI.read_database_pool_uuid", (&metadata[0],))
        .await
        .unwrap();
    assert_eq!(cached, primary_uuid);

    // destroy unplugs as PBD.unplug does: the metadata VDIs leave the cache
    dr.call::<()>("DR_task.destroy", (&task,)).await.unwrap();
    for vdi in &metadata {
        let cached: String = dr
            .call("VDI.read_database_pool_uuid", (vdi,))
            .await
            .unwrap();
        assert_eq!(cached, "");
    }
    assert_eq!(records(&dr).await, before);
}
