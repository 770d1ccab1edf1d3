//! What an incremental run did: per disk whether it was read incrementally or whole and why,
//! the bytes read over NBD, the changed bytes, the chunks rebuilt, reused and resumed.

use serde::Serialize;

use crate::repo::Manifest;

/// Why a disk (or the whole VM) was backed up in full rather than from its changed blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FullReason {
    /// The disk has no base yet: the first run of the VM.
    FirstRun,
    /// The disk is new in the VM since the last run (other disks have bases).
    DiskAdded,
    /// CBT is off on the disk (it is enabled now unless the options only require it).
    CbtOff,
    /// The base the last run kept is gone (destroyed by someone or something).
    BaseMissing {
        /// The base VDI's UUID the disk pointed at.
        base_uuid: String,
    },
    /// `VDI.list_changed_blocks` cannot compare the base with the new snapshot: CBT was
    /// disabled and enabled again since (the log was reset), or the base's log is damaged.
    CbtLogUnusable {
        /// The error code or decoding failure.
        error: String,
    },
    /// The disk's size changed since the base.
    DiskResized {
        /// The base's size.
        from: u64,
        /// The size now.
        to: u64,
    },
    /// The host refused `VDI.list_changed_blocks` (no licence for CBT, or an older host that
    /// does not know the call).
    ChangedBlocksRefused {
        /// `LICENCE_RESTRICTION`, `MESSAGE_METHOD_UNKNOWN`, ...
        code: String,
    },
    /// The restore point the base belongs to is not in the repository (forgotten and pruned,
    /// or another repository).
    PreviousRestorePointMissing {
        /// Its id.
        id: String,
    },
    /// No NBD server could be reached: the whole VM went through `GET /export`.
    NbdUnreachable {
        /// Why.
        error: String,
    },
}

impl std::fmt::Display for FullReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FirstRun => f.write_str("first run: no base yet"),
            Self::DiskAdded => f.write_str("disk added since the last run"),
            Self::CbtOff => f.write_str("CBT was off on the disk"),
            Self::BaseMissing { base_uuid } => write!(f, "base {base_uuid} is gone"),
            Self::CbtLogUnusable { error } => {
                write!(f, "CBT log reset or unusable since the base: {error}")
            }
            Self::DiskResized { from, to } => write!(f, "disk resized from {from} to {to} bytes"),
            Self::ChangedBlocksRefused { code } => {
                write!(f, "VDI.list_changed_blocks refused: {code}")
            }
            Self::PreviousRestorePointMissing { id } => {
                write!(f, "previous restore point {id} is not in the repository")
            }
            Self::NbdUnreachable { error } => write!(f, "NBD unreachable: {error}"),
        }
    }
}

/// How one disk was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum DiskMode {
    /// Only its changed blocks, over NBD.
    Incremental,
    /// Whole, over NBD, for this reason.
    Full {
        /// Why.
        #[serde(flatten)]
        reason: FullReason,
    },
}

/// What the run did with one disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskReport {
    /// The stream key in the restore point (the VDI's export id in `ova.xml`).
    pub key: String,
    /// The snapshot VDI read (the next run's base when CBT is on).
    pub vdi_uuid: String,
    /// The disk's size.
    pub size: u64,
    /// Incremental or full, and why.
    #[serde(flatten)]
    pub mode: DiskMode,
    /// Bytes read over NBD.
    pub nbd_bytes_read: u64,
    /// NBD connections that read this disk at once.
    pub nbd_connections: usize,
    /// Bytes in changed blocks (incremental only).
    pub changed_bytes: u64,
    /// Chunks rebuilt: changed blocks read over NBD, the rest from the previous restore point.
    pub chunks_rebuilt: u64,
    /// Chunks referenced from the previous restore point unread.
    pub chunks_reused: u64,
    /// Chunks read whole over NBD (a full disk).
    pub chunks_read: u64,
    /// Chunks an interrupted run had stored, taken over by this one.
    pub chunks_resumed: u64,
}

/// What an incremental run of one VM did.
#[derive(Debug, Clone, Serialize)]
pub struct IncrementalReport {
    /// The restore point (a full one: it restores like any other).
    pub manifest: Manifest,
    /// The VM-wide reason the run was not incremental at all (`None` when at least the
    /// disks' own modes say everything).
    pub fallback: Option<FullReason>,
    /// Per disk (empty when the VM went through `GET /export`).
    pub disks: Vec<DiskReport>,
    /// Bytes read over NBD, all disks.
    pub nbd_bytes_read: u64,
    /// Bytes read through `GET /export` (the NBD-unreachable fallback).
    pub export_bytes_read: u64,
    /// Bytes in changed blocks, all incremental disks.
    pub changed_bytes: u64,
    /// Whether this run continued an interrupted one.
    pub resumed: bool,
    /// Whether the snapshot's disks were kept as the bases of the next run.
    pub bases_kept: bool,
    /// Seconds spent taking (or finding) the snapshot.
    pub snapshot_seconds: f64,
    /// Seconds spent reading the disks and storing them, manifest included (the export, on
    /// the NBD-unreachable fallback).
    pub transfer_seconds: f64,
}

impl IncrementalReport {
    /// Whether every disk was read from its changed blocks.
    pub fn is_incremental(&self) -> bool {
        self.fallback.is_none()
            && !self.disks.is_empty()
            && self.disks.iter().all(|d| d.mode == DiskMode::Incremental)
    }

    /// The reasons for full reads: the VM-wide one, then each disk's.
    pub fn full_reasons(&self) -> Vec<&FullReason> {
        self.fallback
            .iter()
            .chain(self.disks.iter().filter_map(|d| match &d.mode {
                DiskMode::Full { reason } => Some(reason),
                DiskMode::Incremental => None,
            }))
            .collect()
    }
}
