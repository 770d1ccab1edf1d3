//! Build the `ova.xml` of a VM export from the database, as xapi's `export.ml` does: objects in
//! export order (VM, its metrics, VBDs, VIFs, networks, VDIs, SRs), ids from a process-wide
//! `Ref:<n>` counter, every reference rewritten to an export id or `OpaqueRef:NULL`, operations
//! scrubbed, snapshot metadata dropped and, without `preserve_power_state`, the VM halted.

use std::collections::HashMap;

use std::sync::atomic::{AtomicU64, Ordering};

use xapi_backup::format::ova_xml::{self, OvaClass, OvaObject, OvaVersion, OvaXml};
use xapi_core::api::meta::Ty;
use xapi_core::wire::{Failure, Value};

use crate::model::defaults::NULL_REF;
use crate::model::store::Db;
use crate::rpc::session::master_host;
use crate::timestamp;

/// The `(xapi_major, xapi_minor)` this simulator exports as and imports up to (xapi 25.6).
pub(crate) const XAPI_VERSION: (i64, i64) = (25, 6);

/// xapi's process-global export id counter (`export.ml` `make_id`): never reset.
static NEXT_EXPORT_ID: AtomicU64 = AtomicU64::new(0);

/// One disk to stream after `ova.xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExportDisk {
    /// Its export id (`Ref:<n>`), the member prefix of its chunks.
    pub(crate) id: String,
    /// The VDI's uuid (the image file's name).
    pub(crate) uuid: String,
    /// `virtual_size`.
    pub(crate) size: u64,
}

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExportOptions {
    /// Keep the power state (and attached flags) instead of exporting a halted VM.
    pub(crate) preserve_power_state: bool,
    /// Leave the disks out (`/export_metadata`).
    pub(crate) metadata_only: bool,
    /// Leave the VBDs (and so the VDIs and SRs) out (`excluded_device_types=vbd`).
    pub(crate) exclude_vbds: bool,
    /// Leave the VIFs (and so the networks) out (`excluded_device_types=vif`).
    pub(crate) exclude_vifs: bool,
}

/// The `ova.xml` of `vm` and the disks whose chunks follow it.
pub(crate) fn build(
    db: &Db,
    vm: &str,
    options: ExportOptions,
) -> Result<(OvaXml, Vec<ExportDisk>), Failure> {
    db.object("VM", vm)?;
    let mut order: Vec<(&'static str, String)> = vec![("VM", vm.to_owned())];
    for field in ["metrics", "guest_metrics"] {
        let class = if field == "metrics" {
            "VM_metrics"
        } else {
            "VM_guest_metrics"
        };
        let reference = db.str_field("VM", vm, field)?;
        if db.exists(class, &reference) {
            order.push((class, reference));
        }
    }
    let mut vbds = db.refs_field("VM", vm, "VBDs")?;
    let mut vifs = db.refs_field("VM", vm, "VIFs")?;
    if options.exclude_vbds {
        vbds.clear();
    }
    if options.exclude_vifs {
        vifs.clear();
    }
    order.extend(vbds.iter().map(|r| ("VBD", r.clone())));
    order.extend(vifs.iter().map(|r| ("VIF", r.clone())));
    let mut networks = Vec::new();
    for vif in &vifs {
        let network = db.str_field("VIF", vif, "network")?;
        if db.exists("network", &network) && !networks.contains(&network) {
            networks.push(network);
        }
    }
    order.extend(networks.into_iter().map(|r| ("network", r)));
    let mut vdis = Vec::new();
    for vbd in &vbds {
        let vdi = db.str_field("VBD", vbd, "VDI")?;
        let is_cd = db.str_field("VBD", vbd, "type")? == "CD";
        if !is_cd && db.exists("VDI", &vdi) && !vdis.contains(&vdi) {
            vdis.push(vdi);
        }
    }
    let mut srs = Vec::new();
    for vdi in &vdis {
        let sr = db.str_field("VDI", vdi, "SR")?;
        if db.exists("SR", &sr) && !srs.contains(&sr) {
            srs.push(sr);
        }
    }
    order.extend(vdis.iter().map(|r| ("VDI", r.clone())));
    order.extend(srs.into_iter().map(|r| ("SR", r)));

    let vtpms = db.refs_field("VM", vm, "VTPMs").unwrap_or_default();
    let ids: HashMap<String, String> = order
        .iter()
        .map(|(_, r)| r)
        .chain(&vtpms)
        .map(|r| {
            (
                r.clone(),
                format!("Ref:{}", NEXT_EXPORT_ID.fetch_add(1, Ordering::Relaxed)),
            )
        })
        .collect();
    let mut objects = Vec::with_capacity(order.len());
    for (class, reference) in &order {
        let mut record = Vec::new();
        let object = db.object(class, reference)?;
        for field in db.table(class)?.meta.fields {
            let Some(value) = object.fields.get(field.name) else {
                continue;
            };
            let value = scrub(class, field.name, options).unwrap_or_else(|| value.clone());
            record.push((field.name.to_owned(), convert(&value, &field.ty, &ids)));
        }
        objects.push(OvaObject {
            class: OvaClass::from_name(class),
            id: ids[reference].clone(),
            snapshot: ova_xml::Value::Struct(record),
        });
    }
    objects.extend(vtpms.iter().map(|vtpm| vtpm_object(db, vtpm, &ids)));
    let disks = if options.metadata_only {
        Vec::new()
    } else {
        vdis.iter()
            .map(|vdi| {
                Ok(ExportDisk {
                    id: ids[vdi].clone(),
                    uuid: db.str_field("VDI", vdi, "uuid")?,
                    size: db.int_field("VDI", vdi, "virtual_size")?.max(0) as u64,
                })
            })
            .collect::<Result<Vec<_>, Failure>>()?
    };
    let master = master_host(db);
    let hostname = db
        .str_field("host", &master, "hostname")
        .unwrap_or_default();
    let version = OvaVersion {
        hostname,
        date: timestamp::now_text(),
        product_version: "8.3.0".to_owned(),
        product_brand: "XCP-ng".to_owned(),
        build_number: "xapi-sim".to_owned(),
        xapi_major: XAPI_VERSION.0,
        xapi_minor: XAPI_VERSION.1,
        export_vsn: ova_xml::EXPORT_VSN,
        extra: Vec::new(),
    };
    Ok((OvaXml { version, objects }, disks))
}

/// A vTPM as `export.ml` writes it: the hand-made `vtpm'` record of `importexport.ml`, whose
/// keys come from its OCaml field names, with the vTPM's secret contents.
fn vtpm_object(db: &Db, vtpm: &str, ids: &HashMap<String, String>) -> OvaObject {
    let lookup = |r: &str| ids.get(r).cloned().unwrap_or_else(|| NULL_REF.to_owned());
    let flag = |field: &str| matches!(db.field("VTPM", vtpm, field), Ok(Value::Bool(true)));
    let record = vec![
        (
            "vTPM'_VM".to_owned(),
            ova_xml::Value::String(lookup(
                &db.str_field("VTPM", vtpm, "VM").unwrap_or_default(),
            )),
        ),
        (
            "vTPM'_uuid".to_owned(),
            ova_xml::Value::String(db.str_field("VTPM", vtpm, "uuid").unwrap_or_default()),
        ),
        (
            "vTPM'_is_unique".to_owned(),
            ova_xml::Value::Bool(flag("is_unique")),
        ),
        (
            "vTPM'_is_protected".to_owned(),
            ova_xml::Value::Bool(flag("is_protected")),
        ),
        (
            "vTPM'_content".to_owned(),
            ova_xml::Value::String(crate::rpc::vtpm::contents(db, vtpm)),
        ),
    ];
    OvaObject {
        class: OvaClass::Vtpm,
        id: lookup(vtpm),
        snapshot: ova_xml::Value::Struct(record),
    }
}

/// The exported value of a field when export changes it, `None` to keep it.
fn scrub(class: &str, field: &str, options: ExportOptions) -> Option<Value> {
    let empty_set = || Value::Array(Vec::new());
    let null = || Value::String(NULL_REF.to_owned());
    match (class, field) {
        (_, "allowed_operations")
        | ("VM", "snapshots" | "children" | "consoles" | "crash_dumps") => Some(empty_set()),
        (_, "current_operations") | ("VM", "blobs") => {
            Some(Value::Struct(std::collections::BTreeMap::new()))
        }
        ("VM", "is_a_snapshot") => Some(Value::Bool(false)),
        ("VM", "snapshot_of" | "parent" | "protection_policy" | "snapshot_schedule") => {
            Some(null())
        }
        ("VM", "snapshot_time") => Some(timestamp::epoch()),
        ("VM", "power_state") if !options.preserve_power_state => {
            Some(Value::String("Halted".to_owned()))
        }
        ("VM", "suspend_VDI") if !options.preserve_power_state => Some(null()),
        ("VBD" | "VIF", "currently_attached") if !options.preserve_power_state => {
            Some(Value::Bool(false))
        }
        _ => None,
    }
}

/// A database value as an `ova.xml` value, with references rewritten by `ids`.
fn convert(value: &Value, ty: &Ty, ids: &HashMap<String, String>) -> ova_xml::Value {
    let lookup = |r: &str| ids.get(r).cloned().unwrap_or_else(|| NULL_REF.to_owned());
    match (ty, value) {
        (Ty::Ref(_), Value::String(r)) => ova_xml::Value::String(lookup(r)),
        (Ty::Set(inner) | Ty::Option(inner), Value::Array(items)) => {
            ova_xml::Value::Array(items.iter().map(|v| convert(v, inner, ids)).collect())
        }
        (Ty::Map(key_ty, value_ty), Value::Struct(map)) => ova_xml::Value::Struct(
            map.iter()
                .map(|(k, v)| {
                    let key = if matches!(key_ty, Ty::Ref(_)) {
                        lookup(k)
                    } else {
                        k.clone()
                    };
                    (key, convert(v, value_ty, ids))
                })
                .collect(),
        ),
        (Ty::Option(inner), value) => convert(value, inner, ids),
        (_, value) => plain(value),
    }
}

/// A value without references.
fn plain(value: &Value) -> ova_xml::Value {
    match value {
        Value::String(s) => ova_xml::Value::String(s.clone()),
        Value::Int(i) => ova_xml::Value::Int(*i),
        Value::Double(d) => ova_xml::Value::Double(*d),
        Value::Bool(b) => ova_xml::Value::Bool(*b),
        Value::DateTime(d) => ova_xml::Value::DateTime(timestamp::datetime_text(*d)),
        Value::Array(items) => ova_xml::Value::Array(items.iter().map(plain).collect()),
        Value::Struct(map) => {
            ova_xml::Value::Struct(map.iter().map(|(k, v)| (k.clone(), plain(v))).collect())
        }
        Value::Nil => ova_xml::Value::Nil,
        Value::Base64(bytes) => ova_xml::Value::Base64(bytes.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_rewritten_or_nulled() {
        static REF: Ty = Ty::Ref("VDI");
        let ids = HashMap::from([("OpaqueRef:a".to_owned(), "Ref:7".to_owned())]);
        let set = Value::Array(vec![
            Value::String("OpaqueRef:a".into()),
            Value::String("OpaqueRef:b".into()),
        ]);
        assert_eq!(
            convert(&set, &Ty::Set(&REF), &ids),
            ova_xml::Value::Array(vec![
                ova_xml::Value::String("Ref:7".into()),
                ova_xml::Value::String(NULL_REF.into())
            ])
        );
        assert_eq!(
            convert(&Value::Int(5), &Ty::Int, &ids),
            ova_xml::Value::Int(5)
        );
    }
}
