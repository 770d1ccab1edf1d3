//! A plan computed from the copy read through the DR pool's API (`VDI.open_database`) equals
//! the plan computed from the same metadata VDI read offline; and a network map and a test's
//! isolated network place the recovered VIFs where the plan says.

use xapi_dr::plan::{Mode, NetworkTarget, PlanInputs, PowerChoice, plan};
use xapi_dr::reconcile::{Preferences, Recovered, reconcile};
use xapi_dr::run::{Run, RunOptions};
use xapi_dr::source::{DiscoverOptions, MetadataCopy, discover, introduce};
use xapi_dr::target::read_target_pool;

use crate::failover::{login, mirror_storage, replicating_demo, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_from_the_api_equals_the_plan_from_the_offline_image_and_networks_are_mapped() {
    let (sim, offline, sr_uuid) = replicating_demo().await;
    let dr = login(&sim, "dr").await;
    let device = mirror_storage(&sr_uuid).remove(&sr_uuid).unwrap();
    let introduced = introduce(&dr, "lvmoiscsi", &device.device_config, &[&sr_uuid])
        .await
        .unwrap();
    let found = discover(&dr, &DiscoverOptions::default()).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let through_api = MetadataCopy::from_vdi(&dr, &found[0].vdi).await.unwrap();
    assert_eq!(through_api.generation(), offline.generation());

    let target = read_target_pool(&dr).await.unwrap();
    let plan_from = |copy: &MetadataCopy, request: &xapi_dr::plan::PlanRequest| {
        let copies = vec![copy.clone()];
        let reconciliation = reconcile(
            &copies,
            &target.reconcile_state(),
            &Recovered::default(),
            &Preferences::default(),
        );
        plan(
            PlanInputs {
                copies: &copies,
                reconciliation: &reconciliation,
                target: &target,
                source: None,
            },
            request,
        )
        .unwrap()
    };
    // the production network is mapped by hand to the DR pool's first network by UUID
    let mut failover = request(Mode::TestFailover);
    failover.isolate_test_network = false;
    failover.power = PowerChoice::LeaveHalted;
    let source_network = offline.metadata.networks[0].uuid.clone();
    let mapped_to = target.networks[0].uuid.clone();
    failover
        .network_map
        .insert(source_network.clone(), mapped_to.clone());

    let from_api = plan_from(&through_api, &failover);
    let mut from_image = plan_from(&offline, &failover);
    // the same plan, copy for copy, but for where each copy came from
    for vm in &mut from_image.vms {
        vm.copy.origin = through_api.origin.clone();
    }
    for vapp in &mut from_image.vapps {
        vapp.copy.origin = through_api.origin.clone();
    }
    assert_eq!(from_api, from_image);
    let mapping = from_api
        .networks
        .iter()
        .find(|m| m.source.uuid == source_network)
        .unwrap();
    assert_eq!(
        mapping.target,
        NetworkTarget::Existing {
            uuid: mapped_to.clone(),
            matched_by: "map".into()
        }
    );

    // the run puts every VIF of that source network on the mapped network
    Run::new(dr.clone(), from_api.clone(), RunOptions::default())
        .unwrap()
        .execute()
        .await
        .unwrap();
    let networks = dr.network().get_all_records().await.unwrap();
    let vifs = dr.vif().get_all_records().await.unwrap();
    let vms = dr.vm().get_all_records().await.unwrap();
    let mut on_mapped = 0;
    for planned in &from_api.vms {
        let vm = vms
            .values()
            .find(|vm| *vm.uuid == *planned.uuid && !vm.is_a_snapshot)
            .unwrap();
        for vif_ref in &vm.vifs {
            let vif = &vifs[vif_ref];
            let from_source = planned
                .vif_networks
                .iter()
                .any(|(device, network)| *device == *vif.device && *network == source_network);
            if from_source {
                assert_eq!(
                    *networks[&vif.network].uuid, *mapped_to,
                    "{}",
                    planned.name_label
                );
                on_mapped += 1;
            }
        }
    }
    assert!(on_mapped > 0);
    introduced.destroy(&dr).await.ok();
}
