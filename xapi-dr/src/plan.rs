//! Planning a failover, failback or test failover: state in, plan out, no IO.
//!
//! [`plan`] takes the [`Reconciliation`] of the copies found, the target pool's state (read once,
//! in bulk, by the caller), the source pool's power states when it is reachable, and the
//! user's [`PlanRequest`]. It returns a [`Plan`]: the pre-checks (each a problem that blocks or a
//! warning, with a proposed fix and the unwind of that fix), the SRs to introduce, the vApps and
//! VMs to recover and from which copy, the network mapping, the start sequence, and for a test
//! the clean-up. A plan serialises to JSON and reads back, so it can be reviewed, edited and fed
//! to a run.
//!
//! The pre-checks are XenCenter's DR wizard's (reference: metadata-vdi §12.4: licence, role, HA
//! for a test, power state in the source pool, existing vApps and VMs, storage) plus what the
//! wizard misses: cross-pool conflicts from reconciliation, MAC and name collisions with the
//! target's VMs, host memory for the VMs to start, networks that would be created, and the
//! reminder that storage mirroring must be halted before recovered VMs start.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use xapi_core::api::VmPowerState;

use crate::metadata::{NetworkSummary, VmSummary};
use crate::reconcile::{CopyId, Outcome, Reconciliation, VappDecision, VmDecision};
use crate::source::MetadataCopy;

/// Which recovery this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Bring the primary's VMs up on the DR pool; the primary is lost or being left.
    Failover,
    /// Bring them back from the DR pool's metadata into the primary.
    Failback,
    /// Recover into the DR pool, check, and clean everything up: production is untouched.
    TestFailover,
}

/// What to do with the recovered VMs' power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerChoice {
    /// Start those that were running (or paused) in the metadata; leave the rest halted.
    AsRecorded,
    /// Start every recovered VM.
    StartAll,
    /// Start every recovered VM paused (the default of a test failover).
    StartPaused,
    /// Start nothing.
    LeaveHalted,
}

/// Which VMs and vApps to recover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", content = "values", rename_all = "snake_case")]
pub enum Selection {
    /// Everything the reconciliation can recover.
    All,
    /// These vApps (UUIDs or names) with their members.
    Vapps(Vec<String>),
    /// These standalone VMs (UUIDs or names).
    Vms(Vec<String>),
    /// Standalone VMs with any of these tags, and vApps with a member that has one.
    Tags(Vec<String>),
    /// These vApps and standalone VMs (UUIDs or names), as ticked in XenCenter's tree.
    Named(Vec<String>),
}

/// What the user asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRequest {
    /// Failover, failback or test failover.
    pub mode: Mode,
    /// What to recover.
    pub selection: Selection,
    /// Power after recovery.
    pub power: PowerChoice,
    /// Source network UUID -> target network UUID. Unmapped networks are matched as xapi's
    /// import does: by name, then by bridge, else created.
    pub network_map: BTreeMap<String, String>,
    /// For a test failover: put every recovered VIF on a network created for the test and
    /// removed at clean-up, so recovered VMs cannot clash with production.
    pub isolate_test_network: bool,
}

impl PlanRequest {
    /// A request with the usual defaults for `mode`: everything, as recorded (start paused for
    /// a test, on an isolated network).
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            selection: Selection::All,
            power: if mode == Mode::TestFailover {
                PowerChoice::StartPaused
            } else {
                PowerChoice::AsRecorded
            },
            network_map: BTreeMap::new(),
            isolate_test_network: mode == Mode::TestFailover,
        }
    }
}

/// A host of the target pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetHost {
    /// UUID.
    pub uuid: String,
    /// Name.
    pub name_label: String,
    /// Memory free for guests, in bytes.
    pub memory_free: i64,
}

/// An SR of the target pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSr {
    /// UUID (recovery finds SRs by UUID).
    pub uuid: String,
    /// Name.
    pub name_label: String,
    /// Whether a PBD of it is plugged.
    pub attached: bool,
}

/// A network of the target pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetNetwork {
    /// UUID.
    pub uuid: String,
    /// Name.
    pub name_label: String,
    /// Bridge in dom0.
    pub bridge: String,
}

/// A VM of the target pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetPoolVm {
    /// UUID.
    pub uuid: String,
    /// Name.
    pub name_label: String,
    /// MAC addresses of its VIFs.
    pub macs: Vec<String>,
    /// `VM.version`: how many times it was recovered (the newest-wins key).
    #[serde(default)]
    pub version: i64,
    /// Power state.
    #[serde(default = "halted")]
    pub power_state: VmPowerState,
}

fn halted() -> VmPowerState {
    VmPowerState::Halted
}

/// A vApp of the target pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetVapp {
    /// UUID.
    pub uuid: String,
    /// Whether any member runs.
    pub running: bool,
}

/// The target pool, read once in bulk by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetPool {
    /// UUID.
    pub uuid: String,
    /// Name (or the master's name).
    pub name_label: String,
    /// Whether the pool's licence forbids DR (`restrict_dr` in the host's licence params).
    pub dr_restricted: bool,
    /// The caller's roles, when the pool reports them (`session.get_rbac_permissions` or the
    /// subject's roles); `None` when unknown (a local root session may do everything).
    pub caller_roles: Option<Vec<String>>,
    /// Whether HA is on.
    pub ha_enabled: bool,
    /// HA's heartbeat SRs (to turn it back on after a test).
    pub ha_heartbeat_srs: Vec<String>,
    /// HA's `ha_host_failures_to_tolerate`.
    pub ha_host_failures_to_tolerate: i64,
    /// Hosts.
    pub hosts: Vec<TargetHost>,
    /// SRs.
    pub srs: Vec<TargetSr>,
    /// Networks.
    pub networks: Vec<TargetNetwork>,
    /// VMs (not templates or snapshots).
    pub vms: Vec<TargetPoolVm>,
    /// vApps.
    pub vapps: Vec<TargetVapp>,
}

impl TargetPool {
    /// The part of the pool that reconciliation compares copies against.
    pub fn reconcile_state(&self) -> crate::reconcile::TargetState {
        crate::reconcile::TargetState {
            vms: self
                .vms
                .iter()
                .map(|vm| crate::reconcile::TargetVm {
                    uuid: vm.uuid.clone(),
                    version: vm.version,
                    power_state: vm.power_state.clone(),
                })
                .collect(),
            vapp_uuids: self.vapps.iter().map(|a| a.uuid.clone()).collect(),
        }
    }
}

/// The source pool's power states, when it can still be reached (failover and failback).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePool {
    /// UUIDs of the VMs running, paused or suspended there.
    pub live_vms: BTreeSet<String>,
    /// UUIDs of the vApps with a live member there.
    pub live_vapps: BTreeSet<String>,
}

/// Which pre-check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckKind {
    /// The target pool's licence allows DR.
    DrLicence,
    /// The caller is pool-operator or higher.
    CallerRole,
    /// Test failover: HA is off on the target.
    HaDisabledForTest,
    /// Failover and failback: nothing selected runs in the reachable source pool.
    NotRunningInSource,
    /// vApps and VMs with the same UUID in the target: newer or running ones block.
    ExistingInTarget,
    /// Every SR the VMs' disks need is in the target and attached.
    StorageAvailable,
    /// The copies agree (or a choice was made) for every selected VM.
    NoCrossPoolConflict,
    /// No recovered MAC address is in use by another VM of the target.
    NoMacCollision,
    /// No recovered VM takes a name another VM of the target has.
    NoNameCollision,
    /// The target's hosts have the memory for the VMs to be started.
    HostMemory,
    /// The networks that would be created.
    NetworksCreated,
    /// Storage mirroring towards the target must be halted before recovered VMs start.
    StorageMirroringHalted,
}

/// How bad a check's finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Nothing found.
    Passed,
    /// Worth knowing; does not block.
    Warning,
    /// Blocks the run until fixed.
    Problem,
}

/// A change that resolves a problem (or undoes such a change afterwards).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Fix {
    /// `pool.disable_ha` on the target.
    DisableHa,
    /// `pool.enable_ha` with these heartbeat SRs, then set failures to tolerate.
    EnableHa {
        /// Heartbeat SR UUIDs.
        heartbeat_srs: Vec<String>,
        /// `ha_host_failures_to_tolerate`.
        failures_to_tolerate: i64,
    },
    /// Shut a VM down cleanly in the source pool (hard if clean is not allowed).
    ShutDownInSource {
        /// VM UUID.
        vm: String,
    },
    /// Shut a vApp down in the source pool.
    ShutDownVappInSource {
        /// vApp UUID.
        vapp: String,
    },
    /// Hard shutdown of a VM in the target pool.
    HardShutDownInTarget {
        /// VM UUID.
        vm: String,
    },
    /// Destroy a VM in the target pool with its VBDs, VIFs and snapshots, keeping its VDIs.
    DestroyInTarget {
        /// VM UUID.
        vm: String,
    },
    /// Introduce an SR from mirrored storage with `DR_task.create` (the user gives the device
    /// configuration: target IQN and LUN, or the FC SCSI id).
    IntroduceSr {
        /// SR UUID.
        sr: String,
        /// SM type (`lvmoiscsi` or `lvmohba`).
        sr_type: String,
    },
    /// Forget an SR introduced for the recovery (its data stays on the LUN).
    ForgetSr {
        /// SR UUID.
        sr: String,
    },
    /// Nothing can be done automatically: what a person must do.
    Manual {
        /// The instruction.
        instruction: String,
    },
}

/// One pre-check's finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Which check.
    pub kind: CheckKind,
    /// Passed, warning or problem.
    pub severity: Severity,
    /// What it is about (a VM or vApp UUID, an SR UUID, the pool).
    pub subject: String,
    /// The finding in words.
    pub message: String,
    /// A fix that resolves it, when there is one.
    pub fix: Option<Fix>,
    /// The change that undoes the fix at the end (clean-up of a test, or the wizard's unwind).
    pub unwind: Option<Fix>,
}

impl Check {
    fn passed(kind: CheckKind, subject: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            severity: Severity::Passed,
            subject: subject.into(),
            message: message.into(),
            fix: None,
            unwind: None,
        }
    }

    fn finding(
        kind: CheckKind,
        severity: Severity,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            severity,
            subject: subject.into(),
            message: message.into(),
            fix: None,
            unwind: None,
        }
    }

    fn with_fix(mut self, fix: Fix, unwind: Option<Fix>) -> Self {
        self.fix = Some(fix);
        self.unwind = unwind;
        self
    }
}

/// A VM the run recovers (standalone, or a member of a planned vApp).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedVm {
    /// UUID.
    pub uuid: String,
    /// Name.
    pub name_label: String,
    /// The copy of metadata it comes from.
    pub copy: CopyId,
    /// Recover, or replace an older halted copy.
    pub outcome: Outcome,
    /// The vApp it is recovered with, if any (`VM.recover` refuses vApp members).
    pub vapp: Option<String>,
    /// Its memory, for the host-memory check.
    pub memory_static_max: i64,
    /// `VM.version` in the copy (a recovery writes one more; a run that stopped while
    /// recovering it checks for that).
    pub version: i64,
    /// Its VIFs: (device, source network UUID), so the run puts each where the network
    /// mapping says.
    pub vif_networks: Vec<(String, String)>,
}

/// A vApp the run recovers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedVapp {
    /// UUID.
    pub uuid: String,
    /// Name.
    pub name_label: String,
    /// The copy of metadata it comes from.
    pub copy: CopyId,
    /// Recover, or replace the vApp of the same UUID.
    pub outcome: Outcome,
    /// Member VM UUIDs.
    pub vms: Vec<String>,
}

/// Where a source network's VIFs go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum NetworkTarget {
    /// An existing network of the target.
    Existing {
        /// Its UUID.
        uuid: String,
        /// `map`, `name` or `bridge`: how it was matched.
        matched_by: String,
    },
    /// A network xapi's import creates (no match by name or bridge).
    Created,
    /// The test's isolated network.
    Isolated,
}

/// One source network and where its VIFs go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkMapping {
    /// The source network.
    pub source: NetworkSummary,
    /// Where it goes.
    pub target: NetworkTarget,
}

/// One step of the start sequence. xapi sleeps a VM's `start_delay` inside `VM.start` (and
/// inside each order group of `VM_appliance.start`), so the run never sleeps it again; the
/// delays are here to show and to check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "start", rename_all = "snake_case")]
pub enum StartStep {
    /// `VM.start(vm, paused, false)`.
    Vm {
        /// UUID.
        uuid: String,
        /// Name.
        name_label: String,
        /// Start paused.
        paused: bool,
        /// The delay xapi sleeps after starting it, in seconds.
        start_delay: i64,
    },
    /// `VM_appliance.start(vapp, paused)`: order groups ascending, each waiting for its
    /// longest `start_delay`.
    Vapp {
        /// UUID.
        uuid: String,
        /// Name.
        name_label: String,
        /// Start paused.
        paused: bool,
        /// The order groups: (order, [(VM UUID, start delay)]).
        groups: Vec<(i64, Vec<(String, i64)>)>,
    },
}

/// One step of a test failover's clean-up, in the order the run takes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CleanupStep {
    /// Hard shutdown and destroy the recovered VMs with their VBDs, VIFs and snapshots, never
    /// their VDIs.
    DestroyVms {
        /// VM UUIDs.
        vms: Vec<String>,
    },
    /// Destroy the recovered vApps.
    DestroyVapps {
        /// vApp UUIDs.
        vapps: Vec<String>,
    },
    /// `DR_task.destroy` for every DR task the run created (xapi forgets their SRs).
    DestroyDrTasks,
    /// Forget SRs introduced by fixes.
    ForgetSrs {
        /// SR UUIDs.
        srs: Vec<String>,
    },
    /// Remove the isolated test network.
    RemoveIsolatedNetwork,
    /// Undo the fixes applied before the run, in reverse order.
    UnwindFixes,
}

/// A plan: what a run will do, and whether it may.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Failover, failback or test.
    pub mode: Mode,
    /// The target pool's UUID.
    pub target_pool: String,
    /// The request it was made from.
    pub request: PlanRequest,
    /// Every pre-check, passed or not.
    pub checks: Vec<Check>,
    /// SR UUIDs to introduce (the fixes of missing mirrored SRs).
    pub srs_to_introduce: Vec<String>,
    /// vApps to recover, in start order.
    pub vapps: Vec<PlannedVapp>,
    /// VMs to recover: standalone ones and vApp members.
    pub vms: Vec<PlannedVm>,
    /// Where every source network used by the recovered VMs goes.
    pub networks: Vec<NetworkMapping>,
    /// The start sequence: standalone VMs first (by `order`, then name), then vApps.
    pub start: Vec<StartStep>,
    /// For a test failover, the clean-up steps.
    pub cleanup: Vec<CleanupStep>,
}

impl Plan {
    /// The problems that block the run.
    pub fn problems(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| c.severity == Severity::Problem)
    }

    /// Whether a problem blocks the run.
    pub fn is_blocked(&self) -> bool {
        self.problems().next().is_some()
    }

    /// The plan as JSON, for review and editing.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a plan is plain data")
    }

    /// A plan read back from JSON (as written by [`Plan::to_json`], maybe edited).
    pub fn from_json(text: &str) -> Result<Self, PlanError> {
        serde_json::from_str(text).map_err(|err| PlanError::BadPlanFile {
            line: err.line(),
            column: err.column(),
            message: err.to_string(),
        })
    }
}

/// A request that cannot be planned, or a plan file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A test failover starts VMs paused or not at all, so they cannot reach production.
    #[error("a test failover starts VMs paused or leaves them halted, not {0:?}")]
    TestMustNotStartRunning(PowerChoice),
    /// A selected name or UUID matches nothing in the metadata.
    #[error("selection: no {kind} called {name:?} in the metadata")]
    UnknownSelection {
        /// `vApp` or `VM`.
        kind: &'static str,
        /// What was asked for.
        name: String,
    },
    /// A VM selected alone is a vApp member: xapi recovers vApps whole.
    #[error("selection: VM {vm} is part of vApp {vapp}; select the vApp")]
    MemberOfVapp {
        /// The VM.
        vm: String,
        /// Its vApp.
        vapp: String,
    },
    /// A plan file does not parse.
    #[error("plan file, line {line} column {column}: {message}")]
    BadPlanFile {
        /// Line.
        line: usize,
        /// Column.
        column: usize,
        /// The parser's message.
        message: String,
    },
}

/// The roles that may run a recovery (`DR_task.create` needs pool-operator).
const RECOVERY_ROLES: &[&str] = &["pool-admin", "pool-operator"];

/// SM types DR can introduce from mirrored storage.
const MIRRORED_SR_TYPES: &[&str] = &["lvmoiscsi", "lvmohba"];

/// Everything [`plan`] reads.
#[derive(Debug, Clone, Copy)]
pub struct PlanInputs<'a> {
    /// The copies reconciled (for the VMs' disks, networks and memory).
    pub copies: &'a [MetadataCopy],
    /// Their reconciliation against the target.
    pub reconciliation: &'a Reconciliation,
    /// The target pool.
    pub target: &'a TargetPool,
    /// The source pool, when reachable.
    pub source: Option<&'a SourcePool>,
}

/// Compute the plan for `request`.
pub fn plan(inputs: PlanInputs<'_>, request: &PlanRequest) -> Result<Plan, PlanError> {
    if request.mode == Mode::TestFailover
        && matches!(
            request.power,
            PowerChoice::AsRecorded | PowerChoice::StartAll
        )
    {
        return Err(PlanError::TestMustNotStartRunning(request.power));
    }
    let summaries = vm_summaries(inputs.copies, inputs.reconciliation);
    let (vapps, standalone) = select(inputs.reconciliation, &summaries, &request.selection)?;

    let mut checks = Vec::new();
    check_licence_and_role(inputs.target, &mut checks);
    check_ha(request.mode, inputs.target, &mut checks);
    check_source(
        request.mode,
        inputs.source,
        &vapps,
        &standalone,
        &mut checks,
    );
    check_existing(inputs.reconciliation, &vapps, &standalone, &mut checks);
    check_conflicts(inputs.reconciliation, &mut checks);

    let mut planned_vapps = Vec::new();
    let mut planned_vms = Vec::new();
    for vapp in &vapps {
        let Some(copy) = vapp.chosen.clone() else {
            continue;
        };
        if vapp.outcome.is_recovered() {
            planned_vapps.push(PlannedVapp {
                uuid: vapp.uuid.clone(),
                name_label: vapp.name_label.clone(),
                copy,
                outcome: vapp.outcome,
                vms: vapp.vms.clone(),
            });
            for member in &vapp.vms {
                if let Some((decision, summary)) = summaries.get(member.as_str()) {
                    planned_vms.push(planned_vm(decision, summary, Some(&vapp.uuid)));
                }
            }
        }
    }
    for decision in &standalone {
        if decision.outcome.is_recovered()
            && let Some((_, summary)) = summaries.get(decision.uuid.as_str())
        {
            planned_vms.push(planned_vm(decision, summary, None));
        }
    }
    let recovered: Vec<&VmSummary> = planned_vms
        .iter()
        .filter_map(|vm| summaries.get(vm.uuid.as_str()).map(|(_, s)| *s))
        .collect();

    let srs_to_introduce = check_storage(request.mode, inputs, &recovered, &mut checks);
    check_collisions(request, inputs.target, &recovered, &mut checks);
    let to_start = vms_to_start(request.power, &recovered);
    check_memory(inputs.target, &to_start, &mut checks);
    let networks = map_networks(
        request,
        inputs.copies,
        inputs.target,
        &recovered,
        &mut checks,
    );
    check_mirroring(request.mode, &mut checks);

    let start = start_sequence(
        request.power,
        &planned_vapps,
        &planned_vms,
        &summaries,
        &to_start,
    );
    let cleanup = if request.mode == Mode::TestFailover {
        test_cleanup(request, &planned_vapps, &planned_vms, &srs_to_introduce)
    } else {
        Vec::new()
    };
    Ok(Plan {
        mode: request.mode,
        target_pool: inputs.target.uuid.clone(),
        request: request.clone(),
        checks,
        srs_to_introduce,
        vapps: planned_vapps,
        vms: planned_vms,
        networks,
        start,
        cleanup,
    })
}

/// The usual two steps in one: reconcile `copies` against `target` (what `recovered` lists is
/// done, from a run's journal; `preferences` settle ties across pools), then plan `request`.
/// Returns both, since the reconciliation explains the plan's choices.
pub fn reconcile_and_plan(
    copies: &[MetadataCopy],
    target: &TargetPool,
    source: Option<&SourcePool>,
    recovered: &crate::reconcile::Recovered,
    preferences: &crate::reconcile::Preferences,
    request: &PlanRequest,
) -> Result<(Reconciliation, Plan), PlanError> {
    let reconciliation =
        crate::reconcile::reconcile(copies, &target.reconcile_state(), recovered, preferences);
    let plan = plan(
        PlanInputs {
            copies,
            reconciliation: &reconciliation,
            target,
            source,
        },
        request,
    )?;
    Ok((reconciliation, plan))
}

/// Every VM decision with the summary of the copy it was chosen from.
fn vm_summaries<'a>(
    copies: &'a [MetadataCopy],
    reconciliation: &'a Reconciliation,
) -> HashMap<&'a str, (&'a VmDecision, &'a VmSummary)> {
    let mut by_copy: HashMap<(&str, &crate::source::Origin), &MetadataCopy> = HashMap::new();
    for copy in copies {
        by_copy.insert((copy.pool_uuid(), &copy.origin), copy);
    }
    let mut out = HashMap::new();
    for decision in &reconciliation.vms {
        // A conflict has no chosen copy: its first candidate stands for it in the checks.
        let copy_id = decision
            .chosen
            .as_ref()
            .or_else(|| decision.candidates.first().map(|(c, _)| c));
        let Some(copy_id) = copy_id else { continue };
        let Some(copy) = by_copy.get(&(copy_id.pool_uuid.as_str(), &copy_id.origin)) else {
            continue;
        };
        if let Some(summary) = copy.metadata.vms.iter().find(|v| v.uuid == decision.uuid) {
            out.insert(decision.uuid.as_str(), (decision, summary));
        }
    }
    out
}

fn planned_vm(decision: &VmDecision, summary: &VmSummary, vapp: Option<&String>) -> PlannedVm {
    PlannedVm {
        uuid: decision.uuid.clone(),
        name_label: decision.name_label.clone(),
        copy: decision
            .chosen
            .clone()
            .expect("only decisions with a chosen copy are recovered"),
        outcome: decision.outcome,
        vapp: vapp.cloned(),
        memory_static_max: summary.memory_static_max,
        version: summary.version,
        vif_networks: summary
            .vifs
            .iter()
            .map(|vif| (vif.device.clone(), vif.network_uuid.clone()))
            .collect(),
    }
}

/// The selected vApps and standalone VMs.
fn select<'a>(
    reconciliation: &'a Reconciliation,
    summaries: &HashMap<&str, (&VmDecision, &VmSummary)>,
    selection: &Selection,
) -> Result<(Vec<&'a VappDecision>, Vec<&'a VmDecision>), PlanError> {
    let vapp_of: HashMap<&str, &str> = reconciliation
        .vapps
        .iter()
        .flat_map(|a| a.vms.iter().map(move |vm| (vm.as_str(), a.uuid.as_str())))
        .collect();
    let standalone = |d: &&VmDecision| !vapp_of.contains_key(d.uuid.as_str());
    let matches =
        |wanted: &[String], uuid: &str, name: &str| wanted.iter().any(|w| w == uuid || w == name);
    match selection {
        Selection::All => Ok((
            reconciliation.vapps.iter().collect(),
            reconciliation.vms.iter().filter(standalone).collect(),
        )),
        Selection::Vapps(wanted) => {
            for name in wanted {
                if !reconciliation
                    .vapps
                    .iter()
                    .any(|a| a.uuid == *name || a.name_label == *name)
                {
                    return Err(PlanError::UnknownSelection {
                        kind: "vApp",
                        name: name.clone(),
                    });
                }
            }
            Ok((
                reconciliation
                    .vapps
                    .iter()
                    .filter(|a| matches(wanted, &a.uuid, &a.name_label))
                    .collect(),
                Vec::new(),
            ))
        }
        Selection::Vms(wanted) => {
            let chosen = wanted
                .iter()
                .map(|name| standalone_vm(reconciliation, &vapp_of, name, "VM"))
                .collect::<Result<_, _>>()?;
            Ok((Vec::new(), chosen))
        }
        Selection::Named(wanted) => {
            let mut apps = Vec::new();
            let mut chosen = Vec::new();
            for name in wanted {
                if let Some(app) = reconciliation
                    .vapps
                    .iter()
                    .find(|a| a.uuid == *name || a.name_label == *name)
                {
                    apps.push(app);
                    continue;
                }
                chosen.push(standalone_vm(reconciliation, &vapp_of, name, "vApp or VM")?);
            }
            Ok((apps, chosen))
        }
        Selection::Tags(tags) => {
            let tagged = |uuid: &str| {
                summaries
                    .get(uuid)
                    .is_some_and(|(_, s)| s.tags.iter().any(|t| tags.contains(t)))
            };
            Ok((
                reconciliation
                    .vapps
                    .iter()
                    .filter(|a| a.vms.iter().any(|vm| tagged(vm)))
                    .collect(),
                reconciliation
                    .vms
                    .iter()
                    .filter(standalone)
                    .filter(|d| tagged(&d.uuid))
                    .collect(),
            ))
        }
    }
}

/// Records that a check passed when it added no finding since `before`.
/// The standalone VM a selection names (by UUID or name); a vApp member is refused, since
/// xapi recovers vApps whole.
fn standalone_vm<'a>(
    reconciliation: &'a Reconciliation,
    vapp_of: &HashMap<&str, &str>,
    name: &str,
    kind: &'static str,
) -> Result<&'a VmDecision, PlanError> {
    let found = reconciliation
        .vms
        .iter()
        .find(|d| d.uuid == name || d.name_label == name)
        .ok_or_else(|| PlanError::UnknownSelection {
            kind,
            name: name.to_owned(),
        })?;
    if let Some(vapp) = vapp_of.get(found.uuid.as_str()) {
        return Err(PlanError::MemberOfVapp {
            vm: found.uuid.clone(),
            vapp: (*vapp).to_owned(),
        });
    }
    Ok(found)
}

fn pass_if_quiet(
    checks: &mut Vec<Check>,
    before: usize,
    kind: CheckKind,
    subject: impl Into<String>,
    message: impl Into<String>,
) {
    if checks.len() == before {
        checks.push(Check::passed(kind, subject, message));
    }
}

fn check_licence_and_role(target: &TargetPool, checks: &mut Vec<Check>) {
    checks.push(if target.dr_restricted {
        Check::finding(
            CheckKind::DrLicence,
            Severity::Problem,
            &target.uuid,
            "the target pool's licence does not include disaster recovery",
        )
        .with_fix(
            Fix::Manual {
                instruction: "apply a licence with disaster recovery to the target pool".into(),
            },
            None,
        )
    } else {
        Check::passed(CheckKind::DrLicence, &target.uuid, "the licence allows DR")
    });
    checks.push(match &target.caller_roles {
        Some(roles) if !roles.iter().any(|r| RECOVERY_ROLES.contains(&r.as_str())) => {
            Check::finding(
                CheckKind::CallerRole,
                Severity::Problem,
                &target.uuid,
                format!(
                    "the caller's roles ({}) do not include pool-operator or pool-admin",
                    roles.join(", ")
                ),
            )
            .with_fix(
                Fix::Manual {
                    instruction: "log in as a user with the pool-operator role or higher".into(),
                },
                None,
            )
        }
        _ => Check::passed(
            CheckKind::CallerRole,
            &target.uuid,
            "the caller may run a recovery",
        ),
    });
}

fn check_ha(mode: Mode, target: &TargetPool, checks: &mut Vec<Check>) {
    if mode != Mode::TestFailover {
        return;
    }
    checks.push(if target.ha_enabled {
        Check::finding(
            CheckKind::HaDisabledForTest,
            Severity::Problem,
            &target.uuid,
            "HA is enabled on the target: it would restart test VMs on its own",
        )
        .with_fix(
            Fix::DisableHa,
            Some(Fix::EnableHa {
                heartbeat_srs: target.ha_heartbeat_srs.clone(),
                failures_to_tolerate: target.ha_host_failures_to_tolerate,
            }),
        )
    } else {
        Check::passed(
            CheckKind::HaDisabledForTest,
            &target.uuid,
            "HA is off on the target",
        )
    });
}

fn check_source(
    mode: Mode,
    source: Option<&SourcePool>,
    vapps: &[&VappDecision],
    standalone: &[&VmDecision],
    checks: &mut Vec<Check>,
) {
    if mode == Mode::TestFailover {
        return;
    }
    let Some(source) = source else {
        checks.push(Check::passed(
            CheckKind::NotRunningInSource,
            "source",
            "the source pool cannot be reached: nothing runs there",
        ));
        return;
    };
    let before = checks.len();
    for vapp in vapps {
        if source.live_vapps.contains(&vapp.uuid) {
            checks.push(
                Check::finding(
                    CheckKind::NotRunningInSource,
                    Severity::Problem,
                    &vapp.uuid,
                    format!("vApp {} runs in the source pool", vapp.name_label),
                )
                .with_fix(
                    Fix::ShutDownVappInSource {
                        vapp: vapp.uuid.clone(),
                    },
                    None,
                ),
            );
        }
    }
    for vm in standalone {
        if source.live_vms.contains(&vm.uuid) {
            checks.push(
                Check::finding(
                    CheckKind::NotRunningInSource,
                    Severity::Problem,
                    &vm.uuid,
                    format!(
                        "VM {} is running, paused or suspended in the source pool",
                        vm.name_label
                    ),
                )
                .with_fix(
                    Fix::ShutDownInSource {
                        vm: vm.uuid.clone(),
                    },
                    None,
                ),
            );
        }
    }
    pass_if_quiet(
        checks,
        before,
        CheckKind::NotRunningInSource,
        "source",
        "nothing selected runs in the source pool",
    );
}

fn check_existing(
    reconciliation: &Reconciliation,
    vapps: &[&VappDecision],
    standalone: &[&VmDecision],
    checks: &mut Vec<Check>,
) {
    let before = checks.len();
    let member_decisions: HashMap<&str, &VmDecision> = reconciliation
        .vms
        .iter()
        .map(|d| (d.uuid.as_str(), d))
        .collect();
    let mut vm_checks: Vec<&VmDecision> = standalone.to_vec();
    for vapp in vapps {
        if vapp.outcome == Outcome::Replace {
            checks.push(Check::finding(
                CheckKind::ExistingInTarget,
                Severity::Warning,
                &vapp.uuid,
                format!(
                    "vApp {} already exists in the target: it will be replaced",
                    vapp.name_label
                ),
            ));
        }
        vm_checks.extend(
            vapp.vms
                .iter()
                .filter_map(|vm| member_decisions.get(vm.as_str())),
        );
    }
    for vm in vm_checks {
        let Some(last) = vm.reasons.last() else {
            continue;
        };
        use crate::reconcile::ReasonCode as R;
        let finding = match last.code {
            R::NewerInTarget => Some(
                Check::finding(
                    CheckKind::ExistingInTarget,
                    Severity::Problem,
                    &vm.uuid,
                    format!("VM {}: {}", vm.name_label, last.message),
                )
                .with_fix(
                    Fix::DestroyInTarget {
                        vm: vm.uuid.clone(),
                    },
                    None,
                ),
            ),
            R::NotHaltedInTarget => Some(
                Check::finding(
                    CheckKind::ExistingInTarget,
                    Severity::Problem,
                    &vm.uuid,
                    format!("VM {}: {}", vm.name_label, last.message),
                )
                .with_fix(
                    Fix::HardShutDownInTarget {
                        vm: vm.uuid.clone(),
                    },
                    None,
                ),
            ),
            R::OlderHaltedInTarget => Some(Check::finding(
                CheckKind::ExistingInTarget,
                Severity::Warning,
                &vm.uuid,
                format!("VM {}: {}", vm.name_label, last.message),
            )),
            _ => None,
        };
        checks.extend(finding);
    }
    pass_if_quiet(
        checks,
        before,
        CheckKind::ExistingInTarget,
        "target",
        "no selected vApp or VM exists in the target",
    );
}

fn check_conflicts(reconciliation: &Reconciliation, checks: &mut Vec<Check>) {
    let before = checks.len();
    for pool in reconciliation.pools.iter().filter(|p| p.chosen.is_none()) {
        checks.push(
            Check::finding(
                CheckKind::NoCrossPoolConflict,
                Severity::Problem,
                &pool.pool_uuid,
                format!(
                    "copies of pool {} have the same generation and different content",
                    pool.pool_uuid
                ),
            )
            .with_fix(
                Fix::Manual {
                    instruction: "leave out the copies that are stale (a broken mirror)".into(),
                },
                None,
            ),
        );
    }
    for vm in reconciliation.conflicts() {
        let message = vm
            .reasons
            .first()
            .map_or_else(String::new, |r| r.message.clone());
        checks.push(
            Check::finding(
                CheckKind::NoCrossPoolConflict,
                Severity::Problem,
                &vm.uuid,
                format!("VM {}: {message}", vm.name_label),
            )
            .with_fix(
                Fix::Manual {
                    instruction: "choose the pool whose copy to use (per VM or for all)".into(),
                },
                None,
            ),
        );
    }
    pass_if_quiet(
        checks,
        before,
        CheckKind::NoCrossPoolConflict,
        "copies",
        "every copy and candidate agrees, or a choice was made",
    );
}

/// The storage check; returns the SR UUIDs to introduce.
fn check_storage(
    mode: Mode,
    inputs: PlanInputs<'_>,
    recovered: &[&VmSummary],
    checks: &mut Vec<Check>,
) -> Vec<String> {
    let target_srs: HashMap<&str, &TargetSr> = inputs
        .target
        .srs
        .iter()
        .map(|sr| (sr.uuid.as_str(), sr))
        .collect();
    let source_srs: HashMap<&str, &crate::metadata::inspect::SrSummary> = inputs
        .copies
        .iter()
        .flat_map(|c| c.metadata.srs.iter())
        .map(|sr| (sr.uuid.as_str(), sr))
        .collect();
    let mut needed: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for vm in recovered {
        for disk in &vm.disks {
            let is_iso = source_srs
                .get(disk.sr_uuid.as_str())
                .is_some_and(|sr| sr.content_type == "iso");
            if disk.vbd_type != xapi_core::api::VbdType::Cd && !is_iso && !disk.sr_uuid.is_empty() {
                let users = needed.entry(&disk.sr_uuid).or_default();
                if users.last() != Some(&vm.name_label.as_str()) {
                    users.push(&vm.name_label);
                }
            }
        }
    }
    let before = checks.len();
    let mut introduce = Vec::new();
    for (sr_uuid, users) in needed {
        if target_srs.get(sr_uuid).is_some_and(|sr| sr.attached) {
            continue;
        }
        let source = source_srs.get(sr_uuid);
        let name = source.map_or(sr_uuid, |s| s.name_label.as_str());
        let users = users.join(", ");
        let check = match source {
            Some(sr) if !sr.shared => Check::finding(
                CheckKind::StorageAvailable,
                Severity::Problem,
                sr_uuid,
                format!("SR {name} is local storage of a source host; {users} cannot be recovered"),
            ),
            Some(sr) if MIRRORED_SR_TYPES.contains(&sr.sr_type.as_str()) => {
                introduce.push(sr_uuid.to_owned());
                Check::finding(
                    CheckKind::StorageAvailable,
                    Severity::Problem,
                    sr_uuid,
                    format!(
                        "SR {name} ({}) is not attached to the target; needed by {users}",
                        sr.sr_type
                    ),
                )
                .with_fix(
                    Fix::IntroduceSr {
                        sr: sr_uuid.to_owned(),
                        sr_type: sr.sr_type.clone(),
                    },
                    // A test gives the SR back; a failover keeps it.
                    (mode == Mode::TestFailover).then(|| Fix::ForgetSr {
                        sr: sr_uuid.to_owned(),
                    }),
                )
            }
            _ => Check::finding(
                CheckKind::StorageAvailable,
                Severity::Problem,
                sr_uuid,
                format!("SR {name} is not attached to the target; needed by {users}"),
            )
            .with_fix(
                Fix::Manual {
                    instruction: format!("create or attach SR {sr_uuid} in the target pool"),
                },
                None,
            ),
        };
        checks.push(check);
    }
    pass_if_quiet(
        checks,
        before,
        CheckKind::StorageAvailable,
        "target",
        "every SR the recovered disks need is attached",
    );
    introduce
}

fn check_collisions(
    request: &PlanRequest,
    target: &TargetPool,
    recovered: &[&VmSummary],
    checks: &mut Vec<Check>,
) {
    let recovered_uuids: BTreeSet<&str> = recovered.iter().map(|v| v.uuid.as_str()).collect();
    // Target VMs that the recovery replaces do not collide with their own recovered copy.
    let others: Vec<&TargetPoolVm> = target
        .vms
        .iter()
        .filter(|vm| !recovered_uuids.contains(vm.uuid.as_str()))
        .collect();
    let mac_owner: HashMap<String, &TargetPoolVm> = others
        .iter()
        .flat_map(|vm| vm.macs.iter().map(move |m| (m.to_ascii_lowercase(), *vm)))
        .collect();
    let isolated = request.mode == Mode::TestFailover && request.isolate_test_network;
    let before = checks.len();
    for vm in recovered {
        for vif in &vm.vifs {
            if let Some(owner) = mac_owner.get(&vif.mac.to_ascii_lowercase()) {
                checks.push(Check::finding(
                    CheckKind::NoMacCollision,
                    if isolated {
                        Severity::Warning
                    } else {
                        Severity::Problem
                    },
                    &vm.uuid,
                    format!(
                        "VM {} keeps MAC {} which VM {} of the target already uses{}",
                        vm.name_label,
                        vif.mac,
                        owner.name_label,
                        if isolated {
                            " (harmless on the isolated test network)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
    }
    pass_if_quiet(
        checks,
        before,
        CheckKind::NoMacCollision,
        "target",
        "no recovered MAC is in use in the target",
    );
    let names: BTreeSet<&str> = others.iter().map(|vm| vm.name_label.as_str()).collect();
    let before = checks.len();
    for vm in recovered {
        if names.contains(vm.name_label.as_str()) {
            checks.push(Check::finding(
                CheckKind::NoNameCollision,
                Severity::Warning,
                &vm.uuid,
                format!(
                    "another VM of the target is also called {:?}; they differ by UUID only",
                    vm.name_label
                ),
            ));
        }
    }
    pass_if_quiet(
        checks,
        before,
        CheckKind::NoNameCollision,
        "target",
        "no recovered name is taken in the target",
    );
}

/// The recovered VMs that the power choice starts, and whether paused.
fn vms_to_start<'a>(power: PowerChoice, recovered: &[&'a VmSummary]) -> Vec<(&'a VmSummary, bool)> {
    recovered
        .iter()
        .filter_map(|vm| match power {
            PowerChoice::LeaveHalted => None,
            PowerChoice::StartAll => Some((*vm, false)),
            PowerChoice::StartPaused => Some((*vm, true)),
            PowerChoice::AsRecorded => match vm.power_state {
                VmPowerState::Running => Some((*vm, false)),
                VmPowerState::Paused => Some((*vm, true)),
                _ => None,
            },
        })
        .collect()
}

fn check_memory(target: &TargetPool, to_start: &[(&VmSummary, bool)], checks: &mut Vec<Check>) {
    let needed: i64 = to_start.iter().map(|(vm, _)| vm.memory_static_max).sum();
    let free: i64 = target.hosts.iter().map(|h| h.memory_free).sum();
    let largest_host = target
        .hosts
        .iter()
        .map(|h| h.memory_free)
        .max()
        .unwrap_or(0);
    let gib = |bytes: i64| bytes as f64 / f64::from(1u32 << 30);
    let before = checks.len();
    if needed > free {
        checks.push(
            Check::finding(
                CheckKind::HostMemory,
                Severity::Problem,
                &target.uuid,
                format!(
                    "the {} VMs to start need {:.1} GiB; the target's hosts have {:.1} GiB free",
                    to_start.len(),
                    gib(needed),
                    gib(free)
                ),
            )
            .with_fix(
                Fix::Manual {
                    instruction: "start fewer VMs (leave some halted) or free memory on the target"
                        .into(),
                },
                None,
            ),
        );
    }
    for (vm, _) in to_start {
        if vm.memory_static_max > largest_host {
            checks.push(Check::finding(
                CheckKind::HostMemory,
                Severity::Problem,
                &vm.uuid,
                format!(
                    "VM {} needs {:.1} GiB; no host of the target has that much free (largest {:.1} GiB)",
                    vm.name_label,
                    gib(vm.memory_static_max),
                    gib(largest_host)
                ),
            ));
        }
    }
    pass_if_quiet(
        checks,
        before,
        CheckKind::HostMemory,
        &target.uuid,
        format!("{:.1} GiB to start, {:.1} GiB free", gib(needed), gib(free)),
    );
}

fn map_networks(
    request: &PlanRequest,
    copies: &[MetadataCopy],
    target: &TargetPool,
    recovered: &[&VmSummary],
    checks: &mut Vec<Check>,
) -> Vec<NetworkMapping> {
    let used: BTreeSet<&str> = recovered
        .iter()
        .flat_map(|vm| vm.vifs.iter().map(|v| v.network_uuid.as_str()))
        .filter(|uuid| !uuid.is_empty())
        .collect();
    let mut sources: BTreeMap<&str, &NetworkSummary> = BTreeMap::new();
    for copy in copies {
        for network in &copy.metadata.networks {
            if used.contains(network.uuid.as_str()) {
                sources.entry(&network.uuid).or_insert(network);
            }
        }
    }
    let isolated = request.mode == Mode::TestFailover && request.isolate_test_network;
    let mut mappings = Vec::new();
    let before = checks.len();
    for (uuid, network) in sources {
        let target_network = if isolated {
            NetworkTarget::Isolated
        } else if let Some(mapped) = request.network_map.get(uuid) {
            NetworkTarget::Existing {
                uuid: mapped.clone(),
                matched_by: "map".into(),
            }
        } else if let Some(found) = target
            .networks
            .iter()
            .find(|t| !network.name_label.is_empty() && t.name_label == network.name_label)
        {
            NetworkTarget::Existing {
                uuid: found.uuid.clone(),
                matched_by: "name".into(),
            }
        } else if let Some(found) = target
            .networks
            .iter()
            .find(|t| !network.bridge.is_empty() && t.bridge == network.bridge)
        {
            NetworkTarget::Existing {
                uuid: found.uuid.clone(),
                matched_by: "bridge".into(),
            }
        } else {
            checks.push(Check::finding(
                CheckKind::NetworksCreated,
                Severity::Warning,
                uuid,
                format!(
                    "network {:?} (bridge {}) matches no target network by name or bridge: the import creates one, not connected to anything; map it to fix",
                    network.name_label, network.bridge
                ),
            ));
            NetworkTarget::Created
        };
        mappings.push(NetworkMapping {
            source: network.clone(),
            target: target_network,
        });
    }
    pass_if_quiet(
        checks,
        before,
        CheckKind::NetworksCreated,
        "target",
        if isolated {
            "every recovered VIF goes on the isolated test network"
        } else {
            "every source network maps to a network of the target"
        },
    );
    mappings
}

fn check_mirroring(mode: Mode, checks: &mut Vec<Check>) {
    checks.push(if mode == Mode::TestFailover {
        Check::passed(
            CheckKind::StorageMirroringHalted,
            "storage",
            "a test failover reads the mirrored LUNs without taking them over",
        )
    } else {
        Check::finding(
            CheckKind::StorageMirroringHalted,
            Severity::Warning,
            "storage",
            "halt storage mirroring towards the target (and make the mirrored LUNs writable) before the recovered VMs start; this cannot be checked from XAPI",
        )
    });
}

fn start_sequence(
    power: PowerChoice,
    vapps: &[PlannedVapp],
    vms: &[PlannedVm],
    summaries: &HashMap<&str, (&VmDecision, &VmSummary)>,
    to_start: &[(&VmSummary, bool)],
) -> Vec<StartStep> {
    let starting: HashMap<&str, bool> = to_start
        .iter()
        .map(|(vm, paused)| (vm.uuid.as_str(), *paused))
        .collect();
    let mut standalone: Vec<&VmSummary> = vms
        .iter()
        .filter(|vm| vm.vapp.is_none() && starting.contains_key(vm.uuid.as_str()))
        .filter_map(|vm| summaries.get(vm.uuid.as_str()).map(|(_, s)| *s))
        .collect();
    standalone.sort_by(|a, b| {
        a.order
            .cmp(&b.order)
            .then_with(|| a.name_label.cmp(&b.name_label))
            .then_with(|| a.uuid.cmp(&b.uuid))
    });
    let mut steps: Vec<StartStep> = standalone
        .into_iter()
        .map(|vm| StartStep::Vm {
            uuid: vm.uuid.clone(),
            name_label: vm.name_label.clone(),
            paused: starting[vm.uuid.as_str()],
            start_delay: vm.start_delay,
        })
        .collect();
    for vapp in vapps {
        let members: Vec<&VmSummary> = vapp
            .vms
            .iter()
            .filter(|uuid| starting.contains_key(uuid.as_str()))
            .filter_map(|uuid| summaries.get(uuid.as_str()).map(|(_, s)| *s))
            .collect();
        if members.is_empty() {
            continue;
        }
        let mut groups: BTreeMap<i64, Vec<(String, i64)>> = BTreeMap::new();
        for vm in &members {
            groups
                .entry(vm.order)
                .or_default()
                .push((vm.uuid.clone(), vm.start_delay));
        }
        steps.push(StartStep::Vapp {
            uuid: vapp.uuid.clone(),
            name_label: vapp.name_label.clone(),
            paused: power == PowerChoice::StartPaused,
            groups: groups.into_iter().collect(),
        });
    }
    steps
}

fn test_cleanup(
    request: &PlanRequest,
    vapps: &[PlannedVapp],
    vms: &[PlannedVm],
    introduced: &[String],
) -> Vec<CleanupStep> {
    let mut steps = vec![
        CleanupStep::DestroyVms {
            vms: vms.iter().map(|vm| vm.uuid.clone()).collect(),
        },
        CleanupStep::DestroyVapps {
            vapps: vapps.iter().map(|a| a.uuid.clone()).collect(),
        },
        CleanupStep::DestroyDrTasks,
    ];
    if !introduced.is_empty() {
        steps.push(CleanupStep::ForgetSrs {
            srs: introduced.to_vec(),
        });
    }
    if request.isolate_test_network {
        steps.push(CleanupStep::RemoveIsolatedNetwork);
    }
    steps.push(CleanupStep::UnwindFixes);
    steps
}

#[cfg(test)]
mod tests {
    use xapi_core::api::VbdType;

    use super::*;
    use crate::metadata::inspect::{PoolSummary, SrSummary};
    use crate::metadata::{DiskSummary, InspectReport, Source, VappSummary, VifSummary};
    use crate::reconcile::{Preferences, Recovered, TargetState, TargetVm, reconcile};
    use crate::source::Origin;

    const GIB: i64 = 1 << 30;

    fn vm(uuid: &str, name: &str, state: VmPowerState, order: i64, delay: i64) -> VmSummary {
        VmSummary {
            uuid: uuid.into(),
            name_label: name.into(),
            power_state: state,
            vapp: None,
            version: 1,
            order,
            start_delay: delay,
            shutdown_delay: 0,
            memory_static_max: 2 * GIB,
            vcpus_max: 2,
            ha_restart_priority: String::new(),
            disks: vec![
                DiskSummary {
                    userdevice: "0".into(),
                    vbd_type: VbdType::Disk,
                    vdi_uuid: format!("{uuid}-disk"),
                    vdi_name: "disk".into(),
                    virtual_size: 10 * GIB,
                    sr_uuid: "sr-iscsi".into(),
                    sr_name: "Mirrored LUN".into(),
                },
                DiskSummary {
                    userdevice: "3".into(),
                    vbd_type: VbdType::Cd,
                    vdi_uuid: "iso".into(),
                    vdi_name: "tools.iso".into(),
                    virtual_size: 1,
                    sr_uuid: "sr-iso".into(),
                    sr_name: "ISOs".into(),
                },
            ],
            vifs: vec![VifSummary {
                device: "0".into(),
                mac: format!(
                    "aa:00:00:00:{:02x}:{:02x}",
                    uuid.len(),
                    uuid.bytes().map(u32::from).sum::<u32>() % 256
                ),
                network_uuid: "net-prod".into(),
                network_name: "Production".into(),
                network_bridge: "xenbr0".into(),
            }],
            snapshots: 0,
            tags: vec![format!("tag-{name}")],
        }
    }

    /// The primary's metadata: vApp "shop" (db at order 0 with a 20 s delay, web at order 1)
    /// and standalone "mail" (running) and "batch" (halted).
    fn primary() -> MetadataCopy {
        let mut db = vm("vm-db", "db", VmPowerState::Running, 0, 20);
        db.vapp = Some("app-shop".into());
        let mut web = vm("vm-web", "web", VmPowerState::Running, 1, 0);
        web.vapp = Some("app-shop".into());
        let sr = |uuid: &str, sr_type: &str, content: &str, shared: bool| SrSummary {
            uuid: uuid.into(),
            name_label: uuid.into(),
            sr_type: sr_type.into(),
            content_type: content.into(),
            shared,
            required: true,
        };
        MetadataCopy {
            origin: Origin::Vdi {
                vdi_uuid: "meta-1".into(),
                sr_uuid: "sr-iscsi".into(),
            },
            metadata: InspectReport {
                source: Source::XmlDump,
                pool: PoolSummary {
                    uuid: "pool-primary".into(),
                    ..PoolSummary::default()
                },
                generation: 100,
                schema_version: "5.786".into(),
                vms: vec![
                    db,
                    web,
                    vm("vm-mail", "mail", VmPowerState::Running, 2, 5),
                    vm("vm-batch", "batch", VmPowerState::Halted, 1, 0),
                ],
                vapps: vec![VappSummary {
                    uuid: "app-shop".into(),
                    name_label: "shop".into(),
                    vms: vec!["vm-db".into(), "vm-web".into()],
                }],
                srs: vec![
                    sr("sr-iscsi", "lvmoiscsi", "user", true),
                    sr("sr-iso", "iso", "iso", true),
                    sr("sr-local", "lvm", "user", false),
                ],
                networks: vec![NetworkSummary {
                    uuid: "net-prod".into(),
                    name_label: "Production".into(),
                    bridge: "xenbr0".into(),
                    mtu: 1500,
                }],
                other_vm_rows: 0,
                diagnostics: Vec::new(),
            },
        }
    }

    /// The DR pool: the mirrored SR attached, a "Production" network on another bridge, two
    /// hosts with 32 GiB free each, nothing else.
    fn dr_pool() -> TargetPool {
        TargetPool {
            uuid: "pool-dr".into(),
            name_label: "DR".into(),
            hosts: vec![
                TargetHost {
                    uuid: "h1".into(),
                    name_label: "dr-01".into(),
                    memory_free: 32 * GIB,
                },
                TargetHost {
                    uuid: "h2".into(),
                    name_label: "dr-02".into(),
                    memory_free: 32 * GIB,
                },
            ],
            srs: vec![TargetSr {
                uuid: "sr-iscsi".into(),
                name_label: "Mirrored LUN".into(),
                attached: true,
            }],
            networks: vec![TargetNetwork {
                uuid: "dr-net".into(),
                name_label: "Production".into(),
                bridge: "xenbr1".into(),
            }],
            ..TargetPool::default()
        }
    }

    struct Case {
        copies: Vec<MetadataCopy>,
        target: TargetPool,
        target_vms: Vec<TargetVm>,
        source: Option<SourcePool>,
        request: PlanRequest,
    }

    impl Case {
        fn new(mode: Mode) -> Self {
            Self {
                copies: vec![primary()],
                target: dr_pool(),
                target_vms: Vec::new(),
                source: None,
                request: PlanRequest::new(mode),
            }
        }

        fn plan(&self) -> Result<Plan, PlanError> {
            let state = TargetState {
                vms: self.target_vms.clone(),
                vapp_uuids: self.target.vapps.iter().map(|a| a.uuid.clone()).collect(),
            };
            let reconciliation = reconcile(
                &self.copies,
                &state,
                &Recovered::default(),
                &Preferences::default(),
            );
            plan(
                PlanInputs {
                    copies: &self.copies,
                    reconciliation: &reconciliation,
                    target: &self.target,
                    source: self.source.as_ref(),
                },
                &self.request,
            )
        }

        fn checks(&self, kind: CheckKind) -> Vec<Check> {
            self.plan()
                .expect("a valid request")
                .checks
                .into_iter()
                .filter(|c| c.kind == kind)
                .collect()
        }
    }

    fn severities(checks: &[Check]) -> Vec<Severity> {
        checks.iter().map(|c| c.severity).collect()
    }

    #[test]
    fn a_clean_failover_recovers_everything_and_starts_in_order() {
        let plan = Case::new(Mode::Failover).plan().unwrap();
        assert!(
            !plan.is_blocked(),
            "{:#?}",
            plan.problems().collect::<Vec<_>>()
        );
        assert_eq!(plan.vapps.len(), 1);
        assert_eq!(plan.vms.len(), 4);
        assert!(plan.srs_to_introduce.is_empty());
        // Standalone first (mail: running; batch: halted, as recorded), then the vApp's order
        // groups with the delays xapi sleeps inside VM.start.
        assert_eq!(
            plan.start,
            [
                StartStep::Vm {
                    uuid: "vm-mail".into(),
                    name_label: "mail".into(),
                    paused: false,
                    start_delay: 5,
                },
                StartStep::Vapp {
                    uuid: "app-shop".into(),
                    name_label: "shop".into(),
                    paused: false,
                    groups: vec![
                        (0, vec![("vm-db".into(), 20)]),
                        (1, vec![("vm-web".into(), 0)]),
                    ],
                },
            ]
        );
        assert_eq!(
            plan.networks[0].target,
            NetworkTarget::Existing {
                uuid: "dr-net".into(),
                matched_by: "name".into()
            }
        );
        assert!(plan.cleanup.is_empty());
    }

    #[test]
    fn standalone_vms_start_by_order_then_name() {
        let mut case = Case::new(Mode::Failover);
        case.request.power = PowerChoice::StartAll;
        let plan = case.plan().unwrap();
        let names: Vec<&str> = plan
            .start
            .iter()
            .filter_map(|s| match s {
                StartStep::Vm { name_label, .. } => Some(name_label.as_str()),
                StartStep::Vapp { .. } => None,
            })
            .collect();
        assert_eq!(names, ["batch", "mail"], "order 1 before order 2");
    }

    #[test]
    fn licence_check_fires_and_passes() {
        let mut case = Case::new(Mode::Failover);
        assert_eq!(
            severities(&case.checks(CheckKind::DrLicence)),
            [Severity::Passed]
        );
        case.target.dr_restricted = true;
        assert_eq!(
            severities(&case.checks(CheckKind::DrLicence)),
            [Severity::Problem]
        );
    }

    #[test]
    fn role_check_fires_and_passes() {
        let mut case = Case::new(Mode::Failover);
        case.target.caller_roles = Some(vec!["pool-operator".into()]);
        assert_eq!(
            severities(&case.checks(CheckKind::CallerRole)),
            [Severity::Passed]
        );
        case.target.caller_roles = Some(vec!["vm-operator".into(), "read-only".into()]);
        let checks = case.checks(CheckKind::CallerRole);
        assert_eq!(severities(&checks), [Severity::Problem]);
        assert!(checks[0].message.contains("vm-operator"));
    }

    #[test]
    fn ha_check_fires_for_a_test_with_fix_and_unwind() {
        let mut case = Case::new(Mode::TestFailover);
        assert_eq!(
            severities(&case.checks(CheckKind::HaDisabledForTest)),
            [Severity::Passed]
        );
        case.target.ha_enabled = true;
        case.target.ha_heartbeat_srs = vec!["sr-hb".into()];
        case.target.ha_host_failures_to_tolerate = 1;
        let checks = case.checks(CheckKind::HaDisabledForTest);
        assert_eq!(severities(&checks), [Severity::Problem]);
        assert_eq!(checks[0].fix, Some(Fix::DisableHa));
        assert_eq!(
            checks[0].unwind,
            Some(Fix::EnableHa {
                heartbeat_srs: vec!["sr-hb".into()],
                failures_to_tolerate: 1
            })
        );
        let mut failover = Case::new(Mode::Failover);
        failover.target.ha_enabled = true;
        assert!(failover.checks(CheckKind::HaDisabledForTest).is_empty());
    }

    #[test]
    fn running_in_source_fires_when_the_source_is_reachable() {
        let mut case = Case::new(Mode::Failover);
        assert_eq!(
            severities(&case.checks(CheckKind::NotRunningInSource)),
            [Severity::Passed],
            "an unreachable source runs nothing"
        );
        case.source = Some(SourcePool::default());
        assert_eq!(
            severities(&case.checks(CheckKind::NotRunningInSource)),
            [Severity::Passed]
        );
        case.source = Some(SourcePool {
            live_vms: ["vm-mail".to_owned()].into(),
            live_vapps: ["app-shop".to_owned()].into(),
        });
        let checks = case.checks(CheckKind::NotRunningInSource);
        assert_eq!(severities(&checks), [Severity::Problem, Severity::Problem]);
        assert_eq!(
            checks[0].fix,
            Some(Fix::ShutDownVappInSource {
                vapp: "app-shop".into()
            })
        );
        assert_eq!(
            checks[1].fix,
            Some(Fix::ShutDownInSource {
                vm: "vm-mail".into()
            })
        );
    }

    #[test]
    fn existing_vms_in_the_target_block_or_warn() {
        let mut case = Case::new(Mode::Failover);
        assert_eq!(
            severities(&case.checks(CheckKind::ExistingInTarget)),
            [Severity::Passed]
        );
        let target_vm = |uuid: &str, version, power_state| TargetVm {
            uuid: uuid.into(),
            version,
            power_state,
        };
        case.target_vms = vec![
            target_vm("vm-mail", 5, VmPowerState::Halted),
            target_vm("vm-batch", 1, VmPowerState::Running),
            target_vm("vm-web", 0, VmPowerState::Halted),
        ];
        let plan = case.plan().unwrap();
        let checks: Vec<&Check> = plan
            .checks
            .iter()
            .filter(|c| c.kind == CheckKind::ExistingInTarget)
            .collect();
        let by_subject = |s: &str| checks.iter().find(|c| c.subject == s).unwrap();
        assert_eq!(by_subject("vm-mail").severity, Severity::Problem);
        assert_eq!(
            by_subject("vm-mail").fix,
            Some(Fix::DestroyInTarget {
                vm: "vm-mail".into()
            })
        );
        assert_eq!(
            by_subject("vm-batch").fix,
            Some(Fix::HardShutDownInTarget {
                vm: "vm-batch".into()
            })
        );
        assert_eq!(by_subject("vm-web").severity, Severity::Warning);
        assert!(plan.is_blocked());
        assert!(
            plan.vms.iter().all(|vm| vm.uuid != "vm-mail"),
            "a blocked VM is not recovered"
        );
    }

    #[test]
    fn missing_storage_is_introduced_or_reported() {
        let mut case = Case::new(Mode::TestFailover);
        assert_eq!(
            severities(&case.checks(CheckKind::StorageAvailable)),
            [Severity::Passed],
            "the CD's ISO SR is not required"
        );
        case.target.srs.clear();
        let plan = case.plan().unwrap();
        let storage: Vec<&Check> = plan
            .checks
            .iter()
            .filter(|c| c.kind == CheckKind::StorageAvailable)
            .collect();
        assert_eq!(storage.len(), 1);
        assert_eq!(
            storage[0].fix,
            Some(Fix::IntroduceSr {
                sr: "sr-iscsi".into(),
                sr_type: "lvmoiscsi".into()
            })
        );
        assert_eq!(
            storage[0].unwind,
            Some(Fix::ForgetSr {
                sr: "sr-iscsi".into()
            })
        );
        assert_eq!(plan.srs_to_introduce, ["sr-iscsi"]);
        assert!(plan.cleanup.contains(&CleanupStep::ForgetSrs {
            srs: vec!["sr-iscsi".into()]
        }));

        // A disk on a host's local storage cannot come back.
        let mut local = Case::new(Mode::Failover);
        local.copies[0].metadata.vms[2].disks[0].sr_uuid = "sr-local".into();
        let checks = local.checks(CheckKind::StorageAvailable);
        assert_eq!(severities(&checks), [Severity::Problem]);
        assert_eq!(checks[0].fix, None);
        assert!(checks[0].message.contains("local storage"));
    }

    #[test]
    fn cross_pool_conflicts_block() {
        let mut case = Case::new(Mode::Failover);
        assert_eq!(
            severities(&case.checks(CheckKind::NoCrossPoolConflict)),
            [Severity::Passed]
        );
        let mut other = primary();
        other.metadata.pool.uuid = "pool-other".into();
        other.metadata.vms[2].memory_static_max = 64 * GIB;
        case.copies.push(other);
        let checks = case.checks(CheckKind::NoCrossPoolConflict);
        assert!(checks.iter().any(|c| c.subject == "vm-mail"));
        assert!(checks.iter().all(|c| c.severity == Severity::Problem));
    }

    #[test]
    fn mac_and_name_collisions_are_found() {
        let mut case = Case::new(Mode::Failover);
        assert_eq!(
            severities(&case.checks(CheckKind::NoMacCollision)),
            [Severity::Passed]
        );
        assert_eq!(
            severities(&case.checks(CheckKind::NoNameCollision)),
            [Severity::Passed]
        );
        let mail_mac = case.copies[0].metadata.vms[2].vifs[0].mac.to_uppercase();
        case.target.vms.push(TargetPoolVm {
            uuid: "someone-else".into(),
            name_label: "mail".into(),
            macs: vec![mail_mac],
            version: 0,
            power_state: VmPowerState::Running,
        });
        assert_eq!(
            severities(&case.checks(CheckKind::NoMacCollision)),
            [Severity::Problem]
        );
        assert_eq!(
            severities(&case.checks(CheckKind::NoNameCollision)),
            [Severity::Warning]
        );
        // On the isolated network of a test, the same MAC is harmless.
        case.request = PlanRequest::new(Mode::TestFailover);
        assert_eq!(
            severities(&case.checks(CheckKind::NoMacCollision)),
            [Severity::Warning]
        );
    }

    #[test]
    fn host_memory_is_checked_for_the_vms_to_start() {
        let mut case = Case::new(Mode::Failover);
        assert_eq!(
            severities(&case.checks(CheckKind::HostMemory)),
            [Severity::Passed]
        );
        case.target.hosts = vec![TargetHost {
            uuid: "h1".into(),
            name_label: "small".into(),
            memory_free: 3 * GIB,
        }];
        // mail, db and web start (6 GiB): more than the 3 GiB free.
        let checks = case.checks(CheckKind::HostMemory);
        assert_eq!(checks[0].severity, Severity::Problem);
        assert!(
            checks[0].message.contains("6.0 GiB"),
            "{}",
            checks[0].message
        );
        case.request.power = PowerChoice::LeaveHalted;
        assert_eq!(
            severities(&case.checks(CheckKind::HostMemory)),
            [Severity::Passed]
        );
        case.request.power = PowerChoice::StartAll;
        case.target.hosts[0].memory_free = GIB;
        assert!(
            case.checks(CheckKind::HostMemory)
                .iter()
                .any(|c| c.subject == "vm-batch"),
            "a VM larger than any host is named"
        );
    }

    #[test]
    fn networks_are_matched_by_map_name_and_bridge_or_created() {
        let mut case = Case::new(Mode::Failover);
        assert_eq!(
            severities(&case.checks(CheckKind::NetworksCreated)),
            [Severity::Passed]
        );
        case.target.networks[0].name_label = "Prod (DR)".into();
        case.target.networks[0].bridge = "xenbr0".into();
        let plan = case.plan().unwrap();
        assert_eq!(
            plan.networks[0].target,
            NetworkTarget::Existing {
                uuid: "dr-net".into(),
                matched_by: "bridge".into()
            }
        );
        case.target.networks[0].bridge = "xenbr9".into();
        assert_eq!(
            severities(&case.checks(CheckKind::NetworksCreated)),
            [Severity::Warning]
        );
        assert_eq!(
            case.plan().unwrap().networks[0].target,
            NetworkTarget::Created
        );
        case.request
            .network_map
            .insert("net-prod".into(), "dr-net".into());
        assert_eq!(
            case.plan().unwrap().networks[0].target,
            NetworkTarget::Existing {
                uuid: "dr-net".into(),
                matched_by: "map".into()
            }
        );
    }

    #[test]
    fn a_test_failover_is_isolated_paused_and_cleaned_up() {
        let case = Case::new(Mode::TestFailover);
        let plan = case.plan().unwrap();
        assert!(!plan.is_blocked());
        assert!(
            plan.networks
                .iter()
                .all(|n| n.target == NetworkTarget::Isolated)
        );
        assert!(plan.start.iter().all(|s| match s {
            StartStep::Vm { paused, .. } | StartStep::Vapp { paused, .. } => *paused,
        }));
        assert_eq!(
            plan.cleanup.first(),
            Some(&CleanupStep::DestroyVms {
                vms: vec![
                    "vm-db".into(),
                    "vm-web".into(),
                    "vm-batch".into(),
                    "vm-mail".into()
                ]
            })
        );
        assert!(plan.cleanup.contains(&CleanupStep::RemoveIsolatedNetwork));
        assert_eq!(plan.cleanup.last(), Some(&CleanupStep::UnwindFixes));
        assert_eq!(
            severities(&case.checks(CheckKind::StorageMirroringHalted)),
            [Severity::Passed]
        );
        let mut running = Case::new(Mode::TestFailover);
        running.request.power = PowerChoice::StartAll;
        assert_eq!(
            running.plan().unwrap_err(),
            PlanError::TestMustNotStartRunning(PowerChoice::StartAll)
        );
    }

    #[test]
    fn failover_reminds_to_halt_mirroring() {
        let case = Case::new(Mode::Failback);
        assert_eq!(
            severities(&case.checks(CheckKind::StorageMirroringHalted)),
            [Severity::Warning]
        );
    }

    #[test]
    fn selections_pick_vapps_vms_and_tags() {
        let mut case = Case::new(Mode::Failover);
        case.request.selection = Selection::Vapps(vec!["shop".into()]);
        let plan = case.plan().unwrap();
        assert_eq!(plan.vms.len(), 2);
        case.request.selection = Selection::Vms(vec!["mail".into()]);
        assert_eq!(case.plan().unwrap().vms.len(), 1);
        case.request.selection = Selection::Tags(vec!["tag-web".into()]);
        let plan = case.plan().unwrap();
        assert_eq!(plan.vapps.len(), 1, "a tagged member brings its vApp");
        case.request.selection = Selection::Vms(vec!["web".into()]);
        assert_eq!(
            case.plan().unwrap_err(),
            PlanError::MemberOfVapp {
                vm: "vm-web".into(),
                vapp: "app-shop".into()
            }
        );
        case.request.selection = Selection::Vms(vec!["nope".into()]);
        assert!(matches!(
            case.plan().unwrap_err(),
            PlanError::UnknownSelection { kind: "VM", .. }
        ));
    }

    #[test]
    fn a_plan_round_trips_through_json_and_bad_files_say_where() {
        let plan = Case::new(Mode::TestFailover).plan().unwrap();
        let json = plan.to_json();
        assert_eq!(Plan::from_json(&json).unwrap(), plan);
        assert!(json.contains("\"start\": \"vapp\""));
        let broken = json.replacen("\"test_failover\"", "\"sideways\"", 1);
        let err = Plan::from_json(&broken).unwrap_err();
        assert!(
            matches!(err, PlanError::BadPlanFile { line, .. } if line > 1),
            "{err}"
        );
    }
}
