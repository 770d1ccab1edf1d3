//! A serde `Deserializer` over the quick-xml pull-parser event stream of XML-RPC values.
//!
//! Values are decoded straight into the target type, without a [`Value`](super::Value) tree:
//! scalar text is borrowed from the input when it holds no entity, untyped text and
//! `<string>` follow the type asked for (see [`TextDeserializer`]), and subtrees the target
//! ignores are skipped without decoding.
//!
//! Plain markup (tags without attributes or whitespace, text without entities), which is
//! nearly all of a XAPI response, is read straight off the input by the scanners of
//! [`xml_scan`](super::xml_scan), whole members and untyped values at a time, skipping the
//! whitespace that pretty-printed bodies put between elements; quick-xml reads everything
//! else. End tags are checked against the open elements here, for both.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::errors::IllFormedError;
use quick_xml::events::{BytesRef, Event};
use serde::de::{self, DeserializeSeed, Visitor};

use super::Limits;
use super::error::{DecodeError, DecodeErrorKind};
use super::one_member_enum::one_member_enum_access;
use super::text::{TextDeserializer, TextKind};
use super::xml_scan::{
    empty_container, member_name, plain_event, skip_blank, typed_value, untyped_value,
};

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
    /// quick-xml over the unread input; [`plain_event`] takes plain markup off its front.
    reader: Reader<&'de [u8]>,
    /// The whole input.
    input: &'de [u8],
    /// The longest prefix of the input that is valid UTF-8 (all of it, for a valid document):
    /// the fast path reads only there and leaves the error to quick-xml.
    valid: &'de str,
    /// Bytes taken off the reader's input by the fast path: quick-xml's own positions lag by
    /// this much.
    skipped: u64,
    /// Whether quick-xml stands between two pieces of markup (its last event ended with `>`),
    /// the one state in which the fast path may take input off its front.
    fast_path_ok: bool,
    /// Names of the open elements, innermost last: end tags are checked against them here,
    /// for the fast path and quick-xml alike.
    open: Vec<&'de [u8]>,
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
        let valid = match std::str::from_utf8(input) {
            Ok(valid) => valid,
            Err(e) => std::str::from_utf8(&input[..e.valid_up_to()])
                .expect("the input is valid UTF-8 up to valid_up_to"),
        };
        let mut reader = Reader::from_reader(input);
        let config = reader.config_mut();
        // nesting is checked in `next`, over the events of both the fast path and quick-xml
        config.check_end_names = false;
        config.allow_unmatched_ends = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Ok(Self {
            reader,
            input,
            valid,
            skipped: 0,
            fast_path_ok: false,
            open: Vec::new(),
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

    /// The unread input and its offset, when the fast path may read it: quick-xml stands
    /// between two pieces of markup, nothing was looked ahead, and the input is UTF-8 there.
    ///
    /// Whitespace at the front is consumed first. Every caller reads where only elements may
    /// come (before a `<value>` or a `<member>`, or an end tag), where whitespace is not
    /// content and the event-by-event path skips it too ([`Self::next_tag`]); pretty-printed
    /// bodies (`xmlrpc.client`'s) have it between all their tags.
    fn fast_rest(&mut self) -> Option<(&'de str, usize)> {
        if !self.fast_path_ok || self.peeked.is_some() {
            return None;
        }
        let start = self.input.len() - self.reader.get_ref().len();
        let rest = self.valid.get(start..)?;
        let trimmed = skip_blank(rest);
        let blank = rest.len() - trimmed.len();
        if blank > 0 {
            self.advance(blank);
        }
        Some((trimmed, start + blank))
    }

    /// Takes `len` bytes read by the fast path off the front of quick-xml's input.
    fn advance(&mut self, len: usize) {
        let rest: &'de [u8] = self.reader.get_ref();
        *self.reader.get_mut() = &rest[len..];
        self.skipped += len as u64;
    }

    /// The next raw event; DTDs are refused here, before anything else sees them.
    fn next(&mut self) -> Result<Event<'de>, DecodeError> {
        if let Some((event, start)) = self.peeked.take() {
            self.event_start = start;
            return Ok(event);
        }
        let rest: &'de [u8] = self.reader.get_ref();
        let start = self.input.len() - rest.len();
        self.event_start = start as u64;
        let fast = match self.valid.get(start..) {
            Some(valid_rest) if self.fast_path_ok => plain_event(valid_rest),
            _ => None,
        };
        let event = match fast {
            Some((event, len)) => {
                *self.reader.get_mut() = &rest[len..];
                self.skipped += len as u64;
                event
            }
            None => self.read_quick_xml()?,
        };
        match &event {
            Event::Start(e) => {
                let name_start = start + 1;
                let name_end = name_start + e.name().as_ref().len();
                self.open.push(&self.input[name_start..name_end]);
            }
            Event::End(e) => self.check_end(e.name().as_ref().as_bytes())?,
            _ => {}
        }
        Ok(event)
    }

    /// The next event from quick-xml itself.
    fn read_quick_xml(&mut self) -> Result<Event<'de>, DecodeError> {
        let event = self.reader.read_event();
        self.fast_path_ok = !matches!(
            event,
            Ok(Event::Text(_) | Event::Eof) | Err(_) // after text, quick-xml sits at a `<`
        );
        match event {
            Ok(Event::DocType(_)) => Err(self.error(DecodeErrorKind::DoctypeNotAllowed)),
            Ok(event) => Ok(event),
            Err(e) => Err(DecodeError::new(
                self.reader.error_position() + self.skipped,
                DecodeErrorKind::Syntax(e.to_string()),
            )),
        }
    }

    /// Checks that the end tag `name` just read closes the innermost open element.
    fn check_end(&mut self, name: &[u8]) -> Result<(), DecodeError> {
        let ill_formed = match self.open.pop() {
            Some(open) if open == name => return Ok(()),
            Some(open) => IllFormedError::MismatchedEndTag {
                expected: String::from_utf8_lossy(open).into_owned(),
                found: String::from_utf8_lossy(name).into_owned(),
            },
            None => IllFormedError::UnmatchedEndTag(String::from_utf8_lossy(name).into_owned()),
        };
        Err(self.error(DecodeErrorKind::Syntax(
            quick_xml::Error::IllFormed(ill_formed).to_string(),
        )))
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

    /// Reads `</name>` when it comes next as plain markup, without building an event;
    /// `Ok(false)` (nothing read) otherwise.
    ///
    /// Inlined: every caller names the tag with a literal, so the comparisons become a few
    /// fixed-size loads instead of `memcmp` calls (this runs for every member and value).
    #[allow(clippy::inline_always)] // measured: 92.3M -> 84.8M instructions, 500 VMs
    #[inline(always)]
    fn take_plain_end(&mut self, name: &str) -> Result<bool, DecodeError> {
        if let Some((rest, start)) = self.fast_rest() {
            let bytes = rest.as_bytes();
            if bytes.starts_with(b"</")
                && bytes[2..].starts_with(name.as_bytes())
                && bytes.get(2 + name.len()) == Some(&b'>')
            {
                self.event_start = start as u64;
                if self
                    .open
                    .last()
                    .is_some_and(|open| *open == name.as_bytes())
                {
                    self.open.pop();
                } else {
                    self.check_end(name.as_bytes())?;
                }
                self.advance(name.len() + 3);
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Reads `<value><struct>` or `<value><array><data>` when it comes next as plain markup:
    /// the head of a non-empty container, as [`Self::head`] would return it.
    fn take_plain_container(&mut self) -> Result<Option<(Head<'de>, u64)>, DecodeError> {
        const STRUCT: &str = "<value><struct>";
        const ARRAY: &str = "<value><array><data>";
        let Some((rest, start)) = self.fast_rest() else {
            return Ok(None);
        };
        let (head, tags, container_at): (_, &[(usize, usize)], usize) =
            if rest.starts_with(STRUCT) && !rest[STRUCT.len()..].starts_with("</struct>") {
                (Head::Struct { empty: false }, &[(1, 5), (8, 6)], 7)
            } else if rest.starts_with(ARRAY) && !rest[ARRAY.len()..].starts_with("</data>") {
                (Head::Array { empty: false }, &[(1, 5), (8, 5), (15, 4)], 7)
            } else {
                return Ok(None);
            };
        for &(at, len) in tags {
            self.open.push(&self.input[start + at..start + at + len]);
        }
        self.advance(if matches!(head, Head::Struct { .. }) {
            STRUCT.len()
        } else {
            ARRAY.len()
        });
        // positions as on the event-by-event path: at `<struct>` or `<array>`
        self.event_start = (start + container_at) as u64;
        self.enter()?;
        Ok(Some((head, start as u64)))
    }

    #[inline]
    pub(crate) fn expect_end(&mut self, name: &'static str) -> Result<(), DecodeError> {
        if self.take_plain_end(name)? {
            return Ok(());
        }
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
        if let Some(head) = self.take_plain_container()? {
            return Ok(head);
        }
        if let Some((rest, start)) = self.fast_rest() {
            if let Some((text, end_tag, len)) = untyped_value(rest) {
                self.event_start = (start + end_tag) as u64;
                self.advance(len);
                return Ok((
                    Head::Text(Cow::Borrowed(text), TextKind::Untyped),
                    start as u64,
                ));
            }
            if let Some((tag, text, end_tag, len)) = typed_value(rest) {
                let kind = scalar_kind(tag).expect("typed_value only takes scalar type tags");
                self.event_start = (start + end_tag) as u64;
                self.advance(len);
                return Ok((Head::Text(Cow::Borrowed(text), kind), start as u64));
            }
            if let Some((array, len)) = empty_container(rest) {
                // at `<array>` / `<struct>`, as on the event-by-event path
                self.event_start = (start + 7) as u64;
                // the same depth check as the event-by-event path, for the same limit
                self.enter()?;
                self.depth -= 1;
                self.advance(len);
                let head = if array {
                    Head::Array { empty: true }
                } else {
                    Head::Struct { empty: true }
                };
                return Ok((head, start as u64));
            }
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
                    // `next` checked that this closes <value>
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

    /// Skips the rest of an opened array or struct without decoding it, up to and including
    /// its `</data>` or `</struct>` (nesting is checked on the way, as everywhere).
    fn skip_container(&mut self, array: bool) -> Result<(), DecodeError> {
        // `<data>` or `<struct>` is the innermost open element, unless the lookahead already
        // read one more tag
        let depth = match self.peeked.take() {
            Some((Event::End(_), start)) => {
                // the lookahead read the container's own end tag
                self.event_start = start;
                return self.close_container(array);
            }
            Some((Event::Start(_), _)) => self.open.len() - 1,
            _ => self.open.len(),
        };
        loop {
            match self.next()? {
                Event::End(_) if self.open.len() < depth => break,
                Event::Eof => return Err(self.error(DecodeErrorKind::UnexpectedEof)),
                _ => {}
            }
        }
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
        if let Some((rest, start)) = self.fast_rest()
            && let Some((name, end_tag, len)) = member_name(rest)
        {
            // `<member>` stays open until its `</member>`
            self.open
                .push(&self.input[start + 1..start + 1 + "member".len()]);
            self.event_start = (start + end_tag) as u64;
            self.advance(len);
            return Ok(Some(Cow::Borrowed(name)));
        }
        if self.take_plain_end("struct")? {
            return Ok(None);
        }
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
        let fast_value = self
            .de
            .fast_rest()
            .is_some_and(|(rest, _)| rest.starts_with("<value>"));
        if fast_value || self.de.next_is_start_of("value")? {
            return seed.deserialize(&mut *self.de).map(Some);
        }
        if self.de.take_plain_end("data")? {
            self.done = true;
            return Ok(None);
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

    serde::forward_to_deserialize_any! {
        tuple tuple_struct struct
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

one_member_enum_access!(XmlEnum);
