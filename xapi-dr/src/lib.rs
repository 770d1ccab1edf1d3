//! Disaster recovery for XenServer / XCP-ng pools.
//!
//! Today this crate reads and writes the DR metadata VDI ([`metadata`]): the redo log xapi
//! mirrors its pool database into, the XML database dump inside it, and typed views of the
//! objects a recovery needs (`VmView`, `VdiView`, ...: xapi-core's `Ref<T>` and generated
//! enums, so a view and a record of the same object compare without conversion).
//! Reconciliation of several copies and the failover planner come next.
//!
//! It uses xapi-core without its client: reading metadata builds no TLS or HTTP stack.
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
