//! Streaming backup and restore of XenServer / XCP-ng VMs and disks.
//!
//! The format codecs ([`format`](mod@format)): XVA (read and write, checksums
//! verified as chunks pass), VHD (fixed, dynamic, differencing), raw `format=tar` and the
//! chunked upload protocol. Memory stays bounded by a few chunks whatever the disk size.
//!
//! The codecs use xapi-core without its client (its `wire` codecs and `api` types): a tool that
//! only reads or writes XVAs builds no TLS or HTTP stack.
//!
//! The repository ([`repo`](mod@repo), default feature `repo`) stores restore points
//! deduplicated, compressed and optionally encrypted on a local directory, an S3-compatible
//! bucket or any `object_store` target; its format is in `REPOSITORY.md`. Backups carry
//! secrets (vTPM state, NVRAM, disk contents): create repositories with encryption.
//!
//! The engine (default feature `engine`) backs up and restores through a pool: VMs
//! ([`export`], [`import`], [`jobs`]), single disks ([`raw_disk`]), the pool database
//! ([`pool_metadata`], checked with xapi-dr's reader) and host backups ([`host_backup`]);
//! [`xva_io`] writes any VM restore point out as a standard XVA and takes XVA files in;
//! [`deep_verify`] proves a restore point by restoring it (started paused, then removed).
//! `examples/backup_pool.rs` backs up a whole pool and `examples/restore_vm.rs` restores a VM,
//! both against the simulator.
//!
//! A backup and a restore:
//!
//! ```no_run
//! # #[cfg(all(feature = "engine", feature = "repo"))]
//! # async fn demo(session: xapi_core::client::SessionHandle) -> Result<(), Box<dyn std::error::Error>> {
//! use xapi_backup::export::backup_vm;
//! use xapi_backup::import::{RestoreOptions, restore_vm_outcome};
//! use xapi_backup::repo::{CreateOptions, Repository, Target};
//!
//! let repo = Repository::create(
//!     &Target::LocalDir("/backups/pool1".into()),
//!     CreateOptions::default(),
//! )
//! .await?;
//! let vm = session.vm().get_by_name_label("web-db").await?.remove(0);
//! // snapshot, export, every chunk verified and deduplicated, manifest last, snapshot removed
//! let backup = backup_vm(&session, &repo, &vm, None).await?;
//! println!("restore point {}", backup.manifest.id);
//!
//! // as a new VM with new MACs (`RestoreOptions::overwrite` puts it back over the source)
//! let restored = restore_vm_outcome(&session, &repo, &backup.manifest, &RestoreOptions {
//!     name_label: Some("web-db (restored)".into()),
//!     start: true,
//!     ..RestoreOptions::default()
//! })
//! .await?;
//! println!("restored as {}", restored.uuid);
//! # Ok(()) }
//! ```
//!
//! Features: `repo` (default) adds the repository and its storage and crypto crates; `s3` adds
//! the S3-compatible target (object_store's S3 client over reqwest, rustls with ring: the HTTP
//! and TLS stack, so not default). With `default-features = false` the crate is the format
//! layer alone. `cargo xtask lean` checks the default and the format-only builds: neither may
//! pull in an HTTP or TLS stack (hyper, rustls, ring, webpki-roots), and the format-only build
//! not even `object_store`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use xapi_backup::format::xva::{ReadOptions, XvaReader};
//! let file = tokio::fs::File::open("vm.xva").await?;
//! let mut xva = XvaReader::open(file, ReadOptions::default()).await?;
//! for vm in xva.ova_xml().vms() {
//!     println!("{:?}", vm.name_label);
//! }
//! while let Some(chunk) = xva.next_chunk().await? {
//!     println!("disk {} offset {} len {}", chunk.disk, chunk.offset, chunk.data.len());
//! }
//! # Ok(()) }
//! ```

#[cfg(all(feature = "engine", feature = "repo"))]
mod cleanup;
#[cfg(all(feature = "engine", feature = "repo"))]
pub mod deep_verify;
#[cfg(all(feature = "engine", feature = "repo"))]
mod engine_error;
mod error;
#[cfg(all(feature = "engine", feature = "repo"))]
pub mod export;
pub mod format;
#[cfg(all(feature = "engine", feature = "repo"))]
pub mod hooks;
#[cfg(all(feature = "engine", feature = "repo"))]
pub mod host_backup;
#[cfg(all(feature = "engine", feature = "repo"))]
pub mod import;
#[cfg(feature = "engine")]
pub mod incremental;
#[cfg(all(feature = "engine", feature = "repo"))]
pub mod jobs;
#[cfg(all(feature = "engine", feature = "repo"))]
pub mod pool_metadata;
#[cfg(all(feature = "engine", feature = "repo"))]
pub mod raw_disk;
#[cfg(feature = "repo")]
pub mod repo;
#[cfg(all(feature = "engine", feature = "repo"))]
pub mod retry;
#[cfg(all(feature = "engine", feature = "repo"))]
mod source;
#[cfg(all(feature = "engine", feature = "repo"))]
pub mod throttle;
#[cfg(all(feature = "engine", feature = "repo"))]
mod transfer;
#[cfg(all(feature = "engine", feature = "repo"))]
pub mod xva_io;

#[cfg(all(feature = "engine", feature = "repo"))]
pub use engine_error::EngineError;
pub use error::{Error, Result};
