//! `PUT /pool/xmldbdump`: restore a database dump (`xe pool-restore-database`,
//! `pool_db_backup.ml`).
//!
//! A restore needs a `Content-Length` (else 400, as xapi). The answer is `200` with `task-id`
//! before the dump is read; the outcome is on the task: a document that does not parse is
//! `INTERNAL_ERROR`, a schema version other than the running one (5.909) is
//! `RESTORE_INCOMPATIBLE_VERSION` (`version_check`), a database without a pool and its master is
//! `INTERNAL_ERROR`. The dump is then prepared as `prepare_database_for_restore` does: every
//! host but the dump's master goes with its PIFs, the master takes this host's UUID and its
//! control domain this host's dom0 UUID, the master's PIFs take the management flag of this
//! host's management device and the MACs of this host's NICs by device name
//! (`RESTORE_TARGET_MISSING_DEVICE` for a physical one this host lacks,
//! `RESTORE_TARGET_MGMT_IF_NOT_IN_BACKUP` when the management device is not in the dump).
//! `dry_run=true` stops there. A real restore replaces every object of the pool with the
//! prepared dump's and then behaves as the restart xapi does: sessions and tasks are gone (every
//! session, including the caller's, gets `SESSION_INVALID`). The replacement goes through the
//! ordinary store operations, so change subscribers, the state saver and metadata replication
//! see it as a series of changes.

use std::sync::Arc;
use xapi_core::api::ErrorCode;

use http::header::CONTENT_LENGTH;
use http::request::Parts;
use http::{Response, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use xapi_core::api::meta::Ty;
use xapi_core::wire::{Failure, Value};
use xapi_dr::metadata::{Database, Manifest, read_db_xml};

use super::RequestArgs;
use crate::api_error::failure;
use crate::model::store::Db;
use crate::pool::Pool;
use crate::rpc::session::master_host;
use crate::server::routes::{Body, html_error};

/// Largest database dump accepted by a restore.
const MAX_DUMP: u64 = 1 << 30;

/// Answer `PUT /pool/xmldbdump`.
pub(crate) fn restore(pool: &Arc<Pool>, parts: &Parts, body: Incoming) -> Response<Body> {
    let length = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let Some(length) = length else {
        return html_error(
            StatusCode::BAD_REQUEST,
            "a database restore needs a Content-Length",
        );
    };
    let args = RequestArgs::of(parts);
    let transfer = match super::begin(pool, &args, "pool.restore_database") {
        Ok(transfer) => transfer,
        Err(refusal) => return refusal.response(),
    };
    let dry_run = args.flag("dry_run");
    let work = {
        let pool = Arc::clone(pool);
        async move {
            let mut database = read_dump(body, length).await?;
            check(&database)?;
            prepare_for_restore(&pool.db(), &mut database)?;
            if !dry_run {
                // the "restart" takes the task away with every session
                replace_database(&pool, &database);
                tracing::info!(pool = %pool.name, "database restored: sessions and tasks dropped");
            }
            Ok(Value::Nil)
        }
    };
    super::take_over_upload(Arc::clone(pool), &transfer.task, Ty::Void, work)
}

/// The uploaded document, parsed.
async fn read_dump(body: Incoming, length: u64) -> Result<Database, Failure> {
    if length > MAX_DUMP {
        return Err(failure(
            ErrorCode::InternalError,
            [format!(
                "database dump of {length} bytes exceeds the simulator's limit of {MAX_DUMP}"
            )],
        ));
    }
    let limit = usize::try_from(length).unwrap_or(usize::MAX);
    let bytes = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            failure(
                ErrorCode::InternalError,
                [format!("reading the database dump: {e}")],
            )
        })?
        .to_bytes();
    read_db_xml(bytes.as_ref())
        .map_err(|e| failure(ErrorCode::InternalError, [format!("database dump: {e}")]))
}

/// `version_check`, then what `prepare_database_for_restore` needs: a pool and its master.
fn check(database: &Database) -> Result<(), Failure> {
    let running = Manifest::default();
    let manifest = &database.manifest;
    if (manifest.schema_major, manifest.schema_minor)
        != (running.schema_major, running.schema_minor)
    {
        tracing::warn!(
            expected = %format!("{}.{}", running.schema_major, running.schema_minor),
            actual = %format!("{}.{}", manifest.schema_major, manifest.schema_minor),
            "pool backup was created with an incompatible product version"
        );
        return Err(failure(
            ErrorCode::RestoreIncompatibleVersion,
            [] as [&str; 0],
        ));
    }
    let master = database
        .rows("pool")
        .next()
        .and_then(|(_, row)| row.get("master"))
        .map(str::to_owned);
    match master {
        Some(master) if database.row("host", &master).is_some() => Ok(()),
        Some(master) => Err(failure(
            ErrorCode::InternalError,
            [format!(
                "database dump: the pool's master {master} is not in the host table"
            )],
        )),
        None => Err(failure(
            ErrorCode::InternalError,
            ["database dump: no pool row".to_owned()],
        )),
    }
}

/// `prepare_database_for_restore`: the dump's other hosts go, its master becomes this host.
fn prepare_for_restore(live: &Db, database: &mut Database) -> Result<(), Failure> {
    let master = database
        .rows("pool")
        .next()
        .and_then(|(_, row)| row.get("master"))
        .map(str::to_owned)
        .unwrap_or_default();
    let others: Vec<String> = database
        .rows("host")
        .map(|(reference, _)| reference.to_owned())
        .filter(|reference| *reference != master)
        .collect();
    for host in &others {
        for pif in pifs_of(database, host) {
            database.remove_row("PIF", &pif);
        }
        database.remove_row("host", host);
    }
    let this_host = master_host(live);
    if let Ok(uuid) = live.str_field("host", &this_host, "uuid") {
        database.set_field("host", &master, "uuid", &uuid);
    }
    let dom0 = database
        .row("host", &master)
        .and_then(|row| row.get("control_domain"))
        .map(str::to_owned);
    let live_dom0 = live.str_field("host", &this_host, "control_domain").ok();
    if let (Some(dom0), Some(live_dom0)) = (dom0, live_dom0)
        && let Ok(uuid) = live.str_field("VM", &live_dom0, "uuid")
    {
        database.set_field("VM", &dom0, "uuid", &uuid);
    }
    rewrite_pifs(live, &this_host, database, &master)
}

/// The PIF rows of `host` in the dump.
fn pifs_of(database: &Database, host: &str) -> Vec<String> {
    database
        .rows("PIF")
        .filter(|(_, row)| row.get("host") == Some(host))
        .map(|(reference, _)| reference.to_owned())
        .collect()
}

/// The master's PIFs in the dump take this host's management device and NIC MACs.
fn rewrite_pifs(
    live: &Db,
    this_host: &str,
    database: &mut Database,
    master: &str,
) -> Result<(), Failure> {
    let live_pifs = live
        .refs_field("host", this_host, "PIFs")
        .unwrap_or_default();
    let is_true =
        |pif: &str, field: &str| matches!(live.field("PIF", pif, field), Ok(Value::Bool(true)));
    let mut device_macs = Vec::new();
    let mut management = Vec::new();
    for pif in &live_pifs {
        let device = live.str_field("PIF", pif, "device").unwrap_or_default();
        if is_true(pif, "physical") {
            device_macs.push((
                device.clone(),
                live.str_field("PIF", pif, "MAC").unwrap_or_default(),
            ));
        }
        if is_true(pif, "management") {
            management.push(device);
        }
    }
    // only a single management interface counts, as in xapi
    let management = match management.as_slice() {
        [device] => Some(device.clone()),
        _ => None,
    };
    let mut found_management = false;
    let mut devices_in_backup = Vec::new();
    for pif in pifs_of(database, master) {
        let row = database.row("PIF", &pif);
        let device = row
            .and_then(|r| r.get("device"))
            .unwrap_or_default()
            .to_owned();
        let physical = row.and_then(|r| r.get("physical")) == Some("true");
        devices_in_backup.insert(0, device.clone());
        let is_management = management.as_deref() == Some(device.as_str());
        database.set_field(
            "PIF",
            &pif,
            "management",
            if is_management { "true" } else { "false" },
        );
        found_management |= is_management;
        if physical {
            let Some((_, mac)) = device_macs.iter().find(|(d, _)| *d == device) else {
                return Err(failure(ErrorCode::RestoreTargetMissingDevice, [device]));
            };
            database.set_field("PIF", &pif, "MAC", mac);
        }
    }
    if !found_management && management.is_some() {
        return Err(failure(
            ErrorCode::RestoreTargetMgmtIfNotInBackup,
            devices_in_backup,
        ));
    }
    Ok(())
}

/// Replace every object of the pool with the dump's: all objects of every class go (sessions
/// and tasks too, as after a restart), the dump's rows come back with their references and one-
/// to-many sets are linked again.
fn replace_database(pool: &Pool, database: &Database) {
    let restored = Db::from_database(pool.classes, &pool.name, database);
    let mut db = pool.db();
    let classes: Vec<&'static str> = db.tables().map(|t| t.meta.name).collect();
    for class in &classes {
        let references: Vec<String> = db
            .table(class)
            .map(|t| t.objects.keys().cloned().collect())
            .unwrap_or_default();
        for reference in references {
            if let Err(err) = db.destroy(class, &reference) {
                tracing::warn!(
                    class,
                    reference,
                    code = err.code.as_str(),
                    "restore: destroy"
                );
            }
        }
    }
    for table in restored.tables() {
        for (reference, object) in &table.objects {
            let fields = object
                .fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
            if let Err(err) = db.create_with_ref(table.meta.name, reference, fields) {
                tracing::warn!(
                    class = table.meta.name,
                    reference,
                    code = err.code.as_str(),
                    "restore: create"
                );
            }
        }
    }
    // a child created before its parent was not linked: set every reference field again
    // (through set_field, so that the parents' changes are events, unlike a silent load)
    for (relation, child, parent) in db.relation_links() {
        let _ = db.set_field(relation.many_class, &child, relation.many_field, parent);
    }
    // xapi restarts on the restored database and registers its SM drivers again
    if let Err(err) = crate::model::sm::register_drivers(&mut db) {
        tracing::warn!(code = err.code.as_str(), "restore: SM drivers");
    }
}
