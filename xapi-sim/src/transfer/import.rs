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
//! Checksums are verified as xapi does (`xapi_backup`'s reader, judged in `xva_intake`): a mismatch fails the import with
//! `IMPORT_ERROR` unless `force=true`, which accepts the chunk. A failed import without `force`
//! destroys everything it created (VMs, VBDs, VIFs, VDIs and their images), as xapi's clean-up
//! stack does; with `force` nothing is cleaned up. A restore over a halted VM whose `version` is
//! not older than the imported one fails with `VM_TO_IMPORT_IS_NOT_NEWER_VERSION` unless
//! `force`.

use std::collections::{BTreeMap, HashMap};
use std::io::SeekFrom;
use std::sync::Arc;
use xapi_core::api::ErrorCode;

use super::xva_intake::XvaIntake;
use http::request::Parts;
use http::{Response, StatusCode};
use hyper::body::Incoming;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use xapi_backup::format::ova_xml::{self, OvaClass, OvaObject};
use xapi_core::api::meta::Ty;
use xapi_core::wire::{DateTime, Failure, Value};

use super::{RequestArgs, set_progress};
use crate::api_error::failure;
use crate::model::coerce::coerce;
use crate::model::defaults::NULL_REF;
use crate::model::store::Db;
use crate::pool::Pool;
use crate::rpc::recover::{MadeWay, make_way_for};
use crate::rpc::vm::new_mac;
use crate::server::routes::{Body, html_error};

/// The result type of an import task: the set of imported VMs.
pub(crate) static VM_SET: Ty = Ty::Set(&Ty::Ref("VM"));

/// Answer `PUT /import`.
pub(crate) fn import(pool: Arc<Pool>, parts: &Parts, body: Incoming) -> Response<Body> {
    let (args, task) = match super::begin_xva_upload(&pool, parts, "VM.import") {
        Ok(started) => started,
        Err(refusal) => return refusal.response(),
    };
    // as xapi, the SR is resolved before the answer: a missing one is a 500, an ISO library a
    // 400, and the task fails with the reason
    let sr = match target_sr(&pool, &args) {
        Ok(sr) => sr,
        Err((status, failure)) => {
            let page = format!("{} {:?}", failure.code.as_str(), failure.params);
            super::complete(&pool, &task, Err(failure), VM_SET);
            return html_error(status, &page);
        }
    };
    let reader = super::body_reader(body);
    let work = {
        let (pool, task) = (Arc::clone(&pool), task.clone());
        async move { run(&pool, &args, &sr, &task, reader).await }
    };
    super::take_over_upload(pool, &task, VM_SET, work)
}

/// What one imported disk became.
pub(crate) struct NewDisk {
    /// The VDI's uuid (its image file).
    pub(crate) uuid: String,
}

/// The objects an import has created so far, destroyed again when it fails without `force`
/// (xapi's clean-up stack).
#[derive(Debug, Default)]
pub(crate) struct Created {
    /// `(class, reference)` in creation order.
    objects: Vec<(&'static str, String)>,
    /// Disk images created (VDI uuids).
    images: Vec<String>,
}

impl Created {
    /// Record a new object.
    pub(crate) fn object(&mut self, class: &'static str, reference: &str) {
        self.objects.push((class, reference.to_owned()));
    }

    /// Record a new disk image.
    pub(crate) fn image(&mut self, uuid: &str) {
        self.images.push(uuid.to_owned());
    }

    /// Destroy everything recorded, newest first.
    pub(crate) fn undo(self, pool: &Pool) {
        let mut db = pool.db();
        for (class, reference) in self.objects.iter().rev() {
            if db.exists(class, reference)
                && let Err(err) = db.destroy(class, reference)
            {
                {
                    tracing::warn!(
                        class,
                        reference,
                        code = err.code.as_str(),
                        "import clean-up"
                    );
                }
            }
        }
        drop(db);
        for uuid in &self.images {
            if let Err(err) = pool.storage.destroy(uuid) {
                tracing::warn!(vdi = uuid, error = %err, "import clean-up of a disk image");
            }
        }
    }
}

async fn run<R>(
    pool: &Pool,
    args: &RequestArgs,
    sr: &str,
    task: &str,
    body: R,
) -> Result<Value, Failure>
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
{
    let restore = args.flag("restore");
    let force = args.flag("force");
    pool.assert_sr_has_space(&pool.db(), sr)?;
    let mut intake = XvaIntake::open(body, force).await?;
    let mut created = Created::default();
    let outcome = import_all(pool, &mut intake, sr, task, restore, force, &mut created).await;
    match outcome {
        Ok(vms) => {
            if !intake.mismatches().is_empty() {
                tracing::warn!(
                    task,
                    chunks = ?intake
                        .mismatches()
                        .iter()
                        .map(|m| m.member.as_str())
                        .collect::<Vec<_>>(),
                    "imported with checksum mismatches ignored because of force"
                );
            }
            Ok(Value::Array(vms.into_iter().map(Value::String).collect()))
        }
        Err(err) => {
            if force {
                tracing::warn!(
                    task,
                    code = err.code.as_str(),
                    "not cleaning up after import failure since force was given"
                );
            } else {
                created.undo(pool);
            }
            Err(err)
        }
    }
}

/// Create the objects, then stream the disks into their images; the new VMs.
async fn import_all(
    pool: &Pool,
    intake: &mut XvaIntake,
    sr: &str,
    task: &str,
    restore: bool,
    force: bool,
    created: &mut Created,
) -> Result<Vec<String>, Failure> {
    let disk_ids: Vec<String> = intake.disks().iter().map(|d| d.prefix.clone()).collect();
    let (vms, disks) = {
        let mut db = pool.db();
        create_objects(
            pool,
            &mut db,
            intake.ova_xml(),
            DiskPlan::Create {
                sr,
                disk_ids: &disk_ids,
            },
            task,
            Identity { restore, force },
            created,
        )?
    };
    let total: u64 = intake.disks().iter().map(|d| d.virtual_size).sum();
    let mut done = 0_u64;
    let mut files = Vec::with_capacity(disks.len());
    for disk in &disks {
        let split = pool.storage.prepare_write_async(&disk.uuid).await;
        let opened = match split {
            Ok(()) => {
                tokio::fs::OpenOptions::new()
                    .write(true)
                    .open(pool.storage.path(&disk.uuid))
                    .await
            }
            Err(err) => Err(err),
        };
        let file = opened.map_err(|e| {
            failure(
                ErrorCode::VdiIoError,
                [format!("opening {}: {e}", disk.uuid)],
            )
        })?;
        files.push(file);
    }
    while let Some(chunk) = intake.next_chunk().await? {
        let (Some(file), Some(disk)) = (files.get_mut(chunk.disk), disks.get(chunk.disk)) else {
            return Err(failure(
                ErrorCode::ImportError,
                [format!("chunk for unknown disk {}", chunk.disk)],
            ));
        };
        file.seek(SeekFrom::Start(chunk.offset))
            .await
            .and(file.write_all(&chunk.data).await)
            .map_err(|e| {
                failure(
                    ErrorCode::VdiIoError,
                    [format!("writing {}: {e}", disk.uuid)],
                )
            })?;
        pool.note_write(&disk.uuid, chunk.offset, chunk.data.len() as u64);
        done += chunk.data.len() as u64;
        if total > 0 {
            set_progress(pool, task, (done as f64 / total as f64).min(0.99));
        }
    }
    for file in &mut files {
        file.flush()
            .await
            .map_err(|e| failure(ErrorCode::VdiIoError, [e.to_string()]))?;
    }
    Ok(vms)
}

/// How the imported VMs take their identity: `restore` keeps UUIDs and MACs; `force` skips a
/// running VM with the same UUID instead of failing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Identity {
    /// `restore=true`.
    pub(crate) restore: bool,
    /// `force=true`.
    pub(crate) force: bool,
}

/// `sr_id`, `sr_uuid` or the pool's default SR, or the status and failure xapi answers:
/// 500 when there is none (`DEFAULT_SR_NOT_FOUND`, `HANDLE_INVALID`, `UUID_INVALID`), 400 for an
/// ISO library (`SR_OPERATION_NOT_SUPPORTED`).
fn target_sr(pool: &Pool, args: &RequestArgs) -> Result<String, (StatusCode, Failure)> {
    let db = pool.db();
    let missing = |f| (StatusCode::INTERNAL_SERVER_ERROR, f);
    let sr = if let Some(sr) = args.get("sr_id") {
        db.object("SR", sr).map_err(missing)?;
        sr.to_owned()
    } else if let Some(uuid) = args.get("sr_uuid") {
        db.by_uuid("SR", uuid).map_err(missing)?
    } else {
        let default = db
            .refs("pool")
            .map_err(missing)?
            .first()
            .and_then(|p| db.str_field("pool", p, "default_SR").ok())
            .filter(|sr| db.exists("SR", sr));
        default.ok_or_else(|| missing(failure(ErrorCode::DefaultSrNotFound, [NULL_REF])))?
    };
    if db
        .str_field("SR", &sr, "content_type")
        .is_ok_and(|t| t == "iso")
    {
        return Err((
            StatusCode::BAD_REQUEST,
            failure(ErrorCode::SrOperationNotSupported, [] as [&str; 0]),
        ));
    }
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
        ova_xml::Value::Base64(bytes) => Value::Base64(bytes.clone()),
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

/// Where the disks of an import come from.
pub(crate) enum DiskPlan<'a> {
    /// `/import`: new, empty VDIs on this SR for these export ids (filled from the stream).
    Create {
        /// Target SR.
        sr: &'a str,
        /// Export ids of the disks that follow, in stream order.
        disk_ids: &'a [String],
    },
    /// `/import_metadata`: export id → existing VDI; VBDs of other disks are skipped.
    Existing(HashMap<String, String>),
}

/// Create the VDIs, VMs, VBDs and VIFs of an import; the new VMs (snapshots left out unless
/// they are all there is) and the disks created, in stream order. Every object created is
/// recorded in `created`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn create_objects(
    pool: &Pool,
    db: &mut Db,
    ova: &ova_xml::OvaXml,
    plan: DiskPlan<'_>,
    task: &str,
    identity: Identity,
    created: &mut Created,
) -> Result<(Vec<String>, Vec<NewDisk>), Failure> {
    // every check before anything is made or replaced; first xapi's `assert_compatible`: a
    // file from a newer xapi than this one is refused
    let file = (ova.version.xapi_major, ova.version.xapi_minor);
    if file > super::ova::XAPI_VERSION {
        return Err(failure(
            ErrorCode::ImportIncompatibleVersion,
            std::iter::empty::<String>(),
        ));
    }
    super::restore_checks::precheck_restore(db, ova, identity)?;
    let Identity { restore, force } = identity;
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
    // disks: new VDIs on the target SR, created empty, or the existing ones
    let mut disks = Vec::new();
    let (sr, disk_ids) = match plan {
        DiskPlan::Create { sr, disk_ids } => (sr, disk_ids),
        DiskPlan::Existing(existing) => {
            ids.extend(existing);
            ("", &[][..])
        }
    };
    for id in disk_ids {
        let object = ova
            .object(id)
            .ok_or_else(|| failure(ErrorCode::ImportError, [format!("no VDI {id} in ova.xml")]))?;
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
        created.object("VDI", &vdi);
        let uuid = db.str_field("VDI", &vdi, "uuid")?;
        created.image(&uuid);
        pool.storage.create(&uuid, size).map_err(|e| {
            failure(
                ErrorCode::SrBackendFailure,
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
            if make_way_for(db, &imported_uuid, version, force)? == MadeWay::SkipRunning {
                continue;
            }
            if let Some(seed) = mac_seed(&fields) {
                let taken = db
                    .table("VM")?
                    .objects
                    .values()
                    .any(|o| mac_seed_of(o.fields.get("other_config")) == Some(seed.clone()));
                if taken {
                    return Err(failure(ErrorCode::DuplicateMacSeed, [seed.as_str()]));
                }
            }
            fields.insert("version".to_owned(), Value::Int(version + 1));
        } else {
            fields.remove("uuid");
            fields.insert("version".to_owned(), Value::Int(0));
            // a fresh MAC seed, as VM.create gives one: the new VM's MACs do not collide with
            // the source's
            let seed = Value::String(db.new_uuid());
            match fields.get_mut("other_config") {
                Some(Value::Struct(other)) => {
                    other.insert("mac_seed".to_owned(), seed);
                }
                _ => {
                    fields.insert(
                        "other_config".to_owned(),
                        Value::Struct(std::iter::once(("mac_seed".to_owned(), seed)).collect()),
                    );
                }
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
        if let Some(metrics) = crate::rpc::vm::ensure_metrics(db, &mut fields)? {
            created.object("VM_metrics", &metrics);
        }
        let vm = db.create("VM", fields)?;
        created.object("VM", &vm);
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
        let vdi = fields.get("VDI").cloned();
        let is_cd = fields.get("type") == Some(&Value::String("CD".to_owned()));
        if !is_cd && vdi.is_none_or(|vdi| vdi == Value::String(NULL_REF.to_owned())) {
            // a disk that was not found (skipped with force): its VBD goes too
            continue;
        }
        let vbd = db.create("VBD", fields)?;
        created.object("VBD", &vbd);
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
        let vif = db.create("VIF", fields)?;
        created.object("VIF", &vif);
    }
    for object in ova.objects_of(&OvaClass::Vtpm) {
        // the `vtpm'` record (`importexport.ml`): its VM, its flags and its secret contents
        let Some(vm) = object.str_field("vTPM'_VM").and_then(|id| ids.get(id)) else {
            continue;
        };
        let is_unique = object
            .snapshot
            .get("vTPM'_is_unique")
            .and_then(ova_xml::Value::as_bool)
            .unwrap_or(false);
        let contents = object.str_field("vTPM'_content").unwrap_or_default();
        let vtpm = crate::rpc::vtpm::create(db, vm, contents, is_unique)?;
        created.object("VTPM", &vtpm);
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
