//! A test failover's clean-up, driven by the journal alone (so it also runs after a crash,
//! from the file): recovered VMs shut down and destroyed with their snapshots, VBDs and VIFs
//! but never their disks; recovered vApps destroyed; DR tasks destroyed; SRs the run
//! introduced forgotten (unplugged first); networks the run or its import created removed;
//! fixes unwound in reverse order. Every step is journalled, so a clean-up that stops can be
//! run again.

use std::path::Path;

use xapi_core::api::{ErrorCode, VmPowerState};
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

use super::RunError;
use super::fixes::{apply_in_target, destroy_vm_keeping_disks};
use super::journal::Journal;
use super::recorder::Recorder;
use super::report::{RunEvent, RunReport, now_ms};

/// Whether a failed call only says the object is already gone.
fn already_gone(error: &RunError) -> bool {
    match error {
        RunError::Call { source, .. } => matches!(
            &**source,
            xapi_core::Error::Api(f)
                if f.code == ErrorCode::HandleInvalid || f.code == ErrorCode::UuidInvalid
        ),
        _ => false,
    }
}

/// Runs the clean-up recorded in the journal at `journal_path` (as `xapictl dr cleanup`
/// does after a crash), updating the file as it goes.
pub async fn cleanup_from_journal(
    session: &SessionHandle,
    journal_path: &Path,
) -> Result<RunReport, RunError> {
    let mut journal = Journal::load(journal_path)?;
    let mut recorder = Recorder::default();
    let started_ms = now_ms();
    let result = cleanup(session, &mut journal, Some(journal_path), &mut recorder).await;
    let report = RunReport {
        mode: journal.mode,
        target_pool: journal.target_pool.clone(),
        force: false,
        started_ms,
        finished_ms: now_ms(),
        calls: recorder.calls,
        error: result.as_ref().err().map(ToString::to_string),
        journal,
    };
    result.map(|()| report)
}

fn save(journal: &Journal, path: Option<&Path>) -> Result<(), RunError> {
    if let Some(path) = path {
        journal.save(path)?;
    }
    Ok(())
}

pub(super) async fn cleanup(
    session: &SessionHandle,
    journal: &mut Journal,
    path: Option<&Path>,
    recorder: &mut Recorder,
) -> Result<(), RunError> {
    if journal.mode != crate::plan::Mode::TestFailover {
        return Err(RunError::NotATest(journal.mode));
    }
    let vms = recorder
        .call("VM.get_all_records", "pool", session.vm().get_all_records())
        .await?;
    // recovered VMs (not their snapshots, which go with them)
    let recovered: Vec<_> = vms
        .iter()
        .filter(|(_, vm)| !vm.is_a_snapshot && journal.recovered_vms.contains(&*vm.uuid))
        .map(|(r, vm)| (r.clone(), vm.clone()))
        .collect();
    for (reference, vm) in recovered {
        let uuid = (*vm.uuid).to_owned();
        if vm.power_state != VmPowerState::Halted {
            recorder
                .call(
                    "VM.hard_shutdown",
                    &uuid,
                    session.vm().hard_shutdown(&reference),
                )
                .await?;
        }
        destroy_vm_keeping_disks(session, recorder, &uuid, &reference, &vm.snapshots).await?;
        journal.recovered_vms.remove(&uuid);
        save(journal, path)?;
    }
    // the ones already gone
    journal.recovered_vms.clear();
    save(journal, path)?;

    if !journal.recovered_vapps.is_empty() {
        let apps = recorder
            .call(
                "VM_appliance.get_all_records",
                "pool",
                session.vm_appliance().get_all_records(),
            )
            .await?;
        for (reference, app) in &apps {
            let uuid = (*app.uuid).to_owned();
            if journal.recovered_vapps.contains(&uuid) {
                recorder
                    .call(
                        "VM_appliance.destroy",
                        &uuid,
                        session.vm_appliance().destroy(reference),
                    )
                    .await?;
                journal.recovered_vapps.remove(&uuid);
                save(journal, path)?;
            }
        }
        journal.recovered_vapps.clear();
        save(journal, path)?;
    }

    while let Some(task) = journal.dr_tasks.first().cloned() {
        let result = recorder
            .call(
                "DR_task.destroy",
                &task.srs.join(","),
                session.dr_task().destroy(&Ref::new(&task.reference)),
            )
            .await;
        match result {
            Ok(()) => {}
            Err(error) if already_gone(&error) => {}
            Err(error) => return Err(error),
        }
        journal.dr_tasks.remove(0);
        save(journal, path)?;
    }

    // A successful recovery clears `introduced_by` on the SRs it used, so `DR_task.destroy`
    // leaves them: forget every SR the run introduced that is still there.
    while let Some(sr) = journal.introduced_srs.first().cloned() {
        forget_sr(session, recorder, &sr).await?;
        journal.introduced_srs.remove(0);
        save(journal, path)?;
    }

    let mut networks: Vec<String> = journal.created_networks.clone();
    networks.extend(journal.isolated_network.clone());
    if !networks.is_empty() {
        let records = recorder
            .call(
                "network.get_all_records",
                "pool",
                session.network().get_all_records(),
            )
            .await?;
        for (reference, network) in &records {
            let uuid = (*network.uuid).to_owned();
            // only a network nothing uses any more: never take one from under a VM
            if networks.contains(&uuid) && network.vifs.is_empty() {
                recorder
                    .call(
                        "network.destroy",
                        &uuid,
                        session.network().destroy(reference),
                    )
                    .await?;
            }
        }
        journal.created_networks.clear();
        journal.isolated_network = None;
        save(journal, path)?;
    }

    for index in (0..journal.fixes.len()).rev() {
        if journal.fixes[index].unwound {
            continue;
        }
        if let Some(unwind) = journal.fixes[index].unwind.clone() {
            apply_in_target(session, recorder, &unwind).await?;
        }
        journal.fixes[index].unwound = true;
        save(journal, path)?;
    }
    journal.cleaned_up = true;
    save(journal, path)?;
    recorder.emit(RunEvent::Phase {
        name: "cleaned-up".into(),
    });
    Ok(())
}

/// Forgets an SR: unplugs its attached PBDs, then `SR.forget` (its data stays on the LUN). An
/// SR that is already gone is fine.
pub(super) async fn forget_sr(
    session: &SessionHandle,
    recorder: &mut Recorder,
    uuid: &str,
) -> Result<(), RunError> {
    let sr = match recorder
        .call("SR.get_by_uuid", uuid, session.sr().get_by_uuid(uuid))
        .await
    {
        Ok(sr) => sr,
        Err(error) if already_gone(&error) => return Ok(()),
        Err(error) => return Err(error),
    };
    let record = recorder
        .call("SR.get_record", uuid, session.sr().get_record(&sr))
        .await?;
    for pbd in &record.pbds {
        let attached = recorder
            .call(
                "PBD.get_currently_attached",
                uuid,
                session.pbd().get_currently_attached(pbd),
            )
            .await?;
        if attached {
            recorder
                .call("PBD.unplug", uuid, session.pbd().unplug(pbd))
                .await?;
        }
    }
    recorder
        .call("SR.forget", uuid, session.sr().forget(&sr))
        .await
}
