//! Failback: after a failover, the DR pool replicates its own database to the mirrored SR,
//! the mirror is reversed, and the same engine brings the VMs back into the primary, whose
//! stale copies (older `VM.version`) are replaced.

use xapi_core::api::VdiType;
use xapi_dr::configure::set_replication;
use xapi_dr::plan::{Mode, PlanInputs, PowerChoice, plan};
use xapi_dr::reconcile::{Outcome, Preferences, ReasonCode, Recovered, reconcile};
use xapi_dr::run::{Run, RunOptions};
use xapi_dr::source::MetadataCopy;
use xapi_dr::target::read_target_pool;
use xapi_sim::MirrorMode;

use crate::failover::{REPLICATED_SR, login, mirror_storage, replicating_demo, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failback_after_a_failover_replaces_the_primarys_stale_copies() {
    let (sim, primary_copy, sr_uuid) = replicating_demo().await;
    sim.set_reachable("primary", false).unwrap();
    sim.set_mirror_mode(MirrorMode::Broken).unwrap();
    let dr = login(&sim, "dr").await;

    // failover, VMs left halted
    let target = read_target_pool(&dr).await.unwrap();
    let copies = vec![primary_copy.clone()];
    let reconciliation = reconcile(
        &copies,
        &target.reconcile_state(),
        &Recovered::default(),
        &Preferences::default(),
    );
    let mut failover = request(Mode::Failover);
    failover.power = PowerChoice::LeaveHalted;
    let failover_plan = plan(
        PlanInputs {
            copies: &copies,
            reconciliation: &reconciliation,
            target: &target,
            source: None,
        },
        &failover,
    )
    .unwrap();
    let options = RunOptions {
        apply_fixes: true,
        storage: mirror_storage(&sr_uuid),
        ..RunOptions::default()
    };
    Run::new(dr.clone(), failover_plan.clone(), options)
        .unwrap()
        .execute()
        .await
        .unwrap();

    // the DR pool replicates its database to the SR it took over; the mirror is reversed and
    // the primary site comes back, its VMs off
    set_replication(&dr, &[&sr_uuid]).await.unwrap();
    sim.reverse_mirror(REPLICATED_SR).unwrap();
    sim.set_reachable("primary", true).unwrap();
    let primary = login(&sim, "primary").await;
    for (vm, record) in primary.vm().get_all_records().await.unwrap() {
        let planned = failover_plan.vms.iter().any(|p| *p.uuid == *record.uuid);
        if planned
            && !record.is_a_snapshot
            && record.power_state != xapi_core::api::VmPowerState::Halted
        {
            primary.vm().hard_shutdown(&vm).await.unwrap();
        }
    }
    let sr = primary.sr().get_by_uuid(&sr_uuid).await.unwrap();
    primary.sr().scan(&sr).await.unwrap();
    let dr_pool = read_target_pool(&dr).await.unwrap().uuid;
    let vdis = primary.vdi().get_all_records().await.unwrap();
    let mut dr_copy = None;
    for (vdi, record) in &vdis {
        if record.r#type == VdiType::Metadata && record.sr == sr {
            let pool = primary.vdi().read_database_pool_uuid(vdi).await.unwrap();
            if *pool == *dr_pool {
                let image = sim.disk_image("primary", &record.uuid).unwrap();
                dr_copy = Some(MetadataCopy::from_file(&image).unwrap());
            }
        }
    }
    let dr_copy = dr_copy.expect("the primary sees the DR pool's metadata VDI");

    // both pools' metadata hold the VMs: the DR pool's (version 1) wins over the primary's (0)
    let target = read_target_pool(&primary).await.unwrap();
    let copies = vec![primary_copy, dr_copy];
    let reconciliation = reconcile(
        &copies,
        &target.reconcile_state(),
        &Recovered::default(),
        &Preferences::default(),
    );
    let mail = reconciliation
        .vms
        .iter()
        .find(|d| d.name_label == "mail")
        .unwrap();
    assert_eq!(mail.version, Some(1), "{mail:?}");
    assert_eq!(mail.chosen.as_ref().unwrap().pool_uuid, dr_pool);
    assert_eq!(mail.outcome, Outcome::Replace, "{:?}", mail.reasons);
    assert!(
        mail.reasons
            .iter()
            .any(|r| r.code == ReasonCode::OlderHaltedInTarget),
        "{:?}",
        mail.reasons
    );

    let mut failback = request(Mode::Failback);
    failback.power = PowerChoice::LeaveHalted;
    let failback_plan = plan(
        PlanInputs {
            copies: &copies,
            reconciliation: &reconciliation,
            target: &target,
            source: None,
        },
        &failback,
    )
    .unwrap();
    assert!(!failback_plan.is_blocked(), "{}", failback_plan.to_json());
    let report = Run::new(
        primary.clone(),
        failback_plan.clone(),
        RunOptions::default(),
    )
    .unwrap()
    .execute()
    .await
    .unwrap();
    assert_eq!(report.count("VM_appliance.recover"), 2);
    let vms = primary.vm().get_all_records().await.unwrap();
    for planned in &failback_plan.vms {
        let found: Vec<_> = vms
            .values()
            .filter(|vm| *vm.uuid == *planned.uuid && !vm.is_a_snapshot)
            .collect();
        assert_eq!(found.len(), 1, "{}", planned.name_label);
        assert_eq!(
            found[0].version, 2,
            "{} came back one version up",
            planned.name_label
        );
    }
}
