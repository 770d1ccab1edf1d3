//! Disaster recovery for XenServer / XCP-ng pools.
//!
//! Today this crate reads and writes the DR metadata VDI ([`metadata`]): the redo log xapi
//! mirrors its pool database into, the XML database dump inside it, and typed views of the
//! objects a recovery needs (`VmView`, `VdiView`, ...: xapi-core's `Ref<T>` and generated
//! enums, so a view and a record of the same object compare without conversion).
//! [`source`] reads copies of metadata (offline today: images and dumps) into one model, and
//! [`reconcile`] decides, with a reason for each choice, which copy of every VM and vApp a
//! recovery uses (newest database generation per pool, highest `VM.version` across pools, the
//! target pool's copies), and [`plan`] turns that and the target pool's state into a plan with
//! every pre-check (XenCenter's DR wizard's list and what it misses), the start sequence and a
//! test's clean-up, as JSON that can be edited and read back. Running a plan comes next.
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

#[cfg(feature = "engine")]
pub mod configure;
mod error;
pub mod metadata;
pub mod plan;
pub mod reconcile;
#[cfg(feature = "engine")]
pub mod run;
pub mod source;
#[cfg(feature = "engine")]
pub mod target;

pub use error::Error;
