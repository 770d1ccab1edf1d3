//! Backing up many VMs at once: which VMs (all, by name or UUID, tag, vApp, with exclusions,
//! and `shard K/N` so that N workers split a pool without talking to each other), at most N
//! backups in flight overall and at most M per host, an optional bandwidth limit shared by all
//! exports, retries of errors safe to retry, cancellation, progress events per VM and per job,
//! and a report per job (serializable as JSON). A VM that fails does not stop the others; its
//! error is in the report.
//!
//! Special VMs (see [`crate::export`]): a VM with no disks is backed up as its metadata alone,
//! CD drives are left out, a suspended VM is backed up through a snapshot of its disks and
//! restores halted; each case is a warning in the VM's report.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures::StreamExt as _;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use xapi_core::api::{VbdType, Vm, VmAppliance, VmApplianceRecord, VmRecord};
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

use crate::EngineError;
use crate::export::{
    BackupOptions, PhaseTimes, Transport, VmProgress, backup_vm_with, remove_leftover_snapshots_of,
};
use crate::hooks::Hook;
use crate::repo::Repository;
use crate::retry::RetryPolicy;
use crate::throttle::Throttle;

/// Which VMs a job backs up. Templates, snapshots and control domains are never selected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Every VM of the pool.
    pub all: bool,
    /// VMs by name or UUID.
    pub vms: Vec<String>,
    /// VMs with any of these tags.
    pub tags: Vec<String>,
    /// The members of these vApps (by name or UUID).
    pub vapps: Vec<String>,
    /// VMs left out (by name or UUID), whatever else selects them.
    pub exclude: Vec<String>,
    /// `(k, n)`: only the VMs whose UUID hashes to shard `k` of `n` (1-based).
    pub shard: Option<(u32, u32)>,
}

/// A selection that names nothing, or a shard out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// A VM or vApp named in the selection is not in the pool.
    #[error("no {kind} called {name:?} in the pool")]
    Unknown {
        /// `VM` or `vApp`.
        kind: &'static str,
        /// The name or UUID given.
        name: String,
    },
    /// `shard k/n` needs 1 <= k <= n.
    #[error("shard {k}/{n}: k must be between 1 and n")]
    BadShard {
        /// k.
        k: u32,
        /// n.
        n: u32,
    },
}

/// The shard (0-based) of a VM UUID among `n`: FNV-1a of the UUID's text, stable across runs,
/// machines and versions.
pub fn shard_of(uuid: &str, n: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in uuid.to_ascii_lowercase().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    u32::try_from(hash % u64::from(n.max(1))).expect("below n")
}

/// The VMs of the pool the selection names, sorted by name, as (reference, name, UUID).
pub fn select<S: std::hash::BuildHasher, T: std::hash::BuildHasher>(
    vms: &HashMap<Ref<Vm>, VmRecord, S>,
    vapps: &HashMap<Ref<VmAppliance>, VmApplianceRecord, T>,
    selection: &Selection,
) -> Result<Vec<(Ref<Vm>, String, String)>, SelectionError> {
    if let Some((k, n)) = selection.shard
        && (k == 0 || k > n)
    {
        return Err(SelectionError::BadShard { k, n });
    }
    let real = |vm: &VmRecord| !vm.is_a_template && !vm.is_a_snapshot && !vm.is_control_domain;
    let named = |wanted: &str, vm: &VmRecord| *vm.name_label == *wanted || *vm.uuid == *wanted;
    for name in &selection.vms {
        if !vms.values().any(|vm| real(vm) && named(name, vm)) {
            return Err(SelectionError::Unknown {
                kind: "VM",
                name: name.clone(),
            });
        }
    }
    let mut in_vapps: Vec<&Ref<Vm>> = Vec::new();
    for name in &selection.vapps {
        let app = vapps
            .values()
            .find(|a| *a.name_label == **name || *a.uuid == **name)
            .ok_or_else(|| SelectionError::Unknown {
                kind: "vApp",
                name: name.clone(),
            })?;
        in_vapps.extend(app.vms.iter());
    }
    let mut chosen: Vec<(Ref<Vm>, String, String)> = vms
        .iter()
        .filter(|(_, vm)| real(vm))
        .filter(|(reference, vm)| {
            selection.all
                || selection.vms.iter().any(|w| named(w, vm))
                || vm
                    .tags
                    .iter()
                    .any(|t| selection.tags.iter().any(|w| **w == **t))
                || in_vapps.contains(reference)
        })
        .filter(|(_, vm)| !selection.exclude.iter().any(|w| named(w, vm)))
        .filter(|(_, vm)| {
            selection
                .shard
                .is_none_or(|(k, n)| shard_of(&vm.uuid, n) == k - 1)
        })
        .map(|(r, vm)| {
            (
                r.clone(),
                (*vm.name_label).to_owned(),
                (*vm.uuid).to_owned(),
            )
        })
        .collect();
    chosen.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.2.cmp(&b.2)));
    Ok(chosen)
}

/// How one VM's backup ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum VmOutcome {
    /// Backed up.
    Done {
        /// The restore point's id.
        restore_point: String,
        /// Bytes of disk data read.
        bytes_read: u64,
        /// Bytes uploaded for new chunks, after compression and sealing (the rest was
        /// deduplicated or zero).
        new_bytes: u64,
        /// Chunks this backup uploaded.
        new_chunks: u64,
        /// Chunks the repository already held (deduplicated, not uploaded).
        deduplicated_chunks: u64,
        /// Whether the snapshot was removed (else the next run's sweep does).
        snapshot_removed: bool,
    },
    /// Failed; the others went on.
    Failed {
        /// Why.
        error: String,
    },
    /// The job was cancelled before this VM's backup ended; its snapshot was destroyed and no
    /// restore point written.
    Cancelled,
}

/// One VM of a job's report.
#[derive(Debug, Clone, Serialize)]
pub struct VmReport {
    /// Name.
    pub name_label: String,
    /// UUID.
    pub uuid: String,
    /// The host the backup counted against (the VM's resident host or affinity; empty: none).
    pub host: String,
    /// Seconds it took, waits for a slot excluded.
    pub seconds: f64,
    /// Seconds per phase.
    pub times: PhaseTimes,
    /// The exported disks' virtual size.
    pub virtual_size: u64,
    /// Disk bytes read per second of the export phase.
    pub throughput: f64,
    /// Attempts made.
    pub attempts: u32,
    /// Retried errors, special VMs, leftovers.
    pub warnings: Vec<String>,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: VmOutcome,
}

/// A job's report.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    /// The job's id (in every manifest it wrote).
    pub id: String,
    /// Per VM, by name.
    pub vms: Vec<VmReport>,
    /// Wall time.
    pub seconds: f64,
    /// Disk bytes read, all VMs.
    pub bytes_read: u64,
    /// Bytes uploaded for new chunks (compressed), all VMs.
    pub new_bytes: u64,
    /// Chunks uploaded, all VMs.
    pub new_chunks: u64,
    /// Chunks deduplicated, all VMs.
    pub deduplicated_chunks: u64,
    /// The most backups that were in flight at once.
    pub max_in_flight: usize,
    /// The most backups that were in flight at once on one host, per host.
    pub max_in_flight_per_host: HashMap<String, usize>,
    /// Whether the job was cancelled.
    pub cancelled: bool,
    /// Snapshots of the selected VMs that an interrupted earlier run left, removed before
    /// this one started.
    pub leftover_snapshots_removed: usize,
}

impl JobReport {
    /// How many VMs failed.
    pub fn failed(&self) -> usize {
        self.vms
            .iter()
            .filter(|vm| matches!(vm.outcome, VmOutcome::Failed { .. }))
            .count()
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// Progress of a whole job.
#[derive(Debug, Clone, Serialize)]
pub struct JobProgress {
    /// VMs finished (whatever their outcome).
    pub vms_done: usize,
    /// VMs selected.
    pub vms_total: usize,
    /// Disk bytes read so far, all VMs.
    pub bytes_read: u64,
    /// Bytes of virtual size gone through, all VMs.
    pub position: u64,
    /// The selected VMs' disks' virtual size.
    pub total: u64,
    /// Disk bytes read per second since the job began.
    pub rate: f64,
    /// Seconds left, from the position and the rate.
    pub eta_seconds: Option<f64>,
}

/// Progress of a job.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JobEvent {
    /// A VM's backup started (it got its slots).
    Started {
        /// Its name.
        name_label: String,
    },
    /// A VM's backup progressed.
    Progress(VmProgress),
    /// The job progressed.
    Job(JobProgress),
    /// A VM's backup ended.
    Finished(VmReport),
}

/// How a job runs.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// The job's id, in every manifest it writes.
    pub job_id: String,
    /// Backups in flight at once, overall (at least 1).
    pub concurrency: usize,
    /// Backups in flight at once per host (the VM's resident host, else its affinity; VMs
    /// with neither share one "any host" slot group). `None`: no limit per host.
    pub per_host: Option<usize>,
    /// Bytes per second for all exports of the job together. `None`: no limit.
    pub bandwidth: Option<u64>,
    /// Retries of errors safe to retry.
    pub retry: RetryPolicy,
    /// Cancels the job: backups under way cancel their task and destroy their snapshot, VMs
    /// not started are reported cancelled.
    pub cancel: CancellationToken,
    /// VDIs (by UUID) left out of every snapshot.
    pub exclude_vdis: Vec<String>,
    /// Run before each VM's snapshot.
    pub pre_snapshot: Option<Hook>,
    /// Run after each VM's snapshot.
    pub post_snapshot: Option<Hook>,
    /// How the export streams travel (HTTPS by default).
    pub transport: Transport,
}

impl JobOptions {
    /// A job `job_id` with `concurrency` backups at once and the defaults otherwise.
    pub fn new(job_id: impl Into<String>, concurrency: usize) -> Self {
        Self {
            job_id: job_id.into(),
            concurrency,
            per_host: None,
            bandwidth: None,
            retry: RetryPolicy::default(),
            cancel: CancellationToken::new(),
            exclude_vdis: Vec::new(),
            pre_snapshot: None,
            post_snapshot: None,
            transport: Transport::Https,
        }
    }
}

/// Backs up the selected VMs, at most `concurrency` at once; `on_event` hears each start,
/// progress and end. [`run_job_with`] with [`JobOptions::new`].
pub async fn run_job(
    session: &SessionHandle,
    repo: &Repository,
    selection: &Selection,
    job_id: &str,
    concurrency: usize,
    on_event: impl FnMut(JobEvent),
) -> Result<JobReport, EngineError> {
    let options = JobOptions::new(job_id, concurrency);
    run_job_with(session, repo, selection, &options, on_event).await
}

/// Counts backups in flight and remembers the most at once.
#[derive(Debug, Default)]
struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Gauge {
    fn enter(self: &Arc<Self>) -> GaugeGuard {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        GaugeGuard(Arc::clone(self))
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

struct GaugeGuard(Arc<Gauge>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The slots of one host.
struct HostSlots {
    name: String,
    permits: Option<Arc<Semaphore>>,
    gauge: Arc<Gauge>,
}

/// Backs up the selected VMs as `options` says; `on_event` hears each start, progress and
/// end.
pub async fn run_job_with(
    session: &SessionHandle,
    repo: &Repository,
    selection: &Selection,
    options: &JobOptions,
    on_event: impl FnMut(JobEvent),
) -> Result<JobReport, EngineError> {
    // boxed: the generated calls' futures are large
    Box::pin(run_job_boxed(session, repo, selection, options, on_event)).await
}

async fn run_job_boxed(
    session: &SessionHandle,
    repo: &Repository,
    selection: &Selection,
    options: &JobOptions,
    mut on_event: impl FnMut(JobEvent),
) -> Result<JobReport, EngineError> {
    let started = Instant::now();
    let vms = session
        .vm()
        .get_all_records()
        .await
        .map_err(|e| xapi_error("VM.get_all_records", e))?;
    let apps = if selection.vapps.is_empty() {
        HashMap::new()
    } else {
        session
            .vm_appliance()
            .get_all_records()
            .await
            .map_err(|e| xapi_error("VM_appliance.get_all_records", e))?
    };
    let chosen =
        select(&vms, &apps, selection).map_err(|e| EngineError::Unexpected(e.to_string()))?;
    // what a killed run of these VMs left (other shards' snapshots are not ours to touch)
    let selected: Vec<Ref<Vm>> = chosen.iter().map(|(vm, _, _)| vm.clone()).collect();
    let leftover_snapshots_removed = remove_leftover_snapshots_of(session, &selected)
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "could not sweep leftover snapshots; the next run will");
            0
        });
    let sizes = disk_sizes(session, &vms).await?;
    let hosts = session
        .host()
        .get_all_records()
        .await
        .map_err(|e| xapi_error("host.get_all_records", e))?;
    let mut slots: HashMap<String, Arc<HostSlots>> = HashMap::new();
    let overall = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let gauge = Arc::new(Gauge::default());
    let throttle = options.bandwidth.map(Throttle::new);
    let total: u64 = chosen
        .iter()
        .map(|(vm, _, _)| sizes.get(vm).copied().unwrap_or(0))
        .sum();
    let vms_total = chosen.len();
    let (events, mut receive) = tokio::sync::mpsc::unbounded_channel();
    let work = futures::stream::FuturesUnordered::new();
    for (vm, name, uuid) in chosen {
        let record = &vms[&vm];
        let host = [&record.resident_on, &record.affinity]
            .into_iter()
            .find(|h| !h.is_null())
            .cloned();
        let key = host
            .as_ref()
            .map(|h| h.as_str().to_owned())
            .unwrap_or_default();
        let host_slots = Arc::clone(slots.entry(key).or_insert_with(|| {
            Arc::new(HostSlots {
                name: host
                    .as_ref()
                    .and_then(|h| hosts.get(h))
                    .map(|h| (*h.name_label).to_owned())
                    .unwrap_or_default(),
                permits: options.per_host.map(|n| Arc::new(Semaphore::new(n.max(1)))),
                gauge: Arc::new(Gauge::default()),
            })
        }));
        let events = events.clone();
        let progress_events = events.clone();
        let backup_options = BackupOptions {
            job_id: Some(options.job_id.clone()),
            exclude_vdis: options.exclude_vdis.clone(),
            pre_snapshot: options.pre_snapshot.clone(),
            post_snapshot: options.post_snapshot.clone(),
            retry: options.retry.clone(),
            cancel: options.cancel.clone(),
            throttle: throttle.clone(),
            transport: options.transport,
            progress: Some(Arc::new(move |p| {
                let _ = progress_events.send(JobEvent::Progress(p));
            })),
        };
        let (overall, gauge) = (Arc::clone(&overall), Arc::clone(&gauge));
        let virtual_size = sizes.get(&vm).copied().unwrap_or(0);
        work.push(async move {
            let report = |outcome, seconds, backup: Option<&crate::export::VmBackup>| VmReport {
                name_label: name.clone(),
                uuid: uuid.clone(),
                host: host_slots.name.clone(),
                seconds,
                times: backup.map(|b| b.times).unwrap_or_default(),
                virtual_size: backup.map_or(virtual_size, |b| b.virtual_size),
                throughput: backup.map_or(0.0, |b| {
                    #[allow(clippy::cast_precision_loss)]
                    let read = b.bytes_read as f64;
                    read / b.times.export.max(1e-6)
                }),
                attempts: backup.map_or(0, |b| b.attempts),
                warnings: backup.map(|b| b.warnings.clone()).unwrap_or_default(),
                outcome,
            };
            let permits = async {
                let host_permit = match &host_slots.permits {
                    Some(p) => Some(p.acquire().await.ok()?),
                    None => None,
                };
                let permit = overall.acquire().await.ok()?;
                Some((host_permit, permit))
            };
            let acquired = tokio::select! {
                biased;
                () = backup_options.cancel.cancelled() => None,
                acquired = permits => acquired,
            };
            let Some(_permits) = acquired else {
                let report = report(VmOutcome::Cancelled, 0.0, None);
                let _ = events.send(JobEvent::Finished(report.clone()));
                return report;
            };
            let (_overall, _host) = (gauge.enter(), host_slots.gauge.enter());
            let _ = events.send(JobEvent::Started {
                name_label: name.clone(),
            });
            let began = Instant::now();
            let result = backup_vm_with(session, repo, &vm, &backup_options).await;
            let seconds = began.elapsed().as_secs_f64();
            let report = match result {
                Ok(done) => {
                    let streams = &done.manifest.streams;
                    let new_chunks: u64 = streams.iter().map(|s| s.new_chunks).sum();
                    let stored: u64 = streams.iter().map(|s| s.stored_chunks).sum();
                    let outcome = VmOutcome::Done {
                        restore_point: done.manifest.id.to_string(),
                        bytes_read: done.bytes_read,
                        new_bytes: streams.iter().map(|s| s.new_bytes).sum(),
                        new_chunks,
                        deduplicated_chunks: stored.saturating_sub(new_chunks),
                        snapshot_removed: done.snapshot_removed,
                    };
                    report(outcome, seconds, Some(&done))
                }
                Err(failure) => {
                    let outcome = if matches!(failure.error, EngineError::Cancelled) {
                        VmOutcome::Cancelled
                    } else {
                        VmOutcome::Failed {
                            error: failure.error.to_string(),
                        }
                    };
                    let mut report = report(outcome, seconds, None);
                    report.attempts = failure.attempts;
                    report.warnings = failure.warnings;
                    report
                }
            };
            let _ = events.send(JobEvent::Finished(report.clone()));
            report
        });
    }
    // the futures own the senders: the channel closes when the last backup is done
    drop(events);
    let all = work.collect::<Vec<_>>();
    let forward = async {
        let mut seen: HashMap<String, (u64, u64)> = HashMap::new();
        let mut vms_done = 0;
        while let Some(event) = receive.recv().await {
            let job = match &event {
                JobEvent::Progress(p) => {
                    let entry = seen.entry(p.uuid.clone()).or_default();
                    *entry = (p.bytes_read, p.position.max(entry.1));
                    true
                }
                JobEvent::Finished(vm) => {
                    vms_done += 1;
                    let entry = seen.entry(vm.uuid.clone()).or_default();
                    entry.1 = vm.virtual_size;
                    if let VmOutcome::Done { bytes_read, .. } = vm.outcome {
                        entry.0 = bytes_read;
                    }
                    true
                }
                _ => false,
            };
            on_event(event);
            if job {
                let bytes_read = seen.values().map(|v| v.0).sum();
                let position = seen.values().map(|v| v.1).sum::<u64>().min(total);
                let elapsed = started.elapsed().as_secs_f64().max(1e-6);
                #[allow(clippy::cast_precision_loss)]
                let (rate, pace) = (bytes_read as f64 / elapsed, position as f64 / elapsed);
                #[allow(clippy::cast_precision_loss)]
                let eta_seconds = (pace > 0.0).then(|| (total - position) as f64 / pace);
                on_event(JobEvent::Job(JobProgress {
                    vms_done,
                    vms_total,
                    bytes_read,
                    position,
                    total,
                    rate,
                    eta_seconds,
                }));
            }
        }
    };
    let (mut reports, ()) = futures::join!(all, forward);
    reports.sort_by(|a, b| a.name_label.cmp(&b.name_label));
    let (mut bytes_read, mut new_bytes, mut new_chunks, mut deduplicated) = (0, 0, 0, 0);
    for vm in &reports {
        if let VmOutcome::Done {
            bytes_read: read,
            new_bytes: new,
            new_chunks: chunks,
            deduplicated_chunks: dedup,
            ..
        } = vm.outcome
        {
            bytes_read += read;
            new_bytes += new;
            new_chunks += chunks;
            deduplicated += dedup;
        }
    }
    Ok(JobReport {
        id: options.job_id.clone(),
        vms: reports,
        seconds: started.elapsed().as_secs_f64(),
        bytes_read,
        new_bytes,
        new_chunks,
        deduplicated_chunks: deduplicated,
        max_in_flight: gauge.peak(),
        max_in_flight_per_host: slots
            .values()
            .map(|s| (s.name.clone(), s.gauge.peak()))
            .collect(),
        cancelled: options.cancel.is_cancelled(),
        leftover_snapshots_removed,
    })
}

/// The virtual size of each VM's disks (CDs left out).
async fn disk_sizes<S: std::hash::BuildHasher>(
    session: &SessionHandle,
    vms: &HashMap<Ref<Vm>, VmRecord, S>,
) -> Result<HashMap<Ref<Vm>, u64>, EngineError> {
    let vbds = session
        .vbd()
        .get_all_records()
        .await
        .map_err(|e| xapi_error("VBD.get_all_records", e))?;
    let vdis = session
        .vdi()
        .get_all_records()
        .await
        .map_err(|e| xapi_error("VDI.get_all_records", e))?;
    let mut sizes = HashMap::new();
    for vbd in vbds.values() {
        if vbd.r#type == VbdType::Cd || !vms.contains_key(&vbd.vm) {
            continue;
        }
        if let Some(vdi) = vdis.get(&vbd.vdi) {
            *sizes.entry(vbd.vm.clone()).or_default() +=
                u64::try_from(vdi.virtual_size).unwrap_or(0);
        }
    }
    Ok(sizes)
}

fn xapi_error(step: &'static str, source: xapi_core::Error) -> EngineError {
    EngineError::Xapi {
        step,
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_cover_every_vm_once() {
        let uuids: Vec<String> = (0..200)
            .map(|i| format!("00000000-0000-0000-0000-{i:012}"))
            .collect();
        let mut counts = [0; 3];
        for uuid in &uuids {
            let shard = shard_of(uuid, 3);
            assert_eq!(
                shard,
                shard_of(&uuid.to_uppercase(), 3),
                "case does not matter"
            );
            counts[shard as usize] += 1;
        }
        assert_eq!(counts.iter().sum::<i32>(), 200);
        assert!(counts.iter().all(|&c| c > 40), "{counts:?}");
        assert_eq!(shard_of("anything", 1), 0);
    }
}
