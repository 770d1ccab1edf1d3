//! `xapictl backup show|verify|forget|prune`: what a restore point holds, whether the repository
//! reads back whole, and deletion in two separate steps (forget manifests by a retention
//! policy, then prune the data nothing references any more).

use clap::Args;
use xapi_backup::repo::{
    CheckOptions, Manifest, PruneOptions, Repository, RestorePointKind, RetentionPolicy,
    VerifyReport,
};

use xapi_backup::deep_verify::{DeepVerifyOptions, deep_verify};
use xapi_core::client::SessionHandle;

use crate::commands::lookup;
use crate::exit::{Exit, Failure, explain};
use crate::output::{human_bytes, print_json, print_table};
use crate::repo_args::RepoArgs;

/// The kind of restore points a command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum KindArg {
    /// Whole VMs.
    Vm,
    /// Single disks.
    Disk,
    /// Pool database dumps.
    PoolMetadata,
    /// Host backups.
    Host,
}

impl From<KindArg> for RestorePointKind {
    fn from(kind: KindArg) -> Self {
        match kind {
            KindArg::Vm => RestorePointKind::Vm,
            KindArg::Disk => RestorePointKind::Disk,
            KindArg::PoolMetadata => RestorePointKind::PoolMetadata,
            KindArg::Host => RestorePointKind::Host,
        }
    }
}

/// Options of `xapictl backup show`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ShowArgs {
    /// The restore point's id (`backup list`).
    id: String,
    #[command(flatten)]
    repo: RepoArgs,
}

/// Options of `xapictl backup verify`.
#[derive(Debug, Clone, Args)]
pub(crate) struct VerifyArgs {
    /// Restore points to verify by reading every chunk back; none: the whole repository.
    ids: Vec<String>,
    /// For the whole repository: read every referenced chunk back, not only check that it
    /// exists.
    #[arg(long)]
    read_data: bool,
    /// Also restore each given VM restore point into the pool (on --sr), check its disks,
    /// start it paused, then remove it and its disks.
    #[arg(long, requires = "ids")]
    deep: bool,
    /// The SR for --deep's trial restores, by UUID or name (default: the pool's default SR).
    #[arg(long, requires = "deep")]
    sr: Option<String>,
    #[command(flatten)]
    repo: RepoArgs,
}

/// Options of `xapictl backup forget`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ForgetArgs {
    /// Forget exactly these restore points (instead of a policy).
    #[arg(long = "id", conflicts_with_all = ["keep_last", "keep_daily", "keep_weekly", "keep_monthly"])]
    ids: Vec<String>,
    /// Keep the newest N of each VM (or disk, pool, host).
    #[arg(long, default_value_t = 0)]
    keep_last: u32,
    /// Keep the newest of each of the last N days that have one.
    #[arg(long, default_value_t = 0)]
    keep_daily: u32,
    /// Keep the newest of each of the last N ISO weeks that have one.
    #[arg(long, default_value_t = 0)]
    keep_weekly: u32,
    /// Keep the newest of each of the last N months that have one.
    #[arg(long, default_value_t = 0)]
    keep_monthly: u32,
    /// Which restore points the policy applies to.
    #[arg(long, value_enum, default_value = "vm")]
    kind: KindArg,
    /// Say what would be forgotten; forget nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    repo: RepoArgs,
}

/// Options of `xapictl backup prune`.
#[derive(Debug, Clone, Args)]
pub(crate) struct PruneArgs {
    /// How long data must stay unreferenced, across two prunes, before it is deleted (hours).
    /// It must exceed the longest backup that may be running meanwhile.
    #[arg(long, default_value_t = 24)]
    grace_hours: u32,
    /// Say what would be deleted; delete nothing and write no mark.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    repo: RepoArgs,
}

/// Finds a restore point of any kind by id, or says how to list them.
pub(crate) async fn find(
    repo: &Repository,
    args: &RepoArgs,
    id: &str,
) -> Result<Manifest, Failure> {
    let all = repo.list_all().await.map_err(|e| args.failure(&e))?;
    all.into_iter()
        .find(|m| m.id.as_str() == id)
        .ok_or_else(|| {
            Failure::usage(format!(
                "no restore point {id} in {args} (see `xapictl backup list`)"
            ))
        })
}

/// `backup show ID`: the manifest, as a table of streams or as JSON.
pub(crate) async fn show(args: &ShowArgs, json: bool) -> Result<Exit, Failure> {
    let repo = args.repo.open().await?;
    let manifest = find(&repo, &args.repo, &args.id).await?;
    if json {
        print_json(&manifest);
        return Ok(Exit::Done);
    }
    println!("restore point {}", manifest.id.as_str());
    println!("  kind      {}", manifest.kind.dir());
    println!("  subject   {}", manifest.subject);
    if let Some(vm) = &manifest.vm {
        println!("  VM        {} ({})", vm.name_label, vm.uuid);
        if let Some(snapshot) = &vm.snapshot_uuid {
            println!("  snapshot  {snapshot}");
        }
    }
    println!("  taken     {}", manifest.created_at.to_rfc3339());
    println!("  completed {}", manifest.completed_at.to_rfc3339());
    if let Some(job) = &manifest.job_id {
        println!("  job       {job}");
    }
    println!(
        "  written by {} {} (repository format {})",
        manifest.tool.name, manifest.tool.version, manifest.tool.repository_format
    );
    let rows: Vec<Vec<String>> = manifest
        .streams
        .iter()
        .map(|s| {
            vec![
                s.key.clone(),
                s.name.clone().unwrap_or_default(),
                human_bytes(i64::try_from(s.size).unwrap_or(i64::MAX)),
                s.stored_chunks.to_string(),
                s.zero_chunks.to_string(),
                s.new_chunks.to_string(),
            ]
        })
        .collect();
    println!();
    print_table(&["STREAM", "NAME", "SIZE", "CHUNKS", "ZERO", "NEW"], &rows);
    Ok(Exit::Done)
}

impl VerifyArgs {
    /// Whether the verification needs the pool (`--deep`).
    pub(crate) fn needs_pool(&self) -> bool {
        self.deep
    }
}

/// `backup verify`: exit 1 when anything is missing or damaged. With `--deep`, `pool` is the
/// session and URL to restore into.
pub(crate) async fn verify(
    args: &VerifyArgs,
    pool: Option<(&SessionHandle, &str)>,
    json: bool,
) -> Result<Exit, Failure> {
    let repo = args.repo.open().await?;
    if let Some((session, url)) = pool {
        return deep(args, &repo, session, url, json).await;
    }
    let mut report = VerifyReport::default();
    if args.ids.is_empty() {
        report = repo
            .check(CheckOptions {
                read_data: args.read_data,
            })
            .await
            .map_err(|e| Failure::failed(format!("{}: {e}", args.repo)))?;
    } else {
        for id in &args.ids {
            let manifest = find(&repo, &args.repo, id).await?;
            let one = repo
                .verify_restore_point(&manifest)
                .await
                .map_err(|e| Failure::failed(format!("{}: {id}: {e}", args.repo)))?;
            merge(&mut report, one);
        }
    }
    if json {
        print_json(&report);
    } else {
        for problem in &report.problems {
            println!(
                "PROBLEM {}",
                serde_json::to_string(problem).unwrap_or_default()
            );
        }
        println!(
            "{} restore points, {} streams, {} chunk references, {} chunks read: {}",
            report.restore_points,
            report.streams,
            report.chunk_references,
            report.chunks_read,
            if report.is_ok() {
                "no problem".to_owned()
            } else {
                format!("{} problems", report.problems.len())
            }
        );
        if !report.orphans.is_empty() {
            println!(
                "{} unreferenced objects (not a problem: `backup prune` removes them)",
                report.orphans.len()
            );
        }
    }
    if report.is_ok() {
        Ok(Exit::Done)
    } else {
        Err(Failure::failed(format!(
            "{}: {} problems found (missing or damaged data)",
            args.repo,
            report.problems.len()
        )))
    }
}

/// What `backup verify --deep` reports per restore point.
#[derive(Debug, serde::Serialize)]
struct DeepResult {
    id: String,
    ok: bool,
    repository_problems: usize,
    checks: Vec<serde_json::Value>,
    removed: Vec<String>,
    left: Vec<String>,
}

async fn deep(
    args: &VerifyArgs,
    repo: &Repository,
    session: &SessionHandle,
    url: &str,
    json: bool,
) -> Result<Exit, Failure> {
    let sr = match &args.sr {
        Some(text) => Some(lookup::sr(session, url, text).await?),
        None => None,
    };
    let options = DeepVerifyOptions { sr };
    let mut results = Vec::new();
    for id in &args.ids {
        let manifest = find(repo, &args.repo, id).await?;
        let report = deep_verify(session, repo, &manifest, &options)
            .await
            .map_err(|e| match e {
                xapi_backup::EngineError::Xapi { source, .. } => explain(url, &source),
                other => Failure::failed(format!("{id}: {other}")),
            })?;
        results.push(DeepResult {
            id: id.clone(),
            ok: report.is_ok(),
            repository_problems: report.repository.problems.len(),
            checks: report
                .checks
                .iter()
                .map(
                    |c| serde_json::json!({"what": c.what, "passed": c.passed, "detail": c.detail}),
                )
                .collect(),
            removed: report.removed,
            left: report.left,
        });
    }
    if json {
        print_json(&results);
    } else {
        for result in &results {
            println!(
                "{}: {}",
                result.id,
                if result.ok {
                    "restores and starts"
                } else {
                    "FAILED"
                }
            );
            for check in &result.checks {
                println!(
                    "  {} {}: {}",
                    if check["passed"] == true {
                        "ok  "
                    } else {
                        "FAIL"
                    },
                    check["what"].as_str().unwrap_or_default(),
                    check["detail"].as_str().unwrap_or_default()
                );
            }
            for left in &result.left {
                println!("  LEFT in the pool: {left}");
            }
        }
    }
    let failed = results
        .iter()
        .filter(|r| !r.ok || !r.left.is_empty())
        .count();
    if failed == 0 {
        Ok(Exit::Done)
    } else {
        Err(Failure::failed(format!(
            "{failed} of {} restore points failed the deep verify (or left something in the pool)",
            results.len()
        )))
    }
}

fn merge(total: &mut VerifyReport, one: VerifyReport) {
    total.restore_points += one.restore_points;
    total.streams += one.streams;
    total.chunk_references += one.chunk_references;
    total.chunks_read += one.chunks_read;
    total.problems.extend(one.problems);
    total.orphans.extend(one.orphans);
}

/// `backup forget`: by id, or by a retention policy per subject.
pub(crate) async fn forget(args: &ForgetArgs, json: bool) -> Result<Exit, Failure> {
    let repo = args.repo.open().await?;
    if !args.ids.is_empty() {
        let mut forgotten = Vec::new();
        for id in &args.ids {
            let manifest = find(&repo, &args.repo, id).await?;
            if !args.dry_run {
                repo.forget_restore_point(&manifest)
                    .await
                    .map_err(|e| Failure::failed(format!("{}: {id}: {e}", args.repo)))?;
            }
            forgotten.push(id.clone());
        }
        if json {
            print_json(&serde_json::json!({"forgotten": forgotten, "dry_run": args.dry_run}));
        } else {
            for id in &forgotten {
                println!(
                    "{} {id}",
                    if args.dry_run {
                        "would forget"
                    } else {
                        "forgot"
                    }
                );
            }
        }
        return Ok(Exit::Done);
    }
    let policy = RetentionPolicy {
        keep_last: args.keep_last,
        keep_daily: args.keep_daily,
        keep_weekly: args.keep_weekly,
        keep_monthly: args.keep_monthly,
    };
    if policy.is_empty() {
        return Err(Failure::usage(
            "no retention rule: give --keep-last, --keep-daily, --keep-weekly or --keep-monthly \
             (or --id ID to forget one restore point)",
        ));
    }
    let report = repo
        .forget(args.kind.into(), &policy, args.dry_run)
        .await
        .map_err(|e| Failure::failed(format!("{}: {e}", args.repo)))?;
    if json {
        print_json(&report);
        return Ok(Exit::Done);
    }
    let rows: Vec<Vec<String>> = report
        .subjects
        .iter()
        .map(|s| {
            vec![
                s.subject.clone(),
                s.kept.len().to_string(),
                s.forgotten.len().to_string(),
            ]
        })
        .collect();
    print_table(&["SUBJECT", "KEPT", "FORGOTTEN"], &rows);
    if args.dry_run {
        println!("dry run: nothing forgotten");
    } else {
        println!("the data of forgotten restore points goes at the next `backup prune`");
    }
    Ok(Exit::Done)
}

/// `backup prune`: under the repository's maintenance lock.
pub(crate) async fn prune(args: &PruneArgs, json: bool) -> Result<Exit, Failure> {
    let repo = args.repo.open().await?;
    let options = PruneOptions {
        grace: chrono::TimeDelta::hours(i64::from(args.grace_hours)),
        owner: format!("xapictl prune (pid {})", std::process::id()),
        dry_run: args.dry_run,
        ..PruneOptions::default()
    };
    let report = repo
        .prune(&options)
        .await
        .map_err(|e| Failure::failed(format!("{}: {e}", args.repo)))?;
    if json {
        print_json(&report);
        return Ok(Exit::Done);
    }
    println!(
        "{} manifests, {} chunks referenced; {} unreferenced objects: {} deleted chunks, {} \
         deleted indexes ({}), {} left for a later prune (grace {} h){}",
        report.manifests,
        report.referenced_chunks,
        report.unreferenced,
        report.deleted_chunks,
        report.deleted_indexes,
        human_bytes(i64::try_from(report.deleted_bytes).unwrap_or(i64::MAX)),
        report.marked,
        args.grace_hours,
        if args.dry_run { " (dry run)" } else { "" }
    );
    if report.deleted_staged > 0 {
        println!(
            "{} staged files left by interrupted backups removed",
            report.deleted_staged
        );
    }
    Ok(Exit::Done)
}
