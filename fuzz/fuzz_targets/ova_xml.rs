//! `ova.xml` parsing on arbitrary bytes; whatever parses must survive the writer. The reader is
//! lenient (it takes characters XML forbids, such as NUL, which the writer drops as xapi's
//! does), so the written form must parse, and where nothing was dropped the document comes back
//! struct by struct: the header, every object's class and id, and every value of every record,
//! less what the writer documents it changes (integers are written untyped and read back as
//! strings, doubles as `%.16g`). A struct whose member names repeat (which no xapi writes) is
//! compared on its other members only; every other struct of the document still is, in full.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use xapi_backup::format::ova_xml::{OvaXml, Value, format_double};

/// Whether the input may carry characters XML forbids: raw control bytes or character
/// references (`&#1;`).
fn has_forbidden_characters(data: &[u8]) -> bool {
    data.iter()
        .any(|&b| b < b' ' && !matches!(b, b'\t' | b'\n' | b'\r'))
        || data.windows(2).any(|w| w == b"&#")
}

/// A `<double>`'s text as the reader reads it.
fn read_double(text: &str) -> f64 {
    match text.trim() {
        "nan" | "-nan" => f64::NAN,
        "inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        other => other
            .parse()
            .unwrap_or_else(|err| panic!("the writer wrote the double {other:?}: {err}")),
    }
}

/// `value` as it reads back after the writer: integers untyped (as xapi writes OCaml ints), so
/// strings; doubles through their `%.16g` text.
fn after_writer(value: &Value) -> Value {
    match value {
        Value::Int(i) => Value::String(i.to_string()),
        Value::Int32(i) => Value::Int(i64::from(*i)),
        Value::Double(d) => Value::Double(read_double(&format_double(*d))),
        Value::Array(items) => Value::Array(items.iter().map(after_writer).collect()),
        Value::Struct(members) => Value::Struct(
            members
                .iter()
                .map(|(name, v)| (name.clone(), after_writer(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The member names that appear more than once in one struct.
fn repeated_names(members: &[(String, Value)]) -> BTreeSet<&str> {
    let mut seen = BTreeSet::new();
    members
        .iter()
        .filter(|(name, _)| !seen.insert(name.as_str()))
        .map(|(name, _)| name.as_str())
        .collect()
}

/// Compare two structs member by member, in order. When `expected` repeats a member name, the
/// members of that name are left out of the comparison of this struct only.
fn assert_same_struct(expected: &[(String, Value)], got: &[(String, Value)], place: &str) {
    let repeated = repeated_names(expected);
    if repeated.is_empty() {
        let names = |members: &[(String, Value)]| {
            members.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
        };
        assert_eq!(names(expected), names(got), "{place}: member names changed");
        for ((name, e), (_, g)) in expected.iter().zip(got) {
            assert_same(e, g, &format!("{place}.{name}"));
        }
        return;
    }
    assert_eq!(
        expected.len(),
        got.len(),
        "{place}: member count changed (names repeated: {repeated:?})"
    );
    let unique = |members: &[(String, Value)]| {
        members
            .iter()
            .filter(|(name, _)| !repeated.contains(name.as_str()))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_same_struct(&unique(expected), &unique(got), place);
}

fn assert_same(expected: &Value, got: &Value, place: &str) {
    match (expected, got) {
        (Value::Struct(e), Value::Struct(g)) => assert_same_struct(e, g, place),
        (Value::Array(e), Value::Array(g)) => {
            assert_eq!(e.len(), g.len(), "{place}: array length changed");
            for (i, (e, g)) in e.iter().zip(g).enumerate() {
                assert_same(e, g, &format!("{place}[{i}]"));
            }
        }
        (Value::Double(e), Value::Double(g)) if e.is_nan() && g.is_nan() => {}
        (e, g) => assert_eq!(e, g, "{place} changed"),
    }
}

/// `got` is `expected` written and read back.
fn assert_round_trip(expected: &OvaXml, got: &OvaXml) {
    let (e, g) = (&expected.version, &got.version);
    assert_eq!(
        (
            &e.hostname,
            &e.date,
            &e.product_version,
            &e.product_brand,
            &e.build_number
        ),
        (
            &g.hostname,
            &g.date,
            &g.product_version,
            &g.product_brand,
            &g.build_number
        ),
        "version: text members changed"
    );
    assert_eq!(
        (e.xapi_major, e.xapi_minor, e.export_vsn),
        (g.xapi_major, g.xapi_minor, g.export_vsn),
        "version: numbers changed"
    );
    let extra: Vec<(String, Value)> = e
        .extra
        .iter()
        .map(|(name, v)| (name.clone(), after_writer(v)))
        .collect();
    assert_same_struct(&extra, &g.extra, "version");
    assert_eq!(
        expected.objects.len(),
        got.objects.len(),
        "the number of objects changed"
    );
    for (i, (e, g)) in expected.objects.iter().zip(&got.objects).enumerate() {
        assert_eq!(
            (&e.class, &e.id),
            (&g.class, &g.id),
            "objects[{i}]: class or id changed"
        );
        assert_same(
            &after_writer(&e.snapshot),
            &g.snapshot,
            &format!("objects[{i}] ({})", e.id),
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(ova) = OvaXml::parse(data) else {
        return;
    };
    let _ = ova.disks();
    let _ = ova.vms();
    let _ = ova.vifs();
    let written = ova.to_xml();
    if has_forbidden_characters(data) {
        // The writer drops what XML forbids (as xapi's does), so a hostile member name such as
        // `export_vsn\0` can collide with a known field once written: nothing more to check.
        return;
    }
    let again = OvaXml::parse(written.as_bytes())
        .unwrap_or_else(|err| panic!("the writer's output does not parse: {err}\n{written}"));
    assert_round_trip(&ova, &again);
    let rewritten = again.to_xml();
    let third = OvaXml::parse(rewritten.as_bytes())
        .unwrap_or_else(|err| panic!("the rewritten ova.xml does not parse: {err}\n{rewritten}"));
    assert_round_trip(&again, &third);
});
