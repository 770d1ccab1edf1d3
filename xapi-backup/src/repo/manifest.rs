//! Restore point manifests: what a restore point is (kind, subject, source, VM identity) and
//! which streams it holds (disks, `ova.xml`, database dumps, host backups), each by its chunk
//! index. Versioned JSON inside a sealed, compressed object, written last.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::crypto::Sealer;
use super::error::RepoError;
use super::object::{self, ObjectKind};

/// The manifest version this build writes and reads.
pub const MANIFEST_VERSION: u32 = 1;
/// The largest decoded manifest accepted.
const MAX_MANIFEST: usize = 64 * 1024 * 1024;

/// What a restore point holds; each kind is listed and retained on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestorePointKind {
    /// A whole VM: `ova.xml` and its disks.
    Vm,
    /// One raw VDI.
    Disk,
    /// A pool database dump (`/pool/xmldbdump`).
    PoolMetadata,
    /// A host backup (`/host_backup`).
    Host,
}

impl RestorePointKind {
    /// Every kind.
    pub const ALL: [RestorePointKind; 4] = [
        RestorePointKind::Vm,
        RestorePointKind::Disk,
        RestorePointKind::PoolMetadata,
        RestorePointKind::Host,
    ];

    /// The kind's directory under `manifests/`.
    pub fn dir(self) -> &'static str {
        match self {
            RestorePointKind::Vm => "vm",
            RestorePointKind::Disk => "disk",
            RestorePointKind::PoolMetadata => "pool-metadata",
            RestorePointKind::Host => "host",
        }
    }
}

/// A restore point's id: `YYYYMMDDTHHMMSSZ-<12 hex digits>`, so that ids sort by time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RestorePointId(String);

impl RestorePointId {
    /// A new id for a restore point taken at `at`.
    pub fn generate(at: DateTime<Utc>) -> Self {
        RestorePointId(format!(
            "{}-{}",
            at.format("%Y%m%dT%H%M%SZ"),
            &super::crypto::random_hex(6)
        ))
    }

    /// Checks and wraps an id given by a caller (letters, digits, `-`, `_`, `.`; 1 to 100).
    pub fn parse(text: &str) -> Result<Self, RepoError> {
        if is_safe_name(text) {
            Ok(RestorePointId(text.to_owned()))
        } else {
            Err(RepoError::InvalidInput {
                reason: format!(
                    "restore point id {text:?}: use 1 to 100 letters, digits, -, _ or ."
                ),
            })
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RestorePointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// True for names safe in an object path: 1 to 100 of `[A-Za-z0-9._-]`, not `.` or `..`.
pub(crate) fn is_safe_name(text: &str) -> bool {
    (1..=100).contains(&text.len())
        && text != "."
        && text != ".."
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Where the backed-up thing came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// The source pool's UUID.
    pub pool_uuid: Option<String>,
    /// The source pool's name.
    pub pool_name: Option<String>,
    /// The host the data was read from (UUID).
    pub host_uuid: Option<String>,
    /// The host's name.
    pub host_name: Option<String>,
}

/// The VM a restore point restores as, and the snapshot it was taken from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmIdentity {
    /// The source VM's UUID.
    pub uuid: String,
    /// The source VM's name.
    pub name_label: String,
    /// The snapshot's UUID.
    pub snapshot_uuid: Option<String>,
    /// The snapshot's name.
    pub snapshot_name: Option<String>,
    /// When the snapshot was taken.
    pub snapshot_time: Option<DateTime<Utc>>,
}

/// What the caller says about a restore point when starting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePointInfo {
    /// The kind.
    pub kind: RestorePointKind,
    /// What it is of: the VM's UUID (kind VM), the VDI's UUID (disk), the pool's UUID (pool
    /// metadata), the host's UUID (host). Restore points are listed and retained per subject.
    pub subject: String,
    /// The job that made it.
    pub job_id: Option<String>,
    /// The source pool and host.
    pub source: SourceInfo,
    /// The VM's identity (kind VM).
    pub vm: Option<VmIdentity>,
}

impl RestorePointInfo {
    /// Information for a restore point of `kind` about `subject`, nothing else filled in.
    pub fn new(kind: RestorePointKind, subject: impl Into<String>) -> Self {
        RestorePointInfo {
            kind,
            subject: subject.into(),
            job_id: None,
            source: SourceInfo::default(),
            vm: None,
        }
    }
}

/// What a stored stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StreamRole {
    /// A disk's raw content.
    Disk,
    /// The VM's `ova.xml`.
    OvaXml,
    /// A pool database dump.
    PoolDatabase,
    /// A host backup archive.
    HostBackup,
}

/// What a writer is told about a stream before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// A key unique in the restore point: the VDI's UUID, `ova.xml`, `xmldbdump`.
    pub key: String,
    /// What it is.
    pub role: StreamRole,
    /// Its size in bytes (a disk's virtual size).
    pub size: u64,
    /// The VDI's UUID, for disks.
    pub vdi_uuid: Option<String>,
    /// A name to show (the VDI's name label).
    pub name: Option<String>,
}

impl StreamSpec {
    /// A disk of `size` bytes keyed by `key`.
    pub fn disk(key: impl Into<String>, size: u64) -> Self {
        StreamSpec {
            key: key.into(),
            role: StreamRole::Disk,
            size,
            vdi_uuid: None,
            name: None,
        }
    }
}

/// A stored stream, as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    /// The stream's key.
    pub key: String,
    /// What it is.
    pub role: StreamRole,
    /// Size in bytes.
    pub size: u64,
    /// The VDI's UUID, for disks.
    pub vdi_uuid: Option<String>,
    /// A name to show.
    pub name: Option<String>,
    /// The chunk index object.
    pub index: String,
    /// Chunks stored (entries of the index).
    pub stored_chunks: u64,
    /// Chunks that were all zeros (not stored).
    pub zero_chunks: u64,
    /// Of the stored chunks, those this backup uploaded (the rest were already there).
    pub new_chunks: u64,
    /// Bytes uploaded for the new chunks (after compression and sealing).
    pub new_bytes: u64,
}

/// The tool and formats that wrote a restore point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInfo {
    /// `xapi-backup`.
    pub name: String,
    /// The crate version.
    pub version: String,
    /// The repository format version.
    pub repository_format: u32,
}

impl ToolInfo {
    /// This build.
    pub fn this_build() -> Self {
        ToolInfo {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            repository_format: super::config::FORMAT_VERSION,
        }
    }
}

/// A restore point: written last, and the only thing listings show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub manifest_version: u32,
    /// The restore point's id.
    pub id: RestorePointId,
    /// Its kind.
    pub kind: RestorePointKind,
    /// What it is of (see [`RestorePointInfo::subject`]).
    pub subject: String,
    /// When the backup started (the repository clock).
    pub created_at: DateTime<Utc>,
    /// When the manifest was written.
    pub completed_at: DateTime<Utc>,
    /// The tool that wrote it.
    pub tool: ToolInfo,
    /// The job that made it.
    pub job_id: Option<String>,
    /// Source pool and host.
    pub source: SourceInfo,
    /// The VM's identity (kind VM).
    pub vm: Option<VmIdentity>,
    /// The VM's `ova.xml`, stored as a stream of its own.
    pub ova_xml: Option<StreamRecord>,
    /// The data streams: disks (in the order written), a database dump, a host backup.
    pub streams: Vec<StreamRecord>,
}

impl Manifest {
    /// Every stream, `ova.xml` included.
    pub fn all_streams(&self) -> impl Iterator<Item = &StreamRecord> {
        self.ova_xml.iter().chain(&self.streams)
    }

    /// The stream with this key.
    pub fn stream(&self, key: &str) -> Option<&StreamRecord> {
        self.all_streams().find(|s| s.key == key)
    }

    /// Total size of the data streams.
    pub fn total_size(&self) -> u64 {
        self.streams.iter().map(|s| s.size).sum()
    }

    /// Encodes the manifest object stored at `name`.
    pub(crate) fn encode(&self, name: &str, sealer: &Sealer) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("a Manifest always serializes");
        object::encode(ObjectKind::Manifest, name, sealer, &json, Some(3))
    }

    /// Decodes the manifest object `name`; a newer version is a typed error.
    pub(crate) fn decode(name: &str, sealer: &Sealer, bytes: &[u8]) -> Result<Self, RepoError> {
        let json = object::decode(ObjectKind::Manifest, name, sealer, bytes, MAX_MANIFEST)?;
        #[derive(Deserialize)]
        struct VersionOnly {
            manifest_version: u32,
        }
        let corrupt = |err: serde_json::Error| RepoError::CorruptManifest {
            object: name.to_owned(),
            reason: err.to_string(),
        };
        let version: VersionOnly = serde_json::from_slice(&json).map_err(corrupt)?;
        if version.manifest_version != MANIFEST_VERSION {
            return Err(RepoError::UnsupportedManifest {
                object: name.to_owned(),
                found: version.manifest_version,
                supported: MANIFEST_VERSION,
            });
        }
        serde_json::from_slice(&json).map_err(corrupt)
    }
}

/// The object name of a manifest.
pub(crate) fn manifest_object(
    kind: RestorePointKind,
    subject_dir: &str,
    id: &RestorePointId,
) -> String {
    format!("manifests/{}/{subject_dir}/{id}", kind.dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_unsafe_ids_are_refused() {
        let early = RestorePointId::generate(DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        let late = RestorePointId::generate(DateTime::from_timestamp(1_800_000_060, 0).unwrap());
        assert!(early < late);
        assert!(early.as_str().starts_with("20270115T"));
        assert!(RestorePointId::parse("job-1.vm_2").is_ok());
        for bad in ["", "..", "a/b", "a b", &"x".repeat(101)] {
            assert!(RestorePointId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_newer_manifest_version_is_a_typed_error() {
        let sealer = Sealer::plain();
        let json = br#"{"manifest_version": 9}"#;
        let bytes = object::encode(ObjectKind::Manifest, "m", &sealer, json, None);
        assert!(matches!(
            Manifest::decode("m", &sealer, &bytes),
            Err(RepoError::UnsupportedManifest { found: 9, .. })
        ));
    }
}
