//! The serde bridge between typed values and [`Value`].
//!
//! [`to_value`] maps serde's data model onto XAPI's:
//!
//! | serde | [`Value`] |
//! | --- | --- |
//! | `bool` | `Bool` |
//! | integers | `Int` (a `u64`/`i128`/`u128` outside `i64` is an [`EncodeError`]) |
//! | `f32`, `f64` | `Double` |
//! | `char`, `str` | `String` |
//! | bytes | `Base64` |
//! | `None` | `Nil` |
//! | `()`, unit struct | `String("")`: xapi's `void` |
//! | unit variant | `String(variant name)`: XAPI enums are strings |
//! | [`DateTime`] | `DateTime` |
//! | seq, tuple | `Array` |
//! | map, struct | `Struct` (map keys stringified: ints in decimal, refs and enums as text) |
//! | newtype / tuple / struct variant | `Struct { variant: value }` |
//!
//! [`from_value`] reads a [`Value`] back with the same type-driven leniency as the wire
//! decoders: `Value::String("42")` deserializes into an `i64`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde::ser::{self, Impossible};

use super::datetime::DATETIME_TOKEN;
use super::value_de::ValueDeserializer;
use super::{DateTime, DecodeError, EncodeError, Value};

/// Serialize any serde value into a [`Value`] (see the module docs for the mapping).
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, EncodeError> {
    value.serialize(ValueSerializer)
}

/// Deserialize a typed value from a [`Value`]. Errors carry offset 0 (there are no bytes).
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, DecodeError> {
    T::deserialize(ValueDeserializer::new(value)).map_err(|e| e.placed_at(0))
}

/// The serializer behind [`to_value`].
struct ValueSerializer;

fn int_from<N: TryInto<i64> + std::fmt::Display + Copy>(n: N) -> Result<Value, EncodeError> {
    n.try_into()
        .map(Value::Int)
        .map_err(|_| EncodeError(format!("integer {n} does not fit in a 64-bit XAPI int")))
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = EncodeError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = VariantBuilder<SeqBuilder>;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = VariantBuilder<MapBuilder>;

    fn serialize_bool(self, v: bool) -> Result<Value, EncodeError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, EncodeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, EncodeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, EncodeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, EncodeError> {
        Ok(Value::Int(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value, EncodeError> {
        int_from(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Value, EncodeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, EncodeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, EncodeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, EncodeError> {
        int_from(v)
    }
    fn serialize_u128(self, v: u128) -> Result<Value, EncodeError> {
        int_from(v)
    }
    fn serialize_f32(self, v: f32) -> Result<Value, EncodeError> {
        Ok(Value::Double(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, EncodeError> {
        Ok(Value::Double(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, EncodeError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, EncodeError> {
        Ok(Value::String(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, EncodeError> {
        Ok(Value::Base64(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Value, EncodeError> {
        Ok(Value::Nil)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, EncodeError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, EncodeError> {
        Ok(Value::String(String::new()))
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, EncodeError> {
        Ok(Value::String(String::new()))
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, EncodeError> {
        Ok(Value::String(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Value, EncodeError> {
        let inner = value.serialize(self)?;
        if name != DATETIME_TOKEN {
            return Ok(inner);
        }
        match inner {
            Value::String(text) => DateTime::parse(&text)
                .map(Value::DateTime)
                .map_err(|e| EncodeError(e.to_string())),
            other => Err(EncodeError(format!(
                "a datetime must serialize as text, not {}",
                other.kind_name()
            ))),
        }
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, EncodeError> {
        let inner = value.serialize(self)?;
        Ok(Value::Struct(BTreeMap::from([(variant.to_owned(), inner)])))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, EncodeError> {
        Ok(SeqBuilder(Vec::with_capacity(len.unwrap_or(0).min(4096))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, EncodeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, EncodeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantBuilder<SeqBuilder>, EncodeError> {
        Ok(VariantBuilder {
            variant,
            inner: self.serialize_seq(Some(len))?,
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapBuilder, EncodeError> {
        Ok(MapBuilder {
            members: BTreeMap::new(),
            next_key: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapBuilder, EncodeError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantBuilder<MapBuilder>, EncodeError> {
        Ok(VariantBuilder {
            variant,
            inner: self.serialize_map(Some(len))?,
        })
    }
}

/// Builds a [`Value::Array`].
struct SeqBuilder(Vec<Value>);

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Value;
    type Error = EncodeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.0.push(value.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, EncodeError> {
        Ok(Value::Array(self.0))
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Value;
    type Error = EncodeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, EncodeError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Value;
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, EncodeError> {
        ser::SerializeSeq::end(self)
    }
}

/// Builds a [`Value::Struct`].
struct MapBuilder {
    members: BTreeMap<String, Value>,
    next_key: Option<String>,
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = EncodeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), EncodeError> {
        self.next_key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        let key = self
            .next_key
            .take()
            .ok_or_else(|| EncodeError("map value serialized before its key".to_owned()))?;
        self.members.insert(key, value.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, EncodeError> {
        Ok(Value::Struct(self.members))
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.members
            .insert(key.to_owned(), value.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, EncodeError> {
        Ok(Value::Struct(self.members))
    }
}

/// Wraps a tuple or struct variant as `{variant: ...}`.
struct VariantBuilder<B> {
    variant: &'static str,
    inner: B,
}

impl ser::SerializeTupleVariant for VariantBuilder<SeqBuilder> {
    type Ok = Value;
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        ser::SerializeSeq::serialize_element(&mut self.inner, value)
    }
    fn end(self) -> Result<Value, EncodeError> {
        let inner = ser::SerializeSeq::end(self.inner)?;
        Ok(Value::Struct(BTreeMap::from([(
            self.variant.to_owned(),
            inner,
        )])))
    }
}

impl ser::SerializeStructVariant for VariantBuilder<MapBuilder> {
    type Ok = Value;
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        ser::SerializeStruct::serialize_field(&mut self.inner, key, value)
    }
    fn end(self) -> Result<Value, EncodeError> {
        let inner = ser::SerializeStruct::end(self.inner)?;
        Ok(Value::Struct(BTreeMap::from([(
            self.variant.to_owned(),
            inner,
        )])))
    }
}

/// Turns a map key into the string XAPI puts on the wire.
struct KeySerializer;

fn key_error(kind: &str) -> EncodeError {
    EncodeError(format!("a map key must be a scalar, not {kind}"))
}

impl ser::Serializer for KeySerializer {
    type Ok = String;
    type Error = EncodeError;
    type SerializeSeq = Impossible<String, EncodeError>;
    type SerializeTuple = Impossible<String, EncodeError>;
    type SerializeTupleStruct = Impossible<String, EncodeError>;
    type SerializeTupleVariant = Impossible<String, EncodeError>;
    type SerializeMap = Impossible<String, EncodeError>;
    type SerializeStruct = Impossible<String, EncodeError>;
    type SerializeStructVariant = Impossible<String, EncodeError>;

    fn serialize_bool(self, v: bool) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_i8(self, v: i8) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_i16(self, v: i16) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_i32(self, v: i32) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_i128(self, v: i128) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_u16(self, v: u16) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_u32(self, v: u32) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_u128(self, v: u128) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_f32(self, v: f32) -> Result<String, EncodeError> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<String, EncodeError> {
        let mut text = String::new();
        super::number::write_xmlrpc_double(&mut text, v);
        Ok(text)
    }
    fn serialize_char(self, v: char) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_str(self, v: &str) -> Result<String, EncodeError> {
        Ok(v.to_owned())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<String, EncodeError> {
        Err(key_error("bytes"))
    }
    fn serialize_none(self) -> Result<String, EncodeError> {
        Err(key_error("None"))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<String, EncodeError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<String, EncodeError> {
        Ok(String::new())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, EncodeError> {
        Ok(String::new())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, EncodeError> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, EncodeError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, EncodeError> {
        Err(key_error("a newtype variant"))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, EncodeError> {
        Err(key_error("a sequence"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, EncodeError> {
        Err(key_error("a tuple"))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, EncodeError> {
        Err(key_error("a tuple struct"))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, EncodeError> {
        Err(key_error("a tuple variant"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, EncodeError> {
        Err(key_error("a map"))
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, EncodeError> {
        Err(key_error("a struct"))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, EncodeError> {
        Err(key_error("a struct variant"))
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the codec must be exact: floats are compared bit for bit
mod tests {
    use std::collections::HashMap;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::wire::Ref;

    struct Vm;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    enum PowerState {
        Halted,
        Running,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    struct Record {
        name_label: String,
        memory: i64,
        ratio: f64,
        is_template: bool,
        power_state: PowerState,
        tags: Vec<String>,
        by_state: HashMap<PowerState, i64>,
        counts: HashMap<i64, String>,
        created: DateTime,
        parent: Option<String>,
    }

    impl Default for Record {
        fn default() -> Self {
            Self {
                name_label: String::new(),
                memory: 0,
                ratio: 0.0,
                is_template: false,
                power_state: PowerState::Halted,
                tags: Vec::new(),
                by_state: HashMap::new(),
                counts: HashMap::new(),
                created: DateTime::EPOCH,
                parent: None,
            }
        }
    }

    #[test]
    fn typed_record_round_trips_through_value() {
        let record = Record {
            name_label: "web <1>".into(),
            memory: 1 << 40,
            ratio: 0.5,
            is_template: true,
            power_state: PowerState::Running,
            tags: vec!["a".into(), "b".into()],
            by_state: HashMap::from([(PowerState::Running, 3)]),
            counts: HashMap::from([(-7, "x".to_owned())]),
            created: "20250319T04:16:24Z".parse().expect("valid datetime"),
            parent: Some("p".into()),
        };
        let value = to_value(&record).expect("encodable");
        assert_eq!(value.get("memory"), Some(&Value::Int(1 << 40)));
        assert_eq!(
            value.get("power_state"),
            Some(&Value::String("Running".into()))
        );
        assert!(matches!(value.get("created"), Some(Value::DateTime(_))));
        assert_eq!(
            value.get("counts").and_then(|c| c.get("-7")),
            Some(&Value::String("x".into()))
        );
        assert_eq!(from_value::<Record>(value).expect("decodable"), record);
    }

    #[test]
    fn unit_is_void_and_none_is_nil() {
        assert_eq!(to_value(&()).ok(), Some(Value::String(String::new())));
        assert_eq!(to_value(&None::<i64>).ok(), Some(Value::Nil));
        assert_eq!(
            to_value(&("OpaqueRef:s", 3_i32)).ok(),
            Some(Value::Array(vec![
                Value::from("OpaqueRef:s"),
                Value::Int(3)
            ]))
        );
    }

    #[test]
    fn unrepresentable_values_are_encode_errors() {
        assert!(to_value(&u64::MAX).is_err());
        assert!(to_value(&HashMap::from([(vec![1], 1)])).is_err());
    }

    #[test]
    fn string_values_decode_type_driven() {
        assert_eq!(from_value::<i64>(Value::from("42")).ok(), Some(42));
        assert_eq!(
            from_value::<f64>(Value::from("inf")).ok(),
            Some(f64::INFINITY)
        );
        assert_eq!(from_value::<bool>(Value::from("0")).ok(), Some(false));
        assert_eq!(from_value::<Option<i64>>(Value::Nil).ok(), Some(None));
        assert_eq!(from_value::<()>(Value::from("")).ok(), Some(()));
        let refs = Value::Struct(BTreeMap::from([(
            "OpaqueRef:a".into(),
            Value::from("Halted"),
        )]));
        let decoded: HashMap<Ref<Vm>, PowerState> = from_value(refs).expect("decodable");
        assert_eq!(decoded[&Ref::new("OpaqueRef:a")], PowerState::Halted);
        let err = from_value::<i64>(Value::from("forty")).expect_err("not a number");
        assert_eq!(err.offset, 0);
    }

    #[test]
    fn values_round_trip_through_value() {
        let value = Value::Struct(BTreeMap::from([
            ("a".into(), Value::Array(vec![Value::Int(1), Value::Nil])),
            ("b".into(), Value::Base64(vec![0, 255])),
            ("c".into(), Value::DateTime(DateTime::EPOCH)),
            ("d".into(), Value::Double(-0.25)),
        ]));
        let back: Value = from_value(to_value(&value).expect("encodable")).expect("decodable");
        assert_eq!(back, value);
    }
}
