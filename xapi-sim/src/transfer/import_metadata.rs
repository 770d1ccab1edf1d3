//! `PUT /import_metadata`: a tar holding only `ova.xml` (what `/export_metadata` serves)
//! becomes VMs, VBDs and VIFs whose disks already exist in this pool (xapi's
//! `import.ml` `metadata_handler`).
//!
//! Each VDI of the archive is found, as `VDI.precheck` does, through the `vdi:<src>=<dst>`
//! query arguments (each side a VDI uuid or an `sm_config["SCSIid"]`), else by the SR with the exported SR's UUID and the VDI's
//! `location`; a VDI not found fails the import with `VDI_LOCATION_MISSING [sr uuid;
//! location]`, or with `force=true` is skipped together with its VBDs. `restore=true` keeps the
//! VM UUIDs and MACs with the power-state and `VM.version` rules of `/import`; `dry_run=true`
//! makes those checks and the VDI lookups but creates nothing (the task's result is then an
//! empty set). As `/import`, the result is the set of new VMs and a failure without `force`
//! destroys whatever was created.

use std::collections::HashMap;
use std::sync::Arc;
use xapi_core::api::ErrorCode;

use http::Response;
use http::request::Parts;
use hyper::body::Incoming;
use xapi_backup::format::ova_xml::{self, OvaClass, OvaXml};
use xapi_core::wire::{Failure, Value};

use super::RequestArgs;
use super::import::{Created, DiskPlan, Identity, VM_SET, create_objects};
use super::xva_intake::XvaIntake;
use crate::api_error::failure;
use crate::model::store::Db;
use crate::pool::Pool;
use crate::server::routes::Body;

/// Answer `PUT /import_metadata`.
pub(crate) fn import(pool: Arc<Pool>, parts: &Parts, body: Incoming) -> Response<Body> {
    let (args, task) = match super::begin_xva_upload(&pool, parts, "VM.import_metadata") {
        Ok(started) => started,
        Err(refusal) => return refusal.response(),
    };
    let reader = super::body_reader(body);
    let work = {
        let (pool, task) = (Arc::clone(&pool), task.clone());
        async move { run(&pool, &args, &task, reader).await }
    };
    super::take_over_upload(pool, &task, VM_SET, work)
}

async fn run<R>(pool: &Pool, args: &RequestArgs, task: &str, body: R) -> Result<Value, Failure>
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
{
    let identity = Identity {
        restore: args.flag("restore"),
        force: args.flag("force"),
    };
    let dry_run = args.flag("dry_run");
    let vdi_map: HashMap<String, String> = args
        .with_prefix("vdi:")
        .map(|(src, dst)| (src.to_owned(), dst.to_owned()))
        .collect();
    let mut intake = XvaIntake::open(body, identity.force).await?;
    intake.finish_metadata_only().await?;
    let ova = intake.ova_xml();
    let mut db = pool.db();
    let existing = find_vdis(&db, ova, &vdi_map, identity.force)?;
    if dry_run {
        super::restore_checks::precheck_restore(&db, ova, identity)?;
        return Ok(Value::Array(Vec::new()));
    }
    let mut created = Created::default();
    let outcome = create_objects(
        pool,
        &mut db,
        ova,
        DiskPlan::Existing(existing),
        task,
        identity,
        &mut created,
    );
    drop(db);
    match outcome {
        Ok((vms, _)) => Ok(Value::Array(vms.into_iter().map(Value::String).collect())),
        Err(err) => {
            if !identity.force {
                created.undo(pool);
            }
            Err(err)
        }
    }
}

/// Export id → local VDI for every VDI of the archive that is found (see the module docs).
fn find_vdis(
    db: &Db,
    ova: &OvaXml,
    vdi_map: &HashMap<String, String>,
    force: bool,
) -> Result<HashMap<String, String>, Failure> {
    let mut found = HashMap::new();
    for vdi in ova.objects_of(&OvaClass::Vdi) {
        let uuid = vdi.str_field("uuid").unwrap_or_default();
        let scsi_id = vdi
            .snapshot
            .get("sm_config")
            .and_then(|config| config.get("SCSIid"))
            .and_then(ova_xml::Value::as_str);
        let mapped = vdi_map
            .get(uuid)
            .or_else(|| scsi_id.and_then(|id| vdi_map.get(id)));
        if let Some(target) = mapped {
            found.insert(vdi.id.clone(), mapped_vdi(db, target)?);
            continue;
        }
        let sr_uuid = vdi
            .str_field("SR")
            .and_then(|sr| ova.object(sr))
            .and_then(|sr| sr.str_field("uuid"))
            .unwrap_or_default();
        let location = vdi.str_field("location").unwrap_or_default();
        let local = db.by_uuid("SR", sr_uuid).ok().and_then(|sr| {
            db.find("VDI", "location", &Value::String(location.to_owned()))
                .ok()?
                .into_iter()
                .find(|candidate| db.str_field("VDI", candidate, "SR").is_ok_and(|s| s == sr))
        });
        match local {
            Some(local) => {
                found.insert(vdi.id.clone(), local);
            }
            None if force => {
                tracing::warn!(sr_uuid, location, "VDI not found: skipped because of force");
            }
            None => return Err(failure(ErrorCode::VdiLocationMissing, [sr_uuid, location])),
        }
    }
    Ok(found)
}

/// The target of a `vdi:` mapping: a VDI uuid, else the VDI whose `sm_config["SCSIid"]` it is
/// (else the uuid lookup's `UUID_INVALID`).
fn mapped_vdi(db: &Db, target: &str) -> Result<String, Failure> {
    db.by_uuid("VDI", target).or_else(|missing| {
        let by_scsi_id =
            db.table("VDI")?
                .objects
                .iter()
                .find_map(|(reference, object)| match object.fields.get("sm_config") {
                    Some(Value::Struct(config))
                        if config.get("SCSIid") == Some(&Value::String(target.to_owned())) =>
                    {
                        Some(reference.clone())
                    }
                    _ => None,
                });
        by_scsi_id.ok_or(missing)
    })
}
