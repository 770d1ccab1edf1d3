//! The disaster-recovery licence restriction: xapi reports it as `restrict_dr` in
//! `pool.restrictions` and in each host's `license_params` (`"true"` when the licence does not
//! allow DR). While restricted, `DR_task.create`, `VM.recover` and `VM_appliance.recover`
//! (and `SR.enable_database_replication`) fail with `LICENCE_RESTRICTION ["DR"]`, as xapi's
//! `Features.DR` check does. Switched with [`crate::SimHandle::set_dr_restricted`].

use std::collections::BTreeMap;

use xapi_core::api::ErrorCode;
use xapi_core::wire::{Failure, Value};

use crate::api_error::failure;
use crate::model::store::Db;
use crate::scenario::RESTRICT_DR;

/// Whether the pool's licence forbids DR.
pub(crate) fn is_dr_restricted(db: &Db) -> bool {
    db.refs("pool")
        .unwrap_or_default()
        .first()
        .and_then(|pool| match db.field("pool", pool, "restrictions") {
            Ok(Value::Struct(map)) => map.get(RESTRICT_DR).cloned(),
            _ => None,
        })
        .is_some_and(|v| v == Value::String("true".to_owned()))
}

/// `LICENCE_RESTRICTION ["DR"]` when the pool's licence forbids DR.
pub(crate) fn assert_dr_allowed(db: &Db) -> Result<(), Failure> {
    if is_dr_restricted(db) {
        return Err(failure(ErrorCode::LicenceRestriction, ["DR"]));
    }
    Ok(())
}

/// Restrict DR (or lift the restriction) in `pool.restrictions` and every host's
/// `license_params`.
pub(crate) fn set_dr_restricted(db: &mut Db, restricted: bool) -> Result<(), Failure> {
    let value = Value::String(restricted.to_string());
    for (class, field) in [("pool", "restrictions"), ("host", "license_params")] {
        for reference in db.refs(class)? {
            let mut map = match db.field(class, &reference, field)? {
                Value::Struct(map) => map.clone(),
                _ => BTreeMap::new(),
            };
            map.insert(RESTRICT_DR.to_owned(), value.clone());
            db.set_field(class, &reference, field, Value::Struct(map))?;
        }
    }
    Ok(())
}
