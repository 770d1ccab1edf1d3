//! `xapictl restore ID|FILE`: a VM restore point (or an XVA file, e.g. from `xe vm-export` or
//! `backup export`) brought back into the pool: as a new VM with new UUIDs and MACs, or with
//! `--overwrite` in place of the source VM with its UUID and MACs.

use std::path::Path;

use clap::Args;
use serde::Serialize;
use xapi_backup::import::{RestoreOptions, RestoreOutcome, restore_vm_outcome};
use xapi_backup::repo::{CreateOptions, Manifest, Repository, RestorePointKind, Target};
use xapi_backup::xva_io::import_xva;
use xapi_core::client::SessionHandle;

use crate::commands::backup_repo::find;
use crate::commands::lookup;
use crate::exit::{Exit, Failure, explain};
use crate::output::print_json;
use crate::repo_args::RepoArgs;

/// Options of `xapictl restore`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RestoreArgs {
    /// A restore point's id (`backup list`), or an XVA file (verified as it is read).
    #[arg(value_name = "ID|FILE")]
    source: String,
    /// A name for the restored VM (default: the source VM's).
    #[arg(long)]
    name: Option<String>,
    /// Start the VM once restored.
    #[arg(long)]
    start: bool,
    /// Restore in place of the source VM (its UUID and MACs come back; it must be halted; a
    /// failed overwrite leaves it as it was). Without it the restore is a new VM with new
    /// UUIDs and MACs.
    #[arg(long)]
    overwrite: bool,
    /// With --overwrite: keep the replaced VM's disks (listed) instead of destroying them.
    #[arg(long, requires = "overwrite")]
    keep_replaced_disks: bool,
    /// The SR for the disks, by UUID or name (default: the pool's default SR).
    #[arg(long)]
    sr: Option<String>,
    #[command(flatten)]
    repo: RepoArgs,
}

/// What `restore --json` prints.
#[derive(Debug, Serialize)]
struct Restored {
    source: String,
    uuid: String,
    name_label: String,
    power_state: String,
    replaced_disks_removed: Vec<String>,
    replaced_disks_kept: Vec<String>,
}

/// Restores a restore point or an XVA file.
pub(crate) async fn restore(
    session: &SessionHandle,
    url: &str,
    args: &RestoreArgs,
    json: bool,
) -> Result<Exit, Failure> {
    let sr = match &args.sr {
        Some(text) => Some(lookup::sr(session, url, text).await?),
        None => None,
    };
    let options = RestoreOptions {
        sr,
        name_label: args.name.clone(),
        overwrite: args.overwrite,
        keep_replaced_disks: args.keep_replaced_disks,
        start: args.start,
        ..RestoreOptions::default()
    };
    let engine_failure = |e: xapi_backup::EngineError| match e {
        xapi_backup::EngineError::Xapi { source, .. } => explain(url, &source),
        other => Failure::failed(format!("{}: {other}", args.source)),
    };
    let file = Path::new(&args.source);
    let outcome = if file.is_file() {
        // an XVA file: verified into a scratch repository, then restored from it
        let scratch = tempfile::tempdir()
            .map_err(|e| Failure::failed(format!("a temporary directory: {e}")))?;
        let repo = Repository::create(
            &Target::LocalDir(scratch.path().join("repo")),
            CreateOptions::default(),
        )
        .await
        .map_err(|e| Failure::failed(format!("a scratch repository: {e}")))?;
        let xva = tokio::fs::File::open(file)
            .await
            .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
        let stored = import_xva(&repo, xva, None).await.map_err(engine_failure)?;
        restore_vm_outcome(session, &repo, &stored.manifest, &options)
            .await
            .map_err(engine_failure)?
    } else {
        let repo = args.repo.open().await?;
        let manifest: Manifest = find(&repo, &args.repo, &args.source).await?;
        if manifest.kind != RestorePointKind::Vm {
            return Err(Failure::usage(format!(
                "{} is a {} restore point, not a VM's (see `xapictl metadata restore`, \
                 `xapictl host restore`)",
                args.source,
                manifest.kind.dir()
            )));
        }
        restore_vm_outcome(session, &repo, &manifest, &options)
            .await
            .map_err(engine_failure)?
    };
    print_outcome(session, url, &args.source, outcome, json).await
}

async fn print_outcome(
    session: &SessionHandle,
    url: &str,
    source: &str,
    outcome: RestoreOutcome,
    json: bool,
) -> Result<Exit, Failure> {
    let record = session
        .vm()
        .get_record(&outcome.vm)
        .await
        .map_err(|e| explain(url, &e))?;
    let restored = Restored {
        source: source.to_owned(),
        uuid: outcome.uuid,
        name_label: (*record.name_label).to_owned(),
        power_state: record.power_state.to_string(),
        replaced_disks_removed: outcome.replaced_disks_removed,
        replaced_disks_kept: outcome.replaced_disks_kept,
    };
    if json {
        print_json(&restored);
        return Ok(Exit::Done);
    }
    println!(
        "restored {source} as {} ({}, {})",
        restored.name_label, restored.uuid, restored.power_state
    );
    for disk in &restored.replaced_disks_removed {
        println!("  removed the replaced {disk}");
    }
    for disk in &restored.replaced_disks_kept {
        println!("  kept the replaced {disk}");
    }
    Ok(Exit::Done)
}
