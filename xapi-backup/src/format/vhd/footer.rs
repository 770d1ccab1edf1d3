//! The 512-byte VHD footer (cookie `conectix`).

use super::{SECTOR, VhdError, vhd_checksum};

/// Footer cookie.
pub const FOOTER_COOKIE: &[u8; 8] = b"conectix";

/// Creator application written by this crate: `tap\0`, as XenServer's tools write, which
/// makes qemu trust `current_size` rather than the CHS geometry.
pub const CREATOR_APP: [u8; 4] = *b"tap\0";

/// The kind of disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskType {
    /// Raw data followed by the footer.
    Fixed,
    /// Sparse: header, BAT, allocated blocks.
    Dynamic,
    /// Sparse with a parent: unallocated sectors come from the parent.
    Differencing,
}

impl DiskType {
    fn code(self) -> u32 {
        match self {
            DiskType::Fixed => 2,
            DiskType::Dynamic => 3,
            DiskType::Differencing => 4,
        }
    }
}

/// Cylinder / head / sector geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Cylinders.
    pub cylinders: u16,
    /// Heads.
    pub heads: u8,
    /// Sectors per track.
    pub sectors: u8,
}

impl Geometry {
    /// The geometry the VHD specification's algorithm assigns to a disk of `size` bytes.
    pub fn for_size(size: u64) -> Self {
        let mut total = size / SECTOR;
        total = total.min(65_535 * 16 * 255);
        let (spt, heads, cth);
        if total >= 65_535 * 16 * 63 {
            spt = 255;
            heads = 16;
            cth = total / spt;
        } else {
            let mut s = 17;
            let mut c = total / s;
            let mut h = c.div_ceil(1024).max(4);
            if c >= h * 1024 || h > 16 {
                s = 31;
                h = 16;
                c = total / s;
            }
            if c >= h * 1024 {
                s = 63;
                h = 16;
                c = total / s;
            }
            spt = s;
            heads = h;
            cth = c;
        }
        Geometry {
            cylinders: (cth / heads) as u16,
            heads: heads as u8,
            sectors: spt as u8,
        }
    }
}

/// The footer's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhdFooter {
    /// Feature flags (2 = reserved bit, always set).
    pub features: u32,
    /// File format version (`0x00010000`).
    pub format_version: u32,
    /// Offset of the dynamic header; `u64::MAX` for fixed disks.
    pub data_offset: u64,
    /// Creation time, seconds since 2000-01-01.
    pub timestamp: u32,
    /// Creator application.
    pub creator_app: [u8; 4],
    /// Creator version.
    pub creator_version: u32,
    /// Creator host OS.
    pub creator_os: u32,
    /// Size at creation.
    pub original_size: u64,
    /// Virtual size in bytes.
    pub current_size: u64,
    /// CHS geometry.
    pub geometry: Geometry,
    /// Disk type.
    pub disk_type: DiskType,
    /// Disk UUID.
    pub uuid: [u8; 16],
    /// Saved-state flag.
    pub saved_state: bool,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(
        b[at..at + 4]
            .try_into()
            .expect("4-byte field inside a fixed block"),
    )
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(
        b[at..at + 8]
            .try_into()
            .expect("8-byte field inside a fixed block"),
    )
}

impl VhdFooter {
    /// A footer for a new disk.
    pub fn new(disk_type: DiskType, size: u64, uuid: [u8; 16], timestamp: u32) -> Self {
        Self {
            features: 2,
            format_version: 0x0001_0000,
            data_offset: if disk_type == DiskType::Fixed {
                u64::MAX
            } else {
                SECTOR
            },
            timestamp,
            creator_app: CREATOR_APP,
            // libvhd's `vhd_initialize_footer`: VHD_CURRENT_VERSION (1.3), host OS 0.
            creator_version: 0x0001_0003,
            creator_os: 0,
            original_size: size,
            current_size: size,
            geometry: Geometry::for_size(size),
            disk_type,
            uuid,
            saved_state: false,
        }
    }

    /// Encodes the footer with its checksum.
    pub fn encode(&self) -> [u8; 512] {
        let mut b = [0u8; 512];
        b[..8].copy_from_slice(FOOTER_COOKIE);
        b[8..12].copy_from_slice(&self.features.to_be_bytes());
        b[12..16].copy_from_slice(&self.format_version.to_be_bytes());
        b[16..24].copy_from_slice(&self.data_offset.to_be_bytes());
        b[24..28].copy_from_slice(&self.timestamp.to_be_bytes());
        b[28..32].copy_from_slice(&self.creator_app);
        b[32..36].copy_from_slice(&self.creator_version.to_be_bytes());
        b[36..40].copy_from_slice(&self.creator_os.to_be_bytes());
        b[40..48].copy_from_slice(&self.original_size.to_be_bytes());
        b[48..56].copy_from_slice(&self.current_size.to_be_bytes());
        b[56..58].copy_from_slice(&self.geometry.cylinders.to_be_bytes());
        b[58] = self.geometry.heads;
        b[59] = self.geometry.sectors;
        b[60..64].copy_from_slice(&self.disk_type.code().to_be_bytes());
        b[68..84].copy_from_slice(&self.uuid);
        b[84] = u8::from(self.saved_state);
        let sum = vhd_checksum(&b, 64);
        b[64..68].copy_from_slice(&sum.to_be_bytes());
        b
    }

    /// True when `block` starts with the footer cookie.
    pub fn has_cookie(block: &[u8]) -> bool {
        block.starts_with(FOOTER_COOKIE)
    }

    /// Decodes and validates a footer read at file offset `offset`.
    pub fn decode(b: &[u8; 512], offset: u64) -> Result<Self, VhdError> {
        if !Self::has_cookie(b) {
            return Err(VhdError::BadCookie {
                structure: "footer",
                offset,
                expected: "conectix",
                found: String::from_utf8_lossy(&b[..8]).into_owned(),
            });
        }
        let stored = be32(b, 64);
        let computed = vhd_checksum(b, 64);
        if stored != computed {
            return Err(VhdError::BadChecksum {
                structure: "footer",
                offset,
                stored,
                computed,
            });
        }
        let disk_type = match be32(b, 60) {
            2 => DiskType::Fixed,
            3 => DiskType::Dynamic,
            4 => DiskType::Differencing,
            other => {
                return Err(VhdError::BadField {
                    structure: "footer",
                    offset,
                    field: "disk_type",
                    value: u64::from(other),
                    message: "not fixed (2), dynamic (3) or differencing (4)",
                });
            }
        };
        let current_size = be64(b, 48);
        if !current_size.is_multiple_of(SECTOR) {
            return Err(VhdError::BadField {
                structure: "footer",
                offset,
                field: "current_size",
                value: current_size,
                message: "not a whole number of sectors",
            });
        }
        Ok(Self {
            features: be32(b, 8),
            format_version: be32(b, 12),
            data_offset: be64(b, 16),
            timestamp: be32(b, 24),
            creator_app: b[28..32].try_into().expect("4 bytes"),
            creator_version: be32(b, 32),
            creator_os: be32(b, 36),
            original_size: be64(b, 40),
            current_size,
            geometry: Geometry {
                cylinders: u16::from_be_bytes([b[56], b[57]]),
                heads: b[58],
                sectors: b[59],
            },
            disk_type,
            uuid: b[68..84].try_into().expect("16 bytes"),
            saved_state: b[84] != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_round_trips_and_checksum_catches_flips() {
        let f = VhdFooter::new(DiskType::Dynamic, 10 << 20, [7; 16], 12345);
        let bytes = f.encode();
        assert_eq!(&bytes[..8], b"conectix");
        assert_eq!(VhdFooter::decode(&bytes, 0).expect("valid"), f);
        for i in [0usize, 20, 50, 70, 300] {
            let mut bad = bytes;
            bad[i] ^= 1;
            assert!(VhdFooter::decode(&bad, 4096).is_err(), "byte {i}");
        }
    }

    #[test]
    fn creator_fields_are_the_ones_blktap_writes() {
        // libvhd (blktap's vhd-util, which makes the VHDs of file and LVM SRs) writes
        // creator "tap\0", version 1.3 and a zero host OS; the features word is 2 (reserved
        // bit), the format version 1.0, and a dynamic disk's header follows the 512-byte copy.
        let bytes = VhdFooter::new(DiskType::Dynamic, 10 << 20, [7; 16], 0).encode();
        assert_eq!(&bytes[8..16], &[0, 0, 0, 2, 0, 1, 0, 0]);
        assert_eq!(&bytes[16..24], &512u64.to_be_bytes());
        assert_eq!(&bytes[28..40], b"tap\0\x00\x01\x00\x03\0\0\0\0");
        let fixed = VhdFooter::new(DiskType::Fixed, 10 << 20, [7; 16], 0).encode();
        assert_eq!(&fixed[16..24], &[0xFF; 8]);
        assert_eq!(&fixed[60..64], &[0, 0, 0, 2]);
    }

    #[test]
    fn geometry_follows_the_specification() {
        // 10 MiB: 20480 sectors, 17 spt -> 1204 cth, 4 heads -> 301 cylinders.
        assert_eq!(
            Geometry::for_size(10 << 20),
            Geometry {
                cylinders: 301,
                heads: 4,
                sectors: 17
            }
        );
        assert_eq!(Geometry::for_size(u64::MAX / 2).sectors, 255);
        // Exactly 65535 x 16 x 63 sectors takes the 255-sector branch (`>=`, as the
        // specification and libvhd's vhd_chs have it).
        assert_eq!(
            Geometry::for_size(65_535 * 16 * 63 * 512),
            Geometry {
                cylinders: 16_191,
                heads: 16,
                sectors: 255
            }
        );
    }
}
