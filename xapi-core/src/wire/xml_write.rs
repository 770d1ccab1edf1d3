//! Writes XML-RPC exactly as xapi does: strings and ints as untyped `<value>text</value>`,
//! `<double>` in `%.16g`, `<boolean>0|1</boolean>`, `<dateTime.iso8601>`, `<array><data>`,
//! `<struct><member><name>`, `<nil/>`, `<base64>`; control characters below 0x20 other than
//! TAB, LF and CR dropped.

use std::fmt::Write as _;

use base64::Engine as _;

use super::Value;
use super::number::write_xmlrpc_double;

/// Appends `text` XML-escaped, dropping the control characters XML 1.0 cannot carry.
pub(crate) fn write_escaped(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let replacement = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\t' | b'\n' | b'\r' => continue,
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        out.push_str(replacement);
        start = i + 1;
    }
    out.push_str(&text[start..]);
}

/// Appends one `<value>...</value>`.
pub(crate) fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::String(s) => {
            out.push_str("<value>");
            write_escaped(out, s);
            out.push_str("</value>");
        }
        Value::Int(n) => {
            out.push_str("<value>");
            out.push_str(itoa::Buffer::new().format(*n));
            out.push_str("</value>");
        }
        Value::Double(x) => {
            out.push_str("<value><double>");
            write_xmlrpc_double(out, *x);
            out.push_str("</double></value>");
        }
        Value::Bool(b) => {
            out.push_str(if *b {
                "<value><boolean>1</boolean></value>"
            } else {
                "<value><boolean>0</boolean></value>"
            });
        }
        Value::DateTime(dt) => {
            write!(
                out,
                "<value><dateTime.iso8601>{dt}</dateTime.iso8601></value>"
            )
            .expect("writing to a String cannot fail");
        }
        Value::Array(items) => {
            out.push_str("<value><array><data>");
            for item in items {
                write_value(out, item);
            }
            out.push_str("</data></array></value>");
        }
        Value::Struct(members) => {
            out.push_str("<value><struct>");
            for (name, member) in members {
                out.push_str("<member><name>");
                write_escaped(out, name);
                out.push_str("</name>");
                write_value(out, member);
                out.push_str("</member>");
            }
            out.push_str("</struct></value>");
        }
        Value::Nil => out.push_str("<value><nil/></value>"),
        Value::Base64(bytes) => {
            out.push_str("<value><base64>");
            base64::engine::general_purpose::STANDARD.encode_string(bytes, out);
            out.push_str("</base64></value>");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn xml(value: &Value) -> String {
        let mut out = String::new();
        write_value(&mut out, value);
        out
    }

    #[test]
    fn scalars_are_written_as_xapi_writes_them() {
        assert_eq!(xml(&Value::from("Halted")), "<value>Halted</value>");
        assert_eq!(xml(&Value::from("")), "<value></value>");
        assert_eq!(xml(&Value::Int(4_294_967_296)), "<value>4294967296</value>");
        assert_eq!(
            xml(&Value::Double(0.5)),
            "<value><double>0.5</double></value>"
        );
        assert_eq!(
            xml(&Value::Double(f64::NEG_INFINITY)),
            "<value><double>-inf</double></value>"
        );
        assert_eq!(
            xml(&Value::Bool(true)),
            "<value><boolean>1</boolean></value>"
        );
        assert_eq!(xml(&Value::Nil), "<value><nil/></value>");
        assert_eq!(
            xml(&Value::Base64(b"hi".to_vec())),
            "<value><base64>aGk=</base64></value>"
        );
        assert_eq!(
            xml(&Value::DateTime(crate::wire::DateTime::EPOCH)),
            "<value><dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601></value>"
        );
    }

    #[test]
    fn special_characters_are_escaped_and_controls_dropped() {
        assert_eq!(
            xml(&Value::from("a<b>&\"c\"\u{1}\t\n\r\u{1f}é")),
            "<value>a&lt;b&gt;&amp;&quot;c&quot;\t\n\ré</value>"
        );
    }

    #[test]
    fn containers_nest() {
        let value = Value::Struct(BTreeMap::from([(
            "k&".to_owned(),
            Value::Array(vec![Value::Int(1), Value::from("x")]),
        )]));
        assert_eq!(
            xml(&value),
            "<value><struct><member><name>k&amp;</name><value><array><data>\
             <value>1</value><value>x</value></data></array></value></member></struct></value>"
        );
    }
}
