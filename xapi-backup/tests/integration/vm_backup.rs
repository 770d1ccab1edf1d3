//! Backing up VMs of the simulator's demo pool into a local repository and restoring them:
//! the snapshot is gone afterwards, a second backup stores no new chunk, and the restored VM's
//! disks equal the source's byte for byte.

use xapi_backup::export::{SNAPSHOT_TAG, backup_vm, remove_leftover_snapshots};
use xapi_backup::import::{RestoreOptions, restore_vm};
use xapi_backup::repo::{CreateOptions, Repository, RestorePointKind, StreamRole, Target};
use xapi_core::api::{VbdType, VmPowerState};
use xapi_core::client::{Client, Password, SessionHandle};
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
            "backup test",
        )
        .await
        .unwrap();
    (sim, session)
}

/// A new local repository in a temporary directory (kept as long as the guard lives).
async fn new_repo() -> (tempfile::TempDir, Repository) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::create(
        &Target::LocalDir(dir.path().join("repo")),
        CreateOptions::default(),
    )
    .await
    .unwrap();
    (dir, repo)
}

/// The disks (non-CD) of a VM, by userdevice: (VDI UUID, image bytes).
async fn disks_of(
    sim: &SimHandle,
    session: &SessionHandle,
    vm: &xapi_core::wire::Ref<xapi_core::api::Vm>,
) -> Vec<Vec<u8>> {
    let record = session.vm().get_record(vm).await.unwrap();
    let mut disks = Vec::new();
    for vbd in &record.vbds {
        let vbd = session.vbd().get_record(vbd).await.unwrap();
        if vbd.r#type == VbdType::Cd || vbd.vdi.is_null() {
            continue;
        }
        let vdi = session.vdi().get_record(&vbd.vdi).await.unwrap();
        let image = sim.disk_image("primary", &vdi.uuid).unwrap();
        let mut bytes = std::fs::read(image).unwrap_or_default();
        bytes.resize(usize::try_from(vdi.virtual_size).unwrap(), 0);
        disks.push((vbd.userdevice.to_string(), bytes));
    }
    disks.sort();
    disks.into_iter().map(|(_, b)| b).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_is_backed_up_deduplicated_and_restored_byte_for_byte() {
    let (sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let vms = session.vm().get_all_records().await.unwrap();
    let (mail, record) = vms
        .iter()
        .find(|(_, vm)| &*vm.name_label == "mail")
        .unwrap();
    assert_eq!(
        record.power_state,
        VmPowerState::Running,
        "backed up live, through a snapshot"
    );
    let snapshots_before = record.snapshots.len();

    let first = backup_vm(&session, &repo, mail, Some("job-1"))
        .await
        .unwrap();
    assert!(first.snapshot_removed);
    assert!(first.bytes_read > 0);
    let disks: Vec<_> = first
        .manifest
        .streams
        .iter()
        .filter(|s| s.role == StreamRole::Disk)
        .collect();
    assert_eq!(disks.len(), 2, "mail has two disks");
    assert!(disks.iter().all(|d| d.vdi_uuid.is_some()));
    assert!(first.manifest.ova_xml.is_some());
    let after = session.vm().get_record(mail).await.unwrap();
    assert_eq!(
        after.snapshots.len(),
        snapshots_before,
        "the snapshot is gone"
    );
    let all = session.vm().get_all_records().await.unwrap();
    assert!(
        !all.values()
            .any(|vm| vm.tags.iter().any(|t| &**t == SNAPSHOT_TAG)),
        "no tagged snapshot left"
    );

    // the second run stores no new chunk: the data is the same
    let second = backup_vm(&session, &repo, mail, Some("job-2"))
        .await
        .unwrap();
    let new: u64 = second.manifest.streams.iter().map(|s| s.new_chunks).sum();
    assert_eq!(new, 0, "{:?}", second.manifest.streams);
    assert_eq!(
        repo.list(RestorePointKind::Vm).await.unwrap().len(),
        2,
        "two restore points listed"
    );
    assert_eq!(remove_leftover_snapshots(&session).await.unwrap(), 0);

    // restore as a new VM and compare the disks byte for byte
    let restored = restore_vm(
        &session,
        &repo,
        &second.manifest,
        &RestoreOptions {
            name_label: Some("mail (restored)".into()),
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap();
    let restored_record = session.vm().get_record(&restored).await.unwrap();
    assert_eq!(&*restored_record.name_label, "mail (restored)");
    assert!(!restored_record.is_a_snapshot && !restored_record.is_a_template);
    assert_ne!(
        restored_record.uuid, record.uuid,
        "a new VM, with a new UUID"
    );
    assert_eq!(
        disks_of(&sim, &session, &restored).await,
        disks_of(&sim, &session, mail).await,
        "the restored disks are the source's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_backs_up_the_pool_four_at_a_time_and_shards_split_it() {
    use xapi_backup::jobs::{JobEvent, Selection, run_job, select};
    let (_sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let all = Selection {
        all: true,
        ..Selection::default()
    };
    let mut events = 0;
    let first = run_job(&session, &repo, &all, "job-1", 4, |event| {
        if matches!(event, JobEvent::Finished(_)) {
            events += 1;
        }
    })
    .await
    .unwrap();
    assert_eq!(first.vms.len(), 21, "every VM, no template or snapshot");
    assert_eq!(first.failed(), 0, "{first:?}");
    assert_eq!(events, 21);
    assert!(
        first.max_in_flight <= 4 && first.max_in_flight >= 2,
        "{}",
        first.max_in_flight
    );
    let second = run_job(&session, &repo, &all, "job-2", 4, |_| {})
        .await
        .unwrap();
    assert_eq!(second.new_bytes, 0, "a second run stores no new chunk");

    // selections: by vApp, by name with an exclusion, and three shards that split the pool
    let vms = session.vm().get_all_records().await.unwrap();
    let apps = session.vm_appliance().get_all_records().await.unwrap();
    let web = select(
        &vms,
        &apps,
        &Selection {
            vapps: vec!["web-shop".into()],
            exclude: vec!["web-db".into()],
            ..Selection::default()
        },
    )
    .unwrap();
    let names: Vec<&str> = web.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(names, ["web-app-1", "web-app-2", "web-frontend"]);
    let mut union = Vec::new();
    for k in 1..=3 {
        let shard = select(
            &vms,
            &apps,
            &Selection {
                all: true,
                shard: Some((k, 3)),
                ..Selection::default()
            },
        )
        .unwrap();
        union.extend(shard.into_iter().map(|(_, _, uuid)| uuid));
    }
    union.sort();
    let before = union.len();
    union.dedup();
    assert_eq!(
        (before, union.len()),
        (21, 21),
        "each VM in exactly one shard"
    );
    assert!(
        select(
            &vms,
            &apps,
            &Selection {
                vms: vec!["nope".into()],
                ..Selection::default()
            }
        )
        .unwrap_err()
        .to_string()
        .contains("nope")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwrite_restore_brings_the_vm_back_with_its_uuid_and_macs_only_when_halted() {
    let (sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let vms = session.vm().get_all_records().await.unwrap();
    let (ldap, record) = vms
        .iter()
        .find(|(_, vm)| &*vm.name_label == "ldap")
        .map(|(r, vm)| (r.clone(), vm.clone()))
        .unwrap();
    let macs = |session: SessionHandle, vm: xapi_core::wire::Ref<xapi_core::api::Vm>| async move {
        let record = session.vm().get_record(&vm).await.unwrap();
        let mut macs = Vec::new();
        for vif in &record.vifs {
            macs.push(session.vif().get_record(vif).await.unwrap().mac.to_string());
        }
        macs.sort();
        macs
    };
    let macs_before = macs(session.clone(), ldap.clone()).await;
    let disks_before = disks_of(&sim, &session, &ldap).await;
    let point = backup_vm(&session, &repo, &ldap, None).await.unwrap();
    let overwrite = RestoreOptions {
        overwrite: true,
        ..RestoreOptions::default()
    };

    // running: refused before anything is sent
    let err = restore_vm(&session, &repo, &point.manifest, &overwrite)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("shut it down"), "{err}");

    session.vm().hard_shutdown(&ldap).await.unwrap();
    let restored = restore_vm(&session, &repo, &point.manifest, &overwrite)
        .await
        .unwrap();
    let back = session.vm().get_record(&restored).await.unwrap();
    assert_eq!(back.uuid, record.uuid, "the VM comes back with its UUID");
    assert!(!back.is_a_snapshot);
    assert_eq!(
        macs(session.clone(), restored.clone()).await,
        macs_before,
        "and its MACs"
    );
    assert_eq!(disks_of(&sim, &session, &restored).await, disks_before);
    let all = session.vm().get_all_records().await.unwrap();
    assert_eq!(
        all.values()
            .filter(|vm| *vm.uuid == *record.uuid && !vm.is_a_snapshot)
            .count(),
        1,
        "in place of the old one, not beside it"
    );
}
