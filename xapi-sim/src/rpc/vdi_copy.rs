//! Duplicating disks: `VDI.snapshot`, `VDI.clone` and `VDI.copy`, and the disks that
//! `VM.snapshot`, `VM.clone` and `VM.copy` duplicate.
//!
//! As xapi: a snapshot is marked `is_a_snapshot` with `snapshot_of` the original and keeps CBT
//! (its changed-block log continues from the original's); clones and copies are plain disks with
//! CBT off; `VDI.copy` writes into `into_vdi` when given (`VDI_READONLY`, `VDI_TOO_SMALL`),
//! only the blocks that differ from `base_vdi` when given; a `cbt_metadata` VDI cannot be
//! snapshotted, cloned or copied (`VDI_INCOMPATIBLE_TYPE`).

use std::collections::BTreeMap;
use std::sync::Arc;
use xapi_core::api::ErrorCode;

use xapi_core::wire::{Failure, Value};

use super::Call;
use super::args;
use crate::api_error::failure;
use crate::model::defaults::NULL_REF;
use crate::model::store::Db;
use crate::pool::Pool;
use crate::timestamp;

/// How a disk is duplicated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DiskCopy {
    /// A snapshot (`is_a_snapshot`, `snapshot_of` the original), same SR.
    Snapshot,
    /// A clone in the same SR.
    Clone,
    /// A full copy, into this SR when given.
    Copy(Option<String>),
}

/// Whether `message` is a VDI message this module implements.
pub(crate) fn handles(message: &str) -> bool {
    matches!(message, "snapshot" | "clone" | "copy")
}

/// Handle `VDI.snapshot`, `VDI.clone` or `VDI.copy`.
pub(crate) fn handle(pool: &Arc<Pool>, call: &Call) -> Result<Value, Failure> {
    let a = &call.args;
    args::string(a, 0).and_then(|vdi| {
        let mut db = pool.db();
        assert_duplicable(&db, &vdi)?;
        match call.message.name {
            "snapshot" => duplicate_vdi(&mut db, pool, &vdi, &DiskCopy::Snapshot),
            "clone" => duplicate_vdi(&mut db, pool, &vdi, &DiskCopy::Clone),
            _ => {
                let optional_ref = |i| match a.get(i) {
                    Some(Value::String(r)) if r != NULL_REF && !r.is_empty() => Some(r.clone()),
                    _ => None,
                };
                let sr = optional_ref(1);
                match optional_ref(3).filter(|into| db.exists("VDI", into)) {
                    Some(into) => copy_into(&mut db, pool, &vdi, &into, optional_ref(2).as_deref())
                        .map(|()| into),
                    None => duplicate_vdi(&mut db, pool, &vdi, &DiskCopy::Copy(sr)),
                }
            }
        }
        .map(Value::String)
    })
}

/// xapi's check: a `cbt_metadata` VDI has no data to duplicate.
fn assert_duplicable(db: &Db, vdi: &str) -> Result<(), Failure> {
    if db.str_field("VDI", vdi, "type")? == "cbt_metadata" {
        return Err(failure(
            ErrorCode::VdiIncompatibleType,
            [vdi, "cbt_metadata"],
        ));
    }
    Ok(())
}

/// A new VDI duplicating `vdi`, record and image, as `how` says; its reference.
pub(crate) fn duplicate_vdi(
    db: &mut Db,
    pool: &Pool,
    vdi: &str,
    how: &DiskCopy,
) -> Result<String, Failure> {
    let mut fields: BTreeMap<String, Value> = db
        .object("VDI", vdi)?
        .fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    fields.remove("uuid");
    match how {
        DiskCopy::Snapshot => {
            fields.insert("is_a_snapshot".into(), Value::Bool(true));
            fields.insert("snapshot_of".into(), Value::String(vdi.to_owned()));
            fields.insert("snapshot_time".into(), timestamp::now());
        }
        DiskCopy::Clone | DiskCopy::Copy(_) => {
            fields.insert("is_a_snapshot".into(), Value::Bool(false));
            fields.insert("snapshot_of".into(), Value::String(NULL_REF.into()));
        }
    }
    if let DiskCopy::Copy(Some(sr)) = how {
        db.object("SR", sr)?;
        fields.insert("SR".into(), Value::String(sr.clone()));
    }
    let size = db.int_field("VDI", vdi, "virtual_size")?.max(0) as u64;
    if let Some(Value::String(target_sr)) = fields.get("SR") {
        pool.assert_sr_has_space(db, target_sr)?;
    }
    let new_vdi = db.create("VDI", fields)?;
    let from_uuid = db.str_field("VDI", vdi, "uuid")?;
    let to_uuid = db.str_field("VDI", &new_vdi, "uuid")?;
    if let Err(err) = pool.storage.share(&from_uuid, &to_uuid, size) {
        let _ = db.destroy("VDI", &new_vdi);
        let _ = pool.storage.destroy(&to_uuid);
        return Err(failure(
            ErrorCode::SrBackendFailure,
            ["", "", &format!("copying disk {from_uuid}: {err}")],
        ));
    }
    if *how == DiskCopy::Snapshot {
        pool.cbt().snapshot(&from_uuid, &to_uuid);
    } else {
        db.set_field("VDI", &new_vdi, "cbt_enabled", Value::Bool(false))?;
    }
    db.set_field("VDI", &new_vdi, "location", Value::String(to_uuid))?;
    Ok(new_vdi)
}

/// `VDI.copy` into an existing VDI, differentially against `base` when given.
fn copy_into(
    db: &mut Db,
    pool: &Pool,
    vdi: &str,
    into: &str,
    base: Option<&str>,
) -> Result<(), Failure> {
    if matches!(db.field("VDI", into, "read_only")?, Value::Bool(true)) {
        return Err(failure(ErrorCode::VdiReadonly, [into]));
    }
    let size = db.int_field("VDI", vdi, "virtual_size")?;
    if db.int_field("VDI", into, "virtual_size")? < size {
        return Err(failure(
            ErrorCode::VdiTooSmall,
            [into.to_owned(), size.to_string()],
        ));
    }
    let from_uuid = db.str_field("VDI", vdi, "uuid")?;
    let into_uuid = db.str_field("VDI", into, "uuid")?;
    let base_uuid = base
        .filter(|b| db.exists("VDI", b))
        .map(|b| db.str_field("VDI", b, "uuid"))
        .transpose()?;
    let written = pool
        .storage
        .copy_into(
            &from_uuid,
            &into_uuid,
            base_uuid.as_deref(),
            size.max(0) as u64,
        )
        .map_err(|err| {
            failure(
                ErrorCode::SrBackendFailure,
                [
                    "",
                    "",
                    &format!("copying disk {from_uuid} into {into_uuid}: {err}"),
                ],
            )
        })?;
    for (offset, length) in written {
        pool.note_write(&into_uuid, offset, length);
    }
    Ok(())
}
