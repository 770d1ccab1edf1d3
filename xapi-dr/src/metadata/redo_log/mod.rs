//! The redo log: the on-disk format of a DR metadata VDI (xapi's `block_device_io`).
//!
//! ```text
//! offset        size        content
//! 0             16          magic "redo-log--------"
//! 16            1           0x00
//! 17            1           validity: '0' no half valid, '1' first half, '2' second half
//! 18            62,914,560  first half
//! 62,914,578    62,914,560  second half
//! ```
//! A half holds one database record (`marker | %016d length | XML | %016d generation | marker`)
//! followed by delta records (`%016d length | delta | %016d generation | marker`), ended by a
//! length field of 16 NUL bytes (the "trample" written after every record) or by the end of
//! the half.
//!
//! Replay follows xapi: only the half named by the validity byte is used; `expected` starts at
//! the record's generation + 1; a delta below `expected` is skipped (and reported), any other is
//! applied and sets `expected` to its generation + 1. Rows a delta touches are stamped
//! (`__ctime`/`__mtime`) with the replayed database's own generation, which starts at the XML
//! manifest's and grows by one per change, as in xapi's `Db_cache_types`; the final generation
//! is the last applied delta's (or the record's). Where xapi is vaguer the reader is
//! stricter, so that corruption never yields a silently different database:
//!
//! - a delta length that is neither all NUL, zero, nor decimal digits is an error (xapi's
//!   `int_of_string` failure would end the list; its trample makes that case impossible in a
//!   sound log);
//! - a delta that does not apply (`DeleteRow`/`WriteField` on a missing row, `CreateRow` on a
//!   row that exists with other values) is an error (xapi logs it and keeps what it had);
//! - the other half is only summarised, as a [`Diagnostic`](crate::metadata::Diagnostic).
//!
//! The writer's `generation` argument is the record's generation field; xapi writes the
//! database's own `generation_count` there, and the reader reports a difference between the two.

mod reader;
mod writer;

pub use reader::{
    GenerationScan, HalfContent, MANIFEST_SEARCH_LIMIT, RedoLogGeneration, RedoLogImage,
    read_generation_stream, read_redo_log, read_redo_log_stream,
};
pub use writer::{AppendOutcome, RedoLogWriter};

use super::db_xml::DbXmlError;
use super::delta::{ApplyError, DeltaError};

/// The 16 bytes every redo log starts with.
pub const MAGIC: &[u8; 16] = b"redo-log--------";
/// Offset of the validity byte.
pub const POS_VALIDITY: u64 = 17;
/// Offset of the first half.
pub const POS_FIRST_HALF: u64 = 18;
/// Size of each half: 60 MiB.
pub const HALF_SIZE: u64 = 60 * 1024 * 1024;
/// Offset of the second half.
pub const POS_SECOND_HALF: u64 = POS_FIRST_HALF + HALF_SIZE;
/// Bytes of the log in use; nothing past this offset is ever read.
pub const LOG_SIZE: u64 = POS_SECOND_HALF + HALF_SIZE;
/// Size of a record marker (a UUID string).
pub const MARKER_SIZE: usize = 36;
/// Size of a length field (`%016d`).
pub const LENGTH_SIZE: usize = 16;
/// Size of a generation field (`%016Ld`).
pub const GENERATION_SIZE: usize = 16;
/// NUL bytes written after every record.
pub const TRAMPLE_SIZE: usize = 16;
/// Overhead of a database record around its XML.
pub const DB_RECORD_OVERHEAD: u64 = (2 * MARKER_SIZE + LENGTH_SIZE + GENERATION_SIZE) as u64;
/// Overhead of a delta record around its payload.
pub const DELTA_RECORD_OVERHEAD: u64 = (MARKER_SIZE + LENGTH_SIZE + GENERATION_SIZE) as u64;
/// Size xapi gives a new metadata VDI (`Redo_log.minimum_vdi_size`).
pub const MINIMUM_VDI_SIZE: u64 = (4_000_000_000 / (4 * 1024 * 1024) - 2) * 4 * 1024 * 1024;

/// Which half the validity byte names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Validity {
    /// `'0'`: initialised, no database written yet.
    NoValidHalf,
    /// `'1'`: the first half is valid.
    First,
    /// `'2'`: the second half is valid.
    Second,
}

impl Validity {
    /// The byte stored at offset 17.
    pub fn byte(self) -> u8 {
        match self {
            Validity::NoValidHalf => b'0',
            Validity::First => b'1',
            Validity::Second => b'2',
        }
    }

    /// Offset of the half this names, if any.
    pub fn half_offset(self) -> Option<u64> {
        match self {
            Validity::NoValidHalf => None,
            Validity::First => Some(POS_FIRST_HALF),
            Validity::Second => Some(POS_SECOND_HALF),
        }
    }
}

/// Why a redo log could not be read or written. Offsets are byte offsets on the device.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedoLogError {
    /// The device failed.
    #[error("redo log: i/o error at byte {offset}: {source}")]
    Io {
        /// Where the operation started.
        offset: u64,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The first 16 bytes are not the magic.
    #[error("redo log: not a redo log (bytes 0..16 are {found:?}, expected \"redo-log--------\")")]
    BadMagic {
        /// The bytes found (lossy UTF-8).
        found: String,
    },
    /// The validity byte is not `'0'`, `'1'` or `'2'`.
    #[error("redo log: byte 17: validity {found:#04x} is not '0', '1' or '2'")]
    BadValidity {
        /// The byte found.
        found: u8,
    },
    /// The validity byte is `'0'`: the log holds no database.
    #[error("redo log: byte 17: validity '0', no half holds a database")]
    NoValidHalf,
    /// The device ends inside a field.
    #[error("redo log: truncated at byte {offset} while reading {what}")]
    Truncated {
        /// Offset of the field that could not be read in full.
        offset: u64,
        /// The field.
        what: &'static str,
    },
    /// A length field holds something other than decimal digits.
    #[error("redo log: byte {offset}: {what} length {text:?} is not a decimal number")]
    BadLength {
        /// Offset of the length field.
        offset: u64,
        /// Whose length it is.
        what: &'static str,
        /// The bytes found (lossy UTF-8).
        text: String,
    },
    /// A length that runs past the end of the half.
    #[error(
        "redo log: byte {offset}: {what} of {length} bytes does not fit in the {room} bytes left in the half"
    )]
    LengthOutOfBounds {
        /// Offset of the length field.
        offset: u64,
        /// Whose length it is.
        what: &'static str,
        /// The length read.
        length: u64,
        /// Bytes left in the half after the length field's record overhead.
        room: u64,
    },
    /// A generation field holds something other than decimal digits.
    #[error("redo log: byte {offset}: generation {text:?} is not a decimal number")]
    BadGeneration {
        /// Offset of the generation field.
        offset: u64,
        /// The bytes found (lossy UTF-8).
        text: String,
    },
    /// A marker differs from the database record's opening marker.
    #[error(
        "redo log: byte {offset}: marker {found:?} differs from the database record's {expected:?}"
    )]
    MarkerMismatch {
        /// Offset of the marker.
        offset: u64,
        /// The database record's opening marker.
        expected: String,
        /// The marker found.
        found: String,
    },
    /// The XML dump inside the database record is invalid.
    #[error("redo log: database record at byte {offset}: {source}")]
    Database {
        /// Offset of the first byte of the XML.
        offset: u64,
        /// The XML reader's error (its offsets are relative to the XML).
        #[source]
        source: DbXmlError,
    },
    /// A delta payload does not decode.
    #[error("redo log: delta at byte {offset}: {source}")]
    Delta {
        /// Offset of the delta record's length field.
        offset: u64,
        /// The decoder's error (its offsets are relative to the payload).
        #[source]
        source: DeltaError,
    },
    /// A delta does not apply to the database built so far.
    #[error("redo log: delta at byte {offset} (generation {generation}): {source}")]
    Apply {
        /// Offset of the delta record's length field.
        offset: u64,
        /// The delta's generation.
        generation: i64,
        /// Why it does not apply.
        #[source]
        source: ApplyError,
    },
    /// The writer was asked for a delta before it wrote a database of its own.
    #[error(
        "redo log: write a database before appending deltas (no half holds one of this writer's records)"
    )]
    DeltaWithoutDatabase,
    /// A database record larger than a half.
    #[error(
        "redo log: a database of {length} bytes does not fit in a 60 MiB half ({room} bytes of room)"
    )]
    DatabaseTooLarge {
        /// XML length.
        length: u64,
        /// Room available.
        room: u64,
    },
    /// The database XML has no `</manifest>` within its first bytes (a scan of the framing
    /// reads the schema version from there).
    #[error(
        "redo log: database record at byte {offset}: no </manifest> in the first {searched} bytes of the XML"
    )]
    ManifestNotFound {
        /// Offset of the first byte of the XML.
        offset: u64,
        /// Bytes searched.
        searched: usize,
    },
    /// A marker that is not 36 ASCII bytes.
    #[error("redo log: marker {marker:?} is not 36 ASCII bytes")]
    BadMarkerForWriter {
        /// The marker given.
        marker: String,
    },
}
