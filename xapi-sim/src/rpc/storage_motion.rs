//! The operations changed-block tracking blocks, as xapi checks them: `VDI.set_on_boot`,
//! `VDI.pool_migrate` (a `mirror` of the VDI) and `VM.migrate_send` are refused with
//! `VDI_CBT_ENABLED` while CBT is on for the VDI (or one of the VM's VDIs), and `VDI.enable_cbt`
//! is refused on a VDI whose `on_boot` is `reset`.
//!
//! `set_on_boot` is simulated in full. Storage motion itself (`pool_migrate`, `migrate_send`) is
//! not: past the CBT check these answer `NOT_IMPLEMENTED`, so that a tool sees the refusal it
//! must handle (Xen Orchestra disables CBT before a migration) without the simulator pretending
//! to move disks.

use xapi_core::api::ErrorCode;
use xapi_core::wire::{Failure, Value};

use super::Call;
use super::args;
use crate::api_error::failure;
use crate::model::store::Db;
use crate::pool::Pool;

/// Whether this module answers `class.message`.
pub(crate) fn handles(class: &str, message: &str) -> bool {
    matches!(
        (class, message),
        ("VDI", "set_on_boot" | "pool_migrate") | ("VM", "migrate_send")
    )
}

/// Answer one of the calls of [`handles`].
pub(crate) fn handle(pool: &Pool, call: &Call) -> Result<Value, Failure> {
    let a = &call.args;
    let mut db = pool.db();
    match (call.class.name, call.message.name) {
        ("VDI", "set_on_boot") => {
            let vdi = args::string(a, 0)?;
            let mode = args::string(a, 1)?;
            assert_cbt_off(&db, &vdi)?;
            if mode != "persist" && mode != "reset" {
                return Err(failure(ErrorCode::InvalidValue, ["mode", mode.as_str()]));
            }
            db.set_field("VDI", &vdi, "on_boot", Value::String(mode))?;
            Ok(Value::Nil)
        }
        ("VDI", "pool_migrate") => {
            let vdi = args::string(a, 0)?;
            assert_cbt_off(&db, &vdi)?;
            Err(not_simulated(call))
        }
        _ => {
            let vm = args::string(a, 0)?;
            for vbd in db.refs_field("VM", &vm, "VBDs")? {
                let vdi = db.str_field("VBD", &vbd, "VDI")?;
                if db.exists("VDI", &vdi) {
                    assert_cbt_off(&db, &vdi)?;
                }
            }
            Err(not_simulated(call))
        }
    }
}

/// `VDI_CBT_ENABLED` when CBT is on for `vdi`.
fn assert_cbt_off(db: &Db, vdi: &str) -> Result<(), Failure> {
    if matches!(db.field("VDI", vdi, "cbt_enabled")?, Value::Bool(true)) {
        return Err(failure(ErrorCode::VdiCbtEnabled, [vdi]));
    }
    Ok(())
}

/// `VDI.enable_cbt`'s check: a VDI reset on boot cannot track changes.
pub(crate) fn assert_cbt_possible(db: &Db, vdi: &str) -> Result<(), Failure> {
    if db.str_field("VDI", vdi, "on_boot")? == "reset" {
        return Err(failure(
            ErrorCode::VdiOnBootModeIncompatibleWithOperation,
            std::iter::empty::<&str>(),
        ));
    }
    Ok(())
}

fn not_simulated(call: &Call) -> Failure {
    failure(
        ErrorCode::NotImplemented,
        [format!(
            "{}.{}: storage motion is not simulated",
            call.class.name, call.message.name
        )],
    )
}
