//! The Block Allocation Table: big-endian u32 sector offsets, `0xFFFFFFFF` = unallocated.

use super::SECTOR;

/// Marker of an unallocated block.
pub const UNALLOCATED: u32 = 0xFFFF_FFFF;

/// Bytes the BAT of `entries` blocks occupies on disk (whole sectors).
pub fn bat_len(entries: u32) -> u64 {
    (u64::from(entries) * 4).div_ceil(SECTOR) * SECTOR
}

/// Decodes a BAT.
pub fn decode_bat(bytes: &[u8], entries: u32) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .take(entries as usize)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Encodes a BAT, padded with `0xFF` to whole sectors.
pub fn encode_bat(entries: &[u32]) -> Vec<u8> {
    let mut out = vec![0xFFu8; bat_len(entries.len() as u32) as usize];
    for (i, e) in entries.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&e.to_be_bytes());
    }
    out
}

/// True when sector `i` of a block is marked present in its bitmap (MSB first).
pub fn sector_present(bitmap: &[u8], i: usize) -> bool {
    bitmap
        .get(i / 8)
        .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bat_round_trips_and_pads() {
        let e = vec![3, UNALLOCATED, 7];
        let bytes = encode_bat(&e);
        assert_eq!(bytes.len(), 512);
        assert_eq!(&bytes[..4], &[0, 0, 0, 3]);
        assert_eq!(decode_bat(&bytes, 3), e);
        assert_eq!(bat_len(129), 1024);
    }

    #[test]
    fn bitmap_is_msb_first() {
        let bm = [0b1000_0001u8, 0x40];
        assert!(sector_present(&bm, 0));
        assert!(!sector_present(&bm, 1));
        assert!(sector_present(&bm, 7));
        assert!(sector_present(&bm, 9));
        assert!(!sector_present(&bm, 100));
    }
}
