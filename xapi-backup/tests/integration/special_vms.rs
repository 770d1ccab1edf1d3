//! The demo pool's special VMs backed up and restored: a VM with no disk, one with an ISO in a
//! CD drive, a suspended one and one with a vTPM and NVRAM (see the README's backup section).

use xapi_backup::export::backup_vm;
use xapi_backup::import::{RestoreOptions, restore_vm};
use xapi_backup::repo::{CreateOptions, Repository, StreamRole, Target};
use xapi_core::api::{VbdType, Vm, VmPowerState, VmRecord};
use xapi_core::client::{Client, Password, SessionHandle};
use xapi_core::wire::Ref;
use xapi_sim::{DEFAULT_PASSWORD, Scenario, SimConfig, SimHandle, Simulator};

async fn demo() -> (SimHandle, SessionHandle) {
    let sim = Simulator::start(SimConfig::with_scenario(Scenario::Demo))
        .await
        .unwrap();
    let session = Client::builder(sim.url())
        .build()
        .unwrap()
        .login_with_password(
            "root",
            Password::new(DEFAULT_PASSWORD),
            "1.0",
            "special VMs",
        )
        .await
        .unwrap();
    (sim, session)
}

async fn vm_named(session: &SessionHandle, name: &str) -> (Ref<Vm>, VmRecord) {
    session
        .vm()
        .get_all_records()
        .await
        .unwrap()
        .into_iter()
        .find(|(_, vm)| &*vm.name_label == name && !vm.is_a_snapshot && !vm.is_a_template)
        .unwrap_or_else(|| panic!("the demo has {name}"))
}

/// The VM's VBDs as (type, whether a disk image is attached).
async fn vbd_kinds(session: &SessionHandle, vm: &Ref<Vm>) -> Vec<(VbdType, bool)> {
    let record = session.vm().get_record(vm).await.unwrap();
    let mut kinds = Vec::new();
    for vbd in &record.vbds {
        let vbd = session.vbd().get_record(vbd).await.unwrap();
        kinds.push((vbd.r#type, !vbd.vdi.is_null()));
    }
    kinds.sort_by_key(|(t, _)| format!("{t:?}"));
    kinds
}

/// The contents of the VM's vTPMs, through the `VTPM` records' `VM` field (contents stay on
/// the pool: they are compared by the export's `ova.xml` instead).
async fn vtpm_count(session: &SessionHandle, vm: &Ref<Vm>) -> usize {
    session.vm().get_record(vm).await.unwrap().vtpms.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_special_vms_are_backed_up_and_restored_as_documented() {
    let (_sim, session) = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::create(
        &Target::LocalDir(dir.path().join("repo")),
        CreateOptions::default(),
    )
    .await
    .unwrap();
    let restore = |name: &str| RestoreOptions {
        name_label: Some(format!("{name} (restored)")),
        ..RestoreOptions::default()
    };

    // no disk: a restore point with the VM's metadata and no disk stream
    let (netboot, record) = vm_named(&session, "netboot-appliance").await;
    assert!(record.vbds.is_empty());
    let backup = backup_vm(&session, &repo, &netboot, None).await.unwrap();
    assert!(backup.snapshot_removed);
    assert!(
        !backup
            .manifest
            .streams
            .iter()
            .any(|s| s.role == StreamRole::Disk),
        "{:?}",
        backup.manifest.streams
    );
    let restored = restore_vm(
        &session,
        &repo,
        &backup.manifest,
        &restore("netboot-appliance"),
    )
    .await
    .unwrap();
    let again = session.vm().get_record(&restored).await.unwrap();
    assert!(again.vbds.is_empty());
    assert_eq!(again.vifs.len(), 1, "its network interface comes back");
    assert_eq!(again.hvm_boot_params.get("order").map(|o| &**o), Some("n"));

    // a CD drive: the ISO is not backed up; the drive comes back empty, the disk with data
    let (agent, _) = vm_named(&session, "build-agent-2").await;
    assert_eq!(
        vbd_kinds(&session, &agent).await,
        [(VbdType::Cd, true), (VbdType::Disk, true)]
    );
    let backup = backup_vm(&session, &repo, &agent, None).await.unwrap();
    let disks = backup
        .manifest
        .streams
        .iter()
        .filter(|s| s.role == StreamRole::Disk)
        .count();
    assert_eq!(disks, 1, "the disk, not the ISO");
    let restored = restore_vm(&session, &repo, &backup.manifest, &restore("build-agent-2"))
        .await
        .unwrap();
    assert_eq!(
        vbd_kinds(&session, &restored).await,
        [(VbdType::Cd, false), (VbdType::Disk, true)],
        "the CD drive comes back empty"
    );

    // suspended: backed up through a snapshot like any VM; it comes back halted, without its
    // memory image
    let (suspended, record) = vm_named(&session, "build-agent-1").await;
    assert_eq!(record.power_state, VmPowerState::Suspended);
    assert!(!record.suspend_vdi.is_null());
    let backup = backup_vm(&session, &repo, &suspended, None).await.unwrap();
    assert!(backup.snapshot_removed);
    let disks = backup
        .manifest
        .streams
        .iter()
        .filter(|s| s.role == StreamRole::Disk)
        .count();
    assert_eq!(disks, 1, "the disk, not the suspend image");
    let restored = restore_vm(&session, &repo, &backup.manifest, &restore("build-agent-1"))
        .await
        .unwrap();
    let again = session.vm().get_record(&restored).await.unwrap();
    assert_eq!(again.power_state, VmPowerState::Halted);
    assert!(again.suspend_vdi.is_null());
    let source = session.vm().get_record(&suspended).await.unwrap();
    assert_eq!(
        source.power_state,
        VmPowerState::Suspended,
        "the source stays suspended"
    );

    // vTPM and NVRAM: both travel in the restore point's ova.xml and come back
    let (jump_host, record) = vm_named(&session, "jump-host").await;
    assert_eq!(vtpm_count(&session, &jump_host).await, 1);
    let variables = record.nvram.get("EFI-variables").cloned().expect("NVRAM");
    let backup = backup_vm(&session, &repo, &jump_host, None).await.unwrap();
    let ova = repo.read_ova_xml(&backup.manifest).await.unwrap();
    let ova = String::from_utf8_lossy(&ova);
    assert!(
        ova.contains("vTPM'_content"),
        "the vTPM's contents are in the backup"
    );
    let restored = restore_vm(&session, &repo, &backup.manifest, &restore("jump-host"))
        .await
        .unwrap();
    let again = session.vm().get_record(&restored).await.unwrap();
    assert_eq!(again.nvram.get("EFI-variables"), Some(&variables));
    assert_eq!(
        vtpm_count(&session, &restored).await,
        1,
        "the vTPM comes back"
    );
    assert_eq!(
        again.hvm_boot_params.get("firmware").map(|f| &**f),
        Some("uefi")
    );
}
