//! `VM.recover` / `VM_appliance.recover` on the demo's DR pool: every pre-check before
//! anything changes (a failed recovery leaves the DR pool's records exactly as they were),
//! `force` as xapi's, and injected call failures.

use crate::support;
use crate::support::dr::{failover_ready, named, records, to};

use xapi_core::api::ErrorCode;
use xapi_core::client::SessionHandle;

/// The VDI (on the DR pool) of the first disk of the foreign VM `name`.
async fn dr_disk_of(foreign: &SessionHandle, dr: &SessionHandle, name: &str) -> String {
    let vm = named(foreign, "VM", name).await;
    let vbds: Vec<String> = foreign.call("VM.get_VBDs", (&vm,)).await.unwrap();
    let vdi: String = foreign.call("VBD.get_VDI", (&vbds[0],)).await.unwrap();
    let uuid: String = foreign.call("VDI.get_uuid", (&vdi,)).await.unwrap();
    dr.call("VDI.get_by_uuid", (&uuid,)).await.unwrap()
}

#[tokio::test]
async fn a_failed_appliance_recovery_leaves_the_dr_pool_as_it_was() {
    let (_sim, _primary, dr, foreign, _task) = failover_ready().await;
    // the last member's disk is gone on the DR side: the first members must not come back
    let frontend_disk = dr_disk_of(&foreign, &dr, "web-frontend").await;
    dr.call::<()>("VDI.destroy", (&frontend_disk,))
        .await
        .unwrap();
    let app = named(&foreign, "VM_appliance", "web-shop").await;
    let before = records(&dr).await;
    let refused = foreign
        .call::<()>("VM_appliance.recover", (&app, to(&dr), false))
        .await;
    assert_eq!(support::failure_code(refused), "VDI_LOCATION_MISSING");
    assert_eq!(records(&dr).await, before, "nothing was made or destroyed");

    // force leaves the missing disk (and its VBD) out and recovers the rest
    foreign
        .call::<()>("VM_appliance.recover", (&app, to(&dr), true))
        .await
        .unwrap();
    let frontend = named(&dr, "VM", "web-frontend").await;
    let vbds: Vec<String> = dr.call("VM.get_VBDs", (&frontend,)).await.unwrap();
    assert!(vbds.is_empty(), "the missing disk's VBD was skipped");
    let web_db = named(&dr, "VM", "web-db").await;
    assert_eq!(support::disk_vbds(&dr, &web_db).await.len(), 2);
}

#[tokio::test]
async fn running_or_not_older_vms_block_a_recovery_and_force_skips_or_replaces_them() {
    let (_sim, _primary, dr, foreign, _task) = failover_ready().await;
    let mail = named(&foreign, "VM", "mail").await;
    foreign
        .call::<()>("VM.recover", (&mail, to(&dr), false))
        .await
        .unwrap();
    let recovered = named(&dr, "VM", "mail").await;
    dr.call::<()>("VM.start", (&recovered, false, false))
        .await
        .unwrap();

    let before = records(&dr).await;
    let running = foreign
        .call::<()>("VM.recover", (&mail, to(&dr), false))
        .await;
    assert_eq!(support::failure_code(running), "VM_BAD_POWER_STATE");
    assert_eq!(records(&dr).await, before);
    foreign
        .call::<()>("VM.recover", (&mail, to(&dr), true))
        .await
        .unwrap();
    assert_eq!(
        named(&dr, "VM", "mail").await,
        recovered,
        "force skips a running VM"
    );
    let state: String = dr.call("VM.get_power_state", (&recovered,)).await.unwrap();
    assert_eq!(state, "Running");

    dr.call::<()>("VM.hard_shutdown", (&recovered,))
        .await
        .unwrap();
    let before = records(&dr).await;
    let not_newer = foreign
        .call::<()>("VM.recover", (&mail, to(&dr), false))
        .await;
    assert_eq!(
        support::failure_code(not_newer),
        "VM_TO_IMPORT_IS_NOT_NEWER_VERSION"
    );
    assert_eq!(records(&dr).await, before);
    foreign
        .call::<()>("VM.recover", (&mail, to(&dr), true))
        .await
        .unwrap();
    let replaced = named(&dr, "VM", "mail").await;
    assert_ne!(replaced, recovered, "force replaces a halted VM");
    let version: i64 = dr.call("VM.get_version", (&replaced,)).await.unwrap();
    assert_eq!(version, 1);
}

#[tokio::test]
async fn a_mac_seed_in_use_fails_the_recovery_before_anything_changes() {
    let first = support::dr::both()[0];
    let (sim, primary, dr) = support::dr::demo(&[first]).await;
    let dns = support::vm_named(&primary, "dns-1").await;
    primary
        .call::<()>(
            "VM.add_to_other_config",
            (&dns, "mac_seed", "seed-of-dns-1"),
        )
        .await
        .unwrap();
    let uuids = support::dr::sr_uuids(&primary, &[first]).await;
    support::dr::create_dr_task(&dr, &uuids).await.unwrap();
    let (vdi, _) = support::dr::metadata_vdi_on(&dr, &uuids[0]).await;
    let foreign = support::dr::open_metadata(&dr, &sim.pool("dr").unwrap().url, &vdi).await;
    let ldap = named(&foreign, "VM", "ldap").await;
    foreign
        .call::<()>("VM.recover", (&ldap, to(&dr), false))
        .await
        .unwrap();
    let local_ldap = named(&dr, "VM", "ldap").await;
    dr.call::<()>(
        "VM.add_to_other_config",
        (&local_ldap, "mac_seed", "seed-of-dns-1"),
    )
    .await
    .unwrap();

    let before = records(&dr).await;
    let dns_foreign = named(&foreign, "VM", "dns-1").await;
    match foreign
        .call::<()>("VM.recover", (&dns_foreign, to(&dr), false))
        .await
    {
        Err(xapi_core::Error::Api(f)) => {
            assert_eq!(f.code, ErrorCode::DuplicateMacSeed);
            assert_eq!(f.params, ["seed-of-dns-1"]);
        }
        other => panic!("the seed is taken: {other:?}"),
    }
    assert_eq!(records(&dr).await, before);
}

#[tokio::test]
async fn an_injected_failure_stops_the_nth_recovery_before_it_starts() {
    let (sim, _primary, dr, foreign, _task) = failover_ready().await;
    sim.faults()
        .fail_call("VM.recover", 2, ErrorCode::SrBackendFailure);
    let mail = named(&foreign, "VM", "mail").await;
    let dns = named(&foreign, "VM", "dns-1").await;
    let ldap = named(&foreign, "VM", "ldap").await;
    foreign
        .call::<()>("VM.recover", (&mail, to(&dr), false))
        .await
        .unwrap();
    let before = records(&dr).await;
    let failed = foreign
        .call::<()>("VM.recover", (&dns, to(&dr), false))
        .await;
    assert_eq!(support::failure_code(failed), "SR_BACKEND_FAILURE");
    assert_eq!(
        records(&dr).await,
        before,
        "the failed call changed nothing"
    );
    foreign
        .call::<()>("VM.recover", (&dns, to(&dr), false))
        .await
        .unwrap();

    // the Async form fails through its task
    sim.faults()
        .fail_call("VM.recover", 1, ErrorCode::VdiIoError);
    let task: String = foreign
        .call("Async.VM.recover", (&ldap, to(&dr), false))
        .await
        .unwrap();
    let mut outcome = (String::from("pending"), String::new());
    for _ in 0..200 {
        outcome = support::task_outcome(&dr, &task).await;
        if outcome.0 != "pending" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(outcome.0, "failure");
    assert!(outcome.1.starts_with("VDI_IO_ERROR"), "{}", outcome.1);
    let ldaps: Vec<String> = dr.call("VM.get_by_name_label", ("ldap",)).await.unwrap();
    assert!(ldaps.is_empty());
}
