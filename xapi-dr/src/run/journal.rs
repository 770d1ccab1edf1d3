//! The journal of a run: what it changed in the target pool, written after every step so that
//! a run that stops in the middle leaves an exact account, a second run of the same plan
//! continues instead of duplicating, and a test's clean-up can be done later from the file
//! alone (`xapictl dr cleanup`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::{Fix, Mode};
use crate::reconcile::Recovered;

/// The journal format version this crate writes and reads.
pub const JOURNAL_VERSION: u32 = 1;

/// A fix applied before the recovery, with the change that undoes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedFix {
    /// What was done.
    pub fix: Fix,
    /// What undoes it (run by a test's clean-up, in reverse order).
    pub unwind: Option<Fix>,
    /// Whether the unwind has been done.
    #[serde(default)]
    pub unwound: bool,
}

/// A `DR_task` the run created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrTaskEntry {
    /// Its reference in the target pool.
    pub reference: String,
    /// The SRs it was asked to introduce.
    pub srs: Vec<String>,
}

/// A recovery call that was sent but whose outcome is not known (the run stopped while it was
/// in flight): the next run checks the target before repeating it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    /// `vm` or `vapp`.
    pub kind: String,
    /// Its UUID.
    pub uuid: String,
}

/// Everything a run (and its clean-up) did to the target pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// Format version ([`JOURNAL_VERSION`]).
    pub version: u32,
    /// The plan's mode.
    pub mode: Mode,
    /// The target pool's UUID.
    pub target_pool: String,
    /// Network UUIDs of the target before the first run (to find the ones the import created).
    pub networks_before: BTreeSet<String>,
    /// Fixes applied, in order.
    pub fixes: Vec<AppliedFix>,
    /// DR tasks created.
    pub dr_tasks: Vec<DrTaskEntry>,
    /// SR UUIDs that were not attached before the run and are now (introduced by DR tasks).
    pub introduced_srs: Vec<String>,
    /// The isolated network created for a test, by UUID.
    pub isolated_network: Option<String>,
    /// Networks the import created (no match by name or bridge), by UUID.
    pub created_networks: Vec<String>,
    /// A recovery call in flight when the journal was last written.
    pub in_flight: Option<InFlight>,
    /// vApps recovered, by UUID.
    pub recovered_vapps: BTreeSet<String>,
    /// VMs recovered (standalone and vApp members), by UUID.
    pub recovered_vms: BTreeSet<String>,
    /// VIFs moved to their planned network, by VIF UUID.
    pub moved_vifs: BTreeSet<String>,
    /// VMs and vApps started, by UUID.
    pub started: BTreeSet<String>,
    /// Whether a test's clean-up finished.
    pub cleaned_up: bool,
}

impl Journal {
    /// An empty journal for a run of `mode` into `target_pool`.
    pub fn new(mode: Mode, target_pool: &str) -> Self {
        Self {
            version: JOURNAL_VERSION,
            mode,
            target_pool: target_pool.to_owned(),
            networks_before: BTreeSet::new(),
            fixes: Vec::new(),
            dr_tasks: Vec::new(),
            introduced_srs: Vec::new(),
            isolated_network: None,
            created_networks: Vec::new(),
            in_flight: None,
            recovered_vapps: BTreeSet::new(),
            recovered_vms: BTreeSet::new(),
            moved_vifs: BTreeSet::new(),
            started: BTreeSet::new(),
            cleaned_up: false,
        }
    }

    /// What this journal's runs recovered, for [`crate::reconcile::reconcile`]: those VMs and
    /// vApps are done, not version conflicts.
    pub fn recovered(&self) -> Recovered {
        Recovered {
            vms: self.recovered_vms.clone(),
            vapps: self.recovered_vapps.clone(),
        }
    }

    /// Reads a journal file.
    pub fn load(path: &Path) -> Result<Self, JournalError> {
        let text = std::fs::read_to_string(path).map_err(|source| JournalError::Io {
            path: path.to_owned(),
            source,
        })?;
        let journal: Self = serde_json::from_str(&text).map_err(|err| JournalError::Parse {
            path: path.to_owned(),
            line: err.line(),
            column: err.column(),
            message: err.to_string(),
        })?;
        if journal.version != JOURNAL_VERSION {
            return Err(JournalError::UnknownVersion {
                path: path.to_owned(),
                version: journal.version,
            });
        }
        Ok(journal)
    }

    /// Writes the journal to `path` atomically: a temporary file beside it, synced, then
    /// renamed over it, so a crash leaves the previous journal or this one, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_owned(),
            source,
        };
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        let text = serde_json::to_vec_pretty(self).expect("a journal is plain data");
        {
            use std::io::Write as _;
            let mut file = std::fs::File::create(&temporary).map_err(io)?;
            file.write_all(&text).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        std::fs::rename(&temporary, path).map_err(io)
    }
}

/// A journal file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// Reading or writing failed.
    #[error("journal {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a journal.
    #[error("journal {}, line {line} column {column}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Line.
        line: usize,
        /// Column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// Written by a version of this crate that used another format.
    #[error("journal {}: format version {version}, this build reads version {}", path.display(), JOURNAL_VERSION)]
    UnknownVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_atomically_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.journal");
        let mut journal = Journal::new(Mode::TestFailover, "pool-1");
        journal.recovered_vms.insert("vm-1".into());
        journal.fixes.push(AppliedFix {
            fix: Fix::DisableHa,
            unwind: Some(Fix::EnableHa {
                heartbeat_srs: vec!["sr".into()],
                failures_to_tolerate: 1,
            }),
            unwound: false,
        });
        journal.save(&path).unwrap();
        assert!(!dir.path().join("run.journal.tmp").exists());
        let back = Journal::load(&path).unwrap();
        assert_eq!(back, journal);
        assert!(back.recovered().vms.contains("vm-1"));
    }

    #[test]
    fn refuses_another_version_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.journal");
        let mut journal = Journal::new(Mode::Failover, "p");
        journal.version = 99;
        journal.save(&path).unwrap();
        assert!(matches!(
            Journal::load(&path),
            Err(JournalError::UnknownVersion { version: 99, .. })
        ));
        std::fs::write(&path, "{\"version\": 1,").unwrap();
        let err = Journal::load(&path).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
