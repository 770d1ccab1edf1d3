//! `export_raw_vdi?format=tar` / `import_raw_vdi?format=tar` (reference §6.2).
//!
//! The XVA chunk scheme with prefix `vdi` (`vdi/00000000`, `vdi/00000000.xxhash`, ...) and no
//! `ova.xml`; checksum members are always required. The tar carries no size: the reader needs
//! the VDI's `virtual_size`.

use bytes::Bytes;
use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite};

use super::compression::Compression;
use super::tar::TarReader;
use super::xva::reader::{ChunkStream, DiskInfo, open_detected};
use super::xva::writer::{drain_into, spawn_stream};
use super::xva::{ChecksumMismatch, DiskChunk, DiskSource, ReadOptions, WriteOptions};
use crate::Error;

/// Member prefix of raw tar exports (`Xapi_globs.vdi_tar_export_dir`).
pub const PREFIX: &str = "vdi";

/// Streams a raw-tar export of `size` bytes read from `reader`. `options.compression` and
/// `options.ova_xml_mtime` are ignored: xapi never compresses this format.
pub fn raw_tar_stream(
    reader: Box<dyn AsyncRead + Send + Unpin>,
    size: u64,
    options: WriteOptions,
) -> impl Stream<Item = Result<Bytes, Error>> + Send + 'static {
    let options = WriteOptions {
        compression: Compression::None,
        ..options
    };
    let disk = DiskSource {
        prefix: PREFIX.to_owned(),
        size,
        reader,
    };
    spawn_stream(None, vec![disk], options)
}

/// Writes a raw-tar export to `writer`; returns the bytes written.
pub async fn write_raw_tar<W: AsyncWrite + Unpin>(
    reader: Box<dyn AsyncRead + Send + Unpin>,
    size: u64,
    options: WriteOptions,
    writer: &mut W,
) -> Result<u64, Error> {
    drain_into(raw_tar_stream(reader, size, options), writer).await
}

/// Reads a raw-tar stream of a disk of `virtual_size` bytes, yielding verified chunks.
pub struct RawTarReader {
    chunks: ChunkStream,
}

impl std::fmt::Debug for RawTarReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawTarReader")
            .field("disk", &self.chunks.disks())
            .finish_non_exhaustive()
    }
}

impl RawTarReader {
    /// Starts reading; gzip or zstd wrapping is detected and undone (lenient reader).
    pub async fn open<R: AsyncRead + Send + Unpin + 'static>(
        reader: R,
        virtual_size: u64,
        options: ReadOptions,
    ) -> Result<Self, Error> {
        let (stream, _) = open_detected(reader, None).await?;
        let disks = vec![DiskInfo {
            prefix: PREFIX.to_owned(),
            virtual_size,
        }];
        Ok(Self {
            chunks: ChunkStream::new(TarReader::new(stream), disks, true, options),
        })
    }

    /// The next verified chunk (`disk` is always 0); `Ok(None)` at the clean end.
    pub async fn next_chunk(&mut self) -> Result<Option<DiskChunk>, Error> {
        self.chunks.next_chunk().await
    }

    /// Chunks whose checksum did not match, accepted under
    /// [`MismatchPolicy::Record`](super::xva::MismatchPolicy::Record), in stream order.
    pub fn mismatches(&self) -> &[ChecksumMismatch] {
        self.chunks.mismatches()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::xva::{CHUNK_SIZE, ChecksumKind, XvaError};
    use futures::TryStreamExt as _;

    fn disk(size: usize) -> Vec<u8> {
        let mut d = vec![0u8; size];
        for (i, b) in d.iter_mut().enumerate().take(CHUNK_SIZE as usize + 77) {
            *b = (i % 253) as u8 + 1;
        }
        let n = d.len();
        d[n - 1] = 0xEE;
        d
    }

    async fn read_back(tar: Vec<u8>, size: u64) -> Result<Vec<u8>, Error> {
        let mut r =
            RawTarReader::open(std::io::Cursor::new(tar), size, ReadOptions::default()).await?;
        let mut out = vec![0u8; size as usize];
        while let Some(c) = r.next_chunk().await? {
            out[c.offset as usize..c.offset as usize + c.data.len()].copy_from_slice(&c.data);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn raw_tar_round_trips_with_vdi_prefix() {
        for kind in [ChecksumKind::Xxhash, ChecksumKind::Sha1] {
            let data = disk(5 * CHUNK_SIZE as usize + 10);
            let opts = WriteOptions {
                checksum: kind,
                ..WriteOptions::default()
            };
            let tar = raw_tar_stream(
                Box::new(std::io::Cursor::new(data.clone())),
                data.len() as u64,
                opts,
            )
            .try_fold(Vec::new(), |mut v, b| async move {
                v.extend_from_slice(&b);
                Ok(v)
            })
            .await
            .expect("writes");
            assert_eq!(&tar[..12], b"vdi/00000000");
            // Chunks 2..=4 are zero and omitted: 3 data chunks, 3 checksums.
            let names = crate::format::tar::tests_support::member_names(&tar);
            assert_eq!(
                names,
                vec![
                    "vdi/00000000".to_owned(),
                    format!("vdi/00000000{}", kind.suffix()),
                    "vdi/00000001".to_owned(),
                    format!("vdi/00000001{}", kind.suffix()),
                    "vdi/00000005".to_owned(),
                    format!("vdi/00000005{}", kind.suffix()),
                ]
            );
            assert_eq!(
                read_back(tar, data.len() as u64).await.expect("reads"),
                data
            );
        }
    }

    #[tokio::test]
    async fn raw_tar_without_checksums_is_refused() {
        let data = disk(CHUNK_SIZE as usize + 100);
        let tar = raw_tar_stream(
            Box::new(std::io::Cursor::new(data.clone())),
            data.len() as u64,
            WriteOptions::default(),
        )
        .try_fold(Vec::new(), |mut v, b| async move {
            v.extend_from_slice(&b);
            Ok(v)
        })
        .await
        .expect("writes");
        // Drop the first checksum member (header + one block of body).
        let first_chunk_end = 512 + CHUNK_SIZE as usize;
        let mut stripped = tar[..first_chunk_end].to_vec();
        stripped.extend_from_slice(&tar[first_chunk_end + 1024..]);
        let err = read_back(stripped, data.len() as u64)
            .await
            .expect_err("must fail");
        assert!(
            matches!(err, Error::Xva(XvaError::MissingChecksum { ref member, .. }) if member == "vdi/00000000"),
            "{err}"
        );
    }
}
