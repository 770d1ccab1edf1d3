//! Field defaults: the datamodel's printed default parsed into a [`Value`], or the zero value of
//! the field's type when the datamodel gives none.

use std::collections::BTreeMap;

use xapi_core::api::meta::{self, FieldMeta, Ty};
use xapi_core::wire::{DateTime, Value};

/// The null reference as xapi writes it.
pub(crate) const NULL_REF: &str = "OpaqueRef:NULL";

/// The value a new object gets for `field` when the creator does not give one.
pub(crate) fn default_value(field: &FieldMeta) -> Value {
    field
        .default
        .and_then(|printed| parse_printed(printed, &field.ty))
        .unwrap_or_else(|| zero_value(&field.ty))
}

/// The zero value of a type: empty string, 0, false, the epoch, the first enum value, the null
/// reference, an empty set or map.
pub(crate) fn zero_value(ty: &Ty) -> Value {
    match ty {
        Ty::String | Ty::Void | Ty::EventBatch => Value::String(String::new()),
        Ty::Int => Value::Int(0),
        Ty::Float => Value::Double(0.0),
        Ty::Bool => Value::Bool(false),
        Ty::DateTime => Value::DateTime(DateTime::default()),
        Ty::Enum(name) => Value::String(
            meta::ENUMS
                .iter()
                .find(|e| e.name == *name)
                .and_then(|e| e.values.first())
                .map_or_else(String::new, |v| (*v).to_owned()),
        ),
        Ty::Ref(_) => Value::String(NULL_REF.to_owned()),
        Ty::Set(_) => Value::Array(Vec::new()),
        Ty::Map(_, _) | Ty::Record(_) | Ty::AnyRecord => Value::Struct(BTreeMap::new()),
        Ty::Option(_) => Value::Nil,
    }
}

/// Parse a default in the datamodel's printed form (`"UTC"`, `8`, `20.`, `true`, `Null`,
/// `{}`, `{"a" -> "b", "c" -> "d"}`, `19700101T00:00:00Z`). `None` when the text does not fit the
/// type.
pub(crate) fn parse_printed(printed: &str, ty: &Ty) -> Option<Value> {
    let text = printed.trim();
    match ty {
        Ty::String => Some(Value::String(unquote(text)?)),
        Ty::Int => text.parse().ok().map(Value::Int),
        Ty::Float => text.parse().ok().map(Value::Double),
        Ty::Bool => match text {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        Ty::DateTime => DateTime::parse(text).ok().map(Value::DateTime),
        Ty::Enum(_) => Some(Value::String(
            unquote(text).unwrap_or_else(|| text.to_owned()),
        )),
        Ty::Ref(_) => Some(Value::String(if text == "Null" || text.is_empty() {
            NULL_REF.to_owned()
        } else {
            text.to_owned()
        })),
        Ty::Set(inner) => {
            let body = text.strip_prefix('{')?.strip_suffix('}')?.trim();
            if body.is_empty() {
                return Some(Value::Array(Vec::new()));
            }
            split_items(body)
                .into_iter()
                .map(|item| parse_printed(item, inner))
                .collect::<Option<Vec<_>>>()
                .map(Value::Array)
        }
        Ty::Map(key_ty, value_ty) => {
            let body = text.strip_prefix('{')?.strip_suffix('}')?.trim();
            let mut map = BTreeMap::new();
            if body.is_empty() {
                return Some(Value::Struct(map));
            }
            for item in split_items(body) {
                let (key, value) = item.split_once("->")?;
                let key = match parse_printed(key, key_ty)? {
                    Value::String(s) => s,
                    Value::Int(i) => i.to_string(),
                    _ => return None,
                };
                map.insert(key, parse_printed(value, value_ty)?);
            }
            Some(Value::Struct(map))
        }
        Ty::Option(inner) => parse_printed(text, inner),
        Ty::Record(_) | Ty::AnyRecord | Ty::Void | Ty::EventBatch => None,
    }
}

/// The text inside double quotes, with `\"` and `\\` unescaped; `None` when not quoted.
fn unquote(text: &str) -> Option<String> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next()?);
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Split the body of a printed set or map on `,` or `;` outside double quotes.
fn split_items(body: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ',' | ';' if !in_quotes => {
                items.push(body[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(body[start..].trim());
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    static STRING: Ty = Ty::String;
    static INT: Ty = Ty::Int;

    #[test]
    fn printed_scalars_parse_to_their_types() {
        assert_eq!(
            parse_printed("\"UTC\"", &Ty::String),
            Some(Value::String("UTC".into()))
        );
        assert_eq!(
            parse_printed("\"\"", &Ty::String),
            Some(Value::String(String::new()))
        );
        assert_eq!(
            parse_printed("21474836480", &Ty::Int),
            Some(Value::Int(21_474_836_480))
        );
        assert_eq!(parse_printed("20.", &Ty::Float), Some(Value::Double(20.0)));
        assert_eq!(parse_printed("-1.", &Ty::Float), Some(Value::Double(-1.0)));
        assert_eq!(parse_printed("true", &Ty::Bool), Some(Value::Bool(true)));
        assert_eq!(
            parse_printed("Halted", &Ty::Enum("vm_power_state")),
            Some(Value::String("Halted".into()))
        );
        assert_eq!(
            parse_printed("Null", &Ty::Ref("task")),
            Some(Value::String(NULL_REF.into()))
        );
    }

    #[test]
    fn printed_collections_parse_item_by_item() {
        let map = parse_printed(
            "{\"address\" -> \"localhost\", \"port\" -> \"27000\"}",
            &Ty::Map(&STRING, &STRING),
        );
        let Some(Value::Struct(map)) = map else {
            panic!("map default did not parse: {map:?}")
        };
        assert_eq!(map.get("address"), Some(&Value::String("localhost".into())));
        assert_eq!(map.get("port"), Some(&Value::String("27000".into())));
        assert_eq!(
            parse_printed("{0}", &Ty::Set(&INT)),
            Some(Value::Array(vec![Value::Int(0)]))
        );
        assert_eq!(
            parse_printed("{}", &Ty::Set(&INT)),
            Some(Value::Array(Vec::new()))
        );
    }

    #[test]
    fn unparsable_default_falls_back_to_zero_value() {
        let field = FieldMeta {
            name: "memory",
            ty: Ty::Int,
            qualifier: meta::Qualifier::ReadWrite,
            default: Some("lots"),
        };
        assert_eq!(default_value(&field), Value::Int(0));
    }
}
