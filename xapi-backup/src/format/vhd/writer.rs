//! VHD writers: fixed, and sparse dynamic from a raw source of known size.
//!
//! Output is written strictly sequentially (it can go straight to a socket or an upload): a
//! dynamic VHD's BAT precedes its blocks, so the set of allocated blocks must be known first,
//! either given ([`write_dynamic_vhd_with_map`]) or found by a first pass over a seekable source
//! ([`write_dynamic_vhd`]). Memory: one block.

use std::io::SeekFrom;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeek, AsyncSeekExt, AsyncWrite, AsyncWriteExt};

use super::bat::{UNALLOCATED, bat_len, encode_bat};
use super::footer::{DiskType, VhdFooter};
use super::header::{DEFAULT_BLOCK_SIZE, DynamicHeader};
use super::{MAX_VHD_SIZE, SECTOR, VHD_EPOCH_OFFSET, VhdError};
use crate::Error;
use crate::format::xva::chunk::is_all_zeros;

/// Parameters of a new VHD.
#[derive(Debug, Clone, Copy)]
pub struct VhdWriteOptions {
    /// Block size of dynamic disks (default 2 MiB).
    pub block_size: u32,
    /// Disk UUID.
    pub uuid: [u8; 16],
    /// Creation time, seconds since 2000-01-01.
    pub timestamp: u32,
}

impl Default for VhdWriteOptions {
    fn default() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        // A version-4-shaped identifier; unique enough for a file id, not a secret.
        let a = xxhash_rust::xxh64::xxh64(&now.to_le_bytes(), u64::from(std::process::id()));
        let b = xxhash_rust::xxh64::xxh64(&now.to_be_bytes(), a);
        let mut uuid = [0u8; 16];
        uuid[..8].copy_from_slice(&a.to_be_bytes());
        uuid[8..].copy_from_slice(&b.to_be_bytes());
        uuid[6] = (uuid[6] & 0x0F) | 0x40;
        uuid[8] = (uuid[8] & 0x3F) | 0x80;
        let secs = (now / 1_000_000_000) as u64;
        Self {
            block_size: DEFAULT_BLOCK_SIZE,
            uuid,
            timestamp: secs.saturating_sub(VHD_EPOCH_OFFSET) as u32,
        }
    }
}

fn check_size(size: u64) -> Result<(), VhdError> {
    if !size.is_multiple_of(SECTOR) {
        return Err(VhdError::InvalidRequest(format!(
            "size {size} is not a whole number of 512-byte sectors"
        )));
    }
    if size > MAX_VHD_SIZE {
        return Err(VhdError::InvalidRequest(format!(
            "size {size} exceeds the VHD maximum of 2040 GiB"
        )));
    }
    Ok(())
}

async fn read_exactly<R: AsyncRead + Unpin>(
    src: &mut R,
    buf: &mut [u8],
    offset: u64,
    size: u64,
) -> Result<(), Error> {
    let mut done = 0;
    while done < buf.len() {
        let n = src
            .read(&mut buf[done..])
            .await
            .map_err(crate::error::io("reading the source disk"))?;
        if n == 0 {
            return Err(VhdError::SizeMismatch {
                context: "raw source ended early",
                declared: size,
                actual: offset + done as u64,
            }
            .into());
        }
        done += n;
    }
    Ok(())
}

/// Writes a fixed VHD: the `size` bytes of `src`, then the footer. Returns bytes written.
pub async fn write_fixed_vhd<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut src: R,
    size: u64,
    options: VhdWriteOptions,
    out: &mut W,
) -> Result<u64, Error> {
    check_size(size)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    while offset < size {
        let n = (size - offset).min(buf.len() as u64) as usize;
        read_exactly(&mut src, &mut buf[..n], offset, size).await?;
        out.write_all(&buf[..n])
            .await
            .map_err(crate::error::io("writing the VHD image"))?;
        offset += n as u64;
    }
    let footer = VhdFooter::new(DiskType::Fixed, size, options.uuid, options.timestamp);
    out.write_all(&footer.encode())
        .await
        .map_err(crate::error::io("writing the VHD image"))?;
    out.flush()
        .await
        .map_err(crate::error::io("writing the VHD image"))?;
    Ok(size + SECTOR)
}

fn block_count(size: u64, block_size: u32) -> Result<u32, VhdError> {
    // Below 4 KiB the sector bitmap is under one byte and readers disagree on its padding
    // (the specification rounds up to a sector, qemu rounds down to nothing): refuse.
    if !(4096..=(256 << 20)).contains(&block_size) || !block_size.is_power_of_two() {
        return Err(VhdError::InvalidRequest(format!(
            "block size {block_size} is not a power of two between 4 KiB and 256 MiB"
        )));
    }
    u32::try_from(size.div_ceil(u64::from(block_size)))
        .map_err(|_| VhdError::InvalidRequest("too many blocks".to_owned()))
}

/// Writes a dynamic VHD of `size` bytes read sequentially from `src`, allocating exactly the
/// blocks marked in `allocated` (one flag per block). Bytes of unmarked blocks are read and
/// must be zero: a non-zero byte there is an error, never silently dropped.
pub async fn write_dynamic_vhd_with_map<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut src: R,
    size: u64,
    allocated: &[bool],
    options: VhdWriteOptions,
    out: &mut W,
) -> Result<u64, Error> {
    check_size(size)?;
    let entries = block_count(size, options.block_size)?;
    if allocated.len() != entries as usize {
        return Err(VhdError::InvalidRequest(format!(
            "allocation map has {} entries for {entries} blocks",
            allocated.len()
        ))
        .into());
    }
    let block = u64::from(options.block_size);
    let table_offset = 3 * SECTOR;
    let header = DynamicHeader::new_dynamic(table_offset, entries, options.block_size);
    let bitmap_len = header.bitmap_len();
    let mut next = table_offset + bat_len(entries);
    let mut bat = vec![UNALLOCATED; entries as usize];
    for (i, &a) in allocated.iter().enumerate() {
        if a {
            bat[i] = u32::try_from(next / SECTOR)
                .map_err(|_| VhdError::InvalidRequest("image too large for the BAT".into()))?;
            next += bitmap_len + block;
        }
    }
    let footer = VhdFooter::new(DiskType::Dynamic, size, options.uuid, options.timestamp);
    let footer_bytes = footer.encode();
    out.write_all(&footer_bytes)
        .await
        .map_err(crate::error::io("writing the VHD image"))?;
    out.write_all(&header.encode())
        .await
        .map_err(crate::error::io("writing the VHD image"))?;
    out.write_all(&encode_bat(&bat))
        .await
        .map_err(crate::error::io("writing the VHD image"))?;
    // Every sector of an allocated block is marked present (blocks of at least 4 KiB have a
    // whole number of bitmap bytes).
    let mut bitmap = vec![0u8; bitmap_len as usize];
    let sectors = (block / SECTOR) as usize;
    bitmap[..sectors / 8].fill(0xFF);
    let mut buf = vec![0u8; block as usize];
    for (i, &a) in allocated.iter().enumerate() {
        let offset = i as u64 * block;
        let n = (size - offset).min(block) as usize;
        read_exactly(&mut src, &mut buf[..n], offset, size).await?;
        buf[n..].fill(0);
        if a {
            out.write_all(&bitmap)
                .await
                .map_err(crate::error::io("writing the VHD image"))?;
            out.write_all(&buf)
                .await
                .map_err(crate::error::io("writing the VHD image"))?;
        } else if !is_all_zeros(&buf[..n]) {
            return Err(VhdError::InvalidRequest(format!(
                "block {i} (disk offset {offset}) holds data but is not in the allocation map"
            ))
            .into());
        }
    }
    out.write_all(&footer_bytes)
        .await
        .map_err(crate::error::io("writing the VHD image"))?;
    out.flush()
        .await
        .map_err(crate::error::io("writing the VHD image"))?;
    Ok(next + SECTOR)
}

/// Writes a sparse dynamic VHD of `size` bytes from a seekable raw source: a first pass finds
/// the non-zero blocks, a second streams them. All-zero blocks stay unallocated.
pub async fn write_dynamic_vhd<R: AsyncRead + AsyncSeek + Unpin, W: AsyncWrite + Unpin>(
    mut src: R,
    size: u64,
    options: VhdWriteOptions,
    out: &mut W,
) -> Result<u64, Error> {
    check_size(size)?;
    let entries = block_count(size, options.block_size)?;
    let block = u64::from(options.block_size);
    let start = src
        .stream_position()
        .await
        .map_err(crate::error::io("seeking in the source disk"))?;
    let mut buf = vec![0u8; block as usize];
    let mut allocated = Vec::with_capacity(entries as usize);
    for i in 0..u64::from(entries) {
        let n = (size - i * block).min(block) as usize;
        read_exactly(&mut src, &mut buf[..n], i * block, size).await?;
        allocated.push(!is_all_zeros(&buf[..n]));
    }
    src.seek(SeekFrom::Start(start))
        .await
        .map_err(crate::error::io("seeking in the source disk"))?;
    write_dynamic_vhd_with_map(src, size, &allocated, options, out).await
}
