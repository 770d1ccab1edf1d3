//! Where a copy of a pool's metadata comes from, and the model every later step reads.
//!
//! A [`MetadataCopy`] is one pool database, found on a metadata VDI or in a file, summarised as
//! an [`InspectReport`] (source pool, database generation, the VMs with their disks and
//! networks, vApps, SRs) plus its [`Origin`]. Reconciliation ([`crate::reconcile`]) and
//! planning work on copies and never on their bytes.
//!
//! This module reads copies offline (an image or dump on disk, or bytes fetched with
//! `/export_raw_vdi?format=raw`). Reading them through a pool's API (`VDI.open_database`) comes
//! with the engine's client side.

#[cfg(feature = "engine")]
mod foreign;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::metadata::{InspectReport, inspect, inspect_bytes};

#[cfg(feature = "engine")]
pub use foreign::ForeignDatabase;

/// Where a copy of metadata was found.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// A metadata VDI on an SR.
    Vdi {
        /// The VDI's UUID.
        vdi_uuid: String,
        /// The UUID of the SR holding it.
        sr_uuid: String,
    },
    /// An image or dump on disk.
    File {
        /// Its path.
        path: String,
    },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Vdi { vdi_uuid, sr_uuid } => write!(f, "VDI {vdi_uuid} on SR {sr_uuid}"),
            Self::File { path } => write!(f, "file {path}"),
        }
    }
}

/// One copy of one pool's metadata.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetadataCopy {
    /// Where it was found.
    pub origin: Origin,
    /// What it holds.
    pub metadata: InspectReport,
}

impl MetadataCopy {
    /// Reads a redo-log image, an XML dump or a gzipped `state.db` from disk.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        Ok(Self {
            origin: Origin::File {
                path: path.display().to_string(),
            },
            metadata: inspect(path)?,
        })
    }

    /// Reads a copy held in memory (for example a metadata VDI downloaded with
    /// `/export_raw_vdi?format=raw`), recording where it came from.
    pub fn from_bytes(bytes: &[u8], origin: Origin) -> Result<Self, Error> {
        Ok(Self {
            origin,
            metadata: inspect_bytes(bytes)?,
        })
    }

    /// The UUID of the pool whose database this is.
    pub fn pool_uuid(&self) -> &str {
        &self.metadata.pool.uuid
    }

    /// The database generation: the newest-wins key between copies of one pool.
    pub fn generation(&self) -> i64 {
        self.metadata.generation
    }
}
