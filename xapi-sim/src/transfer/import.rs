//! `PUT /import`: an XVA (plain, gzip or zstd) becomes VMs, VBDs, VIFs and new VDIs on the
//! target SR (`sr_id`, `sr_uuid`, else `pool.default_SR`, else `DEFAULT_SR_NOT_FOUND`), the disk
//! chunks verified by `xapi_backup`'s reader on the way in.
//!
//! Without `restore=true` the VMs get new UUIDs, new MACs and `version` 0; with it they keep
//! their UUIDs and MACs, `version` becomes the imported one + 1, a halted VM with the same UUID
//! is replaced (a running one is skipped with `force=true`, else the import fails with
//! `VM_BAD_POWER_STATE`), and a `mac_seed` used by another VM fails with `DUPLICATE_MAC_SEED`.
//! The task's result is the set of imported VMs; `other_config["object_creation"]` becomes
//! `complete` once the objects exist, and each VM gets `other_config["import_task"]`.
//! Checksums are always verified (`force` does not relax that here).

use std::collections::{BTreeMap, HashMap};
use std::io::SeekFrom;
use std::sync::Arc;

use futures::TryStreamExt as _;
use http::header::TRANSFER_ENCODING;
use http::request::Parts;
use http::{Response, StatusCode};
use http_body_util::BodyDataStream;
use hyper::body::Incoming;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::StreamReader;
use xapi_backup::format::ova_xml::{self, OvaClass, OvaObject};
use xapi_backup::format::xva::{ReadOptions, XvaReader};
use xapi_core::api::meta::Ty;
use xapi_core::wire::{DateTime, Failure, Value};

use super::export::with_task;
use super::{RequestArgs, complete, set_progress};
use crate::api_error::{failure, vm_bad_power_state};
use crate::model::coerce::coerce;
use crate::model::defaults::NULL_REF;
use crate::model::store::Db;
use crate::pool::Pool;
use crate::rpc::vm::new_mac;
use crate::server::routes::{Body, full, html_error};

static VM_SET: Ty = Ty::Set(&Ty::Ref("VM"));

/// Answer `PUT /import`.
pub(crate) async fn import(pool: Arc<Pool>, parts: &Parts, body: Incoming) -> Response<Body> {
    let is_chunked_encoding = parts
        .headers
        .get(TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if is_chunked_encoding {
        return html_error(StatusCode::FORBIDDEN, "IMPORT_ERROR_CANNOT_HANDLE_CHUNKED");
    }
    let args = RequestArgs::of(parts);
    let transfer = match super::begin(&pool, &args, "VM.import") {
        Ok(transfer) => transfer,
        Err(refusal) => return refusal.response(),
    };
    let task = transfer.task;
    let reader = StreamReader::new(BodyDataStream::new(body).map_err(std::io::Error::other));
    let outcome = run(&pool, &args, &task, reader).await;
    let failed = outcome
        .as_ref()
        .err()
        .map(|f| format!("{} {:?}", f.code.as_str(), f.params));
    complete(&pool, &task, outcome, VM_SET);
    // as xapi, the status is 200 either way: the outcome is on the task
    with_task(Response::new(full(failed.unwrap_or_default())), &task)
}

/// What one imported disk became.
struct NewDisk {
    uuid: String,
}

async fn run<R>(pool: &Pool, args: &RequestArgs, task: &str, body: R) -> Result<Value, Failure>
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
{
    let restore = args.flag("restore");
    let force = args.flag("force");
    let sr = target_sr(pool, args)?;
    let mut reader = XvaReader::open(body, ReadOptions::default())
        .await
        .map_err(|e| failure("IMPORT_ERROR", [e.to_string()]))?;
    let (vms, disks) = {
        let mut db = pool.db();
        create_objects(
            pool,
            &mut db,
            reader.ova_xml(),
            &reader_disk_ids(&reader),
            &sr,
            task,
            restore,
            force,
        )?
    };
    let total: u64 = reader.disks().iter().map(|d| d.virtual_size).sum();
    let mut done = 0_u64;
    let mut files = Vec::with_capacity(disks.len());
    for disk in &disks {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(pool.storage.path(&disk.uuid))
            .await
            .map_err(|e| failure("VDI_IO_ERROR", [format!("opening {}: {e}", disk.uuid)]))?;
        files.push(file);
    }
    while let Some(chunk) = reader
        .next_chunk()
        .await
        .map_err(|e| failure("IMPORT_ERROR", [e.to_string()]))?
    {
        let (Some(file), Some(disk)) = (files.get_mut(chunk.disk), disks.get(chunk.disk)) else {
            return Err(failure(
                "IMPORT_ERROR",
                [format!("chunk for unknown disk {}", chunk.disk)],
            ));
        };
        file.seek(SeekFrom::Start(chunk.offset))
            .await
            .and(file.write_all(&chunk.data).await)
            .map_err(|e| failure("VDI_IO_ERROR", [format!("writing {}: {e}", disk.uuid)]))?;
        pool.note_write(&disk.uuid, chunk.offset, chunk.data.len() as u64);
        done += chunk.data.len() as u64;
        if total > 0 {
            set_progress(pool, task, (done as f64 / total as f64).min(0.99));
        }
    }
    for file in &mut files {
        file.flush()
            .await
            .map_err(|e| failure("VDI_IO_ERROR", [e.to_string()]))?;
    }
    Ok(Value::Array(vms.into_iter().map(Value::String).collect()))
}

fn reader_disk_ids(reader: &XvaReader) -> Vec<String> {
    reader.disks().iter().map(|d| d.prefix.clone()).collect()
}

/// `sr_id`, `sr_uuid` or the pool's default SR.
fn target_sr(pool: &Pool, args: &RequestArgs) -> Result<String, Failure> {
    let db = pool.db();
    let sr = if let Some(sr) = args.get("sr_id") {
        db.object("SR", sr)?;
        sr.to_owned()
    } else if let Some(uuid) = args.get("sr_uuid") {
        db.by_uuid("SR", uuid)?
    } else {
        let default = db
            .refs("pool")?
            .first()
            .and_then(|p| db.str_field("pool", p, "default_SR").ok())
            .filter(|sr| db.exists("SR", sr));
        default.ok_or_else(|| failure("DEFAULT_SR_NOT_FOUND", [NULL_REF]))?
    };
    pool.assert_sr_has_space(&db, &sr)?;
    Ok(sr)
}

/// An `ova.xml` value as a database value of type `ty` (`None` when it does not fit).
fn from_ova(value: &ova_xml::Value, ty: &Ty) -> Option<Value> {
    let plain = match value {
        ova_xml::Value::String(s) => Value::String(s.clone()),
        ova_xml::Value::Int(i) => Value::Int(*i),
        ova_xml::Value::Int32(i) => Value::Int(i64::from(*i)),
        ova_xml::Value::Bool(b) => Value::Bool(*b),
        ova_xml::Value::Double(d) => Value::Double(*d),
        ova_xml::Value::DateTime(text) => Value::DateTime(DateTime::parse(text).ok()?),
        ova_xml::Value::Base64(text) => Value::String(text.clone()),
        ova_xml::Value::Nil => Value::Nil,
        ova_xml::Value::Array(items) => {
            let inner = match ty {
                Ty::Set(inner) => inner,
                _ => &Ty::String,
            };
            Value::Array(
                items
                    .iter()
                    .map(|v| from_ova(v, inner))
                    .collect::<Option<_>>()?,
            )
        }
        ova_xml::Value::Struct(members) => {
            let value_ty = match ty {
                Ty::Map(_, value_ty) => value_ty,
                _ => &Ty::String,
            };
            Value::Struct(
                members
                    .iter()
                    .map(|(k, v)| Some((k.clone(), from_ova(v, value_ty)?)))
                    .collect::<Option<BTreeMap<_, _>>>()?,
            )
        }
    };
    coerce(plain, ty)
}

/// The fields of an exported object for `class`, with references translated by `ids`
/// (export id → new reference; unknown ones become the null reference).
fn fields_of(
    db: &Db,
    class: &str,
    object: &OvaObject,
    ids: &HashMap<String, String>,
) -> Result<BTreeMap<String, Value>, Failure> {
    let meta = db.table(class)?.meta;
    let mut fields = BTreeMap::new();
    for field in meta.fields {
        let Some(value) = object.snapshot.get(field.name) else {
            continue;
        };
        let Some(mut value) = from_ova(value, &field.ty) else {
            continue;
        };
        translate_refs(&mut value, &field.ty, ids);
        fields.insert(field.name.to_owned(), value);
    }
    Ok(fields)
}

fn translate_refs(value: &mut Value, ty: &Ty, ids: &HashMap<String, String>) {
    match (ty, value) {
        (Ty::Ref(_), Value::String(r)) => {
            *r = ids
                .get(r.as_str())
                .cloned()
                .unwrap_or_else(|| NULL_REF.to_owned());
        }
        (Ty::Set(inner) | Ty::Option(inner), Value::Array(items)) => {
            for item in items {
                translate_refs(item, inner, ids);
            }
        }
        _ => {}
    }
}

/// Create the VDIs, VMs, VBDs and VIFs of an import; the new VMs (snapshots left out unless
/// they are all there is) and the disks in stream order.
#[allow(clippy::too_many_arguments)]
fn create_objects(
    pool: &Pool,
    db: &mut Db,
    ova: &ova_xml::OvaXml,
    disk_ids: &[String],
    sr: &str,
    task: &str,
    restore: bool,
    force: bool,
) -> Result<(Vec<String>, Vec<NewDisk>), Failure> {
    let mut ids: HashMap<String, String> = HashMap::new();
    // networks: same uuid if this pool has it, else the first network
    let fallback_network = db
        .refs("network")?
        .into_iter()
        .next()
        .unwrap_or_else(|| NULL_REF.to_owned());
    for network in ova.objects_of(&OvaClass::Network) {
        let local = network
            .str_field("uuid")
            .and_then(|uuid| db.by_uuid("network", uuid).ok())
            .unwrap_or_else(|| fallback_network.clone());
        ids.insert(network.id.clone(), local);
    }
    // disks: new VDIs on the target SR, created empty
    let mut disks = Vec::new();
    for id in disk_ids {
        let object = ova
            .object(id)
            .ok_or_else(|| failure("IMPORT_ERROR", [format!("no VDI {id} in ova.xml")]))?;
        let mut fields = fields_of(db, "VDI", object, &ids)?;
        fields.remove("uuid");
        fields.insert("SR".to_owned(), Value::String(sr.to_owned()));
        for cleared in ["snapshot_of", "metadata_of_pool"] {
            fields.insert(cleared.to_owned(), Value::String(NULL_REF.to_owned()));
        }
        let size = match fields.get("virtual_size") {
            Some(Value::Int(size)) if *size >= 0 => *size as u64,
            _ => 0,
        };
        let vdi = db.create("VDI", fields)?;
        let uuid = db.str_field("VDI", &vdi, "uuid")?;
        pool.storage.create(&uuid, size).map_err(|e| {
            failure(
                "SR_BACKEND_FAILURE",
                ["", "", &format!("creating {uuid}: {e}")],
            )
        })?;
        db.set_field("VDI", &vdi, "location", Value::String(uuid.clone()))?;
        ids.insert(id.clone(), vdi);
        disks.push(NewDisk { uuid });
    }
    // VMs
    let mut vms = Vec::new();
    let mut snapshots = Vec::new();
    for object in ova.objects_of(&OvaClass::Vm) {
        let mut fields = fields_of(db, "VM", object, &ids)?;
        let imported_uuid = object.str_field("uuid").unwrap_or_default().to_owned();
        let version = match fields.get("version") {
            Some(Value::Int(v)) => *v,
            _ => 0,
        };
        if restore {
            if let Ok(existing) = db.by_uuid("VM", &imported_uuid) {
                let state = db.str_field("VM", &existing, "power_state")?;
                if state != "Halted" {
                    if force {
                        continue;
                    }
                    return Err(vm_bad_power_state(&existing, "halted", &state));
                }
                for vbd in db.refs_field("VM", &existing, "VBDs")? {
                    db.destroy("VBD", &vbd)?;
                }
                for vif in db.refs_field("VM", &existing, "VIFs")? {
                    db.destroy("VIF", &vif)?;
                }
                db.destroy("VM", &existing)?;
            }
            if let Some(seed) = mac_seed(&fields) {
                let taken = db
                    .table("VM")?
                    .objects
                    .values()
                    .any(|o| mac_seed_of(o.fields.get("other_config")) == Some(seed.clone()));
                if taken {
                    return Err(failure("DUPLICATE_MAC_SEED", [seed.as_str()]));
                }
            }
            fields.insert("version".to_owned(), Value::Int(version + 1));
        } else {
            fields.remove("uuid");
            fields.insert("version".to_owned(), Value::Int(0));
            if let Some(Value::Struct(other)) = fields.get_mut("other_config") {
                other.remove("mac_seed");
            }
        }
        for (field, value) in [
            ("power_state", Value::String("Halted".to_owned())),
            ("resident_on", Value::String(NULL_REF.to_owned())),
            ("domid", Value::Int(-1)),
            ("snapshot_of", Value::String(NULL_REF.to_owned())),
            ("appliance", Value::String(NULL_REF.to_owned())),
        ] {
            fields.insert(field.to_owned(), value);
        }
        if let Some(Value::Struct(other)) = fields.get_mut("other_config") {
            other.insert("import_task".to_owned(), Value::String(task.to_owned()));
        }
        let vm = db.create("VM", fields)?;
        ids.insert(object.id.clone(), vm.clone());
        if matches!(
            object
                .snapshot
                .get("is_a_snapshot")
                .and_then(ova_xml::Value::as_bool),
            Some(true)
        ) {
            snapshots.push(vm);
        } else {
            vms.push(vm);
        }
    }
    for object in ova.objects_of(&OvaClass::Vbd) {
        let mut fields = fields_of(db, "VBD", object, &ids)?;
        fields.remove("uuid");
        fields.insert("currently_attached".to_owned(), Value::Bool(false));
        if fields
            .get("VM")
            .is_none_or(|vm| *vm == Value::String(NULL_REF.to_owned()))
        {
            continue;
        }
        db.create("VBD", fields)?;
    }
    for object in ova.objects_of(&OvaClass::Vif) {
        let mut fields = fields_of(db, "VIF", object, &ids)?;
        fields.remove("uuid");
        fields.insert("currently_attached".to_owned(), Value::Bool(false));
        if fields
            .get("VM")
            .is_none_or(|vm| *vm == Value::String(NULL_REF.to_owned()))
        {
            continue;
        }
        if !restore {
            fields.insert("MAC".to_owned(), Value::String(new_mac(db)));
            fields.insert("MAC_autogenerated".to_owned(), Value::Bool(true));
        }
        db.create("VIF", fields)?;
    }
    if let Ok(Value::Struct(mut other)) = db.field("task", task, "other_config").cloned() {
        other.insert(
            "object_creation".to_owned(),
            Value::String("complete".to_owned()),
        );
        db.set_field("task", task, "other_config", Value::Struct(other))?;
    }
    Ok((if vms.is_empty() { snapshots } else { vms }, disks))
}

/// `other_config["mac_seed"]` of a record being imported.
fn mac_seed(fields: &BTreeMap<String, Value>) -> Option<String> {
    mac_seed_of(fields.get("other_config"))
}

fn mac_seed_of(other_config: Option<&Value>) -> Option<String> {
    match other_config {
        Some(Value::Struct(map)) => match map.get("mac_seed") {
            Some(Value::String(seed)) => Some(seed.clone()),
            _ => None,
        },
        _ => None,
    }
}
