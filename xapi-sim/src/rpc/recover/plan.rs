//! The pre-checks of a recovery, made before anything changes: read-only over both databases,
//! they either fail with xapi's error or give the plan that `apply` carries out.
//!
//! In xapi's order (`Import.handle_all` takes VDIs before VMs): every disk of the VM and of
//! its snapshots must be found in the target by SR UUID and `location` (`VDI_LOCATION_MISSING
//! [sr; location]`, or `VDI_CONTENT_ID_MISSING []` when the SR is unknown; with `force` the disk
//! and its VBD are left out; an empty or unknown CD is ejected); a suspended VM's suspend
//! image likewise (with `force` the VM comes back halted); then a VM or snapshot with the same
//! UUID in the target (`VM.precheck`: not halted → `VM_BAD_POWER_STATE`, or skipped with
//! `force`; halted with a `version` not older → `VM_TO_IMPORT_IS_NOT_NEWER_VERSION`, or
//! replaced with `force`; older → replaced); last, over the whole call, a `mac_seed` that a
//! target VM other than the one replaced (or a snapshot of it) already uses →
//! `DUPLICATE_MAC_SEED [seed]`.

use std::collections::BTreeSet;

use xapi_core::api::ErrorCode;
use xapi_core::wire::{Failure, Value};

use crate::api_error::{failure, vm_bad_power_state};
use crate::model::defaults::NULL_REF;
use crate::model::store::Db;

/// What becomes of one foreign VM or snapshot.
#[derive(Debug, Clone)]
pub(super) struct ObjectPlan {
    /// The foreign reference.
    pub(super) source: String,
    /// The target VM with the same UUID, destroyed first.
    pub(super) replaces: Option<String>,
    /// `(foreign VBD, target VDI)`; the null reference for an ejected CD.
    pub(super) disks: Vec<(String, String)>,
    /// The target suspend image, when the VM stays suspended.
    pub(super) suspend_vdi: Option<String>,
}

/// A VM to recover with its snapshots.
#[derive(Debug, Clone)]
pub(super) struct VmPlan {
    /// The VM.
    pub(super) vm: ObjectPlan,
    /// Its snapshots.
    pub(super) snapshots: Vec<ObjectPlan>,
}

/// The plan for the foreign VM `vm`, or `None` when `force` skips it (a VM with its UUID runs
/// in the target).
pub(super) fn plan_vm(
    source: &Db,
    db: &Db,
    vm: &str,
    force: bool,
) -> Result<Option<VmPlan>, Failure> {
    let snapshots = source.refs_field("VM", vm, "snapshots").unwrap_or_default();
    // disks first, of the VM then of its snapshots
    let mut objects = Vec::new();
    for object in std::iter::once(vm.to_owned()).chain(snapshots) {
        let disks = find_disks(source, db, &object, force)?;
        let suspend_vdi = find_suspend_image(source, db, &object, force)?;
        objects.push(ObjectPlan {
            source: object,
            replaces: None,
            disks,
            suspend_vdi,
        });
    }
    for object in &mut objects {
        match existing(source, db, &object.source, force)? {
            Existing::None => {}
            Existing::Replace(target) => object.replaces = Some(target),
            Existing::SkipRunning => return Ok(None),
        }
    }
    let mut objects = objects.into_iter();
    let Some(vm) = objects.next() else {
        return Ok(None);
    };
    Ok(Some(VmPlan {
        vm,
        snapshots: objects.collect(),
    }))
}

/// The target VDI for each VBD of the foreign `vm` (see the module docs).
fn find_disks(
    source: &Db,
    db: &Db,
    vm: &str,
    force: bool,
) -> Result<Vec<(String, String)>, Failure> {
    let mut disks = Vec::new();
    for vbd in source.refs_field("VM", vm, "VBDs")? {
        let vdi = source.str_field("VBD", &vbd, "VDI")?;
        let is_cd = source.str_field("VBD", &vbd, "type")? == "CD";
        if is_cd {
            let found = (source.exists("VDI", &vdi))
                .then(|| find_vdi(source, db, &vdi).ok())
                .flatten();
            disks.push((vbd, found.unwrap_or_else(|| NULL_REF.to_owned())));
            continue;
        }
        if !source.exists("VDI", &vdi) {
            continue;
        }
        match find_vdi(source, db, &vdi) {
            Ok(found) => disks.push((vbd, found)),
            Err(_) if force => {
                tracing::warn!(vm, vdi, "disk not found: left out because of force");
            }
            Err(err) => return Err(err),
        }
    }
    Ok(disks)
}

/// The target suspend image of a suspended foreign VM (`None` for any other VM, and with
/// `force` when it is missing: the VM comes back halted).
fn find_suspend_image(
    source: &Db,
    db: &Db,
    vm: &str,
    force: bool,
) -> Result<Option<String>, Failure> {
    if source.str_field("VM", vm, "power_state")? != "Suspended" {
        return Ok(None);
    }
    let vdi = source.str_field("VM", vm, "suspend_VDI")?;
    match find_vdi(source, db, &vdi) {
        Ok(found) => Ok(Some(found)),
        Err(_) if force => Ok(None),
        Err(err) => Err(err),
    }
}

/// The target VDI of the foreign `vdi`: on the SR with the same UUID, with the same
/// `location`.
fn find_vdi(source: &Db, db: &Db, vdi: &str) -> Result<String, Failure> {
    let sr_uuid = source
        .str_field("VDI", vdi, "SR")
        .and_then(|sr| source.str_field("SR", &sr, "uuid"))
        .unwrap_or_default();
    let location = source.str_field("VDI", vdi, "location").unwrap_or_default();
    let Ok(sr) = db.by_uuid("SR", &sr_uuid) else {
        return Err(failure(ErrorCode::VdiContentIdMissing, [] as [&str; 0]));
    };
    db.find("VDI", "location", &Value::String(location.clone()))?
        .into_iter()
        .find(|candidate| db.str_field("VDI", candidate, "SR").is_ok_and(|s| s == sr))
        .ok_or_else(|| failure(ErrorCode::VdiLocationMissing, [sr, location]))
}

/// What a VM of the same UUID in the target means for the foreign `object`.
enum Existing {
    /// None there.
    None,
    /// A halted one, destroyed first.
    Replace(String),
    /// A running one, and `force`: skip.
    SkipRunning,
}

fn existing(source: &Db, db: &Db, object: &str, force: bool) -> Result<Existing, Failure> {
    let uuid = source.str_field("VM", object, "uuid")?;
    let Ok(target) = db.by_uuid("VM", &uuid) else {
        return Ok(Existing::None);
    };
    let state = db.str_field("VM", &target, "power_state")?;
    if state != "Halted" {
        return if force {
            Ok(Existing::SkipRunning)
        } else {
            Err(vm_bad_power_state(&target, "halted", &state))
        };
    }
    let existing_version = db.int_field("VM", &target, "version")?;
    let version = source.int_field("VM", object, "version")?;
    if existing_version >= version && !force {
        return Err(failure(
            ErrorCode::VmToImportIsNotNewerVersion,
            [
                target.clone(),
                existing_version.to_string(),
                version.to_string(),
            ],
        ));
    }
    Ok(Existing::Replace(target))
}

/// `DUPLICATE_MAC_SEED [seed]` when a VM of `plans` has a `mac_seed` that a target VM keeps
/// using after the recovery (one neither replaced nor a snapshot of a VM with the same UUID).
pub(super) fn assert_mac_seeds_free(source: &Db, db: &Db, plans: &[VmPlan]) -> Result<(), Failure> {
    let replaced: BTreeSet<&str> = plans
        .iter()
        .flat_map(|p| std::iter::once(&p.vm).chain(&p.snapshots))
        .filter_map(|o| o.replaces.as_deref())
        .collect();
    for plan in plans {
        let Some(seed) = mac_seed(source, &plan.vm.source) else {
            continue;
        };
        let uuid = source.str_field("VM", &plan.vm.source, "uuid")?;
        for target in db.refs("VM")? {
            if replaced.contains(target.as_str()) || mac_seed(db, &target).as_ref() != Some(&seed) {
                continue;
            }
            let same_vm = db.str_field("VM", &target, "uuid").is_ok_and(|u| u == uuid);
            let snapshot_of_it = db
                .str_field("VM", &target, "snapshot_of")
                .and_then(|of| db.str_field("VM", &of, "uuid"))
                .is_ok_and(|u| u == uuid);
            if !same_vm && !snapshot_of_it {
                return Err(failure(ErrorCode::DuplicateMacSeed, [seed]));
            }
        }
    }
    Ok(())
}

/// `other_config["mac_seed"]` of a VM.
fn mac_seed(db: &Db, vm: &str) -> Option<String> {
    match db.field("VM", vm, "other_config") {
        Ok(Value::Struct(config)) => match config.get("mac_seed") {
            Some(Value::String(seed)) => Some(seed.clone()),
            _ => None,
        },
        _ => None,
    }
}
