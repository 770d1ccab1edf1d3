//! Where a VM may run, as xapi's `assert_can_boot_here` decides for the checks the simulator
//! models: the host must be enabled (`HOST_DISABLED`) and must see every SR holding one of the
//! VM's disks through a plugged PBD (`VM_REQUIRES_SR [vm; sr]`), and the VM's memory must fit
//! in the host's free memory (`HOST_NOT_ENOUGH_FREE_MEMORY`, see `host_memory`).
//! `VM.get_possible_hosts` lists the hosts that pass, `VM.assert_can_boot_here` reports the
//! first failure, `VM.start` picks the least loaded host that passes (when none does: the
//! reason of the only host of a one-host pool, else `NO_HOSTS_AVAILABLE`) and `VM.start_on`
//! checks its host first.

use std::collections::BTreeSet;
use std::sync::Arc;
use xapi_core::api::ErrorCode;

use xapi_core::wire::{Failure, Value};

use super::Call;
use super::args;
use crate::api_error::failure;
use crate::model::defaults::NULL_REF;
use crate::model::store::Db;
use crate::pool::Pool;

/// Whether `message` is a VM message this module implements.
pub(crate) fn handles(message: &str) -> bool {
    matches!(message, "get_possible_hosts" | "assert_can_boot_here")
}

/// Handle `VM.get_possible_hosts` or `VM.assert_can_boot_here`.
pub(crate) fn handle(pool: &Arc<Pool>, call: &Call) -> Result<Value, Failure> {
    let vm = args::string(&call.args, 0)?;
    let db = pool.db();
    db.object("VM", &vm)?;
    if call.message.name == "get_possible_hosts" {
        Ok(args::text_set(possible_hosts(&db, &vm)?))
    } else {
        let host = args::string(&call.args, 1)?;
        assert_can_boot_here(&db, &vm, &host).map(|()| Value::Nil)
    }
}

/// Every host `vm` can boot on.
pub(crate) fn possible_hosts(db: &Db, vm: &str) -> Result<Vec<String>, Failure> {
    Ok(db
        .refs("host")?
        .into_iter()
        .filter(|host| assert_can_boot_here(db, vm, host).is_ok())
        .collect())
}

/// Whether `vm` can boot on `host`; the first reason why not.
pub(crate) fn assert_can_boot_here(db: &Db, vm: &str, host: &str) -> Result<(), Failure> {
    db.object("host", host)?;
    if matches!(db.field("host", host, "enabled"), Ok(Value::Bool(false))) {
        return Err(failure(ErrorCode::HostDisabled, [host]));
    }
    for sr in required_srs(db, vm)? {
        if !sr_attached_on(db, &sr, host) {
            return Err(failure(ErrorCode::VmRequiresSr, [vm, sr.as_str()]));
        }
    }
    super::host_memory::assert_fits(db, vm, host)
}

/// The SRs of the VM's disks (empty CD drives need none).
fn required_srs(db: &Db, vm: &str) -> Result<BTreeSet<String>, Failure> {
    let mut srs = BTreeSet::new();
    // (a datamodel without VBDs, as in the unit tests' small one, means no disks)
    for vbd in db.refs_field("VM", vm, "VBDs").unwrap_or_default() {
        if matches!(db.field("VBD", &vbd, "empty"), Ok(Value::Bool(true))) {
            continue;
        }
        let vdi = db.str_field("VBD", &vbd, "VDI")?;
        if vdi == NULL_REF || !db.exists("VDI", &vdi) {
            continue;
        }
        srs.insert(db.str_field("VDI", &vdi, "SR")?);
    }
    Ok(srs)
}

/// Whether `sr` has a PBD on `host` that is plugged.
pub(crate) fn sr_attached_on(db: &Db, sr: &str, host: &str) -> bool {
    hosts_with_sr_attached(db, sr).iter().any(|h| h == host)
}

/// The hosts on which `sr` has a plugged PBD, in PBD order.
pub(crate) fn hosts_with_sr_attached(db: &Db, sr: &str) -> Vec<String> {
    db.refs_field("SR", sr, "PBDs")
        .unwrap_or_default()
        .iter()
        .filter(|pbd| {
            matches!(
                db.field("PBD", pbd, "currently_attached"),
                Ok(Value::Bool(true))
            )
        })
        .filter_map(|pbd| db.str_field("PBD", pbd, "host").ok())
        .collect()
}
