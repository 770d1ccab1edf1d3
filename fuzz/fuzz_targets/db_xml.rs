//! The DB XML reader on arbitrary bytes; whatever it accepts must survive the writer: the dump
//! written from the parsed database parses back to the same database.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xapi_dr::metadata::{db_xml_bytes, read_db_xml};

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
    assert!(again == db, "DB XML round trip changed the database");
});
