//! The store in xapi's database form, and back: column names with namespaces joined by `__`,
//! values as their stored strings (SExpr for sets and maps), rows with `__ctime`/`__mtime` and
//! `_ref`. This is what `GET /pool/xmldbdump`, `--state` and the redo log are made of, written
//! and read by `xapi_dr::metadata`.

use std::collections::{BTreeMap, HashMap};

use xapi_core::api::meta::{ClassMeta, FieldMeta, Ty};
use xapi_core::wire::{DateTime, Value};
use xapi_dr::metadata::database::Manifest;
use xapi_dr::metadata::sexpr::{parse_map, parse_set, write_map, write_set};
use xapi_dr::metadata::{Database, Row};

use super::defaults::{NULL_REF, default_value};
use super::float_text::{ocaml_string_of_float, stored_float};
use super::store::{Db, Object};

/// Classes whose rows xapi never persists: their tables are written empty.
pub(crate) const NON_PERSISTENT: &[&str] = &[
    "session",
    "task",
    "VBD_metrics",
    "VIF_metrics",
    "message",
    "auth",
    "data_source",
    "sr_stat",
    "probe_result",
    "vdi_nbd_server_info",
    "diagnostics",
];

/// Field-name prefixes that are datamodel namespaces, per class (`ocaml/idl/datamodel*.ml`
/// `namespace ~name:...`). `name_` is a namespace in every class.
fn namespaces(class: &str) -> &'static [&'static str] {
    match class {
        "VM" => &["memory", "VCPUs", "actions", "PV", "HVM"],
        "host" => &["memory", "API_version"],
        "host_metrics" => &["memory"],
        "VM_metrics" => &["memory", "VCPUs"],
        "VIF" | "VBD" => &["qos"],
        "VBD_metrics" | "VIF_metrics" | "PIF_metrics" => &["io"],
        _ => &[],
    }
}

/// The database column of an API field (`name_label` → `name__label`,
/// `memory_static_max` → `memory__static_max` in `VM`).
pub(crate) fn column_name(class: &str, field: &str) -> String {
    if let Some(rest) = field
        .strip_prefix("name_")
        .filter(|rest| *rest == "label" || *rest == "description")
    {
        return format!("name__{rest}");
    }
    for namespace in namespaces(class) {
        if let Some(rest) = field
            .strip_prefix(namespace)
            .and_then(|r| r.strip_prefix('_'))
            .filter(|rest| !rest.is_empty())
        {
            return format!("{namespace}__{rest}");
        }
    }
    field.to_owned()
}

/// A value as its stored string.
pub(crate) fn stored_text(value: &Value, ty: &Ty) -> String {
    match (ty, value) {
        (Ty::Set(_) | Ty::Option(_), Value::Array(items)) => {
            let texts: Vec<String> = items.iter().map(scalar_text).collect();
            write_set(&texts)
        }
        (Ty::Option(_), Value::Nil) => write_set::<&str>(&[]),
        (Ty::Option(Ty::Ref(_)), Value::String(r)) => {
            if r == NULL_REF || r.is_empty() {
                write_set::<&str>(&[])
            } else {
                write_set(&[r.as_str()])
            }
        }
        (Ty::Map(_, _), Value::Struct(map)) => {
            let pairs: Vec<(String, String)> = map
                .iter()
                .map(|(k, v)| (k.clone(), scalar_text(v)))
                .collect();
            write_map(&pairs)
        }
        (_, value) => scalar_text(value),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Double(f) => stored_float(*f),
        Value::Bool(b) => b.to_string(),
        Value::DateTime(d) => d.to_string(),
        Value::Nil => String::new(),
        Value::Base64(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::Array(items) => write_set(&items.iter().map(scalar_text).collect::<Vec<_>>()),
        Value::Struct(map) => write_map(
            &map.iter()
                .map(|(k, v)| (k.clone(), scalar_text(v)))
                .collect::<Vec<_>>(),
        ),
    }
}

/// A stored string read back as a value of `ty` (`None` when it does not parse).
pub(crate) fn parse_stored(text: &str, ty: &Ty) -> Option<Value> {
    match ty {
        Ty::String | Ty::Enum(_) | Ty::Ref(_) => Some(Value::String(text.to_owned())),
        Ty::Int => text.parse().ok().map(Value::Int),
        Ty::Float => match text {
            "inf" => Some(Value::Double(f64::INFINITY)),
            "-inf" => Some(Value::Double(f64::NEG_INFINITY)),
            "nan" => Some(Value::Double(f64::NAN)),
            _ => text.parse().ok().map(Value::Double),
        },
        Ty::Bool => match text {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        Ty::DateTime => DateTime::parse(text).ok().map(Value::DateTime),
        Ty::Set(inner) => parse_set(text)
            .ok()?
            .iter()
            .map(|item| parse_stored(item, inner))
            .collect::<Option<Vec<_>>>()
            .map(Value::Array),
        Ty::Option(Ty::Ref(_)) => Some(Value::String(
            parse_set(text)
                .ok()?
                .into_iter()
                .next()
                .unwrap_or_else(|| NULL_REF.to_owned()),
        )),
        Ty::Map(_, value_ty) => {
            let mut map = BTreeMap::new();
            for (k, v) in parse_map(text).ok()? {
                map.insert(k, parse_stored(&v, value_ty)?);
            }
            Some(Value::Struct(map))
        }
        Ty::Option(inner) => parse_stored(text, inner),
        Ty::Record(_) | Ty::AnyRecord | Ty::EventBatch | Ty::Void => None,
    }
}

/// The whole store as a database (non-persistent tables empty).
pub(crate) fn to_database(db: &Db) -> Database {
    let mut out = Database::new(Manifest {
        generation: db.generation() as i64,
        ..Manifest::default()
    });
    for table in db.tables() {
        let class = table.meta.name;
        out.table_mut(class);
        if NON_PERSISTENT.contains(&class) {
            continue;
        }
        for (reference, object) in &table.objects {
            let row = to_row(table.meta, reference, object);
            out.insert_row(
                class,
                reference,
                object.created as i64,
                object.modified as i64,
                row.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
        }
    }
    out
}

/// The columns of one object (with `_ref`).
pub(crate) fn to_row(meta: &ClassMeta, reference: &str, object: &Object) -> Vec<(String, String)> {
    let mut columns: Vec<(String, String)> = meta
        .fields
        .iter()
        .filter_map(|f| {
            object.fields.get(f.name).map(|v| {
                let text = match v {
                    Value::Double(x) if object.defaulted_floats.contains(f.name) => {
                        ocaml_string_of_float(*x)
                    }
                    _ => stored_text(v, &f.ty),
                };
                (column_name(meta.name, f.name), text)
            })
        })
        .collect();
    columns.push(("_ref".to_owned(), reference.to_owned()));
    columns
}

/// The fields of a stored row, by API field name: known columns parsed with their type,
/// missing or unparsable ones left out (the store fills their defaults).
pub(crate) fn fields_of_row(meta: &ClassMeta, row: &Row) -> BTreeMap<String, Value> {
    let by_column: HashMap<String, &FieldMeta> = meta
        .fields
        .iter()
        .map(|f| (column_name(meta.name, f.name), f))
        .collect();
    row.columns()
        .filter_map(|(column, text)| {
            let field = by_column.get(column)?;
            let value = parse_stored(text, &field.ty).unwrap_or_else(|| default_value(field));
            Some((field.name.to_owned(), value))
        })
        .collect()
}

/// The float fields of a stored row written in the form of a datamodel default (OCaml
/// `string_of_float`, e.g. `1.`) rather than of a stored value (`%0.18g`, e.g. `1`): they keep
/// that form when written again.
pub(crate) fn default_float_fields(meta: &ClassMeta, row: &Row) -> Vec<&'static str> {
    meta.fields
        .iter()
        .filter(|f| matches!(f.ty, Ty::Float))
        .filter(|f| {
            row.get(&column_name(meta.name, f.name))
                .and_then(|text| Some((text, text.parse::<f64>().ok()?)))
                .is_some_and(|(text, value)| {
                    text == ocaml_string_of_float(value) && text != stored_float(value)
                })
        })
        .map(|f| f.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    static STRING: Ty = Ty::String;

    #[test]
    fn store_survives_a_trip_through_db_xml() {
        use crate::model::store::tests::TEST_CLASSES;
        let mut db = Db::new(TEST_CLASSES, "t");
        let vm = db
            .create(
                "VM",
                BTreeMap::from([
                    ("name_label".to_owned(), Value::String("web 01".into())),
                    ("memory_static_max".to_owned(), Value::Int(4 << 30)),
                ]),
            )
            .unwrap();
        let vbd = db
            .create(
                "VBD",
                BTreeMap::from([("VM".to_owned(), Value::String(vm.clone()))]),
            )
            .unwrap();
        db.set_field(
            "VM",
            &vm,
            "other_config",
            Value::Struct(BTreeMap::from([(
                "k".to_owned(),
                Value::String("v w".into()),
            )])),
        )
        .unwrap();
        let xml = xapi_dr::metadata::db_xml_bytes(&to_database(&db));
        let text = String::from_utf8_lossy(&xml);
        assert!(text.contains("name__label=\"web%.01\""), "{text}");
        let saved = xapi_dr::metadata::read_db_xml(&xml[..]).unwrap();
        let loaded = Db::from_database(TEST_CLASSES, "t", &saved);
        assert_eq!(loaded.generation(), db.generation());
        assert_eq!(
            loaded.record("VM", &vm).unwrap(),
            db.record("VM", &vm).unwrap()
        );
        assert_eq!(
            loaded.record("VBD", &vbd).unwrap(),
            db.record("VBD", &vbd).unwrap()
        );
        assert_eq!(
            loaded.object("VM", &vm).unwrap().modified,
            db.object("VM", &vm).unwrap().modified
        );
    }

    #[test]
    fn floats_are_written_as_printf_g18_and_defaults_as_string_of_float() {
        let mut db = Db::new(xapi_core::api::meta::CLASSES, "t");
        let fresh = db.create("VM", BTreeMap::new()).unwrap();
        let set = db.create("VM", BTreeMap::new()).unwrap();
        db.set_field("VM", &set, "HVM_shadow_multiplier", Value::Double(1.0))
            .unwrap();
        let explicit = db
            .create(
                "VM",
                BTreeMap::from([("HVM_shadow_multiplier".to_owned(), Value::Double(0.1))]),
            )
            .unwrap();
        let column = |db: &Db, vm: &str| {
            let meta = db.table("VM").unwrap().meta;
            to_row(meta, vm, db.object("VM", vm).unwrap())
                .into_iter()
                .find(|(c, _)| c == "HVM__shadow_multiplier")
                .map(|(_, text)| text)
                .unwrap()
        };
        assert_eq!(column(&db, &fresh), "1.");
        assert_eq!(column(&db, &set), "1");
        assert_eq!(column(&db, &explicit), "0.100000000000000006");
        // the forms survive a save and a reload
        let xml = xapi_dr::metadata::db_xml_bytes(&to_database(&db));
        let saved = xapi_dr::metadata::read_db_xml(&xml[..]).unwrap();
        let loaded = Db::from_database(xapi_core::api::meta::CLASSES, "t", &saved);
        assert_eq!(column(&loaded, &fresh), "1.");
        assert_eq!(column(&loaded, &set), "1");
        assert_eq!(column(&loaded, &explicit), "0.100000000000000006");
    }

    #[test]
    fn namespaced_fields_get_double_underscores() {
        assert_eq!(column_name("VM", "name_label"), "name__label");
        assert_eq!(column_name("VM", "memory_static_max"), "memory__static_max");
        assert_eq!(column_name("VM", "HVM_boot_params"), "HVM__boot_params");
        assert_eq!(column_name("VM", "power_state"), "power_state");
        assert_eq!(
            column_name("host", "API_version_major"),
            "API_version__major"
        );
        assert_eq!(column_name("SR", "physical_size"), "physical_size");
        assert_eq!(column_name("VM_metrics", "VCPUs_number"), "VCPUs__number");
    }

    #[test]
    fn values_round_trip_through_their_stored_form() {
        let map = Value::Struct(BTreeMap::from([(
            "order".to_owned(),
            Value::String("cd n".to_owned()),
        )]));
        let ty = Ty::Map(&STRING, &STRING);
        let text = stored_text(&map, &ty);
        assert_eq!(text, "(('order' 'cd n'))");
        assert_eq!(parse_stored(&text, &ty), Some(map));
        let set = Value::Array(vec![Value::String("a'b".into())]);
        assert_eq!(
            parse_stored(&stored_text(&set, &Ty::Set(&STRING)), &Ty::Set(&STRING)),
            Some(set)
        );
        assert_eq!(stored_text(&Value::Double(1.0), &Ty::Float), "1");
        assert_eq!(
            stored_text(&Value::Double(0.1), &Ty::Float),
            "0.100000000000000006"
        );
        assert_eq!(parse_stored("1.", &Ty::Float), Some(Value::Double(1.0)));
        assert_eq!(
            parse_stored("19700101T00:00:00Z", &Ty::DateTime),
            Some(Value::DateTime(DateTime::default()))
        );
    }
}
