//! A fast path in front of quick-xml for the shape of nearly every row of a dump:
//! `<row name="value" .../>`, each attribute double-quoted and preceded by XML whitespace.
//!
//! [`scan_row`] finds the attributes of such a tag at the start of the unread input, by byte
//! positions, without copying anything. Anything else (an open `<row>` element, single quotes,
//! whitespace around `=`, unusual name bytes, no attribute at all) is [`RowScan::NotPlain`] and
//! left to quick-xml, the parser of record, as are tags that turn out not to be UTF-8 or to hold
//! `<` in a value (see [`TagText`]). What the fast path accepts, quick-xml accepts too, with the
//! same attributes: a differential test holds both to that.

use std::ops::Range;
use std::sync::Arc;

/// Bytes taken in an attribute name by the fast path: ASCII letters and digits, `_`, `-`, `.`
/// and `:` (every column name xapi writes). Names with other bytes go to quick-xml.
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

/// XML whitespace (quick-xml's `is_whitespace`: space, TAB, LF, CR).
pub(super) fn is_xml_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// One attribute of a scanned tag: byte ranges of its name and of its raw value (between the
/// quotes), relative to the start of the tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AttributeSpan {
    /// The name.
    pub(super) name: Range<usize>,
    /// The value as written (entities not decoded).
    pub(super) value: Range<usize>,
    /// Whether the name was taken as the hint for its place: `hints[k]` for the row's `k`-th
    /// column (counting attributes other than `ref`, `__ctime` and `__mtime`).
    pub(super) hinted: bool,
}

/// What [`scan_row`] found at the start of the input.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RowScan {
    /// A plain self-closing row of `len` bytes whose attributes are in the span list;
    /// `separator_spaces` counts the space bytes (not TAB, LF, CR) between its attributes.
    Plain { len: usize, separator_spaces: usize },
    /// Something quick-xml has to read.
    NotPlain,
    /// The input ends before the tag does: scan again with more bytes (or, at the end of the
    /// input, let quick-xml report the truncation).
    Incomplete,
}

/// Whether every byte of `name` may appear in a name the fast path takes (so that `name` can
/// serve as a hint to [`scan_row`]).
pub(super) fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| NAME_BYTES[usize::from(b)])
}

/// Scans a plain `<row .../>` at the start of `bytes`, filling `spans` with its attributes.
///
/// `hints` are the column names the row most likely has, in order (the previous row's, each
/// [`is_plain_name`]): a name equal to the next hint is taken with one comparison instead of
/// byte by byte. Hints change only the speed, never the outcome.
pub(super) fn scan_row(
    bytes: &[u8],
    spans: &mut Vec<AttributeSpan>,
    hints: &[Arc<str>],
) -> RowScan {
    const OPEN: &[u8] = b"<row";
    spans.clear();
    if bytes.len() < OPEN.len() {
        return if OPEN.starts_with(bytes) {
            RowScan::Incomplete
        } else {
            RowScan::NotPlain
        };
    }
    if !bytes.starts_with(OPEN) {
        return RowScan::NotPlain;
    }
    let len = bytes.len();
    let mut i = OPEN.len();
    let mut separator_spaces = 0;
    // index in `hints` of the next column
    let mut column = 0;
    loop {
        let separator_start = i;
        while i < len && is_xml_whitespace(bytes[i]) {
            separator_spaces += usize::from(bytes[i] == b' ');
            i += 1;
        }
        let Some(&next) = bytes.get(i) else {
            return RowScan::Incomplete;
        };
        if next == b'/' {
            return match bytes.get(i + 1) {
                None => RowScan::Incomplete,
                Some(b'>') if !spans.is_empty() => RowScan::Plain {
                    len: i + 2,
                    separator_spaces,
                },
                Some(_) => RowScan::NotPlain,
            };
        }
        if i == separator_start {
            // `<rowx`, `<row>`, or an attribute glued to the previous value
            return RowScan::NotPlain;
        }
        let name_start = i;
        let mut hinted = false;
        match hints.get(column) {
            // the hint's bytes are name bytes and `=` is not: the byte loop would stop there too
            Some(hint)
                if bytes[i..].starts_with(hint.as_bytes())
                    && bytes.get(i + hint.len()) == Some(&b'=') =>
            {
                i += hint.len();
                column += 1;
                hinted = true;
            }
            _ => {
                while i < len && NAME_BYTES[usize::from(bytes[i])] {
                    i += 1;
                }
                if !matches!(&bytes[name_start..i], b"ref" | b"__ctime" | b"__mtime") {
                    column += 1;
                }
            }
        }
        match bytes.get(i..i + 2) {
            _ if i == name_start => return RowScan::NotPlain,
            Some(b"=\"") => {}
            None if bytes.get(i).is_none_or(|&b| b == b'=') => return RowScan::Incomplete,
            Some(_) | None => return RowScan::NotPlain,
        }
        let value_start = i + 2;
        let Some(quote) = memchr::memchr(b'"', &bytes[value_start..]) else {
            return RowScan::Incomplete;
        };
        let value_end = value_start + quote;
        spans.push(AttributeSpan {
            name: name_start..i,
            value: value_start..value_end,
            hinted,
        });
        i = value_end + 1;
    }
}

/// A scanned tag as text, with what the value decoder needs to know about it.
pub(super) struct TagText<'a> {
    /// The tag, validated as UTF-8.
    pub(super) text: &'a str,
    /// Whether some value may hold an entity reference, a raw TAB, LF or CR, or a space; if
    /// not, every value reads as written, but for xapi's `%` layer.
    may_need_decoding: bool,
}

impl TagText<'_> {
    /// Whether `value` (a value of this tag) reads as written, but for xapi's `%` layer.
    pub(super) fn is_clean(&self, value: &str) -> bool {
        !self.may_need_decoding || value_is_clean(value)
    }
}

/// Whether an attribute value holds none of `&`, TAB, LF, CR and space.
fn value_is_clean(value: &str) -> bool {
    let bytes = value.as_bytes();
    memchr::memchr3(b'&', b'\t', b'\n', bytes).is_none()
        && memchr::memchr2(b'\r', b' ', bytes).is_none()
}

/// Checks a scanned tag: `None` if it is not UTF-8 or has a `<` after its first byte (both left
/// to quick-xml), else its text and whether its values need a closer look. A few vectorised
/// passes over the whole tag, so that the usual clean tag costs no check value by value.
pub(super) fn tag_text(tag: &[u8], separator_spaces: usize) -> Option<TagText<'_>> {
    if memchr::memchr(b'<', &tag[1..]).is_some() {
        return None;
    }
    let text = std::str::from_utf8(tag).ok()?;
    let may_need_decoding = memchr::memchr3(b'&', b'\t', b'\n', tag).is_some()
        || memchr::memchr(b'\r', tag).is_some()
        || memchr::memchr_iter(b' ', tag).count() != separator_spaces;
    Some(TagText {
        text,
        may_need_decoding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(input: &str) -> (RowScan, Vec<(String, String)>) {
        let mut spans = Vec::new();
        let result = scan_row(input.as_bytes(), &mut spans, &[]);
        // hints change nothing but the speed: the row's own names, wrong names, or too many
        for hints in [
            &["name__label", "uuid"][..],
            &["uuid"],
            &["name", "name__labelx", "u"],
            &["name__label", "uuid", "zzz"],
        ] {
            let hints: Vec<Arc<str>> = hints.iter().map(|&h| Arc::from(h)).collect();
            let mut hinted = Vec::new();
            assert_eq!(
                scan_row(input.as_bytes(), &mut hinted, &hints),
                result,
                "{input}"
            );
            let ranges = |spans: &[AttributeSpan]| {
                spans
                    .iter()
                    .map(|s| (s.name.clone(), s.value.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(ranges(&hinted), ranges(&spans), "{input}");
            for (span, k) in hinted.iter().zip(0..) {
                if span.hinted {
                    assert!(
                        hints.iter().any(|h| **h == input[span.name.clone()]),
                        "{input} {k}"
                    );
                }
            }
        }
        let attributes = spans
            .iter()
            .map(|s| {
                (
                    input[s.name.clone()].to_owned(),
                    input[s.value.clone()].to_owned(),
                )
            })
            .collect();
        (result, attributes)
    }

    #[test]
    fn plain_rows_are_taken_with_their_attributes() {
        let row = "<row ref=\"OpaqueRef:1\" __ctime=\"5\" name__label=\"a%.b\"/>";
        let (result, attributes) = scan(&format!("{row}<row"));
        assert_eq!(
            result,
            RowScan::Plain {
                len: row.len(),
                separator_spaces: 3
            }
        );
        assert_eq!(
            attributes,
            [
                ("ref".to_owned(), "OpaqueRef:1".to_owned()),
                ("__ctime".to_owned(), "5".to_owned()),
                ("name__label".to_owned(), "a%.b".to_owned()),
            ]
        );
        let (result, attributes) = scan("<row\n\tref=\"a>b\" x=\"it's\" />");
        assert_eq!(
            result,
            RowScan::Plain {
                len: 27,
                separator_spaces: 2
            }
        );
        assert_eq!(attributes[0].1, "a>b");
        assert_eq!(attributes[1].1, "it's");
    }

    #[test]
    fn other_shapes_are_left_to_quick_xml() {
        for input in [
            "<row ref=\"a\">",
            "<row/>",
            "<row />",
            "<rowx ref=\"a\"/>",
            "<row ref='a'/>",
            "<row ref = \"a\"/>",
            "<row ref=\"a\"x=\"b\"/>",
            "<row ref=\"a\" / >",
            "<row r\u{e9}f=\"a\"/>",
            "<row =\"a\"/>",
            "<row ref/>",
            "</table>",
            "<table name=\"x\">",
            "text",
        ] {
            assert_eq!(scan(input).0, RowScan::NotPlain, "{input}");
        }
    }

    #[test]
    fn cut_tags_ask_for_more() {
        let row = "<row ref=\"OpaqueRef:1\" uuid=\"u\"/>";
        for cut in 0..row.len() {
            assert_eq!(scan(&row[..cut]).0, RowScan::Incomplete, "cut at {cut}");
        }
    }

    #[test]
    fn tag_text_tells_clean_values_from_those_needing_decoding() {
        let clean = b"<row ref=\"a\" v=\"x%.y\"/>";
        let tag = tag_text(clean, 2).unwrap();
        assert!(!tag.may_need_decoding && tag.is_clean("x y"));
        for (dirty, value) in [
            (&b"<row ref=\"a\" v=\"x y\"/>"[..], "x y"),
            (b"<row ref=\"a\" v=\"x&amp;y\"/>", "x&amp;y"),
            (b"<row ref=\"a\" v=\"x\ty\"/>", "x\ty"),
            (b"<row ref=\"a\" v=\"x\ry\"/>", "x\ry"),
            (b"<row ref=\"a\" v=\"x\ny\"/>", "x\ny"),
        ] {
            let tag = tag_text(dirty, 2).unwrap();
            assert!(tag.may_need_decoding && !tag.is_clean(value));
            assert!(tag.is_clean("a"));
        }
        assert!(
            tag_text(b"<row ref=\"a\"\nv=\"x\"/>", 1)
                .unwrap()
                .may_need_decoding
        );
        assert!(tag_text(b"<row ref=\"a<\"/>", 1).is_none());
        assert!(tag_text(b"<row ref=\"\xff\"/>", 1).is_none());
    }
}
