//! The XML-RPC value codec's document mode: one `<value>` read and written as a tree that keeps
//! what a byte-exact rewrite needs (struct members in document order, duplicates included,
//! `<i4>` apart from untyped ints, datetimes as their text).
//!
//! This is the form of an XVA's `ova.xml`, which xapi writes as a bare XML-RPC `<value>`. It
//! goes through the same parser as every XML-RPC response (the serde deserializer of this
//! module's parent, with its DOCTYPE refusal, entity handling, limits and byte offsets) and the
//! same escaper as every XML-RPC request, so the rules for what is accepted and what is written
//! exist once.
//!
//! ```
//! use xapi_core::wire::{Limits, OrderedValue, xmlrpc};
//!
//! let xml = b"<value><struct><member><name>b</name><value><i4>7</i4></value></member>\
//!             <member><name>a</name><value>x &amp; y</value></member></struct></value>";
//! let doc = xmlrpc::decode_document(xml, &Limits::default())?;
//! assert_eq!(doc.get("a").and_then(OrderedValue::as_str), Some("x & y"));
//! assert_eq!(doc.get("b"), Some(&OrderedValue::Int(7)));
//! // Members keep their order; an int read back is written untyped, as xapi writes an int64.
//! assert_eq!(
//!     xmlrpc::encode_document(&doc),
//!     "<value><struct><member><name>b</name><value>7</value></member>\
//!      <member><name>a</name><value>x &amp; y</value></member></struct></value>"
//! );
//! # Ok::<(), xapi_core::wire::DecodeError>(())
//! ```

use std::fmt;

use base64::Engine as _;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::number::write_xmlrpc_double;
use super::xml_write::write_escaped;

/// One XML-RPC value of a document, in the order and the forms the document has them.
///
/// Unlike [`super::Value`] (a map of members, datetimes parsed), this keeps struct members as
/// a list in document order and datetimes as text, so that a document read and written again
/// gives the same bytes when it was written the way xapi writes.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderedValue {
    /// A string, or untyped text (which is also how xapi writes int64 values).
    String(String),
    /// An integer (`<i4>`, `<int>` or `<i8>` on input). Written untyped, as xapi writes OCaml
    /// `int` / `int64` values, so it reads back as [`OrderedValue::String`]: use
    /// [`OrderedValue::as_i64`], which accepts both.
    Int(i64),
    /// A 32-bit integer, written as `<i4>` (xapi's `Int32`).
    Int32(i32),
    /// `<boolean>`.
    Bool(bool),
    /// `<double>`, written as C's `%.16g`.
    Double(f64),
    /// `<dateTime.iso8601>`, kept as its text (`20260101T00:00:00Z`).
    DateTime(String),
    /// `<base64>`, decoded.
    Base64(Vec<u8>),
    /// `<array><data>`.
    Array(Vec<OrderedValue>),
    /// `<struct>`, members in document order (a repeated name is kept).
    Struct(Vec<(String, OrderedValue)>),
    /// `<nil/>`.
    Nil,
}

impl OrderedValue {
    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// An integer, from a typed int or from untyped text (xapi writes int64 untyped).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            Self::Int32(i) => Some(i64::from(*i)),
            Self::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A boolean, from `<boolean>` or from the texts `true` / `false` / `1` / `0`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            Self::String(s) => match s.as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// The members of a struct, in document order.
    pub fn as_struct(&self) -> Option<&[(String, OrderedValue)]> {
        match self {
            Self::Struct(members) => Some(members),
            _ => None,
        }
    }

    /// The elements of an array.
    pub fn as_array(&self) -> Option<&[OrderedValue]> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The first member called `name` of a struct.
    pub fn get(&self, name: &str) -> Option<&OrderedValue> {
        self.as_struct()?
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }
}

impl<'de> Deserialize<'de> for OrderedValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OrderedVisitor)
    }
}

/// Builds an [`OrderedValue`] from what the XML-RPC deserializer reports for each tag.
struct OrderedVisitor;

impl<'de> Visitor<'de> for OrderedVisitor {
    type Value = OrderedValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an XML-RPC value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<OrderedValue, E> {
        Ok(OrderedValue::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<OrderedValue, E> {
        Ok(OrderedValue::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<OrderedValue, E> {
        i64::try_from(v)
            .map(OrderedValue::Int)
            .map_err(|_| E::custom(format!("integer {v} does not fit in 64 bits")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<OrderedValue, E> {
        Ok(OrderedValue::Double(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<OrderedValue, E> {
        Ok(OrderedValue::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<OrderedValue, E> {
        Ok(OrderedValue::String(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<OrderedValue, E> {
        Ok(OrderedValue::Base64(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<OrderedValue, E> {
        Ok(OrderedValue::Base64(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<OrderedValue, E> {
        Ok(OrderedValue::Nil)
    }

    fn visit_none<E: de::Error>(self) -> Result<OrderedValue, E> {
        Ok(OrderedValue::Nil)
    }

    /// The XML-RPC deserializer hands a `<dateTime.iso8601>` over as a newtype around its text.
    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<OrderedValue, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(OrderedValue::DateTime(text.trim().to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OrderedValue, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(OrderedValue::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedValue, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((name, value)) = map.next_entry::<String, OrderedValue>()? {
            members.push((name, value));
        }
        Ok(OrderedValue::Struct(members))
    }
}

/// Appends one `<value>...</value>` exactly as xapi writes it.
pub(crate) fn write_ordered(out: &mut String, value: &OrderedValue) {
    out.push_str("<value>");
    match value {
        OrderedValue::String(s) => write_escaped(out, s),
        OrderedValue::Int(n) => out.push_str(itoa::Buffer::new().format(*n)),
        OrderedValue::Int32(n) => {
            out.push_str("<i4>");
            out.push_str(itoa::Buffer::new().format(*n));
            out.push_str("</i4>");
        }
        OrderedValue::Bool(b) => out.push_str(if *b {
            "<boolean>1</boolean>"
        } else {
            "<boolean>0</boolean>"
        }),
        OrderedValue::Double(x) => {
            out.push_str("<double>");
            write_xmlrpc_double(out, *x);
            out.push_str("</double>");
        }
        OrderedValue::DateTime(text) => {
            out.push_str("<dateTime.iso8601>");
            write_escaped(out, text);
            out.push_str("</dateTime.iso8601>");
        }
        OrderedValue::Base64(bytes) => {
            out.push_str("<base64>");
            base64::engine::general_purpose::STANDARD.encode_string(bytes, out);
            out.push_str("</base64>");
        }
        OrderedValue::Array(items) => {
            out.push_str("<array><data>");
            for item in items {
                write_ordered(out, item);
            }
            out.push_str("</data></array>");
        }
        OrderedValue::Struct(members) => {
            out.push_str("<struct>");
            for (name, member) in members {
                out.push_str("<member><name>");
                write_escaped(out, name);
                out.push_str("</name>");
                write_ordered(out, member);
                out.push_str("</member>");
            }
            out.push_str("</struct>");
        }
        OrderedValue::Nil => out.push_str("<nil/>"),
    }
    out.push_str("</value>");
}

#[cfg(test)]
mod tests {
    use super::super::{DecodeErrorKind, Limits, xmlrpc};
    use super::*;

    fn decode(xml: &str) -> OrderedValue {
        xmlrpc::decode_document(xml.as_bytes(), &Limits::default()).expect("a valid document")
    }

    #[test]
    fn members_keep_document_order_and_duplicates() {
        let doc = decode(
            "<value><struct>\
             <member><name>z</name><value>1</value></member>\
             <member><name>a</name><value>2</value></member>\
             <member><name>z</name><value>3</value></member>\
             </struct></value>",
        );
        let names: Vec<&str> = doc
            .as_struct()
            .unwrap()
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names, ["z", "a", "z"]);
        assert_eq!(doc.get("z").and_then(OrderedValue::as_i64), Some(1));
    }

    #[test]
    fn every_tag_reads_as_its_variant() {
        let doc = decode(
            "<value><array><data>\
             <value>untyped</value><value><string>typed</string></value><value/>\
             <value><i4>-3</i4></value><value><int>4</int></value><value><i8>9000000000</i8></value>\
             <value><boolean>1</boolean></value><value><double>0.5</double></value>\
             <value><dateTime.iso8601>20260101T00:00:00Z</dateTime.iso8601></value>\
             <value><base64>aGk=</base64></value><value><nil/></value>\
             <value><struct></struct></value><value><array><data/></array></value>\
             </data></array></value>",
        );
        assert_eq!(
            doc,
            OrderedValue::Array(vec![
                OrderedValue::String("untyped".into()),
                OrderedValue::String("typed".into()),
                OrderedValue::String(String::new()),
                OrderedValue::Int(-3),
                OrderedValue::Int(4),
                OrderedValue::Int(9_000_000_000),
                OrderedValue::Bool(true),
                OrderedValue::Double(0.5),
                OrderedValue::DateTime("20260101T00:00:00Z".into()),
                OrderedValue::Base64(b"hi".to_vec()),
                OrderedValue::Nil,
                OrderedValue::Struct(vec![]),
                OrderedValue::Array(vec![]),
            ])
        );
    }

    #[test]
    fn written_as_xapi_writes() {
        let value = OrderedValue::Struct(vec![
            ("s".into(), OrderedValue::String("a<b>&\"c\"\u{1}\t".into())),
            ("i".into(), OrderedValue::Int(-7)),
            ("i4".into(), OrderedValue::Int32(-3)),
            ("b".into(), OrderedValue::Bool(false)),
            ("d".into(), OrderedValue::Double(0.1)),
            (
                "t".into(),
                OrderedValue::DateTime("19700101T00:00:00Z".into()),
            ),
            ("n".into(), OrderedValue::Nil),
            ("e".into(), OrderedValue::Array(vec![])),
        ]);
        assert_eq!(
            xmlrpc::encode_document(&value),
            "<value><struct>\
             <member><name>s</name><value>a&lt;b&gt;&amp;&quot;c&quot;\t</value></member>\
             <member><name>i</name><value>-7</value></member>\
             <member><name>i4</name><value><i4>-3</i4></value></member>\
             <member><name>b</name><value><boolean>0</boolean></value></member>\
             <member><name>d</name><value><double>0.1</double></value></member>\
             <member><name>t</name><value><dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601></value></member>\
             <member><name>n</name><value><nil/></value></member>\
             <member><name>e</name><value><array><data></data></array></value></member>\
             </struct></value>"
        );
    }

    #[test]
    fn the_document_policy_is_the_codec_policy() {
        let err = xmlrpc::decode_document(
            b"<!DOCTYPE v [<!ENTITY x \"y\">]><value>&x;</value>",
            &Limits::default(),
        )
        .expect_err("a DTD is refused, as in every XML-RPC response");
        assert!(
            matches!(err.kind, DecodeErrorKind::DoctypeNotAllowed),
            "{err}"
        );
        let deep = "<value><array><data>".repeat(70) + &"</data></array></value>".repeat(70);
        assert!(xmlrpc::decode_document(deep.as_bytes(), &Limits::default()).is_err());
        let trailing =
            xmlrpc::decode_document(b"<value>a</value><value>b</value>", &Limits::default());
        assert!(trailing.is_err(), "one root value");
    }
}
