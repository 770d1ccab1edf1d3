//! `xapictl metadata backup|restore` and `xapictl host backup|restore`: the pool database
//! (`/pool/xmldbdump`, read by xapi-dr's reader before it is stored; restored after xapi's dry
//! run) and the master's host backup (`/host_backup`, restored with `/host_restore`), kept in
//! the same repository as the VMs, listed and retained on their own.

use clap::Args;
use serde::Serialize;
use xapi_backup::host_backup::{backup_host, restore_host};
use xapi_backup::pool_metadata::{PoolRestoreOptions, backup_pool_metadata, restore_pool_metadata};
use xapi_backup::repo::{Manifest, RestorePointKind};
use xapi_core::client::SessionHandle;

use crate::commands::backup_repo::find;
use crate::exit::{Exit, Failure, explain};
use crate::output::{human_bytes, print_json};
use crate::repo_args::RepoArgs;

/// Options of `metadata backup` and `host backup`.
#[derive(Debug, Clone, Args)]
pub(crate) struct SystemBackupArgs {
    #[command(flatten)]
    repo: RepoArgs,
}

/// Options of `metadata restore`.
#[derive(Debug, Clone, Args)]
pub(crate) struct MetadataRestoreArgs {
    /// The pool-metadata restore point's id (`backup list --kind pool-metadata`).
    id: String,
    /// Only xapi's dry run: check that the dump would restore on this pool; change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    repo: RepoArgs,
}

/// Options of `host restore`.
#[derive(Debug, Clone, Args)]
pub(crate) struct HostRestoreArgs {
    /// The host restore point's id (`backup list --kind host`).
    id: String,
    #[command(flatten)]
    repo: RepoArgs,
}

#[derive(Debug, Serialize)]
struct Stored {
    id: String,
    kind: &'static str,
    subject: String,
    bytes: u64,
    detail: String,
}

fn engine(url: &str) -> impl Fn(xapi_backup::EngineError) -> Failure + '_ {
    move |e| match e {
        xapi_backup::EngineError::Xapi { source, .. } => explain(url, &source),
        other => Failure::failed(other.to_string()),
    }
}

fn print_stored(stored: &Stored, json: bool) {
    if json {
        print_json(stored);
    } else {
        println!(
            "stored the {} of {} as restore point {} ({}; {})",
            stored.kind,
            stored.subject,
            stored.id,
            human_bytes(i64::try_from(stored.bytes).unwrap_or(i64::MAX)),
            stored.detail
        );
    }
}

async fn restore_point(
    args: &RepoArgs,
    id: &str,
    kind: RestorePointKind,
) -> Result<(xapi_backup::repo::Repository, Manifest), Failure> {
    let repo = args.open().await?;
    let manifest = find(&repo, args, id).await?;
    if manifest.kind != kind {
        return Err(Failure::usage(format!(
            "{id} is a {} restore point, not a {} one",
            manifest.kind.dir(),
            kind.dir()
        )));
    }
    Ok((repo, manifest))
}

/// `metadata backup`.
pub(crate) async fn metadata_backup(
    session: &SessionHandle,
    url: &str,
    args: &SystemBackupArgs,
    json: bool,
) -> Result<Exit, Failure> {
    let repo = args.repo.open().await?;
    let done = backup_pool_metadata(session, &repo, None)
        .await
        .map_err(engine(url))?;
    print_stored(
        &Stored {
            id: done.manifest.id.to_string(),
            kind: "pool database",
            subject: done.dump.pool_uuid.clone(),
            bytes: done.dump.bytes,
            detail: format!(
                "generation {}, schema {}, {} VM rows",
                done.dump.generation, done.dump.schema_version, done.dump.vm_rows
            ),
        },
        json,
    );
    Ok(Exit::Done)
}

/// `metadata restore ID [--dry-run]`.
pub(crate) async fn metadata_restore(
    session: &SessionHandle,
    url: &str,
    args: &MetadataRestoreArgs,
    json: bool,
) -> Result<Exit, Failure> {
    let (repo, manifest) =
        restore_point(&args.repo, &args.id, RestorePointKind::PoolMetadata).await?;
    let report = restore_pool_metadata(
        session,
        &repo,
        &manifest,
        PoolRestoreOptions {
            dry_run_only: args.dry_run,
        },
    )
    .await
    .map_err(engine(url))?;
    if json {
        print_json(&serde_json::json!({
            "id": args.id,
            "pool_uuid": report.dump.pool_uuid,
            "generation": report.dump.generation,
            "dry_run_passed": report.dry_run_passed,
            "restored": report.restored,
        }));
    } else if report.restored {
        println!(
            "restored the pool database of {} (generation {}); xapi restarts with it, and \
             every session (this one too) must log in again",
            report.dump.pool_uuid, report.dump.generation
        );
    } else {
        println!(
            "dry run passed: the database of {} (generation {}) would restore on this pool; \
             nothing changed",
            report.dump.pool_uuid, report.dump.generation
        );
    }
    Ok(Exit::Done)
}

/// `host backup`: the host serving the session (the pool master).
pub(crate) async fn host_backup(
    session: &SessionHandle,
    url: &str,
    args: &SystemBackupArgs,
    json: bool,
) -> Result<Exit, Failure> {
    let repo = args.repo.open().await?;
    let done = backup_host(session, &repo, None)
        .await
        .map_err(engine(url))?;
    print_stored(
        &Stored {
            id: done.manifest.id.to_string(),
            kind: "host backup",
            subject: done.manifest.subject.clone(),
            bytes: done.bytes,
            detail: format!("{} files", done.files),
        },
        json,
    );
    Ok(Exit::Done)
}

/// `host restore ID`.
pub(crate) async fn host_restore(
    session: &SessionHandle,
    url: &str,
    args: &HostRestoreArgs,
    json: bool,
) -> Result<Exit, Failure> {
    let (repo, manifest) = restore_point(&args.repo, &args.id, RestorePointKind::Host).await?;
    restore_host(session, &repo, &manifest)
        .await
        .map_err(engine(url))?;
    if json {
        print_json(&serde_json::json!({"id": args.id, "host": manifest.subject, "restored": true}));
    } else {
        println!(
            "sent host backup {} to host {}'s backup partition: boot the host from the \
             installation media and choose to restore from backup to complete it",
            args.id, manifest.subject
        );
    }
    Ok(Exit::Done)
}
