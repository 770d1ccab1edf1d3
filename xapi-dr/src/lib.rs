//! Disaster recovery for XenServer / XCP-ng pools.
//!
//! Today this crate reads and writes the DR metadata VDI ([`metadata`]): the redo log xapi
//! mirrors its pool database into, the XML database dump inside it, and typed views of the
//! objects a recovery needs. Reconciliation of several copies and the failover planner come
//! next.
//!
//! ```no_run
//! let report = xapi_dr::metadata::inspect("metadata-vdi.img")?;
//! println!("pool {} at generation {}", report.pool.uuid, report.generation);
//! for vm in &report.vms {
//!     println!("{} {} {:?}", vm.uuid, vm.name_label, vm.power_state);
//! }
//! # Ok::<(), xapi_dr::Error>(())
//! ```

mod error;
pub mod metadata;

pub use error::Error;
