//! Bring a value received on the wire to the datamodel type it must have.
//!
//! XML-RPC sends ints and strings alike as untyped text and Python callers pass large ints as
//! strings, so a parameter is checked and converted against its declared [`Ty`] before it is
//! stored, as xapi's unmarshaller does.

use std::collections::BTreeMap;

use xapi_core::api::meta::{self, ClassMeta, Ty};
use xapi_core::wire::{DateTime, Value};

use super::defaults::default_value;

/// `value` converted to `ty`, or `None` when it cannot be one.
pub(crate) fn coerce(value: Value, ty: &Ty) -> Option<Value> {
    match (ty, value) {
        (Ty::String | Ty::Ref(_), Value::String(s)) => Some(Value::String(s)),
        (Ty::Int, Value::Int(i)) => Some(Value::Int(i)),
        (Ty::Int, Value::String(s)) => s.trim().parse().ok().map(Value::Int),
        (Ty::Float, Value::Double(f)) => Some(Value::Double(f)),
        (Ty::Float, Value::Int(i)) => Some(Value::Double(i as f64)),
        (Ty::Float, Value::String(s)) => s.trim().parse().ok().map(Value::Double),
        (Ty::Bool, Value::Bool(b)) => Some(Value::Bool(b)),
        (Ty::Bool, Value::String(s)) => match s.as_str() {
            "true" | "1" => Some(Value::Bool(true)),
            "false" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
        (Ty::DateTime, Value::DateTime(d)) => Some(Value::DateTime(d)),
        (Ty::DateTime, Value::String(s)) => DateTime::parse(&s).ok().map(Value::DateTime),
        (Ty::Enum(name), Value::String(s)) => is_enum_value(name, &s).then_some(Value::String(s)),
        (Ty::Set(inner), Value::Array(items)) => items
            .into_iter()
            .map(|item| coerce(item, inner))
            .collect::<Option<Vec<_>>>()
            .map(Value::Array),
        (Ty::Map(key_ty, value_ty), Value::Struct(map)) => {
            let mut out = BTreeMap::new();
            for (key, value) in map {
                // keys travel as strings whatever their type; check them as their type
                coerce(Value::String(key.clone()), key_ty)?;
                out.insert(key, coerce(value, value_ty)?);
            }
            Some(Value::Struct(out))
        }
        (Ty::Record(class), Value::Struct(map)) => match meta::class(class) {
            Some(class_meta) => coerce_record(class_meta, map).ok().map(Value::Struct),
            None => Some(Value::Struct(map)),
        },
        (Ty::Option(_), Value::Nil) => Some(Value::Nil),
        (Ty::Option(inner), value) => coerce(value, inner),
        (Ty::AnyRecord | Ty::EventBatch | Ty::Void, value) => Some(value),
        _ => None,
    }
}

/// Whether `value` is one of the values of the enum `name` (any value when the enum is unknown).
fn is_enum_value(name: &str, value: &str) -> bool {
    meta::ENUMS
        .iter()
        .find(|e| e.name == name)
        .is_none_or(|e| e.values.contains(&value))
}

/// A record for `class`, each known field coerced to its type; unknown keys are dropped and
/// missing ones take their default. `Err(field)` names the first field of the wrong type.
pub(crate) fn coerce_record(
    class_meta: &ClassMeta,
    mut map: BTreeMap<String, Value>,
) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    for field in class_meta.fields {
        let value = match map.remove(field.name) {
            Some(value) => coerce(value, &field.ty).ok_or_else(|| field.name.to_owned())?,
            None => default_value(field),
        };
        out.insert(field.name.to_owned(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    static STRING: Ty = Ty::String;
    static INT: Ty = Ty::Int;

    #[test]
    fn untyped_text_becomes_int_when_an_int_is_declared() {
        assert_eq!(
            coerce(Value::String("4294967296".into()), &Ty::Int),
            Some(Value::Int(4_294_967_296))
        );
        assert_eq!(coerce(Value::String("four".into()), &Ty::Int), None);
    }

    #[test]
    fn collections_are_checked_item_by_item() {
        let set = Value::Array(vec![Value::String("1".into()), Value::Int(2)]);
        assert_eq!(
            coerce(set, &Ty::Set(&INT)),
            Some(Value::Array(vec![Value::Int(1), Value::Int(2)]))
        );
        let map = Value::Struct(BTreeMap::from([("k".to_owned(), Value::Int(3))]));
        assert_eq!(coerce(map, &Ty::Map(&STRING, &STRING)), None);
    }

    #[test]
    fn a_bool_is_not_a_string() {
        assert_eq!(coerce(Value::Bool(true), &Ty::String), None);
        assert_eq!(
            coerce(Value::String("1".into()), &Ty::Bool),
            Some(Value::Bool(true))
        );
    }
}
