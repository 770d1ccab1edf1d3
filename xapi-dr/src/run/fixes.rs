//! Applying the fixes a plan proposes for its problems, and undoing them afterwards.

use xapi_core::api::{Sr, Vm, VmAppliance, VmPowerState};
use xapi_core::client::SessionHandle;
use xapi_core::wire::{Ref, SmallMap, SmallString};

use super::journal::{AppliedFix, DrTaskEntry};
use super::recorder::Recorder;
use super::{Run, RunError};
use crate::plan::{Fix, Severity};

impl Run {
    /// Applies the fix of every problem (when allowed), journalled one by one; refuses the run
    /// when a problem has no automatic fix or fixes are not allowed.
    pub(super) async fn apply_fixes(&mut self) -> Result<(), RunError> {
        let problems: Vec<_> = self
            .plan
            .checks
            .iter()
            .filter(|c| c.severity == Severity::Problem)
            .cloned()
            .collect();
        let mut blocking = Vec::new();
        for check in problems {
            let Some(fix) = check.fix.clone() else {
                blocking.push(check);
                continue;
            };
            if self.journal.fixes.iter().any(|f| f.fix == fix) {
                continue;
            }
            if !self.options.apply_fixes || matches!(fix, Fix::Manual { .. }) {
                blocking.push(check);
            }
        }
        if !blocking.is_empty() {
            return Err(RunError::Blocked { problems: blocking });
        }
        let fixes: Vec<(Fix, Option<Fix>)> = self
            .plan
            .checks
            .iter()
            .filter(|c| c.severity == Severity::Problem)
            .filter_map(|c| c.fix.clone().map(|fix| (fix, c.unwind.clone())))
            .collect();
        for (fix, unwind) in fixes {
            if self.journal.fixes.iter().any(|f| f.fix == fix) {
                continue;
            }
            self.apply(&fix).await?;
            self.journal.fixes.push(AppliedFix {
                fix,
                unwind,
                unwound: false,
            });
            self.save()?;
        }
        Ok(())
    }

    async fn apply(&mut self, fix: &Fix) -> Result<(), RunError> {
        let session = self.session.clone();
        match fix {
            Fix::IntroduceSr { sr, sr_type } => {
                let device = self
                    .options
                    .storage
                    .get(sr)
                    .cloned()
                    .ok_or_else(|| RunError::MissingStorageDevice { sr: sr.clone() })?;
                let sr_type = if device.sr_type.is_empty() {
                    sr_type.clone()
                } else {
                    device.sr_type
                };
                let mut config: SmallMap<SmallString, SmallString> = SmallMap::new();
                for (k, v) in &device.device_config {
                    config.insert(k.as_str().into(), v.as_str().into());
                }
                let whitelist = [SmallString::from(sr.as_str())];
                let task = self
                    .recorder
                    .call(
                        "DR_task.create",
                        sr,
                        session.dr_task().create(&sr_type, &config, &whitelist),
                    )
                    .await?;
                self.journal.dr_tasks.push(DrTaskEntry {
                    reference: task.as_str().to_owned(),
                    srs: vec![sr.clone()],
                });
                if !self.journal.introduced_srs.contains(sr) {
                    self.journal.introduced_srs.push(sr.clone());
                }
                Ok(())
            }
            Fix::ShutDownInSource { vm } => {
                let source = self.source_session(vm)?;
                shut_down_vm(&source, &mut self.recorder, vm, false).await
            }
            Fix::ShutDownVappInSource { vapp } => {
                let source = self.source_session(vapp)?;
                let app: Ref<VmAppliance> = self
                    .recorder
                    .call(
                        "VM_appliance.get_by_uuid",
                        vapp,
                        source.vm_appliance().get_by_uuid(vapp),
                    )
                    .await?;
                self.recorder
                    .call(
                        "VM_appliance.shutdown",
                        vapp,
                        source.vm_appliance().shutdown(&app),
                    )
                    .await
            }
            other => apply_in_target(&session, &mut self.recorder, other).await,
        }
    }

    fn source_session(&self, subject: &str) -> Result<SessionHandle, RunError> {
        self.options
            .source_session
            .clone()
            .ok_or_else(|| RunError::NeedsSourceSession {
                subject: subject.to_owned(),
            })
    }
}

/// Shuts a VM down: cleanly, or hard when `hard` (or when a clean shutdown is not allowed).
async fn shut_down_vm(
    session: &SessionHandle,
    recorder: &mut Recorder,
    uuid: &str,
    hard: bool,
) -> Result<(), RunError> {
    let vm: Ref<Vm> = recorder
        .call("VM.get_by_uuid", uuid, session.vm().get_by_uuid(uuid))
        .await?;
    if hard {
        return recorder
            .call("VM.hard_shutdown", uuid, session.vm().hard_shutdown(&vm))
            .await;
    }
    match recorder
        .call("VM.shutdown", uuid, session.vm().shutdown(&vm))
        .await
    {
        Ok(()) => Ok(()),
        Err(_) => {
            recorder
                .call("VM.hard_shutdown", uuid, session.vm().hard_shutdown(&vm))
                .await
        }
    }
}

/// Applies a fix (or an unwind) that acts on the target pool alone.
pub(super) async fn apply_in_target(
    session: &SessionHandle,
    recorder: &mut Recorder,
    fix: &Fix,
) -> Result<(), RunError> {
    match fix {
        Fix::DisableHa => {
            recorder
                .call("pool.disable_ha", "pool", session.pool().disable_ha())
                .await
        }
        Fix::EnableHa {
            heartbeat_srs,
            failures_to_tolerate,
        } => {
            let mut srs: Vec<Ref<Sr>> = Vec::new();
            for uuid in heartbeat_srs {
                srs.push(
                    recorder
                        .call("SR.get_by_uuid", uuid, session.sr().get_by_uuid(uuid))
                        .await?,
                );
            }
            recorder
                .call(
                    "pool.enable_ha",
                    "pool",
                    session.pool().enable_ha(&srs, &SmallMap::new()),
                )
                .await?;
            let pools = recorder
                .call("pool.get_all", "pool", session.pool().get_all())
                .await?;
            if let Some(pool) = pools.first() {
                recorder
                    .call(
                        "pool.set_ha_host_failures_to_tolerate",
                        "pool",
                        session
                            .pool()
                            .set_ha_host_failures_to_tolerate(pool, *failures_to_tolerate),
                    )
                    .await?;
            }
            Ok(())
        }
        Fix::HardShutDownInTarget { vm } => shut_down_vm(session, recorder, vm, true).await,
        Fix::DestroyInTarget { vm } => {
            let reference: Ref<Vm> = recorder
                .call("VM.get_by_uuid", vm, session.vm().get_by_uuid(vm))
                .await?;
            let record = recorder
                .call("VM.get_record", vm, session.vm().get_record(&reference))
                .await?;
            if record.power_state != VmPowerState::Halted {
                recorder
                    .call(
                        "VM.hard_shutdown",
                        vm,
                        session.vm().hard_shutdown(&reference),
                    )
                    .await?;
            }
            destroy_vm_keeping_disks(session, recorder, vm, &reference, &record.snapshots).await
        }
        Fix::ForgetSr { sr } => super::cleanup::forget_sr(session, recorder, sr).await,
        Fix::IntroduceSr { sr, .. } => Err(RunError::MissingStorageDevice { sr: sr.clone() }),
        Fix::ShutDownInSource { vm } => Err(RunError::NeedsSourceSession {
            subject: vm.clone(),
        }),
        Fix::ShutDownVappInSource { vapp } => Err(RunError::NeedsSourceSession {
            subject: vapp.clone(),
        }),
        Fix::Manual { instruction } => Err(RunError::ManualFix {
            instruction: instruction.clone(),
        }),
    }
}

/// Destroys a VM and its snapshots with their VBDs and VIFs (xapi's `VM.destroy` removes
/// those), never their VDIs.
pub(super) async fn destroy_vm_keeping_disks(
    session: &SessionHandle,
    recorder: &mut Recorder,
    uuid: &str,
    vm: &Ref<Vm>,
    snapshots: &[Ref<Vm>],
) -> Result<(), RunError> {
    for snapshot in snapshots {
        recorder
            .call("VM.destroy", uuid, session.vm().destroy(snapshot))
            .await?;
    }
    recorder
        .call("VM.destroy", uuid, session.vm().destroy(vm))
        .await
}
