//! Host backups: `GET /host_backup` (as `xe host-backup`: xapi runs dom0's `host-backup`
//! script and streams its output, a gzip'd tar of the control domain) into a restore point of
//! kind [`RestorePointKind::Host`], and `PUT /host_restore` (as `xe host-restore`) of one.
//!
//! The backup is of the host that serves the session's data plane, the pool's master; its
//! subject is that host's UUID. The body has no length (xapi closes the connection at its end),
//! so it is spooled to a temporary file, stored once the transfer's task has succeeded (the
//! script's exit status is on the task) and the archive has been read to its end (gzip and tar
//! framing checked). xapi's restore writes the archive to the host's backup partition, used
//! at the next boot from the installer; the simulator checks the archive as the restore script
//! would.

use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _, BufReader};
use xapi_core::client::SessionHandle;

use crate::engine_error::{EngineError, backup, xapi};
use crate::format::compression::{Compression, DecompressingReader};
use crate::format::tar::TarReader;
use crate::repo::{
    Manifest, Repository, RestorePointInfo, RestorePointKind, StreamRecord, StreamRole, StreamSpec,
};
use crate::transfer;

/// The stream key of the archive in a restore point.
pub const ARCHIVE_KEY: &str = "host-backup.tgz";

/// What a host backup did.
#[derive(Debug, Clone)]
pub struct HostBackup {
    /// The restore point (subject: the host's UUID).
    pub manifest: Manifest,
    /// Size of the archive in bytes.
    pub bytes: u64,
    /// Files in the archive.
    pub files: usize,
}

/// Backs up the session's host (the pool's master) into `repo`.
pub async fn backup_host(
    session: &SessionHandle,
    repo: &Repository,
    job_id: Option<&str>,
) -> Result<HostBackup, EngineError> {
    Box::pin(backup_boxed(session, repo, job_id)).await
}

async fn backup_boxed(
    session: &SessionHandle,
    repo: &Repository,
    job_id: Option<&str>,
) -> Result<HostBackup, EngineError> {
    let (source, _) = crate::source::pool_source(session).await?;
    let host_uuid = source.host_uuid.clone().unwrap_or_default();
    let task = transfer::new_task(session, "xapi-backup host backup", "GET /host_backup").await?;
    let download = session
        .get("/host_backup", &[], Some(&task))
        .await
        .map_err(xapi("GET /host_backup"))?;
    let spool = tempfile::tempfile().map_err(|e| backup("creating the spool file")(io(e)))?;
    let mut spool = tokio::fs::File::from_std(spool);
    let mut body = download.into_async_read();
    let bytes = tokio::io::copy(&mut body, &mut spool)
        .await
        .map_err(|e| backup("reading the host backup")(io(e)))?;
    spool
        .flush()
        .await
        .map_err(|e| backup("writing the spool file")(io(e)))?;
    transfer::wait::<()>(session, task, "the host backup task").await?;
    spool
        .rewind()
        .await
        .map_err(|e| backup("rewinding the spool file")(io(e)))?;
    let files = count_files(&mut spool).await?;
    spool
        .rewind()
        .await
        .map_err(|e| backup("rewinding the spool file")(io(e)))?;
    let mut info = RestorePointInfo::new(RestorePointKind::Host, host_uuid);
    info.job_id = job_id.map(str::to_owned);
    info.source = source;
    let mut point = repo
        .begin(info)
        .await
        .map_err(backup("starting the restore point"))?;
    let spec = StreamSpec {
        key: ARCHIVE_KEY.to_owned(),
        role: StreamRole::HostBackup,
        size: bytes,
        vdi_uuid: None,
        name: Some(format!("{files} files")),
    };
    point
        .write_stream(spec, BufReader::new(spool))
        .await
        .map_err(backup("storing the host backup"))?;
    let manifest = point
        .commit()
        .await
        .map_err(backup("writing the manifest"))?;
    Ok(HostBackup {
        manifest,
        bytes,
        files,
    })
}

/// Reads a gzip'd tar to its end; the number of files in it.
async fn count_files(spool: &mut tokio::fs::File) -> Result<usize, EngineError> {
    let fail =
        |e: crate::format::tar::TarError| backup("reading the host backup archive")(e.into());
    let gunzip = DecompressingReader::new(BufReader::new(spool), Compression::Gzip)
        .map_err(|e| backup("starting gzip")(io(e)))?;
    let mut tar = TarReader::new(gunzip);
    let mut files = 0;
    while tar.next_entry().await.map_err(fail)?.is_some() {
        files += 1;
    }
    tar.drain_to_end().await.map_err(fail)?;
    Ok(files)
}

/// The archive of a host restore point.
fn archive(manifest: &Manifest) -> Result<&StreamRecord, EngineError> {
    if manifest.kind != RestorePointKind::Host {
        return Err(EngineError::Refused {
            reason: format!(
                "restore point {} is of kind {:?}, not a host backup",
                manifest.id, manifest.kind
            ),
        });
    }
    manifest
        .streams
        .iter()
        .find(|s| s.role == StreamRole::HostBackup)
        .ok_or_else(|| {
            EngineError::Unexpected(format!("restore point {} holds no archive", manifest.id))
        })
}

/// Restores a host backup onto the session's host (`PUT /host_restore`), read from the
/// repository with every chunk verified as it is sent.
pub async fn restore_host(
    session: &SessionHandle,
    repo: &Repository,
    manifest: &Manifest,
) -> Result<(), EngineError> {
    Box::pin(async {
        let stream = archive(manifest)?;
        let task =
            transfer::new_task(session, "xapi-backup host restore", "PUT /host_restore").await?;
        transfer::put_stream(
            session,
            (repo, manifest, stream),
            "/host_restore",
            &[],
            &task,
            "PUT /host_restore",
        )
        .await?;
        transfer::wait::<()>(session, task, "the host restore task").await
    })
    .await
}

fn io(error: std::io::Error) -> crate::Error {
    crate::Error::Io {
        operation: "backing up a host",
        source: error,
    }
}
