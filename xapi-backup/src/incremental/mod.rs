//! Incremental backups from changed-block tracking, read over NBD: forever incremental, every
//! restore point a full one.
//!
//! The first run of a VM enables CBT on its disks ([`cbt`]; opt-in per VM, and CBT blocks
//! storage motion of those disks), snapshots the VM, reads every disk over NBD into the
//! repository with the snapshot's `ova.xml` (`/export_metadata`), and keeps the snapshot's disks
//! as bases with their data destroyed ([`base`]). The next runs snapshot again, ask
//! `VDI.list_changed_blocks(base, new)` ([`changed`]), read only the changed blocks, rebuild each
//! 1 MiB chunk they touch from the previous restore point's chunk, reference the other chunks
//! unread, and make the new snapshot the base. A disk that cannot be read incrementally is read
//! whole, and the report says why ([`FullReason`]); no NBD at all sends the VM through
//! `GET /export`. An interrupted transfer resumes from the last chunk stored
//! ([`IncrementalOptions::state_dir`]). A large disk read in full can take several NBD
//! connections at once ([`IncrementalOptions::connections_per_disk`]), each reading its share.
//!
//! ```no_run
//! # async fn demo(
//! #     session: &xapi_core::client::SessionHandle,
//! #     repo: &xapi_backup::repo::Repository,
//! #     vm: &xapi_core::wire::Ref<xapi_core::api::Vm>,
//! # ) -> Result<(), xapi_backup::EngineError> {
//! use xapi_backup::incremental::{IncrementalOptions, backup_vm_incremental};
//! let report = backup_vm_incremental(session, repo, vm, &IncrementalOptions::default()).await?;
//! println!("{} bytes read over NBD", report.nbd_bytes_read);
//! for reason in report.full_reasons() {
//!     println!("full read: {reason}");
//! }
//! # Ok(()) }
//! ```

pub mod nbd;

#[cfg(feature = "repo")]
pub mod base;
#[cfg(feature = "repo")]
pub mod cbt;
pub mod changed;
#[cfg(feature = "repo")]
mod report;
#[cfg(feature = "repo")]
mod resume;
#[cfg(feature = "repo")]
mod run;
#[cfg(feature = "repo")]
mod transfer;

#[cfg(feature = "repo")]
pub use cbt::{disable_cbt, enable_cbt};
pub use changed::{CBT_BLOCK, ChangedBlocks, ChangedBlocksError};
#[cfg(feature = "repo")]
pub use report::{DiskMode, DiskReport, FullReason, IncrementalReport};
#[cfg(feature = "repo")]
pub use run::{CbtPolicy, INCREMENTAL_SNAPSHOT_TAG, IncrementalOptions, backup_vm_incremental};
