//! `/export` and `/import` where a backup engine depends on xapi's behaviour: a running VM is
//! not exported (a snapshot is), a file from a newer xapi is refused, a plain import gets a
//! fresh MAC seed, and each pool serves plain HTTP next to HTTPS.

use crate::support;

use xapi_core::client::{Client, Password, TlsPolicy};
use xapi_sim::{DEFAULT_PASSWORD, Scenario, SimConfig, Simulator};

async fn vm_named(session: &xapi_core::client::SessionHandle, name: &str) -> String {
    let vms: Vec<String> = session.call("VM.get_by_name_label", (name,)).await.unwrap();
    vms.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_running_vm_is_refused_and_its_snapshot_exported() {
    let (_sim, session) = support::demo().await;
    let vm = vm_named(&session, "mail").await;
    let state: String = session.call("VM.get_power_state", (&vm,)).await.unwrap();
    assert_eq!(state, "Running");
    let task: String = session.call("task.create", ("export", "")).await.unwrap();
    let refused = session
        .get(
            "/export",
            &[("ref", vm.as_str())],
            Some(&task.clone().into()),
        )
        .await;
    assert!(refused.is_err(), "no body for a running VM");
    let (status, result) = support::task_outcome(&session, &task).await;
    assert_eq!(status, "failure");
    assert!(
        result.contains("VM_BAD_POWER_STATE") && result.contains(&vm),
        "{result}"
    );
    assert!(
        result.contains("halted") && result.contains("running"),
        "{result}"
    );
    let snapshot: String = session
        .call("VM.snapshot", (&vm, "for export", Vec::<String>::new()))
        .await
        .unwrap();
    let xva = support::download(&session, "/export", &[("ref", snapshot.as_str())]).await;
    assert!(xva.len() > 1 << 20);
    let current: Vec<String> = session
        .call("VM.get_current_operations", (&vm,))
        .await
        .map(|m: std::collections::BTreeMap<String, String>| m.into_values().collect())
        .unwrap();
    assert!(current.is_empty(), "{current:?}");
}

#[tokio::test]
async fn an_xva_from_a_newer_xapi_is_refused_and_a_plain_import_gets_a_fresh_mac_seed() {
    let (_sim, session) = support::demo().await;
    let vm = vm_named(&session, "test-vm").await;
    let state: String = session.call("VM.get_power_state", (&vm,)).await.unwrap();
    assert_eq!(state, "Halted");
    let mut config: std::collections::BTreeMap<String, String> =
        session.call("VM.get_other_config", (&vm,)).await.unwrap();
    config.insert(
        "mac_seed".into(),
        "11111111-2222-3333-4444-555555555555".into(),
    );
    let () = session
        .call("VM.set_other_config", (&vm, &config))
        .await
        .unwrap();
    let xva = support::download(&session, "/export", &[("ref", vm.as_str())]).await;

    let task = support::upload(&session, "/import", &[], xva.clone()).await;
    let (status, result) = support::task_outcome(&session, &task).await;
    assert_eq!(status, "success", "{result}");
    let imported = result
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':' || c == '-'))
        .find(|w| w.starts_with("OpaqueRef:"))
        .unwrap()
        .to_owned();
    let imported_config: std::collections::BTreeMap<String, String> = session
        .call("VM.get_other_config", (&imported,))
        .await
        .unwrap();
    let seed = imported_config.get("mac_seed").expect("a MAC seed");
    assert_ne!(seed, "11111111-2222-3333-4444-555555555555", "a fresh one");

    // the same file claiming xapi 99.6: refused before anything is created
    let needle = b"<name>xapi_major</name><value>25</value>";
    let at = xva
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the version in ova.xml");
    let mut newer = xva;
    newer[at + needle.len() - 10..at + needle.len() - 8].copy_from_slice(b"99");
    let vms_before: Vec<String> = session.call("VM.get_all", ()).await.unwrap();
    let task = support::upload(&session, "/import", &[], newer).await;
    let (status, result) = support::task_outcome(&session, &task).await;
    assert_eq!(status, "failure");
    assert!(
        result.starts_with("IMPORT_INCOMPATIBLE_VERSION"),
        "{result}"
    );
    let vms_after: Vec<String> = session.call("VM.get_all", ()).await.unwrap();
    assert_eq!(vms_before.len(), vms_after.len());
}

#[tokio::test]
async fn a_tls_pool_also_serves_plain_http() {
    let sim = Simulator::start(SimConfig {
        tls: true,
        ..SimConfig::with_scenario(Scenario::Demo)
    })
    .await
    .unwrap();
    for pool in sim.pools() {
        assert!(pool.url.starts_with("https://"));
        assert!(pool.http_url.starts_with("http://"));
        assert_ne!(pool.url[8..], pool.http_url[7..]);
    }
    let plain = Client::builder(sim.http_url())
        .build()
        .unwrap()
        .login_with_password("root", Password::new(DEFAULT_PASSWORD), "1.0", "plain")
        .await
        .unwrap();
    let pin = sim.fingerprint().unwrap().parse().unwrap();
    let tls = Client::builder(sim.url())
        .tls(TlsPolicy::Pinned(pin))
        .build()
        .unwrap()
        .login_with_password("root", Password::new(DEFAULT_PASSWORD), "1.0", "tls")
        .await
        .unwrap();
    let a: Vec<String> = plain.call("VM.get_all", ()).await.unwrap();
    let b: Vec<String> = tls.call("VM.get_all", ()).await.unwrap();
    assert_eq!(a.len(), b.len(), "one pool behind both");
    assert!(
        sim.banner_lines()
            .iter()
            .any(|l| l.starts_with("plain http on http://"))
    );
}

#[tokio::test]
async fn export_metadata_leaves_out_the_excluded_device_types() {
    use xapi_backup::format::ova_xml::OvaClass;
    use xapi_backup::format::xva::{ReadOptions, XvaReader};
    let (_sim, session) = support::demo().await;
    let vm = vm_named(&session, "mail").await;
    let classes = |query: Vec<(&'static str, String)>| {
        let session = session.clone();
        async move {
            let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let tar = support::download(&session, "/export_metadata", &query).await;
            let reader = XvaReader::open(std::io::Cursor::new(tar), ReadOptions::default())
                .await
                .unwrap();
            let ova = reader.ova_xml();
            [
                OvaClass::Vm,
                OvaClass::Vbd,
                OvaClass::Vif,
                OvaClass::Vdi,
                OvaClass::Network,
            ]
            .map(|class| ova.objects_of(&class).count())
        }
    };
    let all = classes(vec![("ref", vm.clone())]).await;
    assert!(all.iter().all(|&n| n > 0), "{all:?}");
    let without = classes(vec![
        ("ref", vm.clone()),
        ("excluded_device_types", "vbd,vif".to_owned()),
    ])
    .await;
    assert_eq!(without, [1, 0, 0, 0, 0]);
    let no_vifs = classes(vec![
        ("ref", vm),
        ("excluded_device_types", "vif".to_owned()),
    ])
    .await;
    assert_eq!(no_vifs, [1, all[1], 0, all[3], 0]);
}
