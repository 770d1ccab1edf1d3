//! The DB XML reader on arbitrary bytes; whatever it accepts must survive the writer: the dump
//! written from it parses, writing what it reads back gives the same bytes again (unless two
//! table names, or two row references of a table, read back as the same text, which merges
//! them), and where the input carries no character XML forbids (which the writer replaces by
//! U+FFFD as Xmlm does), the database comes back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;

use xapi_dr::metadata::db_xml::{row_ref_as_read_back, table_name_as_read_back};
use xapi_dr::metadata::{Database, db_xml_bytes, read_db_xml};

/// Whether the input may carry characters XML forbids: raw control bytes or character
/// references (`&#1;`).
fn has_forbidden_characters(data: &[u8]) -> bool {
    data.iter()
        .any(|&b| b < b' ' && !matches!(b, b'\t' | b'\n' | b'\r'))
        || data.windows(2).any(|w| w == b"&#")
}

/// Whether two table names, or two row references of one table, read back as the same text
/// once written: the reader then merges them, and the second write is shorter.
fn read_back_merges(db: &Database) -> bool {
    let mut names = HashSet::new();
    for (name, table) in db.tables() {
        if !names.insert(table_name_as_read_back(name).into_owned()) {
            return true;
        }
        let mut refs = HashSet::new();
        if table
            .keys()
            .any(|r| !refs.insert(row_ref_as_read_back(r).into_owned()))
        {
            return true;
        }
    }
    false
}

fuzz_target!(|data: &[u8]| {
    let Ok(db) = read_db_xml(data) else {
        return;
    };
    let written = db_xml_bytes(&db);
    let again = read_db_xml(&written[..]).unwrap_or_else(|err| {
        panic!(
            "the writer's dump does not parse: {err}\n{}",
            String::from_utf8_lossy(&written)
        )
    });
    if read_back_merges(&db) {
        return;
    }
    let rewritten = db_xml_bytes(&again);
    assert!(
        rewritten == written,
        "writing a written dump changed it:\n{}\n{}",
        String::from_utf8_lossy(&written),
        String::from_utf8_lossy(&rewritten)
    );
    if !has_forbidden_characters(data) {
        assert!(again == db, "DB XML round trip changed the database");
    }
});
