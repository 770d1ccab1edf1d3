//! A fast path in front of quick-xml for the plain markup that makes up nearly all of an
//! XML-RPC body: `<name>`, `<name/>`, `</name>` without attributes or whitespace, text, and
//! the entity and character references inside text (`&amp;`, `&#38;`).
//!
//! [`plain_event`] recognises exactly those shapes at the start of the unread input and
//! returns the event quick-xml would have returned for them; anything else (declarations,
//! comments, CDATA, DOCTYPE, attributes, lone `&`s, text up to the end of input, and everything
//! from the first invalid UTF-8 byte on, which the caller does not hand over)
//! returns `None` and is left to quick-xml, which stays the parser of record for every
//! construct beyond these. The caller keeps the nesting check (quick-xml's `check_end_names`)
//! itself, since the tags read here never reach quick-xml's stack of open elements.

use quick_xml::events::{BytesEnd, BytesRef, BytesStart, BytesText, Event};

/// Which bytes may appear in a tag name taken by the fast path: a conservative subset of XML
/// name characters (ASCII letters, digits, `_`, `-`, `.`, `:`); other names go to quick-xml.
/// A table, because names are scanned byte by byte for every tag of the document.
const NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':');
        b += 1;
    }
    table
};

/// The length of the plain tag name at the start of `bytes` (0 if none).
fn name_len(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {}
        _ => return 0,
    }
    let mut len = 1;
    while len < bytes.len() && NAME_BYTES[usize::from(bytes[len])] {
        len += 1;
    }
    len
}

/// The plain event at the start of `rest` and how many bytes it spans, or `None` when quick-xml
/// has to read what comes next. `rest` is already known to be UTF-8 (the input is validated
/// once, not event by event).
pub(crate) fn plain_event(rest: &str) -> Option<(Event<'_>, usize)> {
    let bytes = rest.as_bytes();
    // every slice below starts and ends next to an ASCII byte (`<`, `/`, `>`, a name byte),
    // hence on a character boundary
    let ascii = |from: usize, to: usize| rest.get(from..to).expect("sliced at ASCII bytes");
    match *bytes.first()? {
        b'<' => {}
        b'&' => return entity_ref(rest),
        _ => {
            // text up to markup or up to a reference, as quick-xml splits it
            let end = memchr::memchr2(b'<', b'&', bytes)?;
            return Some((Event::Text(BytesText::from_escaped(ascii(0, end))), end));
        }
    }
    if bytes.get(1) == Some(&b'/') {
        let len = name_len(&bytes[2..]);
        if len > 0 && bytes.get(2 + len) == Some(&b'>') {
            let name = ascii(2, 2 + len);
            return Some((Event::End(BytesEnd::new(name)), len + 3));
        }
        return None;
    }
    let len = name_len(&bytes[1..]);
    if len == 0 {
        return None;
    }
    let name = ascii(1, 1 + len);
    match bytes.get(1 + len)? {
        b'>' => Some((Event::Start(BytesStart::new(name)), len + 2)),
        b'/' if bytes.get(2 + len) == Some(&b'>') => {
            Some((Event::Empty(BytesStart::new(name)), len + 3))
        }
        _ => None,
    }
}

/// `rest` without the XML whitespace at its front (where only elements may come, it is not
/// content).
pub(crate) fn skip_blank(rest: &str) -> &str {
    rest.trim_start_matches([' ', '\t', '\r', '\n'])
}

/// The longest entity or character reference name the fast path takes (`#x1F600` is 7).
const MAX_REF_NAME: usize = 16;

/// `&name;` or `&#...;` at the start of `rest` (names of ASCII letters, digits and `#`): the
/// `GeneralRef` event quick-xml would return, whose name the caller resolves or refuses.
/// Lone `&`s and longer or unusual names are left to quick-xml.
fn entity_ref(rest: &str) -> Option<(Event<'_>, usize)> {
    let bytes = rest.as_bytes();
    let len = bytes[1..]
        .iter()
        .take(MAX_REF_NAME + 1)
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'#'))?;
    if len == 0 || bytes.get(1 + len) != Some(&b';') {
        return None;
    }
    let name = rest.get(1..=len).expect("sliced at ASCII bytes");
    Some((Event::GeneralRef(BytesRef::new(name)), len + 2))
}

/// `<member><name>K</name>` at the start of `rest`, with `K` free of markup and entities and
/// only whitespace (not content in a `<member>`, as the event-by-event path also skips it)
/// between `<member>` and `<name>`, as `xmlrpc.client` writes a newline there: the name, the
/// offset of `</name>` and the length of the whole.
pub(crate) fn member_name(rest: &str) -> Option<(&str, usize, usize)> {
    const MEMBER: &str = "<member>";
    const NAME: &str = "<name>";
    const CLOSE: &str = "</name>";
    let after = skip_blank(rest.strip_prefix(MEMBER)?).strip_prefix(NAME)?;
    let open = rest.len() - after.len();
    let end = memchr::memchr2(b'<', b'&', after.as_bytes())?;
    let name = after
        .get(..end)
        .filter(|_| after[end..].starts_with(CLOSE))?;
    Some((name, open + end, open + end + CLOSE.len()))
}

/// `<value>T</value>` at the start of `rest`, with `T` free of markup and entities (the
/// untyped string form that makes up most of a record): the text, the offset of `</value>`
/// and the length of the whole.
pub(crate) fn untyped_value(rest: &str) -> Option<(&str, usize, usize)> {
    const OPEN: &str = "<value>";
    const CLOSE: &str = "</value>";
    let after = rest.strip_prefix(OPEN)?;
    let end = memchr::memchr2(b'<', b'&', after.as_bytes())?;
    let text = after
        .get(..end)
        .filter(|_| after[end..].starts_with(CLOSE))?;
    Some((text, OPEN.len() + end, OPEN.len() + end + CLOSE.len()))
}

/// The empty containers as the encoders write them: `<value><array><data></data></array>
/// </value>` (`Some(true)`) and `<value><struct></struct></value>` (`Some(false)`), with the
/// length of the whole. Whitespace may stand where the container's content would (a newline
/// from `xmlrpc.client`): it is not content there.
pub(crate) fn empty_container(rest: &str) -> Option<(bool, usize)> {
    const ARRAY: (&str, &str) = ("<value><array><data>", "</data></array></value>");
    const STRUCT: (&str, &str) = ("<value><struct>", "</struct></value>");
    for (array, (open, close)) in [(true, ARRAY), (false, STRUCT)] {
        if let Some(inside) = rest.strip_prefix(open) {
            let after = skip_blank(inside).strip_prefix(close)?;
            return Some((array, rest.len() - after.len()));
        }
    }
    None
}

/// `<value><T>X</T></value>` at the start of `rest` for a scalar type tag `T` (`boolean`,
/// `double`, `dateTime.iso8601`, `int`, `i4`, `i8`, `string`), with `X` free of markup and
/// entities: the tag name, the text, the offset of `</value>` and the length of the whole.
pub(crate) fn typed_value(rest: &str) -> Option<(&str, &str, usize, usize)> {
    const OPEN: &str = "<value><";
    const CLOSE: &str = "</value>";
    let after = rest.strip_prefix(OPEN)?;
    let tag = match after.as_bytes().first()? {
        b'b' => "boolean",
        b'd' if after.as_bytes().get(1) == Some(&b'o') => "double",
        b'd' => "dateTime.iso8601",
        b'i' => match after.as_bytes().get(1)? {
            b'n' => "int",
            b'4' => "i4",
            b'8' => "i8",
            _ => return None,
        },
        b's' => "string",
        _ => return None,
    };
    let after = after.strip_prefix(tag)?.strip_prefix('>')?;
    let end = memchr::memchr2(b'<', b'&', after.as_bytes())?;
    let text = after.get(..end)?;
    let tail = &after[end..];
    let tail = tail
        .strip_prefix("</")?
        .strip_prefix(tag)?
        .strip_prefix('>')?;
    if !tail.starts_with(CLOSE) {
        return None;
    }
    let close_at = rest.len() - tail.len();
    Some((tag, text, close_at, close_at + CLOSE.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(input: &str) -> Option<(Event<'_>, usize)> {
        plain_event(input)
    }

    #[test]
    fn plain_tags_and_text_are_taken() {
        assert_eq!(
            event("<value>x"),
            Some((Event::Start(BytesStart::new("value")), 7))
        );
        assert_eq!(
            event("<dateTime.iso8601>"),
            Some((Event::Start(BytesStart::new("dateTime.iso8601")), 18))
        );
        assert_eq!(
            event("</member></struct>"),
            Some((Event::End(BytesEnd::new("member")), 9))
        );
        assert_eq!(
            event("<nil/><"),
            Some((Event::Empty(BytesStart::new("nil")), 6))
        );
        assert_eq!(
            event("OpaqueRef:1 é</value>"),
            Some((Event::Text(BytesText::from_escaped("OpaqueRef:1 é")), 14))
        );
    }

    #[test]
    fn text_is_split_at_references_like_quick_xml_does() {
        assert_eq!(
            event("a &amp; b<"),
            Some((Event::Text(BytesText::from_escaped("a ")), 2))
        );
        assert_eq!(
            event("&amp; b<"),
            Some((Event::GeneralRef(BytesRef::new("amp")), 5))
        );
        assert_eq!(
            event("&#x1F600;</value>"),
            Some((Event::GeneralRef(BytesRef::new("#x1F600")), 9))
        );
        assert_eq!(
            event("&abcdefghijklmnop;"),
            Some((Event::GeneralRef(BytesRef::new("abcdefghijklmnop")), 18))
        );
    }

    #[test]
    fn plain_members_and_untyped_values_are_taken_whole() {
        let member = "<member><name>uuid</name><value>x</value></member>";
        assert_eq!(member_name(member), Some(("uuid", 18, 25)));
        assert_eq!(
            member_name("<member><name></name><value/>"),
            Some(("", 14, 21))
        );
        assert_eq!(untyped_value(&member[25..]), Some(("x", 8, 16)));
        assert_eq!(untyped_value("<value></value>"), Some(("", 7, 15)));
        assert_eq!(
            member_name("<member>\n<name>uuid</name>\n<value>"),
            Some(("uuid", 19, 26))
        );
        assert_eq!(
            member_name("<member> \r\n\t<name>a</name>"),
            Some(("a", 19, 26))
        );
        for input in [
            "<member>x<name>a</name>",
            "<member>\n</member>",
            "<member><name>a &amp; b</name>",
            "<member><name>a</nam>",
            "<member><name>a",
        ] {
            assert_eq!(member_name(input), None, "{input:?}");
        }
        for input in [
            "<value><string>a</string></value>",
            "<value>a &lt; b</value>",
            "<value>a</member>",
            "<value>a",
            "<value/>",
        ] {
            assert_eq!(untyped_value(input), None, "{input:?}");
        }
    }

    #[test]
    fn typed_scalars_and_empty_containers_are_taken_whole() {
        let doc = "<value><boolean>1</boolean></value><x>";
        assert_eq!(typed_value(doc), Some(("boolean", "1", 27, 35)));
        let doc = "<value><dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601></value>";
        assert_eq!(
            typed_value(doc),
            Some((
                "dateTime.iso8601",
                "19700101T00:00:00Z",
                doc.len() - 8,
                doc.len()
            ))
        );
        for doc in [
            "<value><double>0.5</double></value>",
            "<value><i4>7</i4></value>",
            "<value><i8>7</i8></value>",
            "<value><int>-7</int></value>",
            "<value><string>a b</string></value>",
        ] {
            assert_eq!(typed_value(doc).map(|t| t.3), Some(doc.len()), "{doc}");
        }
        for doc in [
            "<value><boolean>1</double></value>",
            "<value><string>a &amp; b</string></value>",
            "<value><string>a</string> </value>",
            "<value><base64>AA==</base64></value>",
            "<value><doubles>1</doubles></value>",
            "<value><boolean/></value>",
        ] {
            assert_eq!(typed_value(doc), None, "{doc}");
        }
        assert_eq!(
            empty_container("<value><array><data></data></array></value>"),
            Some((true, 43))
        );
        assert_eq!(
            empty_container("<value><struct></struct></value>"),
            Some((false, 32))
        );
        assert_eq!(
            empty_container("<value><array><data>\n</data></array></value>\n"),
            Some((true, 44))
        );
        assert_eq!(
            empty_container("<value><struct>\n</struct></value>"),
            Some((false, 33))
        );
        for doc in [
            "<value><array><data/></array></value>",
            "<value><array><data>\n<value>",
            "<value><struct>\n<member>",
            "<value><struct>x</struct></value>",
        ] {
            assert_eq!(empty_container(doc), None, "{doc}");
        }
    }

    #[test]
    fn everything_else_is_left_to_quick_xml() {
        for input in [
            "",
            "<",
            "<value",
            "<value attr=\"1\">",
            "<value >",
            "</value >",
            "</>",
            "<1a>",
            "<!-- c -->",
            "<![CDATA[x]]>",
            "<!DOCTYPE x>",
            "<?xml version=\"1.0\"?>",
            "text up to the end",
            "& lone<",
            "&;",
            "&amp<",
            "&a-b;",
            "&abcdefghijklmnopq;",
            "<nil/",
        ] {
            assert_eq!(event(input), None, "{input:?}");
        }
    }
}
