//! A test failover into the DR pool: recovered paused on an isolated network, then cleaned
//! up so that the DR pool's objects are exactly what they were before.

use std::collections::BTreeMap;

use xapi_core::api::VmPowerState;
use xapi_core::api::meta::CLASSES;
use xapi_core::client::SessionHandle;
use xapi_core::wire::Value;
use xapi_dr::plan::{Mode, NetworkTarget, reconcile_and_plan};
use xapi_dr::reconcile::{Preferences, Recovered};
use xapi_dr::run::{Run, RunOptions};
use xapi_dr::target::read_target_pool;

use crate::failover::{login, mirror_storage, replicating_demo, request};

/// Classes whose records change by themselves and are left out of the comparison.
fn is_transient(class: &str) -> bool {
    matches!(class, "task" | "session" | "message" | "event") || class.ends_with("_metrics")
}

/// Every record of every class the pool lists, by class.
async fn every_record(session: &SessionHandle) -> BTreeMap<&'static str, Value> {
    let mut all = BTreeMap::new();
    for class in CLASSES {
        if is_transient(class.name) || class.message("get_all_records").is_none() {
            continue;
        }
        let method = format!("{}.get_all_records", class.name);
        if let Ok(records) = session.call::<Value>(&method, ()).await {
            all.insert(class.name, records);
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_failover_is_cleaned_up_to_the_exact_records_it_started_from() {
    let (sim, copy, sr_uuid) = replicating_demo().await;
    let dr = login(&sim, "dr").await;
    let before = every_record(&dr).await;
    assert!(before.len() > 20, "the DR pool lists its classes");

    let target = read_target_pool(&dr).await.unwrap();
    let copies = vec![copy];
    let (_, plan) = reconcile_and_plan(
        &copies,
        &target,
        None,
        &Recovered::default(),
        &Preferences::default(),
        &request(Mode::TestFailover),
    )
    .unwrap();
    assert!(
        plan.networks
            .iter()
            .all(|m| m.target == NetworkTarget::Isolated),
        "a test puts every VIF on the isolated network"
    );
    let dir = tempfile::tempdir().unwrap();
    let options = RunOptions {
        apply_fixes: true,
        storage: mirror_storage(&sr_uuid),
        ..RunOptions::journal_at(dir.path().join("test.journal"))
    };
    let mut run = Run::new(dr.clone(), plan.clone(), options).unwrap();
    let report = run
        .execute()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", run.report(Some(&e)).to_json()));
    let isolated = report
        .journal
        .isolated_network
        .clone()
        .expect("an isolated network");

    // recovered, started paused, every VIF on the isolated network
    let vms = dr.vm().get_all_records().await.unwrap();
    let networks = dr.network().get_all_records().await.unwrap();
    let vifs = dr.vif().get_all_records().await.unwrap();
    let (isolated_ref, _) = networks
        .iter()
        .find(|(_, n)| *n.uuid == *isolated)
        .expect("the isolated network exists");
    for planned in &plan.vms {
        let vm = vms
            .values()
            .find(|vm| *vm.uuid == *planned.uuid && !vm.is_a_snapshot)
            .unwrap_or_else(|| panic!("{} recovered", planned.name_label));
        for vif in &vm.vifs {
            assert_eq!(&vifs[vif].network, isolated_ref, "{}", planned.name_label);
        }
    }
    let paused = vms
        .values()
        .filter(|vm| vm.power_state == VmPowerState::Paused)
        .count();
    assert_eq!(paused, report.journal.started.len().max(paused));
    assert!(paused > 0, "VMs recorded as running start paused");

    let cleaned = run.cleanup().await.unwrap();
    assert!(cleaned.journal.cleaned_up);
    let after = every_record(&dr).await;
    for (class, records) in &before {
        assert_eq!(
            Some(records),
            after.get(class),
            "class {class} is as it was before the test"
        );
    }
    assert_eq!(before.len(), after.len());
}
