//! Writes JSON as xapi (Yojson) does: bare `NaN`/`Infinity`/`-Infinity` for non-finite
//! doubles, floats that always read as floats, datetimes and base64 as strings.

use base64::Engine as _;

use super::Value;
use super::number::write_json_double;

/// Appends `text` as a JSON string literal.
pub(crate) fn write_str(out: &mut String, text: &str) {
    out.push('"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let replacement: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f | 0x7f => {
                out.push_str(&text[start..i]);
                out.push_str("\\u00");
                out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
                out.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.push_str(&text[start..i]);
        out.push_str(replacement);
        start = i + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

/// Appends one JSON value.
pub(crate) fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::String(s) => write_str(out, s),
        Value::Int(n) => out.push_str(itoa::Buffer::new().format(*n)),
        Value::Double(x) => write_json_double(out, *x),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::DateTime(dt) => write_str(out, &dt.to_string()),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Struct(members) => {
            out.push('{');
            for (i, (name, member)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, name);
                out.push(':');
                write_value(out, member);
            }
            out.push('}');
        }
        Value::Nil => out.push_str("null"),
        Value::Base64(bytes) => {
            out.push('"');
            base64::engine::general_purpose::STANDARD.encode_string(bytes, out);
            out.push('"');
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn json(value: &Value) -> String {
        let mut out = String::new();
        write_value(&mut out, value);
        out
    }

    #[test]
    fn values_are_written_like_yojson() {
        assert_eq!(
            json(&Value::from("a\"b\\c\n\u{1}é")),
            r#""a\"b\\c\n\u0001é""#
        );
        assert_eq!(json(&Value::Int(i64::MIN)), "-9223372036854775808");
        assert_eq!(json(&Value::Double(2.0)), "2.0");
        assert_eq!(json(&Value::Double(f64::NAN)), "NaN");
        assert_eq!(json(&Value::Nil), "null");
        let nested = Value::Struct(BTreeMap::from([(
            "k".to_owned(),
            Value::Array(vec![Value::Bool(true), Value::Double(f64::NEG_INFINITY)]),
        )]));
        assert_eq!(json(&nested), r#"{"k":[true,-Infinity]}"#);
    }
}
