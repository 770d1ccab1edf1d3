//! VHD images: fixed, dynamic and differencing (reference §6.4; Microsoft's VHD specification).
//!
//! - [`footer`], [`header`], [`bat`]: the on-disk structures, big-endian, with checksums;
//! - [`reader::VhdReader`]: a forward-only streaming reader (what `export_raw_vdi?format=vhd`
//!   sends), yielding the extents present in the image: for a differencing disk these are the
//!   delta against its parent (found through the parent locators);
//! - [`writer`]: fixed and sparse dynamic VHDs from a raw source of known size.

pub mod bat;
pub mod footer;
pub mod header;
pub mod reader;
pub mod writer;

pub use footer::{DiskType, Geometry, VhdFooter};
pub use header::{DynamicHeader, ParentLocator};
pub use reader::{VhdExtent, VhdReader};
pub use writer::{VhdWriteOptions, write_dynamic_vhd, write_dynamic_vhd_with_map, write_fixed_vhd};

/// Sector size of VHD images.
pub const SECTOR: u64 = 512;

/// Largest VHD xapi exports (`Constants.max_vhd_size`, 2040 GiB).
pub const MAX_VHD_SIZE: u64 = 2040 << 30;

/// Failures while reading or writing a VHD; offsets are byte offsets in the image file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VhdError {
    /// A structure's cookie is wrong.
    #[error("vhd: {structure} at byte {offset}: cookie {found:?}, expected {expected:?}")]
    BadCookie {
        /// `footer` or `dynamic header`.
        structure: &'static str,
        /// File offset.
        offset: u64,
        /// The cookie required.
        expected: &'static str,
        /// The bytes found.
        found: String,
    },
    /// A structure's checksum is wrong.
    #[error("vhd: {structure} at byte {offset}: checksum {stored:08X}, computed {computed:08X}")]
    BadChecksum {
        /// `footer` or `dynamic header`.
        structure: &'static str,
        /// File offset.
        offset: u64,
        /// Stored value.
        stored: u32,
        /// Value computed over the structure.
        computed: u32,
    },
    /// A field holds a value this implementation cannot use.
    #[error("vhd: {structure} at byte {offset}: field {field} = {value}: {message}")]
    BadField {
        /// `footer`, `dynamic header`, `BAT`...
        structure: &'static str,
        /// File offset of the structure.
        offset: u64,
        /// Field name.
        field: &'static str,
        /// The value found.
        value: u64,
        /// Why it is refused.
        message: &'static str,
    },
    /// The image ends before a structure or block that it declares.
    #[error("vhd: image truncated at byte {offset} inside {context}")]
    Truncated {
        /// Offset of the first missing byte.
        offset: u64,
        /// What was being read.
        context: String,
    },
    /// A streaming reader met a structure that lies before data it already passed.
    #[error(
        "vhd: {what} at byte {offset} lies before the read position {position}: the image is not in a streamable order"
    )]
    NotStreamable {
        /// The structure.
        what: String,
        /// Its file offset.
        offset: u64,
        /// Where the reader is.
        position: u64,
    },
    /// The footer at the end differs from the copy at the start.
    #[error("vhd: the footer at byte {offset} differs from the copy at byte 0")]
    FooterMismatch {
        /// Offset of the trailing footer.
        offset: u64,
    },
    /// Data and declared size disagree.
    #[error("vhd: {context}: declared size {declared}, actual {actual}")]
    SizeMismatch {
        /// What was compared.
        context: &'static str,
        /// Declared size.
        declared: u64,
        /// Actual size.
        actual: u64,
    },
    /// The writer was given inconsistent parameters.
    #[error("vhd: cannot write: {0}")]
    InvalidRequest(String),
}

/// One's-complement sum of `bytes`, skipping the 4-byte checksum field at `skip`.
pub(crate) fn vhd_checksum(bytes: &[u8], skip: usize) -> u32 {
    let sum = bytes
        .iter()
        .enumerate()
        .filter(|(i, _)| !(skip..skip + 4).contains(i))
        .fold(0u32, |acc, (_, &b)| acc.wrapping_add(u32::from(b)));
    !sum
}

/// Seconds between the Unix epoch and the VHD epoch (2000-01-01T00:00:00Z).
pub const VHD_EPOCH_OFFSET: u64 = 946_684_800;
