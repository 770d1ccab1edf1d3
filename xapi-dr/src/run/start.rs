//! The start phase: the plan's start sequence (standalone VMs first, by `order` then name, then
//! vApps), one `Async.VM.start` or `Async.VM_appliance.start` per step, their tasks followed
//! through one shared event stream. xapi sleeps `start_delay` inside those calls.

use std::collections::HashMap;

use xapi_core::api::{TaskStatusType, Vm, VmAppliance};
use xapi_core::wire::Ref;

use super::report::RunEvent;
use super::tasks::TaskTracker;
use super::{Run, RunError};
use crate::plan::StartStep;

impl Run {
    /// Starts what the plan starts; a failed start is reported and the others go ahead.
    pub(super) async fn start_all(&mut self) -> Result<(), RunError> {
        let steps: Vec<StartStep> = self
            .plan
            .start
            .iter()
            .filter(|step| {
                let uuid = match step {
                    StartStep::Vm { uuid, .. } | StartStep::Vapp { uuid, .. } => uuid,
                };
                let done = self.journal.started.contains(uuid);
                if done {
                    self.recorder.emit(RunEvent::AlreadyDone {
                        step: "start".into(),
                        uuid: uuid.clone(),
                    });
                }
                !done
            })
            .cloned()
            .collect();
        if steps.is_empty() {
            return Ok(());
        }
        let session = self.session.clone();
        let tracker = TaskTracker::new(&session);
        let vms: HashMap<String, Ref<Vm>> = self
            .recorder
            .call("VM.get_all_records", "pool", session.vm().get_all_records())
            .await?
            .into_iter()
            .filter(|(_, vm)| !vm.is_a_snapshot && !vm.is_a_template)
            .map(|(r, vm)| ((*vm.uuid).to_owned(), r))
            .collect();
        let needs_vapps = steps.iter().any(|s| matches!(s, StartStep::Vapp { .. }));
        let vapps: HashMap<String, Ref<VmAppliance>> = if needs_vapps {
            self.recorder
                .call(
                    "VM_appliance.get_all_records",
                    "pool",
                    session.vm_appliance().get_all_records(),
                )
                .await?
                .into_iter()
                .map(|(r, app)| ((*app.uuid).to_owned(), r))
                .collect()
        } else {
            HashMap::new()
        };
        let mut failed = Vec::new();
        for step in steps {
            let (method, uuid, paused) = match &step {
                StartStep::Vm { uuid, paused, .. } => ("Async.VM.start", uuid, *paused),
                StartStep::Vapp { uuid, paused, .. } => ("Async.VM_appliance.start", uuid, *paused),
            };
            let started = match &step {
                StartStep::Vm { .. } => {
                    let Some(vm) = vms.get(uuid) else {
                        failed.push(format!("VM {uuid} is not in the target pool"));
                        continue;
                    };
                    self.recorder
                        .call(method, uuid, async {
                            let handle = session.vm().start_async(vm, paused, false).await?;
                            Ok(handle.task().clone())
                        })
                        .await
                }
                StartStep::Vapp { .. } => {
                    let Some(app) = vapps.get(uuid) else {
                        failed.push(format!("vApp {uuid} is not in the target pool"));
                        continue;
                    };
                    self.recorder
                        .call(method, uuid, async {
                            let handle = session.vm_appliance().start_async(app, paused).await?;
                            Ok(handle.task().clone())
                        })
                        .await
                }
            };
            let task = match started {
                Ok(task) => task,
                Err(error) => {
                    failed.push(error.to_string());
                    continue;
                }
            };
            let record = tracker
                .finished(&task)
                .await
                .ok_or_else(|| RunError::EventsEnded {
                    subject: uuid.clone(),
                })?;
            let _ = self
                .recorder
                .call("task.destroy", uuid, session.task().destroy(&task))
                .await;
            if record.status == TaskStatusType::Success {
                self.journal.started.insert(uuid.clone());
                self.save()?;
                self.recorder.emit(RunEvent::Started {
                    uuid: uuid.clone(),
                    paused,
                });
            } else {
                failed.push(format!(
                    "{method} {uuid}: {:?} {}",
                    record.status,
                    record
                        .error_info
                        .iter()
                        .map(|s| &**s)
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(RunError::StartsFailed { failed })
        }
    }
}
