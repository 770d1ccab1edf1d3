//! The VM lifecycle with xapi's power-state rules: start (paused or not, on a chosen host),
//! clean / hard shutdown, reboot, pause / unpause, snapshot, clone, copy, destroy
//! (`snapshot_with_quiesce` is removed from XAPI: the dispatcher answers `MESSAGE_REMOVED`).
//!
//! `VM.start` sleeps `VM.start_delay` after the domain is up and the shutdowns sleep
//! `VM.shutdown_delay` after it is down, on the simulated clock, as xapi does. A start is
//! stamped in `VM_metrics.start_time` with the simulated time ([`crate::SimClock::now`]), so
//! that the order of starts and the gaps of their delays can be read back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use xapi_core::api::ErrorCode;

use xapi_core::wire::{Failure, Value};

use super::Call;
use super::args;
use super::vdi_copy::{DiskCopy, duplicate_vdi};
use super::vm_placement::{assert_can_boot_here, possible_hosts};
use crate::api_error::{failure, vm_bad_power_state};
use crate::model::defaults::NULL_REF;
use crate::model::store::Db;
use crate::pool::Pool;
use crate::timestamp;

/// The VM messages this module implements.
const MESSAGES: &[&str] = &[
    "start",
    "start_on",
    "clean_shutdown",
    "hard_shutdown",
    "shutdown",
    "clean_reboot",
    "hard_reboot",
    "pause",
    "unpause",
    "snapshot",
    "clone",
    "copy",
    "destroy",
];

/// Whether `message` is one this module implements.
pub(crate) fn handles(message: &str) -> bool {
    MESSAGES.contains(&message)
}

/// Handle a VM lifecycle call.
pub(crate) async fn handle(pool: &Arc<Pool>, call: &Call) -> Option<Result<Value, Failure>> {
    let a = &call.args;
    let vm = match args::string(a, 0) {
        Ok(vm) => vm,
        Err(err) => return Some(Err(err)),
    };
    let operation = match begin_operation(pool, &vm, call.message.name) {
        Ok(operation) => operation,
        Err(err) => return Some(Err(err)),
    };
    let result = run(pool, call, &vm).await;
    drop(operation);
    result.transpose()
}

/// A VM operation under way: recorded in the VM's `current_operations` until dropped.
pub(crate) struct Operation {
    pool: Arc<Pool>,
    vm: String,
    marker: String,
}

impl Drop for Operation {
    fn drop(&mut self) {
        unmark_operation(&mut self.pool.db(), &self.vm, &self.marker);
    }
}

/// Check that `op` may run on `vm` now ([`check_operation`]) and record it as under way.
pub(crate) fn begin_operation(pool: &Arc<Pool>, vm: &str, op: &str) -> Result<Operation, Failure> {
    let mut db = pool.db();
    check_operation(&db, vm, op)?;
    let marker = mark_operation(&mut db, vm, op)?;
    Ok(Operation {
        pool: Arc::clone(pool),
        vm: vm.to_owned(),
        marker,
    })
}

/// Run one lifecycle call on `vm`, its checks passed; `None` for a message not handled here.
async fn run(pool: &Arc<Pool>, call: &Call, vm: &str) -> Result<Option<Value>, Failure> {
    let a = &call.args;
    let vm = vm.to_owned();
    let done = |r: Result<(), Failure>| r.map(|()| Value::Nil);
    Ok(Some(match call.message.name {
        "start" => done(start(pool, &vm, args::boolean(a, 1).unwrap_or(false), None).await),
        "start_on" => {
            let host = args::string(a, 1).ok();
            done(start(pool, &vm, args::boolean(a, 2).unwrap_or(false), host).await)
        }
        "clean_shutdown" | "shutdown" => done(shutdown(pool, &vm, false).await),
        "hard_shutdown" => done(shutdown(pool, &vm, true).await),
        "clean_reboot" | "hard_reboot" => {
            done(require_state(&pool.db(), &vm, &["Running"]).map(|_| ()))
        }
        "pause" => done(transition(&mut pool.db(), &vm, "Running", "Paused")),
        "unpause" => done(transition(&mut pool.db(), &vm, "Paused", "Running")),
        "snapshot" => {
            let name = args::string(a, 1).unwrap_or_default();
            // `ignore_vdis`: disks left out of the snapshot
            let ignore = args::strings(a, 2).unwrap_or_default();
            snapshot(&mut pool.db(), pool, &vm, &name, &ignore).map(Value::String)
        }
        "clone" => {
            let name = args::string(a, 1).unwrap_or_default();
            duplicate(&mut pool.db(), pool, &vm, &name, &DiskCopy::Clone).map(Value::String)
        }
        "copy" => {
            let name = args::string(a, 1).unwrap_or_default();
            let sr = args::string(a, 2)
                .ok()
                .filter(|sr| sr != NULL_REF && !sr.is_empty());
            duplicate(&mut pool.db(), pool, &vm, &name, &DiskCopy::Copy(sr)).map(Value::String)
        }
        "destroy" => done(destroy(&mut pool.db(), &vm)),
        _ => return Ok(None),
    }?))
}

/// The power states in which `op` may run (as the handlers below check them); `None` for any.
fn allowed_states(op: &str) -> Option<&'static [&'static str]> {
    Some(match op {
        "start" | "start_on" => &["Halted"],
        "clean_shutdown" | "shutdown" | "clean_reboot" | "hard_reboot" | "pause" => &["Running"],
        "hard_shutdown" => &["Running", "Paused", "Suspended"],
        "unpause" => &["Paused"],
        "clone" | "copy" | "destroy" => &["Halted", "Suspended"],
        _ => return None,
    })
}

/// xapi's `is_allowed_concurrently`: copies, snapshots and boot-record reads go together, a
/// hard shutdown overrides anything but another, a hard reboot anything but a hard shutdown or
/// reboot.
fn is_allowed_concurrently(op: &str, current: &[&str]) -> bool {
    let together = |set: &[&str]| set.contains(&op) && current.iter().all(|o| set.contains(o));
    together(&["clone", "copy", "export"])
        || together(&["snapshot", "checkpoint"])
        || together(&["get_boot_record"])
        || match op {
            "hard_shutdown" => !current.contains(&"hard_shutdown"),
            "hard_reboot" => !current
                .iter()
                .any(|o| matches!(*o, "hard_shutdown" | "hard_reboot")),
            "snapshot" => current == ["snapshot_with_quiesce"],
            _ => false,
        }
}

/// xapi's checks before a VM operation (`Xapi_vm_lifecycle.check_operation_error`), in its
/// order: `OPERATION_BLOCKED [vm; reason]` when `blocked_operations` names `op` (the reason is
/// the map's value); then the power state (left to the handler, which reports
/// `VM_BAD_POWER_STATE`); then `OTHER_OPERATION_IN_PROGRESS [VM; vm; ops; refs]` when an
/// operation under way does not allow `op` alongside.
fn check_operation(db: &Db, vm: &str, op: &str) -> Result<(), Failure> {
    if let Ok(Value::Struct(blocked)) = db.field("VM", vm, "blocked_operations")
        && let Some(Value::String(reason)) = blocked.get(op)
    {
        return Err(failure(ErrorCode::OperationBlocked, [vm, reason.as_str()]));
    }
    let state = db.str_field("VM", vm, "power_state")?;
    if allowed_states(op).is_some_and(|states| !states.contains(&state.as_str())) {
        return Ok(());
    }
    let current: Vec<(String, String)> = match db.field("VM", vm, "current_operations") {
        Ok(Value::Struct(ops)) => ops
            .iter()
            .map(|(r, o)| (r.clone(), o.as_str().unwrap_or_default().to_owned()))
            .collect(),
        _ => Vec::new(),
    };
    let names: Vec<&str> = current.iter().map(|(_, o)| o.as_str()).collect();
    if current.is_empty() || is_allowed_concurrently(op, &names) {
        return Ok(());
    }
    let (refs, ops) = match current.as_slice() {
        [(reference, name)] => (reference.clone(), name.clone()),
        many => (
            format!(
                "{{{}}}",
                many.iter()
                    .map(|(r, _)| r.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            format!("{{{}}}", names.join(",")),
        ),
    };
    Err(failure(
        ErrorCode::OtherOperationInProgress,
        ["VM".to_owned(), vm.to_owned(), ops, refs],
    ))
}

/// Record `op` in the VM's `current_operations` under a new reference (xapi uses the call's
/// task) while it runs; the reference, to remove it after.
fn mark_operation(db: &mut Db, vm: &str, op: &str) -> Result<String, Failure> {
    let mut current = match db.field("VM", vm, "current_operations") {
        Ok(Value::Struct(ops)) => ops.clone(),
        Ok(_) => BTreeMap::new(),
        // no such VM (the handler says so) or no such field: nothing to record
        Err(_) => return Ok(String::new()),
    };
    let marker = format!("OpaqueRef:{}", db.new_uuid());
    current.insert(marker.clone(), Value::String(op.to_owned()));
    db.set_field("VM", vm, "current_operations", Value::Struct(current))?;
    Ok(marker)
}

/// Take the operation `marker` out of the VM's `current_operations` (gone with a destroyed VM).
fn unmark_operation(db: &mut Db, vm: &str, marker: &str) {
    if let Ok(Value::Struct(ops)) = db.field("VM", vm, "current_operations") {
        let mut ops = ops.clone();
        if ops.remove(marker).is_some() {
            let _ = db.set_field("VM", vm, "current_operations", Value::Struct(ops));
        }
    }
}

/// The power state of `vm`, checked against `allowed` (`VM_BAD_POWER_STATE` names the first).
fn require_state(db: &Db, vm: &str, allowed: &[&str]) -> Result<String, Failure> {
    let state = db.str_field("VM", vm, "power_state")?;
    if allowed.contains(&state.as_str()) {
        Ok(state)
    } else {
        Err(vm_bad_power_state(
            vm,
            allowed.first().copied().unwrap_or("halted"),
            &state,
        ))
    }
}

fn require_not_template(db: &Db, vm: &str) -> Result<(), Failure> {
    if matches!(db.field("VM", vm, "is_a_template")?, Value::Bool(true)) {
        return Err(failure(ErrorCode::VmIsTemplate, [vm]));
    }
    Ok(())
}

fn transition(db: &mut Db, vm: &str, from: &str, to: &str) -> Result<(), Failure> {
    require_state(db, vm, &[from])?;
    db.set_field("VM", vm, "power_state", Value::String(to.to_owned()))
}

/// Start a VM: Halted → Running (or Paused), placed on `host` or the least loaded host, then
/// sleep its `start_delay`.
pub(crate) async fn start(
    pool: &Arc<Pool>,
    vm: &str,
    paused: bool,
    host: Option<String>,
) -> Result<(), Failure> {
    let delay = {
        let mut db = pool.db();
        require_not_template(&db, vm)?;
        require_state(&db, vm, &["Halted"])?;
        let host = match host {
            Some(host) => {
                assert_can_boot_here(&db, vm, &host)?;
                host
            }
            None => least_loaded_host(&db, vm)?,
        };
        let domid = next_domid(&db);
        db.set_field("VM", vm, "resident_on", Value::String(host))?;
        db.set_field("VM", vm, "domid", Value::Int(domid))?;
        let state = if paused { "Paused" } else { "Running" };
        db.set_field("VM", vm, "power_state", Value::String(state.to_owned()))?;
        stamp_start(&mut db, vm, pool.clock.now())?;
        super::host_memory::refresh(&mut db);
        db.int_field("VM", vm, "start_delay")?
    };
    pool.clock
        .sleep(Duration::from_secs(delay.max(0) as u64))
        .await;
    Ok(())
}

/// Stamp the start of `vm` at the simulated time `now` in its `VM_metrics.start_time` (the
/// domain is up: the stamp comes before the `start_delay` sleep, as in xapi).
fn stamp_start(db: &mut Db, vm: &str, now: std::time::SystemTime) -> Result<(), Failure> {
    if db.table("VM_metrics").is_err() {
        return Ok(());
    }
    let mut fields = BTreeMap::new();
    if let Ok(Value::String(metrics)) = db.field("VM", vm, "metrics") {
        fields.insert("metrics".to_owned(), Value::String(metrics.clone()));
    }
    if ensure_metrics(db, &mut fields)?.is_some()
        && let Some(Value::String(metrics)) = fields.get("metrics")
    {
        db.set_field("VM", vm, "metrics", Value::String(metrics.clone()))?;
    }
    if let Some(Value::String(metrics)) = fields.get("metrics") {
        db.set_field("VM_metrics", metrics, "start_time", timestamp::at(now))?;
    }
    Ok(())
}

/// Shut a VM down: Running (or Paused / Suspended for a hard shutdown) → Halted, then sleep its
/// `shutdown_delay`.
pub(crate) async fn shutdown(pool: &Arc<Pool>, vm: &str, hard: bool) -> Result<(), Failure> {
    let delay = {
        let mut db = pool.db();
        let allowed: &[&str] = if hard {
            &["Running", "Paused", "Suspended"]
        } else {
            &["Running"]
        };
        require_state(&db, vm, allowed)?;
        db.set_field("VM", vm, "power_state", Value::String("Halted".to_owned()))?;
        db.set_field("VM", vm, "resident_on", Value::String(NULL_REF.to_owned()))?;
        db.set_field("VM", vm, "domid", Value::Int(-1))?;
        super::host_memory::refresh(&mut db);
        db.int_field("VM", vm, "shutdown_delay")?
    };
    pool.clock
        .sleep(Duration::from_secs(delay.max(0) as u64))
        .await;
    Ok(())
}

/// The host with the fewest resident VMs among those `vm` can boot on; when there is none, the
/// reason the only host of a one-host pool refuses it, else `NO_HOSTS_AVAILABLE`.
fn least_loaded_host(db: &Db, vm: &str) -> Result<String, Failure> {
    let chosen = possible_hosts(db, vm)?.into_iter().min_by_key(|h| {
        db.refs_field("host", h, "resident_VMs")
            .map_or(0, |v| v.len())
    });
    if let Some(host) = chosen {
        return Ok(host);
    }
    match db.refs("host")?.as_slice() {
        [only] => assert_can_boot_here(db, vm, only)
            .and(Err(failure(ErrorCode::NoHostsAvailable, [] as [&str; 0]))),
        _ => Err(failure(ErrorCode::NoHostsAvailable, [] as [&str; 0])),
    }
}

fn next_domid(db: &Db) -> i64 {
    db.table("VM")
        .map_or(0, |t| {
            t.objects
                .values()
                .filter_map(|o| match o.fields.get("domid") {
                    Some(Value::Int(d)) => Some(*d),
                    _ => None,
                })
                .max()
                .unwrap_or(0)
        })
        .max(0)
        + 1
}

/// A copy of an object's fields, without its uuid, ready for `Db::create`.
fn copy_fields(db: &Db, class: &str, reference: &str) -> Result<BTreeMap<String, Value>, Failure> {
    let mut fields: BTreeMap<String, Value> = db
        .object(class, reference)?
        .fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    fields.remove("uuid");
    Ok(fields)
}

/// `VM.snapshot`: a halted template VM with snapshot VDIs of every disk except those in
/// `ignore` (their VBDs are left out of the snapshot, as xapi's `ignore_vdis` does).
fn snapshot(
    db: &mut Db,
    pool: &Pool,
    vm: &str,
    name: &str,
    ignore: &[String],
) -> Result<String, Failure> {
    require_not_template(db, vm)?;
    let mut fields = copy_fields(db, "VM", vm)?;
    fields.insert("name_label".into(), Value::String(name.to_owned()));
    fields.insert("is_a_snapshot".into(), Value::Bool(true));
    fields.insert("is_a_template".into(), Value::Bool(true));
    fields.insert("snapshot_of".into(), Value::String(vm.to_owned()));
    fields.insert("snapshot_time".into(), timestamp::now());
    halted(&mut fields);
    copy_metrics(db, vm, &mut fields)?;
    let snap = db.create("VM", fields)?;
    copy_devices(db, pool, vm, &snap, &DiskCopy::Snapshot, ignore)?;
    Ok(snap)
}

/// `VM.clone` or `VM.copy` (as `how` says): a new halted VM with duplicated disks and new MACs.
fn duplicate(
    db: &mut Db,
    pool: &Pool,
    vm: &str,
    name: &str,
    how: &DiskCopy,
) -> Result<String, Failure> {
    require_state(db, vm, &["Halted", "Suspended"])?;
    let mut fields = copy_fields(db, "VM", vm)?;
    fields.insert("name_label".into(), Value::String(name.to_owned()));
    fields.insert("is_a_snapshot".into(), Value::Bool(false));
    fields.insert("snapshot_of".into(), Value::String(NULL_REF.to_owned()));
    halted(&mut fields);
    copy_metrics(db, vm, &mut fields)?;
    let copy = db.create("VM", fields)?;
    copy_devices(db, pool, vm, &copy, how, &[])?;
    Ok(copy)
}

/// A new VM's fields from a copy of another's: halted, and with none of the operations under
/// way on the original (xapi's `copy_vm_record` starts with empty `current_operations`).
fn halted(fields: &mut BTreeMap<String, Value>) {
    fields.insert("power_state".into(), Value::String("Halted".into()));
    fields.insert("resident_on".into(), Value::String(NULL_REF.into()));
    fields.insert("domid".into(), Value::Int(-1));
    // a halted VM has no suspend image (the original keeps its own)
    fields.insert("suspend_VDI".into(), Value::String(NULL_REF.into()));
    fields.insert("current_operations".into(), Value::Struct(BTreeMap::new()));
}

/// Duplicate the VBDs (with their disks), VIFs and vTPMs of `from` onto `to`, leaving out the VBDs
/// of the disks in `skip`.
fn copy_devices(
    db: &mut Db,
    pool: &Pool,
    from: &str,
    to: &str,
    how: &DiskCopy,
    skip: &[String],
) -> Result<(), Failure> {
    for vbd in db.refs_field("VM", from, "VBDs")? {
        let vdi = db.str_field("VBD", &vbd, "VDI")?;
        if skip.contains(&vdi) {
            continue;
        }
        let mut vbd_fields = copy_fields(db, "VBD", &vbd)?;
        if vdi != NULL_REF && db.exists("VDI", &vdi) {
            let new_vdi = duplicate_vdi(db, pool, &vdi, how)?;
            vbd_fields.insert("VDI".into(), Value::String(new_vdi));
        }
        vbd_fields.insert("VM".into(), Value::String(to.to_owned()));
        vbd_fields.insert("currently_attached".into(), Value::Bool(false));
        // the original keeps its metrics row; a copy never shares it
        vbd_fields.insert("metrics".into(), Value::String(NULL_REF.to_owned()));
        db.create("VBD", vbd_fields)?;
    }
    for vif in db.refs_field("VM", from, "VIFs")? {
        let mut vif_fields = copy_fields(db, "VIF", &vif)?;
        vif_fields.insert("VM".into(), Value::String(to.to_owned()));
        vif_fields.insert("currently_attached".into(), Value::Bool(false));
        vif_fields.insert("metrics".into(), Value::String(NULL_REF.to_owned()));
        if *how != DiskCopy::Snapshot {
            vif_fields.insert("MAC".into(), Value::String(new_mac(db)));
            vif_fields.insert("MAC_autogenerated".into(), Value::Bool(true));
        }
        db.create("VIF", vif_fields)?;
    }
    super::vtpm::copy_all(db, from, to)
}

/// A fresh locally administered unicast MAC address.
pub(crate) fn new_mac(db: &mut Db) -> String {
    let uuid = db.new_uuid().replace('-', "");
    let mut bytes = [0_u8; 6];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&uuid[i * 2..i * 2 + 2], 16).unwrap_or(0);
    }
    bytes[0] = (bytes[0] & 0xfc) | 0x02;
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `VM.destroy`, as xapi's `Xapi_vm_helpers.destroy`: a halted VM goes with its VBDs and VIFs
/// (and their metrics), VGPUs, VUSBs, metrics and guest metrics, each row with its own `del`
/// event; it leaves its vApp; its disks stay.
pub(crate) fn destroy(db: &mut Db, vm: &str) -> Result<(), Failure> {
    require_state(db, vm, &["Halted", "Suspended"])?;
    if db
        .str_field("VM", vm, "appliance")
        .is_ok_and(|a| db.exists("VM_appliance", &a))
    {
        db.set_field("VM", vm, "appliance", Value::String(NULL_REF.to_owned()))?;
    }
    for (devices, class) in [("VBDs", "VBD"), ("VIFs", "VIF")] {
        for device in db.refs_field("VM", vm, devices)? {
            destroy_row_named_by(db, class, &device, "metrics", &format!("{class}_metrics"))?;
            db.destroy(class, &device)?;
        }
    }
    for (devices, class) in [("VGPUs", "VGPU"), ("VUSBs", "VUSB")] {
        for device in db.refs_field("VM", vm, devices).unwrap_or_default() {
            db.destroy(class, &device)?;
        }
    }
    super::vtpm::destroy_all(db, vm)?;
    destroy_row_named_by(db, "VM", vm, "metrics", "VM_metrics")?;
    destroy_row_named_by(db, "VM", vm, "guest_metrics", "VM_guest_metrics")?;
    db.destroy("VM", vm)
}

/// Destroy the `target` row that `field` of `class` `reference` names, when there is one.
fn destroy_row_named_by(
    db: &mut Db,
    class: &str,
    reference: &str,
    field: &str,
    target: &str,
) -> Result<(), Failure> {
    match db.str_field(class, reference, field) {
        Ok(row) if db.exists(target, &row) => db.destroy(target, &row),
        _ => Ok(()),
    }
}

/// Give a VM about to be made (`fields`) a metrics row of its own when it names none that
/// exists, as xapi's `VM.create` (which imports and recoveries go through) makes one for every
/// VM; the new row's reference, if one was made.
pub(crate) fn ensure_metrics(
    db: &mut Db,
    fields: &mut BTreeMap<String, Value>,
) -> Result<Option<String>, Failure> {
    if let Some(Value::String(named)) = fields.get("metrics")
        && db.exists("VM_metrics", named)
    {
        return Ok(None);
    }
    let metrics = db.create("VM_metrics", BTreeMap::new())?;
    fields.insert("metrics".into(), Value::String(metrics.clone()));
    Ok(Some(metrics))
}

/// New copies of `vm`'s metrics and guest metrics rows for a snapshot, clone or copy of it, as
/// xapi's `copy_vm_record` makes; null references where `vm` has none.
fn copy_metrics(
    db: &mut Db,
    vm: &str,
    fields: &mut BTreeMap<String, Value>,
) -> Result<(), Failure> {
    for (field, class) in [
        ("metrics", "VM_metrics"),
        ("guest_metrics", "VM_guest_metrics"),
    ] {
        let copy = match db.str_field("VM", vm, field) {
            Ok(row) if db.exists(class, &row) => {
                let row_fields = copy_fields(db, class, &row)?;
                db.create(class, row_fields)?
            }
            _ => NULL_REF.to_owned(),
        };
        fields.insert(field.into(), Value::String(copy));
    }
    Ok(())
}
