//! Running a plan: fixes, storage, `VM_appliance.recover` / `VM.recover` with the two sessions,
//! networks, starts in the planned order, and for a test the clean-up.
//!
//! - Recovery calls pass `force = false` unless the caller asks otherwise: xapi then enforces
//!   the version rule and refuses missing disks itself (reference §9.4); `force` drops the
//!   disks it cannot find and is reported in every call record.
//! - A [`Journal`] of what the run changed is written after every step (to the file the caller
//!   names, and in the report). Running the same plan again with its journal continues: what
//!   the plan already recovered is done, not a version conflict; a recovery that was in flight
//!   when the run stopped is checked in the target before it is repeated.
//! - Calls: planning reads in bulk; the run makes one recovery call per vApp or standalone VM,
//!   one start call per start step, a few bulk reads, and follows every start's task through
//!   one shared `event.from` stream (`task` class). Mapping a network or isolating a test adds
//!   one `VIF.move` per VIF that the import put elsewhere.
//! - xapi sleeps `start_delay` inside `VM.start` and `VM_appliance.start`: the run never sleeps
//!   it again.
//!
//! ```no_run
//! # async fn demo(session: xapi_core::client::SessionHandle, plan: xapi_dr::plan::Plan)
//! #     -> Result<(), xapi_dr::run::RunError> {
//! use xapi_dr::run::{Run, RunOptions};
//! let mut run = Run::new(session, plan, RunOptions::journal_at("failover.journal"))?;
//! let report = run.execute().await?;
//! println!("{} recovery calls", report.count("VM.recover") + report.count("VM_appliance.recover"));
//! # Ok(()) }
//! ```

mod cleanup;
mod fixes;
mod journal;
mod networks;
mod recorder;
mod recover;
mod report;
mod start;
mod tasks;

use std::collections::BTreeMap;
use std::path::PathBuf;

use tokio::sync::mpsc;
use xapi_core::client::SessionHandle;

use crate::plan::{Check, Plan};

pub use cleanup::cleanup_from_journal;
pub use journal::{AppliedFix, DrTaskEntry, InFlight, JOURNAL_VERSION, Journal, JournalError};
pub use networks::ISOLATED_NETWORK_KEY;
pub use report::{CallOutcome, CallRecord, RunEvent, RunReport};

use recorder::Recorder;

/// Where a missing SR's mirrored LUN is, for `DR_task.create` (the fix of a storage problem).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageDevice {
    /// SM type: `lvmoiscsi` or `lvmohba`.
    pub sr_type: String,
    /// Device configuration (`target`, `targetIQN`, `SCSIid`, ...).
    pub device_config: BTreeMap<String, String>,
}

/// How to run a plan.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Pass `force = true` to the recovery calls: xapi then replaces newer copies, skips
    /// running ones and drops disks it cannot find. Off by default; reported when on.
    pub force: bool,
    /// Apply the fixes the plan proposes for its problems (disable HA for a test, shut down or
    /// destroy VMs in the way, introduce SRs). Without it a plan with problems is refused.
    pub apply_fixes: bool,
    /// The mirrored LUN of each SR to introduce, by SR UUID.
    pub storage: BTreeMap<String, StorageDevice>,
    /// A session on the source pool, when reachable (for fixes that shut VMs down there).
    pub source_session: Option<SessionHandle>,
    /// Where the journal is kept; a journal already there is continued.
    pub journal_path: Option<PathBuf>,
}

impl RunOptions {
    /// Default options with the journal kept at `path`.
    pub fn journal_at(path: impl Into<PathBuf>) -> Self {
        Self {
            journal_path: Some(path.into()),
            ..Self::default()
        }
    }
}

/// Why a run stopped. The journal (file and [`Run::journal`]) says exactly how far it got.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The plan has problems and no fix (or fixes were not allowed).
    #[error("the plan is blocked by {} problem(s): {}", problems.len(), problems.iter().map(|c| c.message.as_str()).collect::<Vec<_>>().join("; "))]
    Blocked {
        /// The problems left.
        problems: Vec<Check>,
    },
    /// A fix that a person must make.
    #[error("a person must act: {instruction}")]
    ManualFix {
        /// What to do.
        instruction: String,
    },
    /// An SR must be introduced and its device configuration was not given.
    #[error(
        "SR {sr} must be introduced from its mirrored LUN: give its device configuration (RunOptions::storage)"
    )]
    MissingStorageDevice {
        /// The SR's UUID.
        sr: String,
    },
    /// A fix that shuts VMs down in the source pool needs a session on it.
    #[error(
        "the fix for {subject} acts on the source pool: give a session on it (RunOptions::source_session)"
    )]
    NeedsSourceSession {
        /// The VM or vApp.
        subject: String,
    },
    /// No metadata VDI in the target holds a copy the plan uses.
    #[error("no metadata VDI in the target pool holds the copy of pool {pool_uuid} from {origin}")]
    NoMetadataVdi {
        /// The source pool.
        pool_uuid: String,
        /// Where the plan's copy came from.
        origin: String,
    },
    /// The plan names a VM or vApp that the copy's database does not hold.
    #[error("{kind} {uuid} is not in the metadata of pool {pool_uuid}")]
    NotInCopy {
        /// `VM` or `vApp`.
        kind: &'static str,
        /// Its UUID.
        uuid: String,
        /// The copy's pool.
        pool_uuid: String,
    },
    /// Clean-up undoes a test failover; a failover or failback is never cleaned up.
    #[error("the journal is of a {0:?}: only a test failover is cleaned up")]
    NotATest(crate::plan::Mode),
    /// The journal belongs to another run.
    #[error("the journal is for a {journal_mode:?} into pool {journal_pool}, not this plan's")]
    JournalMismatch {
        /// The journal's mode.
        journal_mode: crate::plan::Mode,
        /// The journal's target pool.
        journal_pool: String,
    },
    /// A call failed.
    #[error("{method} ({subject}): {source}")]
    Call {
        /// The method.
        method: String,
        /// What it was about.
        subject: String,
        /// The client's error.
        #[source]
        source: Box<xapi_core::Error>,
    },
    /// Some starts failed; the others went ahead.
    #[error("{} start(s) failed: {}", failed.len(), failed.join("; "))]
    StartsFailed {
        /// One line per failed start.
        failed: Vec<String>,
    },
    /// The task event stream ended while a start was waited for.
    #[error("the pool's event stream ended while waiting for the start of {subject}")]
    EventsEnded {
        /// The VM or vApp.
        subject: String,
    },
    /// The journal could not be read or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// A plan being run against the target pool.
pub struct Run {
    session: SessionHandle,
    plan: Plan,
    options: RunOptions,
    journal: Journal,
    recorder: Recorder,
    started_ms: u64,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("mode", &self.plan.mode)
            .field("target_pool", &self.plan.target_pool)
            .field("journal", &self.journal)
            .finish_non_exhaustive()
    }
}

impl Run {
    /// Prepares a run of `plan` with `session` (on the target pool). The plan holds all the
    /// run needs (a plan file is enough: `xapictl dr run plan.json`). A journal at `options.journal_path` is continued; it must be of
    /// the same mode and target pool.
    pub fn new(session: SessionHandle, plan: Plan, options: RunOptions) -> Result<Self, RunError> {
        let journal = match &options.journal_path {
            Some(path) if path.exists() => {
                let journal = Journal::load(path)?;
                if journal.mode != plan.mode || journal.target_pool != plan.target_pool {
                    return Err(RunError::JournalMismatch {
                        journal_mode: journal.mode,
                        journal_pool: journal.target_pool,
                    });
                }
                journal
            }
            _ => Journal::new(plan.mode, &plan.target_pool),
        };
        Ok(Self {
            session,
            plan,
            options,
            journal,
            recorder: Recorder::default(),
            started_ms: report::now_ms(),
        })
    }

    /// A stream of progress events for this run (call before [`Run::execute`]).
    pub fn events(&mut self) -> mpsc::UnboundedReceiver<RunEvent> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.recorder.events = Some(sender);
        receiver
    }

    /// Takes over SRs introduced before the run (to read the metadata on them through the
    /// API, [`crate::source::introduce`]): the journal lists their DR task and SRs, so a test's
    /// clean-up forgets them too.
    pub fn adopt(&mut self, storage: &crate::source::IntroducedStorage) -> Result<(), RunError> {
        let reference = storage.dr_task.as_str().to_owned();
        if !self
            .journal
            .dr_tasks
            .iter()
            .any(|t| t.reference == reference)
        {
            self.journal.dr_tasks.push(DrTaskEntry {
                reference,
                srs: storage.sr_uuids().map(str::to_owned).collect(),
            });
        }
        for sr in storage.sr_uuids() {
            if !self.journal.introduced_srs.iter().any(|s| s == sr) {
                self.journal.introduced_srs.push(sr.to_owned());
            }
        }
        self.save()
    }

    /// The journal as it stands.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The report of everything done so far (also after an error).
    pub fn report(&self, error: Option<&RunError>) -> RunReport {
        RunReport {
            mode: self.plan.mode,
            target_pool: self.plan.target_pool.clone(),
            force: self.options.force,
            started_ms: self.started_ms,
            finished_ms: report::now_ms(),
            calls: self.recorder.calls.clone(),
            error: error.map(ToString::to_string),
            journal: self.journal.clone(),
        }
    }

    fn save(&self) -> Result<(), RunError> {
        if let Some(path) = &self.options.journal_path {
            self.journal.save(path)?;
        }
        Ok(())
    }

    fn phase(&self, name: &str) {
        self.recorder.emit(RunEvent::Phase {
            name: name.to_owned(),
        });
    }

    /// Runs the plan: fixes, storage, recovery, networks, starts. On error the journal holds
    /// the exact account and [`Run::report`] lists every call made.
    pub async fn execute(&mut self) -> Result<RunReport, RunError> {
        self.phase("fixes");
        self.apply_fixes().await?;
        self.phase("networks-before");
        self.note_networks_before().await?;
        self.phase("recover");
        self.recover_all().await?;
        self.phase("networks");
        self.place_vifs().await?;
        self.phase("start");
        self.start_all().await?;
        Ok(self.report(None))
    }

    /// A test's clean-up, from the journal (a recovery left in flight by a stopped run
    /// settled first): recovered VMs (with their snapshots, VBDs and
    /// VIFs, never their disks) and vApps destroyed, DR tasks destroyed, introduced SRs
    /// forgotten, created networks removed, fixes unwound.
    pub async fn cleanup(&mut self) -> Result<RunReport, RunError> {
        self.phase("cleanup");
        // a recovery the run was stopped in (dropped while its call was in flight) may have
        // happened: settled first, so that what it brought back is removed too
        self.settle_in_flight().await?;
        cleanup::cleanup(
            &self.session,
            &mut self.journal,
            self.options.journal_path.as_deref(),
            &mut self.recorder,
        )
        .await?;
        Ok(self.report(None))
    }
}
