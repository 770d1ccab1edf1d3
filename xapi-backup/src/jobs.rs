//! Backing up many VMs at once: which VMs (all, by name or UUID, tag, vApp, with exclusions,
//! and `shard K/N` so that N workers split a pool without talking to each other), at most N
//! exports in flight, a progress event per VM, and a report per job. A VM that fails does not
//! stop the others; its error is in the report.

use std::collections::HashMap;
use std::time::Instant;

use futures::StreamExt as _;
use serde::Serialize;
use xapi_core::api::{Vm, VmAppliance, VmApplianceRecord, VmRecord};
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

use crate::EngineError;
use crate::export::backup_vm;
use crate::repo::Repository;

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
        /// Bytes new to the repository (the rest was deduplicated or zero).
        new_bytes: u64,
        /// Whether the snapshot was removed (else the next run's sweep does).
        snapshot_removed: bool,
    },
    /// Failed; the others went on.
    Failed {
        /// Why.
        error: String,
    },
}

/// One VM of a job's report.
#[derive(Debug, Clone, Serialize)]
pub struct VmReport {
    /// Name.
    pub name_label: String,
    /// UUID.
    pub uuid: String,
    /// Seconds it took.
    pub seconds: f64,
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
    /// Bytes new to the repository, all VMs.
    pub new_bytes: u64,
    /// The most exports that were in flight at once.
    pub max_in_flight: usize,
}

impl JobReport {
    /// How many VMs failed.
    pub fn failed(&self) -> usize {
        self.vms
            .iter()
            .filter(|vm| matches!(vm.outcome, VmOutcome::Failed { .. }))
            .count()
    }
}

/// Progress of a job.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JobEvent {
    /// A VM's backup started.
    Started {
        /// Its name.
        name_label: String,
    },
    /// A VM's backup ended.
    Finished(VmReport),
}

/// Backs up the selected VMs, at most `concurrency` at once; `on_event` hears each start and
/// end.
pub async fn run_job(
    session: &SessionHandle,
    repo: &Repository,
    selection: &Selection,
    job_id: &str,
    concurrency: usize,
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
    let in_flight = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peak_seen = peak.clone();
    let (events, mut receive) = tokio::sync::mpsc::unbounded_channel();
    // the closure owns the sender: the channel closes when the last backup is done
    let work = futures::stream::iter(chosen.into_iter().map(move |(vm, name, uuid)| {
        let (session, repo, events) = (session.clone(), repo.clone(), events.clone());
        let (in_flight, peak) = (in_flight.clone(), peak.clone());
        async move {
            let now = in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            peak.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
            let _ = events.send(JobEvent::Started {
                name_label: name.clone(),
            });
            let began = Instant::now();
            let outcome = match backup_vm(&session, &repo, &vm, Some(job_id)).await {
                Ok(done) => VmOutcome::Done {
                    restore_point: done.manifest.id.to_string(),
                    bytes_read: done.bytes_read,
                    new_bytes: done.manifest.streams.iter().map(|s| s.new_bytes).sum(),
                    snapshot_removed: done.snapshot_removed,
                },
                Err(error) => VmOutcome::Failed {
                    error: error.to_string(),
                },
            };
            in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            let report = VmReport {
                name_label: name,
                uuid,
                seconds: began.elapsed().as_secs_f64(),
                outcome,
            };
            let _ = events.send(JobEvent::Finished(report.clone()));
            report
        }
    }))
    .buffer_unordered(concurrency.max(1))
    .collect::<Vec<_>>();
    let forward = async {
        while let Some(event) = receive.recv().await {
            on_event(event);
        }
    };
    let (mut reports, ()) = futures::join!(work, forward);
    reports.sort_by(|a, b| a.name_label.cmp(&b.name_label));
    let (mut bytes_read, mut new_bytes) = (0, 0);
    for vm in &reports {
        if let VmOutcome::Done {
            bytes_read: read,
            new_bytes: new,
            ..
        } = vm.outcome
        {
            bytes_read += read;
            new_bytes += new;
        }
    }
    Ok(JobReport {
        id: job_id.to_owned(),
        vms: reports,
        seconds: started.elapsed().as_secs_f64(),
        bytes_read,
        new_bytes,
        max_in_flight: peak_seen.load(std::sync::atomic::Ordering::SeqCst),
    })
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
