//! Carrying out a recovery plan whose pre-checks all passed: replaced VMs go (with their VBDs,
//! VIFs and metrics), then each VM and its snapshots are made with the foreign UUIDs, MACs and
//! `mac_seed`, `version + 1`, every reference mapped into the target (`refs`), VBDs on the
//! disks found, VIFs on matched networks (a network is made, as xapi's import makes one, when
//! none matches). Whatever was made is destroyed again if a later step fails, unless `force`.

use std::collections::BTreeMap;

use xapi_core::wire::{Failure, Value};

use super::plan::{ObjectPlan, VmPlan};
use super::refs::{Mapped, map_ref, matching_network, translated_fields};
use crate::model::defaults::NULL_REF;
use crate::model::store::Db;

/// The objects made so far, newest last.
#[derive(Debug, Default)]
struct Made(Vec<(&'static str, String)>);

impl Made {
    /// Destroy them again, newest first.
    fn undo(self, db: &mut Db) {
        for (class, reference) in self.0.into_iter().rev() {
            if db.exists(class, &reference)
                && let Err(err) = db.destroy(class, &reference)
            {
                tracing::warn!(
                    class,
                    reference,
                    code = err.code.as_str(),
                    "recovery clean-up"
                );
            }
        }
    }
}

/// Carry out `plans`; the new references of the recovered VMs (not their snapshots).
pub(super) fn apply(
    source: &Db,
    db: &mut Db,
    plans: &[VmPlan],
    force: bool,
) -> Result<Vec<String>, Failure> {
    let mut made = Made::default();
    match apply_all(source, db, plans, &mut made) {
        Ok(vms) => Ok(vms),
        Err(err) => {
            if !force {
                made.undo(db);
            }
            Err(err)
        }
    }
}

fn apply_all(
    source: &Db,
    db: &mut Db,
    plans: &[VmPlan],
    made: &mut Made,
) -> Result<Vec<String>, Failure> {
    for plan in plans {
        for object in std::iter::once(&plan.vm).chain(&plan.snapshots) {
            if let Some(old) = &object.replaces
                && db.exists("VM", old)
            {
                crate::rpc::vm::destroy(db, old)?;
            }
        }
    }
    let mut mapped = Mapped::new();
    let mut vms = Vec::new();
    for plan in plans {
        let vm = create_vm(source, db, &plan.vm, &mut mapped, made)?;
        vms.push(vm);
        for snapshot in &plan.snapshots {
            create_vm(source, db, snapshot, &mut mapped, made)?;
        }
        for object in std::iter::once(&plan.vm).chain(&plan.snapshots) {
            create_devices(source, db, object, &mut mapped, made)?;
        }
    }
    Ok(vms)
}

/// Make the VM (or snapshot) record of `object`.
fn create_vm(
    source: &Db,
    db: &mut Db,
    object: &ObjectPlan,
    mapped: &mut Mapped,
    made: &mut Made,
) -> Result<String, Failure> {
    let foreign = &object.source;
    let mut fields = translated_fields(source, db, "VM", foreign, mapped)?;
    let version = source.int_field("VM", foreign, "version")?;
    let state = if object.suspend_vdi.is_some() {
        "Suspended"
    } else {
        "Halted"
    };
    let null = || Value::String(NULL_REF.to_owned());
    for (field, value) in [
        ("version", Value::Int(version + 1)),
        ("power_state", Value::String(state.to_owned())),
        (
            "suspend_VDI",
            object.suspend_vdi.clone().map_or_else(null, Value::String),
        ),
        ("resident_on", null()),
        ("scheduled_to_be_resident_on", null()),
        ("appliance", null()),
        ("protection_policy", null()),
        ("metrics", null()),
        ("guest_metrics", null()),
        ("domid", Value::Int(-1)),
        ("current_operations", Value::Struct(BTreeMap::new())),
    ] {
        if fields.contains_key(field) {
            fields.insert(field.to_owned(), value);
        }
    }
    // a pre-Boston restart priority "0".."3" is an order
    if let Some(Value::String(priority)) = fields.get("ha_restart_priority")
        && let Ok(order @ 0..=3) = priority.parse::<i64>()
    {
        fields.insert(
            "ha_restart_priority".to_owned(),
            Value::String("restart".to_owned()),
        );
        fields.insert("order".to_owned(), Value::Int(order));
    }
    if let Some(metrics) = crate::rpc::vm::ensure_metrics(db, &mut fields)? {
        made.0.push(("VM_metrics", metrics));
    }
    let vm = db.create("VM", fields)?;
    made.0.push(("VM", vm.clone()));
    mapped.insert(foreign.clone(), vm.clone());
    // snapshots made before their VM, or a VM made after its snapshots: links both ways
    for (field, class) in [("snapshot_of", "VM"), ("parent", "VM")] {
        let foreign_target = source.str_field("VM", foreign, field)?;
        let local = map_ref(source, db, class, &foreign_target, mapped);
        if db.str_field("VM", &vm, field)? != local {
            db.set_field("VM", &vm, field, Value::String(local))?;
        }
    }
    for (other_foreign, other_local) in mapped.clone() {
        if other_local == vm || !db.exists("VM", &other_local) {
            continue;
        }
        for field in ["snapshot_of", "parent"] {
            if source.str_field("VM", &other_foreign, field).ok().as_ref() == Some(foreign)
                && db.str_field("VM", &other_local, field)? != vm
            {
                db.set_field("VM", &other_local, field, Value::String(vm.clone()))?;
            }
        }
    }
    Ok(vm)
}

/// Make the VBDs and VIFs of `object` (already made).
fn create_devices(
    source: &Db,
    db: &mut Db,
    object: &ObjectPlan,
    mapped: &mut Mapped,
    made: &mut Made,
) -> Result<(), Failure> {
    let vm = mapped
        .get(&object.source)
        .cloned()
        .ok_or_else(|| crate::api_error::internal("recovered VM not made"))?;
    for (vbd, vdi) in &object.disks {
        let mut fields = translated_fields(source, db, "VBD", vbd, mapped)?;
        fields.insert("VM".to_owned(), Value::String(vm.clone()));
        fields.insert("VDI".to_owned(), Value::String(vdi.clone()));
        if vdi == NULL_REF {
            fields.insert("empty".to_owned(), Value::Bool(true));
        }
        fields.insert("currently_attached".to_owned(), Value::Bool(false));
        fields.insert("metrics".to_owned(), Value::String(NULL_REF.to_owned()));
        keep_uuid_if_free(db, "VBD", &mut fields);
        let made_vbd = db.create("VBD", fields)?;
        made.0.push(("VBD", made_vbd));
    }
    for vif in source.refs_field("VM", &object.source, "VIFs")? {
        let foreign_network = source.str_field("VIF", &vif, "network")?;
        let network = network_for(source, db, &foreign_network, mapped, made)?;
        let mut fields = translated_fields(source, db, "VIF", &vif, mapped)?;
        fields.insert("VM".to_owned(), Value::String(vm.clone()));
        fields.insert("network".to_owned(), Value::String(network));
        fields.insert("currently_attached".to_owned(), Value::Bool(false));
        fields.insert("metrics".to_owned(), Value::String(NULL_REF.to_owned()));
        keep_uuid_if_free(db, "VIF", &mut fields);
        let made_vif = db.create("VIF", fields)?;
        made.0.push(("VIF", made_vif));
    }
    Ok(())
}

/// A full restore keeps device UUIDs; one the target already uses is given up for a new one.
fn keep_uuid_if_free(db: &Db, class: &str, fields: &mut BTreeMap<String, Value>) {
    if let Some(Value::String(uuid)) = fields.get("uuid")
        && db.by_uuid(class, uuid).is_ok()
    {
        fields.remove("uuid");
    }
}

/// The target network for a foreign one: matched (`refs::matching_network`), or made from the
/// foreign record once per recovery (new UUID, no PIFs).
fn network_for(
    source: &Db,
    db: &mut Db,
    foreign: &str,
    mapped: &mut Mapped,
    made: &mut Made,
) -> Result<String, Failure> {
    if let Some(local) = mapped.get(foreign) {
        return Ok(local.clone());
    }
    if !source.exists("network", foreign) {
        return Ok(NULL_REF.to_owned());
    }
    let local = if let Some(found) = matching_network(source, db, foreign) {
        found
    } else {
        let mut fields = BTreeMap::new();
        for field in [
            "name_label",
            "name_description",
            "bridge",
            "MTU",
            "other_config",
        ] {
            if let Ok(value) = source.field("network", foreign, field) {
                fields.insert(field.to_owned(), value.clone());
            }
        }
        let network = db.create("network", fields)?;
        made.0.push(("network", network.clone()));
        network
    };
    mapped.insert(foreign.to_owned(), local.clone());
    Ok(local)
}
