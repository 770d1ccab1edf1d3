//! What DR pre-checks read: HA on the pool, the DR licence, host memory, and a user whose role
//! is read-only.

use std::collections::BTreeMap;

use crate::support;
use crate::support::dr::{both, create_dr_task, demo, named, sr_uuids};

use xapi_core::client::Password;
use xapi_sim::{DEFAULT_PASSWORD, READ_ONLY_USER};

#[derive(Debug, serde::Deserialize)]
struct PoolHa {
    ha_enabled: bool,
    ha_statefiles: Vec<String>,
    ha_host_failures_to_tolerate: i64,
    restrictions: BTreeMap<String, String>,
}

async fn pool_ha(session: &xapi_core::client::SessionHandle) -> (String, PoolHa) {
    let pools: BTreeMap<String, PoolHa> = session.call("pool.get_all_records", ()).await.unwrap();
    pools.into_iter().next().unwrap()
}

#[tokio::test]
async fn ha_is_enabled_with_a_shared_heartbeat_sr_and_disabled_again() {
    let (_sim, primary, dr) = demo(&[]).await;
    let (_, ha) = pool_ha(&primary).await;
    assert!(!ha.ha_enabled);
    let none = primary
        .call::<()>(
            "pool.enable_ha",
            (Vec::<String>::new(), BTreeMap::<String, String>::new()),
        )
        .await;
    assert_eq!(support::failure_code(none), "CANNOT_CREATE_STATE_FILE");
    let local: Vec<String> = dr.call("SR.get_all", ()).await.unwrap();
    let not_shared = dr
        .call::<()>(
            "pool.enable_ha",
            (&local, BTreeMap::<String, String>::new()),
        )
        .await;
    assert_eq!(
        support::failure_code(not_shared),
        "HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED"
    );

    let nfs = support::dr::sr_named(&primary, "Shared NFS").await;
    primary
        .call::<()>(
            "pool.enable_ha",
            (vec![&nfs], BTreeMap::from([("timeout", "60")])),
        )
        .await
        .unwrap();
    let (_, ha) = pool_ha(&primary).await;
    assert!(ha.ha_enabled);
    assert_eq!(ha.ha_statefiles.len(), 1);
    assert_eq!(
        ha.ha_host_failures_to_tolerate, 1,
        "two hosts tolerate one failure"
    );
    let statefile_type: String = primary
        .call("VDI.get_type", (&ha.ha_statefiles[0],))
        .await
        .unwrap();
    assert_eq!(statefile_type, "ha_statefile");
    let again = primary
        .call::<()>(
            "pool.enable_ha",
            (vec![&nfs], BTreeMap::<String, String>::new()),
        )
        .await;
    assert_eq!(support::failure_code(again), "HA_IS_ENABLED");

    primary.call::<()>("pool.disable_ha", ()).await.unwrap();
    let (_, ha) = pool_ha(&primary).await;
    assert!(!ha.ha_enabled);
    assert!(ha.ha_statefiles.is_empty());
    let twice = primary.call::<()>("pool.disable_ha", ()).await;
    assert_eq!(support::failure_code(twice), "HA_NOT_ENABLED");
}

#[tokio::test]
async fn a_dr_licence_restriction_refuses_dr_tasks_and_recoveries() {
    let (sim, primary, dr, foreign, _task) = support::dr::failover_ready().await;
    let (_, ha) = pool_ha(&dr).await;
    assert_eq!(
        ha.restrictions.get("restrict_dr").map(String::as_str),
        Some("false")
    );
    sim.set_dr_restricted("dr", true).unwrap();
    let (_, ha) = pool_ha(&dr).await;
    assert_eq!(
        ha.restrictions.get("restrict_dr").map(String::as_str),
        Some("true")
    );
    let hosts: Vec<String> = dr.call("host.get_all", ()).await.unwrap();
    let params: BTreeMap<String, String> = dr
        .call("host.get_license_params", (&hosts[0],))
        .await
        .unwrap();
    assert_eq!(params.get("restrict_dr").map(String::as_str), Some("true"));

    let uuids = sr_uuids(&primary, &both()).await;
    match create_dr_task(&dr, &uuids).await {
        Err(xapi_core::Error::Api(f)) => {
            assert_eq!(f.code.as_str(), "LICENCE_RESTRICTION");
            assert_eq!(f.params, ["DR"]);
        }
        other => panic!("DR is not licensed: {other:?}"),
    }
    let mail = named(&foreign, "VM", "mail").await;
    let refused = foreign
        .call::<()>("VM.recover", (&mail, support::dr::to(&dr), false))
        .await;
    assert_eq!(support::failure_code(refused), "LICENCE_RESTRICTION");

    sim.set_dr_restricted("dr", false).unwrap();
    // a session_to without the permission of VDI.open_database (pool operator and above)
    let readonly = support::client(
        &sim,
        &sim.pool("dr").unwrap().url,
        xapi_core::client::Protocol::JsonRpc,
    )
    .login_with_password(READ_ONLY_USER, Password::new(DEFAULT_PASSWORD), "1.0", "t")
    .await
    .unwrap();
    match foreign
        .call::<()>("VM.recover", (&mail, support::dr::to(&readonly), false))
        .await
    {
        Err(xapi_core::Error::Api(f)) => {
            assert_eq!(f.code.as_str(), "RBAC_PERMISSION_DENIED");
            assert_eq!(f.params[0], "VDI.open_database");
        }
        other => panic!("a read-only session_to: {other:?}"),
    }
    foreign
        .call::<()>("VM.recover", (&mail, support::dr::to(&dr), false))
        .await
        .unwrap();
    assert!(sim.set_dr_restricted("nowhere", true).is_err());
}

#[tokio::test]
async fn a_vm_that_does_not_fit_in_free_memory_does_not_start() {
    let (_sim, primary, _dr) = demo(&[]).await;
    let hosts: Vec<String> = primary.call("host.get_all", ()).await.unwrap();
    let mut free_before = 0;
    for host in &hosts {
        let metrics: String = primary.call("host.get_metrics", (host,)).await.unwrap();
        let total: i64 = primary
            .call("host_metrics.get_memory_total", (&metrics,))
            .await
            .unwrap();
        let free: i64 = primary
            .call("host.compute_free_memory", (host,))
            .await
            .unwrap();
        assert!(
            free > 0 && free < total,
            "running VMs take memory: {free} of {total}"
        );
        free_before += free;
    }
    let halted = support::vm_named(&primary, "build-agent-2").await;
    primary
        .call::<()>("VM.start", (&halted, false, false))
        .await
        .unwrap();
    let mut free_after = 0;
    for host in &hosts {
        free_after += primary
            .call::<i64>("host.compute_free_memory", (host,))
            .await
            .unwrap();
    }
    assert_eq!(
        free_before - free_after,
        2 << 30,
        "the VM's 2 GiB are taken"
    );

    let big = support::vm_named(&primary, "backup-proxy").await;
    primary
        .call::<()>("VM.set_memory_dynamic_max", (&big, 1_i64 << 40))
        .await
        .unwrap();
    match primary
        .call::<()>("VM.start_on", (&big, &hosts[0], false, false))
        .await
    {
        Err(xapi_core::Error::Api(f)) => {
            assert_eq!(f.code.as_str(), "HOST_NOT_ENOUGH_FREE_MEMORY");
            assert_eq!(f.params[0], (1_i64 << 40).to_string());
        }
        other => panic!("1 TiB does not fit: {other:?}"),
    }
    let nowhere = primary.call::<()>("VM.start", (&big, false, false)).await;
    assert_eq!(support::failure_code(nowhere), "NO_HOSTS_AVAILABLE");
}

#[derive(Debug, serde::Deserialize)]
struct SessionRecord {
    is_local_superuser: bool,
    subject: String,
    rbac_permissions: Vec<String>,
}

#[tokio::test]
async fn a_read_only_user_reads_but_cannot_change_anything() {
    let (sim, root) = support::demo().await;
    let readonly = support::client(&sim, sim.url(), xapi_core::client::Protocol::JsonRpc)
        .login_with_password(READ_ONLY_USER, Password::new(DEFAULT_PASSWORD), "1.0", "t")
        .await
        .expect("the read-only user logs in");
    let own = readonly.reference().to_string();
    let record: SessionRecord = readonly.call("session.get_record", (&own,)).await.unwrap();
    assert!(!record.is_local_superuser);
    assert!(record.rbac_permissions.iter().any(|p| p == "vm.get_record"));
    assert!(!record.rbac_permissions.iter().any(|p| p == "vm.start"));
    let roles: Vec<String> = readonly
        .call("subject.get_roles", (&record.subject,))
        .await
        .unwrap();
    let role: String = readonly
        .call("role.get_name_label", (&roles[0],))
        .await
        .unwrap();
    assert_eq!(role, "read-only");
    let hosts: Vec<String> = readonly.call("host.get_all", ()).await.unwrap();
    readonly
        .call::<i64>("host.compute_free_memory", (&hosts[0],))
        .await
        .expect("a read-only check");

    let vm = support::vm_named(&readonly, "build-agent-2").await;
    match readonly.call::<()>("VM.start", (&vm, false, false)).await {
        Err(xapi_core::Error::Api(f)) => {
            assert_eq!(f.code.as_str(), "RBAC_PERMISSION_DENIED");
            assert_eq!(f.params[0], "VM.start");
        }
        other => panic!("read-only: {other:?}"),
    }
    let async_start = readonly
        .call::<String>("Async.VM.start", (&vm, false, false))
        .await;
    assert_eq!(support::failure_code(async_start), "RBAC_PERMISSION_DENIED");
    // nor the data plane (export needs vm-admin in xapi)
    let export = readonly.get("/export", &[("ref", vm.as_str())], None).await;
    assert!(export.is_err(), "a read-only session cannot export");
    let root_session: SessionRecord = root
        .call("session.get_record", (root.reference().to_string(),))
        .await
        .unwrap();
    assert!(root_session.is_local_superuser);
    root.call::<()>("VM.start", (&vm, false, false))
        .await
        .unwrap();
}

/// `POST path_and_query` over a plain socket, as a test in another language would; the status
/// line.
async fn post(url: &str, path_and_query: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn admin_endpoints_restrict_dr_and_arm_call_failures() {
    let (sim, primary, dr) = demo(&[both()[0]]).await;
    let dr_url = sim.pool("dr").unwrap().url.clone();
    assert!(
        post(&dr_url, "/_sim/licence?restrict_dr=true")
            .await
            .contains(" 200 ")
    );
    let uuids = sr_uuids(&primary, &[both()[0]]).await;
    let refused = create_dr_task(&dr, &uuids).await;
    assert_eq!(support::failure_code(refused), "LICENCE_RESTRICTION");
    assert!(
        post(&dr_url, "/_sim/licence?restrict_dr=false")
            .await
            .contains(" 200 ")
    );
    assert!(
        post(&dr_url, "/_sim/licence?restrict_dr=maybe")
            .await
            .contains(" 400 ")
    );

    let armed = post(
        &dr_url,
        "/_sim/fault?fail_call=DR_task.create:1:SR_BACKEND_FAILURE_140",
    )
    .await;
    assert!(armed.contains(" 200 "), "{armed}");
    let failed = create_dr_task(&dr, &uuids).await;
    assert_eq!(support::failure_code(failed), "SR_BACKEND_FAILURE_140");
    create_dr_task(&dr, &uuids).await.unwrap();
    assert!(
        post(&dr_url, "/_sim/fault?fail_call=nonsense")
            .await
            .contains(" 400 ")
    );
}
