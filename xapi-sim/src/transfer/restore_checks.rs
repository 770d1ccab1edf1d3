//! The checks of a restore (`/import` or `/import_metadata` with `restore=true`) against the
//! pool, made for every VM of the archive before anything is created or replaced, as xapi's
//! `VM.precheck` and `assert_can_restore_backup` do: a VM with the same UUID that is not halted
//! (`VM_BAD_POWER_STATE`, skipped with `force`), one whose `version` is not older
//! (`VM_TO_IMPORT_IS_NOT_NEWER_VERSION`, replaced with `force`), and a `mac_seed` that a VM
//! other than the one replaced uses (`DUPLICATE_MAC_SEED [seed]`).

use xapi_backup::format::ova_xml::{self, OvaClass, OvaXml};
use xapi_core::api::ErrorCode;
use xapi_core::wire::{Failure, Value};

use super::import::Identity;
use crate::api_error::{failure, vm_bad_power_state};
use crate::model::store::Db;

/// Every restore check for the VMs of `ova`, changing nothing.
pub(crate) fn precheck_restore(db: &Db, ova: &OvaXml, identity: Identity) -> Result<(), Failure> {
    if !identity.restore {
        return Ok(());
    }
    for vm in ova.objects_of(&OvaClass::Vm) {
        let uuid = vm.str_field("uuid").unwrap_or_default();
        let existing = db.by_uuid("VM", uuid).ok();
        if let Some(existing) = &existing {
            let state = db.str_field("VM", existing, "power_state")?;
            if state != "Halted" {
                if identity.force {
                    continue;
                }
                return Err(vm_bad_power_state(existing, "halted", &state));
            }
            let version = vm
                .snapshot
                .get("version")
                .and_then(ova_xml::Value::as_i64)
                .unwrap_or(0);
            let existing_version = db.int_field("VM", existing, "version")?;
            if existing_version >= version && !identity.force {
                return Err(failure(
                    ErrorCode::VmToImportIsNotNewerVersion,
                    [
                        existing.clone(),
                        existing_version.to_string(),
                        version.to_string(),
                    ],
                ));
            }
        }
        let seed = vm
            .snapshot
            .get("other_config")
            .and_then(|config| config.get("mac_seed"))
            .and_then(ova_xml::Value::as_str);
        if let Some(seed) = seed {
            let taken = db.table("VM")?.objects.iter().any(|(reference, o)| {
                Some(reference) != existing.as_ref()
                    && matches!(o.fields.get("other_config"),
                        Some(Value::Struct(config)) if config.get("mac_seed") == Some(&Value::String(seed.to_owned())))
            });
            if taken {
                return Err(failure(ErrorCode::DuplicateMacSeed, [seed]));
            }
        }
    }
    Ok(())
}
