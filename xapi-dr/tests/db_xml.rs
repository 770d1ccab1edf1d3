//! Round trips of the XML dump over generated databases.

use proptest::prelude::*;
use xapi_dr::metadata::{Database, Manifest, db_xml_bytes, read_db_xml};

fn value_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => any::<char>().prop_filter("XML has no other control characters", |c| !c.is_control()),
        1 => prop::sample::select(vec![' ', '\t', '\n', '\r', '%', '&', '"', '\'', '<', '>', '(', ')', '\\', '_', '.']),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop::collection::vec(value_char(), 0..24).prop_map(String::from_iter)
}

fn column_name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,10}".prop_filter("reserved row attributes", |c| {
        !matches!(c.as_str(), "ref" | "__ctime" | "__mtime")
    })
}

#[derive(Debug, Clone)]
struct RowSpec {
    reference: String,
    ctime: i64,
    mtime: i64,
    columns: Vec<(String, String)>,
}

fn row() -> impl Strategy<Value = RowSpec> {
    (
        "OpaqueRef:[0-9a-f-]{1,12}",
        any::<i64>(),
        any::<i64>(),
        prop::collection::vec((column_name(), value()), 0..8),
    )
        .prop_map(|(reference, ctime, mtime, columns)| RowSpec {
            reference,
            ctime,
            mtime,
            columns,
        })
}

fn database() -> impl Strategy<Value = Database> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<i64>(),
        // xapi writes only numeric manifest values; extra ones get no `%` protection, so keep
        // them free of whitespace, which Xmlm (and our reader) collapses in attributes.
        prop::collection::vec(("[a-z]{1,6}_x", "[!-~]{0,10}"), 0..3),
        prop::collection::vec(
            ("[A-Za-z_]{1,10}", prop::collection::vec(row(), 0..5)),
            0..6,
        ),
    )
        .prop_map(|(major, minor, generation, extra, tables)| {
            let mut db = Database::new(Manifest {
                schema_major: major,
                schema_minor: minor,
                generation,
                extra,
            });
            for (table, rows) in tables {
                db.table_mut(&table);
                for r in rows {
                    db.insert_row(
                        &table,
                        &r.reference,
                        r.ctime,
                        r.mtime,
                        r.columns.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    );
                }
            }
            db
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn read_inverts_write(db in database()) {
        let xml = db_xml_bytes(&db);
        let back = read_db_xml(&xml[..]).unwrap();
        prop_assert_eq!(&back, &db);
        // and the writer's output is a fixed point
        prop_assert_eq!(db_xml_bytes(&back), xml);
    }

    #[test]
    fn output_is_one_line_after_the_declaration(db in database()) {
        let xml = db_xml_bytes(&db);
        let text = String::from_utf8(xml).unwrap();
        let (decl, body) = text.split_once('\n').unwrap();
        prop_assert_eq!(decl, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        prop_assert!(!body.contains(['\n', '\r', '\t']));
    }

    #[test]
    fn reader_never_panics_on_mangled_dumps(db in database(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut xml = db_xml_bytes(&db);
        let i = cut.index(xml.len());
        xml[i] = byte;
        let _ = read_db_xml(&xml[..]);
        let _ = read_db_xml(&xml[..i]);
    }
}
