//! VDI calls backed by the sparse image files: create, destroy, resize.

use std::sync::Arc;

use xapi_core::wire::{Failure, Value};

use super::Call;
use super::args;
use crate::api_error::failure;
use crate::pool::Pool;

/// Whether `message` is one this module implements.
pub(crate) fn handles(message: &str) -> bool {
    matches!(message, "create" | "destroy" | "resize" | "resize_online")
}

fn backend_failure(what: &str, err: &std::io::Error) -> Failure {
    failure("SR_BACKEND_FAILURE", ["", "", &format!("{what}: {err}")])
}

/// Handle a VDI storage call.
pub(crate) fn handle(pool: &Arc<Pool>, call: &Call) -> Option<Result<Value, Failure>> {
    let a = &call.args;
    Some(match call.message.name {
        "create" => create(pool, a),
        "destroy" => args::string(a, 0).and_then(|vdi| destroy(pool, &vdi)),
        "resize" | "resize_online" => args::string(a, 0).and_then(|vdi| {
            let size = match a.get(1) {
                Some(Value::Int(size)) if *size >= 0 => *size,
                _ => return Err(failure("FIELD_TYPE_ERROR", ["size"])),
            };
            resize(pool, &vdi, size)
        }),
        _ => return None,
    })
}

fn create(pool: &Pool, a: &[Value]) -> Result<Value, Failure> {
    let Some(Value::Struct(record)) = a.first() else {
        return Err(failure("FIELD_TYPE_ERROR", ["args"]));
    };
    let mut db = pool.db();
    let sr = match record.get("SR") {
        Some(Value::String(sr)) => sr.clone(),
        _ => String::new(),
    };
    db.object("SR", &sr)?;
    let vdi = db.create("VDI", record.clone())?;
    let uuid = db.str_field("VDI", &vdi, "uuid")?;
    let size = db.int_field("VDI", &vdi, "virtual_size")?.max(0) as u64;
    if let Err(err) = pool.storage.create(&uuid, size) {
        let _ = db.destroy("VDI", &vdi);
        return Err(backend_failure("creating the disk image", &err));
    }
    db.set_field("VDI", &vdi, "location", Value::String(uuid))?;
    Ok(Value::String(vdi))
}

fn destroy(pool: &Pool, vdi: &str) -> Result<Value, Failure> {
    let mut db = pool.db();
    let vbds = db.refs_field("VDI", vdi, "VBDs")?;
    for vbd in &vbds {
        if matches!(
            db.field("VBD", vbd, "currently_attached"),
            Ok(Value::Bool(true))
        ) {
            return Err(failure("VDI_IN_USE", [vdi, "destroy"]));
        }
    }
    for vbd in &vbds {
        db.destroy("VBD", vbd)?;
    }
    let uuid = db.str_field("VDI", vdi, "uuid")?;
    pool.storage
        .destroy(&uuid)
        .map_err(|e| backend_failure("removing the disk image", &e))?;
    db.destroy("VDI", vdi)?;
    Ok(Value::Nil)
}

fn resize(pool: &Pool, vdi: &str, size: i64) -> Result<Value, Failure> {
    let mut db = pool.db();
    let uuid = db.str_field("VDI", vdi, "uuid")?;
    pool.storage
        .resize(&uuid, size as u64)
        .map_err(|e| backend_failure("resizing the disk image", &e))?;
    db.set_field("VDI", vdi, "virtual_size", Value::Int(size))?;
    Ok(Value::Nil)
}
