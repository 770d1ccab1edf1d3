//! The serde visitor behind every generated enum's `Deserialize`: the wire string is matched
//! where it lies (borrowed from the input when the decoder can), so a known value costs no
//! allocation; only an `Unknown` value copies its text.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Visitor};

/// Turns the string a deserializer hands over into an enum through its `from_wire`.
pub(crate) struct EnumTextVisitor<T> {
    from_wire: fn(&str) -> T,
    /// The enum's name, for "expected" messages.
    name: &'static str,
    value: PhantomData<fn() -> T>,
}

impl<T> EnumTextVisitor<T> {
    /// A visitor for the enum `name` whose strings `from_wire` maps to values.
    pub(crate) fn new(name: &'static str, from_wire: fn(&str) -> T) -> Self {
        Self {
            from_wire,
            name,
            value: PhantomData,
        }
    }
}

impl<T> Visitor<'_> for EnumTextVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a string value of enum {}", self.name)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        Ok((self.from_wire)(text))
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<T, E> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok((self.from_wire)(text)),
            Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(bytes), &self)),
        }
    }
}

// Tested through the generated enums that use it: tests/integration/api_records.rs
// (`enum_text_*`), since `wire` cannot name the types of the `api` layer above it.
