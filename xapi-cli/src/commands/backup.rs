//! `xapictl backup init|run|list` and `xapictl restore`: a repository on a local path, VMs of
//! the pool backed up into it (N at a time, a selection, a shard), its restore points listed,
//! and one restored as a new VM.

use std::path::PathBuf;

use clap::Args;
use xapi_backup::import::{RestoreOptions, restore_vm};
use xapi_backup::jobs::{JobEvent, JobReport, Selection, VmOutcome, run_job};
use xapi_backup::repo::{
    CreateOptions, Manifest, OpenOptions, Repository, RestorePointKind, Secret, Target,
};
use xapi_core::client::SessionHandle;

use crate::exit::{Exit, Failure, explain};
use crate::output::{Progress, human_bytes, print_json, print_table};

/// Where the repository is, and its key when it is encrypted.
#[derive(Debug, Clone, Args)]
pub(crate) struct RepoArgs {
    /// The repository: a local directory.
    #[arg(long, env = "XAPI_REPO")]
    repo: PathBuf,
    /// The key file of an encrypted repository (`backup init --encrypt` writes one).
    #[arg(long)]
    key_file: Option<PathBuf>,
}

impl RepoArgs {
    fn target(&self) -> Target {
        Target::LocalDir(self.repo.clone())
    }

    async fn open(&self) -> Result<Repository, Failure> {
        let secret = self
            .key_file
            .as_deref()
            .map(Secret::key_file)
            .transpose()
            .map_err(|e| Failure::usage(e.to_string()))?;
        Repository::open(
            &self.target(),
            OpenOptions {
                secret,
                ..OpenOptions::default()
            },
        )
        .await
        .map_err(|e| Failure::failed(format!("{}: {e}", self.repo.display())))
    }
}

/// Options of `xapictl backup init`.
#[derive(Debug, Clone, Args)]
pub(crate) struct InitArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Encrypt every object; a new key is written to --key-file (keep it apart from the
    /// backups: without it they cannot be read). Backups hold secrets (vTPM, NVRAM).
    #[arg(long, requires = "key_file")]
    encrypt: bool,
}

/// Options of `xapictl backup run`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    repo: RepoArgs,
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
    #[command(flatten)]
    repo: RepoArgs,
}

/// Options of `xapictl restore`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RestoreArgs {
    /// The restore point's id (`backup list`).
    id: String,
    #[command(flatten)]
    repo: RepoArgs,
    /// A name for the restored VM (default: the source VM's).
    #[arg(long)]
    name: Option<String>,
    /// Start the VM once restored.
    #[arg(long)]
    start: bool,
    /// Restore in place of the source VM (its UUID and MACs come back; it must be halted).
    /// Without it the restore is a new VM with new UUIDs and MACs.
    #[arg(long)]
    overwrite: bool,
}

/// Creates the repository.
pub(crate) async fn init(args: &InitArgs, json: bool) -> Result<Exit, Failure> {
    let encryption = if args.encrypt {
        let path = args.repo.key_file.as_deref().expect("clap requires it");
        Some(Secret::generate_key_file(path).map_err(|e| Failure::failed(e.to_string()))?)
    } else {
        None
    };
    let repo = Repository::create(
        &args.repo.target(),
        CreateOptions {
            encryption,
            ..CreateOptions::default()
        },
    )
    .await
    .map_err(|e| Failure::failed(format!("{}: {e}", args.repo.repo.display())))?;
    if json {
        print_json(&serde_json::json!({
            "repository": args.repo.repo.display().to_string(),
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
            args.repo.repo.display()
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
    let job_id = format!("job-{}", std::process::id());
    let report = run_job(
        session,
        &repo,
        &selection,
        &job_id,
        args.concurrency,
        |event| match (progress, &event) {
            (Progress::Json, _) => {
                eprintln!("{}", serde_json::to_string(&event).unwrap_or_default());
            }
            (Progress::Text, JobEvent::Finished(vm)) if !json => match &vm.outcome {
                VmOutcome::Done { new_bytes, .. } => eprintln!(
                    "backed up {} in {:.1} s ({} new)",
                    vm.name_label,
                    vm.seconds,
                    human_bytes(i64::try_from(*new_bytes).unwrap_or(i64::MAX))
                ),
                VmOutcome::Failed { error } => eprintln!("FAILED {}: {error}", vm.name_label),
                VmOutcome::Cancelled => eprintln!("cancelled {}", vm.name_label),
            },
            _ => {}
        },
    )
    .await
    .map_err(|e| match e {
        xapi_backup::export::EngineError::Xapi { source, .. } => explain(url, &source),
        other => Failure::usage(other.to_string()),
    })?;
    print_report(&report, json);
    if report.failed() > 0 {
        return Err(Failure {
            exit: Exit::PartlyDone,
            message: format!("{} of {} VMs failed", report.failed(), report.vms.len()),
        });
    }
    Ok(Exit::Done)
}

fn print_report(report: &JobReport, json: bool) {
    if json {
        print_json(report);
        return;
    }
    println!(
        "{} VMs in {:.1} s: {} read, {} new; at most {} at once",
        report.vms.len(),
        report.seconds,
        human_bytes(i64::try_from(report.bytes_read).unwrap_or(i64::MAX)),
        human_bytes(i64::try_from(report.new_bytes).unwrap_or(i64::MAX)),
        report.max_in_flight
    );
}

/// Lists the VM restore points, oldest first.
pub(crate) async fn list(args: &ListArgs, json: bool) -> Result<Exit, Failure> {
    let repo = args.repo.open().await?;
    let points = repo
        .list(RestorePointKind::Vm)
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    if json {
        print_json(&points);
        return Ok(Exit::Done);
    }
    let rows: Vec<Vec<String>> = points
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.vm.as_ref()
                    .map(|vm| vm.name_label.clone())
                    .unwrap_or_default(),
                m.created_at.to_rfc3339(),
                human_bytes(
                    i64::try_from(m.streams.iter().map(|s| s.size).sum::<u64>())
                        .unwrap_or(i64::MAX),
                ),
            ]
        })
        .collect();
    print_table(&["ID", "VM", "TAKEN", "DISKS"], &rows);
    Ok(Exit::Done)
}

/// Restores a restore point as a new VM.
pub(crate) async fn restore(
    session: &SessionHandle,
    url: &str,
    args: &RestoreArgs,
    json: bool,
) -> Result<Exit, Failure> {
    let repo = args.repo.open().await?;
    let points = repo
        .list(RestorePointKind::Vm)
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    let manifest: &Manifest = points
        .iter()
        .find(|m| m.id.as_str() == args.id)
        .ok_or_else(|| {
            Failure::usage(format!(
                "no restore point {} in {} (see `backup list`)",
                args.id,
                args.repo.repo.display()
            ))
        })?;
    let vm = restore_vm(
        session,
        &repo,
        manifest,
        &RestoreOptions {
            name_label: args.name.clone(),
            overwrite: args.overwrite,
            ..RestoreOptions::default()
        },
    )
    .await
    .map_err(|e| match e {
        xapi_backup::export::EngineError::Xapi { source, .. } => explain(url, &source),
        other => Failure::failed(other.to_string()),
    })?;
    if args.start {
        session
            .vm()
            .start(&vm, false, false)
            .await
            .map_err(|e| explain(url, &e))?;
    }
    let record = session
        .vm()
        .get_record(&vm)
        .await
        .map_err(|e| explain(url, &e))?;
    if json {
        print_json(&serde_json::json!({
            "uuid": &*record.uuid,
            "name_label": &*record.name_label,
            "power_state": record.power_state.to_string(),
        }));
    } else {
        println!(
            "restored {} as {} ({})",
            args.id, &*record.name_label, record.power_state
        );
    }
    Ok(Exit::Done)
}
