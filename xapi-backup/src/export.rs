//! Backing up one VM into a repository: pre-snapshot hook, `VM.snapshot` (as a task, disks the
//! user excludes passed as `ignore_vdis`), post-snapshot hook, `GET /export` of the snapshot,
//! every chunk verified as it passes (the XVA reader checks each chunk's checksum member),
//! chunks into the repository (deduplicated), the VM's `ova.xml`, the manifest last; the
//! snapshot and its disks destroyed afterwards, also when the backup fails or is cancelled.
//!
//! Snapshots this module makes carry the tag [`SNAPSHOT_TAG`], so that a later run can find
//! and remove any that a crash left behind ([`remove_leftover_snapshots`]).
//!
//! Errors safe to retry ([`crate::retry`]) start the backup again from a new snapshot, after a
//! backoff; a snapshot call whose answer was lost is checked first (a snapshot of the VM
//! bearing this attempt's unique name), so that it is never taken twice. A retried export
//! begins a new restore point: the failed attempt's never got a manifest, so it is never
//! listed (its chunks are orphans that prune removes, or that the next attempt reuses).
//!
//! Special VMs: a VM with no disks gets a restore point holding its `ova.xml` only (and a
//! warning); CD drives are not exported by xapi (the ISO stays in its library; a warning says
//! so); a suspended VM is backed up through a snapshot of its disks like a halted one: its
//! memory image is not kept, and it restores halted (a warning says so).

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use xapi_core::api::{Task, VbdType, Vdi, Vm, VmPowerState, VmRecord};
use xapi_core::client::{SessionHandle, TaskHandle};
use xapi_core::wire::Ref;

pub use crate::engine_error::EngineError;
use crate::engine_error::{backup, xapi};
use crate::format::xva::{DiskChunk, ReadOptions, XvaReader};
use crate::hooks::{Hook, HookContext};
use crate::repo::{
    Manifest, Repository, RestorePointInfo, RestorePointKind, SourceInfo, VmIdentity,
};
use crate::retry::{EXPORT_OPEN_STEP, EXPORT_READ_STEP, Jitter, RetryPolicy, is_retryable};
use crate::throttle::Throttle;
use crate::xva_io::ChunkPacing;

/// The tag on every snapshot a backup takes.
pub const SNAPSHOT_TAG: &str = "xapi-backup:snapshot";

/// The phase a VM's backup is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Hooks and `VM.snapshot`.
    Snapshot,
    /// `GET /export` into the repository.
    Export,
    /// The manifest is written.
    Commit,
    /// The snapshot is destroyed.
    Cleanup,
    /// Waiting before the next attempt.
    Backoff,
}

/// Progress of one VM's backup.
#[derive(Debug, Clone, Serialize)]
pub struct VmProgress {
    /// The VM's UUID.
    pub uuid: String,
    /// The VM's name.
    pub name_label: String,
    /// What it is doing.
    pub phase: Phase,
    /// The attempt (1-based).
    pub attempt: u32,
    /// Disk bytes read from the export so far (non-zero chunks).
    pub bytes_read: u64,
    /// How far the export is through the VM's disks (bytes of virtual size).
    pub position: u64,
    /// The VM's exported disks' virtual size, in bytes.
    pub total: u64,
    /// Disk bytes read per second, this attempt.
    pub rate: f64,
    /// Seconds left, from the position and the rate.
    pub eta_seconds: Option<f64>,
}

/// Where progress goes.
pub type ProgressSink = Arc<dyn Fn(VmProgress) + Send + Sync>;

/// How the export stream travels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "transport")]
pub enum Transport {
    /// HTTPS on the session's connection, verified like the XAPI calls (the default).
    #[default]
    Https,
    /// Plain HTTP to the same host on `port` (80 on a real host), for a trusted backup network:
    /// cheaper, but the data and the session reference in the request's cookie travel in the
    /// clear. XAPI calls stay on verified TLS; every chunk's checksum is still verified.
    PlainHttp {
        /// The host's plain-HTTP port.
        port: u16,
    },
}

/// Options of one VM's backup.
#[derive(Clone, Default)]
pub struct BackupOptions {
    /// The job's id, recorded in the manifest.
    pub job_id: Option<String>,
    /// VDIs (by UUID) left out of the snapshot (`ignore_vdis`) and so of the backup.
    pub exclude_vdis: Vec<String>,
    /// Run before the snapshot.
    pub pre_snapshot: Option<Hook>,
    /// Run after the snapshot, before the export.
    pub post_snapshot: Option<Hook>,
    /// Retries of errors safe to retry.
    pub retry: RetryPolicy,
    /// Cancels the backup: the XAPI task under way is cancelled, the export stream dropped,
    /// the snapshot destroyed; the backup ends with [`EngineError::Cancelled`].
    pub cancel: CancellationToken,
    /// A bandwidth limit shared with other backups.
    pub throttle: Option<Throttle>,
    /// How the export stream travels.
    pub transport: Transport,
    /// Hears the backup's progress.
    pub progress: Option<ProgressSink>,
}

impl std::fmt::Debug for BackupOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupOptions")
            .field("job_id", &self.job_id)
            .field("exclude_vdis", &self.exclude_vdis)
            .field("pre_snapshot", &self.pre_snapshot)
            .field("post_snapshot", &self.post_snapshot)
            .field("retry", &self.retry)
            .field("cancelled", &self.cancel.is_cancelled())
            .field("throttle", &self.throttle)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

/// Seconds spent in each phase, over all attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PhaseTimes {
    /// Hooks and snapshot.
    pub snapshot: f64,
    /// Export into the repository.
    pub export: f64,
    /// Manifest.
    pub commit: f64,
    /// Snapshot removal.
    pub cleanup: f64,
}

/// What a backup of one VM did.
#[derive(Debug, Clone)]
pub struct VmBackup {
    /// The restore point.
    pub manifest: Manifest,
    /// Bytes of disk data read from the export (non-zero chunks).
    pub bytes_read: u64,
    /// The exported disks' virtual size.
    pub virtual_size: u64,
    /// Whether the snapshot was destroyed (a failure to destroy it is logged, and the next
    /// run's sweep removes it).
    pub snapshot_removed: bool,
    /// Attempts made (1: no retry).
    pub attempts: u32,
    /// Things worth knowing: retried errors, special VMs, leftovers.
    pub warnings: Vec<String>,
    /// Time per phase.
    pub times: PhaseTimes,
}

/// A backup that failed: the error, with what the attempts learnt.
#[derive(Debug)]
pub struct BackupFailure {
    /// The last attempt's error.
    pub error: EngineError,
    /// Attempts made.
    pub attempts: u32,
    /// Retried errors and other warnings.
    pub warnings: Vec<String>,
}

/// Backs up `vm` into `repo`: snapshot (tagged), export, verified chunks into the repository,
/// manifest last, snapshot destroyed with its disks whatever happens. Errors safe to retry are
/// retried with [`RetryPolicy::default`].
pub async fn backup_vm(
    session: &SessionHandle,
    repo: &Repository,
    vm: &Ref<Vm>,
    job_id: Option<&str>,
) -> Result<VmBackup, EngineError> {
    let options = BackupOptions {
        job_id: job_id.map(str::to_owned),
        ..BackupOptions::default()
    };
    backup_vm_with(session, repo, vm, &options)
        .await
        .map_err(|failure| failure.error)
}

/// [`backup_vm`] with hooks, excluded disks, retries, cancellation, a bandwidth limit, a
/// transport and progress.
pub async fn backup_vm_with(
    session: &SessionHandle,
    repo: &Repository,
    vm: &Ref<Vm>,
    options: &BackupOptions,
) -> Result<VmBackup, BackupFailure> {
    // boxed: the generated calls' futures are large
    Box::pin(with_retries(session, repo, vm, options)).await
}

/// What every attempt of one VM's backup shares.
struct Context<'a> {
    session: &'a SessionHandle,
    repo: &'a Repository,
    vm: &'a Ref<Vm>,
    record: &'a VmRecord,
    options: &'a BackupOptions,
    /// The VDIs left out of the snapshot.
    ignore: Vec<Ref<Vdi>>,
}

impl Context<'_> {
    fn hook_context(&self, snapshot_uuid: Option<String>) -> HookContext {
        HookContext {
            vm_uuid: (*self.record.uuid).to_owned(),
            vm_name: (*self.record.name_label).to_owned(),
            snapshot_uuid,
        }
    }

    fn emit(&self, phase: Phase, attempt: u32, meter: &Meter) {
        let Some(sink) = &self.options.progress else {
            return;
        };
        let elapsed = meter.started.elapsed().as_secs_f64().max(1e-6);
        #[allow(clippy::cast_precision_loss)]
        let (rate, position, total) = (
            meter.bytes_read as f64 / elapsed,
            meter.position as f64,
            meter.total as f64,
        );
        let eta_seconds = (position > 0.0 && phase == Phase::Export)
            .then(|| (total - position).max(0.0) / (position / elapsed));
        sink(VmProgress {
            uuid: (*self.record.uuid).to_owned(),
            name_label: (*self.record.name_label).to_owned(),
            phase,
            attempt,
            bytes_read: meter.bytes_read,
            position: meter.position,
            total: meter.total,
            rate,
            eta_seconds,
        });
    }

    /// Wait for `work` unless the backup is cancelled first.
    async fn unless_cancelled<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        tokio::select! {
            biased;
            () = self.options.cancel.cancelled() => Err(EngineError::Cancelled),
            result = work => result,
        }
    }
}

/// How far an attempt's export is.
struct Meter {
    started: Instant,
    bytes_read: u64,
    position: u64,
    total: u64,
}

impl Meter {
    fn new(total: u64) -> Self {
        Self {
            started: Instant::now(),
            bytes_read: 0,
            position: 0,
            total,
        }
    }
}

async fn with_retries(
    session: &SessionHandle,
    repo: &Repository,
    vm: &Ref<Vm>,
    options: &BackupOptions,
) -> Result<VmBackup, BackupFailure> {
    let mut warnings = Vec::new();
    let fail = |error, attempts, warnings| BackupFailure {
        error,
        attempts,
        warnings,
    };
    let mut prepared: Option<(VmRecord, Vec<Ref<Vdi>>, u64)> = None;
    let mut rng = Jitter::new(options.retry.seed);
    let mut times = PhaseTimes::default();
    let mut attempt = 1;
    loop {
        if options.cancel.is_cancelled() {
            return Err(fail(EngineError::Cancelled, attempt, warnings));
        }
        let result = async {
            if prepared.is_none() {
                let record = session
                    .vm()
                    .get_record(vm)
                    .await
                    .map_err(xapi("VM.get_record"))?;
                let (ignore, size) = survey(session, &record, options, &mut warnings).await?;
                prepared = Some((record, ignore, size));
            }
            let (record, ignore, _) = prepared.as_ref().expect("prepared above");
            let context = Context {
                session,
                repo,
                vm,
                record,
                options,
                ignore: ignore.clone(),
            };
            Box::pin(attempt_once(&context, attempt, &mut times, &mut warnings)).await
        }
        .await;
        let virtual_size = prepared.as_ref().map_or(0, |p| p.2);
        match result {
            Ok((manifest, bytes_read, snapshot_removed)) => {
                return Ok(VmBackup {
                    manifest,
                    bytes_read,
                    virtual_size,
                    snapshot_removed,
                    attempts: attempt,
                    warnings,
                    times,
                });
            }
            Err(error) => {
                if !is_retryable(&error) || attempt >= options.retry.max_attempts {
                    return Err(fail(error, attempt, warnings));
                }
                let wait = options.retry.delay(attempt, &mut rng);
                tracing::info!(%error, attempt, ?wait, "backup attempt failed; retrying");
                warnings.push(format!("attempt {attempt} failed and was retried: {error}"));
                if let Some((record, _, size)) = &prepared {
                    let context = Context {
                        session,
                        repo,
                        vm,
                        record,
                        options,
                        ignore: Vec::new(),
                    };
                    context.emit(Phase::Backoff, attempt, &Meter::new(*size));
                }
                let slept = tokio::select! {
                    biased;
                    () = options.cancel.cancelled() => false,
                    () = tokio::time::sleep(wait) => true,
                };
                if !slept {
                    return Err(fail(EngineError::Cancelled, attempt, warnings));
                }
                attempt += 1;
            }
        }
    }
}

/// The VDIs to leave out and the virtual size of the others; warnings for special VMs.
async fn survey(
    session: &SessionHandle,
    record: &VmRecord,
    options: &BackupOptions,
    warnings: &mut Vec<String>,
) -> Result<(Vec<Ref<Vdi>>, u64), EngineError> {
    let (mut ignore, mut size, mut disks, mut cds) = (Vec::new(), 0, 0, 0);
    for vbd in &record.vbds {
        let vbd = session
            .vbd()
            .get_record(vbd)
            .await
            .map_err(xapi("VBD.get_record"))?;
        if vbd.r#type == VbdType::Cd {
            cds += 1;
            continue;
        }
        if vbd.vdi.is_null() {
            continue;
        }
        let vdi = session
            .vdi()
            .get_record(&vbd.vdi)
            .await
            .map_err(xapi("VDI.get_record"))?;
        if options.exclude_vdis.iter().any(|u| **u == *vdi.uuid) {
            ignore.push(vbd.vdi.clone());
        } else {
            disks += 1;
            size += u64::try_from(vdi.virtual_size).unwrap_or(0);
        }
    }
    if disks == 0 {
        warnings.push(
            "the VM has no disk to back up: the restore point holds its metadata only".into(),
        );
    }
    if cds > 0 {
        warnings.push(format!(
            "{cds} CD drive(s) not backed up (xapi exports no CD; the drive comes back empty)"
        ));
    }
    if record.power_state == VmPowerState::Suspended {
        warnings.push(
            "the VM is suspended: its disks are backed up through a snapshot, its memory image \
             is not, and it restores halted"
                .into(),
        );
    }
    Ok((ignore, size))
}

/// One attempt: hooks, snapshot, export, manifest; the snapshot destroyed whatever happens.
async fn attempt_once(
    context: &Context<'_>,
    attempt: u32,
    times: &mut PhaseTimes,
    warnings: &mut Vec<String>,
) -> Result<(Manifest, u64, bool), EngineError> {
    let began = Instant::now();
    context.emit(Phase::Snapshot, attempt, &Meter::new(0));
    let snapshot = async {
        if let Some(hook) = &context.options.pre_snapshot {
            context
                .unless_cancelled(hook.run("pre-snapshot", context.hook_context(None)))
                .await?;
        }
        take_snapshot(context, attempt, warnings).await
    }
    .await;
    times.snapshot += began.elapsed().as_secs_f64();
    let snapshot = snapshot?;
    let result = Box::pin(async {
        context
            .session
            .vm()
            .add_tags(&snapshot, SNAPSHOT_TAG)
            .await
            .map_err(xapi("VM.add_tags"))?;
        if let Some(hook) = &context.options.post_snapshot {
            let uuid = context
                .session
                .vm()
                .get_uuid(&snapshot)
                .await
                .map_err(xapi("VM.get_uuid"))?;
            context
                .unless_cancelled(hook.run(
                    "post-snapshot",
                    context.hook_context(Some((*uuid).to_owned())),
                ))
                .await?;
        }
        Box::pin(export_snapshot(context, &snapshot, attempt, times)).await
    })
    .await;
    let cleanup = Instant::now();
    context.emit(Phase::Cleanup, attempt, &Meter::new(0));
    let removed = destroy_snapshot_patiently(context.session, &snapshot).await;
    times.cleanup += cleanup.elapsed().as_secs_f64();
    if let Err(error) = &removed {
        tracing::warn!(%error, "could not remove the backup snapshot; the next run's sweep will");
        warnings.push(format!(
            "the snapshot was not removed ({error}); the next run's sweep removes it"
        ));
    }
    let (manifest, bytes_read) = result?;
    Ok((manifest, bytes_read, removed.is_ok()))
}

/// `Async.VM.snapshot` under a name unique to this attempt. When the call or the wait for its
/// task failed in a way that may have let it run, the VM's snapshots are searched for that
/// name: a snapshot that exists is used (transient error) or destroyed (the call failed), so
/// that a retry never takes a second one. Cancellation cancels the task and destroys a
/// snapshot it may have made all the same.
async fn take_snapshot(
    context: &Context<'_>,
    attempt: u32,
    warnings: &mut Vec<String>,
) -> Result<Ref<Vm>, EngineError> {
    let session = context.session;
    let name = format!(
        "{} (xapi-backup {:016x}-{attempt})",
        &*context.record.name_label,
        Jitter::new(0).next_u64()
    );
    let started = session
        .vm()
        .snapshot_async(context.vm, &name, &context.ignore)
        .await;
    let outcome = match started {
        Ok(handle) => {
            let task = handle.task().clone();
            tokio::select! {
                biased;
                () = context.options.cancel.cancelled() => {
                    cancel_task(session, &task).await;
                    let waited = TaskHandle::<Ref<Vm>>::new(session.clone(), task).wait().await;
                    if let Ok(snapshot) = waited {
                        let _ = destroy_snapshot(session, &snapshot).await;
                    } else if let Ok(Some(snapshot)) = find_named_snapshot(context, &name).await {
                        let _ = destroy_snapshot(session, &snapshot).await;
                    }
                    return Err(EngineError::Cancelled);
                }
                result = handle.wait() => result,
            }
        }
        Err(error) => Err(error),
    };
    let error = match outcome {
        Ok(snapshot) => return Ok(snapshot),
        Err(error) => error,
    };
    if error.may_have_run()
        && let Ok(Some(snapshot)) = find_named_snapshot(context, &name).await
    {
        if crate::retry::client_error_is_transient(&error) {
            warnings.push(format!(
                "VM.snapshot's answer was lost ({error}); the snapshot it made is used"
            ));
            return Ok(snapshot);
        }
        let _ = destroy_snapshot(session, &snapshot).await;
    }
    Err(xapi("VM.snapshot")(error))
}

/// The VM's snapshot called `name`, if there is one.
async fn find_named_snapshot(
    context: &Context<'_>,
    name: &str,
) -> Result<Option<Ref<Vm>>, EngineError> {
    let snapshots = context
        .session
        .vm()
        .get_snapshots(context.vm)
        .await
        .map_err(xapi("VM.get_snapshots"))?;
    for snapshot in snapshots {
        let label = context
            .session
            .vm()
            .get_name_label(&snapshot)
            .await
            .map_err(xapi("VM.get_name_label"))?;
        if *label == *name {
            return Ok(Some(snapshot));
        }
    }
    Ok(None)
}

/// Ask the pool to cancel a task, best effort.
async fn cancel_task(session: &SessionHandle, task: &Ref<Task>) {
    let handle = TaskHandle::<serde::de::IgnoredAny>::new(session.clone(), task.clone());
    if let Err(error) = handle.cancel().await {
        tracing::debug!(%error, "Task.cancel");
    }
}

/// The export of `snapshot` (of the VM whose record is `record`) into a new restore point with
/// the default options: the incremental runs' fallback when NBD is unreachable. The manifest
/// and the bytes read.
pub(crate) async fn export_snapshot_once(
    session: &SessionHandle,
    repo: &Repository,
    record: &VmRecord,
    snapshot: &Ref<Vm>,
    job_id: Option<&str>,
) -> Result<(Manifest, u64), EngineError> {
    let options = BackupOptions {
        job_id: job_id.map(str::to_owned),
        ..BackupOptions::default()
    };
    // the export path reads the VM's record, never its reference (that is for snapshotting)
    let context = Context {
        session,
        repo,
        vm: snapshot,
        record,
        options: &options,
        ignore: Vec::new(),
    };
    let mut times = PhaseTimes::default();
    Box::pin(export_snapshot(&context, snapshot, 1, &mut times)).await
}

/// `GET /export` of the snapshot inside a task of ours, read and verified into a new restore
/// point; on failure or cancellation the task is cancelled and the restore point left
/// uncommitted (never listed).
async fn export_snapshot(
    context: &Context<'_>,
    snapshot: &Ref<Vm>,
    attempt: u32,
    times: &mut PhaseTimes,
) -> Result<(Manifest, u64), EngineError> {
    let session = context.session;
    let task = session
        .create_task("xapi-backup export", &context.record.name_label)
        .await
        .map_err(xapi("task.create"))?;
    let began = Instant::now();
    let result = Box::pin(read_export(context, snapshot, &task, attempt)).await;
    times.export += began.elapsed().as_secs_f64();
    let (point, bytes_read) = match result {
        Ok(read) => read,
        Err(error) => {
            cancel_task(session, &task).await;
            let _ = session.call::<()>("task.destroy", (&task,)).await;
            return Err(error);
        }
    };
    // the task says whether the server saw the whole export go out
    let finished = TaskHandle::<serde::de::IgnoredAny>::new(session.clone(), task)
        .wait()
        .await;
    if let Err(error) = finished {
        return Err(xapi("the export task")(error));
    }
    let began = Instant::now();
    context.emit(Phase::Commit, attempt, &Meter::new(0));
    let manifest = point.commit().await.map_err(backup("writing the manifest"));
    times.commit += began.elapsed().as_secs_f64();
    Ok((manifest?, bytes_read))
}

async fn read_export(
    context: &Context<'_>,
    snapshot: &Ref<Vm>,
    task: &Ref<Task>,
    attempt: u32,
) -> Result<(crate::repo::RestorePointWriter, u64), EngineError> {
    let (session, repo, vm) = (context.session, context.repo, context.record);
    let snapshot_record = session
        .vm()
        .get_record(snapshot)
        .await
        .map_err(xapi("VM.get_record"))?;
    context.emit(Phase::Export, attempt, &Meter::new(0));
    let download = context
        .unless_cancelled(async {
            let query = [("ref", snapshot.as_str())];
            match context.options.transport {
                Transport::Https => session.get("/export", &query, Some(task)).await,
                Transport::PlainHttp { port } => {
                    session
                        .get_plain_http(port, "/export", &query, Some(task))
                        .await
                }
            }
            .map_err(xapi("GET /export"))
        })
        .await?;
    let reader = context
        .unless_cancelled(Box::pin(async {
            XvaReader::open(download.into_async_read(), ReadOptions::default())
                .await
                .map_err(backup(EXPORT_OPEN_STEP))
        }))
        .await?;
    let total = reader.disks().iter().map(|d| d.virtual_size).sum();
    let mut info = RestorePointInfo::new(RestorePointKind::Vm, (*vm.uuid).to_owned());
    info.job_id.clone_from(&context.options.job_id);
    info.source = SourceInfo::default();
    info.vm = Some(VmIdentity {
        uuid: (*vm.uuid).to_owned(),
        name_label: (*vm.name_label).to_owned(),
        snapshot_uuid: Some((*snapshot_record.uuid).to_owned()),
        snapshot_name: Some((*snapshot_record.name_label).to_owned()),
        snapshot_time: None,
    });
    let mut pacing = ExportPacing {
        context,
        attempt,
        meter: Meter::new(total),
        last_report: Instant::now(),
    };
    let (point, bytes_read) =
        crate::xva_io::store_chunks(repo, reader, info, EXPORT_READ_STEP, &mut pacing).await?;
    pacing.meter.position = total;
    context.emit(Phase::Export, attempt, &pacing.meter);
    Ok((point, bytes_read))
}

/// The export's pacing of the shared store loop: cancellation, the job's bandwidth limit,
/// progress events.
struct ExportPacing<'a, 'b> {
    context: &'a Context<'b>,
    attempt: u32,
    meter: Meter,
    last_report: Instant,
}

impl ChunkPacing for ExportPacing<'_, '_> {
    async fn read(
        &mut self,
        read: impl std::future::Future<Output = Result<Option<DiskChunk>, EngineError>>,
    ) -> Result<Option<DiskChunk>, EngineError> {
        self.context.unless_cancelled(read).await
    }

    async fn admit(&mut self, length: u64, position: u64) -> Result<(), EngineError> {
        if let Some(throttle) = &self.context.options.throttle {
            self.context
                .unless_cancelled(async {
                    throttle.take(length).await;
                    Ok(())
                })
                .await?;
        }
        self.meter.bytes_read += length;
        self.meter.position = position;
        if self.last_report.elapsed() >= PROGRESS_EVERY {
            self.last_report = Instant::now();
            self.context.emit(Phase::Export, self.attempt, &self.meter);
        }
        Ok(())
    }
}

/// At most one progress event per VM this often (plus one per phase).
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// [`destroy_snapshot`], tried again (up to 4 times, 1 s apart) while it fails with an error
/// safe to retry: a connection cut or a lost session must not leave a snapshot behind. So is
/// `OTHER_OPERATION_IN_PROGRESS`: an export this backup gave up on (a bad checksum, a
/// cancellation) keeps its operation on the snapshot until the server notices that the
/// connection went, which takes a moment on xapi as on the simulator.
async fn destroy_snapshot_patiently(
    session: &SessionHandle,
    snapshot: &Ref<Vm>,
) -> Result<(), EngineError> {
    let mut tries = 1;
    loop {
        match destroy_snapshot(session, snapshot).await {
            Err(error)
                if tries < 4 && (is_retryable(&error) || is_operation_in_progress(&error)) =>
            {
                tracing::info!(%error, "removing the snapshot failed; trying again");
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

/// Whether `error` is xapi's `OTHER_OPERATION_IN_PROGRESS`.
fn is_operation_in_progress(error: &EngineError) -> bool {
    matches!(error, EngineError::Xapi { source, .. }
    if source.failure().is_some_and(|failure| {
        failure.code == xapi_core::api::ErrorCode::OtherOperationInProgress
    }))
}

/// Destroys a snapshot this module took, and its disks (xapi's `VM.destroy` keeps VDIs).
async fn destroy_snapshot(session: &SessionHandle, snapshot: &Ref<Vm>) -> Result<(), EngineError> {
    let record = session
        .vm()
        .get_record(snapshot)
        .await
        .map_err(xapi("VM.get_record"))?;
    let mut disks: Vec<Ref<Vdi>> = Vec::new();
    for vbd in &record.vbds {
        let vbd = session
            .vbd()
            .get_record(vbd)
            .await
            .map_err(xapi("VBD.get_record"))?;
        if vbd.r#type != VbdType::Cd && !vbd.vdi.is_null() {
            disks.push(vbd.vdi);
        }
    }
    session
        .vm()
        .destroy(snapshot)
        .await
        .map_err(xapi("VM.destroy"))?;
    for vdi in disks {
        session
            .vdi()
            .destroy(&vdi)
            .await
            .map_err(xapi("VDI.destroy"))?;
    }
    Ok(())
}

/// Removes snapshots that an interrupted backup left (tagged [`SNAPSHOT_TAG`]); their number.
pub async fn remove_leftover_snapshots(session: &SessionHandle) -> Result<usize, EngineError> {
    Box::pin(remove_leftovers(session, None)).await
}

/// Removes the leftover snapshots (tagged [`SNAPSHOT_TAG`]) of these VMs only; their number.
/// A job sweeps its own selection this way, so that workers backing up other shards of the
/// pool at the same time keep their snapshots.
pub async fn remove_leftover_snapshots_of(
    session: &SessionHandle,
    vms: &[Ref<Vm>],
) -> Result<usize, EngineError> {
    Box::pin(remove_leftovers(session, Some(vms))).await
}

async fn remove_leftovers(
    session: &SessionHandle,
    only_of: Option<&[Ref<Vm>]>,
) -> Result<usize, EngineError> {
    let vms = session
        .vm()
        .get_all_records()
        .await
        .map_err(xapi("VM.get_all_records"))?;
    let mut removed = 0;
    for (reference, vm) in vms {
        // incremental runs' snapshots (tagged otherwise too) are theirs to keep or remove
        if vm.is_a_snapshot
            && vm.tags.iter().any(|t| &**t == SNAPSHOT_TAG)
            && !vm
                .tags
                .iter()
                .any(|t| &**t == crate::incremental::INCREMENTAL_SNAPSHOT_TAG)
            && only_of.is_none_or(|of| of.contains(&vm.snapshot_of))
        {
            destroy_snapshot(session, &reference).await?;
            removed += 1;
        }
    }
    Ok(removed)
}
