//! The backup repository: content-addressed, deduplicated, optionally encrypted storage of
//! restore points on a local directory, an S3-compatible bucket (feature `s3`), or through
//! [`Target::Custom`] any `object_store`.
//!
//! Disk data is cut on the XVA 1 MiB chunk grid; each chunk is named by its BLAKE3 hash (keyed
//! when the repository is encrypted), compressed with zstd and sealed (XChaCha20-Poly1305, or an
//! xxh64 checksum), and stored once however many restore points and VMs share it. All-zero
//! chunks are not stored. A restore point is a manifest plus one streamed chunk index per
//! stream (disk, `ova.xml`, database dump, host backup); the manifest is written last with a
//! conditional create, so a restore point without one does not exist and is never listed.
//! Deletion is [`Repository::forget`] (retention) then [`Repository::prune`] (two marks a
//! grace period apart, under a maintenance lock). The byte layouts are in `REPOSITORY.md`.
//!
//! **Backups carry secrets**: a VM's vTPM state and UEFI NVRAM (Secure Boot keys, disk
//! encryption keys sealed to the vTPM), and whatever the disks hold. Create repositories with
//! encryption ([`CreateOptions::encryption`]) unless the storage is as trusted as the pool.
//!
//! The repository is behind the default `repo` feature; without it (`default-features = false`)
//! the crate is the format layer alone, and `cargo xtask lean` checks that neither build pulls in
//! an HTTP or TLS stack.
//!
//! ```no_run
//! # async fn demo() -> xapi_backup::Result<()> {
//! use xapi_backup::repo::{
//!     CreateOptions, Repository, RestorePointInfo, RestorePointKind, StreamSpec, Target,
//! };
//! use tokio::io::AsyncReadExt as _;
//! let target = Target::LocalDir("/backups/repo".into());
//! let repo = Repository::create(&target, CreateOptions::default()).await?;
//! let mut point = repo
//!     .begin(RestorePointInfo::new(RestorePointKind::Disk, "vdi-uuid"))
//!     .await?;
//! let disk = tokio::fs::File::open("disk.raw").await.expect("a disk image");
//! let size = disk.metadata().await.expect("its size").len();
//! point.write_stream(StreamSpec::disk("vdi-uuid", size), disk).await?;
//! let manifest = point.commit().await?;
//! let mut back = Vec::new();
//! repo.read_stream(&manifest, "vdi-uuid").await?.read_to_end(&mut back).await.expect("read");
//! # Ok(()) }
//! ```

mod chunk;
mod clock;
mod config;
mod crypto;
mod error;
mod hex;
mod index;
mod local_chunks;
mod lock;
mod manifest;
mod object;
mod prune;
mod reader;
mod repository;
mod retention;
#[cfg(feature = "s3")]
mod s3;
#[cfg(feature = "testing")]
mod seaweedfs;
mod store;
mod verify;
mod writer;

pub use chunk::chunk_object;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    CHUNK_SIZE, CompressionConfig, EncryptionConfig, FORMAT_VERSION, HashAlgorithm, RepoConfig,
};
pub use crypto::{ChunkId, KdfParams, KeyDerivation, Secret};
pub use error::RepoError;
pub use lock::MaintenanceLock;
pub use manifest::{
    MANIFEST_VERSION, Manifest, RestorePointId, RestorePointInfo, RestorePointKind, SourceInfo,
    StreamRecord, StreamRole, StreamSpec, ToolInfo, VmIdentity,
};
pub use prune::{PruneOptions, PruneReport};
pub use reader::{ChunkStream, IndexEntries, StreamReader};
pub use repository::{CreateOptions, OpenOptions, Repository};
pub use retention::{ForgetReport, RetentionPolicy, SubjectDecision, select_retained};
#[cfg(feature = "s3")]
pub use s3::S3Target;
#[cfg(feature = "testing")]
pub use seaweedfs::SeaweedFs;
pub use store::{ObjectInfo, Store, StreamUpload, Target};
pub use verify::{CheckOptions, Problem, VerifyReport};
pub use writer::{ChunkSource, NoChunkSource, RestorePointWriter, StreamWriter};
