//! `VM.recover`, `VM.assert_can_be_recovered` and `VM.get_SRs_required_for_recovery` (and the
//! `VM_appliance` variants), called with the read-only session of `VDI.open_database` (`self`
//! is a VM of that foreign database) and `session_to`, a session of the pool to recover into
//! (`Xapi_dr.recover_vms`):
//!
//! - the DR licence must allow it (`LICENCE_RESTRICTION`), and `session_to` must have the
//!   permission `VDI.open_database` (`RBAC_PERMISSION_DENIED`, see `rbac`);
//! - a VM in a vApp is refused (`VM_IS_PART_OF_AN_APPLIANCE`);
//! - every SR of its disks must exist by UUID in the target with an attached PBD
//!   (`VM_REQUIRES_SR`, with `force` too);
//! - then every pre-check of [`plan`] (disks, suspend image, same UUID, MAC seed) for every VM
//!   of the call, before anything changes: a recovery that fails leaves the target as it was;
//! - the VM keeps its UUID, MACs and `mac_seed`, gets `version + 1`, is halted (or stays
//!   suspended) and leaves its vApp; its snapshots come with it (`snapshot_of` pointing at the
//!   recovered VM); references are mapped into the target or nulled ([`refs`]), networks
//!   matched or made as xapi's import does ([`apply`]); the SRs it needs stop being
//!   `introduced_by` a DR task.

mod apply;
mod plan;
mod refs;

use std::collections::BTreeMap;
use std::sync::Arc;
use xapi_core::api::ErrorCode;

use xapi_core::wire::{Failure, Value};

use crate::api_error::{failure, session_invalid, vm_bad_power_state};
use crate::model::defaults::NULL_REF;
use crate::model::store::Db;
use crate::pool::Pool;
use plan::VmPlan;

/// Whether `(class, message)` is a recovery call this module answers.
pub(crate) fn handles(class: &str, message: &str) -> bool {
    (class == "VM" || class == "VM_appliance")
        && matches!(
            message,
            "recover" | "assert_can_be_recovered" | "get_SRs_required_for_recovery"
        )
}

/// Answer a recovery call. `params` are the wire parameters (foreign session first).
pub(crate) fn handle(
    foreign: &Pool,
    target: &Arc<Pool>,
    class: &str,
    message: &str,
    params: &[Value],
) -> Result<Value, Failure> {
    let text = |i: usize| match params.get(i) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let vm = text(1);
    let session_to = text(2);
    let force = matches!(params.get(3), Some(Value::Bool(true)));
    let source = foreign.db();
    let mut db = target.db();
    if !db.exists("session", &session_to) {
        return Err(session_invalid(&session_to));
    }
    if message == "recover" {
        crate::rpc::licence::assert_dr_allowed(&db)?;
        if !crate::rpc::rbac::session_has(&db, &session_to, "vdi.open_database") {
            return Err(crate::rpc::rbac::denied("VDI.open_database"));
        }
    }
    if class == "VM_appliance" {
        return appliance(&source, &mut db, &vm, message, force);
    }
    source.object("VM", &vm)?;
    match message {
        "get_SRs_required_for_recovery" => {
            let missing = missing_srs(&source, &db, &vm)?;
            Ok(Value::Array(
                missing.into_iter().map(Value::String).collect(),
            ))
        }
        "assert_can_be_recovered" => assert_recoverable(&source, &db, &vm).map(|()| Value::Nil),
        _ => {
            assert_not_in_appliance(&source, &vm)?;
            let plans = plan_all(&source, &db, &[vm], force)?;
            recover_planned(&source, &mut db, &plans, force).map(|_| Value::Nil)
        }
    }
}

/// The appliance variants: the same for every member VM; `recover` then puts the recovered
/// VMs into an appliance with the old UUID (reused, or created).
fn appliance(
    source: &Db,
    db: &mut Db,
    appliance: &str,
    message: &str,
    force: bool,
) -> Result<Value, Failure> {
    let members = source.refs_field("VM_appliance", appliance, "VMs")?;
    match message {
        "get_SRs_required_for_recovery" => {
            let mut missing = Vec::new();
            for vm in &members {
                for sr in missing_srs(source, db, vm)? {
                    if !missing.contains(&sr) {
                        missing.push(sr);
                    }
                }
            }
            Ok(Value::Array(
                missing.into_iter().map(Value::String).collect(),
            ))
        }
        "assert_can_be_recovered" => {
            for vm in &members {
                assert_recoverable(source, db, vm)?;
            }
            Ok(Value::Nil)
        }
        _ => {
            let plans = plan_all(source, db, &members, force)?;
            let recovered = recover_planned(source, db, &plans, force)?;
            adopt_into_appliance(source, db, appliance, &recovered)?;
            Ok(Value::Nil)
        }
    }
}

/// Reuse the target's appliance with the foreign one's UUID (emptied, renamed) or make it,
/// then put the recovered VMs that are not templates into it.
fn adopt_into_appliance(
    source: &Db,
    db: &mut Db,
    appliance: &str,
    recovered: &[String],
) -> Result<(), Failure> {
    let uuid = source.str_field("VM_appliance", appliance, "uuid")?;
    let name = source.str_field("VM_appliance", appliance, "name_label")?;
    let description = source.str_field("VM_appliance", appliance, "name_description")?;
    let local = if let Ok(local) = db.by_uuid("VM_appliance", &uuid) {
        for vm in db.refs_field("VM_appliance", &local, "VMs")? {
            db.set_field("VM", &vm, "appliance", Value::String(NULL_REF.to_owned()))?;
        }
        db.set_field("VM_appliance", &local, "name_label", Value::String(name))?;
        db.set_field(
            "VM_appliance",
            &local,
            "name_description",
            Value::String(description),
        )?;
        local
    } else {
        db.create(
            "VM_appliance",
            BTreeMap::from([
                ("uuid".to_owned(), Value::String(uuid)),
                ("name_label".to_owned(), Value::String(name)),
                ("name_description".to_owned(), Value::String(description)),
            ]),
        )?
    };
    for vm in recovered {
        if !matches!(db.field("VM", vm, "is_a_template"), Ok(Value::Bool(true))) {
            db.set_field("VM", vm, "appliance", Value::String(local.clone()))?;
        }
    }
    Ok(())
}

/// `VM_IS_PART_OF_AN_APPLIANCE [vm; appliance]` for a VM of a vApp (recover the vApp).
fn assert_not_in_appliance(source: &Db, vm: &str) -> Result<(), Failure> {
    let appliance = source.str_field("VM", vm, "appliance")?;
    if appliance != NULL_REF && !appliance.is_empty() && source.exists("VM_appliance", &appliance) {
        return Err(failure(
            ErrorCode::VmIsPartOfAnAppliance,
            [vm, appliance.as_str()],
        ));
    }
    Ok(())
}

/// Every pre-check for every VM of the call; the plans of those not skipped.
fn plan_all(source: &Db, db: &Db, vms: &[String], force: bool) -> Result<Vec<VmPlan>, Failure> {
    let mut plans = Vec::new();
    for vm in vms {
        // as xapi's `VM.recover`: checked whatever `force` says
        assert_recoverable(source, db, vm)?;
        if let Some(plan) = plan::plan_vm(source, db, vm, force)? {
            plans.push(plan);
        }
    }
    plan::assert_mac_seeds_free(source, db, &plans)?;
    Ok(plans)
}

/// Carry out checked plans; the recovered VMs. The SRs they need stop being `introduced_by`
/// a DR task (so that `DR_task.destroy` keeps them).
fn recover_planned(
    source: &Db,
    db: &mut Db,
    plans: &[VmPlan],
    force: bool,
) -> Result<Vec<String>, Failure> {
    let recovered = apply::apply(source, db, plans, force)?;
    for plan in plans {
        for sr in required_srs(source, &plan.vm.source)? {
            let uuid = source.str_field("SR", &sr, "uuid").unwrap_or_default();
            if let Some(local) = attached_sr(db, &uuid) {
                db.set_field(
                    "SR",
                    &local,
                    "introduced_by",
                    Value::String(NULL_REF.to_owned()),
                )?;
            }
        }
    }
    Ok(recovered)
}

/// The SRs (foreign refs) of the VM's non-CD disks, ISO libraries left out.
fn required_srs(source: &Db, vm: &str) -> Result<Vec<String>, Failure> {
    let mut srs = Vec::new();
    for vbd in source.refs_field("VM", vm, "VBDs")? {
        if source.str_field("VBD", &vbd, "type")? == "CD" {
            continue;
        }
        let vdi = source.str_field("VBD", &vbd, "VDI")?;
        let Ok(sr) = source.str_field("VDI", &vdi, "SR") else {
            continue;
        };
        let is_iso = source
            .str_field("SR", &sr, "content_type")
            .is_ok_and(|c| c == "iso");
        if !is_iso && !srs.contains(&sr) {
            srs.push(sr);
        }
    }
    Ok(srs)
}

/// The target's SR with this uuid, if it has an attached PBD.
fn attached_sr(db: &Db, uuid: &str) -> Option<String> {
    let sr = db.by_uuid("SR", uuid).ok()?;
    db.refs_field("SR", &sr, "PBDs")
        .ok()?
        .iter()
        .any(|pbd| {
            matches!(
                db.field("PBD", pbd, "currently_attached"),
                Ok(Value::Bool(true))
            )
        })
        .then_some(sr)
}

fn missing_srs(source: &Db, db: &Db, vm: &str) -> Result<Vec<String>, Failure> {
    Ok(required_srs(source, vm)?
        .into_iter()
        .filter(|sr| {
            let uuid = source.str_field("SR", sr, "uuid").unwrap_or_default();
            attached_sr(db, &uuid).is_none()
        })
        .collect())
}

fn assert_recoverable(source: &Db, db: &Db, vm: &str) -> Result<(), Failure> {
    match missing_srs(source, db, vm)?.first() {
        Some(sr) => Err(failure(ErrorCode::VmRequiresSr, [vm, sr.as_str()])),
        None => Ok(()),
    }
}

/// Whether a VM brought back under a UUID the pool already uses may be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MadeWay {
    /// No VM had the UUID, or the halted one that had it is gone: create the VM.
    Clear,
    /// A running VM has the UUID and `force` was given: skip this VM.
    SkipRunning,
}

/// Make way for a VM of `uuid` at `version`, as xapi's import (`restore=true`) does: a halted
/// VM with that UUID is destroyed with its VBDs and VIFs, unless its `version` is not older
/// (`VM_TO_IMPORT_IS_NOT_NEWER_VERSION`, ignored with `force`); a VM that is not halted fails
/// with `VM_BAD_POWER_STATE`, or is skipped with `force`.
pub(crate) fn make_way_for(
    db: &mut Db,
    uuid: &str,
    version: i64,
    force: bool,
) -> Result<MadeWay, Failure> {
    let Ok(existing) = db.by_uuid("VM", uuid) else {
        return Ok(MadeWay::Clear);
    };
    let state = db.str_field("VM", &existing, "power_state")?;
    if state != "Halted" {
        return if force {
            Ok(MadeWay::SkipRunning)
        } else {
            Err(vm_bad_power_state(&existing, "halted", &state))
        };
    }
    let existing_version = db.int_field("VM", &existing, "version")?;
    if existing_version >= version && !force {
        return Err(failure(
            ErrorCode::VmToImportIsNotNewerVersion,
            [
                existing.clone(),
                existing_version.to_string(),
                version.to_string(),
            ],
        ));
    }
    for vbd in db.refs_field("VM", &existing, "VBDs")? {
        db.destroy("VBD", &vbd)?;
    }
    for vif in db.refs_field("VM", &existing, "VIFs")? {
        db.destroy("VIF", &vif)?;
    }
    db.destroy("VM", &existing)?;
    Ok(MadeWay::Clear)
}
