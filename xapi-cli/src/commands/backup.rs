//! `xapictl backup init|run|list`: a repository (a local path or S3), VMs of the pool backed
//! up into it (N at a time, a selection, a shard), its restore points listed.

use clap::Args;
use tokio_util::sync::CancellationToken;
use xapi_backup::export::Transport;
use xapi_backup::hooks::Hook;
use xapi_backup::jobs::{JobEvent, JobOptions, JobReport, Selection, VmOutcome, run_job_with};
use xapi_backup::repo::{CreateOptions, Repository};
use xapi_core::client::SessionHandle;

use crate::bars::JobBars;
use crate::exit::{Exit, Failure, explain};
use crate::output::{Progress, count, human_bytes, print_json, print_table};
use crate::repo_args::RepoArgs;

/// Options of `xapictl backup init`.
#[derive(Debug, Clone, Args)]
pub(crate) struct InitArgs {
    /// Encrypt every object (recommended: backups hold vTPM state, NVRAM and disk contents).
    /// With --key-file a new key is written there (keep it apart from the backups: without it
    /// they cannot be read); otherwise a passphrase (XAPI_REPO_PASSPHRASE or typed twice).
    #[arg(long)]
    encrypt: bool,
    #[command(flatten)]
    repo: RepoArgs,
}

/// Options of `xapictl backup run`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
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
    /// Leave this VM out (repeat).
    #[arg(long = "exclude")]
    exclude: Vec<String>,
    /// Only shard K of N (a stable hash of the VM UUID): N workers split a pool.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(u32, u32)>,
    /// How many VMs at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Read only the blocks changed since the last run (CBT over NBD; CBT is enabled on the
    /// disks at the first run, which blocks their storage motion). Every restore point is still
    /// a full one; a disk that cannot be incremental is read whole, and the report says why.
    #[arg(long)]
    incremental: bool,
    /// With --incremental: keep resume state here, so that an interrupted run continues from
    /// the last chunk stored (its snapshot is kept until then).
    #[arg(long, requires = "incremental")]
    state_dir: Option<std::path::PathBuf>,
    /// With --incremental: NBD connections per disk, each reading a share of the blocks at
    /// the same time (large disks read in full).
    #[arg(long, requires = "incremental", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    nbd_connections: u16,
    /// At most this many backups at once per host (default: no limit per host).
    #[arg(long)]
    per_host: Option<usize>,
    /// At most this many bytes per second for all exports of the job together (suffixes K, M,
    /// G: powers of 1024).
    #[arg(long, value_parser = parse_rate)]
    bandwidth: Option<u64>,
    /// Run this command before each VM's snapshot (to flush an application); it gets
    /// XAPI_BACKUP_VM_UUID and XAPI_BACKUP_VM_NAME; a non-zero exit fails that VM.
    #[arg(long, value_name = "COMMAND")]
    pre_snapshot: Option<String>,
    /// Run this command after each VM's snapshot (also XAPI_BACKUP_SNAPSHOT_UUID).
    #[arg(long, value_name = "COMMAND")]
    post_snapshot: Option<String>,
    /// Stream the exports over plain HTTP to this port of the same host (80 on a real host),
    /// for a trusted backup network only: the data and the session cookie travel in the clear.
    /// XAPI calls stay on verified TLS and every chunk is still verified.
    #[arg(long, value_name = "PORT")]
    plain_http_port: Option<u16>,
    #[command(flatten)]
    repo: RepoArgs,
}

/// `50M` → 50 MiB: a byte rate with an optional K, M or G suffix (powers of 1024).
fn parse_rate(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.trim().char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        other => return Err(format!("{text:?}: unknown unit {other} (use K, M or G)")),
    };
    let value: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: not a number of bytes per second"))?;
    if value == 0 {
        return Err(format!("{text:?}: the limit must be above zero"));
    }
    value
        .checked_shl(shift)
        .filter(|v| v >> shift == value)
        .ok_or_else(|| format!("{text:?}: too large"))
}

fn parse_shard(text: &str) -> Result<(u32, u32), String> {
    let (k, n) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: expected K/N"))?;
    let k: u32 = k
        .parse()
        .map_err(|_| format!("{text:?}: K is not a number"))?;
    let n: u32 = n
        .parse()
        .map_err(|_| format!("{text:?}: N is not a number"))?;
    if k == 0 || k > n {
        return Err(format!("{text:?}: K must be between 1 and N"));
    }
    Ok((k, n))
}

/// Options of `xapictl backup list`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ListArgs {
    /// Only this kind of restore points.
    #[arg(long, value_enum)]
    kind: Option<crate::commands::backup_repo::KindArg>,
    #[command(flatten)]
    repo: RepoArgs,
}

/// Creates the repository.
pub(crate) async fn init(args: &InitArgs, json: bool) -> Result<Exit, Failure> {
    if args.repo.key_file.is_some() && !args.encrypt {
        return Err(Failure::usage(
            "--key-file without --encrypt: add --encrypt to create an encrypted repository",
        ));
    }
    let encryption = if args.encrypt {
        Some(args.repo.new_secret()?)
    } else {
        None
    };
    let repo = Repository::create(
        &args.repo.target()?,
        CreateOptions {
            encryption,
            ..CreateOptions::default()
        },
    )
    .await
    .map_err(|e| args.repo.failure(&e))?;
    if json {
        print_json(&serde_json::json!({
            "repository": args.repo.to_string(),
            "encrypted": repo.is_encrypted(),
        }));
    } else {
        println!(
            "created {} repository {}",
            if repo.is_encrypted() {
                "an encrypted"
            } else {
                "a"
            },
            args.repo
        );
    }
    Ok(Exit::Done)
}

/// Backs the selected VMs up; exit 3 when some failed.
pub(crate) async fn run(
    session: &SessionHandle,
    url: &str,
    args: &RunArgs,
    json: bool,
    progress: Progress,
    cancel: &CancellationToken,
) -> Result<Exit, Failure> {
    let selection = Selection {
        all: args.all,
        vms: args.vms.clone(),
        tags: args.tags.clone(),
        vapps: args.vapps.clone(),
        exclude: args.exclude.clone(),
        shard: args.shard,
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
    let repo = args.repo.open().await?;
    if args.incremental {
        return crate::commands::backup_incremental::run(
            session,
            url,
            &repo,
            &selection,
            args.concurrency,
            args.state_dir.clone(),
            usize::from(args.nbd_connections),
            json,
            progress,
            cancel,
        )
        .await;
    }
    let mut options = JobOptions::new(format!("job-{}", std::process::id()), args.concurrency);
    options.per_host = args.per_host;
    options.bandwidth = args.bandwidth;
    options.cancel = cancel.clone();
    options.pre_snapshot = args.pre_snapshot.as_deref().map(hook).transpose()?;
    options.post_snapshot = args.post_snapshot.as_deref().map(hook).transpose()?;
    if let Some(port) = args.plain_http_port {
        options.transport = Transport::PlainHttp { port };
    }
    let bars = (progress == Progress::Text && !json).then(|| JobBars::new(None, "VMs backed up"));
    let report = run_job_with(session, &repo, &selection, &options, |event| {
        show_event(progress, bars.as_ref(), &event);
    })
    .await
    .map_err(|e| match e {
        xapi_backup::EngineError::Xapi { source, .. } => explain(url, &source),
        other => Failure::usage(other.to_string()),
    })?;
    drop(bars);
    print_report(&report, json);
    if report.cancelled {
        let cancelled = report
            .vms
            .iter()
            .filter(|vm| matches!(vm.outcome, VmOutcome::Cancelled))
            .count();
        return Err(Failure {
            exit: Exit::Interrupted,
            message: format!(
                "interrupted: {cancelled} VMs cancelled (their snapshots removed, no restore \
                 point written for them); {} backed up before",
                report.vms.len() - cancelled - report.failed()
            ),
        });
    }
    if report.failed() > 0 {
        return Err(Failure {
            exit: Exit::PartlyDone,
            message: format!("{} of {} VMs failed", report.failed(), report.vms.len()),
        });
    }
    Ok(Exit::Done)
}

/// A hook command line, split on spaces (quote nothing: use a script for anything more).
fn hook(command: &str) -> Result<Hook, Failure> {
    let argv: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
    if argv.is_empty() {
        return Err(Failure::usage("an empty hook command"));
    }
    Ok(Hook::Command(argv))
}

/// A job event on stderr: NDJSON, bars (or lines when stderr is not a terminal), or nothing.
fn show_event(progress: Progress, bars: Option<&JobBars>, event: &JobEvent) {
    match (progress, bars, event) {
        (Progress::Json, _, _) => {
            eprintln!("{}", serde_json::to_string(event).unwrap_or_default());
        }
        (Progress::Text, Some(bars), JobEvent::Started { name_label }) => {
            bars.start(name_label, None);
        }
        (Progress::Text, Some(bars), JobEvent::Progress(p)) => {
            bars.advance(
                &p.name_label,
                p.position,
                p.total,
                &format!("{:?}", p.phase),
            );
        }
        (Progress::Text, Some(bars), JobEvent::Job(job)) => {
            bars.set_total(job.vms_total as u64);
        }
        (Progress::Text, Some(bars), JobEvent::Finished(vm)) => {
            let line = match &vm.outcome {
                VmOutcome::Done {
                    new_bytes,
                    deduplicated_chunks,
                    ..
                } => format!(
                    "backed up {} in {:.1} s ({} new, {} deduplicated)",
                    vm.name_label,
                    vm.seconds,
                    human_bytes(i64::try_from(*new_bytes).unwrap_or(i64::MAX)),
                    count(*deduplicated_chunks, "chunk")
                ),
                VmOutcome::Failed { error } => format!("FAILED {}: {error}", vm.name_label),
                VmOutcome::Cancelled => format!("cancelled {}", vm.name_label),
            };
            bars.finish(&vm.name_label, &line);
        }
        _ => {}
    }
}

fn print_report(report: &JobReport, json: bool) {
    if json {
        print_json(report);
        return;
    }
    println!(
        "{} in {:.1} s: {} read, {} new ({} new, {} deduplicated); at most {} at once",
        count(report.vms.len() as u64, "VM"),
        report.seconds,
        human_bytes(i64::try_from(report.bytes_read).unwrap_or(i64::MAX)),
        human_bytes(i64::try_from(report.new_bytes).unwrap_or(i64::MAX)),
        count(report.new_chunks, "chunk"),
        report.deduplicated_chunks,
        report.max_in_flight
    );
    if report.leftover_snapshots_removed > 0 {
        println!(
            "removed {} snapshots an interrupted earlier run had left",
            report.leftover_snapshots_removed
        );
    }
}

/// Lists the restore points (one kind or all), oldest first within a kind.
pub(crate) async fn list(args: &ListArgs, json: bool) -> Result<Exit, Failure> {
    let repo = args.repo.open().await?;
    let points = match args.kind {
        Some(kind) => repo.list(kind.into()).await,
        None => repo.list_all().await,
    }
    .map_err(|e| args.repo.failure(&e))?;
    if json {
        print_json(&points);
        return Ok(Exit::Done);
    }
    let rows: Vec<Vec<String>> = points
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.kind.dir().to_owned(),
                m.vm.as_ref()
                    .map_or_else(|| m.subject.clone(), |vm| vm.name_label.clone()),
                m.created_at.to_rfc3339(),
                human_bytes(i64::try_from(m.total_size()).unwrap_or(i64::MAX)),
            ]
        })
        .collect();
    print_table(&["ID", "KIND", "OF", "TAKEN", "SIZE"], &rows);
    Ok(Exit::Done)
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn rates_read_with_binary_suffixes() {
        assert_eq!(parse_rate("1024"), Ok(1024));
        assert_eq!(parse_rate("50M"), Ok(50 << 20));
        assert_eq!(parse_rate("2k"), Ok(2048));
        assert_eq!(parse_rate("1G"), Ok(1 << 30));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("5X").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("99999999999999999999G").is_err());
    }
}
