//! Disaster recovery for XenServer / XCP-ng pools: recover a site from the pool metadata that
//! xapi replicates to mirrored storage, as XenCenter's DR wizard does, but as a library that
//! explains every choice and is safe to run again.
//!
//! A failover in ten lines (a session on the DR pool, the mirrored LUN's SR already introduced):
//!
//! ```no_run
//! # async fn failover(dr: xapi_core::client::SessionHandle) -> Result<(), Box<dyn std::error::Error>> {
//! use xapi_dr::{plan::*, reconcile::*, run::*, source::*, target::read_target_pool};
//! let mut copies = Vec::new();
//! for found in discover(&dr, &DiscoverOptions::default()).await? {
//!     copies.push(MetadataCopy::from_vdi(&dr, &found.vdi).await?);
//! }
//! let target = read_target_pool(&dr).await?;
//! let request = PlanRequest::new(Mode::Failover);
//! let (_, plan) = reconcile_and_plan(&copies, &target, None, &Recovered::default(), &Preferences::default(), &request)?;
//! let report = Run::new(dr, plan, RunOptions::journal_at("failover.journal"))?.execute().await?;
//! # Ok(()) }
//! ```
//!
//! The parts, each usable alone:
//! - [`metadata`]: the metadata VDI's formats (the redo log xapi mirrors its database into, the
//!   XML database dump, typed views with xapi-core's `Ref<T>` and generated enums).
//! - [`source`]: copies of metadata, read offline (images, dumps) or through the recovery
//!   pool's API (`SR.probe`, `DR_task.create`, `VDI.open_database`), as one model.
//! - [`reconcile`]: newest wins, explained: the highest database generation between copies of
//!   one pool, the highest `VM.version` across pools, the target pool's copies; ties with
//!   different content are conflicts, never decided silently.
//! - [`plan`]: pure, state in, plan out: every pre-check of XenCenter's wizard and what it
//!   misses, each with its fix and unwind; the start sequence; a test's clean-up; JSON that can
//!   be edited and fed back.
//! - [`target`]: the target pool read once, in bulk.
//! - [`run`]: a plan executed with the two sessions, `force = false`, a journal after every
//!   step (re-running continues), progress events, a report of every call; a test's clean-up.
//! - [`configure`]: which SRs hold the pool's replicated database (at most 8).
//!
//! Without the default `engine` feature the crate is the sans-IO reader, reconciliation and
//! planning, and builds no TLS or HTTP stack:
//!
//! ```no_run
//! let report = xapi_dr::metadata::inspect("metadata-vdi.img")?;
//! println!("pool {} at generation {}", report.pool.uuid, report.generation);
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
