//! What can go wrong finding and reading metadata copies through a pool's API, beyond a
//! failed call (`Error::Xapi`) or a bad record field (`Error::View`).

use crate::metadata::RedoLogError;

/// A failure of [`crate::source`], naming the VDI, SR type or answer at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// An SR type that DR storage cannot be: metadata replication lives on LVM over iSCSI or
    /// LVM over HBA only. Nothing was sent.
    #[error(
        "SR type {sr_type:?}: DR storage is LVM over iSCSI (\"lvmoiscsi\") or LVM over HBA (\"lvmohba\")"
    )]
    UnsupportedStorageType {
        /// The type asked for.
        sr_type: String,
    },
    /// A VDI asked to be read as metadata that is not a metadata VDI. Nothing was opened.
    #[error("VDI {vdi_uuid} is of type {vdi_type}, not a metadata VDI")]
    NotMetadata {
        /// The VDI's UUID.
        vdi_uuid: String,
        /// Its type.
        vdi_type: String,
    },
    /// The answer of `SR.probe` is not the `<SRlist>` document xapi writes.
    #[error("SR.probe answer is not an <SRlist>: {reason} (answer starts {excerpt:?})")]
    BadSrList {
        /// What is wrong, with the byte offset where known.
        reason: String,
        /// The first bytes of the answer.
        excerpt: String,
    },
    /// The redo-log framing of a metadata VDI, read with `/export_raw_vdi`, is not sound.
    #[error("metadata VDI {vdi_uuid} (raw bytes via /export_raw_vdi): {source}")]
    RawVdi {
        /// The VDI's UUID.
        vdi_uuid: String,
        /// What the scan of its framing found (boxed: it is large and rare).
        #[source]
        source: Box<RedoLogError>,
    },
    /// The metadata VDI was written to (its pool is alive and replicating) each time it was
    /// read: the API's records and the generation read from the bytes may not match.
    #[error(
        "metadata VDI {vdi_uuid}: its database moved from generation {before} to {after} while it was read, {attempts} times; read it again when the source pool is quiet"
    )]
    ChangedWhileReading {
        /// The VDI's UUID.
        vdi_uuid: String,
        /// Generation before the last attempt's API reads.
        before: i64,
        /// Generation after them.
        after: i64,
        /// Attempts made.
        attempts: usize,
    },
}

impl SourceError {
    /// Whether trying again may succeed without changing anything: a database that changed
    /// while it was read.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SourceError::ChangedWhileReading { .. })
    }
}
