//! The answer of `VDI.list_changed_blocks` decoded: base64 of a bitmap with one bit per 64 KiB
//! block, most significant bit first; the changed blocks as byte ranges, coalesced into runs and
//! cut on the repository's chunk grid.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The CBT block size: 64 KiB.
pub const CBT_BLOCK: u64 = 64 << 10;

/// Why a changed-block bitmap cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChangedBlocksError {
    /// The answer is not base64.
    #[error("list_changed_blocks answer is not base64: {0}")]
    NotBase64(String),
    /// The bitmap covers less than the disk.
    #[error(
        "list_changed_blocks bitmap covers {covered} bytes ({bits} blocks), the disk has {size}"
    )]
    TooShort {
        /// Blocks in the bitmap.
        bits: u64,
        /// Bytes they cover.
        covered: u64,
        /// The disk's size.
        size: u64,
    },
}

/// The changed 64 KiB blocks of a disk of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedBlocks {
    bitmap: Vec<u8>,
    size: u64,
}

impl ChangedBlocks {
    /// Decodes the base64 answer of `VDI.list_changed_blocks` for a disk of `size` bytes. A
    /// longer bitmap is accepted (bits past the disk are ignored), a shorter one is not.
    pub fn decode(answer: &str, size: u64) -> Result<Self, ChangedBlocksError> {
        let bitmap = BASE64
            .decode(answer.trim())
            .map_err(|err| ChangedBlocksError::NotBase64(err.to_string()))?;
        Self::from_bitmap(bitmap, size)
    }

    /// A bitmap (bit `i` in byte `i / 8`, mask `0x80 >> (i % 8)`) for a disk of `size` bytes.
    pub fn from_bitmap(bitmap: Vec<u8>, size: u64) -> Result<Self, ChangedBlocksError> {
        let bits = bitmap.len() as u64 * 8;
        if bits < size.div_ceil(CBT_BLOCK) {
            return Err(ChangedBlocksError::TooShort {
                bits,
                covered: bits * CBT_BLOCK,
                size,
            });
        }
        Ok(Self { bitmap, size })
    }

    /// The disk's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether block `block` (bytes `block × 64 KiB` onwards) changed.
    pub fn is_changed(&self, block: u64) -> bool {
        block < self.size.div_ceil(CBT_BLOCK)
            && self
                .bitmap
                .get((block / 8) as usize)
                .is_some_and(|byte| byte & (0x80 >> (block % 8)) != 0)
    }

    /// Bytes of the disk in changed blocks (the last block cut at the disk's end).
    pub fn changed_bytes(&self) -> u64 {
        self.runs(0, self.size).map(|(_, len)| len).sum()
    }

    /// The changed bytes of `[start, end)` as `(offset, length)` runs of adjacent changed
    /// blocks, in order, cut at `start`, `end` and the disk's end.
    pub fn runs(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let end = end.min(self.size);
        let mut block = start / CBT_BLOCK;
        let last = end.div_ceil(CBT_BLOCK);
        std::iter::from_fn(move || {
            while block < last && !self.is_changed(block) {
                block += 1;
            }
            if block >= last {
                return None;
            }
            let first = block;
            while block < last && self.is_changed(block) {
                block += 1;
            }
            let from = (first * CBT_BLOCK).max(start);
            let to = (block * CBT_BLOCK).min(end);
            Some((from, to - from))
        })
    }

    /// Whether any block of `[start, end)` changed.
    pub fn any_in(&self, start: u64, end: u64) -> bool {
        self.runs(start, end).next().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(bits: &[u64], size: u64) -> ChangedBlocks {
        let mut bitmap = vec![0_u8; size.div_ceil(CBT_BLOCK).div_ceil(8) as usize];
        for bit in bits {
            bitmap[(bit / 8) as usize] |= 0x80 >> (bit % 8);
        }
        ChangedBlocks::from_bitmap(bitmap, size).unwrap()
    }

    #[test]
    fn bits_are_most_significant_first() {
        // 0b0100_0001 0b1000_0000: blocks 1, 7 and 8
        let changed = ChangedBlocks::decode(&BASE64.encode([0x41, 0x80]), 16 * CBT_BLOCK).unwrap();
        let set: Vec<u64> = (0..16).filter(|b| changed.is_changed(*b)).collect();
        assert_eq!(set, vec![1, 7, 8]);
        assert_eq!(changed.changed_bytes(), 3 * CBT_BLOCK);
    }

    #[test]
    fn adjacent_blocks_coalesce_and_runs_are_cut_where_asked() {
        let changed = blocks(&[0, 1, 2, 15, 16, 17, 40], 64 * CBT_BLOCK);
        let runs: Vec<_> = changed.runs(0, u64::MAX).collect();
        assert_eq!(
            runs,
            vec![
                (0, 3 * CBT_BLOCK),
                (15 * CBT_BLOCK, 3 * CBT_BLOCK),
                (40 * CBT_BLOCK, CBT_BLOCK)
            ]
        );
        // cut on the 1 MiB grid: blocks 15 | 16 17
        let mib = 16 * CBT_BLOCK;
        let first: Vec<_> = changed.runs(0, mib).collect();
        assert_eq!(first, vec![(0, 3 * CBT_BLOCK), (15 * CBT_BLOCK, CBT_BLOCK)]);
        let second: Vec<_> = changed.runs(mib, 2 * mib).collect();
        assert_eq!(second, vec![(mib, 2 * CBT_BLOCK)]);
        assert!(!changed.any_in(3 * mib, 4 * mib));
    }

    #[test]
    fn the_last_block_is_cut_at_the_disk_end_and_a_short_bitmap_is_refused() {
        let size = 3 * CBT_BLOCK + 100;
        let changed = blocks(&[3], size);
        assert_eq!(changed.changed_bytes(), 100);
        assert_eq!(
            changed.runs(0, u64::MAX).collect::<Vec<_>>(),
            vec![(3 * CBT_BLOCK, 100)]
        );
        let err = ChangedBlocks::from_bitmap(vec![0], 9 * CBT_BLOCK).unwrap_err();
        assert!(matches!(err, ChangedBlocksError::TooShort { bits: 8, .. }));
        assert!(matches!(
            ChangedBlocks::decode("not base64!", CBT_BLOCK),
            Err(ChangedBlocksError::NotBase64(_))
        ));
    }
}
