//! An incremental run of one VM: CBT on its disks, a tagged snapshot, the VM's metadata from
//! `/export_metadata` of the snapshot, each disk read over NBD (its changed blocks since its
//! base, or whole when it cannot be: the reason in the report), the manifest, then the
//! snapshot's disks kept as the next bases and the old bases destroyed.
//!
//! Every restore point is a full one: its `ova.xml` is the snapshot's and every chunk of every
//! disk is referenced, so `import::restore_vm` restores it unchanged. An interrupted run keeps
//! its snapshot and its progress (with [`IncrementalOptions::state_dir`]) and the next run
//! continues from the last chunk stored.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use xapi_core::api::{Vdi, Vm, VmRecord};
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

use super::base::{BasePlan, forget_base, keep_as_base, plan_disk};
use super::nbd::{NbdClient, NbdTarget, connect_any};
use super::report::{DiskMode, FullReason, IncrementalReport};
use super::resume::{ResumeFile, ResumeState};
use super::transfer::{DiskJob, Progress, Source, transfer_disk};
use crate::engine_error::{EngineError, backup, xapi};
use crate::format::ova_xml::OvaXml;
use crate::format::xva::{ReadOptions, XvaReader};
use crate::repo::{
    Manifest, Repository, RestorePointInfo, RestorePointKind, SourceInfo, StreamSpec, VmIdentity,
};

/// The tag on the snapshots incremental runs take (not [`crate::export::SNAPSHOT_TAG`]: an
/// interrupted run's snapshot is kept for its resume, and the next incremental run of the VM
/// removes it if it cannot resume).
pub const INCREMENTAL_SNAPSHOT_TAG: &str = "xapi-backup:incremental";

/// What to do about disks without CBT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CbtPolicy {
    /// Enable CBT on the VM's disks where it is off (the run is then a full one for them).
    #[default]
    Enable,
    /// Leave CBT as it is: disks without it are read whole every run and keep no base.
    Require,
}

/// How to run.
#[derive(Debug, Clone)]
pub struct IncrementalOptions {
    /// Disks without CBT: enable it, or leave them to full reads.
    pub cbt: CbtPolicy,
    /// Where resume state is kept (one small file per VM). Without it an interrupted run's
    /// snapshot is destroyed and the next run starts afresh.
    pub state_dir: Option<PathBuf>,
    /// The job recorded in the restore point.
    pub job_id: Option<String>,
    /// NBD read requests in flight per connection.
    pub in_flight: usize,
    /// NBD connections per disk (at least 1): each reads its share of every batch of ranges
    /// at the same time, for large full runs where one connection's round trips are the limit.
    pub connections_per_disk: usize,
    /// Read over plain NBD when a host refuses TLS (`NBD_OPT_STARTTLS`: its NBD network has
    /// the `insecure_nbd` purpose). Off by default: disk contents then cross the network in
    /// clear, and a run that cannot use TLS goes through `GET /export` instead (reported as
    /// [`FullReason::NbdUnreachable`]).
    pub allow_plain_nbd: bool,
}

impl Default for IncrementalOptions {
    fn default() -> Self {
        Self {
            cbt: CbtPolicy::Enable,
            state_dir: None,
            job_id: None,
            in_flight: 16,
            connections_per_disk: 1,
            allow_plain_nbd: false,
        }
    }
}

/// Backs up `vm` into `repo` from its changed blocks where it can, in full where it cannot
/// (each reason in the report).
pub async fn backup_vm_incremental(
    session: &SessionHandle,
    repo: &Repository,
    vm: &Ref<Vm>,
    options: &IncrementalOptions,
) -> Result<IncrementalReport, EngineError> {
    // boxed: the generated calls' futures are large
    Box::pin(run(session, repo, vm, options)).await
}

/// One disk of the snapshot, as the run sees it.
struct Disk {
    /// The export id in `ova.xml` (the stream key).
    key: String,
    name: Option<String>,
    size: u64,
    snapshot_vdi: Ref<Vdi>,
    snapshot_uuid: String,
    /// The live disk it is a snapshot of (null for a suspend image).
    source: Ref<Vdi>,
    /// Whether the live disk tracks changes (after the run's own enabling).
    tracked: bool,
    plan: BasePlan,
}

async fn run(
    session: &SessionHandle,
    repo: &Repository,
    vm: &Ref<Vm>,
    options: &IncrementalOptions,
) -> Result<IncrementalReport, EngineError> {
    let record = session
        .vm()
        .get_record(vm)
        .await
        .map_err(xapi("VM.get_record"))?;
    let resume_file = options
        .state_dir
        .as_deref()
        .map(|dir| ResumeFile::new(dir, &record.uuid));
    let started = Instant::now();
    let (snapshot, mut state) =
        find_or_take_snapshot(session, vm, &record, resume_file.as_ref(), options).await?;
    let snapshot_seconds = started.elapsed().as_secs_f64();
    let resumed = state.stored.values().any(|chunks| !chunks.is_empty());
    let result = Box::pin(back_up_snapshot(
        session,
        repo,
        &record,
        &snapshot,
        &mut state,
        resume_file.as_ref(),
        options,
    ))
    .await;
    match result {
        Ok(mut report) => {
            report.resumed = resumed;
            report.snapshot_seconds = snapshot_seconds;
            if let Some(file) = &resume_file {
                file.remove().await?;
            }
            Ok(report)
        }
        Err(error) => {
            if resume_file.is_none()
                && let Err(cleanup) = destroy_snapshot(session, &snapshot, &[]).await
            {
                tracing::warn!(error = %cleanup, "could not remove the incremental snapshot; the next run will");
            }
            Err(error)
        }
    }
}

/// The snapshot to read: the one an interrupted run left (when its state says so and it still
/// exists), or a new one; other leftover incremental snapshots of the VM are destroyed.
async fn find_or_take_snapshot(
    session: &SessionHandle,
    vm: &Ref<Vm>,
    record: &VmRecord,
    resume_file: Option<&ResumeFile>,
    options: &IncrementalOptions,
) -> Result<(Ref<Vm>, ResumeState), EngineError> {
    let saved = match resume_file {
        Some(file) => file.load().await?,
        None => None,
    };
    let mut resumable = None;
    for snapshot in &record.snapshots {
        let Ok(snap) = session.vm().get_record(snapshot).await else {
            continue;
        };
        if !snap.tags.iter().any(|t| &**t == INCREMENTAL_SNAPSHOT_TAG) {
            continue;
        }
        match &saved {
            Some(state) if state.snapshot_uuid == *snap.uuid && resumable.is_none() => {
                resumable = Some((snapshot.clone(), state.clone()));
            }
            _ => {
                tracing::info!(snapshot = %snap.uuid, "removing a leftover incremental snapshot");
                destroy_snapshot(session, snapshot, &[]).await?;
            }
        }
    }
    if let Some(found) = resumable {
        tracing::info!("resuming an interrupted incremental run");
        return Ok(found);
    }
    if let Some(file) = resume_file {
        file.remove().await?;
    }
    if options.cbt == CbtPolicy::Enable {
        // before the snapshot, so that the snapshot carries CBT metadata
        for vdi in super::cbt::disks_of(session, vm).await? {
            if !session
                .vdi()
                .get_cbt_enabled(&vdi)
                .await
                .map_err(xapi("VDI.get_cbt_enabled"))?
            {
                session
                    .vdi()
                    .add_to_other_config(&vdi, CBT_ENABLED_BY_RUN, "true")
                    .await
                    .or_else(ignore_duplicate)
                    .map_err(xapi("VDI.add_to_other_config"))?;
                session
                    .vdi()
                    .enable_cbt(&vdi)
                    .await
                    .map_err(xapi("VDI.enable_cbt"))?;
            }
        }
    }
    let snapshot = session
        .vm()
        .snapshot(
            vm,
            &format!("{} (xapi-backup incremental)", &*record.name_label),
            &[],
        )
        .await
        .map_err(xapi("VM.snapshot"))?;
    session
        .vm()
        .add_tags(&snapshot, INCREMENTAL_SNAPSHOT_TAG)
        .await
        .map_err(xapi("VM.add_tags"))?;
    let snapshot_uuid = session
        .vm()
        .get_uuid(&snapshot)
        .await
        .map_err(xapi("VM.get_uuid"))?;
    let state = ResumeState {
        vm_uuid: record.uuid.to_string(),
        snapshot_uuid: snapshot_uuid.to_string(),
        stored: BTreeMap::new(),
    };
    if let Some(file) = resume_file {
        file.save(&state).await?;
    }
    Ok((snapshot, state))
}

/// `other_config` key a run sets on a disk whose CBT it turned on: that disk's next read is a
/// full one for the reason [`FullReason::CbtOff`], also when the run is resumed.
pub(crate) const CBT_ENABLED_BY_RUN: &str = "xapi-backup:cbt-enabled-by-run";

fn ignore_duplicate(error: xapi_core::Error) -> Result<(), xapi_core::Error> {
    if error.is_code(&xapi_core::api::ErrorCode::MapDuplicateKey) {
        Ok(())
    } else {
        Err(error)
    }
}

/// The snapshot's `ova.xml` from `/export_metadata` (no snapshots of it).
async fn snapshot_metadata(
    session: &SessionHandle,
    snapshot: &Ref<Vm>,
) -> Result<OvaXml, EngineError> {
    let download = session
        .get(
            "/export_metadata",
            &[("ref", snapshot.as_str()), ("export_snapshots", "false")],
            None,
        )
        .await
        .map_err(xapi("GET /export_metadata"))?;
    let mut reader = XvaReader::open(download.into_async_read(), ReadOptions::default())
        .await
        .map_err(backup("reading the snapshot's metadata"))?;
    reader
        .finish_metadata_only()
        .await
        .map_err(backup("reading the end of the snapshot's metadata"))?;
    Ok(reader.ova_xml().clone())
}

#[allow(clippy::too_many_lines)] // one sequence of steps, each a call or two
async fn back_up_snapshot(
    session: &SessionHandle,
    repo: &Repository,
    record: &VmRecord,
    snapshot: &Ref<Vm>,
    state: &mut ResumeState,
    resume_file: Option<&ResumeFile>,
    options: &IncrementalOptions,
) -> Result<IncrementalReport, EngineError> {
    let ova = snapshot_metadata(session, snapshot).await?;
    let restore_points = repo
        .list_subject(RestorePointKind::Vm, &record.uuid)
        .await
        .map_err(backup("listing the VM's restore points"))?;
    let mut disks = Vec::new();
    for view in ova.disks().map_err(|e| backup("ova.xml disks")(e.into()))? {
        let uuid = view.uuid.ok_or_else(|| {
            EngineError::Unexpected(format!("ova.xml: disk {} has no uuid", view.id))
        })?;
        let snapshot_vdi = session
            .vdi()
            .get_by_uuid(uuid)
            .await
            .map_err(xapi("VDI.get_by_uuid"))?;
        let snap = session
            .vdi()
            .get_record(&snapshot_vdi)
            .await
            .map_err(xapi("VDI.get_record"))?;
        let (tracked, plan) = if snap.snapshot_of.is_null() {
            (
                false,
                BasePlan::Full {
                    reason: FullReason::CbtOff,
                    base: None,
                },
            )
        } else {
            let source = session
                .vdi()
                .get_record(&snap.snapshot_of)
                .await
                .map_err(xapi("VDI.get_record"))?;
            let enabled_by_run = source.other_config.contains_key(CBT_ENABLED_BY_RUN);
            let cbt_was_off = !snap.cbt_enabled || enabled_by_run;
            let plan = plan_disk(
                session,
                &restore_points,
                &source,
                (&snapshot_vdi, &snap),
                cbt_was_off,
            )
            .await?;
            (snap.cbt_enabled, plan)
        };
        disks.push(Disk {
            key: view.id.to_owned(),
            name: view.name_label.map(str::to_owned),
            size: view.virtual_size,
            snapshot_vdi,
            snapshot_uuid: uuid.to_owned(),
            source: snap.snapshot_of.clone(),
            tracked,
            plan,
        });
    }
    // a disk without a base while others have one was added since the last run
    let any_base = disks.iter().any(|d| {
        matches!(
            d.plan,
            BasePlan::Changed { .. } | BasePlan::Full { base: Some(_), .. }
        )
    });
    for disk in &mut disks {
        if let BasePlan::Full { reason, base: None } = &mut disk.plan
            && *reason == FullReason::FirstRun
            && any_base
        {
            *reason = FullReason::DiskAdded;
        }
    }

    let mut info = RestorePointInfo::new(RestorePointKind::Vm, record.uuid.to_string());
    info.job_id.clone_from(&options.job_id);
    info.source = SourceInfo::default();
    let snapshot_record = session
        .vm()
        .get_record(snapshot)
        .await
        .map_err(xapi("VM.get_record"))?;
    info.vm = Some(VmIdentity {
        uuid: record.uuid.to_string(),
        name_label: record.name_label.to_string(),
        snapshot_uuid: Some(snapshot_record.uuid.to_string()),
        snapshot_name: Some(snapshot_record.name_label.to_string()),
        snapshot_time: None,
    });

    let started = Instant::now();
    let connections = options.connections_per_disk.max(1);
    let clients = match connect_disks(session, &disks, options.allow_plain_nbd, connections).await {
        Ok(clients) => clients,
        Err(error) => {
            // no NBD: the whole VM through GET /export (its disks still become bases)
            tracing::warn!(%error, "NBD unreachable; backing up through GET /export");
            let (manifest, bytes) = crate::export::export_snapshot_once(
                session,
                repo,
                record,
                snapshot,
                options.job_id.as_deref(),
            )
            .await?;
            let transfer_seconds = started.elapsed().as_secs_f64();
            let bases_kept = finish(session, snapshot, &disks, &manifest).await;
            return Ok(IncrementalReport {
                snapshot_seconds: 0.0,
                transfer_seconds,
                manifest,
                fallback: Some(FullReason::NbdUnreachable { error }),
                disks: Vec::new(),
                nbd_bytes_read: 0,
                export_bytes_read: bytes,
                changed_bytes: 0,
                resumed: false,
                bases_kept,
            });
        }
    };

    let mut point = repo
        .begin(info)
        .await
        .map_err(backup("starting the restore point"))?;
    point
        .write_ova_xml(ova.to_xml().as_bytes())
        .await
        .map_err(backup("storing ova.xml"))?;
    let mut progress = Progress {
        state,
        file: resume_file,
        last_save: Instant::now(),
    };
    let mut reports = Vec::new();
    for (disk, mut connections) in disks.iter().zip(clients) {
        let mut spec = StreamSpec::disk(disk.key.clone(), disk.size);
        spec.vdi_uuid = Some(disk.snapshot_uuid.clone());
        spec.name.clone_from(&disk.name);
        let (mode, source) = match &disk.plan {
            BasePlan::Changed {
                changed,
                previous,
                key,
                ..
            } => (
                DiskMode::Incremental,
                Source::Changed {
                    changed: changed.clone(),
                    previous: previous.clone(),
                    key: key.clone(),
                },
            ),
            BasePlan::Full { reason, .. } => (
                DiskMode::Full {
                    reason: reason.clone(),
                },
                Source::Full,
            ),
        };
        let resumed = progress.state.stored_chunks(&disk.snapshot_uuid);
        let job = DiskJob { spec, mode, source };
        let report = transfer_disk(
            repo,
            &mut point,
            &mut connections,
            job,
            &resumed,
            &mut progress,
            options.in_flight,
        )
        .await?;
        for client in connections {
            if let Err(error) = client.disconnect().await {
                tracing::debug!(%error, "closing an NBD connection");
            }
        }
        reports.push(report);
    }
    let manifest = point
        .commit()
        .await
        .map_err(backup("writing the manifest"))?;
    let transfer_seconds = started.elapsed().as_secs_f64();
    let bases_kept = finish(session, snapshot, &disks, &manifest).await;
    Ok(IncrementalReport {
        snapshot_seconds: 0.0,
        transfer_seconds,
        nbd_bytes_read: reports.iter().map(|d| d.nbd_bytes_read).sum(),
        changed_bytes: reports.iter().map(|d| d.changed_bytes).sum(),
        manifest,
        fallback: None,
        disks: reports,
        export_bytes_read: 0,
        resumed: false,
        bases_kept,
    })
}

/// `connections` NBD connections per disk, each to the first host `VDI.get_nbd_info` lists that
/// answers; the reason when a disk has none.
async fn connect_disks(
    session: &SessionHandle,
    disks: &[Disk],
    allow_plain: bool,
    connections: usize,
) -> Result<Vec<Vec<NbdClient>>, String> {
    let mut clients = Vec::with_capacity(disks.len());
    for disk in disks {
        let infos = session
            .vdi()
            .get_nbd_info(&disk.snapshot_vdi)
            .await
            .map_err(|e| format!("VDI.get_nbd_info of {}: {e}", disk.snapshot_uuid))?;
        if infos.is_empty() {
            return Err(format!(
                "VDI.get_nbd_info of {}: no host serves NBD (no network has the nbd or insecure_nbd purpose)",
                disk.snapshot_uuid
            ));
        }
        let targets = infos
            .iter()
            .map(NbdTarget::from_info)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let mut disk_clients = Vec::with_capacity(connections);
        for _ in 0..connections {
            disk_clients.push(connect_one(&targets, allow_plain, &disk.snapshot_uuid).await?);
        }
        clients.push(disk_clients);
    }
    Ok(clients)
}

/// One connection to the first of `targets` that answers, over TLS, or plain where allowed.
async fn connect_one(
    targets: &[NbdTarget],
    allow_plain: bool,
    disk: &str,
) -> Result<NbdClient, String> {
    match connect_any(targets).await {
        Ok(client) => Ok(client),
        Err(error) if allow_plain => {
            tracing::warn!(%error, disk, "NBD over TLS failed; reading the disk over PLAIN NBD as allowed (its contents cross the network in clear)");
            let plain: Vec<NbdTarget> = targets
                .iter()
                .map(|t| NbdTarget {
                    tls: None,
                    ..t.clone()
                })
                .collect();
            connect_any(&plain).await.map_err(|e| e.to_string())
        }
        Err(error) => Err(error.to_string()),
    }
}

/// After the manifest: the snapshot VM destroyed, each tracked disk's snapshot kept as its
/// base (the old base destroyed), the others destroyed. Whether every base was kept (a
/// failure is logged: that disk's next run is a full one).
async fn finish(
    session: &SessionHandle,
    snapshot: &Ref<Vm>,
    disks: &[Disk],
    manifest: &Manifest,
) -> bool {
    let keep: Vec<&Disk> = disks.iter().filter(|d| d.tracked).collect();
    let kept_vdis: Vec<Ref<Vdi>> = keep.iter().map(|d| d.snapshot_vdi.clone()).collect();
    if let Err(error) = destroy_snapshot(session, snapshot, &kept_vdis).await {
        tracing::warn!(%error, "could not remove the incremental snapshot");
    }
    for disk in disks.iter().filter(|d| !d.tracked && !d.source.is_null()) {
        // no CBT any more: its old base serves nothing
        if let BasePlan::Full {
            base: Some(old), ..
        } = &disk.plan
        {
            forget_base(session, old).await;
            let _ = session
                .vdi()
                .remove_from_other_config(&disk.source, super::base::SOURCE_BASE_KEY)
                .await;
        }
    }
    let mut all = true;
    for disk in keep {
        let old = match &disk.plan {
            BasePlan::Changed { base, .. } => Some(base),
            BasePlan::Full { base, .. } => base.as_ref(),
        };
        let kept = keep_as_base(
            session,
            &disk.source,
            &disk.snapshot_vdi,
            manifest.id.as_str(),
            old,
        )
        .await;
        match kept {
            Ok(()) => {
                let _ = session
                    .vdi()
                    .remove_from_other_config(&disk.source, CBT_ENABLED_BY_RUN)
                    .await;
            }
            Err(error) => {
                tracing::warn!(%error, disk = %disk.key, "could not keep the snapshot as the next base");
                forget_base(session, &disk.snapshot_vdi).await;
                all = false;
            }
        }
    }
    all
}

/// Destroys a snapshot VM and its disks, except those in `keep`.
async fn destroy_snapshot(
    session: &SessionHandle,
    snapshot: &Ref<Vm>,
    keep: &[Ref<Vdi>],
) -> Result<(), EngineError> {
    let vdis: Vec<Ref<Vdi>> = super::cbt::disks_of(session, snapshot)
        .await?
        .into_iter()
        .filter(|vdi| !keep.contains(vdi))
        .collect();
    session
        .vm()
        .destroy(snapshot)
        .await
        .map_err(xapi("VM.destroy"))?;
    for vdi in vdis {
        session
            .vdi()
            .destroy(&vdi)
            .await
            .map_err(xapi("VDI.destroy"))?;
    }
    Ok(())
}
