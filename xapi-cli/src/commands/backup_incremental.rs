//! `xapictl backup run --incremental` and `xapictl backup cbt enable|disable`: forever
//! incremental backups from changed-block tracking (CBT) read over NBD. Every restore point is
//! a full one (no chain to merge); a run that cannot be incremental for a disk reads it whole
//! and says why. CBT blocks storage motion (storage migration) of the disks it is on: disable it
//! first when a disk must move.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use futures::StreamExt as _;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use xapi_backup::incremental::{IncrementalOptions, IncrementalReport, backup_vm_incremental};
use xapi_backup::jobs::{Selection, select};
use xapi_backup::repo::Repository;
use xapi_core::api::Vm;
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

use crate::bars::JobBars;
use crate::exit::{Exit, Failure, explain};
use crate::output::{Progress, human_bytes, print_json, print_table};

/// Which VMs `backup cbt` changes.
#[derive(Debug, Clone, Args)]
pub(crate) struct CbtArgs {
    /// Every VM of the pool.
    #[arg(long)]
    all: bool,
    /// A VM by name or UUID (repeat).
    #[arg(long = "vm")]
    vms: Vec<String>,
    /// VMs with this tag (repeat).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// The members of this vApp (repeat).
    #[arg(long = "vapp")]
    vapps: Vec<String>,
}

/// One VM of an incremental job.
#[derive(Debug, Serialize)]
struct IncrementalVm {
    name_label: String,
    uuid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restore_point: Option<String>,
    incremental: bool,
    full_reasons: Vec<String>,
    nbd_bytes_read: u64,
    changed_bytes: u64,
    new_bytes: u64,
    seconds: f64,
}

/// What `backup run --incremental --json` prints.
#[derive(Debug, Serialize)]
struct IncrementalJob {
    id: String,
    /// `incremental` (each VM says whether it could be).
    mode: &'static str,
    vms: Vec<IncrementalVm>,
    nbd_bytes_read: u64,
    changed_bytes: u64,
    new_bytes: u64,
    seconds: f64,
    cancelled: bool,
}

/// The VMs a selection names, read from the pool.
pub(crate) async fn selected(
    session: &SessionHandle,
    url: &str,
    selection: &Selection,
) -> Result<Vec<(Ref<Vm>, String, String)>, Failure> {
    let vms = session
        .vm()
        .get_all_records()
        .await
        .map_err(|e| explain(url, &e))?;
    let apps = if selection.vapps.is_empty() {
        HashMap::new()
    } else {
        session
            .vm_appliance()
            .get_all_records()
            .await
            .map_err(|e| explain(url, &e))?
    };
    select(&vms, &apps, selection).map_err(|e| Failure::usage(e.to_string()))
}

/// Incremental backups of the selected VMs, `concurrency` at a time.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    session: &SessionHandle,
    url: &str,
    repo: &Repository,
    selection: &Selection,
    concurrency: usize,
    state_dir: Option<PathBuf>,
    nbd_connections: usize,
    json: bool,
    progress: Progress,
    cancel: &CancellationToken,
) -> Result<Exit, Failure> {
    let started = Instant::now();
    let chosen = selected(session, url, selection).await?;
    let job_id = format!("job-{}", std::process::id());
    let options = IncrementalOptions {
        state_dir,
        job_id: Some(job_id.clone()),
        connections_per_disk: nbd_connections,
        ..IncrementalOptions::default()
    };
    let bars = (progress == Progress::Text && !json)
        .then(|| JobBars::new(Some(chosen.len() as u64), "VMs backed up (incremental)"));
    let mut results = futures::stream::iter(chosen.iter().map(|(vm, name, uuid)| {
        let (options, bars) = (&options, &bars);
        async move {
            if progress == Progress::Json {
                eprintln!(
                    "{}",
                    serde_json::json!({"event": "started", "name_label": name, "uuid": uuid})
                );
            }
            if let Some(bars) = bars {
                bars.start(name, None);
            }
            let began = Instant::now();
            let outcome = backup_vm_incremental(session, repo, vm, options).await;
            let line = describe(name, began.elapsed().as_secs_f64(), &outcome);
            if let Some(bars) = bars {
                bars.finish(name, &line);
            }
            if progress == Progress::Json {
                eprintln!(
                    "{}",
                    serde_json::json!({"event": "finished", "name_label": name, "uuid": uuid,
                        "ok": outcome.is_ok()})
                );
            }
            (
                name.clone(),
                uuid.clone(),
                began.elapsed().as_secs_f64(),
                outcome,
            )
        }
    }))
    .buffer_unordered(concurrency.max(1));
    let mut vms = Vec::new();
    let mut cancelled = false;
    loop {
        tokio::select! {
            next = results.next() => {
                let Some((name, uuid, seconds, outcome)) = next else { break };
                vms.push(entry(name, uuid, seconds, outcome));
            }
            () = cancel.cancelled(), if !cancelled => {
                // stop starting VMs; the ones running end (their snapshots are kept for resume
                // with --state-dir, destroyed without)
                cancelled = true;
                break;
            }
        }
    }
    drop(results);
    drop(bars);
    vms.sort_by(|a, b| a.name_label.cmp(&b.name_label));
    let job = IncrementalJob {
        id: job_id,
        mode: "incremental",
        nbd_bytes_read: vms.iter().map(|v| v.nbd_bytes_read).sum(),
        changed_bytes: vms.iter().map(|v| v.changed_bytes).sum(),
        new_bytes: vms.iter().map(|v| v.new_bytes).sum(),
        seconds: started.elapsed().as_secs_f64(),
        cancelled,
        vms,
    };
    if json {
        print_json(&job);
    } else {
        println!(
            "{} VMs in {:.1} s: {} read over NBD ({} in changed blocks), {} new",
            job.vms.len(),
            job.seconds,
            size(job.nbd_bytes_read),
            size(job.changed_bytes),
            size(job.new_bytes)
        );
    }
    if cancelled {
        return Err(Failure {
            exit: Exit::Interrupted,
            message: "interrupted: VMs not started were skipped".into(),
        });
    }
    let failed = job.vms.iter().filter(|v| v.error.is_some()).count();
    if failed > 0 {
        return Err(Failure {
            exit: Exit::PartlyDone,
            message: format!("{failed} of {} VMs failed", job.vms.len()),
        });
    }
    Ok(Exit::Done)
}

fn size(bytes: u64) -> String {
    human_bytes(i64::try_from(bytes).unwrap_or(i64::MAX))
}

fn reasons(report: &IncrementalReport) -> Vec<String> {
    report
        .full_reasons()
        .into_iter()
        .map(|r| {
            serde_json::to_value(r)
                .ok()
                .and_then(|v| v["reason"].as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("{r:?}"))
        })
        .collect()
}

fn describe(
    name: &str,
    seconds: f64,
    outcome: &Result<IncrementalReport, xapi_backup::EngineError>,
) -> String {
    match outcome {
        Ok(report) if report.is_incremental() => format!(
            "backed up {name} incrementally in {seconds:.1} s: {} changed, {} read over NBD",
            size(report.changed_bytes),
            size(report.nbd_bytes_read)
        ),
        Ok(report) => format!(
            "backed up {name} in full in {seconds:.1} s ({}): {} read",
            reasons(report).join(", "),
            size(report.nbd_bytes_read + report.export_bytes_read)
        ),
        Err(error) => format!("FAILED {name}: {error}"),
    }
}

fn entry(
    name_label: String,
    uuid: String,
    seconds: f64,
    outcome: Result<IncrementalReport, xapi_backup::EngineError>,
) -> IncrementalVm {
    match outcome {
        Ok(report) => IncrementalVm {
            name_label,
            uuid,
            error: None,
            restore_point: Some(report.manifest.id.to_string()),
            incremental: report.is_incremental(),
            full_reasons: reasons(&report),
            nbd_bytes_read: report.nbd_bytes_read + report.export_bytes_read,
            changed_bytes: report.changed_bytes,
            new_bytes: report.manifest.streams.iter().map(|s| s.new_bytes).sum(),
            seconds,
        },
        Err(error) => IncrementalVm {
            name_label,
            uuid,
            error: Some(error.to_string()),
            restore_point: None,
            incremental: false,
            full_reasons: Vec::new(),
            nbd_bytes_read: 0,
            changed_bytes: 0,
            new_bytes: 0,
            seconds,
        },
    }
}

/// `backup cbt enable|disable`: CBT on every disk of the selected VMs.
pub(crate) async fn set_cbt(
    session: &SessionHandle,
    url: &str,
    args: &CbtArgs,
    enable: bool,
    json: bool,
) -> Result<Exit, Failure> {
    let selection = Selection {
        all: args.all,
        vms: args.vms.clone(),
        tags: args.tags.clone(),
        vapps: args.vapps.clone(),
        ..Selection::default()
    };
    if !selection.all
        && selection.vms.is_empty()
        && selection.tags.is_empty()
        && selection.vapps.is_empty()
    {
        return Err(Failure::usage(
            "nothing selected: use --all, --vm, --tag or --vapp",
        ));
    }
    let mut rows = Vec::new();
    for (vm, name, uuid) in selected(session, url, &selection).await? {
        let changed = if enable {
            xapi_backup::incremental::enable_cbt(session, &vm).await
        } else {
            xapi_backup::incremental::disable_cbt(session, &vm).await
        }
        .map_err(|e| match e {
            xapi_backup::EngineError::Xapi { source, .. } => explain(url, &source),
            other => Failure::failed(format!("{name}: {other}")),
        })?;
        rows.push(
            serde_json::json!({"name_label": name, "uuid": uuid, "disks_changed": changed.len()}),
        );
    }
    if json {
        print_json(&serde_json::json!({"cbt_enabled": enable, "vms": rows}));
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r["name_label"].as_str().unwrap_or_default().to_owned(),
                    r["disks_changed"].to_string(),
                ]
            })
            .collect();
        print_table(
            &[
                "VM",
                if enable {
                    "DISKS ENABLED"
                } else {
                    "DISKS DISABLED"
                },
            ],
            &table,
        );
        if enable {
            println!(
                "CBT blocks storage motion of these disks: `xapictl backup cbt disable` first when \
                 one must move"
            );
        } else {
            println!("the next incremental run of these VMs reads their disks in full");
        }
    }
    Ok(Exit::Done)
}
