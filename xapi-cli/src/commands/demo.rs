//! `xapictl demo`: the whole story on the embedded simulator, with nothing else installed or
//! running. The demo pools start; the primary replicates its database to its LVM-over-iSCSI
//! SRs; every VM of the primary is backed up into a local repository; a test failover runs in
//! the DR pool and is cleaned up; then the primary site is lost (the mirror breaks, the pool
//! stops answering), the failover is planned with newest-wins reconciliation and run, and the
//! vApps come up in order with their delays on the simulated clock; a VM that was not on
//! replicated storage is restored from the backup into the DR pool and started.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use futures::StreamExt as _;
use serde::Serialize;
use xapi_backup::export::backup_vm;
use xapi_backup::import::{RestoreOptions, restore_vm};
use xapi_backup::repo::{CreateOptions, Repository, RestorePointKind, StreamRole, Target};
use xapi_core::api::VmPowerState;
use xapi_core::client::{Client, Password, SessionHandle};
use xapi_dr::configure::{replication_candidates, set_replication};
use xapi_dr::plan::{Mode, PlanRequest, Selection, reconcile_and_plan};
use xapi_dr::reconcile::{Preferences, Recovered};
use xapi_dr::run::{Run, RunOptions};
use xapi_dr::source::{
    DiscoverOptions, IntroducedStorage, MetadataCopy, discover, introduce, probe,
};
use xapi_dr::target::read_target_pool;
use xapi_sim::{
    DEFAULT_PASSWORD, DEMO_MIRROR_DEVICE_CONFIG, MirrorMode, Scenario, SimConfig, Simulator,
};

use crate::exit::Failure;
use crate::output::{human_bytes, print_json};

/// Options of `xapictl demo`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DemoArgs {
    /// Keep the simulator's state and the backup repository in this directory (default: a
    /// temporary one, removed at the end).
    #[arg(long)]
    keep: Option<PathBuf>,
    /// How many VMs are backed up at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Also write one self-contained HTML page (no network needed to view it): the backups
    /// as bars, the failover's start timeline, the newest-wins decisions and the pre-checks.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

/// One VM backed up.
#[derive(Debug, Serialize)]
struct BackedUp {
    name_label: String,
    restore_point: String,
    disk_bytes: u64,
    new_bytes: u64,
    seconds: f64,
}

/// A start seen on the simulated clock.
#[derive(Debug, Serialize)]
struct Started {
    name_label: String,
    at_seconds: i64,
}

/// The demo's report (`--json`).
#[derive(Debug, Default, Serialize)]
pub(crate) struct DemoReport {
    replication_srs: Vec<String>,
    backups: Vec<BackedUp>,
    backup_seconds: f64,
    backup_bytes_read: u64,
    backup_bytes_stored: u64,
    test_failover_vms: usize,
    test_failover_cleaned_up: bool,
    copies_found: usize,
    chosen_copy: String,
    failover_vms: Vec<String>,
    failover_calls: usize,
    starts: Vec<Started>,
    restored_vm: String,
    restored_vm_power_state: String,
    total_seconds: f64,
}

fn fail(step: &str) -> impl Fn(String) -> Failure + '_ {
    move |error| Failure::failed(format!("demo: {step}: {error}"))
}

async fn login(url: &str) -> Result<SessionHandle, Failure> {
    Client::builder(url)
        .build()
        .map_err(|e| fail("client")(e.to_string()))?
        .login_with_password(
            "root",
            Password::new(DEFAULT_PASSWORD),
            "1.0",
            "xapictl demo",
        )
        .await
        .map_err(|e| fail("login")(e.to_string()))
}

/// The standalone VMs and vApps whose disks are on the mirrored SR.
const ON_MIRRORED_STORAGE: &[&str] = &["web-shop", "erp", "mail", "dns-1", "legacy-crm", "ldap"];

/// Runs the demo; `say` prints a line for people (nothing with `--json`).
#[allow(clippy::too_many_lines)]
pub(crate) async fn run(args: &DemoArgs, json: bool) -> Result<DemoReport, Failure> {
    let say = |line: String| {
        if !json {
            println!("{line}");
        }
    };
    let started = Instant::now();
    let temporary = tempfile::tempdir().map_err(|e| fail("temporary directory")(e.to_string()))?;
    let base = args
        .keep
        .clone()
        .unwrap_or_else(|| temporary.path().to_owned());
    let sim = Simulator::start(SimConfig {
        state_dir: Some(base.join("sim")),
        clock_speed: 200.0,
        ..SimConfig::with_scenario(Scenario::Demo)
    })
    .await
    .map_err(|e| fail("starting the simulator")(e.to_string()))?;
    let url = |name: &str| sim.pool(name).map(|p| p.url.clone()).unwrap_or_default();
    say(format!(
        "1. simulator: primary {} and DR pool {}",
        url("primary"),
        url("dr")
    ));
    let primary = login(&url("primary")).await?;
    let dr = login(&url("dr")).await?;
    let mut report = DemoReport::default();

    // 2. DR replication on the SRs that can hold it
    let candidates = replication_candidates(&primary)
        .await
        .map_err(|e| fail("replication candidates")(e.to_string()))?;
    let wanted: Vec<&str> = candidates.iter().map(|c| c.uuid.as_str()).collect();
    set_replication(&primary, &wanted)
        .await
        .map_err(|e| fail("enabling replication")(e.to_string()))?;
    report.replication_srs = candidates.iter().map(|c| c.name_label.clone()).collect();
    say(format!(
        "2. the primary replicates its database to {}",
        report.replication_srs.join(" and ")
    ));

    // 3. back up every VM of the primary
    let repo = Repository::create(
        &Target::LocalDir(base.join("repo")),
        CreateOptions::default(),
    )
    .await
    .map_err(|e| fail("creating the repository")(e.to_string()))?;
    let vms = primary
        .vm()
        .get_all_records()
        .await
        .map_err(|e| fail("listing VMs")(e.to_string()))?;
    let mut to_back_up: Vec<_> = vms
        .iter()
        .filter(|(_, vm)| !vm.is_a_template && !vm.is_a_snapshot && !vm.is_control_domain)
        .map(|(r, vm)| (r.clone(), (*vm.name_label).to_owned()))
        .collect();
    to_back_up.sort_by(|a, b| a.1.cmp(&b.1));
    let backup_started = Instant::now();
    let results: Vec<_> = futures::stream::iter(to_back_up.iter().map(|(vm, name)| {
        let (primary, repo) = (primary.clone(), repo.clone());
        async move {
            let began = Instant::now();
            let outcome = backup_vm(&primary, &repo, vm, Some("demo")).await;
            (name.clone(), began.elapsed().as_secs_f64(), outcome)
        }
    }))
    .buffer_unordered(args.concurrency.max(1))
    .collect()
    .await;
    for (name, seconds, outcome) in results {
        let done = outcome.map_err(|e| fail("backup")(format!("{name}: {e}")))?;
        let new_bytes: u64 = done.manifest.streams.iter().map(|s| s.new_bytes).sum();
        say(format!(
            "   backed up {name}: {} read, {} new in the repository, {seconds:.1} s",
            human_bytes(i64::try_from(done.bytes_read).unwrap_or(i64::MAX)),
            human_bytes(i64::try_from(new_bytes).unwrap_or(i64::MAX)),
        ));
        report.backup_bytes_read += done.bytes_read;
        report.backup_bytes_stored += new_bytes;
        report.backups.push(BackedUp {
            name_label: name,
            restore_point: done.manifest.id.to_string(),
            disk_bytes: done.bytes_read,
            new_bytes,
            seconds,
        });
    }
    report
        .backups
        .sort_by(|a, b| a.name_label.cmp(&b.name_label));
    report.backup_seconds = backup_started.elapsed().as_secs_f64();
    say(format!(
        "3. {} VMs backed up in {:.1} s: {} read, {} stored (deduplicated across clones)",
        report.backups.len(),
        report.backup_seconds,
        human_bytes(i64::try_from(report.backup_bytes_read).unwrap_or(i64::MAX)),
        human_bytes(i64::try_from(report.backup_bytes_stored).unwrap_or(i64::MAX)),
    ));

    // 4. a test failover in the DR pool, cleaned up
    let device: BTreeMap<String, String> = DEMO_MIRROR_DEVICE_CONFIG
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let storage = attach_mirrored_storage(&dr, &device).await?;
    let copies = read_copies(&dr).await?;
    let selection = Selection::Named(
        ON_MIRRORED_STORAGE
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
    );
    let target = read_target_pool(&dr)
        .await
        .map_err(|e| fail("reading the DR pool")(e.to_string()))?;
    let mut request = PlanRequest::new(Mode::TestFailover);
    request.selection = selection.clone();
    let (_, test_plan) = reconcile_and_plan(
        &copies,
        &target,
        None,
        &Recovered::default(),
        &Preferences::default(),
        &request,
    )
    .map_err(|e| fail("planning the test failover")(e.to_string()))?;
    let mut test = Run::new(dr.clone(), test_plan, RunOptions::default())
        .map_err(|e| fail("test failover")(e.to_string()))?;
    test.adopt(&storage)
        .map_err(|e| fail("test failover")(e.to_string()))?;
    let test_report = test
        .execute()
        .await
        .map_err(|e| fail("test failover")(e.to_string()))?;
    report.test_failover_vms = test_report.journal.recovered_vms.len();
    let cleaned = test
        .cleanup()
        .await
        .map_err(|e| fail("test failover clean-up")(e.to_string()))?;
    report.test_failover_cleaned_up = cleaned.journal.cleaned_up;
    say(format!(
        "4. test failover: {} VMs recovered paused on an isolated network in the DR pool, then cleaned up",
        report.test_failover_vms
    ));

    // 5. the primary site is lost; failover
    sim.set_mirror_mode(MirrorMode::Broken)
        .map_err(|e| fail("breaking the mirror")(e.to_string()))?;
    sim.set_reachable("primary", false)
        .map_err(|e| fail("losing the primary")(e.to_string()))?;
    say("5. disaster: the primary stops answering; storage mirroring is halted".into());
    attach_mirrored_storage(&dr, &device).await?;
    let copies = read_copies(&dr).await?;
    report.copies_found = copies.len();
    let target = read_target_pool(&dr)
        .await
        .map_err(|e| fail("reading the DR pool")(e.to_string()))?;
    let mut request = PlanRequest::new(Mode::Failover);
    request.selection = selection;
    let (reconciliation, plan) = reconcile_and_plan(
        &copies,
        &target,
        None,
        &Recovered::default(),
        &Preferences::default(),
        &request,
    )
    .map_err(|e| fail("planning the failover")(e.to_string()))?;
    if let Some(pool) = reconciliation.pools.first()
        && let Some(chosen) = &pool.chosen
    {
        report.chosen_copy = format!("{} (generation {})", chosen.origin, chosen.generation);
        say(format!(
            "   {} copies of the primary's metadata found; newest wins: {}",
            pool.copies.len(),
            report.chosen_copy
        ));
        // each reason names its copy (pool, generation, origin) before saying why
        for (_, reason) in &pool.copies {
            say(format!("     {}", reason.message));
        }
    }
    for check in plan
        .checks
        .iter()
        .filter(|c| c.severity != xapi_dr::plan::Severity::Passed)
    {
        say(format!(
            "   pre-check {:?}: {}",
            check.severity, check.message
        ));
    }
    let failover = Run::new(dr.clone(), plan.clone(), RunOptions::default())
        .map_err(|e| fail("failover")(e.to_string()))?
        .execute()
        .await
        .map_err(|e| fail("failover")(e.to_string()))?;
    report.failover_calls = failover.calls.len();
    report.failover_vms = plan.vms.iter().map(|vm| vm.name_label.clone()).collect();
    let vms = dr
        .vm()
        .get_all_records()
        .await
        .map_err(|e| fail("reading the DR pool")(e.to_string()))?;
    let metrics = dr
        .vm_metrics()
        .get_all_records()
        .await
        .map_err(|e| fail("reading the DR pool")(e.to_string()))?;
    let mut starts: Vec<(i64, String)> = vms
        .values()
        .filter(|vm| !vm.is_a_snapshot && vm.power_state == VmPowerState::Running)
        .filter_map(|vm| {
            metrics.get(&vm.metrics).map(|m| {
                (
                    m.start_time.to_unix_seconds_assuming_utc(),
                    (*vm.name_label).to_owned(),
                )
            })
        })
        .collect();
    starts.sort();
    let first = starts.first().map_or(0, |(t, _)| *t);
    say(format!(
        "6. failover: {} VMs recovered in {} calls; started on the simulated clock:",
        report.failover_vms.len(),
        report.failover_calls
    ));
    for (at, name) in &starts {
        say(format!("   +{:>3} s  {name}", at - first));
        report.starts.push(Started {
            name_label: name.clone(),
            at_seconds: at - first,
        });
    }

    // 7. a VM that was on unmirrored storage comes back from the backup
    let fileserver = repo
        .list(RestorePointKind::Vm)
        .await
        .map_err(|e| fail("listing restore points")(e.to_string()))?
        .into_iter()
        .find(|m| {
            m.vm.as_ref()
                .is_some_and(|vm| vm.name_label == "fileserver")
        })
        .ok_or_else(|| fail("restore")("no restore point of fileserver".into()))?;
    let restored = restore_vm(&dr, &repo, &fileserver, &RestoreOptions::default())
        .await
        .map_err(|e| fail("restoring fileserver")(e.to_string()))?;
    dr.vm()
        .start(&restored, false, false)
        .await
        .map_err(|e| fail("starting the restored VM")(e.to_string()))?;
    let record = dr
        .vm()
        .get_record(&restored)
        .await
        .map_err(|e| fail("reading the restored VM")(e.to_string()))?;
    (*record.name_label).clone_into(&mut report.restored_vm);
    report.restored_vm_power_state = record.power_state.to_string();
    let disks = fileserver
        .streams
        .iter()
        .filter(|s| s.role == StreamRole::Disk)
        .count();
    say(format!(
        "7. restored {} ({disks} disks, not on mirrored storage) from the backup into the DR pool with new MACs: {}",
        report.restored_vm, report.restored_vm_power_state
    ));
    if let Some(path) = &args.html {
        let bars: Vec<crate::html::BackupBar<'_>> = report
            .backups
            .iter()
            .map(|b| crate::html::BackupBar {
                name: &b.name_label,
                read: b.disk_bytes,
                new: b.new_bytes,
                seconds: b.seconds,
            })
            .collect();
        std::fs::write(path, crate::html::demo_page(&bars, &plan, &reconciliation))
            .map_err(|e| fail("writing the HTML page")(format!("{}: {e}", path.display())))?;
        say(format!("   the story as a page: {}", path.display()));
    }
    report.total_seconds = started.elapsed().as_secs_f64();
    say(format!(
        "done in {:.1} s. A real site would now: point DNS and clients at the DR pool, keep the backups going there, and plan the failback (`xapictl dr failback`) once the primary is back.",
        report.total_seconds
    ));
    if json {
        print_json(&report);
    }
    Ok(report)
}

/// Probes the mirrored LUNs for SRs holding metadata and introduces them in the DR pool.
async fn attach_mirrored_storage(
    dr: &SessionHandle,
    device: &BTreeMap<String, String>,
) -> Result<IntroducedStorage, Failure> {
    let probed = probe(dr, "lvmoiscsi", device)
        .await
        .map_err(|e| fail("probing the mirrored LUNs")(e.to_string()))?;
    let whitelist: Vec<&str> = probed.iter().map(|sr| sr.uuid.as_str()).collect();
    introduce(dr, "lvmoiscsi", device, &whitelist)
        .await
        .map_err(|e| fail("introducing the mirrored SRs")(e.to_string()))
}

/// Every copy of metadata the DR pool sees, read through its API.
async fn read_copies(dr: &SessionHandle) -> Result<Vec<MetadataCopy>, Failure> {
    let mut copies = Vec::new();
    for found in discover(dr, &DiscoverOptions::default())
        .await
        .map_err(|e| fail("finding metadata")(e.to_string()))?
    {
        copies.push(
            MetadataCopy::from_vdi(dr, &found.vdi)
                .await
                .map_err(|e| fail("reading metadata")(e.to_string()))?,
        );
    }
    Ok(copies)
}
