//! A serde `Deserializer` over one piece of scalar text, driven by the type asked for.
//!
//! XML-RPC sends strings and ints alike as untyped text, struct keys are always strings (even
//! for `(int -> string) map` or `(VM ref -> ...) map`), and JSON-RPC event records carry numbers
//! in strings. This deserializer turns such text into whatever the target type wants: an
//! `i64` parses the digits, an `f64` accepts `inf`/`nan`, a `bool` accepts `0`/`1`, an enum takes
//! the text as its variant name, and `deserialize_any` sees the string (or, for typed XML-RPC
//! scalars, the type the tag declares).

use std::borrow::Cow;

use base64::Engine as _;
use serde::de::{self, IntoDeserializer, Visitor};

use super::error::{DecodeError, DecodeErrorKind};
use super::number::{parse_bool, parse_f64, parse_i64, parse_u64};

/// What the wire said the text is (XML-RPC type tags); JSON strings and keys are `Untyped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextKind {
    /// Untyped `<value>` text, `<string>`, a JSON string or a struct key.
    Untyped,
    /// `<int>`, `<i4>`, `<i8>`.
    Int,
    /// `<double>`.
    Double,
    /// `<boolean>`.
    Bool,
    /// `<dateTime.iso8601>`.
    DateTime,
    /// `<base64>`.
    Base64,
}

/// One scalar's text and what the wire said it is.
pub(crate) struct TextDeserializer<'de> {
    text: Cow<'de, str>,
    kind: TextKind,
}

impl<'de> TextDeserializer<'de> {
    pub(crate) fn new(text: Cow<'de, str>, kind: TextKind) -> Self {
        Self { text, kind }
    }

    pub(crate) fn untyped(text: Cow<'de, str>) -> Self {
        Self::new(text, TextKind::Untyped)
    }

    fn visit_text<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.text {
            Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
            Cow::Owned(s) => visitor.visit_string(s),
        }
    }

    fn decoded_base64(&self) -> Result<Vec<u8>, DecodeError> {
        let compact: String = self
            .text
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|e| DecodeError::unplaced(DecodeErrorKind::InvalidBase64(e.to_string())))
    }
}

macro_rules! deserialize_signed {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            let n = parse_i64(&self.text)?;
            let n = <$ty>::try_from(n).map_err(|_| {
                super::number::invalid_number(&self.text, stringify!($ty))
            })?;
            visitor.$visit(n)
        }
    )*};
}

macro_rules! deserialize_unsigned {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            let n = parse_u64(&self.text)?;
            let n = <$ty>::try_from(n).map_err(|_| {
                super::number::invalid_number(&self.text, stringify!($ty))
            })?;
            visitor.$visit(n)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for TextDeserializer<'de> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.kind {
            TextKind::Untyped => self.visit_text(visitor),
            TextKind::Int => visitor.visit_i64(parse_i64(&self.text)?),
            TextKind::Double => visitor.visit_f64(parse_f64(&self.text)?),
            TextKind::Bool => visitor.visit_bool(parse_bool(&self.text)?),
            TextKind::DateTime => visitor.visit_newtype_struct(Self::untyped(self.text)),
            TextKind::Base64 => visitor.visit_byte_buf(self.decoded_base64()?),
        }
    }

    deserialize_signed!(
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
    );

    deserialize_unsigned!(
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
    );

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_i128(i128::from(parse_i64(&self.text)?))
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_u128(u128::from(parse_u64(&self.text)?))
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_f32(parse_f64(&self.text)? as f32)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_f64(parse_f64(&self.text)?)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_bool(parse_bool(&self.text)?)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.visit_text(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.visit_text(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.visit_text(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.kind == TextKind::Base64 {
            visitor.visit_byte_buf(self.decoded_base64()?)
        } else {
            match self.text {
                Cow::Borrowed(s) => visitor.visit_borrowed_bytes(s.as_bytes()),
                Cow::Owned(s) => visitor.visit_byte_buf(s.into_bytes()),
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_some(self)
    }

    /// Any text is accepted as `()`: a `void` result is `""`, and asking for `()` means the
    /// caller does not care about the value.
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        match self.text {
            Cow::Borrowed(s) => visitor.visit_enum(s.into_deserializer()),
            Cow::Owned(s) => visitor.visit_enum(s.into_deserializer()),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.visit_text(visitor)
    }

    serde::forward_to_deserialize_any! {
        seq tuple tuple_struct map struct
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the codec must be exact: floats are compared bit for bit
mod tests {
    use std::collections::HashMap;

    use serde::Deserialize;

    use super::*;

    fn from_text<'de, T: Deserialize<'de>>(text: &'de str) -> Result<T, DecodeError> {
        T::deserialize(TextDeserializer::untyped(Cow::Borrowed(text)))
    }

    #[derive(Debug, Deserialize, PartialEq)]
    enum Power {
        Halted,
        Running,
    }

    #[test]
    fn text_follows_the_requested_type() {
        assert_eq!(from_text::<i64>("4294967296").ok(), Some(4_294_967_296));
        assert_eq!(from_text::<u8>("255").ok(), Some(255));
        assert!(from_text::<u8>("256").is_err());
        assert_eq!(from_text::<f64>("-inf").ok(), Some(f64::NEG_INFINITY));
        assert_eq!(from_text::<bool>("1").ok(), Some(true));
        assert_eq!(from_text::<String>("42").ok().as_deref(), Some("42"));
        assert_eq!(from_text::<&str>("borrowed").ok(), Some("borrowed"));
        assert_eq!(from_text::<Power>("Running").ok(), Some(Power::Running));
        assert_eq!(from_text::<Option<i64>>("7").ok(), Some(Some(7)));
        assert_eq!(from_text::<()>("").ok(), Some(()));
    }

    #[test]
    fn bad_text_for_a_number_is_an_invalid_number() {
        let err = from_text::<i64>("12x").expect_err("not a number");
        assert!(matches!(
            err.kind,
            DecodeErrorKind::InvalidNumber { ty: "i64", .. }
        ));
        let err = from_text::<Power>("Paused").expect_err("unknown variant");
        assert!(matches!(err.kind, DecodeErrorKind::Mismatch(_)));
        assert!(from_text::<HashMap<String, String>>("x").is_err());
    }

    #[test]
    fn typed_kinds_drive_deserialize_any() {
        use crate::wire::Value;
        let any = |text: &'static str, kind| {
            Value::deserialize(TextDeserializer::new(Cow::Borrowed(text), kind)).ok()
        };
        assert_eq!(
            any("42", TextKind::Untyped),
            Some(Value::String("42".into()))
        );
        assert_eq!(any("42", TextKind::Int), Some(Value::Int(42)));
        assert_eq!(any("0.5", TextKind::Double), Some(Value::Double(0.5)));
        assert_eq!(any("1", TextKind::Bool), Some(Value::Bool(true)));
        assert_eq!(
            any("aGk=", TextKind::Base64),
            Some(Value::Base64(b"hi".to_vec()))
        );
        assert_eq!(
            any("20250319T04:16:24Z", TextKind::DateTime),
            Some(Value::DateTime(
                "20250319T04:16:24Z".parse().expect("valid datetime")
            ))
        );
    }
}
