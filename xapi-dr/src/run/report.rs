//! What a run tells its caller: progress events while it works, and a report of every call it
//! made, with outcomes and timestamps, when it ends.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::journal::Journal;
use crate::plan::Mode;

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How one call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CallOutcome {
    /// It succeeded.
    Ok,
    /// It failed.
    Failed {
        /// The XAPI error code, or the kind of failure.
        code: String,
        /// The whole error.
        message: String,
    },
}

/// One call the run made to a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The XAPI method (`VM.recover`, `Async.VM.start`, ...).
    pub method: String,
    /// What it was about: a VM, vApp, SR or network UUID, or the pool.
    pub subject: String,
    /// When it was sent (ms since the Unix epoch).
    pub started_ms: u64,
    /// When its answer (or its task's end) arrived.
    pub finished_ms: u64,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: CallOutcome,
}

/// Progress of a run, in the order things happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunEvent {
    /// A phase begins (`fixes`, `storage`, `recover`, `networks`, `start`, `cleanup`).
    Phase {
        /// Its name.
        name: String,
    },
    /// A call ended.
    Call(CallRecord),
    /// A vApp or VM was recovered.
    Recovered {
        /// `vm` or `vapp`.
        kind: String,
        /// UUID.
        uuid: String,
        /// Name.
        name_label: String,
    },
    /// Something the plan lists was already done by an earlier run of it (from the journal).
    AlreadyDone {
        /// `recover` or `start`.
        step: String,
        /// UUID.
        uuid: String,
    },
    /// A VM or vApp was started.
    Started {
        /// UUID.
        uuid: String,
        /// Whether paused.
        paused: bool,
    },
}

/// What a run did: every call with its outcome and timestamps, and the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// Failover, failback or test failover.
    pub mode: Mode,
    /// The target pool's UUID.
    pub target_pool: String,
    /// Whether the recovery calls were made with `force = true` (xapi then replaces newer
    /// copies, skips running ones and drops disks it cannot find).
    pub force: bool,
    /// When the run began (ms since the Unix epoch).
    pub started_ms: u64,
    /// When it ended.
    pub finished_ms: u64,
    /// Every call, in order.
    pub calls: Vec<CallRecord>,
    /// Why the run stopped early, if it did (the journal says how far it got).
    pub error: Option<String>,
    /// The journal as it stands.
    pub journal: Journal,
}

impl RunReport {
    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report is plain data")
    }

    /// How many calls of `method` the run made.
    pub fn count(&self, method: &str) -> usize {
        self.calls.iter().filter(|c| c.method == method).count()
    }
}
