//! Small disks described by fuzz input: runs of zeros, repeated bytes and literal bytes, so
//! that the fuzzer reaches both omitted (all-zero) and present chunks or blocks cheaply.

use arbitrary::Arbitrary;

/// One run of a disk's bytes.
#[derive(Debug, Arbitrary)]
pub enum Run {
    /// `n` × 4 KiB of zeros.
    Zeros(u8),
    /// `len` copies of `byte`.
    Fill(u8, u16),
    /// Literal bytes.
    Literal(Vec<u8>),
}

/// Builds the disk: the runs in order, capped at `max` bytes, padded with zeros to a multiple
/// of `align`.
pub fn build_disk(runs: &[Run], max: usize, align: usize) -> Vec<u8> {
    let mut disk = Vec::new();
    for run in runs {
        match run {
            Run::Zeros(n) => disk.resize(disk.len() + usize::from(*n) * 4096, 0),
            Run::Fill(byte, len) => disk.resize(disk.len() + usize::from(*len), *byte),
            Run::Literal(bytes) => disk.extend_from_slice(bytes),
        }
        if disk.len() >= max {
            break;
        }
    }
    disk.truncate(max);
    let padded = disk.len().div_ceil(align.max(1)) * align.max(1);
    disk.resize(padded, 0);
    disk
}
