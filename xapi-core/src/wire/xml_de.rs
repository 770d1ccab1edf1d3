//! A serde `Deserializer` over the quick-xml pull-parser event stream of XML-RPC values.
//!
//! Values are decoded straight into the target type, without a [`Value`](super::Value) tree:
//! scalar text is borrowed from the input when it holds no entity, untyped text and
//! `<string>` follow the type asked for (see [`TextDeserializer`]), and subtrees the target
//! ignores are skipped without decoding.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::{BytesRef, Event};
use quick_xml::name::QName;
use serde::Deserialize as _;
use serde::de::{self, DeserializeSeed, Visitor};

use super::Limits;
use super::error::{DecodeError, DecodeErrorKind};
use super::text::{TextDeserializer, TextKind};

/// The start of a `<value>`, read far enough to know what it holds.
enum Head<'de> {
    /// A scalar (untyped text or a typed tag), fully read including `</value>`.
    Text(Cow<'de, str>, TextKind),
    /// `<nil/>`, fully read including `</value>`.
    Nil,
    /// `<array><data>` was read; the elements follow, unless `empty` (then fully read).
    Array { empty: bool },
    /// `<struct>` was read; the members follow, unless `empty` (then fully read).
    Struct { empty: bool },
}

/// The pull parser plus what the serde side needs: one event of lookahead, the position of the
/// current event, the nesting depth.
pub(crate) struct XmlDeserializer<'de> {
    reader: Reader<&'de [u8]>,
    peeked: Option<(Event<'de>, u64)>,
    /// Byte offset where the last event returned by [`Self::next`] starts.
    event_start: u64,
    depth: usize,
    max_depth: usize,
    /// A value head read by `deserialize_option` and handed on to the `Some` side.
    pending: Option<(Head<'de>, u64)>,
}

fn describe(event: &Event<'_>) -> String {
    match event {
        Event::Start(e) => format!("<{}>", e.name().as_ref()),
        Event::Empty(e) => format!("<{}/>", e.name().as_ref()),
        Event::End(e) => format!("</{}>", e.name().as_ref()),
        Event::Text(_) | Event::GeneralRef(_) => "text".to_owned(),
        Event::CData(_) => "CDATA".to_owned(),
        Event::Comment(_) => "a comment".to_owned(),
        Event::Decl(_) => "an XML declaration".to_owned(),
        Event::PI(_) => "a processing instruction".to_owned(),
        Event::DocType(_) => "a DOCTYPE".to_owned(),
        Event::Eof => "end of input".to_owned(),
    }
}

fn resolve_entity(entity: &BytesRef<'_>) -> Result<char, DecodeErrorKind> {
    if entity.is_char_ref() {
        return match entity.resolve_char_ref() {
            Ok(Some(c)) => Ok(c),
            _ => Err(DecodeErrorKind::UnknownEntity(entity.as_ref().to_owned())),
        };
    }
    match entity.as_ref() {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        other => Err(DecodeErrorKind::UnknownEntity(other.to_owned())),
    }
}

fn push_text<'de>(acc: &mut Option<Cow<'de, str>>, piece: Cow<'de, str>) {
    match acc {
        None => *acc = Some(piece),
        Some(existing) => existing.to_mut().push_str(&piece),
    }
}

fn push_char(acc: &mut Option<Cow<'_, str>>, c: char) {
    match acc {
        None => *acc = Some(Cow::Owned(c.to_string())),
        Some(existing) => existing.to_mut().push(c),
    }
}

fn scalar_kind(name: &str) -> Option<TextKind> {
    Some(match name {
        "string" => TextKind::Untyped,
        "int" | "i4" | "i8" => TextKind::Int,
        "double" => TextKind::Double,
        "boolean" => TextKind::Bool,
        "dateTime.iso8601" => TextKind::DateTime,
        "base64" => TextKind::Base64,
        _ => return None,
    })
}

impl<'de> XmlDeserializer<'de> {
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
        let mut reader = Reader::from_reader(input);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Ok(Self {
            reader,
            peeked: None,
            event_start: 0,
            depth: 0,
            max_depth: limits.max_depth,
            pending: None,
        })
    }

    /// Where the last event returned starts.
    pub(crate) fn position(&self) -> u64 {
        self.event_start
    }

    fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(self.event_start, kind)
    }

    fn unexpected(&self, expected: &'static str, found: &Event<'_>) -> DecodeError {
        self.error(DecodeErrorKind::Unexpected {
            expected,
            found: describe(found),
        })
    }

    /// The next raw event; DTDs are refused here, before anything else sees them.
    fn next(&mut self) -> Result<Event<'de>, DecodeError> {
        if let Some((event, start)) = self.peeked.take() {
            self.event_start = start;
            return Ok(event);
        }
        self.event_start = self.reader.buffer_position();
        match self.reader.read_event() {
            Ok(Event::DocType(_)) => Err(self.error(DecodeErrorKind::DoctypeNotAllowed)),
            Ok(event) => Ok(event),
            Err(e) => Err(DecodeError::new(
                self.reader.error_position(),
                DecodeErrorKind::Syntax(e.to_string()),
            )),
        }
    }

    /// The next structural event: start, empty or end tags, or `Eof`. Whitespace, comments,
    /// processing instructions and the XML declaration between elements are skipped; other
    /// text there is an error.
    fn next_tag(&mut self) -> Result<Event<'de>, DecodeError> {
        loop {
            let event = self.next()?;
            match &event {
                Event::Text(t) if t.as_ref().bytes().all(|b| b.is_ascii_whitespace()) => {}
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
                Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                    return Err(self.unexpected("an element", &event));
                }
                _ => return Ok(event),
            }
        }
    }

    fn peek_tag(&mut self) -> Result<&Event<'de>, DecodeError> {
        if self.peeked.is_none() {
            let event = self.next_tag()?;
            self.peeked = Some((event, self.event_start));
        }
        Ok(&self
            .peeked
            .as_ref()
            .expect("peeked was filled just above")
            .0)
    }

    pub(crate) fn expect_start(&mut self, name: &'static str) -> Result<(), DecodeError> {
        let event = self.next_tag()?;
        match &event {
            Event::Start(e) if e.name().as_ref() == name => Ok(()),
            Event::Eof => Err(self.error(DecodeErrorKind::UnexpectedEof)),
            _ => Err(self.unexpected(name, &event)),
        }
    }

    pub(crate) fn expect_end(&mut self, name: &'static str) -> Result<(), DecodeError> {
        let event = self.next_tag()?;
        match &event {
            Event::End(e) if e.name().as_ref() == name => Ok(()),
            Event::Eof => Err(self.error(DecodeErrorKind::UnexpectedEof)),
            _ => Err(self.unexpected(name, &event)),
        }
    }

    /// Whether the next tag opens element `name` (`<name>` or `<name/>`); the tag stays unread.
    pub(crate) fn next_is_start_of(&mut self, name: &str) -> Result<bool, DecodeError> {
        Ok(match self.peek_tag()? {
            Event::Start(e) | Event::Empty(e) => e.name().as_ref() == name,
            _ => false,
        })
    }

    /// Whether the next tag closes element `name`; the tag stays unread.
    fn next_is_end_of(&mut self, name: &str) -> Result<bool, DecodeError> {
        Ok(matches!(self.peek_tag()?, Event::End(e) if e.name().as_ref() == name))
    }

    /// Reads the next tag: `Ok(true)` for `<name>`, `Ok(false)` for `<name/>`.
    pub(crate) fn expect_start_or_empty(
        &mut self,
        name: &'static str,
    ) -> Result<bool, DecodeError> {
        let event = self.next_tag()?;
        match &event {
            Event::Start(e) if e.name().as_ref() == name => Ok(true),
            Event::Empty(e) if e.name().as_ref() == name => Ok(false),
            Event::Eof => Err(self.error(DecodeErrorKind::UnexpectedEof)),
            _ => Err(self.unexpected(name, &event)),
        }
    }

    /// Only whitespace, comments and processing instructions may follow the document.
    pub(crate) fn expect_eof(&mut self) -> Result<(), DecodeError> {
        let event = self.next_tag()?;
        match event {
            Event::Eof => Ok(()),
            other => Err(self.unexpected("end of input", &other)),
        }
    }

    /// Reads the text content of the element just opened, up to its end tag `name`.
    pub(crate) fn read_text(&mut self, name: &str) -> Result<Cow<'de, str>, DecodeError> {
        let mut acc = None;
        loop {
            match self.next()? {
                Event::Text(t) => push_text(&mut acc, t.into_inner()),
                Event::CData(c) => push_text(&mut acc, c.into_inner()),
                Event::GeneralRef(r) => {
                    let c = resolve_entity(&r).map_err(|kind| self.error(kind))?;
                    push_char(&mut acc, c);
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::End(e) if e.name().as_ref() == name => {
                    return Ok(acc.unwrap_or(Cow::Borrowed("")));
                }
                Event::Eof => return Err(self.error(DecodeErrorKind::UnexpectedEof)),
                other => return Err(self.unexpected("text", &other)),
            }
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

    /// Reads the start of the next `<value>` (see [`Head`]) and where it starts.
    fn head(&mut self) -> Result<(Head<'de>, u64), DecodeError> {
        if let Some(pending) = self.pending.take() {
            return Ok(pending);
        }
        let event = self.next_tag()?;
        let start = self.event_start;
        match &event {
            Event::Start(e) if e.name().as_ref() == "value" => {}
            Event::Empty(e) if e.name().as_ref() == "value" => {
                return Ok((Head::Text(Cow::Borrowed(""), TextKind::Untyped), start));
            }
            Event::Eof => return Err(self.error(DecodeErrorKind::UnexpectedEof)),
            _ => return Err(self.unexpected("<value>", &event)),
        }
        let mut acc: Option<Cow<'de, str>> = None;
        loop {
            let event = self.next()?;
            match event {
                Event::Text(t) => push_text(&mut acc, t.into_inner()),
                Event::CData(c) => push_text(&mut acc, c.into_inner()),
                Event::GeneralRef(r) => {
                    let c = resolve_entity(&r).map_err(|kind| self.error(kind))?;
                    push_char(&mut acc, c);
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::End(_) => {
                    // check_end_names guarantees this closes <value>
                    let text = acc.unwrap_or(Cow::Borrowed(""));
                    return Ok((Head::Text(text, TextKind::Untyped), start));
                }
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let is_empty = matches!(event, Event::Empty(_));
                    if acc
                        .as_deref()
                        .is_some_and(|t| !t.bytes().all(|b| b.is_ascii_whitespace()))
                    {
                        return Err(self.unexpected("text or one typed element", &event));
                    }
                    let name = e.name();
                    let head = if let Some(kind) = scalar_kind(name.as_ref()) {
                        let text = if is_empty {
                            Cow::Borrowed("")
                        } else {
                            self.read_text(name.as_ref())?
                        };
                        Head::Text(text, kind)
                    } else {
                        match name.as_ref() {
                            "nil" => {
                                if !is_empty {
                                    self.expect_end("nil")?;
                                }
                                Head::Nil
                            }
                            "array" => {
                                self.enter()?;
                                // `<array/>`, `<array></array>`, `<array><data/></array>` are
                                // all empty
                                let has_data = !is_empty
                                    && !self.next_is_end_of("array")?
                                    && self.expect_start_or_empty("data")?;
                                if !is_empty && !has_data {
                                    self.expect_end("array")?;
                                }
                                if has_data {
                                    return Ok((Head::Array { empty: false }, start));
                                }
                                self.depth -= 1;
                                Head::Array { empty: true }
                            }
                            "struct" => {
                                self.enter()?;
                                if !is_empty {
                                    return Ok((Head::Struct { empty: false }, start));
                                }
                                self.depth -= 1;
                                Head::Struct { empty: true }
                            }
                            _ => return Err(self.unexpected("a value type element", &event)),
                        }
                    };
                    self.expect_end("value")?;
                    return Ok((head, start));
                }
                Event::Eof => return Err(self.error(DecodeErrorKind::UnexpectedEof)),
                other => return Err(self.unexpected("a value", &other)),
            }
        }
    }

    /// After the last element or member: closes `</array></value>` (the `</data>` was read by
    /// the sequence) or `</value>` (the `</struct>` was read by the map).
    fn close_container(&mut self, array: bool) -> Result<(), DecodeError> {
        if array {
            self.expect_end("array")?;
        }
        self.expect_end("value")?;
        self.depth -= 1;
        Ok(())
    }

    /// Skips the rest of an opened array or struct without decoding it.
    fn skip_container(&mut self, array: bool) -> Result<(), DecodeError> {
        self.event_start = self.reader.buffer_position();
        let tag: &str = if array { "data" } else { "struct" };
        if let Some((event, start)) = self.peeked.take() {
            // the lookahead already consumed one tag of the subtree: finish what it opened
            match event {
                Event::End(e) if e.name().as_ref() == tag => {
                    return self.close_container(array);
                }
                Event::Start(e) => {
                    let name = e.name().as_ref().to_owned();
                    self.reader.read_to_end(QName(&name)).map_err(|err| {
                        DecodeError::new(start, DecodeErrorKind::Syntax(err.to_string()))
                    })?;
                }
                _ => {}
            }
        }
        self.reader.read_to_end(QName(tag)).map_err(|e| {
            DecodeError::new(
                self.reader.error_position(),
                DecodeErrorKind::Syntax(e.to_string()),
            )
        })?;
        self.close_container(array)
    }

    fn visit_array<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, DecodeError> {
        let mut seq = XmlSeq {
            de: self,
            done: false,
        };
        let out = visitor.visit_seq(&mut seq)?;
        if seq.done {
            self.close_container(true)?;
        } else {
            self.skip_container(true)?;
        }
        Ok(out)
    }

    fn visit_struct<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, DecodeError> {
        let mut map = XmlMap {
            de: self,
            done: false,
        };
        let out = visitor.visit_map(&mut map)?;
        if map.done {
            self.close_container(false)?;
        } else {
            self.skip_container(false)?;
        }
        Ok(out)
    }

    /// Reads `<member><name>...</name>` and returns the name; `None` at `</struct>`.
    pub(crate) fn next_member_name(&mut self) -> Result<Option<Cow<'de, str>>, DecodeError> {
        let event = self.next_tag()?;
        match &event {
            Event::End(e) if e.name().as_ref() == "struct" => return Ok(None),
            Event::Start(e) if e.name().as_ref() == "member" => {}
            Event::Eof => return Err(self.error(DecodeErrorKind::UnexpectedEof)),
            _ => return Err(self.unexpected("<member> or </struct>", &event)),
        }
        if self.expect_start_or_empty("name")? {
            self.read_text("name").map(Some)
        } else {
            Ok(Some(Cow::Borrowed("")))
        }
    }

    /// Opens the envelope struct of a response: `<value><struct>`.
    pub(crate) fn open_struct(&mut self) -> Result<bool, DecodeError> {
        let (head, start) = self.head()?;
        match head {
            Head::Struct { empty } => Ok(!empty),
            _ => Err(DecodeError::new(
                start,
                DecodeErrorKind::Unexpected {
                    expected: "a struct",
                    found: "another value".to_owned(),
                },
            )),
        }
    }

    /// Closes a struct opened by [`Self::open_struct`] whose `</struct>` was just read.
    pub(crate) fn close_struct(&mut self) -> Result<(), DecodeError> {
        self.close_container(false)
    }
}

struct XmlSeq<'a, 'de> {
    de: &'a mut XmlDeserializer<'de>,
    done: bool,
}

impl<'de> de::SeqAccess<'de> for &mut XmlSeq<'_, 'de> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        if self.done {
            return Ok(None);
        }
        if self.de.next_is_start_of("value")? {
            return seed.deserialize(&mut *self.de).map(Some);
        }
        let event = self.de.next_tag()?;
        match &event {
            Event::End(e) if e.name().as_ref() == "data" => {
                self.done = true;
                Ok(None)
            }
            Event::Eof => Err(self.de.error(DecodeErrorKind::UnexpectedEof)),
            _ => Err(self.de.unexpected("<value> or </data>", &event)),
        }
    }
}

struct XmlMap<'a, 'de> {
    de: &'a mut XmlDeserializer<'de>,
    done: bool,
}

impl<'de> de::MapAccess<'de> for &mut XmlMap<'_, 'de> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        if self.done {
            return Ok(None);
        }
        match self.de.next_member_name()? {
            None => {
                self.done = true;
                Ok(None)
            }
            Some(name) => {
                let start = self.de.position();
                seed.deserialize(TextDeserializer::untyped(name))
                    .map(Some)
                    .map_err(|e| e.placed_at(start))
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        let value = seed.deserialize(&mut *self.de)?;
        self.de.expect_end("member")?;
        Ok(value)
    }
}

macro_rules! type_driven {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            let (head, start) = self.head()?;
            match head {
                Head::Text(text, kind) => {
                    de::Deserializer::$method(TextDeserializer::new(text, kind), visitor)
                }
                Head::Nil => visitor.visit_unit(),
                Head::Array { empty: true } => visitor.visit_seq(de::value::SeqDeserializer::new(
                    std::iter::empty::<()>(),
                )),
                Head::Struct { empty: true } => visitor.visit_map(de::value::MapDeserializer::new(
                    std::iter::empty::<((), ())>(),
                )),
                Head::Array { empty: false } => self.visit_array(visitor),
                Head::Struct { empty: false } => self.visit_struct(visitor),
            }
            .map_err(|e| e.placed_at(start))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut XmlDeserializer<'de> {
    type Error = DecodeError;

    type_driven!(
        deserialize_any,
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
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
    );

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let (head, start) = self.head()?;
        match head {
            Head::Nil => visitor.visit_none(),
            head => {
                self.pending = Some((head, start));
                visitor.visit_some(&mut *self)
            }
        }
        .map_err(|e| e.placed_at(start))
    }

    /// Any value is accepted as `()` (a `void` result is `""`); containers are skipped.
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

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let (head, start) = self.head()?;
        match head {
            Head::Text(text, kind) => de::Deserializer::deserialize_enum(
                TextDeserializer::new(text, kind),
                name,
                variants,
                visitor,
            ),
            Head::Struct { empty: false } => match self.next_member_name()? {
                Some(variant) => visitor.visit_enum(XmlEnum { de: self, variant }),
                None => Err(DecodeError::unplaced(DecodeErrorKind::Mismatch(format!(
                    "expected enum {name} as a string or a struct of one member"
                )))),
            },
            _ => Err(DecodeError::unplaced(DecodeErrorKind::Mismatch(format!(
                "expected enum {name} as a string or a struct of one member"
            )))),
        }
        .map_err(|e| e.placed_at(start))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let (head, start) = self.head()?;
        match head {
            Head::Array { empty: false } => self.skip_container(true)?,
            Head::Struct { empty: false } => self.skip_container(false)?,
            _ => {}
        }
        visitor
            .visit_unit()
            .map_err(|e: DecodeError| e.placed_at(start))
    }
}

/// An enum variant with data, written as a struct of one member `{variant: value}` (the shape
/// [`to_value`](super::to_value) gives it).
struct XmlEnum<'a, 'de> {
    de: &'a mut XmlDeserializer<'de>,
    variant: Cow<'de, str>,
}

impl XmlEnum<'_, '_> {
    /// After the variant's value: `</member>`, then the struct must end.
    fn finish(self) -> Result<(), DecodeError> {
        self.de.expect_end("member")?;
        if self.de.next_member_name()?.is_some() {
            return Err(self.de.error(DecodeErrorKind::Mismatch(
                "an enum variant is a struct of exactly one member".to_owned(),
            )));
        }
        self.de.close_struct()
    }
}

impl<'de> de::EnumAccess<'de> for XmlEnum<'_, 'de> {
    type Error = DecodeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), DecodeError> {
        let variant = seed.deserialize(TextDeserializer::untyped(self.variant.clone()))?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for XmlEnum<'_, 'de> {
    type Error = DecodeError;

    fn unit_variant(self) -> Result<(), DecodeError> {
        de::IgnoredAny::deserialize(&mut *self.de)?;
        self.finish()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, DecodeError> {
        let value = seed.deserialize(&mut *self.de)?;
        self.finish()?;
        Ok(value)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let value = de::Deserializer::deserialize_seq(&mut *self.de, visitor)?;
        self.finish()?;
        Ok(value)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let value = de::Deserializer::deserialize_map(&mut *self.de, visitor)?;
        self.finish()?;
        Ok(value)
    }
}
