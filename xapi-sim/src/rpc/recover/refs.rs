//! References of a recovered object, from the foreign database into the target's: objects
//! recovered in the same call map to their new references, other objects map to the target's
//! object of the same class and UUID, and anything else becomes the null reference (dropped
//! from sets and maps), so that no reference of the target points into the foreign database.
//! Networks are matched as xapi's import matches them (`Import.Net`).

use std::collections::{BTreeMap, HashMap};

use xapi_core::api::meta::Ty;
use xapi_core::wire::{Failure, Value};

use crate::model::defaults::NULL_REF;
use crate::model::store::Db;

/// Foreign reference → target reference, for the objects a recovery has made or found.
pub(super) type Mapped = HashMap<String, String>;

/// Whether a reference is the null one.
fn is_null(reference: &str) -> bool {
    reference.is_empty() || reference == NULL_REF
}

/// The target reference for the foreign `reference` of `class` (the null reference when there
/// is none).
pub(super) fn map_ref(
    source: &Db,
    target: &Db,
    class: &str,
    reference: &str,
    mapped: &Mapped,
) -> String {
    if is_null(reference) {
        return NULL_REF.to_owned();
    }
    if let Some(local) = mapped.get(reference) {
        return local.clone();
    }
    source
        .str_field(class, reference, "uuid")
        .ok()
        .and_then(|uuid| target.by_uuid(class, &uuid).ok())
        .unwrap_or_else(|| NULL_REF.to_owned())
}

/// Translate every reference inside `value` (of type `ty`).
fn translate(source: &Db, target: &Db, ty: &Ty, value: &mut Value, mapped: &Mapped) {
    match (ty, value) {
        (Ty::Ref(class), Value::String(reference)) => {
            *reference = map_ref(source, target, class, reference, mapped);
        }
        (Ty::Set(inner) | Ty::Option(inner), Value::Array(items)) => {
            for item in items.iter_mut() {
                translate(source, target, inner, item, mapped);
            }
            if matches!(inner, Ty::Ref(_)) {
                items.retain(|item| !matches!(item, Value::String(r) if is_null(r)));
            }
        }
        (Ty::Map(key_ty, value_ty), Value::Struct(members)) => {
            let taken = std::mem::take(members);
            for (mut key, mut item) in taken {
                if let Ty::Ref(class) = key_ty {
                    key = map_ref(source, target, class, &key, mapped);
                    if is_null(&key) {
                        continue;
                    }
                }
                translate(source, target, value_ty, &mut item, mapped);
                if matches!(value_ty, Ty::Ref(_)) && matches!(&item, Value::String(r) if is_null(r))
                {
                    continue;
                }
                members.insert(key, item);
            }
        }
        _ => {}
    }
}

/// The fields of the foreign object `reference` of `class`, every reference translated.
pub(super) fn translated_fields(
    source: &Db,
    target: &Db,
    class: &str,
    reference: &str,
    mapped: &Mapped,
) -> Result<BTreeMap<String, Value>, Failure> {
    let meta = target.table(class)?.meta;
    let object = source.object(class, reference)?;
    let mut fields = BTreeMap::new();
    for field in meta.fields {
        let Some(value) = object.fields.get(field.name) else {
            continue;
        };
        let mut value = value.clone();
        translate(source, target, &field.ty, &mut value, mapped);
        fields.insert(field.name.to_owned(), value);
    }
    Ok(fields)
}

/// How a foreign network is matched in the target, as xapi's import does: the first network
/// with the same `name_label`, else the first with the same `bridge`, else none (one is made).
pub(super) fn matching_network(source: &Db, target: &Db, network: &str) -> Option<String> {
    let name = source.str_field("network", network, "name_label").ok()?;
    if let Some(found) = target
        .find("network", "name_label", &Value::String(name))
        .ok()?
        .into_iter()
        .next()
    {
        return Some(found);
    }
    let bridge = source.str_field("network", network, "bridge").ok()?;
    target
        .find("network", "bridge", &Value::String(bridge))
        .ok()?
        .into_iter()
        .next()
}
