//! Field defaults: the datamodel's OCaml-printed `default` strings as Rust expressions.

use std::collections::BTreeSet;

use super::names::{camel_case, enum_variant};
use super::types::Type;

/// Looks up the declared values of an enum by its datamodel name.
pub(crate) trait EnumValues {
    /// The values of enum `name`, if it exists.
    fn values(&self, name: &str) -> Option<&[String]>;
}

/// The Rust expression for a field of type `ty` whose datamodel default is `default` (or the
/// type's zero when there is none).
pub(crate) fn default_expr(
    ty: &Type,
    default: Option<&str>,
    enums: &dyn EnumValues,
    uses: &mut BTreeSet<String>,
) -> Result<String, String> {
    match default {
        None => Ok(zero(ty, uses)),
        Some(text) => value_expr(ty, text.trim(), enums, uses)
            .map_err(|err| format!("default `{text}` for type {ty:?}: {err}")),
    }
}

/// The zero of a type: empty string and collections, 0, false, the epoch, the null ref,
/// `Unknown("")` for enums, `None` for options.
fn zero(ty: &Type, uses: &mut BTreeSet<String>) -> String {
    match ty {
        Type::String => {
            ty.owned(uses);
            "SmallString::new()".to_owned()
        }
        Type::Int => "0".to_owned(),
        Type::Float => "0.0".to_owned(),
        Type::Bool => "false".to_owned(),
        Type::DateTime => {
            uses.insert("crate::wire::DateTime".to_owned());
            "DateTime::default()".to_owned()
        }
        Type::Enum(_) => format!("{}::Unknown(String::new())", ty.owned(uses)),
        Type::Ref(_) => {
            ty.owned(uses);
            "Ref::null()".to_owned()
        }
        Type::Record(_) | Type::EventBatch => format!("{}::default()", ty.owned(uses)),
        Type::Set(_) => "Vec::new()".to_owned(),
        Type::Map(_, value) => format!("{}::new()", Type::map_type(value, uses)),
        Type::Option(_) | Type::AnyRecord => "None".to_owned(),
        Type::Void => "()".to_owned(),
    }
}

fn value_expr(
    ty: &Type,
    text: &str,
    enums: &dyn EnumValues,
    uses: &mut BTreeSet<String>,
) -> Result<String, String> {
    match ty {
        Type::String => {
            ty.owned(uses);
            let value = unquote(text)?;
            Ok(if value.is_empty() {
                "SmallString::new()".to_owned()
            } else {
                format!("SmallString::from({value:?})")
            })
        }
        Type::Int => text
            .parse::<i64>()
            .map(|n| n.to_string())
            .map_err(|err| format!("not an int: {err}")),
        Type::Float => {
            let value: f64 = text.parse().map_err(|err| format!("not a float: {err}"))?;
            if !value.is_finite() {
                return Err("not a finite float".to_owned());
            }
            Ok(format!("{value:?}"))
        }
        Type::Bool => match text {
            "true" | "false" => Ok(text.to_owned()),
            _ => Err("not a bool".to_owned()),
        },
        Type::DateTime => {
            if text == "19700101T00:00:00Z" {
                // The epoch is `DateTime`'s default.
                Ok(zero(ty, uses))
            } else {
                Err(
                    "only the epoch (19700101T00:00:00Z) is supported as a datetime default"
                        .to_owned(),
                )
            }
        }
        Type::Enum(name) => {
            let values = enums
                .values(name)
                .ok_or_else(|| format!("enum `{name}` is not declared"))?;
            if !values.iter().any(|v| v == text) {
                return Err(format!("`{text}` is not a value of enum `{name}`"));
            }
            Ok(format!("{}::{}", camel_case(name), enum_variant(text)))
        }
        Type::Ref(_) => {
            ty.owned(uses);
            let raw = unquote_if_quoted(text)?;
            Ok(if matches!(raw.as_str(), "OpaqueRef:NULL" | "Null" | "") {
                "Ref::null()".to_owned()
            } else {
                format!("Ref::new({raw:?})")
            })
        }
        Type::Set(item) => {
            let inner = braced(text)?;
            if inner.trim().is_empty() {
                return Ok("Vec::new()".to_owned());
            }
            let items = split_top_level(inner, ",")?
                .into_iter()
                .map(|part| value_expr(item, part.trim(), enums, uses))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(format!("vec![{}]", items.join(", ")))
        }
        Type::Map(key, value) => {
            let map = Type::map_type(value, uses);
            let inner = braced(text)?;
            if inner.trim().is_empty() {
                return Ok(format!("{map}::new()"));
            }
            let mut pairs = Vec::new();
            for entry in split_top_level(inner, ",")? {
                let parts = split_top_level(entry, "->")?;
                let [k, v] = parts.as_slice() else {
                    return Err(format!(
                        "map entry `{}` is not `key -> value`",
                        entry.trim()
                    ));
                };
                pairs.push(format!(
                    "({}, {})",
                    value_expr(key, k.trim(), enums, uses)?,
                    value_expr(value, v.trim(), enums, uses)?
                ));
            }
            Ok(format!("{map}::from([{}])", pairs.join(", ")))
        }
        Type::Option(_) | Type::AnyRecord if text == "None" => Ok("None".to_owned()),
        _ => Err("this type takes no default".to_owned()),
    }
}

/// The contents of `{...}`.
fn braced(text: &str) -> Result<&str, String> {
    text.strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| "expected `{...}`".to_owned())
}

/// Decode an OCaml-printed string literal (`"a\"b"`).
fn unquote(text: &str) -> Result<String, String> {
    let inner = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .ok_or_else(|| format!("expected a quoted string, found `{text}`"))?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(c @ ('\\' | '"' | '\'')) => out.push(c),
            other => return Err(format!("unsupported escape `\\{}`", other.unwrap_or(' '))),
        }
    }
    Ok(out)
}

fn unquote_if_quoted(text: &str) -> Result<String, String> {
    if text.starts_with('"') {
        unquote(text)
    } else {
        Ok(text.to_owned())
    }
}

/// Split at `separator` outside quoted strings and braces.
fn split_top_level<'t>(text: &'t str, separator: &str) -> Result<Vec<&'t str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b'{' {
            depth += 1;
        } else if b == b'}' {
            depth = depth
                .checked_sub(1)
                .ok_or_else(|| format!("unbalanced `}}` at byte {i}"))?;
        } else if depth == 0 && text[i..].starts_with(separator) {
            parts.push(&text[start..i]);
            i += separator.len();
            start = i;
            continue;
        }
        i += 1;
    }
    if in_string {
        return Err("unterminated string".to_owned());
    }
    parts.push(&text[start..]);
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct OneEnum;

    impl EnumValues for OneEnum {
        fn values(&self, name: &str) -> Option<&[String]> {
            static VALUES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
            (name == "vm_power_state").then(|| {
                VALUES
                    .get_or_init(|| vec!["Halted".to_owned(), "Running".to_owned()])
                    .as_slice()
            })
        }
    }

    fn expr(ty: &str, default: Option<&str>) -> Result<String, String> {
        default_expr(
            &Type::parse(ty).unwrap(),
            default,
            &OneEnum,
            &mut BTreeSet::new(),
        )
    }

    #[test]
    fn datamodel_defaults_become_expressions() {
        assert_eq!(expr("string", Some("\"\"")).unwrap(), "SmallString::new()");
        assert_eq!(
            expr("string", Some("\"()\"")).unwrap(),
            "SmallString::from(\"()\")"
        );
        assert_eq!(expr("float", Some("0.")).unwrap(), "0.0");
        assert_eq!(expr("float", Some("-1.")).unwrap(), "-1.0");
        assert_eq!(expr("int", Some("21474836480")).unwrap(), "21474836480");
        assert_eq!(expr("VM ref", Some("Null")).unwrap(), "Ref::null()");
        assert_eq!(
            expr("VM ref", Some("OpaqueRef:NULL")).unwrap(),
            "Ref::null()"
        );
        assert_eq!(
            expr("datetime", Some("19700101T00:00:00Z")).unwrap(),
            "DateTime::default()"
        );
        assert_eq!(
            expr("enum vm_power_state", Some("Halted")).unwrap(),
            "VmPowerState::Halted"
        );
        assert_eq!(expr("int set", Some("{0}")).unwrap(), "vec![0]");
        assert_eq!(
            expr("VM ref set", Some("{OpaqueRef:a-b}")).unwrap(),
            "vec![Ref::new(\"OpaqueRef:a-b\")]"
        );
        assert_eq!(
            expr(
                "(string -> string) map",
                Some("{\"address\" -> \"localhost\", \"port\" -> \"27000\"}")
            )
            .unwrap(),
            "SmallMap::from([(SmallString::from(\"address\"), SmallString::from(\"localhost\")), (SmallString::from(\"port\"), SmallString::from(\"27000\"))])"
        );
        assert_eq!(
            expr("(string -> string) map", Some("{}")).unwrap(),
            "SmallMap::new()"
        );
    }

    #[test]
    fn missing_defaults_are_the_type_zero() {
        assert_eq!(expr("string", None).unwrap(), "SmallString::new()");
        assert_eq!(
            expr("enum vm_power_state", None).unwrap(),
            "VmPowerState::Unknown(String::new())"
        );
        assert_eq!(expr("sr_stat record option", None).unwrap(), "None");
    }

    #[test]
    fn bad_defaults_are_errors() {
        assert!(
            expr("enum vm_power_state", Some("Flying"))
                .unwrap_err()
                .contains("not a value")
        );
        assert!(expr("int", Some("x")).is_err());
        assert!(expr("string", Some("bare")).is_err());
        assert!(expr("datetime", Some("20200101T00:00:00Z")).is_err());
    }
}
