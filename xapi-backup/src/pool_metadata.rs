//! Pool metadata: the pool database dump (`GET /pool/xmldbdump`, as `xe pool-dump-database`)
//! into a restore point of kind [`RestorePointKind::PoolMetadata`], and its restore (`PUT
//! /pool/xmldbdump`, as `xe pool-restore-database`).
//!
//! A dump is accepted only once xapi-dr's offline reader has parsed it whole and found the
//! pool in it ([`EngineError::InvalidPoolDump`] otherwise): a restore point that could not be
//! restored is never written. Dumps are a few MiB to a few hundred MiB, read into memory
//! (at most [`MAX_DUMP`]).
//!
//! A restore always sends the dump with `dry_run=true` first: xapi then makes every check of a
//! restore (schema version, `RESTORE_INCOMPATIBLE_VERSION`; the pool and its master; the
//! master's network devices against this host's, `RESTORE_TARGET_MISSING_DEVICE`,
//! `RESTORE_TARGET_MGMT_IF_NOT_IN_BACKUP`) and changes nothing. Only when that passes, and
//! unless [`PoolRestoreOptions::dry_run_only`], the dump is sent again for real. xapi then
//! replaces its database and restarts: every session, the caller's included, is gone, and the
//! pool's other hosts must be brought back to it (`xe pool-restore-database` documents this),
//! so a real restore is for rebuilding a pool's master.

use xapi_core::client::SessionHandle;
use xapi_dr::metadata::read_db_xml;

use crate::engine_error::{EngineError, backup, xapi};
use crate::repo::{
    Manifest, Repository, RestorePointInfo, RestorePointKind, StreamRecord, StreamRole, StreamSpec,
};
use crate::transfer;

/// The largest dump read (xapi's own restore limit is of the same order).
pub const MAX_DUMP: usize = 1 << 30;

/// The stream key of the dump in a restore point.
pub const DUMP_KEY: &str = "xmldbdump";

/// What a backup of the pool database did.
#[derive(Debug, Clone)]
pub struct PoolMetadataBackup {
    /// The restore point (subject: the pool's UUID).
    pub manifest: Manifest,
    /// What the reader found in the dump.
    pub dump: DumpSummary,
}

/// What xapi-dr's reader found in a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpSummary {
    /// The pool's UUID.
    pub pool_uuid: String,
    /// The database generation.
    pub generation: i64,
    /// The schema version, `major.minor`.
    pub schema_version: String,
    /// Rows in the `VM` table (VMs, templates, snapshots, control domains).
    pub vm_rows: usize,
    /// Size of the dump in bytes.
    pub bytes: u64,
}

/// How to restore a dump.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolRestoreOptions {
    /// Stop after xapi's dry run: check that the dump would restore on this pool, change
    /// nothing.
    pub dry_run_only: bool,
}

/// What a restore of a dump did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRestoreReport {
    /// The dump that was sent.
    pub dump: DumpSummary,
    /// xapi's dry run passed.
    pub dry_run_passed: bool,
    /// The dump was sent for real (xapi restarts: the session is no longer valid).
    pub restored: bool,
}

/// Parses a dump with xapi-dr's reader; what it holds, or why it is refused.
pub fn check_dump(bytes: &[u8], what: &str) -> Result<DumpSummary, EngineError> {
    let invalid = |source: xapi_dr::Error| EngineError::InvalidPoolDump {
        what: what.to_owned(),
        source: Box::new(source),
    };
    let database = read_db_xml(bytes).map_err(|e| invalid(e.into()))?;
    let pool_uuid = database
        .rows("pool")
        .next()
        .and_then(|(_, row)| row.get("uuid"))
        .map(str::to_owned)
        .ok_or_else(|| EngineError::Refused {
            reason: format!("the pool database dump {what} holds no pool"),
        })?;
    let manifest = &database.manifest;
    Ok(DumpSummary {
        pool_uuid,
        generation: database.generation(),
        schema_version: format!("{}.{}", manifest.schema_major, manifest.schema_minor),
        vm_rows: database.rows("VM").count(),
        bytes: bytes.len() as u64,
    })
}

/// Backs up the pool database of `session`'s pool into `repo`.
pub async fn backup_pool_metadata(
    session: &SessionHandle,
    repo: &Repository,
    job_id: Option<&str>,
) -> Result<PoolMetadataBackup, EngineError> {
    Box::pin(backup_boxed(session, repo, job_id)).await
}

async fn backup_boxed(
    session: &SessionHandle,
    repo: &Repository,
    job_id: Option<&str>,
) -> Result<PoolMetadataBackup, EngineError> {
    let (source, _) = crate::source::pool_source(session).await?;
    let task =
        transfer::new_task(session, "xapi-backup pool metadata", "GET /pool/xmldbdump").await?;
    let download = session
        .get("/pool/xmldbdump", &[], Some(&task))
        .await
        .map_err(xapi("GET /pool/xmldbdump"))?;
    let bytes = download
        .bytes(MAX_DUMP)
        .await
        .map_err(xapi("reading the database dump"))?;
    transfer::wait::<()>(session, task, "the database dump task").await?;
    let what = format!(
        "of pool {}",
        source.pool_uuid.as_deref().unwrap_or("(unknown)")
    );
    let dump = check_dump(&bytes, &what)?;
    if source.pool_uuid.as_deref() != Some(dump.pool_uuid.as_str()) {
        return Err(EngineError::Unexpected(format!(
            "the dump is of pool {}, the session's pool is {:?}",
            dump.pool_uuid, source.pool_uuid
        )));
    }
    let mut info = RestorePointInfo::new(RestorePointKind::PoolMetadata, dump.pool_uuid.clone());
    info.job_id = job_id.map(str::to_owned);
    info.source = source;
    let mut point = repo
        .begin(info)
        .await
        .map_err(backup("starting the restore point"))?;
    let spec = StreamSpec {
        key: DUMP_KEY.to_owned(),
        role: StreamRole::PoolDatabase,
        size: dump.bytes,
        vdi_uuid: None,
        name: Some(format!("generation {}", dump.generation)),
    };
    point
        .write_stream(spec, &bytes[..])
        .await
        .map_err(backup("storing the dump"))?;
    let manifest = point
        .commit()
        .await
        .map_err(backup("writing the manifest"))?;
    Ok(PoolMetadataBackup { manifest, dump })
}

/// The dump of a pool-metadata restore point.
fn dump_stream(manifest: &Manifest) -> Result<&StreamRecord, EngineError> {
    if manifest.kind != RestorePointKind::PoolMetadata {
        return Err(EngineError::Refused {
            reason: format!(
                "restore point {} is of kind {:?}, not pool metadata",
                manifest.id, manifest.kind
            ),
        });
    }
    manifest
        .streams
        .iter()
        .find(|s| s.role == StreamRole::PoolDatabase)
        .ok_or_else(|| {
            EngineError::Unexpected(format!("restore point {} holds no dump", manifest.id))
        })
}

/// Restores the dump of `manifest` on `session`'s pool: xapi's dry run, then (unless
/// [`PoolRestoreOptions::dry_run_only`]) the restore, after which the session is invalid.
pub async fn restore_pool_metadata(
    session: &SessionHandle,
    repo: &Repository,
    manifest: &Manifest,
    options: PoolRestoreOptions,
) -> Result<PoolRestoreReport, EngineError> {
    Box::pin(restore_boxed(session, repo, manifest, options)).await
}

async fn restore_boxed(
    session: &SessionHandle,
    repo: &Repository,
    manifest: &Manifest,
    options: PoolRestoreOptions,
) -> Result<PoolRestoreReport, EngineError> {
    let stream = dump_stream(manifest)?;
    // read back (every chunk verified) and parsed again before anything is sent
    let mut bytes = Vec::with_capacity(usize::try_from(stream.size).unwrap_or(0));
    let mut reader = repo
        .read_stream(manifest, &stream.key)
        .await
        .map_err(backup("opening the dump"))?;
    tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut bytes)
        .await
        .map_err(|e| {
            backup("reading the dump")(crate::Error::Io {
                operation: "reading a pool database dump from the repository",
                source: e,
            })
        })?;
    let dump = check_dump(&bytes, &format!("of restore point {}", manifest.id))?;
    let mut report = PoolRestoreReport {
        dump,
        dry_run_passed: false,
        restored: false,
    };
    let task = transfer::new_task(
        session,
        "xapi-backup pool restore (dry run)",
        "PUT /pool/xmldbdump",
    )
    .await?;
    transfer::put_stream(
        session,
        (repo, manifest, stream),
        "/pool/xmldbdump",
        &[("dry_run", "true")],
        &task,
        "PUT /pool/xmldbdump?dry_run=true",
    )
    .await?;
    transfer::wait::<()>(session, task, "the dry run").await?;
    report.dry_run_passed = true;
    if options.dry_run_only {
        return Ok(report);
    }
    let task =
        transfer::new_task(session, "xapi-backup pool restore", "PUT /pool/xmldbdump").await?;
    transfer::put_stream(
        session,
        (repo, manifest, stream),
        "/pool/xmldbdump",
        &[],
        &task,
        "PUT /pool/xmldbdump",
    )
    .await?;
    // xapi restarts once the database is written: the task goes with every session
    match transfer::wait::<()>(session, task, "the restore").await {
        Ok(()) => {}
        Err(EngineError::Xapi { source, .. })
            if matches!(&*source, xapi_core::Error::Api(f)
                if matches!(f.code, xapi_core::api::ErrorCode::SessionInvalid
                    | xapi_core::api::ErrorCode::HandleInvalid)) => {}
        Err(other) => return Err(other),
    }
    report.restored = true;
    Ok(report)
}
