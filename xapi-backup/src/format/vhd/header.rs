//! The 1024-byte dynamic disk header (cookie `cxsparse`) and its parent locators.

use super::{SECTOR, VhdError, vhd_checksum};

/// Header cookie.
pub const HEADER_COOKIE: &[u8; 8] = b"cxsparse";

/// Default block size: 2 MiB.
pub const DEFAULT_BLOCK_SIZE: u32 = 2 << 20;

/// One parent locator entry (where the parent's path is stored in the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentLocator {
    /// Platform code: `W2ku` (absolute UTF-16LE path), `W2ru` (relative UTF-16LE path),
    /// `MacX` (UTF-8 file URL), ...
    pub platform_code: [u8; 4],
    /// Space reserved for the data (sectors per the specification; some writers put bytes).
    pub data_space: u32,
    /// Length of the data in bytes.
    pub data_length: u32,
    /// File offset of the data.
    pub data_offset: u64,
}

impl ParentLocator {
    /// Decodes the locator's data as a path or URL, per its platform code.
    pub fn decode_path(&self, data: &[u8]) -> Option<String> {
        match &self.platform_code {
            b"W2ku" | b"W2ru" | b"Wi2k" | b"Wi2r" => {
                let units: Vec<u16> = data
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect();
                Some(
                    String::from_utf16_lossy(&units)
                        .trim_end_matches('\0')
                        .to_owned(),
                )
            }
            b"MacX" | b"Mac " => Some(
                String::from_utf8_lossy(data)
                    .trim_end_matches('\0')
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

/// The dynamic disk header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicHeader {
    /// File offset of the Block Allocation Table.
    pub table_offset: u64,
    /// Number of BAT entries.
    pub max_table_entries: u32,
    /// Block size in bytes (a power of two, at least one sector).
    pub block_size: u32,
    /// Parent's UUID (differencing disks).
    pub parent_uuid: [u8; 16],
    /// Parent's modification time (differencing disks).
    pub parent_timestamp: u32,
    /// Parent's file name, decoded from UTF-16BE.
    pub parent_name: String,
    /// The eight parent locator entries, unused ones included (platform code 0).
    pub locators: Vec<ParentLocator>,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(
        b[at..at + 4]
            .try_into()
            .expect("4-byte field inside the header"),
    )
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(
        b[at..at + 8]
            .try_into()
            .expect("8-byte field inside the header"),
    )
}

impl DynamicHeader {
    /// A header for a dynamic disk with `entries` blocks whose BAT sits at `table_offset`.
    pub fn new_dynamic(table_offset: u64, entries: u32, block_size: u32) -> Self {
        Self {
            table_offset,
            max_table_entries: entries,
            block_size,
            parent_uuid: [0; 16],
            parent_timestamp: 0,
            parent_name: String::new(),
            locators: Vec::new(),
        }
    }

    /// Size in bytes of the sector bitmap that precedes each block (whole sectors).
    pub fn bitmap_len(&self) -> u64 {
        let sectors = u64::from(self.block_size) / SECTOR;
        sectors.div_ceil(8).div_ceil(SECTOR) * SECTOR
    }

    /// Encodes the header with its checksum.
    pub fn encode(&self) -> [u8; 1024] {
        let mut b = [0u8; 1024];
        b[..8].copy_from_slice(HEADER_COOKIE);
        b[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        b[16..24].copy_from_slice(&self.table_offset.to_be_bytes());
        b[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        b[28..32].copy_from_slice(&self.max_table_entries.to_be_bytes());
        b[32..36].copy_from_slice(&self.block_size.to_be_bytes());
        b[40..56].copy_from_slice(&self.parent_uuid);
        b[56..60].copy_from_slice(&self.parent_timestamp.to_be_bytes());
        for (i, unit) in self.parent_name.encode_utf16().take(256).enumerate() {
            b[64 + 2 * i..66 + 2 * i].copy_from_slice(&unit.to_be_bytes());
        }
        for (i, l) in self.locators.iter().take(8).enumerate() {
            let at = 576 + 24 * i;
            b[at..at + 4].copy_from_slice(&l.platform_code);
            b[at + 4..at + 8].copy_from_slice(&l.data_space.to_be_bytes());
            b[at + 8..at + 12].copy_from_slice(&l.data_length.to_be_bytes());
            b[at + 16..at + 24].copy_from_slice(&l.data_offset.to_be_bytes());
        }
        let sum = vhd_checksum(&b, 36);
        b[36..40].copy_from_slice(&sum.to_be_bytes());
        b
    }

    /// Decodes and validates a header read at file offset `offset`.
    pub fn decode(b: &[u8; 1024], offset: u64) -> Result<Self, VhdError> {
        if !b.starts_with(HEADER_COOKIE) {
            return Err(VhdError::BadCookie {
                structure: "dynamic header",
                offset,
                expected: "cxsparse",
                found: String::from_utf8_lossy(&b[..8]).into_owned(),
            });
        }
        let stored = be32(b, 36);
        let computed = vhd_checksum(b, 36);
        if stored != computed {
            return Err(VhdError::BadChecksum {
                structure: "dynamic header",
                offset,
                stored,
                computed,
            });
        }
        let block_size = be32(b, 32);
        if block_size < 512 || !block_size.is_power_of_two() {
            return Err(VhdError::BadField {
                structure: "dynamic header",
                offset,
                field: "block_size",
                value: u64::from(block_size),
                message: "not a power of two of at least 512",
            });
        }
        let units: Vec<u16> = b[64..576]
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        let locators = (0..8)
            .map(|i| {
                let at = 576 + 24 * i;
                ParentLocator {
                    platform_code: b[at..at + 4].try_into().expect("4 bytes"),
                    data_space: be32(b, at + 4),
                    data_length: be32(b, at + 8),
                    data_offset: be64(b, at + 16),
                }
            })
            .collect();
        Ok(Self {
            table_offset: be64(b, 16),
            max_table_entries: be32(b, 28),
            block_size,
            parent_uuid: b[40..56].try_into().expect("16 bytes"),
            parent_timestamp: be32(b, 56),
            parent_name: String::from_utf16_lossy(&units),
            locators,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_with_parent_fields() {
        let mut h = DynamicHeader::new_dynamic(1536, 5, DEFAULT_BLOCK_SIZE);
        h.parent_uuid = [3; 16];
        h.parent_name = "parent.vhd".into();
        h.locators = vec![ParentLocator {
            platform_code: *b"MacX",
            data_space: 1,
            data_length: 20,
            data_offset: 4096,
        }];
        let bytes = h.encode();
        let back = DynamicHeader::decode(&bytes, 512).expect("valid");
        assert_eq!(back.parent_name, "parent.vhd");
        assert_eq!(back.locators[0], h.locators[0]);
        assert_eq!(back.locators.len(), 8);
        assert_eq!(back.bitmap_len(), 512);
        let mut bad = bytes;
        bad[40] ^= 1;
        assert!(matches!(
            DynamicHeader::decode(&bad, 512),
            Err(VhdError::BadChecksum { offset: 512, .. })
        ));
    }

    #[test]
    fn locator_paths_decode_by_platform() {
        let l = |code: &[u8; 4]| ParentLocator {
            platform_code: *code,
            data_space: 1,
            data_length: 0,
            data_offset: 0,
        };
        let utf16: Vec<u8> = "./p.vhd"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(l(b"W2ru").decode_path(&utf16).as_deref(), Some("./p.vhd"));
        assert_eq!(
            l(b"MacX").decode_path(b"file://./p.vhd").as_deref(),
            Some("file://./p.vhd")
        );
        assert_eq!(l(b"\0\0\0\0").decode_path(b"x"), None);
    }
}
