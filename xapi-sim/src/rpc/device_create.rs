//! `VBD.create`, `VIF.create` and `PBD.create` with xapi's checks before the row is made
//! (`Xapi_vbd.create`, `Xapi_vif_helpers.create`, `Xapi_pbd.create_common`), in xapi's order.
//!
//! References xapi reads are checked (`HANDLE_INVALID [class; ref]`): the VM and, unless the
//! VBD is empty, the VDI of a VBD; the VM and network of a VIF; the SR of a PBD. xapi does not
//! read a PBD's host before making the row, so neither does the simulator.

use std::collections::BTreeMap;

use xapi_core::api::ErrorCode;
use xapi_core::wire::{Failure, Value};

use super::vm::new_mac;
use super::vm_devices::disk_number;
use crate::api_error::{failure, field_type_error, handle_invalid};
use crate::model::store::Db;

/// VDI types a VBD may point at (`Xapi_vbd.create`).
const VBD_VDI_TYPES: &[&str] = &[
    "system",
    "user",
    "ephemeral",
    "suspend",
    "crashdump",
    "metadata",
    "rrd",
    "pvs_cache",
];

/// Whether `(class, message)` is a constructor this module checks.
pub(crate) fn handles(class: &str, message: &str) -> bool {
    message == "create" && matches!(class, "VBD" | "VIF" | "PBD")
}

/// Check and make the row; the record argument is coerced already.
pub(crate) fn handle(db: &mut Db, class: &str, args: &[Value]) -> Result<Value, Failure> {
    let Some(Value::Struct(record)) = args.first() else {
        return Err(field_type_error("args"));
    };
    let mut record = record.clone();
    match class {
        "VBD" => check_vbd(db, &mut record)?,
        "VIF" => check_vif(db, &mut record)?,
        _ => check_pbd(db, &record)?,
    }
    db.create(class, record).map(Value::String)
}

fn text<'a>(record: &'a BTreeMap<String, Value>, field: &str) -> &'a str {
    match record.get(field) {
        Some(Value::String(s)) => s,
        _ => "",
    }
}

fn flag(record: &BTreeMap<String, Value>, field: &str) -> bool {
    matches!(record.get(field), Some(Value::Bool(true)))
}

/// The VM's power state, or `HANDLE_INVALID [VM; ref]`.
fn power_state(db: &Db, vm: &str) -> Result<String, Failure> {
    if !db.exists("VM", vm) {
        return Err(handle_invalid("VM", vm));
    }
    db.str_field("VM", vm, "power_state")
}

/// A device and `currently_attached` are kept only for a suspended VM, as xapi does.
fn unless_suspended(record: &mut BTreeMap<String, Value>, suspended: bool, device_field: bool) {
    if !suspended {
        if device_field {
            record.insert("device".to_owned(), Value::String(String::new()));
        }
        record.insert("currently_attached".to_owned(), Value::Bool(false));
    }
}

fn check_vbd(db: &mut Db, record: &mut BTreeMap<String, Value>) -> Result<(), Failure> {
    let vm = text(record, "VM").to_owned();
    let vdi = text(record, "VDI").to_owned();
    let suspended = power_state(db, &vm)? == "Suspended";
    let empty = flag(record, "empty");
    let vbd_type = text(record, "type").to_owned();
    let mode = text(record, "mode").to_owned();
    if !empty {
        if !db.exists("VDI", &vdi) {
            return Err(handle_invalid("VDI", &vdi));
        }
        let vdi_type = db.str_field("VDI", &vdi, "type")?;
        if !VBD_VDI_TYPES.contains(&vdi_type.as_str()) {
            return Err(failure(
                ErrorCode::VdiIncompatibleType,
                [vdi.as_str(), vdi_type.as_str()],
            ));
        }
    }
    if vbd_type == "CD" && mode != "RO" {
        return Err(failure(ErrorCode::VbdCdsMustBeReadonly, [] as [&str; 0]));
    }
    if vbd_type != "CD" && empty {
        return Err(failure(ErrorCode::VbdNotRemovableMedia, ["in constructor"]));
    }
    if mode == "RW" && matches!(db.field("VDI", &vdi, "read_only")?, Value::Bool(true)) {
        return Err(failure(ErrorCode::VdiReadonly, [vdi.as_str()]));
    }
    let used: Vec<u32> = db
        .refs_field("VM", &vm, "VBDs")?
        .iter()
        .filter_map(|vbd| db.str_field("VBD", vbd, "userdevice").ok())
        .filter_map(|device| disk_number(&device))
        .collect();
    let userdevice = text(record, "userdevice").to_owned();
    if userdevice == "autodetect" {
        let last = if vbd_type == "Floppy" { 1 } else { 254 };
        let free = (0..=last).find(|n| !used.contains(n));
        let free = free.ok_or_else(|| failure(ErrorCode::InvalidDevice, [userdevice.as_str()]))?;
        record.insert("userdevice".to_owned(), Value::String(free.to_string()));
    } else {
        let number = disk_number(&userdevice)
            .ok_or_else(|| failure(ErrorCode::InvalidDevice, [userdevice.as_str()]))?;
        if used.contains(&number) {
            return Err(failure(
                ErrorCode::DeviceAlreadyExists,
                [userdevice.as_str()],
            ));
        }
    }
    unless_suspended(record, suspended, true);
    Ok(())
}

/// `Helpers.is_valid_MAC`: six pairs of hex digits separated by colons.
fn is_valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn check_vif(db: &mut Db, record: &mut BTreeMap<String, Value>) -> Result<(), Failure> {
    let vm = text(record, "VM").to_owned();
    let network = text(record, "network").to_owned();
    let suspended = power_state(db, &vm)? == "Suspended";
    if !db.exists("network", &network) {
        return Err(handle_invalid("network", &network));
    }
    let device = text(record, "device").to_owned();
    let Ok(number) = device.parse::<u32>() else {
        return Err(failure(ErrorCode::InvalidDevice, [device.as_str()]));
    };
    let mac = text(record, "MAC").to_owned();
    let has_seed = matches!(
        db.field("VM", &vm, "other_config"),
        Ok(Value::Struct(other)) if other.contains_key("mac_seed")
    );
    if mac.is_empty() && has_seed {
        let generated = new_mac(db);
        record.insert("MAC".to_owned(), Value::String(generated));
        record.insert("MAC_autogenerated".to_owned(), Value::Bool(true));
    } else if !is_valid_mac(&mac) {
        return Err(failure(ErrorCode::MacInvalid, [mac.as_str()]));
    } else {
        record.insert("MAC_autogenerated".to_owned(), Value::Bool(false));
    }
    let taken = db.refs_field("VM", &vm, "VIFs")?.iter().any(|vif| {
        db.str_field("VIF", vif, "device")
            .is_ok_and(|d| d.parse::<u32>() == Ok(number))
    });
    if taken {
        return Err(failure(ErrorCode::DeviceAlreadyExists, [device.as_str()]));
    }
    unless_suspended(record, suspended, false);
    Ok(())
}

fn check_pbd(db: &Db, record: &BTreeMap<String, Value>) -> Result<(), Failure> {
    let sr = text(record, "SR");
    let host = text(record, "host");
    if !db.exists("SR", sr) {
        return Err(handle_invalid("SR", sr));
    }
    let existing = db
        .refs_field("SR", sr, "PBDs")?
        .into_iter()
        .find(|pbd| db.str_field("PBD", pbd, "host").is_ok_and(|h| h == host));
    if let Some(pbd) = existing {
        return Err(failure(ErrorCode::PbdExists, [sr, host, pbd.as_str()]));
    }
    Ok(())
}
