//! Newest wins, against the simulator's pools: two copies of one pool at different database
//! generations (a mirror broken before the last changes), a newer VM already in the target and
//! a running one, each decided with its reason.

use xapi_core::api::VdiType;
use xapi_dr::configure::set_replication;
use xapi_dr::plan::{CheckKind, Fix, Mode, PlanInputs, PowerChoice, Severity, plan};
use xapi_dr::reconcile::{Outcome, Preferences, ReasonCode, Recovered, reconcile};
use xapi_dr::run::{Run, RunOptions};
use xapi_dr::source::MetadataCopy;
use xapi_dr::target::read_target_pool;
use xapi_sim::{DEMO_REPLICATED_SRS, MirrorMode};

use crate::failover::{login, mirror_storage, replicating_demo, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_at_the_higher_generation_wins_over_a_stale_mirror() {
    let (sim, _, _) = replicating_demo().await;
    let primary = login(&sim, "primary").await;
    let srs = primary.sr().get_all_records().await.unwrap();
    let uuids: Vec<String> = srs
        .values()
        .filter(|sr| DEMO_REPLICATED_SRS.contains(&&*sr.name_label))
        .map(|sr| (*sr.uuid).to_owned())
        .collect();
    let wanted: Vec<&str> = uuids.iter().map(String::as_str).collect();
    set_replication(&primary, &wanted).await.unwrap();
    // the DR pool attaches both mirrored LUNs
    let dr = login(&sim, "dr").await;
    let device = mirror_storage(&uuids[0]).remove(&uuids[0]).unwrap();
    let config = device
        .device_config
        .iter()
        .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
        .collect();
    let whitelist: Vec<_> = uuids.iter().map(|u| u.as_str().into()).collect();
    dr.dr_task()
        .create("lvmoiscsi", &config, &whitelist)
        .await
        .unwrap();

    // the second SR's mirror breaks; then the primary changes a VM
    sim.set_sr_mirror_mode(DEMO_REPLICATED_SRS[1], MirrorMode::Broken)
        .unwrap();
    let vms = primary.vm().get_all_records().await.unwrap();
    let (mail, _) = vms
        .iter()
        .find(|(_, vm)| &*vm.name_label == "mail")
        .unwrap();
    primary
        .vm()
        .set_name_label(mail, "mail (after the break)")
        .await
        .unwrap();

    // the DR site reads both copies from its side of the mirrors
    let vdis = primary.vdi().get_all_records().await.unwrap();
    let mut copies = Vec::new();
    for vdi in vdis.values().filter(|v| v.r#type == VdiType::Metadata) {
        let image = sim
            .disk_image("dr", &vdi.uuid)
            .expect("an image on the DR side");
        copies.push(MetadataCopy::from_file(&image).unwrap());
    }
    assert_eq!(copies.len(), 2);
    assert_ne!(copies[0].generation(), copies[1].generation());
    let newest = copies.iter().map(MetadataCopy::generation).max().unwrap();

    let target = read_target_pool(&dr).await.unwrap();
    let reconciliation = reconcile(
        &copies,
        &target.reconcile_state(),
        &Recovered::default(),
        &Preferences::default(),
    );
    let pool = &reconciliation.pools[0];
    let chosen = pool.chosen.as_ref().expect("no tie");
    assert_eq!(chosen.generation, newest);
    assert_eq!(pool.copies.len(), 2);
    assert!(
        pool.copies
            .iter()
            .any(|(_, reason)| reason.message.contains("generation")),
        "{pool:?}"
    );
    let mail = reconciliation
        .vms
        .iter()
        .find(|d| d.name_label.starts_with("mail"))
        .unwrap();
    assert_eq!(
        mail.name_label, "mail (after the break)",
        "the newest copy's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_vm_in_the_target_and_a_running_one_block() {
    let (sim, copy, sr_uuid) = replicating_demo().await;
    sim.set_mirror_mode(MirrorMode::Broken).unwrap();
    let dr = login(&sim, "dr").await;
    let copies = vec![copy];
    let plan_now = |target: &xapi_dr::plan::TargetPool, power| {
        let reconciliation = reconcile(
            &copies,
            &target.reconcile_state(),
            &Recovered::default(),
            &Preferences::default(),
        );
        let mut request = request(Mode::Failover);
        request.power = power;
        let plan = plan(
            PlanInputs {
                copies: &copies,
                reconciliation: &reconciliation,
                target,
                source: None,
            },
            &request,
        )
        .unwrap();
        (reconciliation, plan)
    };
    let target = read_target_pool(&dr).await.unwrap();
    let (_, first) = plan_now(&target, PowerChoice::LeaveHalted);
    let options = RunOptions {
        apply_fixes: true,
        storage: mirror_storage(&sr_uuid),
        ..RunOptions::default()
    };
    Run::new(dr.clone(), first, options)
        .unwrap()
        .execute()
        .await
        .unwrap();
    // start one recovered VM
    let vms = dr.vm().get_all_records().await.unwrap();
    let (ldap, _) = vms
        .iter()
        .find(|(_, vm)| &*vm.name_label == "ldap" && !vm.is_a_snapshot)
        .unwrap();
    dr.vm().start(ldap, false, false).await.unwrap();

    // the same copy again, without the journal: the recovered copies (version 1) are newer
    // than the metadata's (0); the running one blocks for that reason first
    let target = read_target_pool(&dr).await.unwrap();
    let (reconciliation, again) = plan_now(&target, PowerChoice::LeaveHalted);
    let decision = |name: &str| {
        reconciliation
            .vms
            .iter()
            .find(|d| d.name_label == name)
            .unwrap()
    };
    assert_eq!(decision("mail").outcome, Outcome::Blocked);
    assert_eq!(
        decision("mail").reasons.last().unwrap().code,
        ReasonCode::NewerInTarget
    );
    assert_eq!(
        decision("ldap").reasons.last().unwrap().code,
        ReasonCode::NotHaltedInTarget
    );
    let existing: Vec<_> = again
        .checks
        .iter()
        .filter(|c| c.kind == CheckKind::ExistingInTarget && c.severity == Severity::Problem)
        .collect();
    assert!(
        existing
            .iter()
            .any(|c| matches!(&c.fix, Some(Fix::DestroyInTarget { .. })))
    );
    assert!(
        existing
            .iter()
            .any(|c| matches!(&c.fix, Some(Fix::HardShutDownInTarget { .. })))
    );
    assert!(again.is_blocked());
    assert!(
        again.vms.is_empty(),
        "nothing is recovered over newer or running copies"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tie_across_pools_with_different_content_is_a_conflict_until_a_choice_is_made() {
    let (sim, copy, _) = replicating_demo().await;
    // a second pool's metadata holding the same VM at the same version, configured otherwise
    // (as after a recovery with force=true that skipped the version rule)
    let mut other = copy.clone();
    other.metadata.pool.uuid = "11111111-2222-3333-4444-555555555555".into();
    other.origin = xapi_dr::source::Origin::File {
        path: "other-pool.img".into(),
    };
    for vm in &mut other.metadata.vms {
        if vm.name_label == "mail" {
            vm.memory_static_max *= 2;
        }
    }
    let copies = vec![copy, other];
    let dr = login(&sim, "dr").await;
    let target = read_target_pool(&dr).await.unwrap();
    let state = target.reconcile_state();
    let reconciliation = reconcile(
        &copies,
        &state,
        &Recovered::default(),
        &Preferences::default(),
    );
    let mail = reconciliation
        .vms
        .iter()
        .find(|d| d.name_label == "mail")
        .unwrap();
    assert_eq!(mail.outcome, Outcome::Conflict, "{:?}", mail.reasons);
    assert!(mail.chosen.is_none(), "never decided silently");
    assert_eq!(mail.candidates.len(), 2);
    // identical content at the same version is one candidate, not a conflict
    let dns = reconciliation
        .vms
        .iter()
        .find(|d| d.name_label == "dns-1")
        .unwrap();
    assert_ne!(dns.outcome, Outcome::Conflict);

    let plan = plan(
        PlanInputs {
            copies: &copies,
            reconciliation: &reconciliation,
            target: &target,
            source: None,
        },
        &request(Mode::Failover),
    )
    .unwrap();
    assert!(
        plan.problems()
            .any(|c| c.kind == CheckKind::NoCrossPoolConflict)
    );

    // an explicit choice resolves it
    let preferences = Preferences {
        prefer_pool: Some(copies[0].pool_uuid().to_owned()),
        ..Preferences::default()
    };
    let chosen = reconcile(&copies, &state, &Recovered::default(), &preferences);
    let mail = chosen.vms.iter().find(|d| d.name_label == "mail").unwrap();
    assert_eq!(mail.outcome, Outcome::Recover);
    assert_eq!(
        mail.chosen.as_ref().unwrap().pool_uuid,
        copies[0].pool_uuid()
    );
    let json = serde_json::to_string(&chosen).unwrap();
    assert!(
        json.contains("\"code\""),
        "reasons serialise with their codes"
    );
}
