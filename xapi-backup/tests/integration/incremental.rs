//! Incremental runs against the simulator's demo pool: a full first run over NBD, then runs that
//! read only the changed 64 KiB blocks after random guest writes; every restore point restored
//! equals the disks at snapshot time byte for byte; every fallback to a full read happens and is
//! reported; an interrupted transfer resumes; CBT across VDI snapshot, clone and resize.

use std::collections::BTreeSet;
use std::path::Path;

use xapi_backup::export::remove_leftover_snapshots;
use xapi_backup::format::xva::{ReadOptions, XvaReader};
use xapi_backup::import::{RestoreOptions, restore_vm};
use xapi_backup::incremental::base::{BASE_OF_KEY, BASE_TAG, SOURCE_BASE_KEY};
use xapi_backup::incremental::{
    CBT_BLOCK, CbtPolicy, ChangedBlocks, FullReason, IncrementalOptions, IncrementalReport,
    backup_vm_incremental, disable_cbt, enable_cbt,
};
use xapi_backup::repo::{CreateOptions, Manifest, Repository, Target};
use xapi_backup::xva_io::{XvaExportOptions, export_xva};
use xapi_core::api::{ErrorCode, VbdType, Vdi, Vm, VmPowerState};
use xapi_core::client::{Client, Password, SessionHandle, TlsPolicy};
use xapi_core::wire::{Ref, SmallMap};
use xapi_sim::{DEFAULT_PASSWORD, Scenario, SimConfig, SimHandle, Simulator};

/// The demo pool over TLS: its NBD network has the `nbd` purpose (TLS pinned to the host's
/// certificate).
async fn demo() -> (SimHandle, SessionHandle) {
    demo_with(true).await
}

async fn demo_with(tls: bool) -> (SimHandle, SessionHandle) {
    let sim = Simulator::start(SimConfig {
        tls,
        ..SimConfig::with_scenario(Scenario::Demo)
    })
    .await
    .unwrap();
    let mut client = Client::builder(sim.url());
    if let Some(fingerprint) = sim.fingerprint() {
        client = client.tls(TlsPolicy::Pinned(fingerprint.parse().unwrap()));
    }
    let session = client
        .build()
        .unwrap()
        .login_with_password(
            "root",
            Password::new(DEFAULT_PASSWORD),
            "1.0",
            "incremental test",
        )
        .await
        .unwrap();
    (sim, session)
}

async fn new_repo(dir: &Path) -> Repository {
    Repository::create(&Target::LocalDir(dir.to_owned()), CreateOptions::default())
        .await
        .unwrap()
}

async fn vm_named(session: &SessionHandle, name: &str) -> Ref<Vm> {
    let vms = session.vm().get_all_records().await.unwrap();
    vms.into_iter()
        .find(|(_, vm)| &*vm.name_label == name && !vm.is_a_snapshot)
        .unwrap()
        .0
}

/// The disks of a VM by userdevice: (VDI, its UUID).
async fn disks(session: &SessionHandle, vm: &Ref<Vm>) -> Vec<(Ref<Vdi>, String)> {
    let record = session.vm().get_record(vm).await.unwrap();
    let mut disks = Vec::new();
    for vbd in &record.vbds {
        let vbd = session.vbd().get_record(vbd).await.unwrap();
        if vbd.r#type == VbdType::Cd || vbd.vdi.is_null() {
            continue;
        }
        let uuid = session.vdi().get_uuid(&vbd.vdi).await.unwrap();
        disks.push((vbd.userdevice.to_string(), vbd.vdi, uuid.to_string()));
    }
    disks.sort_by(|a, b| a.0.cmp(&b.0));
    disks
        .into_iter()
        .map(|(_, vdi, uuid)| (vdi, uuid))
        .collect()
}

/// The bytes of a VM's disks now, by userdevice.
async fn contents(sim: &SimHandle, session: &SessionHandle, vm: &Ref<Vm>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (vdi, uuid) in disks(session, vm).await {
        let size = session.vdi().get_virtual_size(&vdi).await.unwrap();
        let mut bytes = std::fs::read(sim.disk_image("primary", &uuid).unwrap()).unwrap();
        bytes.resize(usize::try_from(size).unwrap(), 0);
        out.push(bytes);
    }
    out
}

/// Restores `manifest` as a new VM and returns its disks' bytes; the VM is destroyed again.
async fn restored(
    sim: &SimHandle,
    session: &SessionHandle,
    repo: &Repository,
    manifest: &Manifest,
) -> Vec<Vec<u8>> {
    let vm = restore_vm(session, repo, manifest, &RestoreOptions::default())
        .await
        .unwrap();
    let bytes = contents(sim, session, &vm).await;
    let vdis = disks(session, &vm).await;
    session.vm().destroy(&vm).await.unwrap();
    for (vdi, _) in vdis {
        session.vdi().destroy(&vdi).await.unwrap();
    }
    bytes
}

/// The disks of `manifest` written out as a standard XVA and read back by the project's XVA
/// reader (every chunk's checksum checked), sorted so that they compare with [`sorted`].
async fn exported(repo: &Repository, manifest: &Manifest) -> Vec<Vec<u8>> {
    let mut xva = Vec::new();
    export_xva(repo, manifest, &XvaExportOptions::default(), &mut xva)
        .await
        .unwrap();
    let mut reader = XvaReader::open(std::io::Cursor::new(xva), ReadOptions::default())
        .await
        .unwrap();
    let mut disks: Vec<Vec<u8>> = reader
        .disks()
        .iter()
        .map(|d| vec![0; usize::try_from(d.virtual_size).unwrap()])
        .collect();
    while let Some(chunk) = reader.next_chunk().await.unwrap() {
        let at = usize::try_from(chunk.offset).unwrap();
        disks[chunk.disk][at..at + chunk.data.len()].copy_from_slice(&chunk.data);
    }
    assert!(reader.mismatches().is_empty());
    sorted(disks)
}

/// Disks in a fixed order (an XVA lists them by export id, not by device).
fn sorted(mut disks: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    disks.sort();
    disks
}

/// A small deterministic pseudo-random generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Writes `count` random runs into the VM's disks as its guest would; the 64 KiB blocks touched
/// per disk.
async fn random_writes(
    sim: &SimHandle,
    session: &SessionHandle,
    vm: &Ref<Vm>,
    rng: &mut Rng,
    count: usize,
) -> Vec<BTreeSet<u64>> {
    let disks = disks(session, vm).await;
    let mut touched = vec![BTreeSet::new(); disks.len()];
    for _ in 0..count {
        let which = (rng.next() % disks.len() as u64) as usize;
        let (vdi, uuid) = &disks[which];
        let size = u64::try_from(session.vdi().get_virtual_size(vdi).await.unwrap()).unwrap();
        let len = 1 + rng.next() % (3 * CBT_BLOCK);
        let offset = rng.next() % (size - len);
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        sim.write_disk("primary", uuid, offset, &data).unwrap();
        for block in offset / CBT_BLOCK..=(offset + len - 1) / CBT_BLOCK {
            touched[which].insert(block);
        }
    }
    touched
}

fn reasons(report: &IncrementalReport) -> Vec<FullReason> {
    report.full_reasons().into_iter().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_runs_read_only_changed_blocks_and_restore_byte_for_byte() {
    let (sim, session) = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(&dir.path().join("repo")).await;
    let vm = vm_named(&session, "mail").await;
    assert_eq!(
        session.vm().get_power_state(&vm).await.unwrap(),
        VmPowerState::Running
    );
    let options = IncrementalOptions::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    // first run: CBT enabled, every disk read whole over NBD, bases kept
    let expected = contents(&sim, &session, &vm).await;
    let total: u64 = expected.iter().map(|d| d.len() as u64).sum();
    let first = backup_vm_incremental(&session, &repo, &vm, &options)
        .await
        .unwrap();
    assert_eq!(reasons(&first), vec![FullReason::FirstRun; 2]);
    assert_eq!(first.nbd_bytes_read, total);
    assert!(first.bases_kept);
    for (vdi, _) in disks(&session, &vm).await {
        assert!(session.vdi().get_cbt_enabled(&vdi).await.unwrap());
    }
    assert!(restored(&sim, &session, &repo, &first.manifest).await == expected);
    assert!(exported(&repo, &first.manifest).await == sorted(expected));

    let mut previous_manifest = first.manifest.clone();
    for round in 0..3 {
        let touched = random_writes(&sim, &session, &vm, &mut rng, 6 + round * 5).await;
        let expected = contents(&sim, &session, &vm).await;
        let report = backup_vm_incremental(&session, &repo, &vm, &options)
            .await
            .unwrap();
        assert!(report.is_incremental(), "{:?}", reasons(&report));
        let changed: u64 = touched
            .iter()
            .zip(&expected)
            .map(|(blocks, disk)| {
                blocks
                    .iter()
                    .map(|b| (disk.len() as u64 - b * CBT_BLOCK).min(CBT_BLOCK))
                    .sum::<u64>()
            })
            .sum();
        assert_eq!(report.changed_bytes, changed, "round {round}");
        assert_eq!(
            report.nbd_bytes_read, changed,
            "round {round}: only the changed blocks are read"
        );
        assert!(report.nbd_bytes_read < total / 4);
        let rebuilt: u64 = report.disks.iter().map(|d| d.chunks_rebuilt).sum();
        let reused: u64 = report.disks.iter().map(|d| d.chunks_reused).sum();
        assert!(
            rebuilt > 0 && reused > 0,
            "rebuilt {rebuilt}, reused {reused}"
        );
        assert_ne!(report.manifest.id, previous_manifest.id);
        assert!(
            restored(&sim, &session, &repo, &report.manifest).await == expected,
            "round {round}: the restore point is the disks at snapshot time"
        );
        assert!(
            exported(&repo, &report.manifest).await == sorted(expected),
            "round {round}: exported as an XVA, the restore point is the same disks"
        );
        previous_manifest = report.manifest.clone();
    }

    // nothing written: nothing read
    let quiet = backup_vm_incremental(&session, &repo, &vm, &options)
        .await
        .unwrap();
    assert!(quiet.is_incremental());
    assert_eq!(quiet.nbd_bytes_read, 0);

    // one base per disk, data destroyed, linked to its disk; the sweeper leaves them
    let vdis = session.vdi().get_all_records().await.unwrap();
    let bases: Vec<_> = vdis
        .values()
        .filter(|v| v.tags.iter().any(|t| &**t == BASE_TAG))
        .collect();
    assert_eq!(bases.len(), 2);
    for base in &bases {
        assert_eq!(base.r#type.to_string(), "cbt_metadata");
        let source = base.other_config.get(BASE_OF_KEY).unwrap();
        let disk = vdis.values().find(|v| v.uuid == *source).unwrap();
        assert_eq!(disk.other_config.get(SOURCE_BASE_KEY), Some(&base.uuid));
    }
    assert_eq!(remove_leftover_snapshots(&session).await.unwrap(), 0);
    let record = session.vm().get_record(&vm).await.unwrap();
    assert!(record.snapshots.is_empty(), "no snapshot VM stays behind");
    let again = backup_vm_incremental(&session, &repo, &vm, &options)
        .await
        .unwrap();
    assert!(again.is_incremental());
}

/// Runs once so that the VM has bases, then `breaks` something and checks the next run reads
/// in full for `expect`, restores right, and the run after is incremental again.
async fn fallback_case<F, Fut>(name: &str, breaks: F, expect: impl Fn(&FullReason) -> bool)
where
    F: FnOnce(SimHandle, SessionHandle, Ref<Vm>, Repository) -> Fut,
    Fut: std::future::Future<Output = (SimHandle, Repository)>,
{
    let (sim, session) = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(&dir.path().join("repo")).await;
    let vm = vm_named(&session, "mail").await;
    let options = IncrementalOptions::default();
    backup_vm_incremental(&session, &repo, &vm, &options)
        .await
        .unwrap();
    let mut rng = Rng(7);
    random_writes(&sim, &session, &vm, &mut rng, 4).await;
    let (sim, repo) = breaks(sim, session.clone(), vm.clone(), repo).await;
    let expected = contents(&sim, &session, &vm).await;
    let report = backup_vm_incremental(&session, &repo, &vm, &options)
        .await
        .unwrap();
    let reasons = reasons(&report);
    assert!(report.bases_kept, "{name}: the full run keeps bases");
    assert!(
        reasons.iter().any(&expect),
        "{name}: expected a full read, got {reasons:?}"
    );
    assert!(!report.is_incremental(), "{name}");
    assert!(
        restored(&sim, &session, &repo, &report.manifest).await == expected,
        "{name}: the full run restores"
    );
    random_writes(&sim, &session, &vm, &mut rng, 2).await;
    let expected = contents(&sim, &session, &vm).await;
    let after = backup_vm_incremental(&session, &repo, &vm, &options)
        .await
        .unwrap();
    assert!(
        after.is_incremental(),
        "{name}: the run after is incremental again: {:?}",
        after.full_reasons()
    );
    assert!(restored(&sim, &session, &repo, &after.manifest).await == expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbt_turned_off_means_a_full_read_said_so() {
    fallback_case(
        "cbt off",
        |sim, session, vm, repo| async move {
            let was_on = disable_cbt(&session, &vm).await.unwrap();
            assert_eq!(was_on.len(), 2);
            (sim, repo)
        },
        |r| *r == FullReason::CbtOff,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_cbt_log_means_a_full_read_said_so() {
    fallback_case(
        "cbt reset",
        |sim, session, vm, repo| async move {
            disable_cbt(&session, &vm).await.unwrap();
            enable_cbt(&session, &vm).await.unwrap();
            (sim, repo)
        },
        |r| matches!(r, FullReason::CbtLogUnusable { error } if error.contains("SR_BACKEND_FAILURE_460")),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_base_means_a_full_read_said_so() {
    fallback_case(
        "base missing",
        |sim, session, vm, repo| async move {
            let (disk, _) = disks(&session, &vm).await.remove(0);
            let config = session.vdi().get_other_config(&disk).await.unwrap();
            let base_uuid = config.get(SOURCE_BASE_KEY).unwrap();
            let base = session.vdi().get_by_uuid(base_uuid).await.unwrap();
            session.vdi().destroy(&base).await.unwrap();
            (sim, repo)
        },
        |r| matches!(r, FullReason::BaseMissing { .. }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resized_disk_means_a_full_read_said_so() {
    fallback_case(
        "disk resized",
        |sim, session, vm, repo| async move {
            let (disk, _) = disks(&session, &vm).await.remove(0);
            let size = session.vdi().get_virtual_size(&disk).await.unwrap();
            session.vdi().resize(&disk, size + (4 << 20)).await.unwrap();
            (sim, repo)
        },
        |r| matches!(r, FullReason::DiskResized { from, to } if to - from == 4 << 20),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_disk_is_read_whole_said_so_and_the_others_incrementally() {
    fallback_case(
        "disk added",
        |sim, session, vm, repo| async move {
            let (first, _) = disks(&session, &vm).await.remove(0);
            let sr = session.vdi().get_sr(&first).await.unwrap();
            let mut record = session.vdi().get_record(&first).await.unwrap();
            record.name_label = "added".into();
            record.virtual_size = 8 << 20;
            record.sr = sr;
            record.other_config = SmallMap::default();
            record.uuid = "00000000-0000-4000-8000-0000000000ad".into();
            let vdi = session.vdi().create(&record).await.unwrap();
            let uuid = session.vdi().get_uuid(&vdi).await.unwrap();
            let mut vbd = session
                .vbd()
                .get_record(&session.vm().get_vbds(&vm).await.unwrap()[0])
                .await
                .unwrap();
            vbd.vdi = vdi;
            vbd.userdevice = "7".into();
            vbd.currently_attached = false;
            vbd.uuid = "00000000-0000-4000-8000-0000000000bd".into();
            session.vbd().create(&vbd).await.unwrap();
            sim.write_disk("primary", &uuid, 4096, b"a new disk")
                .unwrap();
            (sim, repo)
        },
        |r| *r == FullReason::DiskAdded,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_changed_blocks_refused_means_a_full_read_said_so() {
    for code in [
        ErrorCode::MessageMethodUnknown,
        ErrorCode::LicenceRestriction,
    ] {
        let expected = code.as_str().to_owned();
        fallback_case(
            "refused",
            |sim, session, vm, repo| async move {
                // the next two calls: one per disk
                sim.faults()
                    .fail_call("VDI.list_changed_blocks", 1, code.clone());
                sim.faults()
                    .fail_call("VDI.list_changed_blocks", 1, code.clone());
                let _ = (&session, &vm);
                (sim, repo)
            },
            |r| matches!(r, FullReason::ChangedBlocksRefused { code } if *code == expected),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_without_the_previous_restore_point_gets_a_full_run_said_so() {
    let other = tempfile::tempdir().unwrap();
    let path = other.path().join("repo");
    fallback_case(
        "previous restore point missing",
        |sim, _session, _vm, _repo| async move { (sim, new_repo(&path).await) },
        |r| matches!(r, FullReason::PreviousRestorePointMissing { .. }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nbd_without_tls_sends_the_vm_through_export_said_so_unless_plain_is_allowed() {
    // without TLS the demo's NBD network is `insecure_nbd`: the hosts refuse STARTTLS
    let (sim, session) = demo_with(false).await;
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(&dir.path().join("repo")).await;
    let vm = vm_named(&session, "mail").await;
    let options = IncrementalOptions::default();
    let expected = contents(&sim, &session, &vm).await;
    let report = backup_vm_incremental(&session, &repo, &vm, &options)
        .await
        .unwrap();
    match &report.fallback {
        Some(FullReason::NbdUnreachable { error }) => {
            assert!(error.contains("NBD_OPT_STARTTLS"), "{error}");
        }
        other => panic!("expected NbdUnreachable, got {other:?}"),
    }
    assert_eq!(report.nbd_bytes_read, 0);
    assert!(report.export_bytes_read > 0);
    assert!(
        report.bases_kept,
        "the exported snapshot's disks still become bases"
    );
    assert!(restored(&sim, &session, &repo, &report.manifest).await == expected);

    // plain NBD allowed: incremental from the bases the export run kept
    let plain = IncrementalOptions {
        allow_plain_nbd: true,
        ..IncrementalOptions::default()
    };
    random_writes(&sim, &session, &vm, &mut Rng(4), 3).await;
    let expected = contents(&sim, &session, &vm).await;
    let report = backup_vm_incremental(&session, &repo, &vm, &plain)
        .await
        .unwrap();
    assert!(report.is_incremental(), "{:?}", report.full_reasons());
    assert!(report.nbd_bytes_read > 0);
    assert!(restored(&sim, &session, &repo, &report.manifest).await == expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_nbd_connections_per_disk_share_the_reads_and_restore_byte_for_byte() {
    let (sim, session) = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(&dir.path().join("repo")).await;
    let vm = vm_named(&session, "mail").await;
    let options = IncrementalOptions {
        connections_per_disk: 3,
        in_flight: 4,
        ..IncrementalOptions::default()
    };
    let (_, first_disk) = disks(&session, &vm).await.remove(0);
    let mut rng = Rng(11);
    let data: Vec<u8> = (0..12 << 20).map(|_| rng.next() as u8).collect();
    sim.write_disk("primary", &first_disk, 0, &data).unwrap();

    let expected = contents(&sim, &session, &vm).await;
    let total: u64 = expected.iter().map(|d| d.len() as u64).sum();
    let full = backup_vm_incremental(&session, &repo, &vm, &options)
        .await
        .unwrap();
    assert_eq!(full.nbd_bytes_read, total);
    assert!(full.disks.iter().all(|d| d.nbd_connections == 3));
    assert!(restored(&sim, &session, &repo, &full.manifest).await == expected);

    random_writes(&sim, &session, &vm, &mut rng, 9).await;
    let expected = contents(&sim, &session, &vm).await;
    let next = backup_vm_incremental(&session, &repo, &vm, &options)
        .await
        .unwrap();
    assert!(next.is_incremental(), "{:?}", reasons(&next));
    assert_eq!(next.nbd_bytes_read, next.changed_bytes);
    assert!(restored(&sim, &session, &repo, &next.manifest).await == expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_transfer_resumes_from_the_last_chunk_stored() {
    let (sim, session) = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(&dir.path().join("repo")).await;
    let vm = vm_named(&session, "mail").await;
    let options = IncrementalOptions {
        state_dir: Some(dir.path().join("state")),
        ..IncrementalOptions::default()
    };
    // 16 MiB of data on the first disk, so that the cut falls among stored chunks
    let (_, first_disk) = disks(&session, &vm).await.remove(0);
    let mut rng = Rng(5);
    let data: Vec<u8> = (0..16 << 20).map(|_| rng.next() as u8).collect();
    sim.write_disk("primary", &first_disk, 0, &data).unwrap();
    let expected = contents(&sim, &session, &vm).await;
    let total: u64 = expected.iter().map(|d| d.len() as u64).sum();
    // the first disk's connection drops after 12 MiB
    sim.faults().cut_next_download_after(12 << 20);
    let err = backup_vm_incremental(&session, &repo, &vm, &options)
        .await
        .unwrap_err();
    assert!(matches!(err, xapi_backup::EngineError::Nbd { .. }), "{err}");
    let record = session.vm().get_record(&vm).await.unwrap();
    assert_eq!(
        record.snapshots.len(),
        1,
        "the snapshot is kept for the resume"
    );
    assert_eq!(remove_leftover_snapshots(&session).await.unwrap(), 0);

    let report = backup_vm_incremental(&session, &repo, &vm, &options)
        .await
        .unwrap();
    assert!(report.resumed);
    let resumed: u64 = report.disks.iter().map(|d| d.chunks_resumed).sum();
    assert!(resumed >= 4, "chunks taken over: {resumed}");
    assert_eq!(
        report.nbd_bytes_read + resumed * (1 << 20),
        total,
        "the resumed run reads only what was not stored"
    );
    assert!(restored(&sim, &session, &repo, &report.manifest).await == expected);
    let record = session.vm().get_record(&vm).await.unwrap();
    assert!(record.snapshots.is_empty());

    // an interrupted incremental run resumes too
    random_writes(&sim, &session, &vm, &mut Rng(11), 40).await;
    let expected = contents(&sim, &session, &vm).await;
    sim.faults().cut_next_download_after(200 << 10);
    let err = backup_vm_incremental(&session, &repo, &vm, &options).await;
    let report = match err {
        Err(_) => backup_vm_incremental(&session, &repo, &vm, &options)
            .await
            .unwrap(),
        // the changed blocks of the first disk were fewer than the cut
        Ok(report) => report,
    };
    assert!(report.is_incremental(), "{:?}", report.full_reasons());
    assert!(restored(&sim, &session, &repo, &report.manifest).await == expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requiring_cbt_leaves_untracked_disks_to_full_reads_without_bases() {
    let (sim, session) = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(&dir.path().join("repo")).await;
    let vm = vm_named(&session, "mail").await;
    let options = IncrementalOptions {
        cbt: CbtPolicy::Require,
        ..IncrementalOptions::default()
    };
    let expected = contents(&sim, &session, &vm).await;
    let report = backup_vm_incremental(&session, &repo, &vm, &options)
        .await
        .unwrap();
    assert!(reasons(&report).iter().all(|r| *r == FullReason::CbtOff));
    for (vdi, _) in disks(&session, &vm).await {
        assert!(!session.vdi().get_cbt_enabled(&vdi).await.unwrap());
    }
    let vdis = session.vdi().get_all_records().await.unwrap();
    assert!(
        !vdis
            .values()
            .any(|v| v.tags.iter().any(|t| &**t == BASE_TAG)),
        "no base without CBT"
    );
    assert!(restored(&sim, &session, &repo, &report.manifest).await == expected);
}

/// The blocks set in a `list_changed_blocks` answer.
fn blocks_of(answer: &str, size: u64) -> Vec<u64> {
    let changed = ChangedBlocks::decode(answer, size).unwrap();
    (0..size.div_ceil(CBT_BLOCK))
        .filter(|b| changed.is_changed(*b))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbt_follows_vdi_snapshots_and_resizes_not_clones_and_a_destroyed_base_still_compares() {
    let (sim, session) = demo().await;
    let vm = vm_named(&session, "mail").await;
    let (disk, uuid) = disks(&session, &vm).await.remove(0);
    session.vdi().enable_cbt(&disk).await.unwrap();
    let first = session
        .vdi()
        .snapshot(&disk, &SmallMap::default())
        .await
        .unwrap();
    assert!(session.vdi().get_cbt_enabled(&first).await.unwrap());
    sim.write_disk("primary", &uuid, 3 * CBT_BLOCK + 5, b"x")
        .unwrap();

    // a clone is a plain disk: no CBT, unrelated to the chain
    let clone = session
        .vdi()
        .clone(&disk, &SmallMap::default())
        .await
        .unwrap();
    assert!(!session.vdi().get_cbt_enabled(&clone).await.unwrap());
    let err = session
        .vdi()
        .list_changed_blocks(&first, &clone)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("SR_BACKEND_FAILURE_460"), "{err}");

    // grown: the bitmap covers the new size, writes in the new part show
    let size = u64::try_from(session.vdi().get_virtual_size(&disk).await.unwrap()).unwrap();
    session
        .vdi()
        .resize(&disk, i64::try_from(size + (1 << 20)).unwrap())
        .await
        .unwrap();
    sim.write_disk("primary", &uuid, size + CBT_BLOCK, b"y")
        .unwrap();
    let second = session
        .vdi()
        .snapshot(&disk, &SmallMap::default())
        .await
        .unwrap();
    let answer = session
        .vdi()
        .list_changed_blocks(&first, &second)
        .await
        .unwrap();
    let grown = size + (1 << 20);
    assert_eq!(blocks_of(&answer, grown), vec![3, size / CBT_BLOCK + 1]);

    // data destroyed: not readable (NBD, raw export), still comparable
    session.vdi().data_destroy(&first).await.unwrap();
    let err = session.vdi().get_nbd_info(&first).await.unwrap_err();
    assert!(err.is_code(&ErrorCode::VdiIncompatibleType), "{err}");
    let download = session
        .get(
            "/export_raw_vdi",
            &[("vdi", first.as_str()), ("format", "raw")],
            None,
        )
        .await;
    assert!(download.is_err(), "a cbt_metadata VDI is not exported");
    let again = session
        .vdi()
        .list_changed_blocks(&first, &second)
        .await
        .unwrap();
    assert_eq!(again, answer);
    // a VDI compared with itself is refused as SM does
    let err = session
        .vdi()
        .list_changed_blocks(&second, &second)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("SR_BACKEND_FAILURE_460"), "{err}");
}
