//! Deep verify: a restore point proven by restoring it. First the repository's own check
//! ([`Repository::verify_restore_point`]: every chunk read back, its seal, checksum, hash and
//! length checked); then the VM is restored into a pool as a new VM, its disks are compared
//! with the restore point (count and sizes), it is started paused (xapi accepts its
//! configuration and attaches its disks), and it is destroyed with its disks, whatever happened.

use xapi_core::api::{Sr, VmPowerState};
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

use crate::cleanup::{disks_of, remove_vm};
use crate::engine_error::{EngineError, backup, xapi};
use crate::import::{RestoreOptions, restore_vm};
use crate::repo::{Manifest, Repository, StreamRole, VerifyReport};

/// Where a deep verify restores.
#[derive(Debug, Clone, Default)]
pub struct DeepVerifyOptions {
    /// The SR for the trial restore (default: the pool's default SR).
    pub sr: Option<Ref<Sr>>,
}

/// One thing a deep verify checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub what: String,
    /// Whether it held.
    pub passed: bool,
    /// What was seen.
    pub detail: String,
}

/// What a deep verify checked and found.
#[derive(Debug, Clone)]
pub struct DeepVerifyReport {
    /// The repository's check of every chunk.
    pub repository: VerifyReport,
    /// The checks made in the pool, in order (empty when the repository check failed).
    pub checks: Vec<Check>,
    /// What was removed afterwards (`VM <uuid>`, `VDI <uuid>`).
    pub removed: Vec<String>,
    /// What could not be removed, with the error (left for the operator).
    pub left: Vec<String>,
}

impl DeepVerifyReport {
    /// True when the repository check and every pool check passed.
    pub fn is_ok(&self) -> bool {
        self.repository.is_ok() && !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }
}

/// Verifies `manifest` (a VM restore point) deeply: repository check, trial restore into the
/// pool, disks checked, started paused, then removed.
pub async fn deep_verify(
    session: &SessionHandle,
    repo: &Repository,
    manifest: &Manifest,
    options: &DeepVerifyOptions,
) -> Result<DeepVerifyReport, EngineError> {
    Box::pin(verify_boxed(session, repo, manifest, options)).await
}

async fn verify_boxed(
    session: &SessionHandle,
    repo: &Repository,
    manifest: &Manifest,
    options: &DeepVerifyOptions,
) -> Result<DeepVerifyReport, EngineError> {
    let repository = repo
        .verify_restore_point(manifest)
        .await
        .map_err(backup("verifying the restore point's chunks"))?;
    let mut report = DeepVerifyReport {
        repository,
        checks: Vec::new(),
        removed: Vec::new(),
        left: Vec::new(),
    };
    if !report.repository.is_ok() {
        return Ok(report);
    }
    let restore = RestoreOptions {
        sr: options.sr.clone(),
        name_label: Some(format!("xapi-backup verify {}", manifest.id)),
        ..RestoreOptions::default()
    };
    let vm = match restore_vm(session, repo, manifest, &restore).await {
        Ok(vm) => vm,
        Err(error) => {
            report.checks.push(Check {
                what: "the restore point imports into the pool".into(),
                passed: false,
                detail: error.to_string(),
            });
            return Ok(report);
        }
    };
    report.checks.push(Check {
        what: "the restore point imports into the pool".into(),
        passed: true,
        detail: format!("VM {}", vm.as_str()),
    });
    let checked = check_restored(session, manifest, &vm, &mut report.checks).await;
    let removal = remove_vm(session, &vm).await;
    report.removed = removal.removed;
    report.left = removal.left;
    checked?;
    Ok(report)
}

/// The checks on the restored VM: its disks, then a paused start.
async fn check_restored(
    session: &SessionHandle,
    manifest: &Manifest,
    vm: &Ref<xapi_core::api::Vm>,
    checks: &mut Vec<Check>,
) -> Result<(), EngineError> {
    let mut want: Vec<u64> = manifest
        .streams
        .iter()
        .filter(|s| s.role == StreamRole::Disk)
        .map(|s| s.size)
        .collect();
    let mut have = Vec::new();
    for vdi in disks_of(session, vm)
        .await
        .map_err(xapi("reading the VM's disks"))?
    {
        let size = session
            .vdi()
            .get_virtual_size(&vdi)
            .await
            .map_err(xapi("VDI.get_virtual_size"))?;
        have.push(u64::try_from(size).unwrap_or(0));
    }
    want.sort_unstable();
    have.sort_unstable();
    checks.push(Check {
        what: "the VM has the restore point's disks, of their sizes".into(),
        passed: want == have,
        detail: format!("restore point {want:?}, VM {have:?}"),
    });
    let started = session.vm().start(vm, true, false).await;
    let state = session
        .vm()
        .get_power_state(vm)
        .await
        .map_err(xapi("VM.get_power_state"))?;
    checks.push(Check {
        what: "the VM starts paused".into(),
        passed: started.is_ok() && state == VmPowerState::Paused,
        detail: match started {
            Ok(()) => format!("power state {state}"),
            Err(error) => format!("VM.start: {error}"),
        },
    });
    Ok(())
}
