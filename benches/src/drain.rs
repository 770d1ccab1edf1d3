//! Reading a whole stream with each format reader, as a backup would, returning what it saw so
//! that the work cannot be optimised away and the result can be checked.

use bytes::Bytes;
use tokio::io::AsyncRead;
use xapi_backup::format::chunked::ChunkedReader;
use xapi_backup::format::raw_tar::RawTarReader;
use xapi_backup::format::vhd::VhdReader;
use xapi_backup::format::xva::{ReadOptions, XvaReader};

/// What a reader produced: how many data bytes, and an order-sensitive fingerprint of where
/// they go (offsets and lengths), cheap enough not to distort the measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Drained {
    /// Data bytes yielded.
    pub data_bytes: u64,
    /// Pieces yielded.
    pub pieces: u64,
    /// Folded offsets and lengths.
    pub layout: u64,
}

impl Drained {
    fn add(&mut self, offset: u64, data: &Bytes) {
        self.data_bytes += data.len() as u64;
        self.pieces += 1;
        self.layout = self
            .layout
            .rotate_left(7)
            .wrapping_add(offset ^ (data.len() as u64) << 1);
    }
}

/// Reads an XVA to its end, verifying every chunk's checksum.
pub async fn drain_xva<R: AsyncRead + Send + Unpin + 'static>(
    source: R,
) -> Result<Drained, xapi_backup::Error> {
    let mut reader = XvaReader::open(source, ReadOptions::default()).await?;
    let mut seen = Drained::default();
    while let Some(chunk) = reader.next_chunk().await? {
        seen.add(chunk.offset, &chunk.data);
    }
    Ok(seen)
}

/// Reads a raw `format=tar` export of a disk of `size` bytes to its end.
pub async fn drain_raw_tar<R: AsyncRead + Send + Unpin + 'static>(
    source: R,
    size: u64,
) -> Result<Drained, xapi_backup::Error> {
    let mut reader = RawTarReader::open(source, size, ReadOptions::default()).await?;
    let mut seen = Drained::default();
    while let Some(chunk) = reader.next_chunk().await? {
        seen.add(chunk.offset, &chunk.data);
    }
    Ok(seen)
}

/// Reads a VHD to its end (footer checked).
pub async fn drain_vhd<R: AsyncRead + Unpin>(source: R) -> Result<Drained, xapi_backup::Error> {
    let mut reader = VhdReader::open(source).await?;
    let mut seen = Drained::default();
    while let Some(extent) = reader.next_extent().await? {
        seen.add(extent.offset, &extent.data);
    }
    Ok(seen)
}

/// Reads a chunked-upload body to its end marker.
pub async fn drain_chunked<R: AsyncRead + Unpin>(
    source: R,
    size: Option<u64>,
) -> Result<Drained, xapi_backup::Error> {
    let mut reader = ChunkedReader::new(source, size);
    let mut seen = Drained::default();
    while let Some(extent) = reader.next_extent().await? {
        seen.add(extent.offset, &extent.data);
    }
    Ok(seen)
}
