//! A serde `Deserializer` over an owned [`Value`], with the wire decoders' type-driven rules.

use std::borrow::Cow;
use std::collections::btree_map;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::Value;
use super::error::{DecodeError, DecodeErrorKind};
use super::text::{TextDeserializer, TextKind};

/// Deserializes a typed value out of a [`Value`].
pub(crate) struct ValueDeserializer {
    value: Value,
}

impl ValueDeserializer {
    pub(crate) fn new(value: Value) -> Self {
        Self { value }
    }
}

/// Scalars that serde asks for by type go through the text rules: a `String("42")` read as
/// an `i64`, a `DateTime` read as a string, an `Int` read as a string.
fn as_text(value: Value) -> Result<TextDeserializer<'static>, Value> {
    match value {
        Value::String(s) => Ok(TextDeserializer::untyped(Cow::Owned(s))),
        Value::DateTime(dt) => Ok(TextDeserializer::new(
            Cow::Owned(dt.to_string()),
            TextKind::DateTime,
        )),
        other => Err(other),
    }
}

macro_rules! type_driven {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            match as_text(self.value) {
                Ok(text) => de::Deserializer::$method(text, visitor),
                Err(value) => Self::new(value).deserialize_any(visitor),
            }
        }
    )*};
}

macro_rules! stringly {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            match self.value {
                Value::String(s) => visitor.visit_string(s),
                Value::DateTime(dt) => visitor.visit_string(dt.to_string()),
                Value::Int(n) => visitor.visit_string(n.to_string()),
                other => Self::new(other).deserialize_any(visitor),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for ValueDeserializer {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.value {
            Value::String(s) => visitor.visit_string(s),
            Value::Int(n) => visitor.visit_i64(n),
            Value::Double(x) => visitor.visit_f64(x),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::DateTime(dt) => {
                visitor.visit_newtype_struct(TextDeserializer::untyped(Cow::Owned(dt.to_string())))
            }
            Value::Array(items) => {
                let mut seq = SeqAccess {
                    items: items.into_iter(),
                };
                let out = visitor.visit_seq(&mut seq)?;
                if seq.items.len() > 0 {
                    return Err(de::Error::invalid_length(
                        seq.items.len(),
                        &"fewer elements",
                    ));
                }
                Ok(out)
            }
            Value::Struct(members) => visitor.visit_map(MapAccess {
                members: members.into_iter(),
                pending: None,
            }),
            Value::Nil => visitor.visit_unit(),
            Value::Base64(bytes) => visitor.visit_byte_buf(bytes),
        }
    }

    type_driven!(
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_bytes,
        deserialize_byte_buf,
    );

    stringly!(deserialize_str, deserialize_string, deserialize_identifier);

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.value {
            Value::Nil => visitor.visit_none(),
            value => visitor.visit_some(Self::new(value)),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.value {
            Value::Nil | Value::String(_) => visitor.visit_unit(),
            other => Self::new(other).deserialize_any(visitor),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        match self.value {
            Value::DateTime(dt) => visitor.visit_newtype_struct(TextDeserializer::new(
                Cow::Owned(dt.to_string()),
                TextKind::DateTime,
            )),
            value => visitor.visit_newtype_struct(Self::new(value)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        match self.value {
            Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            Value::Struct(members) if members.len() == 1 => {
                let (variant, value) = members
                    .into_iter()
                    .next()
                    .expect("a struct of length 1 has one member");
                visitor.visit_enum(EnumAccess { variant, value })
            }
            other => Err(DecodeError::unplaced(DecodeErrorKind::Mismatch(format!(
                "invalid type: {}, expected an enum (a string or a one-member struct)",
                other.kind_name()
            )))),
        }
    }

    serde::forward_to_deserialize_any! {
        seq tuple tuple_struct map struct
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }
}

struct SeqAccess {
    items: std::vec::IntoIter<Value>,
}

impl<'de> de::SeqAccess<'de> for &mut SeqAccess {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        self.items
            .next()
            .map(|item| seed.deserialize(ValueDeserializer::new(item)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAccess {
    members: btree_map::IntoIter<String, Value>,
    pending: Option<Value>,
}

impl<'de> de::MapAccess<'de> for MapAccess {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        let Some((key, value)) = self.members.next() else {
            return Ok(None);
        };
        self.pending = Some(value);
        seed.deserialize(TextDeserializer::untyped(Cow::Owned(key)))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        let value = self
            .pending
            .take()
            .ok_or_else(|| de::Error::custom("map value requested before its key"))?;
        seed.deserialize(ValueDeserializer::new(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.members.len())
    }
}

struct EnumAccess {
    variant: String,
    value: Value,
}

impl<'de> de::EnumAccess<'de> for EnumAccess {
    type Error = DecodeError;
    type Variant = ValueDeserializer;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, ValueDeserializer), DecodeError> {
        let variant = seed.deserialize(TextDeserializer::untyped(Cow::Owned(self.variant)))?;
        Ok((variant, ValueDeserializer::new(self.value)))
    }
}

impl<'de> de::VariantAccess<'de> for ValueDeserializer {
    type Error = DecodeError;

    fn unit_variant(self) -> Result<(), DecodeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, DecodeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}
