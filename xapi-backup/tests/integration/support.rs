//! What the tests of the other kinds of backups share: the demo pool, a repository, disk bytes.

use xapi_backup::repo::{CreateOptions, Repository, Target};
use xapi_core::api::{Sr, Vdi, VmRecord};
use xapi_core::client::{Client, Password, SessionHandle};
use xapi_core::wire::Ref;
use xapi_sim::{DEFAULT_PASSWORD, Scenario, SimConfig, SimHandle, Simulator};

/// The demo pool and a session on it.
pub(crate) async fn demo() -> (SimHandle, SessionHandle) {
    let sim = Simulator::start(SimConfig::with_scenario(Scenario::Demo))
        .await
        .unwrap();
    let session = login(&sim).await;
    (sim, session)
}

/// A new session on the simulator's pool.
pub(crate) async fn login(sim: &SimHandle) -> SessionHandle {
    Client::builder(sim.url())
        .build()
        .unwrap()
        .login_with_password(
            "root",
            Password::new(DEFAULT_PASSWORD),
            "1.0",
            "backup test",
        )
        .await
        .unwrap()
}

/// A new local repository in a temporary directory (kept as long as the guard lives).
pub(crate) async fn new_repo() -> (tempfile::TempDir, Repository) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::create(
        &Target::LocalDir(dir.path().join("repo")),
        CreateOptions::default(),
    )
    .await
    .unwrap();
    (dir, repo)
}

/// The bytes of a VDI as the simulator stores them, padded to its virtual size.
pub(crate) async fn vdi_bytes(sim: &SimHandle, session: &SessionHandle, vdi: &Ref<Vdi>) -> Vec<u8> {
    let record = session.vdi().get_record(vdi).await.unwrap();
    let image = sim.disk_image("primary", &record.uuid).unwrap();
    let mut bytes = std::fs::read(image).unwrap_or_default();
    bytes.resize(usize::try_from(record.virtual_size).unwrap(), 0);
    bytes
}

/// The VM named `name`.
pub(crate) async fn vm_named(
    session: &SessionHandle,
    name: &str,
) -> (Ref<xapi_core::api::Vm>, VmRecord) {
    session
        .vm()
        .get_all_records()
        .await
        .unwrap()
        .into_iter()
        .find(|(_, vm)| &*vm.name_label == name && !vm.is_a_snapshot && !vm.is_a_template)
        .unwrap_or_else(|| panic!("no VM {name}"))
}

/// The disks (non-CD VDIs) of a VM, by userdevice.
pub(crate) async fn disks_of_vm(
    session: &SessionHandle,
    vm: &Ref<xapi_core::api::Vm>,
) -> Vec<Ref<Vdi>> {
    let record = session.vm().get_record(vm).await.unwrap();
    let mut disks = Vec::new();
    for vbd in &record.vbds {
        let vbd = session.vbd().get_record(vbd).await.unwrap();
        if vbd.r#type == xapi_core::api::VbdType::Cd || vbd.vdi.is_null() {
            continue;
        }
        disks.push((vbd.userdevice.to_string(), vbd.vdi));
    }
    disks.sort_by(|a, b| a.0.cmp(&b.0));
    disks.into_iter().map(|(_, vdi)| vdi).collect()
}

/// A local SR of the demo pool (the VMs' disks are on shared ones).
pub(crate) async fn local_sr(session: &SessionHandle) -> Ref<Sr> {
    let mut locals: Vec<_> = session
        .sr()
        .get_all_records()
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, sr)| sr.name_label.starts_with("Local storage"))
        .map(|(r, sr)| (sr.name_label.to_string(), r))
        .collect();
    locals.sort();
    locals.into_iter().next().expect("a local SR").1
}
