//! The crate's error type.

use crate::metadata::{DbXmlError, DeltaError, RedoLogError, SExprError, ViewError};
use crate::source::SourceError;

/// Every failure of `xapi-dr`, each variant carrying the rich error of the layer that failed
/// (with its byte offset, row or column).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A redo log (metadata VDI image) could not be read or written.
    #[error(transparent)]
    RedoLog(#[from] RedoLogError),
    /// An XML database dump could not be read.
    #[error(transparent)]
    DbXml(#[from] DbXmlError),
    /// A delta record could not be decoded.
    #[error(transparent)]
    Delta(#[from] DeltaError),
    /// A set or map value could not be parsed.
    #[error(transparent)]
    SExpr(#[from] SExprError),
    /// A stored value does not fit its column's type.
    #[error(transparent)]
    View(#[from] ViewError),
    /// Finding or reading a metadata copy through a pool's API failed beyond a call.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A call to the pool failed (with the `engine` feature).
    #[cfg(feature = "engine")]
    #[error(transparent)]
    Xapi(#[from] xapi_core::Error),
    /// More SRs were asked to hold the replicated database than xapi allows.
    #[error("replication to {asked} SRs asked; a pool replicates its database to at most {max}")]
    TooManyReplicationSrs {
        /// How many were asked.
        asked: usize,
        /// The limit (8).
        max: usize,
    },
    /// An SR asked to hold the replicated database cannot (unknown, or not LVM over iSCSI or
    /// HBA).
    #[error(
        "SR {sr_uuid} cannot hold the replicated database (only LVM over iSCSI or HBA SRs can); see `replication_candidates`"
    )]
    NotAReplicationCandidate {
        /// The SR's UUID.
        sr_uuid: String,
    },
    /// The pool answered `pool.get_all_records` with no pool.
    #[error("the pool's database has no pool record")]
    NoPoolRecord,
    /// The input is neither a redo log nor an XML dump.
    #[error("{path}: not a redo log nor an XML database dump (starts with {start:?})")]
    UnknownFormat {
        /// The file.
        path: String,
        /// Its first bytes (lossy UTF-8).
        start: String,
    },
}
