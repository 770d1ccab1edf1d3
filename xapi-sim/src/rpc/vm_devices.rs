//! `VM.get_allowed_VBD_devices` and `VM.get_allowed_VIF_devices`: the device numbers still
//! free on a VM, as xapi computes them (`xapi_vm_helpers.ml`). Disks: `0`..=`254` (`255` for
//! the control domain) minus the numbers of every VBD's `userdevice` and `device`; network
//! interfaces: `0`..=`15` minus every VIF's `device`. Numbers, as strings, in increasing order.

use std::collections::BTreeSet;
use std::sync::Arc;

use xapi_core::wire::{Failure, Value};

use super::Call;
use super::args;
use crate::model::store::Db;
use crate::pool::Pool;

/// Whether `message` is a VM message this module implements.
pub(crate) fn handles(message: &str) -> bool {
    matches!(
        message,
        "get_allowed_VBD_devices" | "get_allowed_VIF_devices"
    )
}

/// Handle one of the two calls.
pub(crate) fn handle(pool: &Arc<Pool>, call: &Call) -> Result<Value, Failure> {
    args::string(&call.args, 0).and_then(|vm| {
        let db = pool.db();
        let free = if call.message.name == "get_allowed_VBD_devices" {
            allowed_vbd_devices(&db, &vm)?
        } else {
            allowed_vif_devices(&db, &vm)?
        };
        Ok(args::text_set(free.iter().map(u32::to_string)))
    })
}

fn allowed_vbd_devices(db: &Db, vm: &str) -> Result<Vec<u32>, Failure> {
    let last = if matches!(db.field("VM", vm, "is_control_domain")?, Value::Bool(true)) {
        255
    } else {
        254
    };
    let mut used = BTreeSet::new();
    for vbd in db.refs_field("VM", vm, "VBDs")? {
        for field in ["userdevice", "device"] {
            if let Some(disk) = disk_number(&db.str_field("VBD", &vbd, field)?) {
                used.insert(disk);
            }
        }
    }
    Ok((0..=last).filter(|d| !used.contains(d)).collect())
}

fn allowed_vif_devices(db: &Db, vm: &str) -> Result<Vec<u32>, Failure> {
    let mut used = BTreeSet::new();
    for vif in db.refs_field("VM", vm, "VIFs")? {
        if let Ok(device) = db.str_field("VIF", &vif, "device")?.parse::<u32>() {
            used.insert(device);
        }
    }
    Ok((0..=15).filter(|d| !used.contains(d)).collect())
}

/// The disk number a VBD device string names: `3`, `xvdd`, `hdd`, `sdd`, `xvdd1` (partition
/// ignored), `xvdaa` (26); `None` for anything else (an empty `device` included).
pub(crate) fn disk_number(text: &str) -> Option<u32> {
    if let Ok(n) = text.parse::<u32>() {
        return Some(n);
    }
    let rest = ["xvd", "hd", "sd"]
        .iter()
        .find_map(|prefix| text.strip_prefix(prefix))?;
    let letters: &str = &rest[..rest
        .find(|c: char| !c.is_ascii_lowercase())
        .unwrap_or(rest.len())];
    let partition = &rest[letters.len()..];
    if letters.is_empty() || !partition.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    // bijective base 26: a=0 .. z=25, aa=26
    letters
        .bytes()
        .try_fold(0_u32, |n, b| {
            n.checked_mul(26)?.checked_add(u32::from(b - b'a') + 1)
        })
        .map(|n| n - 1)
}

#[cfg(test)]
mod tests {
    use super::disk_number;

    #[test]
    fn device_strings_name_disk_numbers() {
        assert_eq!(disk_number("0"), Some(0));
        assert_eq!(disk_number("12"), Some(12));
        assert_eq!(disk_number("xvda"), Some(0));
        assert_eq!(disk_number("xvdd1"), Some(3));
        assert_eq!(disk_number("hdb"), Some(1));
        assert_eq!(disk_number("sdz"), Some(25));
        assert_eq!(disk_number("xvdaa"), Some(26));
        assert_eq!(disk_number("xvdba"), Some(52));
        assert_eq!(disk_number(""), None);
        assert_eq!(disk_number("xvd"), None);
        assert_eq!(disk_number("xvda1x"), None);
    }
}
