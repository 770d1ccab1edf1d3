//! A small JSON tokenizer implementing serde's `Deserializer`, lenient where xapi needs it.
//!
//! - Bare `NaN`, `Infinity`, `-Infinity` (Yojson's output for non-finite floats) are numbers.
//! - Integer literals decode into `i64` exactly (never through `f64`), also beyond 2^53.
//! - A string holding a number decodes into a numeric target (event records carry
//!   `"id": "1234"` and `"timestamp": "0.0"`), like the Go SDK does; object keys follow the type
//!   asked for the same way.
//! - Strings without escapes are borrowed from the input.
//!
//! Errors carry the byte offset where the offending token starts.

use std::borrow::Cow;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::Limits;
use super::error::{DecodeError, DecodeErrorKind};
use super::one_member_enum::one_member_enum_access;
use super::text::TextDeserializer;

/// A JSON number token.
#[derive(Debug, Clone, Copy)]
enum Number {
    Int(i64),
    UInt(u64),
    Float(f64),
}

/// A JSON integer of at most 18 digits (so that it cannot overflow an `i64`) with an optional
/// minus sign, and the length of its text; `None` when the token is anything else (a float,
/// a longer integer, a malformed number), which the general path then reads.
fn short_integer(rest: &[u8]) -> Option<(i64, usize)> {
    let negative = rest.first() == Some(&b'-');
    let digits_start = usize::from(negative);
    let mut value: i64 = 0;
    let mut end = digits_start;
    while let Some(&b) = rest.get(end) {
        if !b.is_ascii_digit() || end - digits_start == 18 {
            break;
        }
        value = value * 10 + i64::from(b - b'0');
        end += 1;
    }
    if end == digits_start {
        return None;
    }
    match rest.get(end) {
        Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') => None,
        _ => Some((if negative { -value } else { value }, end)),
    }
}

/// The tokenizer state.
pub(crate) struct JsonDeserializer<'de> {
    /// The whole input, validated as UTF-8 once up front so that strings are sliced, not
    /// re-validated.
    text: &'de str,
    input: &'de [u8],
    pos: usize,
    depth: usize,
    max_depth: usize,
}

impl<'de> JsonDeserializer<'de> {
    /// A deserializer over `input`, refusing inputs larger than the limit.
    pub(crate) fn new(input: &'de [u8], limits: &Limits) -> Result<Self, DecodeError> {
        if input.len() > limits.max_response_bytes {
            return Err(DecodeError::new(
                0,
                DecodeErrorKind::TooLarge {
                    size: input.len(),
                    limit: limits.max_response_bytes,
                },
            ));
        }
        let text = std::str::from_utf8(input).map_err(|e| {
            DecodeError::new(
                e.valid_up_to() as u64,
                DecodeErrorKind::Syntax("invalid UTF-8".to_owned()),
            )
        })?;
        Ok(Self {
            text,
            input,
            pos: 0,
            depth: 0,
            max_depth: limits.max_depth,
        })
    }

    pub(crate) fn position(&self) -> u64 {
        self.pos as u64
    }

    fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(self.pos as u64, kind)
    }

    fn unexpected(&self, expected: &'static str) -> DecodeError {
        match self.input.get(self.pos) {
            None => self.error(DecodeErrorKind::UnexpectedEof),
            Some(&b) => self.error(DecodeErrorKind::Unexpected {
                expected,
                found: if b.is_ascii_graphic() {
                    format!("'{}'", char::from(b))
                } else {
                    format!("byte 0x{b:02x}")
                },
            }),
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.input.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next non-whitespace byte, not consumed.
    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.input.get(self.pos).copied()
    }

    /// Consumes `byte` (after whitespace) or fails.
    pub(crate) fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), DecodeError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    /// Only whitespace may follow the document.
    pub(crate) fn expect_end(&mut self) -> Result<(), DecodeError> {
        if self.peek().is_some() {
            return Err(self.unexpected("end of input"));
        }
        Ok(())
    }

    fn eat_literal(&mut self, literal: &'static str) -> Result<(), DecodeError> {
        if self.input[self.pos..].starts_with(literal.as_bytes()) {
            self.pos += literal.len();
            Ok(())
        } else {
            Err(self.unexpected(literal))
        }
    }

    fn enter(&mut self) -> Result<(), DecodeError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(self.error(DecodeErrorKind::TooDeep {
                limit: self.max_depth,
            }));
        }
        Ok(())
    }

    /// Parses a string literal (the next byte must be `"`); borrowed when it has no escape.
    pub(crate) fn parse_str(&mut self) -> Result<Cow<'de, str>, DecodeError> {
        self.expect(b'"', "a string")?;
        self.parse_str_body()
    }

    /// Parses the rest of a string literal whose opening `"` was just consumed.
    fn parse_str_body(&mut self) -> Result<Cow<'de, str>, DecodeError> {
        let start = self.pos;
        let end = self.find_quote_or_backslash(start)?;
        if self.input[end] == b'"' {
            self.pos = end + 1;
            return Ok(Cow::Borrowed(self.slice(start, end)));
        }
        let mut buf = String::with_capacity(end - start + 16);
        let mut from = start;
        let mut at = end;
        loop {
            buf.push_str(self.slice(from, at));
            if self.input[at] == b'"' {
                self.pos = at + 1;
                return Ok(Cow::Owned(buf));
            }
            // a backslash at `at`
            let escape_start = at;
            self.pos = at + 2;
            match self.input.get(at + 1) {
                None => {
                    self.pos = self.input.len();
                    return Err(self.error(DecodeErrorKind::UnexpectedEof));
                }
                Some(b'"') => buf.push('"'),
                Some(b'\\') => buf.push('\\'),
                Some(b'/') => buf.push('/'),
                Some(b'b') => buf.push('\u{8}'),
                Some(b'f') => buf.push('\u{c}'),
                Some(b'n') => buf.push('\n'),
                Some(b'r') => buf.push('\r'),
                Some(b't') => buf.push('\t'),
                Some(b'u') => buf.push(self.parse_unicode_escape(escape_start)?),
                Some(_) => {
                    return Err(DecodeError::new(
                        escape_start as u64,
                        DecodeErrorKind::Syntax("invalid escape in a string".to_owned()),
                    ));
                }
            }
            from = self.pos;
            at = self.find_quote_or_backslash(from)?;
        }
    }

    /// The input between two byte offsets that sit next to ASCII bytes (quotes, backslashes,
    /// escapes), hence on character boundaries.
    fn slice(&self, from: usize, to: usize) -> &'de str {
        self.text
            .get(from..to)
            .expect("string pieces end next to ASCII bytes, on character boundaries")
    }

    /// The offset of the next `"` or `\` at or after `from`.
    ///
    /// `memchr2` (32 bytes a step) beats a word-at-a-time scan even on the short strings of a
    /// XAPI response: measured at 54 against 75 instructions a string over 500 VM records.
    fn find_quote_or_backslash(&mut self, from: usize) -> Result<usize, DecodeError> {
        if let Some(i) = memchr::memchr2(b'"', b'\\', &self.input[from..]) {
            Ok(from + i)
        } else {
            self.pos = self.input.len();
            Err(self.error(DecodeErrorKind::UnexpectedEof))
        }
    }

    fn hex4(&mut self, escape_start: usize) -> Result<u32, DecodeError> {
        let digits = self
            .input
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| DecodeError::new(escape_start as u64, DecodeErrorKind::UnexpectedEof))?;
        let text = std::str::from_utf8(digits).ok();
        let n = text
            .and_then(|t| u32::from_str_radix(t, 16).ok())
            .ok_or_else(|| {
                DecodeError::new(
                    escape_start as u64,
                    DecodeErrorKind::Syntax("invalid \\u escape".to_owned()),
                )
            })?;
        self.pos += 4;
        Ok(n)
    }

    fn parse_unicode_escape(&mut self, escape_start: usize) -> Result<char, DecodeError> {
        let first = self.hex4(escape_start)?;
        let code = if (0xD800..0xDC00).contains(&first) {
            if !self.input[self.pos..].starts_with(b"\\u") {
                return Err(DecodeError::new(
                    escape_start as u64,
                    DecodeErrorKind::Syntax("unpaired surrogate in \\u escape".to_owned()),
                ));
            }
            self.pos += 2;
            let second = self.hex4(escape_start)?;
            if !(0xDC00..0xE000).contains(&second) {
                return Err(DecodeError::new(
                    escape_start as u64,
                    DecodeErrorKind::Syntax("unpaired surrogate in \\u escape".to_owned()),
                ));
            }
            0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        } else {
            first
        };
        char::from_u32(code).ok_or_else(|| {
            DecodeError::new(
                escape_start as u64,
                DecodeErrorKind::Syntax("invalid \\u escape".to_owned()),
            )
        })
    }

    /// Parses a number token, including `NaN`, `Infinity`, `-Infinity`.
    fn parse_number(&mut self) -> Result<Number, DecodeError> {
        self.skip_ws();
        let start = self.pos;
        let rest = &self.input[start..];
        if let Some((value, len)) = short_integer(rest) {
            self.pos += len;
            return Ok(Number::Int(value));
        }
        for (literal, value) in [
            ("NaN", f64::NAN),
            ("Infinity", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
        ] {
            if rest.starts_with(literal.as_bytes()) {
                self.pos += literal.len();
                return Ok(Number::Float(value));
            }
        }
        let len = rest
            .iter()
            .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .unwrap_or(rest.len());
        let token = &rest[..len];
        let text = std::str::from_utf8(token).expect("number tokens are ASCII");
        let bad = || {
            DecodeError::new(
                start as u64,
                if token.is_empty() {
                    if rest.is_empty() {
                        DecodeErrorKind::UnexpectedEof
                    } else {
                        DecodeErrorKind::Unexpected {
                            expected: "a JSON value",
                            found: format!("'{}'", char::from(rest[0])),
                        }
                    }
                } else {
                    DecodeErrorKind::InvalidNumber {
                        text: text.to_owned(),
                        ty: "JSON number",
                    }
                },
            )
        };
        let digits = text.strip_prefix('-').unwrap_or(text);
        if !digits.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(bad());
        }
        let number = if token.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) {
            text.parse::<f64>().map(Number::Float).map_err(|_| bad())?
        } else if let Ok(n) = text.parse::<i64>() {
            Number::Int(n)
        } else if let Ok(n) = text.parse::<u64>() {
            Number::UInt(n)
        } else {
            text.parse::<f64>().map(Number::Float).map_err(|_| bad())?
        };
        self.pos += len;
        Ok(number)
    }

    /// Skips one value without decoding it.
    pub(crate) fn skip_value(&mut self) -> Result<(), DecodeError> {
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                loop {
                    let at = self.find_quote_or_backslash(self.pos)?;
                    self.pos = at + 1;
                    if self.input[at] == b'"' {
                        return Ok(());
                    }
                    self.pos += 1;
                    if self.pos > self.input.len() {
                        self.pos = self.input.len();
                        return Err(self.error(DecodeErrorKind::UnexpectedEof));
                    }
                }
            }
            Some(b'[') => {
                self.enter()?;
                self.pos += 1;
                if self.peek() == Some(b']') {
                    self.pos += 1;
                } else {
                    loop {
                        self.skip_value()?;
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b']') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(self.unexpected("',' or ']'")),
                        }
                    }
                }
                self.depth -= 1;
                Ok(())
            }
            Some(b'{') => {
                self.enter()?;
                self.pos += 1;
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                } else {
                    loop {
                        self.parse_str()?;
                        self.expect(b':', "':'")?;
                        self.skip_value()?;
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b'}') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(self.unexpected("',' or '}'")),
                        }
                    }
                }
                self.depth -= 1;
                Ok(())
            }
            Some(b't') => self.eat_literal("true"),
            Some(b'f') => self.eat_literal("false"),
            Some(b'n') => self.eat_literal("null"),
            _ => self.parse_number().map(drop),
        }
    }

    fn visit_number<V: Visitor<'de>>(
        &mut self,
        visitor: V,
        integral: bool,
    ) -> Result<V::Value, DecodeError> {
        match self.parse_number()? {
            Number::Int(n) => visitor.visit_i64(n),
            Number::UInt(n) => visitor.visit_u64(n),
            Number::Float(x) if integral && x.fract() == 0.0 && x.abs() < 9.2e18 => {
                visitor.visit_i64(x as i64)
            }
            Number::Float(x) => visitor.visit_f64(x),
        }
    }

    /// Visits the string literal at the current position (which holds its opening `"`).
    fn visit_string<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, DecodeError> {
        self.pos += 1;
        match self.parse_str_body()? {
            Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
            Cow::Owned(s) => visitor.visit_string(s),
        }
    }

    fn visit_array<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, DecodeError> {
        self.enter()?;
        self.pos += 1;
        let mut seq = JsonSeq {
            de: self,
            first: true,
            done: false,
        };
        let out = visitor.visit_seq(&mut seq)?;
        if !seq.done {
            // the visitor stopped early: skip what is left
            while seq.advance()? {
                seq.de.skip_value()?;
            }
        }
        self.depth -= 1;
        Ok(out)
    }

    fn visit_object<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, DecodeError> {
        self.enter()?;
        self.pos += 1;
        let mut map = JsonMap {
            de: self,
            first: true,
            done: false,
        };
        let out = visitor.visit_map(&mut map)?;
        if !map.done {
            while map.advance()? {
                map.de.parse_str()?;
                map.de.expect(b':', "':'")?;
                map.de.skip_value()?;
            }
        }
        self.depth -= 1;
        Ok(out)
    }
}

struct JsonSeq<'a, 'de> {
    de: &'a mut JsonDeserializer<'de>,
    first: bool,
    done: bool,
}

impl JsonSeq<'_, '_> {
    /// Moves to the next element: `true` if there is one, `false` at `]` (consumed).
    fn advance(&mut self) -> Result<bool, DecodeError> {
        if self.done {
            return Ok(false);
        }
        match self.de.peek() {
            Some(b']') => {
                self.de.pos += 1;
                self.done = true;
                return Ok(false);
            }
            Some(b',') if !self.first => self.de.pos += 1,
            _ if self.first => {}
            _ => return Err(self.de.unexpected("',' or ']'")),
        }
        self.first = false;
        Ok(true)
    }
}

impl<'de> de::SeqAccess<'de> for &mut JsonSeq<'_, 'de> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        if self.advance()? {
            seed.deserialize(&mut *self.de).map(Some)
        } else {
            Ok(None)
        }
    }
}

struct JsonMap<'a, 'de> {
    de: &'a mut JsonDeserializer<'de>,
    first: bool,
    done: bool,
}

impl JsonMap<'_, '_> {
    /// Moves to the next member: `true` if there is one, `false` at `}` (consumed).
    fn advance(&mut self) -> Result<bool, DecodeError> {
        if self.done {
            return Ok(false);
        }
        match self.de.peek() {
            Some(b'}') => {
                self.de.pos += 1;
                self.done = true;
                return Ok(false);
            }
            Some(b',') if !self.first => self.de.pos += 1,
            _ if self.first => {}
            _ => return Err(self.de.unexpected("',' or '}'")),
        }
        self.first = false;
        Ok(true)
    }
}

impl<'de> de::MapAccess<'de> for &mut JsonMap<'_, 'de> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        if !self.advance()? {
            return Ok(None);
        }
        self.de.skip_ws();
        let start = self.de.position();
        let key = self.de.parse_str()?;
        let key = seed
            .deserialize(TextDeserializer::untyped(key))
            .map_err(|e| e.placed_at(start))?;
        self.de.expect(b':', "':'")?;
        Ok(Some(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        seed.deserialize(&mut *self.de)
    }
}

macro_rules! numeric {
    ($($method:ident => $integral:expr),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            let start = self.peek_start();
            match self.current() {
                Some(b'"') => {
                    let text = self.parse_str()?;
                    de::Deserializer::$method(TextDeserializer::untyped(text), visitor)
                }
                Some(b'-' | b'0'..=b'9' | b'N' | b'I') => self.visit_number(visitor, $integral),
                _ => self.deserialize_any(visitor),
            }
            .map_err(|e| e.placed_at(start))
        }
    )*};
}

impl JsonDeserializer<'_> {
    fn peek_start(&mut self) -> u64 {
        self.skip_ws();
        self.position()
    }

    /// The byte at the current position (after [`Self::peek_start`] skipped whitespace).
    fn current(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }
}

impl<'de> de::Deserializer<'de> for &mut JsonDeserializer<'de> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let start = self.peek_start();
        match self.current() {
            Some(b'"') => self.visit_string(visitor),
            Some(b'[') => self.visit_array(visitor),
            Some(b'{') => self.visit_object(visitor),
            Some(b't') => {
                self.eat_literal("true")?;
                visitor.visit_bool(true)
            }
            Some(b'f') => {
                self.eat_literal("false")?;
                visitor.visit_bool(false)
            }
            Some(b'n') => {
                self.eat_literal("null")?;
                visitor.visit_unit()
            }
            _ => self.visit_number(visitor, false),
        }
        .map_err(|e| e.placed_at(start))
    }

    numeric!(
        deserialize_i8 => true,
        deserialize_i16 => true,
        deserialize_i32 => true,
        deserialize_i64 => true,
        deserialize_i128 => true,
        deserialize_u8 => true,
        deserialize_u16 => true,
        deserialize_u32 => true,
        deserialize_u64 => true,
        deserialize_u128 => true,
        deserialize_f32 => false,
        deserialize_f64 => false,
        deserialize_bool => false,
    );

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_byte_buf(visitor)
    }

    /// Bytes travel as base64 strings.
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let start = self.peek_start();
        if self.current() == Some(b'"') {
            let text = self.parse_str()?;
            de::Deserializer::deserialize_byte_buf(
                TextDeserializer::new(text, super::text::TextKind::Base64),
                visitor,
            )
            .map_err(|e| e.placed_at(start))
        } else {
            self.deserialize_any(visitor)
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let start = self.peek_start();
        if self.current() == Some(b'n') {
            self.eat_literal("null")?;
            visitor.visit_none()
        } else {
            visitor.visit_some(&mut *self)
        }
        .map_err(|e| e.placed_at(start))
    }

    /// Any value is accepted as `()` (a `void` result is `""`).
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_ignored_any(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_ignored_any(visitor)
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
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let start = self.peek_start();
        match self.current() {
            Some(b'"') => match self.parse_str()? {
                Cow::Borrowed(s) => visitor.visit_enum(s.into_deserializer()),
                Cow::Owned(s) => visitor.visit_enum(s.into_deserializer()),
            },
            Some(b'{') => {
                self.enter()?;
                self.pos += 1;
                let variant = self.parse_str()?;
                self.expect(b':', "':'")?;
                visitor.visit_enum(JsonEnum { de: self, variant })
            }
            _ => Err(DecodeError::unplaced(DecodeErrorKind::Mismatch(format!(
                "expected enum {name} as a string or an object of one member"
            )))),
        }
        .map_err(|e| e.placed_at(start))
    }

    serde::forward_to_deserialize_any! {
        char str string seq tuple tuple_struct map struct identifier
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.skip_value()?;
        visitor.visit_unit()
    }
}

/// An enum variant with data, written as an object of one member `{"variant": value}`.
struct JsonEnum<'a, 'de> {
    de: &'a mut JsonDeserializer<'de>,
    variant: Cow<'de, str>,
}

impl JsonEnum<'_, '_> {
    /// After the variant's value: the object must end.
    fn finish(self) -> Result<(), DecodeError> {
        self.de
            .expect(b'}', "'}' (an enum variant is an object of one member)")?;
        self.de.depth -= 1;
        Ok(())
    }
}

one_member_enum_access!(JsonEnum);

#[cfg(test)]
mod tests {
    use super::*;

    fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, DecodeError> {
        let mut de = JsonDeserializer::new(text.as_bytes(), &Limits::default())?;
        let value = T::deserialize(&mut de)?;
        de.expect_end()?;
        Ok(value)
    }

    #[test]
    fn short_integers_take_the_fast_path_and_others_fall_back() {
        assert_eq!(short_integer(b"0,"), Some((0, 1)));
        assert_eq!(short_integer(b"-42}"), Some((-42, 3)));
        assert_eq!(
            short_integer(b"999999999999999999"),
            Some((999_999_999_999_999_999, 18))
        );
        for token in [
            &b"1234567890123456789"[..],
            b"1.5",
            b"1e3",
            b"-",
            b"+1",
            b"1-2",
            b"",
            b"x",
        ] {
            assert_eq!(
                short_integer(token),
                None,
                "{}",
                String::from_utf8_lossy(token)
            );
        }
    }

    #[test]
    fn integers_of_every_length_decode_exactly() {
        for text in [
            "0",
            "-0",
            "7",
            "-9223372036854775808",
            "9223372036854775807",
            "999999999999999999",
            "1000000000000000000",
        ] {
            let expected: i64 = text.parse().expect("the test's literals are i64");
            assert_eq!(decode::<i64>(text).ok(), Some(expected), "{text}");
        }
        assert_eq!(decode::<u64>("18446744073709551615").ok(), Some(u64::MAX));
        assert_eq!(decode::<f64>("-2.5e3").ok(), Some(-2500.0));
        assert!(decode::<i64>("1-2").is_err());
    }

    #[test]
    fn string_ends_are_found_at_every_offset() {
        for len in 0..150 {
            let body: String = "é".repeat(len / 2) + &"a".repeat(len % 2);
            let plain = format!("\"{body}\"");
            assert_eq!(
                decode::<String>(&plain).ok().as_deref(),
                Some(&*body),
                "{len}"
            );
            let escaped = format!("\"{body}\\n{body}\"");
            assert_eq!(
                decode::<String>(&escaped).ok(),
                Some(format!("{body}\n{body}")),
                "{len}"
            );
            let unterminated = format!("\"{body}");
            let err = decode::<String>(&unterminated).expect_err("no closing quote");
            assert!(
                matches!(err.kind, DecodeErrorKind::UnexpectedEof),
                "{len}: {err}"
            );
        }
    }
}
