//! Where a copy of a pool's metadata comes from, and the model every later step reads.
//!
//! A [`MetadataCopy`] is one pool database, found on a metadata VDI or in a file, summarised as
//! an [`InspectReport`] (source pool, database generation, the VMs with their disks and
//! networks, vApps, SRs) plus its [`Origin`]. Reconciliation ([`crate::reconcile`]) and
//! planning work on copies and never on their bytes.
//!
//! Offline, a copy is an image or dump on disk, or bytes fetched with
//! `/export_raw_vdi?format=raw` ([`MetadataCopy::from_file`], [`MetadataCopy::from_bytes`]).
//! Through the API of the recovery pool (feature `engine`), as XenCenter's DR wizard:
//!
//! - [`discover`]: the metadata VDIs on the SRs the pool already sees;
//! - [`probe`]: the mirrored SRs holding metadata behind a device config (`SR.probe`, LVM over
//!   iSCSI or HBA only), and [`introduce`]: attach chosen ones with `DR_task.create`
//!   ([`IntroducedStorage::destroy`] forgets them);
//! - [`MetadataCopy::from_vdi`]: one VDI read through `VDI.open_database` in bulk, its
//!   generation from its redo-log framing, into the same report as an offline read.
//!
//! ```no_run
//! # async fn example(session: &xapi_core::client::SessionHandle) -> Result<(), xapi_dr::Error> {
//! use xapi_dr::source::{DiscoverOptions, MetadataCopy, discover};
//!
//! for found in discover(session, &DiscoverOptions::default()).await? {
//!     let copy = MetadataCopy::from_vdi(session, &found.vdi).await?;
//!     println!("{}: pool {} at generation {}", copy.origin, copy.pool_uuid(), copy.generation());
//! }
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "engine")]
mod discover;
mod error;
#[cfg(feature = "engine")]
mod foreign;
#[cfg(feature = "engine")]
mod introduce;
#[cfg(feature = "engine")]
mod probe;
#[cfg(feature = "engine")]
mod raw_generation;
#[cfg(feature = "engine")]
mod records;
mod sr_list;
mod storage_type;
#[cfg(feature = "engine")]
mod through_api;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::metadata::{InspectReport, inspect, inspect_bytes};

#[cfg(feature = "engine")]
pub use discover::{DiscoverOptions, FoundVdi, discover};
pub use error::SourceError;
#[cfg(feature = "engine")]
pub use foreign::ForeignDatabase;
#[cfg(feature = "engine")]
pub use introduce::{IntroducedSr, IntroducedStorage, introduce};
#[cfg(feature = "engine")]
pub use probe::probe;
#[cfg(feature = "engine")]
pub use raw_generation::read_generation;
#[cfg(feature = "engine")]
pub use records::read_pool_views;
pub use sr_list::{ProbedSr, parse_sr_list};
pub use storage_type::DrStorageType;
#[cfg(feature = "engine")]
pub use through_api::READ_ATTEMPTS;

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
