//! The storage mirror between the demo's two pools, as an explicit state.
//!
//! - [`MirrorMode::Mirrored`]: the DR side's images of the mirrored SR are the primary's images
//!   (hard links, so every write on the primary is replicated at once); the DR side refuses
//!   writes to them through NBD and `/import_raw_vdi`.
//! - [`MirrorMode::Broken`]: replication stops. Each DR image becomes an independent sparse copy
//!   of the primary's at the moment of the break, writable, and the two sides diverge.
//! - [`MirrorMode::Resync`]: the DR images are overwritten from the primary again, and the mirror
//!   returns to `Mirrored` (so reading the mode never yields `Resync`).
//!
//! The demo has one mirror per replicated SR (both behind one iSCSI target), switched together
//! or one at a time. For a failback, a broken mirror can be reversed: the primary then reaches
//! the DR pool's copy of the SR, resynced from it, and sees what the DR pool writes there (its
//! metadata VDI, once it replicates its own database) after `SR.scan` or a plug.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use crate::pool::Pool;
use crate::rpc::dr_storage::Mirror;
use crate::storage::{Replacement, replace_image};

/// The state of a storage mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorMode {
    /// Writes on the primary replicate to the DR side, which is read-only.
    Mirrored,
    /// Replication stopped: the DR side is writable and diverges.
    Broken,
    /// Overwrite the DR side from the primary, then return to `Mirrored` (a transition, never a
    /// resting state).
    Resync,
}

impl MirrorMode {
    /// The name used by the admin endpoint (`mirrored`, `broken`, `resync`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mirrored => "mirrored",
            Self::Broken => "broken",
            Self::Resync => "resync",
        }
    }
}

impl fmt::Display for MirrorMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mirror mode name that is not `mirrored`, `broken` or `resync`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mirror mode {0:?} (expected mirrored, broken or resync)")]
pub struct UnknownMirrorMode(pub String);

impl FromStr for MirrorMode {
    type Err = UnknownMirrorMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mirrored" => Ok(Self::Mirrored),
            "broken" => Ok(Self::Broken),
            "resync" => Ok(Self::Resync),
            other => Err(UnknownMirrorMode(other.to_owned())),
        }
    }
}

/// The shared, switchable state of one mirror (held by every copy of its `Mirror`).
#[derive(Debug, Default)]
pub(crate) struct MirrorState {
    broken: Mutex<bool>,
}

impl MirrorState {
    /// A new mirror, replicating.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The current mode (`Mirrored` or `Broken`).
    pub(crate) fn mode(&self) -> MirrorMode {
        if *self.lock() {
            MirrorMode::Broken
        } else {
            MirrorMode::Mirrored
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, bool> {
        self.broken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether the image `uuid` of `pool` is the read-only replica of a mirror that is on.
pub(crate) fn is_read_only_replica(pool: &Pool, uuid: &str) -> bool {
    pool.mirrors().iter().any(|mirror| {
        mirror.state.mode() == MirrorMode::Mirrored && source_vdis(mirror).iter().any(|u| u == uuid)
    })
}

/// Switch every mirror `pool` reaches to `mode`; the resulting mode (`Resync` ends as
/// `Mirrored`). `None` when the pool reaches no mirror.
pub(crate) fn switch(pool: &Pool, mode: MirrorMode) -> Option<std::io::Result<MirrorMode>> {
    let mirrors = pool.mirrors();
    if mirrors.is_empty() {
        return None;
    }
    for mirror in &mirrors {
        if let Err(err) = switch_one(pool, mirror, mode) {
            return Some(Err(err));
        }
    }
    Some(Ok(mirrors[0].state.mode()))
}

/// The mode of the first mirror `pool` reaches.
pub(crate) fn mode(pool: &Pool) -> Option<MirrorMode> {
    pool.mirrors().first().map(|m| m.state.mode())
}

fn switch_one(pool: &Pool, mirror: &Mirror, mode: MirrorMode) -> std::io::Result<()> {
    let mut broken = mirror.state.lock();
    let uuids = source_vdis(mirror);
    match (mode, *broken) {
        (MirrorMode::Mirrored, false) | (MirrorMode::Broken, true) => {}
        (MirrorMode::Broken, false) => {
            // the mirror side keeps the images as they are at the break, whether this pool has
            // scanned them yet or not: a later scan finds these copies, not the source's
            for uuid in &uuids {
                let replica = pool.storage.path(uuid);
                let source = mirror.source.storage.path(uuid);
                if replica.exists() || source.exists() {
                    let size = std::fs::metadata(&source)
                        .or_else(|_| std::fs::metadata(&replica))?
                        .len();
                    replace_image(&source, &replica, size, Replacement::Copy)?;
                }
            }
            *broken = true;
        }
        // back to mirrored from broken means a resync first
        (MirrorMode::Mirrored | MirrorMode::Resync, _) => {
            for uuid in &uuids {
                let replica = pool.storage.path(uuid);
                let primary = mirror.source.storage.path(uuid);
                if replica.exists() && primary.exists() {
                    let size = std::fs::metadata(&primary)?.len();
                    replace_image(&primary, &replica, size, Replacement::Link)?;
                }
            }
            *broken = false;
        }
    }
    Ok(())
}

/// The mirror of the SR called `sr_name` among those `pool` reaches (by the source SR's name).
pub(crate) fn mirror_of(pool: &Pool, sr_name: &str) -> Option<Mirror> {
    pool.mirrors().into_iter().find(|mirror| {
        let db = mirror.source.db();
        db.by_uuid("SR", &mirror.sr_uuid)
            .and_then(|sr| db.str_field("SR", &sr, "name_label"))
            .is_ok_and(|name| name == sr_name)
    })
}

/// Switch the one mirror `mirror` of `pool` to `mode`; the resulting mode.
pub(crate) fn switch_mirror(
    pool: &Pool,
    mirror: &Mirror,
    mode: MirrorMode,
) -> std::io::Result<MirrorMode> {
    switch_one(pool, mirror, mode)?;
    Ok(mirror.state.mode())
}

/// Reverse the mirror of an SR for a failback: `primary` now reaches, behind `device_config`,
/// the SR `sr_uuid` of `dr` (the failed-over pool), and its images of the VDIs both sides
/// hold become the DR side's (a resync from the DR side), replicating from then on.
pub(crate) fn reverse(
    primary: &Pool,
    dr: &Arc<Pool>,
    sr_uuid: &str,
    device_config: std::collections::BTreeMap<String, String>,
) -> std::io::Result<()> {
    let mirror = Mirror {
        source: Arc::clone(dr),
        sr_uuid: sr_uuid.to_owned(),
        device_config,
        state: MirrorState::new(),
    };
    // start broken so that the switch below resyncs the primary from the DR side
    *mirror.state.lock() = true;
    switch_one(primary, &mirror, MirrorMode::Resync)?;
    primary.add_mirror(mirror);
    Ok(())
}

/// UUIDs of the VDIs of the mirrored SR on its source.
fn source_vdis(mirror: &Mirror) -> Vec<String> {
    let db = mirror.source.db();
    let Ok(sr) = db.by_uuid("SR", &mirror.sr_uuid) else {
        return Vec::new();
    };
    db.refs_field("SR", &sr, "VDIs")
        .unwrap_or_default()
        .iter()
        .filter_map(|vdi| db.str_field("VDI", vdi, "uuid").ok())
        .collect()
}
