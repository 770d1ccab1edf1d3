//! The recovery phase: each copy's database opened once (`VDI.open_database`), its vApps then
//! its standalone VMs recovered one call each with the two sessions, journalled around every
//! call, and the read-only session logged out.

use std::collections::{BTreeMap, HashMap};

use xapi_core::api::{Vdi, VdiType, Vm, VmAppliance};
use xapi_core::wire::Ref;

use super::journal::InFlight;
use super::report::RunEvent;
use super::{Run, RunError};
use crate::reconcile::CopyId;
use crate::source::{ForeignDatabase, Origin};

/// One recovery call to make.
struct Recovery {
    kind: &'static str,
    uuid: String,
    name_label: String,
    /// Member VM UUIDs of a vApp; the VM itself otherwise.
    vms: Vec<String>,
}

impl Run {
    /// Recovers every planned vApp and standalone VM, copy by copy, vApps first (as
    /// XenCenter). What the journal records as recovered is skipped.
    pub(super) async fn recover_all(&mut self) -> Result<(), RunError> {
        let mut by_copy: BTreeMap<CopyKey, (CopyId, Vec<Recovery>)> = BTreeMap::new();
        for vapp in &self.plan.vapps {
            by_copy
                .entry(CopyKey::of(&vapp.copy))
                .or_insert_with(|| (vapp.copy.clone(), Vec::new()))
                .1
                .push(Recovery {
                    kind: "vApp",
                    uuid: vapp.uuid.clone(),
                    name_label: vapp.name_label.clone(),
                    vms: vapp.vms.clone(),
                });
        }
        for vm in self.plan.vms.iter().filter(|vm| vm.vapp.is_none()) {
            by_copy
                .entry(CopyKey::of(&vm.copy))
                .or_insert_with(|| (vm.copy.clone(), Vec::new()))
                .1
                .push(Recovery {
                    kind: "VM",
                    uuid: vm.uuid.clone(),
                    name_label: vm.name_label.clone(),
                    vms: vec![vm.uuid.clone()],
                });
        }
        self.settle_in_flight().await?;
        let mut vdis = None;
        for (copy, recoveries) in by_copy.into_values() {
            let pending: Vec<Recovery> = recoveries
                .into_iter()
                .filter(|r| {
                    let done = if r.kind == "vApp" {
                        self.journal.recovered_vapps.contains(&r.uuid)
                    } else {
                        self.journal.recovered_vms.contains(&r.uuid)
                    };
                    if done {
                        self.recorder.emit(RunEvent::AlreadyDone {
                            step: "recover".into(),
                            uuid: r.uuid.clone(),
                        });
                    }
                    !done
                })
                .collect();
            if pending.is_empty() {
                continue;
            }
            if vdis.is_none() {
                let session = self.session.clone();
                vdis = Some(
                    self.recorder
                        .call(
                            "VDI.get_all_records",
                            "pool",
                            session.vdi().get_all_records(),
                        )
                        .await?,
                );
            }
            let vdi = self
                .metadata_vdi(&copy, vdis.as_ref().expect("read above"))
                .await?;
            let session = self.session.clone();
            let reference = self
                .recorder
                .call(
                    "VDI.open_database",
                    &copy.pool_uuid,
                    session.vdi().open_database(&vdi),
                )
                .await?;
            let foreign = ForeignDatabase::attach(&session, vdi, reference);
            let result = self.recover_from(&foreign, &copy, pending).await;
            let close = foreign.session().clone();
            let closed = self
                .recorder
                .call("session.logout", &copy.pool_uuid, close.logout())
                .await;
            result?;
            closed?;
        }
        Ok(())
    }

    async fn recover_from(
        &mut self,
        foreign: &ForeignDatabase,
        copy: &CopyId,
        pending: Vec<Recovery>,
    ) -> Result<(), RunError> {
        let reader = foreign.session().clone();
        let vms: HashMap<String, Ref<Vm>> = self
            .recorder
            .call(
                "VM.get_all_records",
                &copy.pool_uuid,
                reader.vm().get_all_records(),
            )
            .await?
            .into_iter()
            .map(|(r, vm)| ((*vm.uuid).to_owned(), r))
            .collect();
        let needs_vapps = pending.iter().any(|r| r.kind == "vApp");
        let vapps: HashMap<String, Ref<VmAppliance>> = if needs_vapps {
            self.recorder
                .call(
                    "VM_appliance.get_all_records",
                    &copy.pool_uuid,
                    reader.vm_appliance().get_all_records(),
                )
                .await?
                .into_iter()
                .map(|(r, app)| ((*app.uuid).to_owned(), r))
                .collect()
        } else {
            HashMap::new()
        };
        let session_to = self.session.reference();
        let force = self.options.force;
        for recovery in pending {
            let not_in_copy = || RunError::NotInCopy {
                kind: recovery.kind,
                uuid: recovery.uuid.clone(),
                pool_uuid: copy.pool_uuid.clone(),
            };
            self.journal.in_flight = Some(InFlight {
                kind: recovery.kind.to_owned(),
                uuid: recovery.uuid.clone(),
            });
            self.save()?;
            let result = if recovery.kind == "vApp" {
                let app = vapps.get(&recovery.uuid).ok_or_else(not_in_copy)?;
                self.recorder
                    .call(
                        "VM_appliance.recover",
                        &recovery.uuid,
                        reader.vm_appliance().recover(app, &session_to, force),
                    )
                    .await
            } else {
                let vm = vms.get(&recovery.uuid).ok_or_else(not_in_copy)?;
                self.recorder
                    .call(
                        "VM.recover",
                        &recovery.uuid,
                        reader.vm().recover(vm, &session_to, force),
                    )
                    .await
            };
            match &result {
                Ok(()) => {
                    self.journal.in_flight = None;
                    if recovery.kind == "vApp" {
                        self.journal.recovered_vapps.insert(recovery.uuid.clone());
                    }
                    self.journal
                        .recovered_vms
                        .extend(recovery.vms.iter().cloned());
                    self.save()?;
                    self.recorder.emit(RunEvent::Recovered {
                        kind: recovery.kind.to_owned(),
                        uuid: recovery.uuid.clone(),
                        name_label: recovery.name_label.clone(),
                    });
                }
                // xapi answered with an error: without `force` it rolled back, so nothing
                // is in flight. A transport error may have run: the next run checks.
                Err(RunError::Call { source, .. })
                    if matches!(**source, xapi_core::Error::Api(_)) =>
                {
                    self.journal.in_flight = None;
                    self.save()?;
                }
                Err(_) => {}
            }
            result?;
        }
        Ok(())
    }

    /// A recovery left in flight by an earlier run: done if the target holds what it
    /// recovers (the VMs with a version above the copy's), else sent again.
    pub(super) async fn settle_in_flight(&mut self) -> Result<(), RunError> {
        let Some(in_flight) = self.journal.in_flight.clone() else {
            return Ok(());
        };
        let members: Vec<String> = if in_flight.kind == "vApp" {
            self.plan
                .vapps
                .iter()
                .find(|a| a.uuid == in_flight.uuid)
                .map(|a| a.vms.clone())
                .unwrap_or_default()
        } else {
            vec![in_flight.uuid.clone()]
        };
        let session = self.session.clone();
        let target = self
            .recorder
            .call("VM.get_all_records", "pool", session.vm().get_all_records())
            .await?;
        let version_in_plan = |uuid: &str| {
            self.plan
                .vms
                .iter()
                .find(|vm| vm.uuid == uuid)
                .map(|vm| vm.version)
        };
        let done = !members.is_empty()
            && members.iter().all(|uuid| {
                target.values().any(|vm| {
                    &*vm.uuid == uuid
                        && !vm.is_a_snapshot
                        && version_in_plan(uuid).is_some_and(|v| vm.version > v)
                })
            });
        if done {
            if in_flight.kind == "vApp" {
                self.journal.recovered_vapps.insert(in_flight.uuid.clone());
            }
            self.journal.recovered_vms.extend(members);
        }
        self.journal.in_flight = None;
        self.save()
    }

    /// The metadata VDI in the target that holds `copy`: by UUID for a copy read through the
    /// API; for a copy read from a file, a metadata VDI of the same pool (not a live redo
    /// log), preferring the one xapi marks latest.
    async fn metadata_vdi(
        &mut self,
        copy: &CopyId,
        vdis: &HashMap<Ref<Vdi>, xapi_core::api::VdiRecord>,
    ) -> Result<Ref<Vdi>, RunError> {
        if let Origin::Vdi { vdi_uuid, .. } = &copy.origin
            && let Some((reference, _)) = vdis.iter().find(|(_, v)| &*v.uuid == vdi_uuid)
        {
            return Ok(reference.clone());
        }
        let mut candidates: Vec<(&Ref<Vdi>, &xapi_core::api::VdiRecord)> = vdis
            .iter()
            .filter(|(_, v)| v.r#type == VdiType::Metadata)
            .collect();
        candidates.sort_by_key(|(_, v)| (!v.metadata_latest, (*v.uuid).to_owned()));
        let session = self.session.clone();
        for (reference, vdi) in candidates {
            let pool = self
                .recorder
                .call(
                    "VDI.read_database_pool_uuid",
                    &vdi.uuid,
                    session.vdi().read_database_pool_uuid(reference),
                )
                .await?;
            if *pool == *copy.pool_uuid {
                return Ok(reference.clone());
            }
        }
        Err(RunError::NoMetadataVdi {
            pool_uuid: copy.pool_uuid.clone(),
            origin: copy.origin.to_string(),
        })
    }
}

/// Orders copies for grouping.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CopyKey(String, Origin, i64);

impl CopyKey {
    fn of(copy: &CopyId) -> Self {
        Self(copy.pool_uuid.clone(), copy.origin.clone(), copy.generation)
    }
}
