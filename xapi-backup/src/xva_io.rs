//! XVA files and streams in and out of the repository, so that nobody is locked in:
//!
//! - [`export_xva`] / [`xva_of`]: a VM restore point as a standard XVA (what `xe vm-export`
//!   writes and `xe vm-import` reads), rebuilt from the chunks (each verified as it is read)
//!   with the format writer; all-zero chunks are left out as xapi leaves them out. The
//!   restore of a VM ([`crate::import::restore_vm`]) sends the same stream.
//! - [`import_xva`]: an existing XVA (a file made by `xe vm-export`, or any stream) read with
//!   the XVA reader, every chunk's checksum checked as it passes, into a VM restore point.
//!
//! A restore point was taken from a snapshot; the `ova.xml` written out describes the VM it
//! came from ([`as_source_vm`]): not a snapshot, not a template, the source VM's name (or one
//! given) and, when asked, its UUID.

use std::collections::HashMap;

use bytes::Bytes;
use futures::Stream;
use tokio::io::AsyncWrite;

use crate::engine_error::{EngineError, backup};
use crate::format::xva::ova_xml::{OvaClass, OvaXml};
use crate::format::xva::{DiskChunk, DiskSource, ReadOptions, WriteOptions, XvaReader, xva_stream};
use crate::repo::{
    CHUNK_SIZE, Manifest, Repository, RestorePointInfo, RestorePointKind, StreamRole, StreamSpec,
    VmIdentity,
};
use xapi_core::wire::OrderedValue;

/// An XVA as a byte stream.
pub type XvaStream = futures::stream::BoxStream<'static, Result<Bytes, crate::Error>>;

/// How to write a restore point out as an XVA.
#[derive(Debug, Clone, Default)]
pub struct XvaExportOptions {
    /// The VM's name in the XVA (default: the source VM's).
    pub name_label: Option<String>,
    /// Keep the source VM's UUID in the XVA (an import with `restore=true` or
    /// `xe vm-import preserve=true` brings it back); otherwise the snapshot's UUID stays,
    /// which no live VM has.
    pub keep_uuid: bool,
    /// The format writer's options (checksums, compression, keep-alives).
    pub write: WriteOptions,
}

/// Sets (or adds) the struct member `name`.
fn set_member(value: &mut OrderedValue, name: &str, new: OrderedValue) {
    if let OrderedValue::Struct(members) = value {
        match members.iter_mut().find(|(n, _)| n == name) {
            Some((_, old)) => *old = new,
            None => members.push((name.to_owned(), new)),
        }
    }
}

/// The restore point's `ova.xml`, made to describe the VM it was taken from: `is_a_snapshot`
/// and `is_a_template` off, the source VM's name (or `name`), its UUID when `keep_uuid`.
pub fn as_source_vm(
    manifest: &Manifest,
    mut ova: OvaXml,
    name: Option<&str>,
    keep_uuid: bool,
) -> OvaXml {
    let source_name = manifest
        .vm
        .as_ref()
        .map(|vm| vm.name_label.clone())
        .unwrap_or_default();
    let name = name.map_or(source_name, str::to_owned);
    for object in &mut ova.objects {
        if object.class == OvaClass::Vm {
            set_member(
                &mut object.snapshot,
                "is_a_snapshot",
                OrderedValue::Bool(false),
            );
            set_member(
                &mut object.snapshot,
                "is_a_template",
                OrderedValue::Bool(false),
            );
            if !name.is_empty() {
                set_member(
                    &mut object.snapshot,
                    "name_label",
                    OrderedValue::String(name.clone()),
                );
            }
            if keep_uuid && let Some(vm) = &manifest.vm {
                set_member(
                    &mut object.snapshot,
                    "uuid",
                    OrderedValue::String(vm.uuid.clone()),
                );
            }
        }
    }
    ova
}

/// A tar holding `ova.xml` alone, as `/export_metadata` serves and `/import_metadata` reads.
pub fn metadata_tar(ova: &OvaXml) -> Result<Vec<u8>, EngineError> {
    use crate::format::tar::{END_OF_ARCHIVE, encode_v7_header, padding_len};
    let xml = ova.to_xml();
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let header = encode_v7_header("ova.xml", xml.len() as u64, mtime)
        .map_err(|e| backup("writing the metadata tar")(e.into()))?;
    let mut bytes = Vec::with_capacity(header.len() + xml.len() + 3 * 512);
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(xml.as_bytes());
    bytes.resize(bytes.len() + padding_len(xml.len() as u64), 0);
    bytes.extend_from_slice(&END_OF_ARCHIVE);
    Ok(bytes)
}

/// The `ova.xml` of a VM restore point, parsed.
pub async fn read_ova(repo: &Repository, manifest: &Manifest) -> Result<OvaXml, EngineError> {
    if manifest.kind != RestorePointKind::Vm {
        return Err(EngineError::Refused {
            reason: format!(
                "restore point {} is of kind {:?}, not a VM",
                manifest.id, manifest.kind
            ),
        });
    }
    let xml = repo
        .read_ova_xml(manifest)
        .await
        .map_err(backup("reading ova.xml"))?;
    OvaXml::parse(&xml).map_err(|e| backup("parsing ova.xml")(e.into()))
}

/// The disks of a VM restore point, as the XVA writer takes them (read and verified lazily).
async fn disk_sources(
    repo: &Repository,
    manifest: &Manifest,
) -> Result<Vec<DiskSource>, EngineError> {
    let mut disks = Vec::new();
    for stream in manifest
        .streams
        .iter()
        .filter(|s| s.role == StreamRole::Disk)
    {
        disks.push(DiskSource {
            prefix: stream.key.clone(),
            size: stream.size,
            reader: Box::new(
                repo.read_stream(manifest, &stream.key)
                    .await
                    .map_err(backup("opening a disk stream"))?,
            ),
        });
    }
    Ok(disks)
}

/// A VM restore point as an XVA byte stream, with `ova` as its `ova.xml` (see
/// [`as_source_vm`]). Must be polled inside a tokio runtime.
pub async fn xva_with_ova(
    repo: &Repository,
    manifest: &Manifest,
    ova: &OvaXml,
    write: WriteOptions,
) -> Result<XvaStream, EngineError> {
    let disks = disk_sources(repo, manifest).await?;
    let stream = xva_stream(ova, disks, write).map_err(backup("rebuilding the XVA"))?;
    Ok(Box::pin(stream))
}

/// A VM restore point as an XVA byte stream (for an HTTP response, an upload, a pipe).
pub async fn xva_of(
    repo: &Repository,
    manifest: &Manifest,
    options: &XvaExportOptions,
) -> Result<XvaStream, EngineError> {
    let ova = read_ova(repo, manifest).await?;
    let ova = as_source_vm(
        manifest,
        ova,
        options.name_label.as_deref(),
        options.keep_uuid,
    );
    xva_with_ova(repo, manifest, &ova, options.write).await
}

/// Writes a VM restore point as an XVA to `out` (a file for `xe vm-import`); the bytes
/// written.
pub async fn export_xva<W: AsyncWrite + Unpin>(
    repo: &Repository,
    manifest: &Manifest,
    options: &XvaExportOptions,
    out: &mut W,
) -> Result<u64, EngineError> {
    let stream = xva_of(repo, manifest, options).await?;
    drain(stream, out).await
}

/// Writes a rebuilt XVA stream to `out` and flushes it; the bytes written.
pub(crate) async fn drain<W: AsyncWrite + Unpin>(
    xva: impl Stream<Item = Result<Bytes, crate::Error>>,
    out: &mut W,
) -> Result<u64, EngineError> {
    use futures::StreamExt as _;
    use tokio::io::AsyncWriteExt as _;
    let mut xva = std::pin::pin!(xva);
    let mut total = 0u64;
    let write_failed = |e: std::io::Error| {
        backup("writing the XVA")(crate::Error::Io {
            operation: "writing a rebuilt XVA",
            source: e,
        })
    };
    while let Some(piece) = xva.next().await {
        let piece = piece.map_err(backup("rebuilding the XVA"))?;
        out.write_all(&piece).await.map_err(write_failed)?;
        total += piece.len() as u64;
    }
    out.flush().await.map_err(write_failed)?;
    Ok(total)
}

/// What [`store_xva`] stored.
#[derive(Debug, Clone)]
pub struct StoredXva {
    /// The restore point.
    pub manifest: Manifest,
    /// Bytes of disk data read (non-zero chunks).
    pub bytes_read: u64,
}

/// Imports an XVA (a file from `xe vm-export`, or any stream) into `repo` as a VM restore
/// point; every chunk's checksum is checked as it is read. The subject is the UUID of the
/// XVA's VM; the restore point's VM identity is that VM's.
pub async fn import_xva<R: tokio::io::AsyncRead + Send + Unpin + 'static>(
    repo: &Repository,
    xva: R,
    job_id: Option<&str>,
) -> Result<StoredXva, EngineError> {
    let reader = XvaReader::open(xva, ReadOptions::default())
        .await
        .map_err(backup("reading the XVA's ova.xml"))?;
    let ova = reader.ova_xml();
    let vms = ova.vms();
    let [vm] = vms.as_slice() else {
        return Err(EngineError::Refused {
            reason: format!("the XVA holds {} VMs; a restore point is of one", vms.len()),
        });
    };
    let uuid = vm.uuid.unwrap_or_default().to_owned();
    if uuid.is_empty() {
        return Err(EngineError::Refused {
            reason: "the XVA's VM has no UUID".into(),
        });
    }
    let mut info = RestorePointInfo::new(RestorePointKind::Vm, uuid.clone());
    info.job_id = job_id.map(str::to_owned);
    info.vm = Some(VmIdentity {
        uuid,
        name_label: vm.name_label.unwrap_or_default().to_owned(),
        ..VmIdentity::default()
    });
    Box::pin(store_xva(repo, reader, info)).await
}

/// Stores what an [`XvaReader`] reads (its `ova.xml`, then every disk, chunks verified as they
/// pass) as a restore point described by `info`; the manifest is written last.
pub async fn store_xva(
    repo: &Repository,
    reader: XvaReader,
    info: RestorePointInfo,
) -> Result<StoredXva, EngineError> {
    let (point, bytes_read) =
        store_chunks(repo, reader, info, "reading the XVA", &mut Unpaced).await?;
    let manifest = point
        .commit()
        .await
        .map_err(backup("writing the manifest"))?;
    Ok(StoredXva {
        manifest,
        bytes_read,
    })
}

/// What a caller of [`store_chunks`] does around each chunk: race reads with a cancellation,
/// throttle, report progress.
pub(crate) trait ChunkPacing {
    /// Reads the next chunk (`read` does it; the pacing may race it with a cancellation).
    async fn read(
        &mut self,
        read: impl std::future::Future<Output = Result<Option<DiskChunk>, EngineError>>,
    ) -> Result<Option<DiskChunk>, EngineError>;

    /// A chunk of `length` bytes is about to be stored; `position` is how far through the
    /// XVA's disks (bytes of virtual size) it ends.
    async fn admit(&mut self, length: u64, position: u64) -> Result<(), EngineError>;
}

/// No cancellation, no throttle, no progress.
struct Unpaced;

impl ChunkPacing for Unpaced {
    async fn read(
        &mut self,
        read: impl std::future::Future<Output = Result<Option<DiskChunk>, EngineError>>,
    ) -> Result<Option<DiskChunk>, EngineError> {
        read.await
    }

    async fn admit(&mut self, _length: u64, _position: u64) -> Result<(), EngineError> {
        Ok(())
    }
}

/// The shared loop: `ova.xml`, then every disk's chunks (verified by the reader) into a new
/// restore point, paced by `pacing`; the restore point is returned uncommitted, with the disk
/// bytes read. `read_step` names a failed read in the error.
pub(crate) async fn store_chunks(
    repo: &Repository,
    mut reader: XvaReader,
    info: RestorePointInfo,
    read_step: &'static str,
    pacing: &mut impl ChunkPacing,
) -> Result<(crate::repo::RestorePointWriter, u64), EngineError> {
    let ova = reader.ova_xml().clone();
    let vdis = ova.disks().map_err(|e| backup("ova.xml disks")(e.into()))?;
    let uuid_of: HashMap<String, (Option<String>, Option<String>)> = vdis
        .iter()
        .map(|d| {
            (
                d.id.to_owned(),
                (d.uuid.map(str::to_owned), d.name_label.map(str::to_owned)),
            )
        })
        .collect();
    let disks = reader.disks().to_vec();
    let mut point = repo
        .begin(info)
        .await
        .map_err(backup("starting the restore point"))?;
    point
        .write_ova_xml(ova.to_xml().as_bytes())
        .await
        .map_err(backup("storing ova.xml"))?;
    let mut bytes_read = 0;
    let mut done_before = 0;
    let mut pending: Option<DiskChunk> = None;
    for (index, disk) in disks.iter().enumerate() {
        let (vdi_uuid, name) = uuid_of.get(&disk.prefix).cloned().unwrap_or_default();
        let mut spec = StreamSpec::disk(disk.prefix.clone(), disk.virtual_size);
        spec.vdi_uuid = vdi_uuid;
        spec.name = name;
        let mut stream = point
            .stream(spec)
            .await
            .map_err(backup("starting a disk stream"))?;
        loop {
            let chunk = match pending.take() {
                Some(chunk) => Some(chunk),
                None => {
                    pacing
                        .read(Box::pin(async {
                            reader.next_chunk().await.map_err(backup(read_step))
                        }))
                        .await?
                }
            };
            let Some(chunk) = chunk else { break };
            if chunk.disk != index {
                pending = Some(chunk);
                break;
            }
            let length = chunk.data.len() as u64;
            pacing
                .admit(length, done_before + chunk.offset + length)
                .await?;
            bytes_read += length;
            let number = chunk.offset / u64::from(CHUNK_SIZE);
            stream
                .write_chunk(number, chunk.data)
                .await
                .map_err(backup("storing a chunk"))?;
        }
        stream
            .finish()
            .await
            .map_err(backup("finishing a disk stream"))?;
        done_before += disk.virtual_size;
    }
    if pending.is_some() {
        return Err(EngineError::Unexpected(
            "the XVA's disks came out of order".into(),
        ));
    }
    Ok((point, bytes_read))
}
