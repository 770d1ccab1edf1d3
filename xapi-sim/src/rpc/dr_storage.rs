//! Attaching mirrored storage on the recovery site: `SR.introduce`, `SR.forget`, `PBD.plug`,
//! `PBD.unplug` (and the dispatch of `SR.probe`, `sr_probe`, and of `DR_task.create` /
//! `DR_task.destroy`, `dr_task`).
//!
//! In the demo, the DR pool sees a storage mirror of the primary's replicated SR behind the
//! device config of [`Mirror`]. Plugging a PBD of an SR introduced with the mirrored SR's UUID
//! scans it: the source's VDIs appear with their UUIDs, their images shared with the source
//! while the mirror replicates (writes on the primary, such as its redo log, show through), or
//! copied when it is broken (see [`crate::mirror`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use xapi_core::api::ErrorCode;

use xapi_core::wire::{Failure, Value};

use super::Call;
use super::args;
use super::metadata_cache;
use crate::api_error::failure;
use crate::model::defaults::NULL_REF;
use crate::model::store::Db;
use crate::pool::Pool;

/// A storage mirror visible from a pool: the SR `sr_uuid` of `source`, reachable with a device
/// config containing every pair of `device_config`.
#[derive(Debug, Clone)]
pub(crate) struct Mirror {
    /// The pool whose SR is mirrored.
    pub(crate) source: Arc<Pool>,
    /// The mirrored SR.
    pub(crate) sr_uuid: String,
    /// The device config that reaches the mirror.
    pub(crate) device_config: BTreeMap<String, String>,
    /// Whether the mirror replicates or is broken.
    pub(crate) state: Arc<crate::mirror::MirrorState>,
}

/// Whether `(class, message)` is one this module implements.
pub(crate) fn handles(class: &str, message: &str) -> bool {
    matches!(
        (class, message),
        ("SR", "probe" | "introduce" | "forget" | "scan")
            | ("PBD", "plug" | "unplug")
            | ("DR_task", "create" | "destroy")
    )
}

/// Handle a storage call of the recovery site.
pub(crate) fn handle(pool: &Arc<Pool>, call: &Call) -> Option<Result<Value, Failure>> {
    let a = &call.args;
    Some(match (call.class.name, call.message.name) {
        ("SR", "probe") => args::string(a, 0).and_then(|host| {
            let config = string_map(a.get(1));
            let sr_type = args::string(a, 2).unwrap_or_default();
            let metadata_only = string_map(a.get(3))
                .get("metadata")
                .is_some_and(|v| v == "true");
            super::sr_probe::probe(pool, &host, &config, &sr_type, metadata_only).map(Value::String)
        }),
        ("SR", "introduce") => introduce(pool, a),
        ("SR", "forget") => args::string(a, 0).and_then(|sr| forget(pool, &sr)),
        ("SR", "scan") => args::string(a, 0).and_then(|sr| scan(pool, &sr)),
        ("PBD", "plug") => args::string(a, 0).and_then(|pbd| plug(pool, &pbd)),
        ("PBD", "unplug") => args::string(a, 0).and_then(|pbd| unplug(pool, &pbd)),
        ("DR_task", "create") => super::dr_task::create(pool, a),
        ("DR_task", "destroy") => {
            args::string(a, 0).and_then(|task| super::dr_task::destroy(pool, &task))
        }
        _ => return None,
    })
}

/// A `(string -> string) map` argument (other values left out).
pub(crate) fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    match value {
        Some(Value::Struct(map)) => map
            .iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k.clone(), s.clone())),
                _ => None,
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The mirrors a device config reaches.
pub(crate) fn mirrors_for(pool: &Pool, config: &BTreeMap<String, String>) -> Vec<Mirror> {
    pool.mirrors()
        .into_iter()
        .filter(|m| {
            m.device_config
                .iter()
                .all(|(k, v)| config.get(k) == Some(v))
        })
        .collect()
}

/// `SR.introduce`: an SR record with the given UUID and no PBDs.
pub(crate) fn introduce(pool: &Pool, a: &[Value]) -> Result<Value, Failure> {
    let uuid = args::string(a, 0)?;
    let mut db = pool.db();
    if db.by_uuid("SR", &uuid).is_ok() {
        return Err(failure(ErrorCode::SrUuidExists, [uuid.as_str()]));
    }
    let fields = BTreeMap::from([
        ("uuid".to_owned(), Value::String(uuid)),
        ("name_label".to_owned(), Value::String(args::string(a, 1)?)),
        (
            "name_description".to_owned(),
            Value::String(args::string(a, 2)?),
        ),
        ("type".to_owned(), Value::String(args::string(a, 3)?)),
        (
            "content_type".to_owned(),
            Value::String(args::string(a, 4)?),
        ),
        ("shared".to_owned(), Value::Bool(args::boolean(a, 5)?)),
        (
            "sm_config".to_owned(),
            a.get(6).cloned().unwrap_or(Value::Struct(BTreeMap::new())),
        ),
    ]);
    db.create("SR", fields).map(Value::String)
}

/// `SR.forget`: the SR's records go (PBDs must be unplugged); disk data stays.
pub(crate) fn forget(pool: &Pool, sr: &str) -> Result<Value, Failure> {
    let mut db = pool.db();
    let pbds = db.refs_field("SR", sr, "PBDs")?;
    if pbds.iter().any(|pbd| {
        matches!(
            db.field("PBD", pbd, "currently_attached"),
            Ok(Value::Bool(true))
        )
    }) {
        return Err(failure(ErrorCode::SrHasPbd, [sr]));
    }
    for vdi in db.refs_field("SR", sr, "VDIs")? {
        for vbd in db.refs_field("VDI", &vdi, "VBDs")? {
            db.destroy("VBD", &vbd)?;
        }
        db.destroy("VDI", &vdi)?;
    }
    for pbd in pbds {
        db.destroy("PBD", &pbd)?;
    }
    db.destroy("SR", sr).map(|()| Value::Nil)
}

/// `PBD.plug`: attach, and scan a mirrored SR (its VDIs appear with their UUIDs).
pub(crate) fn plug(pool: &Pool, pbd: &str) -> Result<Value, Failure> {
    let mut db = pool.db();
    let sr = db.str_field("PBD", pbd, "SR")?;
    scan_mirror(pool, &mut db, &sr, pbd)?;
    db.set_field("PBD", pbd, "currently_attached", Value::Bool(true))?;
    // xapi's handle_metadata_vdis: the metadata VDIs of the shared SR join the cache
    let metadata_vdis = metadata_vdis_of(&db, &sr);
    metadata_cache::add_vdis(pool, &mut db, &metadata_vdis);
    Ok(Value::Nil)
}

/// `SR.scan` of an SR with a plugged PBD that reaches a storage mirror: the VDIs that appeared
/// on the mirror since (a failed-over pool's metadata VDI, for a failback) join the SR, and its
/// metadata VDIs are read again.
fn scan(pool: &Pool, sr: &str) -> Result<Value, Failure> {
    let mut db = pool.db();
    for pbd in db.refs_field("SR", sr, "PBDs")? {
        if matches!(
            db.field("PBD", &pbd, "currently_attached"),
            Ok(Value::Bool(true))
        ) {
            scan_mirror(pool, &mut db, sr, &pbd)?;
        }
    }
    let metadata_vdis = metadata_vdis_of(&db, sr);
    metadata_cache::add_vdis(pool, &mut db, &metadata_vdis);
    Ok(Value::Nil)
}

/// When `pbd`'s device config reaches a mirror of `sr`, make every VDI of the mirrored SR that
/// `sr` lacks, its image linked to the source's while the mirror replicates (copied when it is
/// broken, or the copy kept since the break).
fn scan_mirror(pool: &Pool, db: &mut Db, sr: &str, pbd: &str) -> Result<(), Failure> {
    let sr_uuid = db.str_field("SR", sr, "uuid")?;
    let config = match db.field("PBD", pbd, "device_config")? {
        Value::Struct(map) => string_map(Some(&Value::Struct(map.clone()))),
        _ => BTreeMap::new(),
    };
    let Some(mirror) = mirrors_for(pool, &config)
        .into_iter()
        .find(|m| m.sr_uuid == sr_uuid)
    else {
        return Ok(());
    };
    let source = mirror.source.db();
    let source_sr = source.by_uuid("SR", &sr_uuid)?;
    for vdi in source.refs_field("SR", &source_sr, "VDIs")? {
        let uuid = source.str_field("VDI", &vdi, "uuid")?;
        if db.by_uuid("VDI", &uuid).is_ok() {
            continue;
        }
        let mut fields: BTreeMap<String, Value> = source
            .object("VDI", &vdi)?
            .fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        fields.insert("SR".to_owned(), Value::String(sr.to_owned()));
        for cleared in ["snapshot_of", "metadata_of_pool"] {
            fields.insert(cleared.to_owned(), Value::String(NULL_REF.to_owned()));
        }
        // set from the database it holds once plugged (metadata_cache)
        fields.insert("metadata_latest".to_owned(), Value::Bool(false));
        let target = pool.storage.path(&uuid);
        if !target.exists() {
            let source_path = mirror.source.storage.path(&uuid);
            let size = std::fs::metadata(&source_path).map_or(0, |m| m.len());
            let linked = mirror.state.mode() == crate::mirror::MirrorMode::Mirrored
                && std::fs::hard_link(&source_path, &target).is_ok();
            let copied = if linked {
                Ok(())
            } else {
                crate::storage::copy_sparse(&source_path, &target, size)
            };
            copied.map_err(|e| {
                failure(
                    ErrorCode::SrAttachFailed,
                    [format!("{sr}: mirroring {uuid}: {e}")],
                )
            })?;
        }
        db.create("VDI", fields)?;
    }
    Ok(())
}

/// `PBD.unplug`: detach; the SR's metadata VDIs leave the cache and lose `metadata_latest`.
pub(crate) fn unplug(pool: &Pool, pbd: &str) -> Result<Value, Failure> {
    let mut db = pool.db();
    let sr = db.str_field("PBD", pbd, "SR")?;
    db.set_field("PBD", pbd, "currently_attached", Value::Bool(false))?;
    let metadata_vdis = metadata_vdis_of(&db, &sr);
    metadata_cache::remove_vdis(pool, &mut db, &metadata_vdis);
    Ok(Value::Nil)
}

/// The VDIs of type `metadata` on `sr`.
fn metadata_vdis_of(db: &Db, sr: &str) -> Vec<String> {
    db.refs_field("SR", sr, "VDIs")
        .unwrap_or_default()
        .into_iter()
        .filter(|vdi| metadata_cache::metadata_owner(db, vdi).is_some())
        .collect()
}
