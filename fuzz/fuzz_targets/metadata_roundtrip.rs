//! Writer round trips of the pool metadata: any database written as a DB XML dump parses back
//! to the same database; any delta encodes and decodes to itself; any set or map column writes
//! and parses back to the same items.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use xapi_dr::metadata::sexpr::{parse_map, parse_set, write_map, write_set};
use xapi_dr::metadata::{Database, Delta, Manifest, db_xml_bytes, read_db_xml};

/// What the writer does to a control character XML 1.0 forbids, as Xmlm does: U+FFFD.
fn as_written(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c < ' ' && !matches!(c, '\t' | '\n' | '\r') {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// Column names are XML attribute names (datamodel identifiers); keep them to that alphabet.
fn identifier(raw: &str) -> String {
    let name: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(24)
        .collect();
    // `ref`, `__ctime` and `__mtime` are the row element's own attributes, never column names.
    if name.is_empty()
        || name.starts_with(|c: char| c.is_ascii_digit())
        || matches!(name.as_str(), "ref" | "__ctime" | "__mtime")
    {
        format!("c{name}")
    } else {
        name
    }
}

#[derive(Debug, Arbitrary)]
struct ArbitraryRow {
    reference: String,
    ctime: i64,
    mtime: i64,
    columns: Vec<(String, String)>,
}

#[derive(Debug, Arbitrary)]
enum Input {
    Database {
        generation: i64,
        extra: Vec<(String, String)>,
        tables: Vec<(String, Vec<ArbitraryRow>)>,
    },
    Delta(Delta2),
    Set(Vec<String>),
    Map(Vec<(String, String)>),
}

#[derive(Debug, Arbitrary)]
enum Delta2 {
    Create(String, String, Vec<(String, String)>),
    Delete(String, String),
    Write(String, String, String, String),
}

fuzz_target!(|input: Input| match input {
    Input::Database {
        generation,
        extra,
        tables,
    } => {
        // Manifest pairs and table names are any text (blanks and `%` included); only the keys
        // the manifest reads as numbers are left out.
        let extra = extra
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "schema_major_vsn" | "schema_minor_vsn" | "generation_count"
                )
            })
            .map(|(k, v)| (as_written(k), as_written(v)))
            .collect();
        let mut db = Database::new(Manifest {
            generation,
            extra,
            ..Manifest::default()
        });
        for (table, rows) in &tables {
            let table = as_written(table);
            db.table_mut(&table);
            for row in rows {
                // Control characters XML forbids are written as U+FFFD (Xmlm's behaviour), so
                // the database is built with them already replaced. The reader normalises the
                // `ref` attribute (trims and collapses blanks), so references carry none, as
                // real ones (`OpaqueRef:<uuid>`) do not.
                let reference: String = as_written(&row.reference)
                    .chars()
                    .filter(|c| !matches!(c, ' ' | '\t' | '\n' | '\r'))
                    .collect();
                let columns: Vec<(String, String)> = row
                    .columns
                    .iter()
                    .map(|(k, v)| (identifier(k), as_written(v)))
                    .collect();
                db.insert_row(
                    &table,
                    &reference,
                    row.ctime,
                    row.mtime,
                    columns.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                );
            }
        }
        let xml = db_xml_bytes(&db);
        let back = read_db_xml(&xml[..]).unwrap_or_else(|err| {
            panic!(
                "written dump does not parse: {err}\n{}",
                String::from_utf8_lossy(&xml)
            )
        });
        assert!(back == db, "DB XML round trip changed the database");
    }
    Input::Delta(d) => {
        let delta = match d {
            Delta2::Create(table, reference, columns) => Delta::CreateRow {
                table,
                reference,
                columns,
            },
            Delta2::Delete(table, reference) => Delta::DeleteRow { table, reference },
            Delta2::Write(table, reference, column, value) => Delta::WriteField {
                table,
                reference,
                column,
                value,
            },
        };
        let encoded = delta.encode();
        assert_eq!(Delta::decode(&encoded), Ok(delta), "delta round trip");
    }
    Input::Set(items) => {
        let written = write_set(&items);
        assert_eq!(
            parse_set(&written),
            Ok(items),
            "set round trip via {written:?}"
        );
    }
    Input::Map(pairs) => {
        let written = write_map(&pairs);
        assert_eq!(
            parse_map(&written),
            Ok(pairs),
            "map round trip via {written:?}"
        );
    }
});
