//! The fast row scanner held to quick-xml: on any document, reading with the scanner and
//! reading with quick-xml alone give the same database, or the same error at the same byte
//! offset, whatever size of pieces the input arrives in.

use std::io::{self, BufRead, Read};

use proptest::prelude::*;

use super::{DbXmlError, ReadState, Rows, read};
use crate::metadata::Database;
use crate::metadata::testing::{PoolShape, generate_pool};

/// A reader that hands out at most `chunk` bytes per `fill_buf`, like a tiny `BufReader`, so
/// that tags straddle buffer ends everywhere.
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.fill_buf()?.len().min(out.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Chunked<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        Ok(&self.data[..self.chunk.min(self.data.len())])
    }
    fn consume(&mut self, amount: usize) {
        self.data = &self.data[amount..];
    }
}

/// A read's outcome in comparable form: the database, or the error's message (which carries
/// its byte offset and every field).
fn outcome(result: Result<Database, DbXmlError>) -> Result<Database, String> {
    result.map_err(|err| err.to_string())
}

/// Reads `doc` with quick-xml alone, with the scanner from one slice, and with the scanner in
/// `chunk`-byte pieces; checks that all three agree and returns the bytes the scanner read.
fn assert_agreement(doc: &[u8], chunk: usize) -> Result<u64, TestCaseError> {
    let expected = outcome(read(doc, Rows::QuickXml, &mut ReadState::default()));
    let mut state = ReadState::default();
    let scanned = outcome(read(doc, Rows::Scanned, &mut state));
    prop_assert_eq!(
        &scanned,
        &expected,
        "whole input: {}",
        String::from_utf8_lossy(doc)
    );
    let chunked = outcome(read(
        Chunked { data: doc, chunk },
        Rows::Scanned,
        &mut ReadState::default(),
    ));
    prop_assert_eq!(
        &chunked,
        &expected,
        "{}-byte pieces: {}",
        chunk,
        String::from_utf8_lossy(doc)
    );
    Ok(state.fast_bytes)
}

fn value_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => "[a-zA-Z0-9:._()'-]{0,8}",
        4 => prop::sample::select(vec!["%.", "%%", "%t", "%n", "%r", "%_", "%", "%x", "%%%."]).prop_map(str::to_owned),
        3 => prop::sample::select(vec![
            "&amp;", "&quot;", "&lt;", "&gt;", "&apos;", "&#10;", "&#x9;", "&#13;", "&#32;", "&#233;",
        ]).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["&#0;", "&#xD800;", "&bogus;", "&", "&#;", "&amp"]).prop_map(str::to_owned),
        3 => prop::sample::select(vec![" ", "  ", "\t", "\n", "\r", "\r\n", " \t "]).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["<", ">", "é", "\u{1}", "'", "/>", "\u{FFFD}"]).prop_map(str::to_owned),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop::collection::vec(value_piece(), 0..5).prop_map(|pieces| pieces.concat())
}

fn column_name() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => "[a-z_][a-z0-9_]{0,5}",
        1 => prop::sample::select(vec!["ref", "__ctime", "__mtime", "a:b", "x-y", "v.1", "é", "9a"]).prop_map(str::to_owned),
    ]
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        20 => Just(" "),
        1 => prop::sample::select(vec!["  ", "\n", "\t", "\r\n", "\n  ", ""]),
    ]
}

fn generation() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => "[0-9]{1,4}",
        1 => prop::sample::select(vec!["-3", "1x", "", " 7 ", "99999999999999999999", "&#49;"]).prop_map(str::to_owned),
    ]
}

fn row() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["OpaqueRef:1", "OpaqueRef:2", "OpaqueRef:3", "OpaqueRef:4", "x&amp;y", ""]),
        (generation(), generation()),
        prop::collection::vec((column_name(), value()), 0..6),
        // 0: as xapi writes (specials first, columns sorted); 1: columns unsorted;
        // 2: specials among the columns; 3: no ref; 4: a special twice
        prop_oneof![12 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8), 1 => Just(4u8)],
        prop::collection::vec((separator(), prop_oneof![30 => Just('"'), 1 => Just('\'')]), 12),
        prop_oneof![
            20 => Just("/>"),
            1 => prop::sample::select(vec![" />", "\n/>", "></row>", "> </row>", ">x</row>", "><row/></row>", "/ >", ">"]),
        ],
    )
        .prop_map(|(reference, (ctime, mtime), mut columns, shape, styles, end)| {
            if shape != 1 {
                columns.sort();
                columns.dedup_by(|a, b| a.0 == b.0);
            }
            let mut specials = vec![
                ("ref".to_owned(), reference.to_owned()),
                ("__ctime".to_owned(), ctime),
                ("__mtime".to_owned(), mtime),
            ];
            match shape {
                3 => {
                    specials.remove(0);
                }
                4 => specials.push(("__ctime".to_owned(), "1".to_owned())),
                _ => {}
            }
            let attributes: Vec<(String, String)> = if shape == 2 {
                let mut all = columns;
                let at = all.len() / 2;
                all.splice(at..at, specials);
                all
            } else {
                specials.into_iter().chain(columns).collect()
            };
            let mut out = String::from("<row");
            for (i, (name, value)) in attributes.into_iter().enumerate() {
                let (separator, quote) = styles[i % styles.len()];
                out.push_str(separator);
                out.push_str(&name);
                out.push('=');
                out.push(quote);
                out.push_str(&value);
                out.push(quote);
            }
            out.push_str(end);
            out
        })
}

fn filler() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        20 => Just(""),
        2 => prop::sample::select(vec!["\n", "  ", "\n\t", "\r\n "]),
        1 => prop::sample::select(vec!["<!-- c -->", "x", "&amp;", "<?pi x?>", "<![CDATA[ ]]>", "\u{c}"]),
    ]
}

fn table() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["VM", "VBD", "host", "t"]),
        prop::collection::vec((filler(), row()), 0..6),
        filler(),
        any::<bool>(),
    )
        .prop_map(|(name, rows, last, self_closing)| {
            if rows.is_empty() && self_closing {
                return format!("<table name=\"{name}\"/>");
            }
            let mut out = format!("<table name=\"{name}\">");
            for (filler, row) in rows {
                out.push_str(filler);
                out.push_str(&row);
            }
            out.push_str(last);
            out.push_str("</table>");
            out
        })
}

fn document() -> impl Strategy<Value = String> {
    prop::collection::vec(table(), 0..4).prop_map(|tables| {
        let mut out = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<database><manifest>\
             <pair key=\"schema_major_vsn\" value=\"5\"/><pair key=\"schema_minor_vsn\" value=\"909\"/>\
             <pair key=\"generation_count\" value=\"42\"/></manifest>",
        );
        for table in tables {
            out.push_str(&table);
        }
        out.push_str("</database>");
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn scanner_and_quick_xml_agree_on_odd_documents(doc in document(), chunk in 1usize..80) {
        assert_agreement(doc.as_bytes(), chunk)?;
    }

    #[test]
    fn scanner_and_quick_xml_agree_on_damaged_documents(
        doc in document(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        chunk in 1usize..80,
    ) {
        let mut bytes = doc.into_bytes();
        for (at, byte) in edits {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        assert_agreement(&bytes, chunk)?;
        let cut = cut.index(bytes.len() + 1);
        assert_agreement(&bytes[..cut], chunk)?;
    }
}

#[test]
fn a_generated_pool_is_read_by_the_scanner() {
    let db = generate_pool(PoolShape::with_vms(40));
    let xml = super::db_xml_bytes(&db);
    let rows_bytes: usize = xml
        .split(|&b| b == b'<')
        .filter(|tag| tag.starts_with(b"row "))
        .map(|tag| tag.len() + 1)
        .sum();
    for chunk in [7, 4096, usize::MAX] {
        let fast = assert_agreement(&xml, chunk).unwrap();
        // every row byte went through the scanner (rows of this dump are all plain)
        assert_eq!(fast, rows_bytes as u64, "{chunk}-byte pieces");
    }
    let back = read(&xml[..], Rows::Scanned, &mut ReadState::default()).unwrap();
    assert_eq!(back, db);
}

#[test]
fn errors_found_by_either_path_carry_the_same_offsets() {
    let head = "<database><manifest><pair key=\"schema_major_vsn\" value=\"5\"/>\
                <pair key=\"schema_minor_vsn\" value=\"909\"/><pair key=\"generation_count\" value=\"1\"/>\
                </manifest><table name=\"VM\">";
    for (rows, expected) in [
        (
            "<row ref=\"a\"/><row ref=\"a\"/>",
            "table VM has row a twice",
        ),
        (
            "<row ref=\"a\" __ctime=\"1x\"/>",
            "__ctime = \"1x\" is not an integer",
        ),
        ("<row uuid=\"u\"/>", "<row> has no ref attribute"),
        ("<row ref=\"a\" v=\"&bogus;\"/>", "bad attribute in <row>"),
        ("<row ref=\"a\" v=\"1\" v=\"2\"/>", "bad attribute in <row>"),
        ("<row ref=\"a\"/><blob/>", "unexpected element <blob>"),
        ("<row ref=\"a\"/></database>", "db xml: byte"),
    ] {
        let doc = format!("{head}{rows}</table></database>");
        assert_agreement(doc.as_bytes(), 5).unwrap();
        let err = read(doc.as_bytes(), Rows::Scanned, &mut ReadState::default()).unwrap_err();
        assert!(err.to_string().contains(expected), "{rows}: {err}");
    }
}

#[test]
fn invalid_utf8_is_reported_where_reading_stopped_by_both_paths() {
    let head = "<database><manifest><pair key=\"schema_major_vsn\" value=\"5\"/>\
                <pair key=\"schema_minor_vsn\" value=\"909\"/><pair key=\"generation_count\" value=\"1\"/>\
                </manifest><table name=\"VM\"><row ref=\"a\"/>";
    // in a value of a row (the scanner hands the row to quick-xml), and in the whitespace
    // between two rows (the scanner leaves the whitespace to quick-xml)
    for tail in [
        &b"<row ref=\"b\" v=\"\xff\"/>"[..],
        b"  \xff<row ref=\"b\"/>",
    ] {
        let mut doc = head.as_bytes().to_vec();
        doc.extend_from_slice(tail);
        doc.extend_from_slice(b"</table></database>");
        assert_agreement(&doc, 3).unwrap();
        let err = read(&doc[..], Rows::Scanned, &mut ReadState::default()).unwrap_err();
        let DbXmlError::Xml { offset, .. } = err else {
            panic!("{err}")
        };
        // just past the bytes that hold the invalid one, not the stale position 0
        assert!(offset > head.len() as u64, "{err}");
        assert!(offset <= (head.len() + tail.len()) as u64, "{err}");
    }
}

/// A reader that hands out `chunk` bytes at a time, is interrupted on every other call, and
/// fails for good once `fail_at` bytes have been consumed.
struct Flaky<'a> {
    data: &'a [u8],
    consumed: usize,
    chunk: usize,
    calls: usize,
    fail_at: usize,
}

impl Read for Flaky<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.fill_buf()?.len().min(out.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Flaky<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.calls += 1;
        if self.consumed >= self.fail_at {
            return Err(io::Error::other("device gone"));
        }
        if self.calls.is_multiple_of(2) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = self
            .chunk
            .min(self.data.len())
            .min(self.fail_at - self.consumed);
        Ok(&self.data[..n])
    }
    fn consume(&mut self, amount: usize) {
        self.data = &self.data[amount..];
        self.consumed += amount;
    }
}

#[test]
fn interrupted_reads_are_retried_and_failed_reads_reported() {
    let xml = super::db_xml_bytes(&generate_pool(PoolShape::with_vms(3)));
    let expected = read(&xml[..], Rows::QuickXml, &mut ReadState::default()).unwrap();
    for chunk in [1, 7, 100, 5000] {
        let flaky = Flaky {
            data: &xml,
            consumed: 0,
            chunk,
            calls: 0,
            fail_at: usize::MAX,
        };
        let back = read(flaky, Rows::Scanned, &mut ReadState::default()).unwrap();
        assert_eq!(back, expected, "{chunk}-byte pieces");
    }
    for fail_at in [0, 100, xml.len() / 2, xml.len() - 1] {
        let flaky = Flaky {
            data: &xml,
            consumed: 0,
            chunk: 64,
            calls: 0,
            fail_at,
        };
        let err = read(flaky, Rows::Scanned, &mut ReadState::default()).unwrap_err();
        let DbXmlError::Xml { offset, ref source } = err else {
            panic!("{err}")
        };
        assert!(matches!(source, quick_xml::Error::Io(_)), "{err}");
        // reported at the element being read when the device failed
        let fail_at = fail_at as u64;
        assert!(offset <= fail_at && offset + 4096 >= fail_at, "{err}");
    }
}
