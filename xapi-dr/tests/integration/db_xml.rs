//! Round trips of the XML dump over generated databases.

use std::io::BufReader;

use proptest::prelude::*;
use xapi_dr::metadata::{Database, DbXmlError, Manifest, db_xml_bytes, read_db_xml};

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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn small_buffers_read_the_same_database(db in database(), capacity in 1usize..200) {
        // rows straddle the reader's buffer ends everywhere
        let xml = db_xml_bytes(&db);
        let back = read_db_xml(BufReader::with_capacity(capacity, &xml[..])).unwrap();
        prop_assert_eq!(back, db);
    }

    #[test]
    fn small_buffers_report_the_same_errors(db in database(), cut in any::<prop::sample::Index>(), byte in any::<u8>(), capacity in 1usize..200) {
        let mut xml = db_xml_bytes(&db);
        let i = cut.index(xml.len());
        xml[i] = byte;
        let whole = read_db_xml(&xml[..]).map_err(|e| e.to_string());
        let pieces = read_db_xml(BufReader::with_capacity(capacity, &xml[..])).map_err(|e| e.to_string());
        prop_assert_eq!(pieces, whole);
    }
}

const HEAD: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
    "<database>\n  <manifest>\n    <pair key=\"schema_major_vsn\" value=\"5\"/>\n",
    "    <pair key=\"schema_minor_vsn\" value=\"63\"/>\n",
    "    <pair key=\"generation_count\" value=\"9\"/>\n  </manifest>\n",
);

#[test]
fn an_indented_dump_with_raw_whitespace_reads_like_xmlm() {
    // Hand-formatted (or pre-2017) dumps: indentation between rows, attributes on several
    // lines, raw spaces and line breaks inside values, entities, attributes in any order.
    let doc = format!(
        "{HEAD}  <table name=\"VM\">\n    <row ref=\"OpaqueRef:a\"\n         __ctime=\"1\" __mtime=\"2\"\n         \
         name__label=\"  web\n\t01 \" uuid=\"u-a\"/>\n    <row uuid=\"u-b\" ref=\"OpaqueRef:b\" \
         name__description=\"50%%%.&quot;full&quot;&#10;x\" other_config=\"()\" />\n  </table>\n</database>\n"
    );
    let db = read_db_xml(doc.as_bytes()).unwrap();
    let a = db.row("VM", "OpaqueRef:a").unwrap();
    assert_eq!((a.ctime, a.mtime), (1, 2));
    assert_eq!(a.get("name__label"), Some("web 01"));
    assert_eq!(a.get("uuid"), Some("u-a"));
    let b = db.row("VM", "OpaqueRef:b").unwrap();
    assert_eq!((b.ctime, b.mtime), (0, 0));
    assert_eq!(b.get("name__description"), Some("50% \"full\" x"));
    assert_eq!(b.get("other_config"), Some("()"));
    assert_eq!(
        b.columns().map(|(k, _)| k).collect::<Vec<_>>(),
        ["name__description", "other_config", "uuid"]
    );
}

#[test]
fn entities_a_doctype_declares_are_not_expanded() {
    // Only XML's five entities and character references are read; an entity a DOCTYPE
    // declares is an error wherever it is used (no entity expansion, no external fetch).
    let doc = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE database [<!ENTITY big \"xxxxxxxx\">]>{}\
         <table name=\"VM\"><row ref=\"OpaqueRef:a\" name__label=\"&big;\"/></table></database>",
        &HEAD[HEAD.find("<database>").unwrap()..]
    );
    let err = read_db_xml(doc.as_bytes()).unwrap_err();
    let DbXmlError::BadAttribute {
        offset,
        element: "row",
        ..
    } = err
    else {
        panic!("{err}")
    };
    assert_eq!(offset as usize, doc.find("</table>").unwrap());
}

#[test]
fn rows_out_of_order_and_tables_listed_twice_are_merged() {
    let doc = format!(
        "{HEAD}<table name=\"VM\"><row ref=\"OpaqueRef:c\" uuid=\"c\"/><row ref=\"OpaqueRef:a\" uuid=\"a\"/></table>\
         <table name=\"VM\"><row ref=\"OpaqueRef:b\" uuid=\"b\"/></table></database>"
    );
    let db = read_db_xml(doc.as_bytes()).unwrap();
    let refs: Vec<&str> = db.rows("VM").map(|(r, _)| r).collect();
    assert_eq!(refs, ["OpaqueRef:a", "OpaqueRef:b", "OpaqueRef:c"]);

    let twice = doc.replace("OpaqueRef:b", "OpaqueRef:a");
    let err = read_db_xml(twice.as_bytes()).unwrap_err();
    assert!(
        matches!(err, DbXmlError::DuplicateRow { ref reference, .. } if reference == "OpaqueRef:a"),
        "{err}"
    );
}
