//! High availability, as far as DR pre-checks read it: `pool.enable_ha(heartbeat_srs,
//! configuration)` and `pool.disable_ha()` (`xapi_ha.ml`).
//!
//! Enabling refuses a pool where HA is on (`HA_IS_ENABLED`), no heartbeat SR
//! (`CANNOT_CREATE_STATE_FILE`) and a heartbeat SR that is not shared
//! (`HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED [sr]`); then a state-file VDI (`type
//! ha_statefile`) is made on each heartbeat SR, `pool.ha_statefiles` (and every host's) lists
//! them, `pool.ha_configuration` keeps the configuration, `pool.ha_host_failures_to_tolerate`
//! becomes the most the pool can tolerate (its host count less one) and `pool.ha_enabled`
//! becomes true. Disabling refuses a pool without HA (`HA_NOT_ENABLED`), destroys the
//! state files and clears `ha_enabled` and the state-file lists, keeping
//! `ha_host_failures_to_tolerate` as xapi does.

use std::collections::BTreeMap;

use xapi_core::api::ErrorCode;
use xapi_core::wire::{Failure, Value};

use super::{Call, args};
use crate::api_error::failure;
use crate::model::store::Db;
use crate::pool::Pool;

/// Size of a state-file VDI.
const STATEFILE_SIZE: i64 = 4 << 20;

/// Whether `(class, message)` is one this module implements.
pub(crate) fn handles(class: &str, message: &str) -> bool {
    class == "pool" && matches!(message, "enable_ha" | "disable_ha")
}

/// Handle `pool.enable_ha` or `pool.disable_ha`.
pub(crate) fn handle(pool: &Pool, call: &Call) -> Result<Value, Failure> {
    let mut db = pool.db();
    let this = db
        .refs("pool")?
        .into_iter()
        .next()
        .ok_or_else(|| crate::api_error::internal("the pool has no pool object"))?;
    let enabled = matches!(db.field("pool", &this, "ha_enabled"), Ok(Value::Bool(true)));
    if call.message.name == "disable_ha" {
        if !enabled {
            return Err(failure(ErrorCode::HaNotEnabled, [] as [&str; 0]));
        }
        return disable(pool, &mut db, &this);
    }
    if enabled {
        return Err(failure(ErrorCode::HaIsEnabled, [] as [&str; 0]));
    }
    let heartbeat_srs = args::strings(&call.args, 0)?;
    let configuration = call
        .args
        .get(1)
        .cloned()
        .unwrap_or(Value::Struct(BTreeMap::new()));
    if heartbeat_srs.is_empty() {
        return Err(failure(ErrorCode::CannotCreateStateFile, [] as [&str; 0]));
    }
    for sr in &heartbeat_srs {
        db.object("SR", sr)?;
        if !matches!(db.field("SR", sr, "shared"), Ok(Value::Bool(true))) {
            return Err(failure(
                ErrorCode::HaConstraintViolationSrNotShared,
                [sr.as_str()],
            ));
        }
    }
    let mut statefiles: Vec<String> = Vec::new();
    for sr in &heartbeat_srs {
        let vdi = db.create(
            "VDI",
            BTreeMap::from([
                (
                    "name_label".to_owned(),
                    Value::String("Statefile for HA".to_owned()),
                ),
                (
                    "name_description".to_owned(),
                    Value::String("Used for storage heartbeating".to_owned()),
                ),
                ("SR".to_owned(), Value::String(sr.clone())),
                ("virtual_size".to_owned(), Value::Int(STATEFILE_SIZE)),
                ("type".to_owned(), Value::String("ha_statefile".to_owned())),
                ("sharable".to_owned(), Value::Bool(true)),
                ("managed".to_owned(), Value::Bool(true)),
            ]),
        )?;
        let uuid = db.str_field("VDI", &vdi, "uuid")?;
        if let Err(err) = pool.storage.create(&uuid, STATEFILE_SIZE as u64) {
            let _ = db.destroy("VDI", &vdi);
            for made in &statefiles {
                destroy_statefile(pool, &mut db, made);
            }
            return Err(failure(
                ErrorCode::CannotCreateStateFile,
                [format!("creating the state file: {err}")],
            ));
        }
        db.set_field("VDI", &vdi, "location", Value::String(uuid))?;
        statefiles.push(vdi);
    }
    let listed = args::text_set(statefiles);
    let hosts = db.refs("host")?;
    for host in &hosts {
        db.set_field("host", host, "ha_statefiles", listed.clone())?;
    }
    let tolerable = hosts.len().saturating_sub(1) as i64;
    db.set_field("pool", &this, "ha_statefiles", listed)?;
    db.set_field("pool", &this, "ha_configuration", configuration)?;
    db.set_field(
        "pool",
        &this,
        "ha_host_failures_to_tolerate",
        Value::Int(tolerable),
    )?;
    db.set_field("pool", &this, "ha_plan_exists_for", Value::Int(tolerable))?;
    db.set_field("pool", &this, "ha_enabled", Value::Bool(true))?;
    Ok(Value::Nil)
}

fn disable(pool: &Pool, db: &mut Db, this: &str) -> Result<Value, Failure> {
    for vdi in db.refs_field("pool", this, "ha_statefiles")? {
        destroy_statefile(pool, db, &vdi);
    }
    for host in db.refs("host")? {
        db.set_field("host", &host, "ha_statefiles", Value::Array(Vec::new()))?;
    }
    db.set_field("pool", this, "ha_statefiles", Value::Array(Vec::new()))?;
    db.set_field(
        "pool",
        this,
        "ha_configuration",
        Value::Struct(BTreeMap::new()),
    )?;
    db.set_field("pool", this, "ha_plan_exists_for", Value::Int(0))?;
    db.set_field("pool", this, "ha_enabled", Value::Bool(false))?;
    Ok(Value::Nil)
}

/// Destroy a state-file VDI and its image.
fn destroy_statefile(pool: &Pool, db: &mut Db, vdi: &str) {
    let Ok(uuid) = db.str_field("VDI", vdi, "uuid") else {
        return;
    };
    let _ = db.destroy("VDI", vdi);
    if let Err(err) = pool.storage.destroy(&uuid) {
        tracing::warn!(vdi = uuid, error = %err, "removing an HA state file");
    }
}
