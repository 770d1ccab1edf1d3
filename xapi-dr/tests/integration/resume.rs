//! A recovery that fails midway (a simulator fault on the second `VM.recover`) leaves an
//! exact account in its journal; running the same plan again with that journal completes it
//! without repeating anything, and a plan made again from the journal sees what is done.

use xapi_core::api::ErrorCode;
use xapi_dr::plan::{Mode, PlanInputs, PowerChoice, Severity};
use xapi_dr::reconcile::{Outcome, Preferences, Recovered, reconcile};
use xapi_dr::run::{Journal, Run, RunError, RunOptions};
use xapi_dr::target::read_target_pool;
use xapi_sim::MirrorMode;

use crate::failover::{login, mirror_storage, replicating_demo, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_that_fails_midway_is_completed_by_running_its_plan_again() {
    let (sim, copy, sr_uuid) = replicating_demo().await;
    sim.set_mirror_mode(MirrorMode::Broken).unwrap();
    let dr = login(&sim, "dr").await;
    let target = read_target_pool(&dr).await.unwrap();
    let copies = vec![copy];
    let reconciliation = reconcile(
        &copies,
        &target.reconcile_state(),
        &Recovered::default(),
        &Preferences::default(),
    );
    let mut request = request(Mode::Failover);
    request.power = PowerChoice::LeaveHalted;
    let plan = xapi_dr::plan::plan(
        PlanInputs {
            copies: &copies,
            reconciliation: &reconciliation,
            target: &target,
            source: None,
        },
        &request,
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let journal_path = dir.path().join("failover.journal");
    let options = || RunOptions {
        apply_fixes: true,
        storage: mirror_storage(&sr_uuid),
        ..RunOptions::journal_at(&journal_path)
    };
    sim.faults()
        .fail_call("VM.recover", 2, ErrorCode::InternalError);
    let mut run = Run::new(dr.clone(), plan.clone(), options()).unwrap();
    let err = run.execute().await.unwrap_err();
    assert!(
        matches!(&err, RunError::Call { method, .. } if method == "VM.recover"),
        "{err}"
    );
    // the journal on disk is the exact account: both vApps and the first VM, nothing in flight
    let journal = Journal::load(&journal_path).unwrap();
    assert_eq!(journal.recovered_vapps.len(), 2);
    let standalone: Vec<&str> = plan
        .vms
        .iter()
        .filter(|vm| vm.vapp.is_none())
        .map(|vm| vm.uuid.as_str())
        .collect();
    assert!(journal.recovered_vms.contains(standalone[0]));
    assert!(!journal.recovered_vms.contains(standalone[1]));
    assert!(
        journal.in_flight.is_none(),
        "xapi answered: nothing in flight"
    );
    assert_eq!(journal.dr_tasks.len(), 1);
    let report = run.report(Some(&err));
    assert!(report.error.as_deref().unwrap().contains("fault injected"));
    // the failed VM is not in the target: a failed recovery changes nothing
    let vms = dr.vm().get_all_records().await.unwrap();
    assert!(!vms.values().any(|vm| *vm.uuid == *standalone[1]));

    // a plan made again from the journal: what was recovered is done, not a version conflict
    let target = read_target_pool(&dr).await.unwrap();
    let again = reconcile(
        &copies,
        &target.reconcile_state(),
        &journal.recovered(),
        &Preferences::default(),
    );
    let done = again
        .vms
        .iter()
        .filter(|d| d.outcome == Outcome::Done)
        .count();
    assert_eq!(done, journal.recovered_vms.len());
    let replanned = xapi_dr::plan::plan(
        PlanInputs {
            copies: &copies,
            reconciliation: &again,
            target: &target,
            source: None,
        },
        &request,
    )
    .unwrap();
    assert!(
        !replanned
            .checks
            .iter()
            .any(|c| c.severity == Severity::Problem
                && c.kind == xapi_dr::plan::CheckKind::ExistingInTarget),
        "{}",
        replanned.to_json()
    );

    // the same plan run again with its journal finishes the job, repeating nothing
    let mut second = Run::new(dr.clone(), plan.clone(), options()).unwrap();
    let report = second.execute().await.unwrap();
    assert_eq!(report.count("VM_appliance.recover"), 0);
    assert_eq!(report.count("VM.recover"), standalone.len() - 1);
    assert_eq!(report.count("DR_task.create"), 0);
    let vms = dr.vm().get_all_records().await.unwrap();
    for planned in &plan.vms {
        let copies_in_target = vms
            .values()
            .filter(|vm| *vm.uuid == *planned.uuid && !vm.is_a_snapshot)
            .count();
        assert_eq!(copies_in_target, 1, "{} recovered once", planned.name_label);
    }
}
