//! The server side of an XVA upload, as xapi's importer reads it (`Stream_vdi.recv_all_vdi`).
//!
//! The reading itself is `xapi_backup`'s [`XvaReader`], always opened with
//! [`MismatchPolicy::Record`]: xapi writes a chunk's bytes before it verifies them, and with
//! `force` a chunk whose checksum does not match is kept. What stays here is xapi's answer to
//! each problem: without `force` a mismatching inline checksum fails with `IMPORT_ERROR`
//! carrying `Stream_vdi.Invalid_checksum("Block <member> checksum failed: original = <stored>;
//! recomputed = <computed>")`, and a disagreeing checksum table (exports older than
//! `export_vsn` 2) with `IMPORT_ERROR_SOME_CHECKSUMS_FAILED`; an upload that ends early is
//! `IMPORT_ERROR_PREMATURE_EOF`, a member out of place `IMPORT_ERROR_UNEXPECTED_FILE`.

use tokio::io::AsyncRead;
use xapi_backup::Error as ReadError;
use xapi_backup::format::ova_xml::OvaXml;
use xapi_backup::format::tar::TarError;
use xapi_backup::format::xva::{
    ChecksumMismatch, ChecksumSource, DiskChunk, DiskInfo, MismatchPolicy, XvaError, XvaReader,
};
use xapi_core::api::ErrorCode;
use xapi_core::wire::Failure;

use crate::api_error::failure;

fn premature_eof() -> Failure {
    failure(ErrorCode::ImportErrorPrematureEof, [] as [&str; 0])
}

fn invalid(message: String) -> Failure {
    failure(ErrorCode::ImportError, [message])
}

/// A reading failure as xapi's importer reports it.
fn import_failure(err: ReadError) -> Failure {
    match err {
        ReadError::Tar(TarError::Truncated { .. })
        | ReadError::Xva(
            XvaError::DiskTruncated { .. } | XvaError::MissingChecksum { found: None, .. },
        ) => premature_eof(),
        ReadError::Xva(XvaError::UnexpectedMember {
            expected, found, ..
        }) if found == "end of archive" && expected == "ova.xml" => premature_eof(),
        ReadError::Xva(XvaError::UnexpectedMember {
            expected, found, ..
        }) if expected == "ova.xml" || expected == "end of archive" => {
            failure(ErrorCode::ImportErrorUnexpectedFile, [expected, found])
        }
        ReadError::Xva(XvaError::MissingChecksum {
            found: Some(found), ..
        }) => invalid(format!(
            "Expected to find a supported inline checksum file, instead found a file called: \
             {found}"
        )),
        ReadError::Xva(XvaError::LegacyChecksumTable { table, .. }) if table.is_empty() => {
            premature_eof()
        }
        ReadError::Xva(XvaError::NotAnXva { first_bytes }) => {
            invalid(format!("not an XVA: the upload starts with {first_bytes}"))
        }
        ReadError::OvaXml(e) => invalid(format!("ova.xml: {e}")),
        ReadError::Io { source, .. } => invalid(format!("reading the upload: {source}")),
        other => invalid(format!("Invalid XVA file: {other}")),
    }
}

/// The failure xapi reports for a checksum that does not match, without `force`.
fn mismatch_failure(mismatch: &ChecksumMismatch) -> Failure {
    match mismatch.source {
        ChecksumSource::Inline => invalid(format!(
            "Stream_vdi.Invalid_checksum(\"Block {} checksum failed: original = {}; recomputed \
             = {}\")",
            mismatch.member,
            mismatch.stored.as_deref().unwrap_or_default(),
            mismatch.computed
        )),
        ChecksumSource::LegacyTable { .. } => {
            failure(ErrorCode::ImportErrorSomeChecksumsFailed, [] as [&str; 0])
        }
    }
}

/// An XVA being read from an upload.
#[derive(Debug)]
pub(crate) struct XvaIntake {
    reader: XvaReader,
    force: bool,
    /// Mismatches of the reader already judged.
    judged: usize,
}

impl XvaIntake {
    /// Detect the compression, read and parse `ova.xml`, work out which disks follow.
    pub(crate) async fn open<R>(reader: R, force: bool) -> Result<Self, Failure>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        // mismatches are recorded and judged below (force, xapi's error text)
        let options = super::xapi_read_options(MismatchPolicy::Record);
        let reader = XvaReader::open(reader, options)
            .await
            .map_err(import_failure)?;
        Ok(Self {
            reader,
            force,
            judged: 0,
        })
    }

    /// The parsed object table.
    pub(crate) fn ova_xml(&self) -> &OvaXml {
        self.reader.ova_xml()
    }

    /// The disks whose chunks follow, in stream order.
    pub(crate) fn disks(&self) -> &[DiskInfo] {
        self.reader.disks()
    }

    /// Checksum mismatches accepted because of `force`.
    pub(crate) fn mismatches(&self) -> &[ChecksumMismatch] {
        self.reader.mismatches()
    }

    /// Read what follows `ova.xml` in a metadata-only archive: nothing but the end marker.
    pub(crate) async fn finish_metadata_only(&mut self) -> Result<(), Failure> {
        self.reader
            .finish_metadata_only()
            .await
            .map_err(import_failure)
    }

    /// The next chunk with data (keep-alive chunks only renumber and are skipped); `None` once
    /// every disk is accounted for. A chunk whose checksum does not match fails the import
    /// unless `force`.
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<DiskChunk>, Failure> {
        let chunk = self.reader.next_chunk().await.map_err(import_failure)?;
        for mismatch in &self.reader.mismatches()[self.judged..] {
            tracing::warn!(
                member = mismatch.member,
                stored = mismatch.stored,
                computed = mismatch.computed,
                force = self.force,
                "chunk checksum mismatch"
            );
            if !self.force {
                return Err(mismatch_failure(mismatch));
            }
        }
        self.judged = self.reader.mismatches().len();
        Ok(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt as _;
    use xapi_backup::format::compression::Compression;
    use xapi_backup::format::ova_xml::{OvaClass, OvaObject, OvaVersion, Value};
    use xapi_backup::format::tar::BLOCK;
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
            [DiskInfo {
                prefix: "Ref:3".into(),
                virtual_size: SIZE as u64
            }]
        );
        let mut image = vec![0u8; SIZE];
        while let Some(chunk) = intake.next_chunk().await? {
            let at = usize::try_from(chunk.offset).unwrap();
            image[at..at + chunk.data.len()].copy_from_slice(&chunk.data);
        }
        let members = intake.mismatches().iter().map(|m| m.member.clone());
        Ok((image, members.collect()))
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
        assert_eq!(err.code, ErrorCode::ImportError);
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
        assert_eq!(err.code, ErrorCode::ImportErrorPrematureEof);
    }

    #[tokio::test]
    async fn something_else_than_an_xva_is_refused() {
        let err = read(vec![b'x'; 4096], false).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::ImportError);
        assert!(err.params[0].starts_with("not an XVA"), "{:?}", err.params);
    }
}
