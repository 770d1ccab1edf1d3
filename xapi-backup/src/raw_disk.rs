//! Single disks: one VDI backed up with `GET /export_raw_vdi?format=raw` into a restore point of
//! kind [`RestorePointKind::Disk`], and restored with `PUT /import_raw_vdi` into an existing VDI
//! or a new one on a chosen SR.
//!
//! The backup asks for `format=vhd` by default ([`WireFormat::Vhd`]): xapi's `vhd-tool` then
//! leaves the unallocated blocks of a sparse disk off the wire (a 4 GiB disk holding 1 GiB
//! sends about 1 GiB), and the VHD reader checks the stream's structure to its trailing footer;
//! its extents are cut onto the repository's 1 MiB chunk grid. [`WireFormat::Raw`] sends every
//! byte, zeros included: its bytes fall straight onto the grid with no decoder in the path, and
//! the body's length is the VDI's virtual size, so a cut connection is caught; it costs nothing
//! more for disks that are mostly data. Either way all-zero chunks are not stored.
//!
//! The restore sends xapi's chunked extents (`format=raw&chunked`), so a new VDI receives only
//! the stored (non-zero) chunks; an existing VDI also receives the zero chunks, which must
//! overwrite what it held. xapi refuses uploads without a length, so the body is first written
//! to a temporary file (about the size of the data). A VDI the restore created is destroyed
//! again when the upload fails, and the error says so.

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _, BufWriter};
use xapi_core::api::{Sr, Vdi, VdiRecord, VdiType};
use xapi_core::client::{SessionHandle, TaskHandle};
use xapi_core::wire::Ref;

use crate::cleanup::{Removal, remove_vdis};
use crate::engine_error::{EngineError, backup, xapi};
use crate::format::chunked::encode_header;
use crate::format::vhd::VhdReader;
use crate::format::xva::chunk::is_all_zeros;
use crate::repo::{
    CHUNK_SIZE, Manifest, Repository, RestorePointInfo, RestorePointKind, StreamRole, StreamSpec,
    StreamWriter,
};

/// What a backup of one disk did.
#[derive(Debug, Clone)]
pub struct DiskBackup {
    /// The restore point.
    pub manifest: Manifest,
    /// Bytes read from the export (the VDI's virtual size).
    pub bytes_read: u64,
}

/// How the disk travels from the pool (`/export_raw_vdi?format=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WireFormat {
    /// A dynamic VHD: only allocated blocks are sent.
    #[default]
    Vhd,
    /// Raw bytes, every one of them.
    Raw,
}

/// Where a disk restore point goes.
#[derive(Debug, Clone)]
pub enum DiskTarget {
    /// Over an existing VDI, at least as large as the restore point's disk: every byte of the
    /// disk is written, zeros included; bytes of a larger VDI past the disk's end are left as
    /// they were.
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

/// Backs up `vdi` into `repo` as a disk restore point (subject: the VDI's UUID), sent as
/// `format`.
pub async fn backup_vdi(
    session: &SessionHandle,
    repo: &Repository,
    vdi: &Ref<Vdi>,
    job_id: Option<&str>,
    format: WireFormat,
) -> Result<DiskBackup, EngineError> {
    // boxed: the generated calls' futures are large
    Box::pin(backup_boxed(session, repo, vdi, job_id, format)).await
}

async fn backup_boxed(
    session: &SessionHandle,
    repo: &Repository,
    vdi: &Ref<Vdi>,
    job_id: Option<&str>,
    format: WireFormat,
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
            &[
                ("vdi", vdi.as_str()),
                (
                    "format",
                    match format {
                        WireFormat::Vhd => "vhd",
                        WireFormat::Raw => "raw",
                    },
                ),
            ],
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
    let bytes_read = match format {
        WireFormat::Raw => {
            point
                .write_stream(spec, download.into_async_read())
                .await
                .map_err(backup("storing the disk"))?;
            size
        }
        WireFormat::Vhd => {
            let mut stream = point
                .stream(spec)
                .await
                .map_err(backup("starting the disk stream"))?;
            let read = store_vhd(download.into_async_read(), &mut stream, size).await?;
            stream
                .finish()
                .await
                .map_err(backup("finishing the disk stream"))?;
            read
        }
    };
    let manifest = point
        .commit()
        .await
        .map_err(backup("writing the manifest"))?;
    Ok(DiskBackup {
        manifest,
        bytes_read,
    })
}

/// Cuts a VHD stream's extents onto the chunk grid and stores the chunks (absent sectors are
/// zeros); the bytes of data read.
async fn store_vhd<R: tokio::io::AsyncRead + Unpin>(
    body: R,
    stream: &mut StreamWriter<'_>,
    size: u64,
) -> Result<u64, EngineError> {
    let chunk_size = u64::from(CHUNK_SIZE);
    let mut vhd = VhdReader::open(body)
        .await
        .map_err(backup("reading the VHD header"))?;
    if let Some(footer) = vhd.footer()
        && footer.current_size != size
    {
        return Err(EngineError::Unexpected(format!(
            "the VHD is of {} bytes, the VDI of {size}",
            footer.current_size
        )));
    }
    // the chunk being filled: its number and bytes
    let mut current: Option<(u64, BytesMut)> = None;
    let mut read = 0u64;
    while let Some(extent) = vhd.next_extent().await.map_err(backup("reading the VHD"))? {
        let end = extent.offset + extent.data.len() as u64;
        if end > size {
            return Err(EngineError::Unexpected(format!(
                "the VHD holds data at byte {end}, past the VDI's {size}"
            )));
        }
        read += extent.data.len() as u64;
        let mut at = extent.offset;
        let mut data = &extent.data[..];
        while !data.is_empty() {
            let number = at / chunk_size;
            if current.as_ref().is_some_and(|(n, _)| number < *n) {
                // chunks are stored in order (vhd-tool writes blocks in disk order)
                return Err(EngineError::Unexpected(format!(
                    "the VHD's blocks are not in disk order (byte {at} after a later one)"
                )));
            }
            if current.as_ref().is_some_and(|(n, _)| *n != number) {
                let (n, bytes) = current.take().expect("checked");
                store_chunk(stream, n, bytes).await?;
            }
            let (_, chunk) = current.get_or_insert_with(|| {
                let len = (size - number * chunk_size).min(chunk_size);
                (
                    number,
                    BytesMut::zeroed(usize::try_from(len).expect("1 MiB")),
                )
            });
            let start = usize::try_from(at - number * chunk_size).expect("within a chunk");
            let take = data.len().min(chunk.len() - start);
            chunk[start..start + take].copy_from_slice(&data[..take]);
            data = &data[take..];
            at += take as u64;
        }
    }
    if let Some((n, bytes)) = current {
        store_chunk(stream, n, bytes).await?;
    }
    Ok(read)
}

async fn store_chunk(
    stream: &mut StreamWriter<'_>,
    number: u64,
    bytes: BytesMut,
) -> Result<(), EngineError> {
    stream
        .write_chunk(number, bytes.freeze())
        .await
        .map_err(backup("storing a chunk"))
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
