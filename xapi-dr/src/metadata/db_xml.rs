//! The XML database dump (`state.db`, `/pool/xmldbdump`, the DB record of a redo log).
//!
//! The reader streams: one `<row>` element is in memory at a time, values are unescaped (XML
//! entities, then xapi's `%` layer) straight into the [`Database`]. Plain rows are scanned
//! directly from the input buffer; quick-xml reads everything else. The writer
//! produces xapi's exact bytes: declaration, then one line, tables and rows in byte order,
//! `ref`, `__ctime`, `__mtime` before the columns in byte order, empty elements as `<x/>`.
//!
//! Table names and manifest pairs get the `%` protection of column values too. xapi writes them
//! bare, so a TAB, newline or carriage return there, a leading or trailing space, or a run of
//! spaces would come back from any Xmlm reader (xapi's, or this one) as one space or nothing.
//! Protected, they read back as written. For everything xapi itself writes there (class names
//! and numbers, without blanks or `%`) the protection changes nothing, so the bytes stay xapi's.

use std::borrow::Cow;
use std::io::{BufRead, Write};

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::database::{Database, KEY_GENERATION, KEY_SCHEMA_MAJOR, KEY_SCHEMA_MINOR, Manifest};
use super::escape::{protect, unprotect};

mod lookahead;
mod row_buffer;
mod row_scan;
mod table_reader;

#[cfg(test)]
mod fast_path_agreement;

use lookahead::Lookahead;
use row_buffer::{RowBuffer, attribute_text};
use row_scan::{AttributeSpan, RowScan, TagText};
use table_reader::TableReader;

/// The declaration xapi (Xmlm) writes before the document.
const DECLARATION: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// Why an XML dump could not be read. Offsets are byte offsets into the XML document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbXmlError {
    /// The XML itself is malformed (or the underlying reader failed).
    #[error("db xml: byte {offset}: {source}")]
    Xml {
        /// Byte offset where the parser stopped.
        offset: u64,
        /// The parser's error.
        #[source]
        source: quick_xml::Error,
    },
    /// An element other than `database`, `manifest`, `pair`, `table` and `row`, or one of those
    /// in the wrong place.
    #[error("db xml: byte {offset}: unexpected element <{name}> inside {parent}")]
    UnexpectedElement {
        /// Byte offset just after the element.
        offset: u64,
        /// The element's name.
        name: String,
        /// Where it was found (`"the document"`, `"<database>"`, ...).
        parent: String,
    },
    /// Non-blank text where only elements may appear.
    #[error("db xml: byte {offset}: unexpected text inside {parent}")]
    UnexpectedText {
        /// Byte offset just after the text.
        offset: u64,
        /// Where it was found.
        parent: String,
    },
    /// A required attribute is missing.
    #[error("db xml: byte {offset}: <{element}> has no {attribute} attribute")]
    MissingAttribute {
        /// Byte offset just after the element.
        offset: u64,
        /// The element.
        element: &'static str,
        /// The missing attribute.
        attribute: &'static str,
    },
    /// An attribute is malformed (duplicate, unquoted, bad entity).
    #[error("db xml: byte {offset}: bad attribute in <{element}>: {reason}")]
    BadAttribute {
        /// Byte offset just after the element.
        offset: u64,
        /// The element.
        element: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A row's `__ctime` or `__mtime` is not an integer.
    #[error(
        "db xml: byte {offset}: table {table}, row {reference}: {field} = {value:?} is not an integer"
    )]
    BadInteger {
        /// Byte offset just after the element.
        offset: u64,
        /// Table name.
        table: String,
        /// Row reference.
        reference: String,
        /// The attribute.
        field: String,
        /// The text found.
        value: String,
    },
    /// A manifest number that is not an integer.
    #[error("db xml: byte {offset}: manifest {key} = {value:?} is not an integer")]
    BadManifestValue {
        /// Byte offset just after the `<pair>`.
        offset: u64,
        /// The key.
        key: &'static str,
        /// The text found.
        value: String,
    },
    /// A manifest key xapi always writes is missing.
    #[error("db xml: manifest has no {key}")]
    MissingManifestKey {
        /// The missing key.
        key: &'static str,
    },
    /// The document ended before `</database>`.
    #[error("db xml: truncated at byte {offset} (inside {inside})")]
    Truncated {
        /// Byte offset of the end of the input.
        offset: u64,
        /// The innermost open element.
        inside: String,
    },
    /// Two rows with the same reference in one table.
    #[error("db xml: byte {offset}: table {table} has row {reference} twice")]
    DuplicateRow {
        /// Byte offset just after the second row.
        offset: u64,
        /// Table name.
        table: String,
        /// The repeated reference.
        reference: String,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Document,
    Database,
    Manifest,
    Table,
    Done,
}

impl Place {
    fn describe(self, table: &str) -> String {
        match self {
            Place::Document => "the document".to_owned(),
            Place::Database => "<database>".to_owned(),
            Place::Manifest => "<manifest>".to_owned(),
            Place::Table => format!("<table name=\"{table}\">"),
            Place::Done => "the end of the document".to_owned(),
        }
    }
}

/// Reads a whole XML dump, streaming. The result keeps every stored value, including the
/// one-to-many sets exactly as written; see [`Database::recompute_relations`] before relying on
/// them.
///
/// Rows of the plain shape xapi writes are read by a fast scanner straight from the input's
/// buffer; everything else, and any row the scanner is not sure about, is read
/// by quick-xml. Both give the same rows and the same errors at the same byte offsets.
///
/// [`Database::recompute_relations`]: crate::metadata::Database::recompute_relations
pub fn read_db_xml<R: BufRead>(input: R) -> Result<Database, DbXmlError> {
    read(input, Rows::Scanned, &mut ReadState::default())
}

/// Which parser reads the plain rows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rows {
    /// The fast scanner, quick-xml for the rest (the reader).
    Scanned,
    /// quick-xml for everything (what the fast path is checked against).
    #[cfg(test)]
    QuickXml,
}

fn read<R: BufRead>(input: R, rows: Rows, state: &mut ReadState) -> Result<Database, DbXmlError> {
    let mut reader = Reader::from_reader(Lookahead::new(input));
    let config = reader.config_mut();
    config.check_end_names = true;
    config.expand_empty_elements = false;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut db = Database::default();
    let mut pairs: Vec<(String, String, u64)> = Vec::new();
    let mut place = Place::Document;
    let mut table: Option<TableReader> = None;
    // Rows of a <row>...</row> or <pair>...</pair> written as start/end pairs.
    let mut open_leaf: Option<&'static str> = None;
    // quick-xml has just returned a markup event, so the unread input starts right after it
    // (after a text event, quick-xml has already looked at the `<` that follows).
    let mut at_markup_end = false;

    loop {
        if at_markup_end
            && rows == Rows::Scanned
            && open_leaf.is_none()
            && let Some(table) = table.as_mut()
        {
            state.read_plain_rows(&mut reader, table, &mut db)?;
        }
        buf.clear();
        let event = reader.read_event_into(&mut buf).map_err(|source| {
            // quick-xml places syntax errors at the start of the faulty markup; for the
            // others (invalid UTF-8, I/O) its error position is stale, and the place it
            // stopped reading is the useful one
            let position = match source {
                quick_xml::Error::Syntax(_) | quick_xml::Error::IllFormed(_) => {
                    reader.error_position()
                }
                _ => reader.buffer_position(),
            };
            DbXmlError::Xml {
                offset: position + state.fast_bytes,
                source,
            }
        })?;
        let offset = reader.buffer_position() + state.fast_bytes;
        at_markup_end = !matches!(event, Event::Text(_));
        let table_name = table.as_ref().map_or("", TableReader::name);
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                if open_leaf.is_some() {
                    return Err(unexpected(offset, e, place, table_name));
                }
                match (place, e.name().as_ref()) {
                    (Place::Document, "database") => {
                        place = if is_empty {
                            Place::Done
                        } else {
                            Place::Database
                        };
                    }
                    (Place::Database, "manifest") => {
                        if !is_empty {
                            place = Place::Manifest;
                        }
                    }
                    (Place::Manifest, "pair") => {
                        let (key, value) = read_pair(e, offset)?;
                        pairs.push((key, value, offset));
                        if !is_empty {
                            open_leaf = Some("pair");
                        }
                    }
                    (Place::Database, "table") => {
                        let name = attribute(e, "name", "table", offset)?.ok_or(
                            DbXmlError::MissingAttribute {
                                offset,
                                element: "table",
                                attribute: "name",
                            },
                        )?;
                        let name = unprotected(name);
                        let reader = TableReader::start(&name, &mut db);
                        if is_empty {
                            reader.finish(&mut db);
                        } else {
                            table = Some(reader);
                            place = Place::Table;
                        }
                    }
                    (Place::Table, "row") => {
                        let table = table
                            .as_mut()
                            .expect("a table is being read inside <table>");
                        read_row(e, offset, table, &mut state.row, &mut db)?;
                        if !is_empty {
                            open_leaf = Some("row");
                        }
                    }
                    _ => return Err(unexpected(offset, e, place, table_name)),
                }
            }
            Event::End(_) => {
                if open_leaf.take().is_some() {
                    continue;
                }
                place = match place {
                    Place::Manifest => Place::Database,
                    Place::Table => {
                        if let Some(table) = table.take() {
                            table.finish(&mut db);
                        }
                        Place::Database
                    }
                    Place::Database => Place::Done,
                    // check_end_names rejects an unmatched end tag before we get here
                    Place::Document | Place::Done => place,
                };
            }
            Event::Text(ref t) => {
                if !t.trim_ascii().is_empty() {
                    return Err(DbXmlError::UnexpectedText {
                        offset,
                        parent: place.describe(table_name),
                    });
                }
            }
            Event::CData(_) | Event::GeneralRef(_) => {
                return Err(DbXmlError::UnexpectedText {
                    offset,
                    parent: place.describe(table_name),
                });
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => {
                if place != Place::Done {
                    return Err(DbXmlError::Truncated {
                        offset,
                        inside: place.describe(table_name),
                    });
                }
                break;
            }
        }
    }
    db.manifest = manifest_from_pairs(pairs)?;
    Ok(db)
}

/// What the reader keeps between rows: the fast path's buffers and how much it has read.
#[derive(Default)]
struct ReadState {
    /// Bytes consumed by the fast path, which quick-xml's positions do not count.
    fast_bytes: u64,
    /// The row being read (by either path).
    row: RowBuffer,
    /// Attributes of the tag being scanned.
    spans: Vec<AttributeSpan>,
}

impl ReadState {
    /// Reads the plain rows (and the whitespace before each) at the start of the unread input,
    /// until something else comes, which is left to quick-xml.
    fn read_plain_rows<R: BufRead>(
        &mut self,
        reader: &mut Reader<Lookahead<R>>,
        table: &mut TableReader,
        db: &mut Database,
    ) -> Result<(), DbXmlError> {
        let base = reader.buffer_position();
        let input = reader.get_mut();
        let io_error = |err: std::io::Error, at: u64| DbXmlError::Xml {
            offset: base + at,
            source: quick_xml::Error::from(err),
        };
        loop {
            let at_hand = match input.fill_buf() {
                Ok(at_hand) => at_hand,
                // quick-xml retries these
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => return Ok(()),
                Err(err) => return Err(io_error(err, self.fast_bytes)),
            };
            // whitespace before a row is taken with the row: left to quick-xml otherwise,
            // so that what it reads (and any error it finds there) is as without the scanner
            let blank = at_hand
                .iter()
                .take_while(|&&b| row_scan::is_xml_whitespace(b))
                .count();
            if blank == at_hand.len() {
                return Ok(());
            }
            let len =
                match row_scan::scan_row(&at_hand[blank..], &mut self.spans, table.name_hints()) {
                    RowScan::NotPlain => return Ok(()),
                    RowScan::Incomplete => {
                        if input
                            .read_more()
                            .map_err(|err| io_error(err, self.fast_bytes))?
                        {
                            continue;
                        }
                        return Ok(());
                    }
                    RowScan::Plain {
                        len,
                        separator_spaces,
                    } => {
                        let len = blank + len;
                        let offset = base + self.fast_bytes + len as u64;
                        let Some(tag) = row_scan::tag_text(&at_hand[blank..len], separator_spaces)
                        else {
                            return Ok(());
                        };
                        if !read_plain_row(&tag, &self.spans, offset, table, &mut self.row, db)? {
                            return Ok(());
                        }
                        len
                    }
                };
            input.consume(len);
            self.fast_bytes += len as u64;
        }
    }
}

/// Reads a row the scanner found plain into `table`. Returns `false`, having changed nothing,
/// if the row needs quick-xml after all (a value quick-xml would reject, a repeated attribute,
/// columns out of order).
fn read_plain_row(
    tag: &TagText<'_>,
    spans: &[AttributeSpan],
    offset: u64,
    table: &mut TableReader,
    row: &mut RowBuffer,
    db: &mut Database,
) -> Result<bool, DbXmlError> {
    let mut reference = None;
    let mut ctime = None;
    let mut mtime = None;
    row.clear();
    for span in spans {
        let name = &tag.text[span.name.clone()];
        let raw = &tag.text[span.value.clone()];
        let Some(value) = attribute_text(name, raw, tag.is_clean(raw)) else {
            row.clear();
            return Ok(false);
        };
        let special = match name {
            "ref" => &mut reference,
            "__ctime" => &mut ctime,
            "__mtime" => &mut mtime,
            _ => {
                if row.push_in_order(name, span.hinted, &value, &table.columns, db) {
                    continue;
                }
                row.clear();
                return Ok(false);
            }
        };
        if special.replace(value).is_some() {
            row.clear();
            return Ok(false);
        }
    }
    table.complete_row(offset, reference, ctime, mtime, row)?;
    Ok(true)
}

fn unexpected(offset: u64, e: &BytesStart<'_>, place: Place, table: &str) -> DbXmlError {
    DbXmlError::UnexpectedElement {
        offset,
        name: e.name().as_ref().to_owned(),
        parent: place.describe(table),
    }
}

fn attribute(
    e: &BytesStart<'_>,
    key: &str,
    element: &'static str,
    offset: u64,
) -> Result<Option<String>, DbXmlError> {
    for attr in e.attributes() {
        let attr = attr.map_err(|err| DbXmlError::BadAttribute {
            offset,
            element,
            reason: err.to_string(),
        })?;
        if attr.key.as_ref() == key {
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| DbXmlError::BadAttribute {
                    offset,
                    element,
                    reason: err.to_string(),
                })?;
            return Ok(Some(collapse_whitespace(&value).into_owned()));
        }
    }
    Ok(None)
}

/// Xmlm's treatment of every attribute value it reads (`p_attr_value`, whatever the `strip`
/// setting): leading and trailing whitespace dropped, each inner run of space, TAB, LF or CR
/// (literal or from a character reference) turned into one space. Dumps written since xapi's
/// `%` protection have no raw whitespace; older ones do, and xapi reads them this way.
fn collapse_whitespace(value: &str) -> Cow<'_, str> {
    let is_white = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let bytes = value.as_bytes();
    let untouched = !bytes.first().is_some_and(|&b| is_white(b))
        && !bytes.last().is_some_and(|&b| is_white(b))
        && !bytes
            .windows(2)
            .any(|w| is_white(w[0]) && (w[0] != b' ' || is_white(w[1])));
    if untouched {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    for word in value
        .split([' ', '\t', '\n', '\r'])
        .filter(|word| !word.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    Cow::Owned(out)
}

fn read_pair(e: &BytesStart<'_>, offset: u64) -> Result<(String, String), DbXmlError> {
    let key = attribute(e, "key", "pair", offset)?.ok_or(DbXmlError::MissingAttribute {
        offset,
        element: "pair",
        attribute: "key",
    })?;
    let value = attribute(e, "value", "pair", offset)?.ok_or(DbXmlError::MissingAttribute {
        offset,
        element: "pair",
        attribute: "value",
    })?;
    Ok((unprotected(key), unprotected(value)))
}

/// `text` without xapi's `%` protection (a table name or a manifest pair's key or value).
fn unprotected(text: String) -> String {
    match unprotect(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(plain) => plain,
    }
}

/// Reads a row through quick-xml's attribute parser (any attribute order, any quoting).
fn read_row(
    e: &BytesStart<'_>,
    offset: u64,
    table: &mut TableReader,
    row: &mut RowBuffer,
    db: &mut Database,
) -> Result<(), DbXmlError> {
    let bad = |reason: String| DbXmlError::BadAttribute {
        offset,
        element: "row",
        reason,
    };
    let mut reference: Option<String> = None;
    let mut ctime: Option<String> = None;
    let mut mtime: Option<String> = None;
    row.clear();
    for attr in e.attributes() {
        let attr = attr.map_err(|err| bad(err.to_string()))?;
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| bad(err.to_string()))?;
        let value = collapse_whitespace(&value);
        match attr.key.as_ref() {
            "ref" => reference = Some(value.into_owned()),
            "__ctime" => ctime = Some(value.into_owned()),
            "__mtime" => mtime = Some(value.into_owned()),
            key => {
                let column = db.intern(key);
                if !row.insert(column, &value, &table.columns) {
                    row.clear();
                    return Err(bad(format!("column {key} appears twice")));
                }
            }
        }
    }
    table.complete_row(
        offset,
        reference.map(Cow::Owned),
        ctime.map(Cow::Owned),
        mtime.map(Cow::Owned),
        row,
    )
}

fn manifest_from_pairs(pairs: Vec<(String, String, u64)>) -> Result<Manifest, DbXmlError> {
    let mut major = None;
    let mut minor = None;
    let mut generation = None;
    let mut extra = Vec::new();
    for (key, value, offset) in pairs {
        let bad =
            |key: &'static str, value: String| DbXmlError::BadManifestValue { offset, key, value };
        match key.as_str() {
            KEY_SCHEMA_MAJOR => {
                major = Some(
                    value
                        .parse::<u32>()
                        .map_err(|_| bad(KEY_SCHEMA_MAJOR, value))?,
                );
            }
            KEY_SCHEMA_MINOR => {
                minor = Some(
                    value
                        .parse::<u32>()
                        .map_err(|_| bad(KEY_SCHEMA_MINOR, value))?,
                );
            }
            KEY_GENERATION => {
                generation = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| bad(KEY_GENERATION, value))?,
                );
            }
            _ => extra.push((key, value)),
        }
    }
    Ok(Manifest {
        schema_major: major.ok_or(DbXmlError::MissingManifestKey {
            key: KEY_SCHEMA_MAJOR,
        })?,
        schema_minor: minor.ok_or(DbXmlError::MissingManifestKey {
            key: KEY_SCHEMA_MINOR,
        })?,
        generation: generation.ok_or(DbXmlError::MissingManifestKey {
            key: KEY_GENERATION,
        })?,
        extra,
    })
}

/// Writes a database as xapi does, byte for byte.
pub fn write_db_xml<W: Write>(db: &Database, out: &mut W) -> std::io::Result<()> {
    let mut line = Vec::with_capacity(64 * 1024);
    out.write_all(DECLARATION)?;
    out.write_all(b"<database><manifest>")?;
    let m = &db.manifest;
    write_pair(out, KEY_SCHEMA_MAJOR, &m.schema_major.to_string())?;
    write_pair(out, KEY_SCHEMA_MINOR, &m.schema_minor.to_string())?;
    write_pair(out, KEY_GENERATION, &m.generation.to_string())?;
    for (k, v) in &m.extra {
        write_pair(out, k, v)?;
    }
    out.write_all(b"</manifest>")?;
    for (name, table) in in_read_back_order(|| db.tables(), table_name_as_read_back) {
        out.write_all(b"<table name=\"")?;
        write_attr_value(out, &protect(name))?;
        if table.is_empty() {
            out.write_all(b"\"/>")?;
            continue;
        }
        out.write_all(b"\">")?;
        for (reference, row) in
            in_read_back_order(|| table.iter(), |r: &String| row_ref_as_read_back(r))
        {
            line.clear();
            line.extend_from_slice(b"<row ref=\"");
            write_attr_value(&mut line, reference)?;
            write!(
                line,
                "\" __ctime=\"{}\" __mtime=\"{}\"",
                row.ctime, row.mtime
            )?;
            for (column, value) in row.columns() {
                line.push(b' ');
                line.extend_from_slice(column.as_bytes());
                line.extend_from_slice(b"=\"");
                write_attr_value(&mut line, &protect(value))?;
                line.push(b'"');
            }
            line.extend_from_slice(b"/>");
            out.write_all(&line)?;
        }
        out.write_all(b"</table>")?;
    }
    out.write_all(b"</database>")
}

/// The table name a reader gets back once `name` is written: `%` protection carries TAB, LF and
/// CR, and every other control character, which XML cannot carry, becomes U+FFFD.
pub fn table_name_as_read_back(name: &str) -> Cow<'_, str> {
    replace_forbidden(name)
}

/// The row reference a reader gets back once `reference` is written (bare, as xapi writes it):
/// control characters become U+FFFD and whitespace collapses as in every attribute.
pub fn row_ref_as_read_back(reference: &str) -> Cow<'_, str> {
    match replace_forbidden(reference) {
        Cow::Borrowed(text) => collapse_whitespace(text),
        Cow::Owned(text) => Cow::Owned(collapse_whitespace(&text).into_owned()),
    }
}

/// `text` with the control characters XML forbids (all below 0x20 but TAB, LF, CR) replaced by
/// U+FFFD, as [`write_attr_value`] writes them.
fn replace_forbidden(text: &str) -> Cow<'_, str> {
    let forbidden = |c: char| c < ' ' && !matches!(c, '\t' | '\n' | '\r');
    if text.contains(forbidden) {
        Cow::Owned(
            text.chars()
                .map(|c| if forbidden(c) { '\u{FFFD}' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

/// `entries` (in the database's order) in the order a reader of the written dump keeps them:
/// by the key it reads back, so that writing what was read gives the same bytes. Keys that all
/// read back as written (every real dump) keep their order: nothing is collected or sorted.
fn in_read_back_order<'a, K: ?Sized + 'a, V: 'a, I>(
    entries: impl Fn() -> I,
    read_back: impl Fn(&K) -> Cow<'_, str>,
) -> Box<dyn Iterator<Item = (&'a K, V)> + 'a>
where
    I: Iterator<Item = (&'a K, V)> + 'a,
{
    if entries().all(|(key, _)| matches!(read_back(key), Cow::Borrowed(_))) {
        return Box::new(entries());
    }
    let mut sorted: Vec<(&'a K, V)> = entries().collect();
    sorted.sort_by_cached_key(|(key, _)| read_back(key).into_owned());
    Box::new(sorted.into_iter())
}

/// Writes a database into a new byte vector.
pub fn db_xml_bytes(db: &Database) -> Vec<u8> {
    let mut out = Vec::new();
    write_db_xml(db, &mut out).expect("writing to a Vec never fails");
    out
}

/// One manifest pair, key and value `%`-protected (see the module docs).
fn write_pair<W: Write>(out: &mut W, key: &str, value: &str) -> std::io::Result<()> {
    out.write_all(b"<pair key=\"")?;
    write_attr_value(out, &protect(key))?;
    out.write_all(b"\" value=\"")?;
    write_attr_value(out, &protect(value))?;
    out.write_all(b"\"/>")
}

/// Xmlm's attribute escaping (`out_data`): `<`, `>`, `&` and `"` become entities (apostrophes
/// are left alone), TAB, LF and CR pass through, and every other control character below 0x20,
/// which XML 1.0 forbids, is replaced by U+FFFD.
fn write_attr_value<W: Write>(out: &mut W, value: &str) -> std::io::Result<()> {
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        let entity: &[u8] = match b {
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'&' => b"&amp;",
            b'"' => b"&quot;",
            b'\t' | b'\n' | b'\r' => continue,
            0..0x20 => "\u{FFFD}".as_bytes(),
            _ => continue,
        };
        out.write_all(&bytes[start..i])?;
        out.write_all(entity)?;
        start = i + 1;
    }
    out.write_all(&bytes[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<database><manifest><pair key=\"schema_major_vsn\" value=\"5\"/>",
        "<pair key=\"schema_minor_vsn\" value=\"909\"/><pair key=\"generation_count\" value=\"123456\"/></manifest>",
        "<table name=\"Bond\"/>",
        "<table name=\"VM\"><row ref=\"OpaqueRef:1\" __ctime=\"17\" __mtime=\"120045\" ",
        "HVM__boot_params=\"(('order'%.'cd'))\" _ref=\"OpaqueRef:1\" ",
        "name__description=\"50%%%.full%nof%.&quot;quotes&quot;%.&amp;%.'ticks'\" name__label=\"My%.VM\" ",
        "other_config=\"()\"/></table></database>"
    );

    #[test]
    fn hand_written_dump_is_read() {
        let db = read_db_xml(SMALL.as_bytes()).unwrap();
        assert_eq!(db.manifest.schema_major, 5);
        assert_eq!(db.manifest.schema_minor, 909);
        assert_eq!(db.generation(), 123_456);
        assert!(db.table("Bond").unwrap().is_empty());
        let vm = db.row("VM", "OpaqueRef:1").unwrap();
        assert_eq!((vm.ctime, vm.mtime), (17, 120_045));
        assert_eq!(vm.get("name__label"), Some("My VM"));
        assert_eq!(vm.get("HVM__boot_params"), Some("(('order' 'cd'))"));
        assert_eq!(
            vm.get("name__description"),
            Some("50% full\nof \"quotes\" & 'ticks'")
        );
    }

    #[test]
    fn names_that_read_back_otherwise_are_written_in_read_back_order() {
        let mut db = Database::default();
        db.insert_row("PV\u{1}S_cache", "OpaqueRef:b", 1, 1, [("uuid", "b")]);
        db.insert_row("PV\u{1}S_cache", "OpaqueRef:\u{2}a", 1, 1, [("uuid", "a")]);
        db.insert_row("PVS_site", "OpaqueRef:c", 1, 1, [("uuid", "c")]);
        let written = db_xml_bytes(&db);
        let again = db_xml_bytes(&read_db_xml(&written[..]).unwrap());
        assert_eq!(
            String::from_utf8_lossy(&again),
            String::from_utf8_lossy(&written),
            "writing what was read gives the same bytes"
        );
        assert_eq!(table_name_as_read_back("PV\u{1}S"), "PV\u{FFFD}S");
        assert_eq!(table_name_as_read_back("VM\t1"), "VM\t1");
        assert_eq!(
            row_ref_as_read_back(" OpaqueRef:a\u{3} "),
            "OpaqueRef:a\u{FFFD}"
        );
    }

    #[test]
    fn writer_reproduces_its_input_byte_for_byte() {
        let db = read_db_xml(SMALL.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(db_xml_bytes(&db)).unwrap(), SMALL);
    }

    #[test]
    fn start_end_pairs_and_whitespace_are_accepted() {
        let doc = "<database>\n <manifest><pair key=\"schema_major_vsn\" value=\"5\"></pair>\
                   <pair key=\"schema_minor_vsn\" value=\"63\"/><pair key=\"generation_count\" value=\"1\"/></manifest>\n\
                   <table name=\"VM\"><row ref=\"OpaqueRef:a\" uuid=\"u\"></row></table></database>\n";
        let db = read_db_xml(doc.as_bytes()).unwrap();
        assert_eq!(db.manifest.schema_minor, 63);
        assert_eq!(db.row("VM", "OpaqueRef:a").unwrap().get("uuid"), Some("u"));
    }

    #[test]
    fn unknown_tags_truncation_and_bad_numbers_are_typed_errors() {
        let err = read_db_xml(&b"<database><manifest/><blob/></database>"[..]).unwrap_err();
        assert!(
            matches!(err, DbXmlError::UnexpectedElement { ref name, .. } if name == "blob"),
            "{err}"
        );

        let cut = &SMALL.as_bytes()[..SMALL.len() - 20];
        let err = read_db_xml(cut).unwrap_err();
        assert!(
            matches!(err, DbXmlError::Truncated { .. } | DbXmlError::Xml { .. }),
            "{err}"
        );

        let bad = SMALL.replace("__ctime=\"17\"", "__ctime=\"1x7\"");
        let err = read_db_xml(bad.as_bytes()).unwrap_err();
        assert!(
            matches!(err, DbXmlError::BadInteger { ref field, ref value, .. } if field == "__ctime" && value == "1x7"),
            "{err}"
        );

        let bad_gen = SMALL.replace("value=\"123456\"", "value=\"12x\"");
        let err = read_db_xml(bad_gen.as_bytes()).unwrap_err();
        let pair_end = bad_gen.find("value=\"12x\"/>").unwrap() as u64 + 13;
        assert!(
            matches!(err, DbXmlError::BadManifestValue { offset, key: "generation_count", ref value } if offset == pair_end && value == "12x"),
            "{err}"
        );

        let no_gen = SMALL.replace("<pair key=\"generation_count\" value=\"123456\"/>", "");
        assert!(matches!(
            read_db_xml(no_gen.as_bytes()),
            Err(DbXmlError::MissingManifestKey {
                key: "generation_count"
            })
        ));
    }

    #[test]
    fn control_characters_are_written_as_replacement_characters_like_xmlm() {
        // Xmlm's out_data substitutes U+FFFD for every character below 0x20 except TAB, LF and
        // CR, so that the dump stays well-formed XML that xapi's own reader accepts.
        let mut db = read_db_xml(SMALL.as_bytes()).unwrap();
        assert!(db.set_field("VM", "OpaqueRef:1", "name__label", "a\u{1}b\u{1f}c>"));
        let text = String::from_utf8(db_xml_bytes(&db)).unwrap();
        assert!(
            text.contains("name__label=\"a\u{FFFD}b\u{FFFD}c&gt;\""),
            "{text}"
        );
        let back = read_db_xml(text.as_bytes()).unwrap();
        assert_eq!(
            back.row("VM", "OpaqueRef:1").unwrap().get("name__label"),
            Some("a\u{FFFD}b\u{FFFD}c>")
        );
    }

    #[test]
    fn attribute_escaping_is_xmlms() {
        // Xmlm's out_data: `<` `>` `&` `"` become entities, `'` stays (attributes are
        // double-quoted), TAB/LF/CR pass through (xapi's `%` layer has removed them already).
        let mut out = Vec::new();
        write_attr_value(&mut out, "a<b>c&d\"e'f\tg").unwrap();
        assert_eq!(out, b"a&lt;b&gt;c&amp;d&quot;e'f\tg");
    }

    #[test]
    fn raw_whitespace_in_attributes_is_collapsed_like_xmlm() {
        // A dump from before xapi's `%` protection holds raw whitespace; Xmlm drops it at both
        // ends and turns each inner run (literal or `&#10;`) into one space.
        let doc = SMALL.replace(
            "name__label=\"My%.VM\"",
            "name__label=\" My  old\t&#10;VM \" uuid=\"a b\"",
        );
        let db = read_db_xml(doc.as_bytes()).unwrap();
        let vm = db.row("VM", "OpaqueRef:1").unwrap();
        assert_eq!(vm.get("name__label"), Some("My old VM"));
        assert_eq!(vm.get("uuid"), Some("a b"));
        assert_eq!(collapse_whitespace("a b"), Cow::Borrowed("a b"));
    }

    #[test]
    fn blanks_and_percent_in_table_names_and_manifest_pairs_read_back() {
        let mut db = read_db_xml(SMALL.as_bytes()).unwrap();
        db.table_mut(" tab\there\n\r  50% ");
        db.manifest
            .extra
            .push(("key\twith  blanks ".to_owned(), "\tvalue\n100%".to_owned()));
        let text = String::from_utf8(db_xml_bytes(&db)).unwrap();
        assert!(
            text.contains("<table name=\"%.tab%there%n%r%.%.50%%%.\"/>"),
            "{text}"
        );
        assert!(
            text.contains("<pair key=\"key%twith%.%.blanks%.\" value=\"%tvalue%n100%%\"/>"),
            "{text}"
        );
        let back = read_db_xml(text.as_bytes()).unwrap();
        assert_eq!(back, db);
        assert_eq!(
            db_xml_bytes(&back),
            text.as_bytes(),
            "the dump is a fixed point"
        );
    }

    #[test]
    fn bare_table_names_and_pairs_read_as_xmlm_reads_them() {
        // What xapi writes (no `%` layer on names and pairs) still reads as before: blanks
        // collapsed like Xmlm, a `%` sequence xapi never writes there taken as protection.
        let doc = SMALL
            .replace("<table name=\"Bond\"/>", "<table name=\" Bond\tpair \"/>")
            .replace(
                "</manifest>",
                "<pair key=\"note\" value=\"a&#9;b%.c\"/></manifest>",
            );
        let db = read_db_xml(doc.as_bytes()).unwrap();
        assert!(db.table("Bond pair").is_some());
        assert_eq!(db.manifest.extra, [("note".to_owned(), "a b c".to_owned())]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for cut in 0..SMALL.len() {
            assert!(
                read_db_xml(&SMALL.as_bytes()[..cut]).is_err(),
                "cut at {cut} was accepted"
            );
        }
    }
}
