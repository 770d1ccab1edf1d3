//! VDI calls backed by the sparse image files: create, destroy, resize.

use std::collections::BTreeMap;
use std::sync::Arc;
use xapi_core::api::ErrorCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use xapi_core::wire::{Failure, Value};

use super::Call;
use super::args;
use super::metadata_cache;
use crate::api_error::failure;
use crate::cbt::CbtError;
use crate::pool::Pool;

/// Whether `message` is one this module implements.
pub(crate) fn handles(message: &str) -> bool {
    matches!(
        message,
        "create"
            | "destroy"
            | "resize"
            | "resize_online"
            | "enable_cbt"
            | "disable_cbt"
            | "list_changed_blocks"
            | "data_destroy"
            | "get_nbd_info"
            | "open_database"
            | "read_database_pool_uuid"
    )
}

fn backend_failure(what: &str, err: &std::io::Error) -> Failure {
    failure(
        ErrorCode::SrBackendFailure,
        ["", "", &format!("{what}: {err}")],
    )
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
                _ => return Err(failure(ErrorCode::FieldTypeError, ["size"])),
            };
            resize(pool, &vdi, size)
        }),
        "enable_cbt" | "disable_cbt" => args::string(a, 0)
            .and_then(|vdi| set_cbt(pool, &vdi, call.message.name == "enable_cbt")),
        "list_changed_blocks" => args::string(a, 0)
            .and_then(|from| Ok((from, args::string(a, 1)?)))
            .and_then(|(from, to)| list_changed_blocks(pool, &from, &to)),
        "data_destroy" => args::string(a, 0).and_then(|vdi| data_destroy(pool, &vdi)),
        "open_database" => args::string(a, 0).and_then(|vdi| open_database(pool, &vdi)),
        "read_database_pool_uuid" => {
            args::string(a, 0).map(|vdi| Value::String(metadata_cache::pool_uuid(pool, &vdi)))
        }
        "get_nbd_info" => args::string(a, 0)
            .and_then(|vdi| nbd_info(pool, &vdi, call.session.as_deref().unwrap_or_default())),
        _ => return None,
    })
}

fn create(pool: &Pool, a: &[Value]) -> Result<Value, Failure> {
    let Some(Value::Struct(record)) = a.first() else {
        return Err(failure(ErrorCode::FieldTypeError, ["args"]));
    };
    let mut db = pool.db();
    let sr = match record.get("SR") {
        Some(Value::String(sr)) => sr.clone(),
        _ => String::new(),
    };
    db.object("SR", &sr)?;
    pool.assert_sr_has_space(&db, &sr)?;
    let vdi = db.create("VDI", record.clone())?;
    let uuid = db.str_field("VDI", &vdi, "uuid")?;
    let size = db.int_field("VDI", &vdi, "virtual_size")?.max(0) as u64;
    if let Err(err) = pool.storage.create(&uuid, size) {
        let _ = db.destroy("VDI", &vdi);
        return Err(backend_failure("creating the disk image", &err));
    }
    db.set_field("VDI", &vdi, "location", Value::String(uuid))?;
    // read-only in the datamodel: a new disk does not track changes until `VDI.enable_cbt`
    db.set_field("VDI", &vdi, "cbt_enabled", Value::Bool(false))?;
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
            return Err(failure(ErrorCode::VdiInUse, [vdi, "destroy"]));
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

/// `VDI.resize`: xapi hands the size to the SM driver, whose VHD-based drivers (file and LVM)
/// refuse to shrink with their `VDISize` error, number 79.
fn resize(pool: &Pool, vdi: &str, size: i64) -> Result<Value, Failure> {
    let mut db = pool.db();
    let uuid = db.str_field("VDI", vdi, "uuid")?;
    if size < db.int_field("VDI", vdi, "virtual_size")? {
        return Err(failure(
            crate::api_error::sr_backend_failure_code(79),
            ["", "VDI Invalid size [opterr=shrinking not allowed]", ""],
        ));
    }
    pool.storage
        .resize(&uuid, size as u64)
        .map_err(|e| backend_failure("resizing the disk image", &e))?;
    db.set_field("VDI", vdi, "virtual_size", Value::Int(size))?;
    Ok(Value::Nil)
}

/// Whether a VBD of this VDI is attached to a running domain.
fn is_attached(db: &crate::model::store::Db, vdi: &str) -> Result<bool, Failure> {
    Ok(db.refs_field("VDI", vdi, "VBDs")?.iter().any(|vbd| {
        matches!(
            db.field("VBD", vbd, "currently_attached"),
            Ok(Value::Bool(true))
        )
    }))
}

fn set_cbt(pool: &Pool, vdi: &str, enabled: bool) -> Result<Value, Failure> {
    let mut db = pool.db();
    let uuid = db.str_field("VDI", vdi, "uuid")?;
    if db.str_field("VDI", vdi, "type")? == "cbt_metadata" {
        return Err(failure(
            ErrorCode::VdiIncompatibleType,
            [vdi, "cbt_metadata"],
        ));
    }
    if enabled {
        super::storage_motion::assert_cbt_possible(&db, vdi)?;
        pool.cbt().enable(&uuid);
    } else {
        pool.cbt().disable(&uuid);
    }
    db.set_field("VDI", vdi, "cbt_enabled", Value::Bool(enabled))?;
    Ok(Value::Nil)
}

/// `VDI.list_changed_blocks(vdi_from, vdi_to)`: base64 of the changed-block bitmap.
fn list_changed_blocks(pool: &Pool, from: &str, to: &str) -> Result<Value, Failure> {
    let db = pool.db();
    let from_uuid = db.str_field("VDI", from, "uuid")?;
    let to_uuid = db.str_field("VDI", to, "uuid")?;
    if is_attached(&db, to)? {
        return Err(failure(ErrorCode::VdiInUse, [to, "list_changed_blocks"]));
    }
    let size = db.int_field("VDI", to, "virtual_size")?.max(0) as u64;
    let bitmap = pool
        .cbt()
        .changed_blocks(&from_uuid, &to_uuid, size)
        .map_err(|err| {
            // the SM drivers answer `CBTChangedBlocksError` (460) when the two VDIs are not
            // one chain, a VDI without a CBT log included
            let reason = match err {
                CbtError::Same => "Source and target VDI are same",
                CbtError::NoMetadata(_) | CbtError::Unrelated => {
                    "Source and target VDI are unrelated"
                }
            };
            failure(
                crate::api_error::sr_backend_failure_code(460),
                [
                    "",
                    &format!(
                        "Failed to calculate changed blocks for given VDIs. [opterr={reason}]"
                    ),
                    "",
                ],
            )
        })?;
    Ok(Value::String(BASE64.encode(bitmap)))
}

/// `VDI.data_destroy`: the data of a CBT-enabled snapshot goes, its CBT metadata stays and its
/// type becomes `cbt_metadata`.
fn data_destroy(pool: &Pool, vdi: &str) -> Result<Value, Failure> {
    let mut db = pool.db();
    let uuid = db.str_field("VDI", vdi, "uuid")?;
    if db.str_field("VDI", vdi, "type")? == "cbt_metadata" {
        return Ok(Value::Nil);
    }
    if !pool.cbt().has_metadata(&uuid) {
        return Err(failure(ErrorCode::VdiNoCbtMetadata, [vdi]));
    }
    if !matches!(db.field("VDI", vdi, "is_a_snapshot")?, Value::Bool(true)) {
        return Err(failure(
            ErrorCode::OperationNotAllowed,
            ["VDI.data_destroy is only allowed on snapshots"],
        ));
    }
    if is_attached(&db, vdi)? {
        return Err(failure(ErrorCode::VdiInUse, [vdi, "data_destroy"]));
    }
    pool.storage
        .destroy(&uuid)
        .map_err(|e| backend_failure("removing the disk image", &e))?;
    db.set_field("VDI", vdi, "type", Value::String("cbt_metadata".to_owned()))?;
    db.set_field("VDI", vdi, "physical_utilisation", Value::Int(0))?;
    Ok(Value::Nil)
}

/// `VDI.get_nbd_info`: when a network has the `nbd` or `insecure_nbd` purpose, one entry per
/// host that sees the VDI's SR through a plugged PBD and serves NBD (the master first, then each
/// member on its own address), with that host's PEM certificate and the name it is issued to;
/// none otherwise.
fn nbd_info(pool: &Pool, vdi: &str, session: &str) -> Result<Value, Failure> {
    let db = pool.db();
    let uuid = db.str_field("VDI", vdi, "uuid")?;
    let vdi_type = db.str_field("VDI", vdi, "type")?;
    if vdi_type == "cbt_metadata" {
        return Err(failure(
            ErrorCode::VdiIncompatibleType,
            [vdi, vdi_type.as_str()],
        ));
    }
    let has_nbd_network = db.refs("network")?.iter().any(|network| {
        db.refs_field("network", network, "purpose")
            .is_ok_and(|purposes| purposes.iter().any(|p| p == "nbd" || p == "insecure_nbd"))
    });
    if !has_nbd_network {
        return Ok(Value::Array(Vec::new()));
    }
    let sr = db.str_field("VDI", vdi, "SR")?;
    let attached_hosts = super::vm_placement::hosts_with_sr_attached(&db, &sr);
    let master = crate::rpc::session::master_host(&db);
    let mut hosts = db.refs("host")?;
    hosts.sort_by_key(|host| *host != master);
    let entries = hosts
        .iter()
        .filter(|host| attached_hosts.contains(host))
        .filter_map(|host| pool.nbd_server(host))
        .map(|server| {
            Value::Struct(BTreeMap::from([
                (
                    "exportname".to_owned(),
                    Value::String(format!("/{uuid}?session_id={session}")),
                ),
                (
                    "address".to_owned(),
                    Value::String(server.addr.ip().to_string()),
                ),
                ("port".to_owned(), Value::Int(i64::from(server.addr.port()))),
                ("cert".to_owned(), Value::String(server.cert_pem)),
                ("subject".to_owned(), Value::String(server.subject)),
            ]))
        })
        .collect();
    Ok(Value::Array(entries))
}

/// `VDI.open_database`: replay the redo log in a metadata VDI and return a read-only session on
/// the database it holds.
fn open_database(pool: &Arc<Pool>, vdi: &str) -> Result<Value, Failure> {
    let (uuid, vdi_type) = {
        let db = pool.db();
        (
            db.str_field("VDI", vdi, "uuid")?,
            db.str_field("VDI", vdi, "type")?,
        )
    };
    if vdi_type != "metadata" {
        return Err(failure(
            ErrorCode::VdiIncompatibleType,
            [vdi, vdi_type.as_str()],
        ));
    }
    let mut image = metadata_cache::read_image(pool, &uuid)?;
    let cached = metadata_cache::summary(&image);
    image.database.recompute_relations();
    let foreign = Pool::new(
        &format!("foreign database of {uuid}"),
        pool.classes,
        "",
        pool.clock.clone(),
        pool.faults.clone(),
        pool.storage.clone(),
    );
    foreign.replace_db(crate::model::store::Db::from_database(
        pool.classes,
        &uuid,
        &image.database,
    ));
    let session = {
        let mut db = foreign.db();
        let master = crate::rpc::session::master_host(&db);
        db.create(
            "session",
            BTreeMap::from([
                ("this_host".to_owned(), Value::String(master)),
                (
                    "auth_user_name".to_owned(),
                    Value::String("disaster-recovery".to_owned()),
                ),
                ("is_local_superuser".to_owned(), Value::Bool(false)),
                (
                    "rbac_permissions".to_owned(),
                    Value::Array(super::rbac::read_only_permissions(pool.classes)),
                ),
            ]),
        )?
    };
    metadata_cache::remember(pool, &mut pool.db(), vdi, cached);
    pool.add_foreign(&session, Arc::new(foreign));
    Ok(Value::String(session))
}
