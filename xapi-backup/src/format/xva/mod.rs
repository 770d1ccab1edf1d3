//! XVA: the VM export format (a tar of `ova.xml` then checksummed 1 MiB disk chunks).
//!
//! - [`XvaReader`] opens a plain, gzip or zstd stream (detected as xapi's importer does), parses
//!   `ova.xml`, then yields each disk's chunks as `(offset, Bytes)` after verifying each one
//!   against its checksum member. Memory is bounded by one chunk. Under
//!   [`MismatchPolicy::Record`] a chunk that fails its checksum is yielded anyway and the
//!   mismatch recorded, to rescue what a damaged backup still holds.
//! - [`xva_stream`] / [`write_xva`] write exactly what xapi writes (reference §3.5), with
//!   keep-alive chunks when a source stalls and optional compression off the executor.

pub mod chunk;
pub mod ova_xml;
pub mod reader;
pub mod writer;

pub use chunk::{CHUNK_SIZE, ChecksumKind, ChecksumText};
pub use reader::{
    AfterEndOfArchive, ChecksumMismatch, ChecksumSource, DiskChunk, DiskInfo, MismatchPolicy,
    ReadOptions, XvaReader,
};
pub use writer::{DiskSource, WriteOptions, write_xva, xva_stream};

/// Failures specific to the XVA container and its disk chunk streams. Each names the member
/// concerned and, where it applies, the disk offset reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XvaError {
    /// The stream is neither a tar starting with `ova.xml` nor gzip / zstd.
    #[error("xva: not an XVA stream (first bytes {first_bytes})")]
    NotAnXva {
        /// Hex of the first bytes seen.
        first_bytes: String,
    },
    /// A member appeared where another was required.
    #[error("xva: unexpected member {found:?} (expected {expected}) at disk offset {disk_offset}")]
    UnexpectedMember {
        /// What the format requires here.
        expected: String,
        /// The member name found.
        found: String,
        /// Bytes of the current disk accounted for so far.
        disk_offset: u64,
    },
    /// A chunk number is not above the previous one (members reordered or duplicated).
    #[error("xva: chunk {member} comes after {previous}: chunks out of order")]
    ChunkOutOfOrder {
        /// The offending chunk member.
        member: String,
        /// The chunk read before it.
        previous: String,
    },
    /// A chunk would end beyond the disk's `virtual_size`.
    #[error("xva: chunk {member} ends at byte {end}, beyond virtual_size {virtual_size}")]
    ChunkPastEnd {
        /// The offending chunk member.
        member: String,
        /// Where it would end.
        end: u64,
        /// The disk's virtual size.
        virtual_size: u64,
    },
    /// A chunk is not followed by its checksum member.
    #[error("xva: chunk {member}: expected its .xxhash or .checksum member, found {found:?}")]
    MissingChecksum {
        /// The chunk member.
        member: String,
        /// What came instead (`None`: end of archive).
        found: Option<String>,
    },
    /// A checksum member does not hold a well-formed checksum.
    #[error("xva: chunk {member}: checksum member holds {text:?}, not a {kind:?} checksum")]
    BadChecksumText {
        /// The chunk member.
        member: String,
        /// Checksum kind announced by the member name.
        kind: ChecksumKind,
        /// The text found.
        text: String,
    },
    /// Chunks were omitted after a zero-length first chunk: the importer's arithmetic would
    /// place the next chunk at a wrong offset (xapi itself would write a wrong disk here).
    #[error(
        "xva: chunk {member}: {skipped} omitted chunk(s) after a zero-length first chunk cannot be placed"
    )]
    UnplaceableGap {
        /// The chunk after the gap.
        member: String,
        /// Number of chunk numbers skipped.
        skipped: u64,
    },
    /// A chunk's data does not match its checksum.
    #[error(
        "xva: chunk {member} (disk offset {disk_offset}): {kind:?} mismatch (expected {expected}, got {computed})"
    )]
    ChecksumMismatch {
        /// The chunk member.
        member: String,
        /// Checksum kind.
        kind: ChecksumKind,
        /// Stored checksum.
        expected: String,
        /// Checksum of the bytes received.
        computed: String,
        /// Disk offset of the chunk.
        disk_offset: u64,
    },
    /// The archive ended before a disk's `virtual_size` bytes were accounted for.
    #[error("xva: disk {vdi}: archive ends after {accounted} of {virtual_size} bytes")]
    DiskTruncated {
        /// Export id of the disk (or `vdi` for raw tar).
        vdi: String,
        /// Bytes accounted for.
        accounted: u64,
        /// Bytes expected.
        virtual_size: u64,
    },
    /// A disk source given to the writer ended before its declared size.
    #[error("xva: disk source {vdi} ended at byte {offset} of {size}")]
    SourceEnded {
        /// Export id of the disk.
        vdi: String,
        /// Bytes read.
        offset: u64,
        /// Declared size.
        size: u64,
    },
    /// The checksum table that ends a pre-Miami export (`export_vsn` below 2) is missing,
    /// malformed, or disagrees with a chunk (xapi's `Importexport.compare_checksums`).
    #[error("xva: legacy checksum table {table:?}: chunk {member:?}: {problem}")]
    LegacyChecksumTable {
        /// The table member's name (empty when the archive ends without it).
        table: String,
        /// The chunk concerned (empty when the whole table is at fault).
        member: String,
        /// What is wrong.
        problem: String,
    },
    /// The writer was given an `ova.xml` whose `export_vsn` is not the 2 it writes: below 2
    /// an importer would expect other members (no inline checksums, or a checksum table).
    #[error("xva: the writer produces export_vsn 2 streams, ova.xml says export_vsn {found}")]
    UnsupportedExportVsn {
        /// The `export_vsn` found in `ova.xml`.
        found: i64,
    },
    /// The disks given to the writer do not match the VDIs `ova.xml` makes the importer read.
    #[error("xva: disk sources do not match ova.xml: {message}")]
    DiskMismatch {
        /// What differs.
        message: String,
    },
}
