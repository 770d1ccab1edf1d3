//! The dynamic XAPI value.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::DateTime;

/// Any value XAPI can carry on either wire encoding.
///
/// Decoding an untyped XML-RPC value as `Value` gives [`Value::String`] (XML-RPC cannot tell an
/// int from a string without the datamodel type); typed tags give their own variants.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (XML-RPC untyped text or `<string>`).
    String(String),
    /// A 64-bit integer.
    Int(i64),
    /// A double, possibly infinite or NaN.
    Double(f64),
    /// A boolean.
    Bool(bool),
    /// A datetime.
    DateTime(DateTime),
    /// An array (a set).
    Array(Vec<Value>),
    /// A struct (a map or a record); keys are always strings on the wire.
    Struct(BTreeMap<String, Value>),
    /// `<nil/>` / JSON `null`.
    Nil,
    /// Binary data (`<base64>`).
    Base64(Vec<u8>),
}

impl Value {
    /// The string, if this is a [`Value::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is a [`Value::Int`] or a [`Value::String`] of decimal digits (how
    /// XML-RPC carries ints).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(n) => Some(*n),
            Self::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// The double, if this is a [`Value::Double`] or a [`Value::Int`].
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Double(x) => Some(*x),
            Self::Int(n) => Some(*n as f64),
            _ => None,
        }
    }

    /// The boolean, if this is a [`Value::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The items, if this is a [`Value::Array`].
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The members, if this is a [`Value::Struct`].
    pub fn as_struct(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Self::Struct(members) => Some(members),
            _ => None,
        }
    }

    /// The member `name`, if this is a [`Value::Struct`] that has it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Self::Struct(members) => members.get(name),
            _ => None,
        }
    }

    /// A short name of the variant, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::String(_) => "string",
            Self::Int(_) => "int",
            Self::Double(_) => "double",
            Self::Bool(_) => "boolean",
            Self::DateTime(_) => "datetime",
            Self::Array(_) => "array",
            Self::Struct(_) => "struct",
            Self::Nil => "nil",
            Self::Base64(_) => "base64",
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Self::Int(n)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Self::Double(x)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<DateTime> for Value {
    fn from(dt: DateTime) -> Self {
        Self::DateTime(dt)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::String(s) => serializer.serialize_str(s),
            Self::Int(n) => serializer.serialize_i64(*n),
            Self::Double(x) => serializer.serialize_f64(*x),
            Self::Bool(b) => serializer.serialize_bool(*b),
            Self::DateTime(dt) => dt.serialize(serializer),
            Self::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Struct(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Self::Nil => serializer.serialize_none(),
            Self::Base64(bytes) => serializer.serialize_bytes(bytes),
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any XAPI value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom(format!("integer {v} does not fit in a 64-bit XAPI int")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Double(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Base64(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Base64(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }

    /// The XAPI decoders present a datetime as a newtype struct around its text.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        DateTime::deserialize(d).map(Value::DateTime)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = BTreeMap::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            members.insert(k, v);
        }
        Ok(Value::Struct(members))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_read_what_the_wire_gives() {
        assert_eq!(Value::from("42").as_i64(), Some(42));
        assert_eq!(Value::Int(-1).as_i64(), Some(-1));
        assert_eq!(Value::from("x").as_i64(), None);
        assert_eq!(Value::Int(2).as_f64(), Some(2.0));
        assert_eq!(Value::Bool(true).as_bool(), Some(true));
        assert_eq!(
            Value::Array(vec![Value::Nil])
                .as_array()
                .map(<[Value]>::len),
            Some(1)
        );
        let record = Value::Struct(BTreeMap::from([("a".to_owned(), Value::from("b"))]));
        assert_eq!(record.get("a").and_then(Value::as_str), Some("b"));
        assert_eq!(record.as_struct().map(BTreeMap::len), Some(1));
        assert_eq!(Value::Nil.kind_name(), "nil");
    }
}
