//! Newest wins, explained: from every copy of metadata found, which copy of each VM and vApp a
//! recovery should use, and whether the target pool lets it.
//!
//! Three levels, none of them a timestamp (reference: metadata-vdi §10):
//!
//! 1. **Copies of one pool** (replication to up to 8 SRs, a stale SR after a broken mirror): the
//!    highest database generation wins. Equal generations with the same content are one copy;
//!    equal generations with different content are a conflict, never decided silently.
//! 2. **One VM in the metadata of several pools** (after a failover and a failback both sites'
//!    metadata hold it): the higher `VM.version` wins (every recovery increments it). Equal
//!    versions with the same content are one candidate; with different content they are a
//!    conflict that only an explicit [`Preferences`] choice resolves.
//! 3. **Against the target pool**: a VM there with the same UUID and a `version` at least the
//!    candidate's blocks (a newer copy is already there), unless the run journal says this plan
//!    recovered it (then it is done); a running one blocks; a halted older one is replaced, with
//!    a warning. vApps follow their member VMs.
//!
//! Every decision carries [`Reason`]s, each a machine-readable [`ReasonCode`] and a sentence
//! naming the copies seen; the whole [`Reconciliation`] serialises to JSON.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use xapi_core::api::VmPowerState;

use crate::metadata::{VappSummary, VmSummary};
use crate::source::{MetadataCopy, Origin};

/// Why a decision was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReasonCode {
    /// Copies of one pool: this copy has the highest database generation.
    NewestGeneration,
    /// Copies of one pool: this copy has a lower generation than the chosen one.
    OlderGeneration,
    /// Copies of one pool: same generation and same content as the chosen copy.
    IdenticalCopy,
    /// Copies of one pool: same highest generation, different content.
    GenerationTieDifferentContent,
    /// The VM or vApp appears in one pool's metadata only.
    OnlyCandidate,
    /// Across pools: this candidate has the highest `VM.version`.
    HigherVersion,
    /// Across pools: another candidate has a higher `VM.version`.
    LowerVersion,
    /// Across pools: same version and content as the chosen candidate.
    SameVersionSameContent,
    /// Across pools: same highest version, different content.
    SameVersionDifferentContent,
    /// The user chose this pool's candidate ([`Preferences`]).
    ChosenByUser,
    /// The target pool has no object with this UUID.
    NotInTarget,
    /// The target pool has this VM halted with a lower version: it will be replaced.
    OlderHaltedInTarget,
    /// The target pool has this VM with a version at least the candidate's.
    NewerInTarget,
    /// The target pool runs this VM (or has it paused or suspended).
    NotHaltedInTarget,
    /// The run journal shows this plan recovered it already.
    AlreadyRecoveredByThisPlan,
    /// The target pool has this vApp: it will be replaced with its members.
    VappInTarget,
    /// A member VM of the vApp is blocked or in conflict.
    MemberBlocked,
}

/// One reason: a code for programs, a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// What kind of reason.
    pub code: ReasonCode,
    /// The reason in words, naming the copies and values compared.
    pub message: String,
}

impl Reason {
    fn new(code: ReasonCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// What a recovery does with a VM or vApp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Recover it: nothing with its UUID is in the target pool.
    Recover,
    /// Recover it over the older, halted copy in the target pool.
    Replace,
    /// Nothing to do: this plan recovered it already.
    Done,
    /// It cannot be recovered: the target pool holds a newer or running copy.
    Blocked,
    /// Copies disagree and nothing says which to use: a user choice is needed.
    Conflict,
}

impl Outcome {
    /// Whether the run recovers it.
    pub fn is_recovered(self) -> bool {
        matches!(self, Self::Recover | Self::Replace)
    }
}

/// A copy of metadata as decisions name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyId {
    /// The source pool.
    pub pool_uuid: String,
    /// Where the copy was found.
    pub origin: Origin,
    /// Its database generation.
    pub generation: i64,
}

impl CopyId {
    fn of(copy: &MetadataCopy) -> Self {
        Self {
            pool_uuid: copy.pool_uuid().to_owned(),
            origin: copy.origin.clone(),
            generation: copy.generation(),
        }
    }
}

impl std::fmt::Display for CopyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pool {} generation {} ({})",
            self.pool_uuid, self.generation, self.origin
        )
    }
}

/// Which copy of one source pool's metadata is used, and what became of the others.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolDecision {
    /// The source pool.
    pub pool_uuid: String,
    /// The copy used; `None` when the newest copies conflict.
    pub chosen: Option<CopyId>,
    /// Every copy seen, with why it was or was not used.
    pub copies: Vec<(CopyId, Reason)>,
}

/// What happens to one VM.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmDecision {
    /// The VM's UUID (recovery keeps it).
    pub uuid: String,
    /// Its name in the chosen (or first) candidate.
    pub name_label: String,
    /// What the recovery does.
    pub outcome: Outcome,
    /// The copy its metadata comes from; `None` in a conflict.
    pub chosen: Option<CopyId>,
    /// The `VM.version` of the chosen candidate.
    pub version: Option<i64>,
    /// Every candidate seen: the copy and its `VM.version`.
    pub candidates: Vec<(CopyId, i64)>,
    /// Why, in order: the choice between candidates, then the target check.
    pub reasons: Vec<Reason>,
}

/// What happens to one vApp.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VappDecision {
    /// The vApp's UUID.
    pub uuid: String,
    /// Its name.
    pub name_label: String,
    /// What the recovery does.
    pub outcome: Outcome,
    /// The copy its definition comes from.
    pub chosen: Option<CopyId>,
    /// Member VM UUIDs in the chosen copy.
    pub vms: Vec<String>,
    /// Why.
    pub reasons: Vec<Reason>,
}

/// The whole result: per source pool, per VM, per vApp.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reconciliation {
    /// One decision per source pool, by pool UUID.
    pub pools: Vec<PoolDecision>,
    /// One decision per VM UUID, by name then UUID.
    pub vms: Vec<VmDecision>,
    /// One decision per vApp UUID, by name then UUID.
    pub vapps: Vec<VappDecision>,
}

impl Reconciliation {
    /// The decisions that need a user choice before a run.
    pub fn conflicts(&self) -> impl Iterator<Item = &VmDecision> {
        self.vms.iter().filter(|d| d.outcome == Outcome::Conflict)
    }

    /// Whether some source pool's newest copies disagree.
    pub fn has_pool_conflicts(&self) -> bool {
        self.pools.iter().any(|p| p.chosen.is_none())
    }
}

/// The user's way out of conflicts between pools.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Preferences {
    /// Prefer this source pool's candidate whenever versions tie.
    pub prefer_pool: Option<String>,
    /// For these VM UUIDs, use the candidate of this source pool, whatever the versions.
    pub per_vm: BTreeMap<String, String>,
}

/// A VM of the target pool, as reconciliation needs it (read once, in bulk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetVm {
    /// UUID.
    pub uuid: String,
    /// `VM.version`.
    pub version: i64,
    /// Power state.
    pub power_state: VmPowerState,
}

/// The target pool's state that reconciliation compares against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TargetState {
    /// Its VMs (templates and snapshots need not be listed).
    pub vms: Vec<TargetVm>,
    /// The UUIDs of its vApps.
    pub vapp_uuids: BTreeSet<String>,
}

/// What an earlier run of the same plan recovered (from its journal).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recovered {
    /// VM UUIDs.
    pub vms: BTreeSet<String>,
    /// vApp UUIDs.
    pub vapps: BTreeSet<String>,
}

/// Reconcile every copy found against the target pool.
pub fn reconcile(
    copies: &[MetadataCopy],
    target: &TargetState,
    recovered: &Recovered,
    preferences: &Preferences,
) -> Reconciliation {
    let (pools, chosen) = choose_copies(copies);
    let mut vms = choose_vms(&chosen, preferences);
    let target_vms: HashMap<&str, &TargetVm> =
        target.vms.iter().map(|vm| (vm.uuid.as_str(), vm)).collect();
    for decision in &mut vms {
        check_against_target(decision, &target_vms, recovered);
    }
    vms.sort_by(|a, b| {
        a.name_label
            .cmp(&b.name_label)
            .then_with(|| a.uuid.cmp(&b.uuid))
    });
    let vapps = choose_vapps(&chosen, &vms, target, recovered);
    Reconciliation { pools, vms, vapps }
}

/// Level 1: the newest copy of each source pool.
fn choose_copies(copies: &[MetadataCopy]) -> (Vec<PoolDecision>, Vec<&MetadataCopy>) {
    let mut by_pool: BTreeMap<&str, Vec<&MetadataCopy>> = BTreeMap::new();
    for copy in copies {
        by_pool.entry(copy.pool_uuid()).or_default().push(copy);
    }
    let mut decisions = Vec::new();
    let mut chosen = Vec::new();
    for (pool_uuid, mut group) in by_pool {
        group.sort_by(|a, b| {
            b.generation()
                .cmp(&a.generation())
                .then_with(|| a.origin.cmp(&b.origin))
        });
        let newest = group[0];
        let newest_id = CopyId::of(newest);
        let tied_differently = group[1..].iter().any(|other| {
            other.generation() == newest.generation()
                && !same_recovery_content(&other.metadata, &newest.metadata)
        });
        let mut copies_seen = Vec::new();
        for copy in &group {
            let id = CopyId::of(copy);
            let reason = if std::ptr::eq(*copy, newest) {
                if tied_differently {
                    Reason::new(
                        ReasonCode::GenerationTieDifferentContent,
                        format!(
                            "{id}: another copy of this pool has the same generation but different VMs or vApps; which one is current cannot be told"
                        ),
                    )
                } else {
                    Reason::new(
                        ReasonCode::NewestGeneration,
                        format!(
                            "{id}: the highest generation among {} copies of this pool",
                            group.len()
                        ),
                    )
                }
            } else if copy.generation() < newest.generation() {
                Reason::new(
                    ReasonCode::OlderGeneration,
                    format!(
                        "{id}: older than generation {} ({}); a stale mirror or an SR that stopped receiving updates",
                        newest.generation(),
                        newest.origin
                    ),
                )
            } else if same_recovery_content(&copy.metadata, &newest.metadata) {
                Reason::new(
                    ReasonCode::IdenticalCopy,
                    format!(
                        "{id}: same generation and content as {}; one copy",
                        newest.origin
                    ),
                )
            } else {
                Reason::new(
                    ReasonCode::GenerationTieDifferentContent,
                    format!(
                        "{id}: same generation as {} but different VMs or vApps",
                        newest.origin
                    ),
                )
            };
            copies_seen.push((id, reason));
        }
        if !tied_differently {
            chosen.push(newest);
        }
        decisions.push(PoolDecision {
            pool_uuid: pool_uuid.to_owned(),
            chosen: (!tied_differently).then_some(newest_id),
            copies: copies_seen,
        });
    }
    (decisions, chosen)
}

/// Whether two copies would recover the same things (the VMs, vApps and SRs, with their disks
/// and networks), whatever else differs in the databases.
fn same_recovery_content(
    a: &crate::metadata::InspectReport,
    b: &crate::metadata::InspectReport,
) -> bool {
    a.vms == b.vms && a.vapps == b.vapps && a.srs == b.srs
}

/// Level 2: one candidate per VM UUID across the chosen copies of every pool.
fn choose_vms(chosen: &[&MetadataCopy], preferences: &Preferences) -> Vec<VmDecision> {
    let mut by_uuid: BTreeMap<&str, Vec<(&MetadataCopy, &VmSummary)>> = BTreeMap::new();
    for copy in chosen {
        for vm in &copy.metadata.vms {
            by_uuid.entry(&vm.uuid).or_default().push((copy, vm));
        }
    }
    by_uuid
        .into_iter()
        .map(|(uuid, candidates)| choose_vm(uuid, &candidates, preferences))
        .collect()
}

fn choose_vm(
    uuid: &str,
    candidates: &[(&MetadataCopy, &VmSummary)],
    preferences: &Preferences,
) -> VmDecision {
    let seen: Vec<(CopyId, i64)> = candidates
        .iter()
        .map(|(copy, vm)| (CopyId::of(copy), vm.version))
        .collect();
    let decide = |index: usize, reason: Reason| {
        let (copy, vm) = candidates[index];
        VmDecision {
            uuid: uuid.to_owned(),
            name_label: vm.name_label.clone(),
            outcome: Outcome::Recover,
            chosen: Some(CopyId::of(copy)),
            version: Some(vm.version),
            candidates: seen.clone(),
            reasons: vec![reason],
        }
    };
    if let [(copy, _)] = candidates {
        return decide(
            0,
            Reason::new(
                ReasonCode::OnlyCandidate,
                format!("only in the metadata of {}", CopyId::of(copy)),
            ),
        );
    }
    let listing = seen
        .iter()
        .map(|(id, version)| format!("version {version} in {id}"))
        .collect::<Vec<_>>()
        .join("; ");
    if let Some(pool) = preferences.per_vm.get(uuid)
        && let Some(index) = candidates.iter().position(|(c, _)| c.pool_uuid() == pool)
    {
        return decide(
            index,
            Reason::new(
                ReasonCode::ChosenByUser,
                format!("the candidate of pool {pool} was chosen for this VM ({listing})"),
            ),
        );
    }
    let highest = candidates
        .iter()
        .map(|(_, vm)| vm.version)
        .max()
        .unwrap_or(0);
    let top: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].1.version == highest)
        .collect();
    let first = top[0];
    if top.len() == 1 {
        return decide(
            first,
            Reason::new(
                ReasonCode::HigherVersion,
                format!(
                    "version {highest} is the highest ({listing}); every recovery increments it, so the higher one is the newer"
                ),
            ),
        );
    }
    let all_same = top
        .iter()
        .all(|&i| same_vm_content(candidates[i].1, candidates[first].1));
    if all_same {
        return decide(
            first,
            Reason::new(
                ReasonCode::SameVersionSameContent,
                format!("the candidates agree ({listing}); one copy"),
            ),
        );
    }
    if let Some(pool) = &preferences.prefer_pool
        && let Some(&index) = top.iter().find(|&&i| candidates[i].0.pool_uuid() == pool)
    {
        return decide(
            index,
            Reason::new(
                ReasonCode::ChosenByUser,
                format!(
                    "versions tie with different content ({listing}); pool {pool} is preferred"
                ),
            ),
        );
    }
    VmDecision {
        uuid: uuid.to_owned(),
        name_label: candidates[first].1.name_label.clone(),
        outcome: Outcome::Conflict,
        chosen: None,
        version: None,
        candidates: seen,
        reasons: vec![Reason::new(
            ReasonCode::SameVersionDifferentContent,
            format!(
                "the same version {highest} with different content ({listing}); choose a pool for this VM or prefer a pool"
            ),
        )],
    }
}

/// Whether two candidates of one VM would recover the same VM. Disk and network locations are
/// compared by UUID, so copies of the same VM from two pools that share storage agree.
fn same_vm_content(a: &VmSummary, b: &VmSummary) -> bool {
    a == b
}

/// Level 3: the chosen candidate against what the target pool holds.
fn check_against_target(
    decision: &mut VmDecision,
    target: &HashMap<&str, &TargetVm>,
    recovered: &Recovered,
) {
    let Some(version) = decision.version else {
        return;
    };
    let (outcome, reason) = match target.get(decision.uuid.as_str()) {
        _ if recovered.vms.contains(&decision.uuid) => (
            Outcome::Done,
            Reason::new(
                ReasonCode::AlreadyRecoveredByThisPlan,
                "the journal of this plan shows it recovered already",
            ),
        ),
        None => (
            Outcome::Recover,
            Reason::new(
                ReasonCode::NotInTarget,
                "the target pool has no VM with this UUID",
            ),
        ),
        Some(existing) if existing.power_state != VmPowerState::Halted => (
            Outcome::Blocked,
            Reason::new(
                ReasonCode::NotHaltedInTarget,
                format!(
                    "the target pool has this VM {} (version {}); shut it down or leave it out",
                    existing.power_state, existing.version
                ),
            ),
        ),
        Some(existing) if existing.version >= version => (
            Outcome::Blocked,
            Reason::new(
                ReasonCode::NewerInTarget,
                format!(
                    "the target pool has this VM at version {}, not older than the candidate's {version}; a newer copy is already there",
                    existing.version
                ),
            ),
        ),
        Some(existing) => (
            Outcome::Replace,
            Reason::new(
                ReasonCode::OlderHaltedInTarget,
                format!(
                    "the target pool has an older halted copy (version {} < {version}): it will be replaced",
                    existing.version
                ),
            ),
        ),
    };
    decision.outcome = outcome;
    decision.reasons.push(reason);
}

/// vApps: the definition from the copy that provides most of the chosen member VMs, against the
/// target and the members' outcomes.
fn choose_vapps(
    chosen: &[&MetadataCopy],
    vms: &[VmDecision],
    target: &TargetState,
    recovered: &Recovered,
) -> Vec<VappDecision> {
    let vm_by_uuid: HashMap<&str, &VmDecision> = vms.iter().map(|d| (d.uuid.as_str(), d)).collect();
    let mut by_uuid: BTreeMap<&str, Vec<(&MetadataCopy, &VappSummary)>> = BTreeMap::new();
    for copy in chosen {
        for vapp in &copy.metadata.vapps {
            by_uuid.entry(&vapp.uuid).or_default().push((copy, vapp));
        }
    }
    let mut decisions: Vec<VappDecision> = by_uuid
        .into_iter()
        .map(|(uuid, candidates)| {
            // The candidate whose pool provides the most chosen members (first on a tie).
            let provided = |(copy, vapp): &(&MetadataCopy, &VappSummary)| {
                vapp.vms
                    .iter()
                    .filter(|vm| {
                        vm_by_uuid.get(vm.as_str()).is_some_and(|d| {
                            d.chosen
                                .as_ref()
                                .is_some_and(|c| c.pool_uuid == copy.pool_uuid())
                        })
                    })
                    .count()
            };
            let best = candidates
                .iter()
                .enumerate()
                .max_by_key(|(i, c)| (provided(c), std::cmp::Reverse(*i)))
                .map_or(0, |(i, _)| i);
            let (copy, vapp) = candidates[best];
            let id = CopyId::of(copy);
            let mut reasons = vec![if candidates.len() == 1 {
                Reason::new(
                    ReasonCode::OnlyCandidate,
                    format!("only in the metadata of {id}"),
                )
            } else {
                Reason::new(
                    ReasonCode::HigherVersion,
                    format!(
                        "defined in {} pools; {id} provides the most of its chosen members",
                        candidates.len()
                    ),
                )
            }];
            let blocked: Vec<&str> = vapp
                .vms
                .iter()
                .filter(|vm| {
                    vm_by_uuid
                        .get(vm.as_str())
                        .is_some_and(|d| matches!(d.outcome, Outcome::Blocked | Outcome::Conflict))
                })
                .map(String::as_str)
                .collect();
            let outcome = if recovered.vapps.contains(uuid) {
                reasons.push(Reason::new(
                    ReasonCode::AlreadyRecoveredByThisPlan,
                    "the journal of this plan shows it recovered already",
                ));
                Outcome::Done
            } else if !blocked.is_empty() {
                reasons.push(Reason::new(
                    ReasonCode::MemberBlocked,
                    format!("member VMs blocked or in conflict: {}", blocked.join(", ")),
                ));
                Outcome::Blocked
            } else if target.vapp_uuids.contains(uuid) {
                reasons.push(Reason::new(
                    ReasonCode::VappInTarget,
                    "the target pool has this vApp: it will be replaced with its members",
                ));
                Outcome::Replace
            } else {
                reasons.push(Reason::new(
                    ReasonCode::NotInTarget,
                    "the target pool has no vApp with this UUID",
                ));
                Outcome::Recover
            };
            VappDecision {
                uuid: uuid.to_owned(),
                name_label: vapp.name_label.clone(),
                outcome,
                chosen: Some(id),
                vms: vapp.vms.clone(),
                reasons,
            }
        })
        .collect();
    decisions.sort_by(|a, b| {
        a.name_label
            .cmp(&b.name_label)
            .then_with(|| a.uuid.cmp(&b.uuid))
    });
    decisions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{InspectReport, Source};

    fn vm(uuid: &str, name: &str, version: i64) -> VmSummary {
        VmSummary {
            uuid: uuid.to_owned(),
            name_label: name.to_owned(),
            power_state: VmPowerState::Running,
            vapp: None,
            version,
            order: 0,
            start_delay: 0,
            shutdown_delay: 0,
            memory_static_max: 1 << 30,
            vcpus_max: 2,
            ha_restart_priority: String::new(),
            disks: Vec::new(),
            vifs: Vec::new(),
            snapshots: 0,
            tags: Vec::new(),
        }
    }

    fn copy(pool: &str, generation: i64, sr: &str, vms: Vec<VmSummary>) -> MetadataCopy {
        MetadataCopy {
            origin: Origin::Vdi {
                vdi_uuid: format!("vdi-{pool}-{sr}"),
                sr_uuid: sr.to_owned(),
            },
            metadata: InspectReport {
                source: Source::XmlDump,
                pool: crate::metadata::inspect::PoolSummary {
                    uuid: pool.to_owned(),
                    ..Default::default()
                },
                generation,
                schema_version: "5.786".to_owned(),
                vms,
                vapps: Vec::new(),
                srs: Vec::new(),
                networks: Vec::new(),
                other_vm_rows: 0,
                diagnostics: Vec::new(),
            },
        }
    }

    fn run(copies: &[MetadataCopy]) -> Reconciliation {
        reconcile(
            copies,
            &TargetState::default(),
            &Recovered::default(),
            &Preferences::default(),
        )
    }

    fn codes(decision: &VmDecision) -> Vec<ReasonCode> {
        decision.reasons.iter().map(|r| r.code).collect()
    }

    #[test]
    fn the_highest_generation_of_a_pool_wins_and_stale_copies_say_why() {
        let stale = copy("pool-a", 40, "sr-2", vec![vm("vm-1", "web", 1)]);
        let fresh = copy(
            "pool-a",
            52,
            "sr-1",
            vec![vm("vm-1", "web", 1), vm("vm-2", "db", 0)],
        );
        let result = run(&[stale, fresh]);
        let pool = &result.pools[0];
        let chosen = pool.chosen.as_ref().expect("a copy is chosen");
        assert_eq!(chosen.generation, 52);
        let stale_reason = &pool
            .copies
            .iter()
            .find(|(id, _)| id.generation == 40)
            .unwrap()
            .1;
        assert_eq!(stale_reason.code, ReasonCode::OlderGeneration);
        assert!(
            stale_reason.message.contains("generation 52"),
            "{stale_reason:?}"
        );
        assert_eq!(result.vms.len(), 2, "the VMs of the newest copy only");
        assert!(result.vms.iter().all(|d| d.chosen.as_ref() == Some(chosen)));
    }

    #[test]
    fn equal_generations_with_the_same_content_are_one_copy() {
        let a = copy("pool-a", 52, "sr-1", vec![vm("vm-1", "web", 1)]);
        let b = copy("pool-a", 52, "sr-2", vec![vm("vm-1", "web", 1)]);
        let result = run(&[a, b]);
        assert!(result.pools[0].chosen.is_some());
        assert!(
            result.pools[0]
                .copies
                .iter()
                .any(|(_, r)| r.code == ReasonCode::IdenticalCopy)
        );
        assert_eq!(result.vms.len(), 1);
        assert_eq!(codes(&result.vms[0])[0], ReasonCode::OnlyCandidate);
    }

    #[test]
    fn equal_generations_with_different_content_are_a_conflict() {
        let a = copy("pool-a", 52, "sr-1", vec![vm("vm-1", "web", 1)]);
        let b = copy("pool-a", 52, "sr-2", vec![vm("vm-1", "web-renamed", 1)]);
        let result = run(&[a, b]);
        assert!(result.has_pool_conflicts());
        assert_eq!(result.pools[0].chosen, None);
        assert!(
            result.pools[0]
                .copies
                .iter()
                .all(|(_, r)| r.code == ReasonCode::GenerationTieDifferentContent)
        );
        assert!(
            result.vms.is_empty(),
            "nothing is recovered from a pool in conflict"
        );
    }

    #[test]
    fn across_pools_the_higher_vm_version_wins() {
        // After a failover to pool B (version 2) and a failback to A (version 3).
        let a = copy("pool-a", 900, "sr-a", vec![vm("vm-1", "web", 3)]);
        let b = copy("pool-b", 70, "sr-b", vec![vm("vm-1", "web", 2)]);
        let result = run(&[b, a]);
        let web = &result.vms[0];
        assert_eq!(web.outcome, Outcome::Recover);
        assert_eq!(web.version, Some(3));
        assert_eq!(web.chosen.as_ref().unwrap().pool_uuid, "pool-a");
        assert_eq!(
            codes(web),
            [ReasonCode::HigherVersion, ReasonCode::NotInTarget]
        );
        assert!(web.reasons[0].message.contains("version 2 in pool pool-b"));
        assert_eq!(web.candidates.len(), 2);
    }

    #[test]
    fn a_version_tie_with_different_content_needs_a_user_choice() {
        let mut other = vm("vm-1", "web", 2);
        other.memory_static_max *= 2;
        let copies = [
            copy("pool-a", 10, "sr-a", vec![vm("vm-1", "web", 2)]),
            copy("pool-b", 20, "sr-b", vec![other]),
        ];
        let result = run(&copies);
        assert_eq!(result.vms[0].outcome, Outcome::Conflict);
        assert_eq!(result.conflicts().count(), 1);
        assert_eq!(
            codes(&result.vms[0]),
            [ReasonCode::SameVersionDifferentContent]
        );

        let prefer_b = Preferences {
            prefer_pool: Some("pool-b".to_owned()),
            ..Preferences::default()
        };
        let result = reconcile(
            &copies,
            &TargetState::default(),
            &Recovered::default(),
            &prefer_b,
        );
        assert_eq!(result.vms[0].chosen.as_ref().unwrap().pool_uuid, "pool-b");
        assert_eq!(codes(&result.vms[0])[0], ReasonCode::ChosenByUser);

        let per_vm = Preferences {
            per_vm: [("vm-1".to_owned(), "pool-a".to_owned())].into(),
            ..Preferences::default()
        };
        let result = reconcile(
            &copies,
            &TargetState::default(),
            &Recovered::default(),
            &per_vm,
        );
        assert_eq!(result.vms[0].chosen.as_ref().unwrap().pool_uuid, "pool-a");
    }

    #[test]
    fn a_version_tie_with_the_same_content_is_one_candidate() {
        let copies = [
            copy("pool-a", 10, "sr-a", vec![vm("vm-1", "web", 2)]),
            copy("pool-b", 20, "sr-b", vec![vm("vm-1", "web", 2)]),
        ];
        let result = run(&copies);
        assert_eq!(result.vms[0].outcome, Outcome::Recover);
        assert_eq!(codes(&result.vms[0])[0], ReasonCode::SameVersionSameContent);
    }

    #[test]
    fn the_target_pool_blocks_newer_and_running_copies_and_replaces_older_halted_ones() {
        let copies = [copy(
            "pool-a",
            10,
            "sr-a",
            vec![
                vm("newer", "a", 1),
                vm("running", "b", 5),
                vm("older", "c", 5),
                vm("absent", "d", 5),
                vm("done", "e", 5),
            ],
        )];
        let target = TargetState {
            vms: vec![
                TargetVm {
                    uuid: "newer".into(),
                    version: 1,
                    power_state: VmPowerState::Halted,
                },
                TargetVm {
                    uuid: "running".into(),
                    version: 1,
                    power_state: VmPowerState::Running,
                },
                TargetVm {
                    uuid: "older".into(),
                    version: 4,
                    power_state: VmPowerState::Halted,
                },
                TargetVm {
                    uuid: "done".into(),
                    version: 6,
                    power_state: VmPowerState::Running,
                },
            ],
            vapp_uuids: BTreeSet::new(),
        };
        let recovered = Recovered {
            vms: ["done".to_owned()].into(),
            ..Recovered::default()
        };
        let result = reconcile(&copies, &target, &recovered, &Preferences::default());
        let by_uuid = |uuid: &str| result.vms.iter().find(|d| d.uuid == uuid).unwrap();
        assert_eq!(by_uuid("newer").outcome, Outcome::Blocked);
        assert_eq!(codes(by_uuid("newer"))[1], ReasonCode::NewerInTarget);
        assert_eq!(by_uuid("running").outcome, Outcome::Blocked);
        assert_eq!(codes(by_uuid("running"))[1], ReasonCode::NotHaltedInTarget);
        assert_eq!(by_uuid("older").outcome, Outcome::Replace);
        assert_eq!(by_uuid("absent").outcome, Outcome::Recover);
        assert_eq!(by_uuid("done").outcome, Outcome::Done);
        assert_eq!(
            codes(by_uuid("done"))[1],
            ReasonCode::AlreadyRecoveredByThisPlan
        );
    }

    #[test]
    fn a_vapp_follows_its_members_and_the_target() {
        let mut first = copy(
            "pool-a",
            10,
            "sr-a",
            vec![vm("vm-1", "web", 1), vm("vm-2", "db", 1)],
        );
        first.metadata.vapps = vec![
            VappSummary {
                uuid: "app-ok".into(),
                name_label: "shop".into(),
                vms: vec!["vm-1".into()],
            },
            VappSummary {
                uuid: "app-blocked".into(),
                name_label: "erp".into(),
                vms: vec!["vm-2".into()],
            },
        ];
        let target = TargetState {
            vms: vec![TargetVm {
                uuid: "vm-2".into(),
                version: 9,
                power_state: VmPowerState::Halted,
            }],
            vapp_uuids: ["app-ok".to_owned()].into(),
        };
        let result = reconcile(
            &[first],
            &target,
            &Recovered::default(),
            &Preferences::default(),
        );
        let app = |uuid: &str| result.vapps.iter().find(|d| d.uuid == uuid).unwrap();
        assert_eq!(app("app-ok").outcome, Outcome::Replace);
        assert_eq!(app("app-blocked").outcome, Outcome::Blocked);
        assert!(app("app-blocked").reasons[1].message.contains("vm-2"));
    }

    #[test]
    fn the_reconciliation_serialises_with_reason_codes() {
        let result = run(&[
            copy("pool-a", 40, "sr-2", vec![vm("vm-1", "web", 1)]),
            copy("pool-a", 52, "sr-1", vec![vm("vm-1", "web", 1)]),
        ]);
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["pools"][0]["chosen"]["generation"], 52);
        assert_eq!(json["pools"][0]["chosen"]["origin"]["kind"], "vdi");
        assert_eq!(json["vms"][0]["outcome"], "recover");
        assert_eq!(json["vms"][0]["reasons"][0]["code"], "only_candidate");
        let text = serde_json::to_string(&result).unwrap();
        assert!(text.contains("older_generation"));
    }
}
