//! `VM.recover`, `VM.assert_can_be_recovered` and `VM.get_SRs_required_for_recovery`, called
//! with the read-only session of `VDI.open_database` (`self` is a VM of that foreign database)
//! and `session_to`, a session of the pool to recover into (`Xapi_dr.recover_vms`):
//!
//! - a VM in a vApp is refused (`VM_IS_PART_OF_AN_APPLIANCE`);
//! - every SR of its disks must exist by UUID in the target with an attached PBD
//!   (`VM_REQUIRES_SR`);
//! - a VM with the same UUID in the target: not halted → `VM_BAD_POWER_STATE` (skipped with
//!   `force`); halted with a `version` at least the imported one →
//!   `VM_TO_IMPORT_IS_NOT_NEWER_VERSION` (replaced with `force`); older → replaced;
//! - the VM keeps its UUID and MACs, gets `version + 1`, is halted and leaves its vApp; disks are
//!   found by SR UUID and location (`VDI_LOCATION_MISSING`, skipped with `force`).
//!
//! Snapshots of the VM are not recovered by the simulator.

use std::collections::BTreeMap;
use std::sync::Arc;
use xapi_core::api::ErrorCode;

use xapi_core::wire::{Failure, Value};

use crate::api_error::{failure, session_invalid, vm_bad_power_state};
use crate::model::defaults::NULL_REF;
use crate::model::store::Db;
use crate::pool::Pool;

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
    if !target.db().exists("session", &session_to) {
        return Err(session_invalid(&session_to));
    }
    let source = foreign.db();
    let mut db = target.db();
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
        _ => recover(&source, &mut db, &vm, force, false).map(|_| Value::Nil),
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
            let mut recovered = Vec::new();
            for vm in &members {
                if let Some(new_vm) = recover(source, db, vm, force, true)? {
                    recovered.push(new_vm);
                }
            }
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
                if !matches!(db.field("VM", &vm, "is_a_template"), Ok(Value::Bool(true))) {
                    db.set_field("VM", &vm, "appliance", Value::String(local.clone()))?;
                }
            }
            Ok(Value::Nil)
        }
    }
}

/// The SRs (foreign refs) of the VM's non-CD disks.
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

/// Whether a VM brought back under a UUID the pool already uses may be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MadeWay {
    /// No VM had the UUID, or the halted one that had it is gone: create the VM.
    Clear,
    /// A running VM has the UUID and `force` was given: skip this VM.
    SkipRunning,
}

/// Make way for a VM of `uuid` at `version`, as xapi's import (`restore=true`) and DR
/// recovery both do: a halted VM with that UUID is destroyed with its VBDs and VIFs, unless
/// its `version` is not older (`VM_TO_IMPORT_IS_NOT_NEWER_VERSION`, ignored with `force`); a
/// VM that is not halted fails with `VM_BAD_POWER_STATE`, or is skipped with `force`.
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

fn assert_recoverable(source: &Db, db: &Db, vm: &str) -> Result<(), Failure> {
    match missing_srs(source, db, vm)?.first() {
        Some(sr) => Err(failure(ErrorCode::VmRequiresSr, [vm, sr.as_str()])),
        None => Ok(()),
    }
}

/// Recover one VM; the new reference, or `None` when `force` skipped it.
fn recover(
    source: &Db,
    db: &mut Db,
    vm: &str,
    force: bool,
    in_appliance: bool,
) -> Result<Option<String>, Failure> {
    let appliance = source.str_field("VM", vm, "appliance")?;
    if !in_appliance && appliance != NULL_REF && !appliance.is_empty() {
        return Err(failure(
            ErrorCode::VmIsPartOfAnAppliance,
            [vm, appliance.as_str()],
        ));
    }
    assert_recoverable(source, db, vm)?;
    let uuid = source.str_field("VM", vm, "uuid")?;
    let version = source.int_field("VM", vm, "version")?;
    if make_way_for(db, &uuid, version, force)? == MadeWay::SkipRunning {
        return Ok(None);
    }
    // the disks first, so that a missing one fails before anything is created
    let mut disks = Vec::new();
    for vbd in source.refs_field("VM", vm, "VBDs")? {
        let vdi = source.str_field("VBD", &vbd, "VDI")?;
        let target_vdi = if source.exists("VDI", &vdi) {
            let sr_uuid = source
                .str_field("VDI", &vdi, "SR")
                .and_then(|sr| source.str_field("SR", &sr, "uuid"))
                .unwrap_or_default();
            let location = source.str_field("VDI", &vdi, "location")?;
            let found = attached_sr(db, &sr_uuid).and_then(|sr| {
                db.find("VDI", "location", &Value::String(location.clone()))
                    .ok()?
                    .into_iter()
                    .find(|candidate| db.str_field("VDI", candidate, "SR").is_ok_and(|s| s == sr))
            });
            match found {
                Some(found) => found,
                None if force => continue,
                None => return Err(failure(ErrorCode::VdiLocationMissing, [sr_uuid, location])),
            }
        } else {
            NULL_REF.to_owned()
        };
        disks.push((vbd, target_vdi));
    }
    let mut fields = copy(source, "VM", vm)?;
    let state = source.str_field("VM", vm, "power_state")?;
    for (field, value) in [
        ("version", Value::Int(version + 1)),
        (
            "power_state",
            Value::String(if state == "Suspended" {
                state
            } else {
                "Halted".to_owned()
            }),
        ),
        ("resident_on", Value::String(NULL_REF.to_owned())),
        ("appliance", Value::String(NULL_REF.to_owned())),
        ("snapshot_of", Value::String(NULL_REF.to_owned())),
        ("parent", Value::String(NULL_REF.to_owned())),
        ("metrics", Value::String(NULL_REF.to_owned())),
        ("guest_metrics", Value::String(NULL_REF.to_owned())),
        ("domid", Value::Int(-1)),
    ] {
        fields.insert(field.to_owned(), value);
    }
    crate::rpc::vm::ensure_metrics(db, &mut fields)?;
    let new_vm = db.create("VM", fields)?;
    for (vbd, vdi) in disks {
        let mut fields = copy(source, "VBD", &vbd)?;
        fields.remove("uuid");
        fields.insert("VM".to_owned(), Value::String(new_vm.clone()));
        fields.insert("VDI".to_owned(), Value::String(vdi));
        fields.insert("currently_attached".to_owned(), Value::Bool(false));
        db.create("VBD", fields)?;
    }
    let fallback_network = db
        .refs("network")?
        .into_iter()
        .next()
        .unwrap_or_else(|| NULL_REF.to_owned());
    for vif in source.refs_field("VM", vm, "VIFs")? {
        let mut fields = copy(source, "VIF", &vif)?;
        let network_uuid = source
            .str_field("VIF", &vif, "network")
            .and_then(|n| source.str_field("network", &n, "uuid"))
            .unwrap_or_default();
        let network = db
            .by_uuid("network", &network_uuid)
            .unwrap_or_else(|_| fallback_network.clone());
        fields.remove("uuid");
        fields.insert("VM".to_owned(), Value::String(new_vm.clone()));
        fields.insert("network".to_owned(), Value::String(network));
        fields.insert("currently_attached".to_owned(), Value::Bool(false));
        db.create("VIF", fields)?;
    }
    for sr in required_srs(source, vm)? {
        let uuid = source.str_field("SR", &sr, "uuid").unwrap_or_default();
        if let Some(local) = attached_sr(db, &uuid) {
            let _ = db.set_field(
                "SR",
                &local,
                "introduced_by",
                Value::String(NULL_REF.to_owned()),
            );
        }
    }
    Ok(Some(new_vm))
}

/// The fields of a foreign object, ready for `Db::create` in the target.
fn copy(source: &Db, class: &str, reference: &str) -> Result<BTreeMap<String, Value>, Failure> {
    Ok(source
        .object(class, reference)?
        .fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect())
}
