//! Database replication calls: `SR.assert_supports_database_replication`,
//! `SR.enable_database_replication`, `SR.disable_database_replication` and
//! `pool.sync_database`.

use std::collections::BTreeMap;
use std::sync::Arc;
use xapi_core::api::ErrorCode;

use xapi_core::wire::{Failure, Value};
use xapi_dr::metadata::redo_log::MINIMUM_VDI_SIZE;

use super::Call;
use super::args;
use crate::api_error::failure;
use crate::model::replication::Replica;
use crate::model::sm;
use crate::model::store::Db;
use crate::pool::Pool;

/// At most this many redo logs per pool (`Xapi_globs.redo_log_max_instances`).
const MAX_REDO_LOGS: usize = 8;

/// Whether `(class, message)` is one this module implements.
pub(crate) fn handles(class: &str, message: &str) -> bool {
    matches!(
        (class, message),
        (
            "SR",
            "assert_supports_database_replication"
                | "enable_database_replication"
                | "disable_database_replication"
        ) | ("pool", "sync_database")
    )
}

/// Handle a replication call.
pub(crate) fn handle(pool: &Arc<Pool>, call: &Call) -> Option<Result<Value, Failure>> {
    let a = &call.args;
    Some(match (call.class.name, call.message.name) {
        ("pool", "sync_database") => pool
            .db()
            .flush_replicas()
            .map(|()| Value::Nil)
            .map_err(|reason| failure(ErrorCode::CannotEnableRedoLog, [reason])),
        (_, "assert_supports_database_replication") => {
            args::string(a, 0).and_then(|sr| assert_supports(&pool.db(), &sr).map(|()| Value::Nil))
        }
        (_, "enable_database_replication") => args::string(a, 0).and_then(|sr| enable(pool, &sr)),
        (_, "disable_database_replication") => args::string(a, 0).and_then(|sr| disable(pool, &sr)),
        _ => return None,
    })
}

/// xapi's `assert_supports_database_replication`: every host has an attached PBD for the SR
/// (`SR_HAS_NO_PBDS [sr]`), then the SR's SM driver declares `SR_METADATA`
/// (`SR_OPERATION_NOT_SUPPORTED [sr]`; only LVM over iSCSI and over HBA do).
fn assert_supports(db: &Db, sr: &str) -> Result<(), Failure> {
    let pbds = db.refs_field("SR", sr, "PBDs")?;
    let attached_hosts = super::vm_placement::hosts_with_sr_attached(db, sr);
    let every_host = db
        .refs("host")?
        .iter()
        .all(|host| attached_hosts.contains(host));
    if pbds.is_empty() || !every_host {
        return Err(failure(ErrorCode::SrHasNoPbds, [sr]));
    }
    let sr_type = db.str_field("SR", sr, "type")?;
    match sm::has_feature(db, &sr_type, "SR_METADATA") {
        Some(true) => Ok(()),
        Some(false) => Err(failure(ErrorCode::SrOperationNotSupported, [sr])),
        None => Err(failure(
            ErrorCode::InternalError,
            [format!(
                "SR does not have corresponding SM record: {sr} {sr_type}"
            )],
        )),
    }
}

fn this_pool(db: &Db) -> Result<String, Failure> {
    db.refs("pool")?
        .into_iter()
        .next()
        .ok_or_else(|| failure(ErrorCode::InternalError, ["the pool has no pool object"]))
}

/// The metadata VDIs of this pool on `sr`.
fn metadata_vdis(db: &Db, sr: &str, pool_ref: &str) -> Result<Vec<String>, Failure> {
    Ok(db
        .refs_field("SR", sr, "VDIs")?
        .into_iter()
        .filter(|vdi| super::metadata_cache::metadata_owner(db, vdi).as_deref() == Some(pool_ref))
        .collect())
}

/// `SR.enable_database_replication`: find or create the metadata VDI and start a redo log on
/// its image with the whole database.
fn enable(pool: &Pool, sr: &str) -> Result<Value, Failure> {
    let mut db = pool.db();
    super::licence::assert_dr_allowed(&db)?;
    assert_supports(&db, sr)?;
    let pool_ref = this_pool(&db)?;
    let existing = metadata_vdis(&db, sr, &pool_ref)?.into_iter().find(|vdi| {
        db.int_field("VDI", vdi, "virtual_size")
            .is_ok_and(|size| size as u64 >= MINIMUM_VDI_SIZE)
    });
    let vdi = if let Some(vdi) = existing {
        vdi
    } else {
        if db.replica_count() >= MAX_REDO_LOGS {
            return Err(failure(ErrorCode::NoMoreRedoLogsAllowed, [] as [&str; 0]));
        }
        let record = BTreeMap::from([
            (
                "name_label".to_owned(),
                Value::String("Metadata for DR".to_owned()),
            ),
            (
                "name_description".to_owned(),
                Value::String("Used for disaster recovery".to_owned()),
            ),
            ("SR".to_owned(), Value::String(sr.to_owned())),
            (
                "virtual_size".to_owned(),
                Value::Int(MINIMUM_VDI_SIZE as i64),
            ),
            ("type".to_owned(), Value::String("metadata".to_owned())),
            ("sharable".to_owned(), Value::Bool(false)),
            ("read_only".to_owned(), Value::Bool(false)),
            ("managed".to_owned(), Value::Bool(true)),
            (
                "sm_config".to_owned(),
                Value::Struct(BTreeMap::from([(
                    "type".to_owned(),
                    Value::String("raw".to_owned()),
                )])),
            ),
            ("metadata_latest".to_owned(), Value::Bool(false)),
            (
                "metadata_of_pool".to_owned(),
                Value::String(pool_ref.clone()),
            ),
        ]);
        let vdi = db.create("VDI", record)?;
        let uuid = db.str_field("VDI", &vdi, "uuid")?;
        pool.storage.create(&uuid, MINIMUM_VDI_SIZE).map_err(|e| {
            failure(
                ErrorCode::CannotEnableRedoLog,
                [format!("creating the metadata VDI image: {e}")],
            )
        })?;
        db.set_field("VDI", &vdi, "location", Value::String(uuid))?;
        vdi
    };
    let uuid = db.str_field("VDI", &vdi, "uuid")?;
    let file = pool.storage.open_for_update(&uuid).map_err(|e| {
        failure(
            ErrorCode::CannotEnableRedoLog,
            [format!("opening the metadata VDI: {e}")],
        )
    })?;
    let marker = db.new_uuid();
    let replica = Replica::open(&uuid, file, &marker)
        .map_err(|e| failure(ErrorCode::CannotEnableRedoLog, [e.to_string()]))?;
    db.start_replica(replica)
        .map_err(|reason| failure(ErrorCode::CannotEnableRedoLog, [reason]))?;
    db.set_field("VDI", &vdi, "metadata_latest", Value::Bool(true))?;
    Ok(Value::Nil)
}

/// `SR.disable_database_replication`: stop the logs of this pool on `sr` and destroy their VDIs.
fn disable(pool: &Pool, sr: &str) -> Result<Value, Failure> {
    let mut db = pool.db();
    let pool_ref = this_pool(&db)?;
    for vdi in metadata_vdis(&db, sr, &pool_ref)? {
        let uuid = db.str_field("VDI", &vdi, "uuid")?;
        db.stop_replica(&uuid);
        for vbd in db.refs_field("VDI", &vdi, "VBDs")? {
            db.destroy("VBD", &vbd)?;
        }
        db.destroy("VDI", &vdi)?;
        pool.storage.destroy(&uuid).map_err(|e| {
            failure(
                ErrorCode::SrBackendFailure,
                ["", "", &format!("removing {uuid}: {e}")],
            )
        })?;
    }
    Ok(Value::Nil)
}
