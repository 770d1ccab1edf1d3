//! Single disks: one VDI backed up with `GET /export_raw_vdi?format=raw` into a restore point of
//! kind [`RestorePointKind::Disk`], and restored with `PUT /import_raw_vdi` into an existing VDI
//! or a new one on a chosen SR.
//!
//! The backup asks for `format=raw`: its bytes fall straight onto the repository's 1 MiB chunk
//! grid (all-zero chunks are not stored), with no decoder in the path; the body's length is the
//! VDI's virtual size, so a cut connection is caught. `format=vhd` would leave unallocated
//! blocks off the wire, but only where the SR is VHD-based, and its blocks would have to be cut
//! onto the grid again; for disks that are mostly data raw costs nothing more.
//!
//! The restore sends xapi's chunked extents (`format=raw&chunked`), so a new VDI receives only
//! the stored (non-zero) chunks; an existing VDI also receives the zero chunks, which must
//! overwrite what it held. xapi refuses uploads without a length, so the body is first written
//! to a temporary file (about the size of the data). A VDI the restore created is destroyed
//! again when the upload fails, and the error says so.

use bytes::Bytes;
use futures::StreamExt as _;
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _, BufWriter};
use xapi_core::api::{Sr, Vdi, VdiRecord, VdiType};
use xapi_core::client::{SessionHandle, TaskHandle};
use xapi_core::wire::Ref;

use crate::cleanup::{Removal, remove_vdis};
use crate::engine_error::{EngineError, backup, xapi};
use crate::format::chunked::encode_header;
use crate::format::xva::chunk::is_all_zeros;
use crate::repo::{
    Manifest, Repository, RestorePointInfo, RestorePointKind, StreamRole, StreamSpec,
};

/// What a backup of one disk did.
#[derive(Debug, Clone)]
pub struct DiskBackup {
    /// The restore point.
    pub manifest: Manifest,
    /// Bytes read from the export (the VDI's virtual size).
    pub bytes_read: u64,
}

/// Where a disk restore point goes.
#[derive(Debug, Clone)]
pub enum DiskTarget {
    /// Over an existing VDI, at least as large as the restore point's disk: every byte of the
    /// disk is written, zeros included.
    Existing(Ref<Vdi>),
    /// Into a new VDI of the disk's size on `sr`, named `name_label` (default: the source
    /// VDI's name).
    New {
        /// The SR to create it on.
        sr: Ref<Sr>,
        /// Its name.
        name_label: Option<String>,
    },
}

/// Backs up `vdi` into `repo` as a disk restore point (subject: the VDI's UUID).
pub async fn backup_vdi(
    session: &SessionHandle,
    repo: &Repository,
    vdi: &Ref<Vdi>,
    job_id: Option<&str>,
) -> Result<DiskBackup, EngineError> {
    // boxed: the generated calls' futures are large
    Box::pin(backup_boxed(session, repo, vdi, job_id)).await
}

async fn backup_boxed(
    session: &SessionHandle,
    repo: &Repository,
    vdi: &Ref<Vdi>,
    job_id: Option<&str>,
) -> Result<DiskBackup, EngineError> {
    let record = session
        .vdi()
        .get_record(vdi)
        .await
        .map_err(xapi("VDI.get_record"))?;
    let size = u64::try_from(record.virtual_size).map_err(|_| {
        EngineError::Unexpected(format!(
            "VDI {} has a negative virtual size {}",
            &*record.uuid, record.virtual_size
        ))
    })?;
    let (source, _) = crate::source::pool_source(session).await?;
    let mut info = RestorePointInfo::new(RestorePointKind::Disk, (*record.uuid).to_owned());
    info.job_id = job_id.map(str::to_owned);
    info.source = source;
    let download = session
        .get(
            "/export_raw_vdi",
            &[("vdi", vdi.as_str()), ("format", "raw")],
            None,
        )
        .await
        .map_err(xapi("GET /export_raw_vdi"))?;
    let mut point = repo
        .begin(info)
        .await
        .map_err(backup("starting the restore point"))?;
    let mut spec = StreamSpec::disk((*record.uuid).to_owned(), size);
    spec.vdi_uuid = Some((*record.uuid).to_owned());
    spec.name = Some((*record.name_label).to_owned());
    point
        .write_stream(spec, download.into_async_read())
        .await
        .map_err(backup("storing the disk"))?;
    let manifest = point
        .commit()
        .await
        .map_err(backup("writing the manifest"))?;
    Ok(DiskBackup {
        manifest,
        bytes_read: size,
    })
}

/// Restores the disk restore point `manifest` into `target`; the VDI written.
pub async fn restore_vdi(
    session: &SessionHandle,
    repo: &Repository,
    manifest: &Manifest,
    target: &DiskTarget,
) -> Result<Ref<Vdi>, EngineError> {
    Box::pin(restore_boxed(session, repo, manifest, target)).await
}

async fn restore_boxed(
    session: &SessionHandle,
    repo: &Repository,
    manifest: &Manifest,
    target: &DiskTarget,
) -> Result<Ref<Vdi>, EngineError> {
    let disk = the_disk(manifest)?;
    let size = i64::try_from(disk.size).map_err(|_| EngineError::Refused {
        reason: format!("disk {} is larger than xapi's sizes", disk.key),
    })?;
    let (vdi, created) = match target {
        DiskTarget::Existing(vdi) => {
            let have = session
                .vdi()
                .get_virtual_size(vdi)
                .await
                .map_err(xapi("VDI.get_virtual_size"))?;
            if have < size {
                return Err(EngineError::Refused {
                    reason: format!(
                        "VDI {} has {have} bytes, the restore point's disk {size}",
                        vdi.as_str()
                    ),
                });
            }
            (vdi.clone(), false)
        }
        DiskTarget::New { sr, name_label } => {
            let name = name_label
                .clone()
                .or_else(|| disk.name.clone())
                .unwrap_or_else(|| format!("restored {}", disk.key));
            let record = VdiRecord {
                name_label: name.into(),
                name_description: format!("restored from restore point {}", manifest.id).into(),
                sr: sr.clone(),
                virtual_size: size,
                r#type: VdiType::User,
                ..VdiRecord::default()
            };
            let vdi = session
                .vdi()
                .create(&record)
                .await
                .map_err(xapi("VDI.create"))?;
            (vdi, true)
        }
    };
    let result = upload(session, repo, manifest, &disk.key, &vdi, !created).await;
    match result {
        Ok(()) => Ok(vdi),
        Err(cause) if created => {
            let mut removal = Removal::default();
            remove_vdis(session, std::slice::from_ref(&vdi), &mut removal).await;
            Err(EngineError::RestoreFailed {
                cause: Box::new(cause),
                removed: removal.removed,
                left: removal.left,
            })
        }
        Err(cause) => Err(cause),
    }
}

/// The one disk stream of a disk restore point.
fn the_disk(manifest: &Manifest) -> Result<&crate::repo::StreamRecord, EngineError> {
    if manifest.kind != RestorePointKind::Disk {
        return Err(EngineError::Refused {
            reason: format!(
                "restore point {} is of kind {:?}, not a disk",
                manifest.id, manifest.kind
            ),
        });
    }
    manifest
        .streams
        .iter()
        .find(|s| s.role == StreamRole::Disk)
        .ok_or_else(|| {
            EngineError::Unexpected(format!("restore point {} holds no disk", manifest.id))
        })
}

/// Writes the disk as chunked extents to a spool file, then `PUT /import_raw_vdi` in a task.
async fn upload(
    session: &SessionHandle,
    repo: &Repository,
    manifest: &Manifest,
    key: &str,
    vdi: &Ref<Vdi>,
    with_zeros: bool,
) -> Result<(), EngineError> {
    let spool = tempfile::tempfile().map_err(|e| backup("creating the spool file")(io(e)))?;
    let mut spool = tokio::fs::File::from_std(spool);
    let length = {
        let mut writer = BufWriter::new(&mut spool);
        let length = write_extents(repo, manifest, key, with_zeros, &mut writer).await?;
        writer
            .flush()
            .await
            .map_err(|e| backup("writing the spool file")(io(e)))?;
        length
    };
    spool
        .rewind()
        .await
        .map_err(|e| backup("rewinding the spool file")(io(e)))?;
    let task = session
        .create_task("xapi-backup disk restore", "PUT /import_raw_vdi")
        .await
        .map_err(xapi("task.create"))?;
    session
        .put_seekable(
            "/import_raw_vdi",
            &[
                ("vdi", vdi.as_str()),
                ("format", "raw"),
                ("chunked", "true"),
            ],
            Some(&task),
            spool,
            length,
        )
        .await
        .map_err(xapi("PUT /import_raw_vdi"))?;
    TaskHandle::<Ref<Vdi>>::new(session.clone(), task)
        .wait()
        .await
        .map_err(xapi("the import_raw_vdi task"))?;
    Ok(())
}

/// The disk as `[offset][length][data]` extents and the end marker; the bytes written.
async fn write_extents<W: tokio::io::AsyncWrite + Unpin>(
    repo: &Repository,
    manifest: &Manifest,
    key: &str,
    with_zeros: bool,
    out: &mut W,
) -> Result<u64, EngineError> {
    let mut chunks = repo
        .stream_chunks(manifest, key)
        .await
        .map_err(backup("opening the disk stream"))?;
    let mut offset = 0u64;
    let mut written = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk: Bytes = chunk.map_err(|e| backup("reading the disk")(e.into()))?;
        let len = chunk.len() as u64;
        if with_zeros || !is_all_zeros(&chunk) {
            let header = encode_header(offset, u32::try_from(len).expect("chunks are 1 MiB"));
            out.write_all(&header)
                .await
                .map_err(|e| backup("writing the spool file")(io(e)))?;
            out.write_all(&chunk)
                .await
                .map_err(|e| backup("writing the spool file")(io(e)))?;
            written += header.len() as u64 + len;
        }
        offset += len;
    }
    let end = encode_header(0, 0);
    out.write_all(&end)
        .await
        .map_err(|e| backup("writing the spool file")(io(e)))?;
    Ok(written + end.len() as u64)
}

fn io(error: std::io::Error) -> crate::Error {
    crate::Error::Io {
        operation: "restoring a disk",
        source: error,
    }
}
