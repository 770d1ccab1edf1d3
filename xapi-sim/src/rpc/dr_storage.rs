//! Finding and attaching mirrored storage on the recovery site: `SR.probe`, `SR.introduce`,
//! `SR.forget`, `PBD.plug`, `PBD.unplug`, `DR_task.create` and `DR_task.destroy`.
//!
//! In the demo, the DR pool sees a storage mirror of the primary's replicated SR behind the
//! device config of [`Mirror`]. Plugging a PBD of an SR introduced with the mirrored SR's UUID
//! scans it: the source's VDIs appear with their UUIDs, their images shared with the source
//! while the mirror replicates (writes on the primary, such as its redo log, show through), or
//! copied when it is broken (see [`crate::mirror`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
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
        ("SR", "probe" | "introduce" | "forget")
            | ("PBD", "plug" | "unplug")
            | ("DR_task", "create" | "destroy")
    )
}

/// Handle a storage call of the recovery site.
pub(crate) fn handle(pool: &Arc<Pool>, call: &Call) -> Option<Result<Value, Failure>> {
    let a = &call.args;
    Some(match (call.class.name, call.message.name) {
        ("SR", "probe") => {
            let config = string_map(a.get(1));
            let metadata_only = string_map(a.get(3))
                .get("metadata")
                .is_some_and(|v| v == "true");
            Ok(Value::String(probe(pool, &config, metadata_only)))
        }
        ("SR", "introduce") => introduce(pool, a),
        ("SR", "forget") => args::string(a, 0).and_then(|sr| forget(pool, &sr)),
        ("PBD", "plug") => args::string(a, 0).and_then(|pbd| plug(pool, &pbd)),
        ("PBD", "unplug") => args::string(a, 0).and_then(|pbd| unplug(pool, &pbd)),
        ("DR_task", "create") => dr_task_create(pool, a),
        ("DR_task", "destroy") => args::string(a, 0).and_then(|task| dr_task_destroy(pool, &task)),
        _ => return None,
    })
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
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
fn mirrors_for(pool: &Pool, config: &BTreeMap<String, String>) -> Vec<Mirror> {
    pool.mirrors()
        .into_iter()
        .filter(|m| {
            m.device_config
                .iter()
                .all(|(k, v)| config.get(k) == Some(v))
        })
        .collect()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `SR.probe`: the `<SRlist>` of the SRs behind the device config (with `metadata=true`, only
/// those holding a metadata VDI).
fn probe(pool: &Pool, config: &BTreeMap<String, String>, metadata_only: bool) -> String {
    let mut out = String::from("<?xml version=\"1.0\" ?><SRlist>");
    for mirror in mirrors_for(pool, config) {
        let db = mirror.source.db();
        let Ok(sr) = db.by_uuid("SR", &mirror.sr_uuid) else {
            continue;
        };
        let has_metadata = db
            .refs_field("SR", &sr, "VDIs")
            .unwrap_or_default()
            .iter()
            .any(|vdi| {
                db.str_field("VDI", vdi, "type")
                    .is_ok_and(|t| t == "metadata")
            });
        if metadata_only && !has_metadata {
            continue;
        }
        let name = db.str_field("SR", &sr, "name_label").unwrap_or_default();
        let description = db
            .str_field("SR", &sr, "name_description")
            .unwrap_or_default();
        let _ = write!(
            out,
            "<SR><UUID>{}</UUID><name_label>{}</name_label><name_description>{}</name_description></SR>",
            mirror.sr_uuid,
            xml_escape(&name),
            xml_escape(&description)
        );
    }
    out.push_str("</SRlist>");
    out
}

/// `SR.introduce`: an SR record with the given UUID and no PBDs.
fn introduce(pool: &Pool, a: &[Value]) -> Result<Value, Failure> {
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
fn forget(pool: &Pool, sr: &str) -> Result<Value, Failure> {
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
fn plug(pool: &Pool, pbd: &str) -> Result<Value, Failure> {
    let mut db = pool.db();
    let sr = db.str_field("PBD", pbd, "SR")?;
    let sr_uuid = db.str_field("SR", &sr, "uuid")?;
    let config = match db.field("PBD", pbd, "device_config")? {
        Value::Struct(map) => string_map(Some(&Value::Struct(map.clone()))),
        _ => BTreeMap::new(),
    };
    let mirror = mirrors_for(pool, &config)
        .into_iter()
        .find(|m| m.sr_uuid == sr_uuid);
    if let Some(mirror) = mirror {
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
            fields.insert("SR".to_owned(), Value::String(sr.clone()));
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
    }
    db.set_field("PBD", pbd, "currently_attached", Value::Bool(true))?;
    // xapi's handle_metadata_vdis: the metadata VDIs of the shared SR join the cache
    let metadata_vdis = metadata_vdis_of(&db, &sr);
    metadata_cache::add_vdis(pool, &mut db, &metadata_vdis);
    Ok(Value::Nil)
}

/// `PBD.unplug`: detach; the SR's metadata VDIs leave the cache and lose `metadata_latest`.
fn unplug(pool: &Pool, pbd: &str) -> Result<Value, Failure> {
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

/// `DR_task.create`: probe for metadata SRs, introduce the whitelisted ones, attach them on
/// every host and mark them as introduced by the task.
fn dr_task_create(pool: &Pool, a: &[Value]) -> Result<Value, Failure> {
    let sr_type = args::string(a, 0)?;
    let config = string_map(a.get(1));
    let whitelist = args::strings(a, 2)?;
    let task = pool.db().create("DR_task", BTreeMap::new())?;
    let listed = mirrors_for(pool, &config);
    for mirror in listed
        .into_iter()
        .filter(|m| whitelist.contains(&m.sr_uuid))
    {
        if pool.db().by_uuid("SR", &mirror.sr_uuid).is_ok() {
            continue;
        }
        let (name, description) = {
            let source = mirror.source.db();
            let sr = source.by_uuid("SR", &mirror.sr_uuid)?;
            (
                source.str_field("SR", &sr, "name_label")?,
                source.str_field("SR", &sr, "name_description")?,
            )
        };
        let introduced = introduce(
            pool,
            &[
                Value::String(mirror.sr_uuid.clone()),
                Value::String(name),
                Value::String(description),
                Value::String(sr_type.clone()),
                Value::String(String::new()),
                Value::Bool(true),
                Value::Struct(BTreeMap::new()),
            ],
        )?;
        let Value::String(sr) = introduced else {
            continue;
        };
        let hosts = pool.db().refs("host")?;
        for host in hosts {
            let device_config = Value::Struct(
                config
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            );
            let pbd = pool.db().create(
                "PBD",
                BTreeMap::from([
                    ("host".to_owned(), Value::String(host)),
                    ("SR".to_owned(), Value::String(sr.clone())),
                    ("device_config".to_owned(), device_config),
                ]),
            )?;
            plug(pool, &pbd)?;
        }
        pool.db()
            .set_field("SR", &sr, "introduced_by", Value::String(task.clone()))?;
    }
    Ok(Value::String(task))
}

/// `DR_task.destroy`: unplug and forget every SR the task still lists, then the task goes.
fn dr_task_destroy(pool: &Pool, task: &str) -> Result<Value, Failure> {
    let srs = pool.db().refs_field("DR_task", task, "introduced_SRs")?;
    for sr in srs {
        let pbds = pool.db().refs_field("SR", &sr, "PBDs")?;
        for pbd in pbds {
            pool.db()
                .set_field("PBD", &pbd, "currently_attached", Value::Bool(false))?;
        }
        forget(pool, &sr)?;
    }
    pool.db().destroy("DR_task", task).map(|()| Value::Nil)
}
