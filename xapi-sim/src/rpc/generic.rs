//! The calls every class has, answered from the store: `get_all`, `get_all_records`,
//! `get_record`, `get_by_uuid`, `get_by_name_label`, `get_<field>`, `set_<field>`,
//! `add_to_<field>`, `remove_from_<field>` (maps), `add_<field>`, `remove_<field>` (sets), and
//! the implicit `create` / `destroy`.
//!
//! Which of them exist for a class is the datamodel's business: the dispatcher only gets here
//! for a message the class declares (so there is no `set_` for a read-only field). A declared
//! message that merely looks like an accessor (`host.get_servertime`) is not answered here.

use std::collections::BTreeMap;
use xapi_core::api::ErrorCode;

use xapi_core::wire::{Failure, Value};

use super::Call;
use super::args;
use crate::api_error::{failure, field_type_error};
use crate::model::store::{Db, is_map, record_of};

/// Answer `call` generically, or `None` when its name is not one of the generic shapes.
pub(crate) fn handle(db: &mut Db, call: &Call) -> Option<Result<Value, Failure>> {
    let class = call.class.name;
    let name = call.message.name;
    let a = &call.args;
    Some(match name {
        "get_all" => db.refs(class).map(args::text_set),
        "get_all_records" => all_records(db, class),
        "get_record" => args::string(a, 0).and_then(|r| db.record(class, &r)),
        "get_by_uuid" => args::string(a, 0).and_then(|u| db.by_uuid(class, &u).map(Value::String)),
        "get_by_name_label" => args::string(a, 0).and_then(|label| {
            db.find(class, "name_label", &Value::String(label))
                .map(args::text_set)
        }),
        "create" if call.message.implicit => create(db, class, a),
        "destroy" if call.message.implicit => {
            args::string(a, 0).and_then(|r| db.destroy(class, &r).map(|()| Value::Nil))
        }
        _ => {
            let is_field = |field: &str| call.class.field(field).is_some();
            if let Some(field) = name.strip_prefix("add_to_").filter(|f| is_field(f)) {
                add_to(db, class, field, a)
            } else if let Some(field) = name.strip_prefix("remove_from_").filter(|f| is_field(f)) {
                remove_from(db, class, field, a)
            } else if let Some(field) = name
                .strip_prefix("add_")
                .filter(|f| call.message.implicit && is_field(f))
            {
                // a set's implicit adder is `add_<field>` (`VM.add_tags`), a map's `add_to_<field>`
                add_to(db, class, field, a)
            } else if let Some(field) = name
                .strip_prefix("remove_")
                .filter(|f| call.message.implicit && is_field(f))
            {
                remove_from(db, class, field, a)
            } else if let Some(field) = name.strip_prefix("get_").filter(|f| is_field(f)) {
                args::string(a, 0).and_then(|r| db.field(class, &r, field).cloned())
            } else if let Some(field) = name.strip_prefix("set_").filter(|f| is_field(f)) {
                let value = a.get(1).cloned().unwrap_or(Value::Nil);
                args::string(a, 0)
                    .and_then(|r| db.set_field(class, &r, field, value).map(|()| Value::Nil))
            } else {
                return None;
            }
        }
    })
}

/// `get_all_records`: a map from reference to record.
fn all_records(db: &Db, class: &str) -> Result<Value, Failure> {
    let table = db.table(class)?;
    Ok(Value::Struct(
        table
            .objects
            .iter()
            .map(|(r, o)| (r.clone(), record_of(o)))
            .collect(),
    ))
}

/// The implicit constructor: the record argument, coerced already, becomes a new object.
fn create(db: &mut Db, class: &str, a: &[Value]) -> Result<Value, Failure> {
    let Some(Value::Struct(record)) = a.first() else {
        return Err(field_type_error("args"));
    };
    let mut record = record.clone();
    if class == "VM" {
        super::vm::ensure_metrics(db, &mut record)?;
    }
    db.create(class, record).map(Value::String)
}

/// `add_to_<field>`: a key/value into a map (`MAP_DUPLICATE_KEY` when present) or an item
/// into a set (no change when present).
fn add_to(db: &mut Db, class: &str, field: &str, a: &[Value]) -> Result<Value, Failure> {
    let reference = args::string(a, 0)?;
    let field_meta = db.field_meta(class, field)?;
    let mut current = db.field(class, &reference, field)?.clone();
    match &mut current {
        Value::Struct(map) if is_map(&field_meta.ty) => {
            let key = args::string(a, 1)?;
            if map.contains_key(&key) {
                let uuid = db.str_field(class, &reference, "uuid")?;
                return Err(failure(
                    ErrorCode::MapDuplicateKey,
                    [class, field, &uuid, &key],
                ));
            }
            map.insert(key, a.get(2).cloned().unwrap_or(Value::Nil));
        }
        Value::Array(items) => {
            let item = a.get(1).cloned().unwrap_or(Value::Nil);
            if !items.contains(&item) {
                items.push(item);
            }
        }
        _ => return Err(field_type_error(field)),
    }
    db.set_field(class, &reference, field, current)
        .map(|()| Value::Nil)
}

/// `remove_from_<field>`: a key from a map or an item from a set; absent ones are ignored.
fn remove_from(db: &mut Db, class: &str, field: &str, a: &[Value]) -> Result<Value, Failure> {
    let reference = args::string(a, 0)?;
    let mut current = db.field(class, &reference, field)?.clone();
    match &mut current {
        Value::Struct(map) => {
            map.remove(&args::string(a, 1)?);
        }
        Value::Array(items) => {
            let item = a.get(1).cloned().unwrap_or(Value::Nil);
            items.retain(|v| *v != item);
        }
        _ => return Err(field_type_error(field)),
    }
    db.set_field(class, &reference, field, current)
        .map(|()| Value::Nil)
}

/// Build a struct value from pairs (for handlers that assemble records).
pub(crate) fn fields<I: IntoIterator<Item = (&'static str, Value)>>(
    pairs: I,
) -> BTreeMap<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}
