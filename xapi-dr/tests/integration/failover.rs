//! Running plans against the simulator's demo pools over real sockets: a failover of the
//! replicated vApps and VMs into the DR pool, a test failover and its clean-up, and a run that
//! fails midway and is completed from its journal.

use std::collections::BTreeMap;

use xapi_core::api::{VdiType, VmPowerState};
use xapi_core::client::{Client, Password, SessionHandle};
use xapi_dr::configure::set_replication;
use xapi_dr::plan::{Mode, PlanRequest, Selection, reconcile_and_plan};
use xapi_dr::reconcile::{Preferences, Recovered};
use xapi_dr::run::{Run, RunOptions, StorageDevice};
use xapi_dr::source::MetadataCopy;
use xapi_dr::target::read_target_pool;
use xapi_sim::{
    DEFAULT_PASSWORD, DEMO_MIRROR_DEVICE_CONFIG, MirrorMode, Scenario, SimConfig, SimHandle,
    Simulator,
};

/// The demo's vApps and standalone VMs whose disks are on the replicated SR.
pub(crate) const REPLICATED: &[&str] = &["web-shop", "erp", "mail", "dns-1", "legacy-crm", "ldap"];
/// The SR the primary replicates its database to, mirrored to the DR pool.
pub(crate) const REPLICATED_SR: &str = "Replicated iSCSI (DR)";

pub(crate) async fn login(sim: &SimHandle, pool: &str) -> SessionHandle {
    let url = sim.pool(pool).expect("the demo has this pool").url.clone();
    Client::builder(&url)
        .build()
        .expect("a client")
        .login_with_password(
            "root",
            Password::new(DEFAULT_PASSWORD),
            "1.0",
            "xapi-dr tests",
        )
        .await
        .expect("root logs in")
}

/// The demo with the primary replicating its database to the mirrored SR; the copy as the DR
/// site reads it offline (the image file of the metadata VDI), and the SR's UUID.
pub(crate) async fn replicating_demo() -> (SimHandle, MetadataCopy, String) {
    // start delays are slept on the simulated clock, a thousand times faster than real time
    let sim = Simulator::start(SimConfig {
        clock_speed: 1000.0,
        ..SimConfig::with_scenario(Scenario::Demo)
    })
    .await
    .expect("the demo starts");
    let primary = login(&sim, "primary").await;
    let srs = primary.sr().get_all_records().await.unwrap();
    let (sr_ref, sr) = srs
        .iter()
        .find(|(_, sr)| &*sr.name_label == REPLICATED_SR)
        .expect("the demo has the replicated SR");
    let sr_uuid = (*sr.uuid).to_owned();
    set_replication(&primary, &[&sr_uuid]).await.unwrap();
    let vdis = primary.vdi().get_all_records().await.unwrap();
    let metadata = vdis
        .values()
        .find(|v| v.sr == *sr_ref && v.r#type == VdiType::Metadata)
        .expect("replication made a metadata VDI");
    let image = sim
        .disk_image("primary", &metadata.uuid)
        .expect("the metadata VDI has an image");
    let copy = MetadataCopy::from_file(&image).expect("the metadata VDI reads offline");
    (sim, copy, sr_uuid)
}

pub(crate) fn mirror_storage(sr_uuid: &str) -> BTreeMap<String, StorageDevice> {
    BTreeMap::from([(
        sr_uuid.to_owned(),
        StorageDevice {
            sr_type: "lvmoiscsi".into(),
            device_config: DEMO_MIRROR_DEVICE_CONFIG
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        },
    )])
}

pub(crate) fn request(mode: Mode) -> PlanRequest {
    let mut request = PlanRequest::new(mode);
    request.selection = Selection::Named(REPLICATED.iter().map(|s| (*s).to_owned()).collect());
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_recovers_the_replicated_vapps_and_vms_and_starts_them_in_order() {
    let (sim, copy, sr_uuid) = replicating_demo().await;
    // the primary site is lost and the mirror broken (the DR side's LUNs writable)
    sim.set_reachable("primary", false).unwrap();
    sim.set_mirror_mode(MirrorMode::Broken).unwrap();
    let dr = login(&sim, "dr").await;

    let target = read_target_pool(&dr).await.unwrap();
    let copies = vec![copy];
    let (_, plan) = reconcile_and_plan(
        &copies,
        &target,
        None,
        &Recovered::default(),
        &Preferences::default(),
        &request(Mode::Failover),
    )
    .unwrap();
    assert_eq!(
        plan.srs_to_introduce,
        std::slice::from_ref(&sr_uuid),
        "{}",
        plan.to_json()
    );
    assert_eq!(plan.vapps.len(), 2);
    assert_eq!(plan.vms.iter().filter(|vm| vm.vapp.is_none()).count(), 4);

    // without fixes the missing SR blocks the run before any change
    let mut blocked = Run::new(dr.clone(), plan.clone(), RunOptions::default()).unwrap();
    let err = blocked.execute().await.unwrap_err();
    assert!(err.to_string().contains("not attached"), "{err}");
    assert!(blocked.report(Some(&err)).calls.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let options = RunOptions {
        apply_fixes: true,
        storage: mirror_storage(&sr_uuid),
        ..RunOptions::journal_at(dir.path().join("failover.journal"))
    };
    let mut run = Run::new(dr.clone(), plan.clone(), options).unwrap();
    let mut events = run.events();
    let report = run
        .execute()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", run.report(Some(&e)).to_json()));

    // every planned VM is in the DR pool with its UUID, one version up
    let vms = dr.vm().get_all_records().await.unwrap();
    for planned in &plan.vms {
        let found = vms
            .values()
            .find(|vm| *vm.uuid == *planned.uuid && !vm.is_a_snapshot)
            .unwrap_or_else(|| panic!("{} recovered", planned.name_label));
        assert_eq!(found.version, 1, "{}", planned.name_label);
    }
    // the calls: one recovery per vApp or standalone VM, one start per step, the rest bulk
    assert_eq!(report.count("VM_appliance.recover"), 2);
    assert_eq!(report.count("VM.recover"), 4);
    assert_eq!(
        report.count("Async.VM.start") + report.count("Async.VM_appliance.start"),
        plan.start.len()
    );
    let getters = report
        .calls
        .iter()
        .filter(|c| c.method.contains(".get_") && !c.method.ends_with("get_all_records"))
        .count();
    assert!(getters <= 3, "no per-VM getters: {}", report.to_json());
    // the recorded running VMs run again; the halted one (erp-reports, legacy-crm) stays halted
    for name in ["web-db", "web-frontend", "mail", "ldap"] {
        let vm = vms
            .values()
            .find(|vm| &*vm.name_label == name && !vm.is_a_snapshot)
            .unwrap();
        assert_eq!(vm.power_state, VmPowerState::Running, "{name}");
    }
    let crm = vms
        .values()
        .find(|vm| &*vm.name_label == "legacy-crm")
        .unwrap();
    assert_eq!(crm.power_state, VmPowerState::Halted);

    // started in the planned order, with xapi's delays on the simulated clock: standalone VMs
    // first, then each vApp by `order` groups, each group after its longest delay
    let metrics = dr.vm_metrics().get_all_records().await.unwrap();
    let started_at = |name: &str| {
        let vm = vms
            .values()
            .find(|vm| &*vm.name_label == name && !vm.is_a_snapshot)
            .unwrap();
        metrics[&vm.metrics]
            .start_time
            .to_unix_seconds_assuming_utc()
    };
    let web_db = started_at("web-db");
    for standalone in ["mail", "dns-1", "ldap"] {
        assert!(
            started_at(standalone) <= web_db,
            "{standalone} starts before the vApps"
        );
    }
    for app in ["web-app-1", "web-app-2"] {
        assert!(
            started_at(app) - web_db >= 30,
            "{app} waits for web-db's 30 s delay"
        );
    }
    assert!(started_at("web-frontend") - started_at("web-app-1") >= 10);
    assert!(started_at("erp-app") - started_at("erp-db") >= 60);
    assert!(
        started_at("erp-db") >= started_at("web-frontend"),
        "vApps one after another"
    );

    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    assert!(seen.len() > 10);
    assert!(report.journal.in_flight.is_none());
    assert_eq!(
        report.journal.recovered_vms.len(),
        plan.vms.len(),
        "the journal lists every VM"
    );

    // running the same plan again with its journal does nothing twice
    let options = RunOptions {
        apply_fixes: true,
        storage: mirror_storage(&sr_uuid),
        ..RunOptions::journal_at(dir.path().join("failover.journal"))
    };
    let mut again = Run::new(dr.clone(), plan, options).unwrap();
    let second = again.execute().await.unwrap();
    // a failover is never "cleaned up": that would destroy what it recovered
    assert!(matches!(
        again.cleanup().await,
        Err(xapi_dr::run::RunError::NotATest(Mode::Failover))
    ));
    assert_eq!(
        second.count("VM.recover") + second.count("VM_appliance.recover"),
        0
    );
    assert_eq!(second.count("Async.VM.start"), 0);
    assert_eq!(second.count("DR_task.create"), 0);
}
