//! The pre-checks that read the target pool fire and pass against the simulator: the DR
//! licence, the caller's role, and HA for a test, whose fix (HA off) is undone by the test's
//! clean-up.

use xapi_core::client::{Client, Password};
use xapi_core::wire::{Ref, SmallMap};
use xapi_dr::plan::{CheckKind, Fix, Mode, PlanInputs, PowerChoice, Severity, TargetPool, plan};
use xapi_dr::reconcile::{Preferences, Recovered, reconcile};
use xapi_dr::run::{Run, RunOptions};
use xapi_dr::source::MetadataCopy;
use xapi_dr::target::read_target_pool;
use xapi_sim::{DEFAULT_PASSWORD, READ_ONLY_USER};

use crate::failover::{login, mirror_storage, replicating_demo, request};

fn severity_of(
    copies: &[MetadataCopy],
    target: &TargetPool,
    mode: Mode,
    kind: CheckKind,
) -> (Severity, xapi_dr::plan::Plan) {
    let reconciliation = reconcile(
        copies,
        &target.reconcile_state(),
        &Recovered::default(),
        &Preferences::default(),
    );
    let mut request = request(mode);
    request.power = PowerChoice::LeaveHalted;
    let plan = plan(
        PlanInputs {
            copies,
            reconciliation: &reconciliation,
            target,
            source: None,
        },
        &request,
    )
    .unwrap();
    let check = plan.checks.iter().find(|c| c.kind == kind).unwrap();
    (check.severity, plan)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn licence_role_and_ha_checks_read_the_pool_and_the_ha_fix_is_unwound() {
    let (sim, copy, sr_uuid) = replicating_demo().await;
    let copies = vec![copy];
    let dr = login(&sim, "dr").await;

    // licence
    sim.set_dr_restricted("dr", true).unwrap();
    let target = read_target_pool(&dr).await.unwrap();
    assert!(target.dr_restricted);
    let (severity, _) = severity_of(&copies, &target, Mode::Failover, CheckKind::DrLicence);
    assert_eq!(severity, Severity::Problem);
    sim.set_dr_restricted("dr", false).unwrap();
    let target = read_target_pool(&dr).await.unwrap();
    let (severity, _) = severity_of(&copies, &target, Mode::Failover, CheckKind::DrLicence);
    assert_eq!(severity, Severity::Passed);

    // role: root may; the read-only user may not
    assert_eq!(target.caller_roles, None, "a local superuser");
    let (severity, _) = severity_of(&copies, &target, Mode::Failover, CheckKind::CallerRole);
    assert_eq!(severity, Severity::Passed);
    let url = sim.pool("dr").unwrap().url.clone();
    let readonly = Client::builder(&url)
        .build()
        .unwrap()
        .login_with_password(READ_ONLY_USER, Password::new(DEFAULT_PASSWORD), "1.0", "t")
        .await
        .unwrap();
    let seen_by_readonly = read_target_pool(&readonly).await.unwrap();
    assert_eq!(
        seen_by_readonly.caller_roles,
        Some(vec!["read-only".to_owned()])
    );
    let (severity, _) = severity_of(
        &copies,
        &seen_by_readonly,
        Mode::Failover,
        CheckKind::CallerRole,
    );
    assert_eq!(severity, Severity::Problem);

    // HA on the DR pool, with the mirrored SR as heartbeat: a test must turn it off first
    let device = mirror_storage(&sr_uuid).remove(&sr_uuid).unwrap();
    let config: SmallMap<_, _> = device
        .device_config
        .iter()
        .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
        .collect();
    dr.dr_task()
        .create("lvmoiscsi", &config, &[sr_uuid.as_str().into()])
        .await
        .unwrap();
    let sr: Ref<_> = dr.sr().get_by_uuid(&sr_uuid).await.unwrap();
    dr.pool().enable_ha(&[sr], &SmallMap::new()).await.unwrap();
    let target = read_target_pool(&dr).await.unwrap();
    assert!(target.ha_enabled);
    assert_eq!(target.ha_heartbeat_srs, std::slice::from_ref(&sr_uuid));
    let (severity, test_plan) = severity_of(
        &copies,
        &target,
        Mode::TestFailover,
        CheckKind::HaDisabledForTest,
    );
    assert_eq!(severity, Severity::Problem);
    let (_, failover_plan) = severity_of(&copies, &target, Mode::Failover, CheckKind::DrLicence);
    assert!(
        !failover_plan
            .checks
            .iter()
            .any(|c| c.kind == CheckKind::HaDisabledForTest),
        "only a test needs HA off"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::new(
        dr.clone(),
        test_plan,
        RunOptions {
            apply_fixes: true,
            ..RunOptions::journal_at(dir.path().join("test.journal"))
        },
    )
    .unwrap();
    let report = run.execute().await.unwrap();
    assert!(matches!(report.journal.fixes[0].fix, Fix::DisableHa));
    assert!(
        !read_target_pool(&dr).await.unwrap().ha_enabled,
        "off for the test"
    );
    run.cleanup().await.unwrap();
    let after = read_target_pool(&dr).await.unwrap();
    assert!(after.ha_enabled, "the clean-up turns HA back on");
    assert_eq!(after.ha_heartbeat_srs, [sr_uuid]);
    assert_eq!(
        after.ha_host_failures_to_tolerate,
        target.ha_host_failures_to_tolerate
    );
}
