//! `xapictl backup export|import`: nobody is locked in. A VM restore point comes out as a
//! standard XVA (for `xe vm-import` or XenCenter), and an XVA from anywhere goes into the
//! repository as a restore point, every chunk's checksum checked as it is read.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use xapi_backup::repo::RestorePointKind;
use xapi_backup::xva_io::{XvaExportOptions, export_xva, import_xva};

use crate::commands::backup_repo::find;
use crate::exit::{Exit, Failure};
use crate::output::{human_bytes, print_json};
use crate::repo_args::RepoArgs;

/// Options of `xapictl backup export`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ExportArgs {
    /// The VM restore point's id (`backup list`).
    id: String,
    /// The XVA file to write (written under a temporary name, renamed when complete).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Keep the source VM's UUID in the XVA (`xe vm-import preserve=true` brings it back).
    #[arg(long)]
    keep_uuid: bool,
    #[command(flatten)]
    repo: RepoArgs,
}

/// Options of `xapictl backup import`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ImportArgs {
    /// An XVA file (`xe vm-export`, XenCenter, `backup export`).
    file: PathBuf,
    #[command(flatten)]
    repo: RepoArgs,
}

#[derive(Debug, Serialize)]
struct Exported {
    id: String,
    file: String,
    bytes: u64,
}

#[derive(Debug, Serialize)]
struct Imported {
    id: String,
    vm: String,
    disk_bytes: u64,
}

/// Writes a VM restore point as an XVA file.
pub(crate) async fn export(args: &ExportArgs, json: bool) -> Result<Exit, Failure> {
    let repo = args.repo.open().await?;
    let manifest = find(&repo, &args.repo, &args.id).await?;
    if manifest.kind != RestorePointKind::Vm {
        return Err(Failure::usage(format!(
            "{} is a {} restore point; only VM restore points export as XVA",
            args.id,
            manifest.kind.dir()
        )));
    }
    let dir = args
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::Path::new("."));
    let partial = tempfile::Builder::new()
        .prefix(".xapictl-export-")
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(|e| Failure::failed(format!("{}: {e}", dir.display())))?;
    let mut out = tokio::fs::File::from_std(
        partial
            .reopen()
            .map_err(|e| Failure::failed(format!("{}: {e}", partial.path().display())))?,
    );
    let options = XvaExportOptions {
        keep_uuid: args.keep_uuid,
        ..XvaExportOptions::default()
    };
    let bytes = export_xva(&repo, &manifest, &options, &mut out)
        .await
        .map_err(|e| Failure::failed(format!("{}: {e}", args.id)))?;
    out.sync_all()
        .await
        .map_err(|e| Failure::failed(format!("{}: {e}", args.output.display())))?;
    drop(out);
    // only a complete file gets the name asked for
    partial
        .persist(&args.output)
        .map_err(|e| Failure::failed(format!("{}: {}", args.output.display(), e.error)))?;
    let exported = Exported {
        id: args.id.clone(),
        file: args.output.display().to_string(),
        bytes,
    };
    if json {
        print_json(&exported);
    } else {
        println!(
            "exported {} to {} ({})",
            exported.id,
            exported.file,
            human_bytes(i64::try_from(bytes).unwrap_or(i64::MAX))
        );
    }
    Ok(Exit::Done)
}

/// Reads an XVA file into the repository as a VM restore point.
pub(crate) async fn import(args: &ImportArgs, json: bool) -> Result<Exit, Failure> {
    let repo = args.repo.open().await?;
    let file = tokio::fs::File::open(&args.file)
        .await
        .map_err(|e| Failure::usage(format!("{}: {e}", args.file.display())))?;
    let stored = import_xva(&repo, file, None)
        .await
        .map_err(|e| Failure::failed(format!("{}: {e}", args.file.display())))?;
    let imported = Imported {
        id: stored.manifest.id.to_string(),
        vm: stored
            .manifest
            .vm
            .as_ref()
            .map(|vm| vm.name_label.clone())
            .unwrap_or_default(),
        disk_bytes: stored.bytes_read,
    };
    if json {
        print_json(&imported);
    } else {
        println!(
            "imported {} as restore point {} ({} of disk data)",
            args.file.display(),
            imported.id,
            human_bytes(i64::try_from(imported.disk_bytes).unwrap_or(i64::MAX))
        );
    }
    Ok(Exit::Done)
}
