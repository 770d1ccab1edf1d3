//! The server side of an XVA upload, as xapi's importer reads it (`Stream_vdi.recv_all_vdi`):
//! plain, gzip or zstd detected from the first block, `ova.xml` first, then the chunks of each
//! disk placed by `xapi_backup`'s [`ChunkPlacer`] and checked against their inline checksum
//! member.
//!
//! Unlike the SDK's strict reader, this one honours xapi's `force`: a chunk whose checksum does
//! not match is still handed out (xapi writes the bytes before it verifies them) and recorded in
//! [`XvaIntake::mismatches`]; without `force` the import fails with xapi's `IMPORT_ERROR`
//! carrying `Stream_vdi.Invalid_checksum("Block <member> checksum failed: original = <stored>;
//! recomputed = <computed>")`. Exports older than `export_vsn` 2 end with a checksum table that
//! is compared too (`IMPORT_ERROR_SOME_CHECKSUMS_FAILED` unless `force`).

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use xapi_backup::format::compression::{Compression, DecompressingReader};
use xapi_backup::format::ova_xml::{OvaXml, parse_value_document};
use xapi_backup::format::tar::{BLOCK, TarError, TarReader, parse_header};
use xapi_backup::format::xva::ChecksumKind;
use xapi_backup::format::xva::chunk::ChunkPlacer;
use xapi_core::wire::Failure;

use crate::api_error::failure;

/// Largest `ova.xml` accepted.
const MAX_OVA_XML: u64 = 256 << 20;
/// Largest chunk member accepted (xapi writes 1 MiB).
const MAX_CHUNK: u64 = 16 << 20;

type BoxedRead = Box<dyn AsyncRead + Send + Unpin>;

/// One chunk of disk data, placed.
#[derive(Debug)]
pub(crate) struct IntakeChunk {
    /// Index of the disk in [`XvaIntake::disks`].
    pub(crate) disk: usize,
    /// Disk offset of the first byte.
    pub(crate) offset: u64,
    /// The bytes.
    pub(crate) data: Bytes,
}

/// A disk whose chunks follow `ova.xml`: its export id (member prefix) and `virtual_size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IntakeDisk {
    /// Export id (`Ref:42`).
    pub(crate) id: String,
    /// Bytes the importer accounts for.
    pub(crate) size: u64,
}

/// An XVA being read from an upload.
pub(crate) struct XvaIntake {
    tar: TarReader<BoxedRead>,
    ova: OvaXml,
    disks: Vec<IntakeDisk>,
    index: usize,
    placer: Option<ChunkPlacer>,
    first_chunk_length: Option<u64>,
    force: bool,
    has_inline_checksums: bool,
    /// Chunk member → checksum computed here (xapi's `checksum_table`), for `export_vsn < 2`.
    computed: Vec<(String, String)>,
    mismatches: Vec<String>,
    finished: bool,
}

impl std::fmt::Debug for XvaIntake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XvaIntake")
            .field("disks", &self.disks)
            .field("force", &self.force)
            .field("mismatches", &self.mismatches)
            .finish_non_exhaustive()
    }
}

/// A tar-layer failure as xapi reports it: a premature end has its own code.
fn tar_failure(err: &TarError) -> Failure {
    match err {
        TarError::Truncated { .. } => failure("IMPORT_ERROR_PREMATURE_EOF", [] as [&str; 0]),
        other => failure("IMPORT_ERROR", [other.to_string()]),
    }
}

fn invalid(message: String) -> Failure {
    failure("IMPORT_ERROR", [message])
}

impl XvaIntake {
    /// Detect the compression, read and parse `ova.xml`, work out which disks follow.
    pub(crate) async fn open<R>(mut reader: R, force: bool) -> Result<Self, Failure>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let mut prefix = vec![0u8; BLOCK];
        let mut got = 0;
        while got < BLOCK {
            let n = reader
                .read(&mut prefix[got..])
                .await
                .map_err(|e| invalid(format!("reading the upload: {e}")))?;
            if n == 0 {
                break;
            }
            got += n;
        }
        prefix.truncate(got);
        let block: Option<&[u8; BLOCK]> = prefix.as_slice().try_into().ok();
        let is_tar = block.is_some_and(|b| matches!(parse_header(b, 0), Ok(Some(_))));
        let compression = if is_tar {
            Compression::None
        } else if let Some(kind) = Compression::detect(&prefix) {
            kind
        } else if got < BLOCK {
            return Err(failure("IMPORT_ERROR_PREMATURE_EOF", [] as [&str; 0]));
        } else {
            return Err(invalid(format!(
                "not an XVA: the upload starts with {:02X?}",
                &prefix[..16.min(prefix.len())]
            )));
        };
        let chained = std::io::Cursor::new(prefix).chain(reader);
        let stream: BoxedRead = match compression {
            Compression::None => Box::new(chained),
            kind => Box::new(
                DecompressingReader::new(chained, kind)
                    .map_err(|e| invalid(format!("cannot decompress the upload: {e}")))?,
            ),
        };
        let mut tar = TarReader::new(stream);
        let first = tar
            .next_entry()
            .await
            .map_err(|e| tar_failure(&e))?
            .ok_or_else(|| failure("IMPORT_ERROR_PREMATURE_EOF", [] as [&str; 0]))?;
        if first.name != "ova.xml" {
            return Err(failure(
                "IMPORT_ERROR_UNEXPECTED_FILE",
                ["ova.xml", first.name.as_str()],
            ));
        }
        let xml = tar
            .read_body(&first, MAX_OVA_XML)
            .await
            .map_err(|e| tar_failure(&e))?;
        let ova = OvaXml::parse(&xml).map_err(|e| invalid(format!("ova.xml: {e}")))?;
        let disks = ova
            .disks()
            .map_err(|e| invalid(format!("ova.xml: {e}")))?
            .into_iter()
            .map(|d| IntakeDisk {
                id: d.id.to_owned(),
                size: d.virtual_size,
            })
            .collect();
        let has_inline_checksums = ova.version.export_vsn > 0;
        Ok(Self {
            tar,
            ova,
            disks,
            index: 0,
            placer: None,
            first_chunk_length: None,
            force,
            has_inline_checksums,
            computed: Vec::new(),
            mismatches: Vec::new(),
            finished: false,
        })
    }

    /// The parsed object table.
    pub(crate) fn ova_xml(&self) -> &OvaXml {
        &self.ova
    }

    /// The disks whose chunks follow, in stream order.
    pub(crate) fn disks(&self) -> &[IntakeDisk] {
        &self.disks
    }

    /// Chunk members whose checksum did not match (accepted because of `force`).
    pub(crate) fn mismatches(&self) -> &[String] {
        &self.mismatches
    }

    /// Read what follows `ova.xml` in a metadata-only archive: nothing but the end marker.
    pub(crate) async fn finish_metadata_only(&mut self) -> Result<(), Failure> {
        if let Some(extra) = self.tar.next_entry().await.map_err(|e| tar_failure(&e))? {
            return Err(failure(
                "IMPORT_ERROR_UNEXPECTED_FILE",
                ["end of archive", extra.name.as_str()],
            ));
        }
        self.finished = true;
        Ok(())
    }

    /// The next chunk with data (keep-alive chunks only renumber and are skipped); `None` once
    /// every disk is accounted for.
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<IntakeChunk>, Failure> {
        loop {
            if self.finished {
                return Ok(None);
            }
            if self.placer.as_ref().is_none_or(ChunkPlacer::is_complete) {
                if self.placer.is_some() {
                    self.index += 1;
                }
                let Some(disk) = self.disks.get(self.index) else {
                    self.check_legacy_table().await?;
                    self.finished = true;
                    return Ok(None);
                };
                self.placer = Some(ChunkPlacer::new(&disk.id, disk.size));
                continue;
            }
            let placer = self
                .placer
                .as_mut()
                .expect("a placer is set while a disk is open");
            let Some(entry) = self.tar.next_entry().await.map_err(|e| tar_failure(&e))? else {
                return Err(failure("IMPORT_ERROR_PREMATURE_EOF", [] as [&str; 0]));
            };
            let placement = placer
                .place(&entry.name, entry.size, &mut self.first_chunk_length)
                .map_err(|e| invalid(format!("Invalid XVA file: {e}")))?;
            let data = self
                .tar
                .read_body(&entry, MAX_CHUNK)
                .await
                .map_err(|e| tar_failure(&e))?;
            if self.has_inline_checksums {
                self.check_inline(&entry.name, &data).await?;
            } else {
                self.computed
                    .push((entry.name.clone(), ChecksumKind::Sha1.digest(&data)));
            }
            if data.is_empty() {
                continue;
            }
            return Ok(Some(IntakeChunk {
                disk: self.index,
                offset: placement.offset,
                data,
            }));
        }
    }

    /// Read the checksum member that follows chunk `member` and compare.
    async fn check_inline(&mut self, member: &str, data: &[u8]) -> Result<(), Failure> {
        let next = self.tar.next_entry().await.map_err(|e| tar_failure(&e))?;
        let Some(cs) = next else {
            return Err(failure("IMPORT_ERROR_PREMATURE_EOF", [] as [&str; 0]));
        };
        let Some(kind) = ChecksumKind::of_member(member, &cs.name) else {
            return Err(invalid(format!(
                "Expected to find a supported inline checksum file, instead found a file \
                 called: {}",
                cs.name
            )));
        };
        let stored = self
            .tar
            .read_body(&cs, 4096)
            .await
            .map_err(|e| tar_failure(&e))?;
        let stored = String::from_utf8_lossy(&stored).into_owned();
        let computed = kind.digest(data);
        self.computed.push((member.to_owned(), computed.clone()));
        if stored == computed {
            return Ok(());
        }
        tracing::warn!(
            member,
            stored,
            computed,
            force = self.force,
            "chunk checksum mismatch"
        );
        if self.force {
            self.mismatches.push(member.to_owned());
            return Ok(());
        }
        Err(invalid(format!(
            "Stream_vdi.Invalid_checksum(\"Block {member} checksum failed: original = {stored}; \
             recomputed = {computed}\")"
        )))
    }

    /// For `export_vsn < 2`: the trailing XML-RPC table of chunk checksums must agree with the
    /// chunks read.
    async fn check_legacy_table(&mut self) -> Result<(), Failure> {
        if self.ova.version.export_vsn >= 2 {
            return Ok(());
        }
        let entry = self
            .tar
            .next_entry()
            .await
            .map_err(|e| tar_failure(&e))?
            .ok_or_else(|| failure("IMPORT_ERROR_PREMATURE_EOF", [] as [&str; 0]))?;
        let body = self
            .tar
            .read_body(&entry, MAX_OVA_XML)
            .await
            .map_err(|e| tar_failure(&e))?;
        let table = parse_value_document(&body)
            .map_err(|e| invalid(format!("checksum table {}: {e}", entry.name)))?;
        let members = table.as_struct().unwrap_or_default();
        let all_match = self.computed.iter().all(|(member, digest)| {
            members
                .iter()
                .find(|(k, _)| k == member)
                .and_then(|(_, v)| v.as_str())
                .is_some_and(|expected| expected.trim().eq_ignore_ascii_case(digest))
        });
        if all_match || self.force {
            return Ok(());
        }
        Err(failure(
            "IMPORT_ERROR_SOME_CHECKSUMS_FAILED",
            [] as [&str; 0],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt as _;
    use xapi_backup::format::ova_xml::{OvaClass, OvaObject, OvaVersion, Value};
    use xapi_backup::format::xva::{DiskSource, WriteOptions, xva_stream};

    const SIZE: usize = 3 << 20;

    fn object(class: OvaClass, id: &str, fields: &[(&str, &str)]) -> OvaObject {
        OvaObject {
            class,
            id: id.to_owned(),
            snapshot: Value::Struct(
                fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
                    .collect(),
            ),
        }
    }

    fn ova() -> OvaXml {
        OvaXml {
            version: OvaVersion {
                hostname: "sim".into(),
                xapi_major: 25,
                xapi_minor: 6,
                ..OvaVersion::default()
            },
            objects: vec![
                object(OvaClass::Vm, "Ref:1", &[("name_label", "vm")]),
                object(
                    OvaClass::Vbd,
                    "Ref:2",
                    &[("VM", "Ref:1"), ("VDI", "Ref:3"), ("type", "Disk")],
                ),
                object(OvaClass::Vdi, "Ref:3", &[("virtual_size", "3145728")]),
            ],
        }
    }

    fn disk() -> Vec<u8> {
        (0..SIZE).map(|i| (i % 253) as u8 ^ 0x5a).collect()
    }

    async fn xva(compression: Compression) -> Vec<u8> {
        let options = WriteOptions {
            compression,
            ..WriteOptions::default()
        };
        let source = DiskSource {
            prefix: "Ref:3".to_owned(),
            size: SIZE as u64,
            reader: Box::new(std::io::Cursor::new(disk())),
        };
        xva_stream(&ova(), vec![source], options)
            .unwrap()
            .try_fold(Vec::new(), |mut all, bytes| async move {
                all.extend_from_slice(&bytes);
                Ok(all)
            })
            .await
            .unwrap()
    }

    /// Flip the first digit of the first `.xxhash` member's body.
    fn corrupt_first_checksum(mut xva: Vec<u8>) -> Vec<u8> {
        let mut at = 0;
        while at + BLOCK <= xva.len() {
            let name_end = xva[at..at + 100]
                .iter()
                .position(|b| *b == 0)
                .unwrap_or(100);
            let name = String::from_utf8_lossy(&xva[at..at + name_end]).into_owned();
            let size_text = String::from_utf8_lossy(&xva[at + 124..at + 135]).into_owned();
            let size = usize::from_str_radix(size_text.trim_matches('\0').trim(), 8).unwrap();
            if name.ends_with(".xxhash") {
                let digit = &mut xva[at + BLOCK];
                *digit = if *digit == b'0' { b'1' } else { b'0' };
                return xva;
            }
            at += BLOCK + size.div_ceil(BLOCK) * BLOCK;
        }
        panic!("no checksum member");
    }

    async fn read(xva: Vec<u8>, force: bool) -> Result<(Vec<u8>, Vec<String>), Failure> {
        let mut intake = XvaIntake::open(std::io::Cursor::new(xva), force).await?;
        assert_eq!(
            intake.disks(),
            [IntakeDisk {
                id: "Ref:3".into(),
                size: SIZE as u64
            }]
        );
        let mut image = vec![0u8; SIZE];
        while let Some(chunk) = intake.next_chunk().await? {
            let at = usize::try_from(chunk.offset).unwrap();
            image[at..at + chunk.data.len()].copy_from_slice(&chunk.data);
        }
        Ok((image, intake.mismatches().to_vec()))
    }

    #[tokio::test]
    async fn every_compression_reads_back_the_disk() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let (image, mismatches) = read(xva(compression).await, false).await.unwrap();
            assert_eq!(image, disk(), "{compression:?}");
            assert!(mismatches.is_empty());
        }
    }

    #[tokio::test]
    async fn a_bad_checksum_fails_unless_forced() {
        let bad = corrupt_first_checksum(xva(Compression::None).await);
        let err = read(bad.clone(), false).await.unwrap_err();
        assert_eq!(err.code.as_str(), "IMPORT_ERROR");
        assert!(
            err.params[0].starts_with(
                "Stream_vdi.Invalid_checksum(\"Block Ref:3/00000000 checksum failed: original = "
            ),
            "{:?}",
            err.params
        );
        let (image, mismatches) = read(bad, true).await.unwrap();
        assert_eq!(image, disk(), "force keeps the chunk's bytes");
        assert_eq!(mismatches, ["Ref:3/00000000"]);
    }

    #[tokio::test]
    async fn a_cut_upload_is_a_premature_eof() {
        let whole = xva(Compression::None).await;
        let cut = whole[..whole.len() / 2].to_vec();
        let err = read(cut, true).await.unwrap_err();
        assert_eq!(err.code.as_str(), "IMPORT_ERROR_PREMATURE_EOF");
    }

    #[tokio::test]
    async fn something_else_than_an_xva_is_refused() {
        let err = read(vec![b'x'; 4096], false).await.unwrap_err();
        assert_eq!(err.code.as_str(), "IMPORT_ERROR");
        assert!(err.params[0].starts_with("not an XVA"), "{:?}", err.params);
    }
}
