//! Property tests: encode → decode round-trips of [`Value`] and of a typed record, in both
//! encodings, through the client encoders (`encode_call` → server `decode_call`) and through the
//! server encoders (`encode_response` → client `decode_response`).

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use xapi_core::wire::{
    DateTime, Failure, Limits, Value, Zone, from_value, jsonrpc, to_value, xmlrpc,
};

/// Text XAPI can carry in XML: everything but the control characters the encoder drops.
fn xml_safe_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,12}",
        "[<>&\"' \t\r\na-z]{0,12}",
        "\\PC{0,8}",
        Just(String::new()),
        Just("  padded  ".to_owned()),
    ]
    .prop_map(|s| {
        s.chars()
            .filter(|&c| c >= ' ' || matches!(c, '\t' | '\n' | '\r'))
            .collect()
    })
}

fn any_double() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        Just(-0.0),
        (-1e6..1e6f64),
    ]
}

fn any_datetime() -> impl Strategy<Value = DateTime> {
    (
        0u16..=9999,
        1u8..=12,
        1u8..=28,
        0u8..24,
        0u8..60,
        0u8..60,
        prop_oneof![Just(0u32), 0u32..1_000_000_000],
        prop_oneof![
            Just(Zone::Utc),
            Just(Zone::Unspecified),
            (-1439i16..=1439).prop_map(Zone::Offset)
        ],
    )
        .prop_map(|(y, mo, d, h, mi, s, ns, z)| {
            DateTime::new(y, mo, d, h, mi, s, ns, z).expect("generated parts are in range")
        })
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        xml_safe_string().prop_map(Value::String),
        any::<i64>().prop_map(Value::Int),
        any_double().prop_map(Value::Double),
        any::<bool>().prop_map(Value::Bool),
        any_datetime().prop_map(Value::DateTime),
        Just(Value::Nil),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(Value::Base64),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(xml_safe_string(), inner, 0..6).prop_map(Value::Struct),
        ]
    })
}

/// Equality where NaN equals NaN (the codecs keep NaN but not its payload).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => {
            (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits()
        }
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same_value(x, y))
        }
        (Value::Struct(xs), Value::Struct(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .zip(ys)
                    .all(|((kx, x), (ky, y))| kx == ky && same_value(x, y))
        }
        _ => a == b,
    }
}

/// What an XML-RPC peer reads back: ints are untyped text on the wire, so they come back as
/// strings, exactly as from xapi.
fn as_xml_reads_it(value: &Value) -> Value {
    match value {
        Value::Int(n) => Value::String(n.to_string()),
        Value::Array(items) => Value::Array(items.iter().map(as_xml_reads_it).collect()),
        Value::Struct(members) => Value::Struct(
            members
                .iter()
                .map(|(k, v)| (k.clone(), as_xml_reads_it(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What a JSON-RPC peer reads back: datetimes and base64 travel as strings.
fn as_json_reads_it(value: &Value) -> Value {
    match value {
        Value::DateTime(dt) => Value::String(dt.to_string()),
        Value::Base64(bytes) => {
            use base64::Engine as _;
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        Value::Array(items) => Value::Array(items.iter().map(as_json_reads_it).collect()),
        Value::Struct(members) => Value::Struct(
            members
                .iter()
                .map(|(k, v)| (k.clone(), as_json_reads_it(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
enum PowerState {
    Halted,
    Paused,
    Running,
    #[serde(rename = "Suspended")]
    Suspended,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Record {
    uuid: String,
    memory: i64,
    ratio: f64,
    is_template: bool,
    power_state: Option<PowerState>,
    tags: Vec<String>,
    other_config: HashMap<String, String>,
    by_state: BTreeMap<PowerState, i64>,
    by_count: BTreeMap<i64, Vec<f64>>,
    parent: Option<String>,
    snapshot_time: DateTime,
}

fn same_f64(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

fn same_record(a: &Record, b: &Record) -> bool {
    a.uuid == b.uuid
        && a.memory == b.memory
        && same_f64(a.ratio, b.ratio)
        && a.is_template == b.is_template
        && a.power_state == b.power_state
        && a.tags == b.tags
        && a.other_config == b.other_config
        && a.by_state == b.by_state
        && a.by_count.len() == b.by_count.len()
        && a.by_count
            .iter()
            .zip(&b.by_count)
            .all(|((ka, va), (kb, vb))| {
                ka == kb && va.len() == vb.len() && va.iter().zip(vb).all(|(x, y)| same_f64(*x, *y))
            })
        && a.parent == b.parent
        && a.snapshot_time == b.snapshot_time
}

fn any_state() -> impl Strategy<Value = PowerState> {
    prop_oneof![
        Just(PowerState::Halted),
        Just(PowerState::Paused),
        Just(PowerState::Running),
        Just(PowerState::Suspended),
    ]
}

fn any_record() -> impl Strategy<Value = Record> {
    (
        (
            xml_safe_string(),
            any::<i64>(),
            any_double(),
            any::<bool>(),
            proptest::option::of(any_state()),
            proptest::collection::vec(xml_safe_string(), 0..4),
        ),
        (
            proptest::collection::hash_map(xml_safe_string(), xml_safe_string(), 0..4),
            proptest::collection::btree_map(any_state(), any::<i64>(), 0..3),
            proptest::collection::btree_map(
                any::<i64>(),
                proptest::collection::vec(any_double(), 0..3),
                0..3,
            ),
            proptest::option::of(xml_safe_string()),
            any_datetime(),
        ),
    )
        .prop_map(
            |(
                (uuid, memory, ratio, is_template, power_state, tags),
                (other_config, by_state, by_count, parent, snapshot_time),
            )| Record {
                uuid,
                memory,
                ratio,
                is_template,
                power_state,
                tags,
                other_config,
                by_state,
                by_count,
                parent,
                snapshot_time,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn value_round_trips_through_xmlrpc_server_encoder(value in any_value()) {
        let body = xmlrpc::encode_response(Ok(&value));
        let back: Value = xmlrpc::decode_response(&body, &Limits::default())
            .expect("well formed")
            .expect("success");
        prop_assert!(same_value(&back, &as_xml_reads_it(&value)), "{back:?}");
    }

    #[test]
    fn value_round_trips_through_xmlrpc_client_encoder(params in proptest::collection::vec(any_value(), 0..4)) {
        let body = xmlrpc::encode_call("VM.set_other_config", &params);
        let (method, back) = xmlrpc::decode_call(&body, &Limits::default()).expect("decodes");
        prop_assert_eq!(method, "VM.set_other_config");
        prop_assert_eq!(back.len(), params.len());
        for (b, p) in back.iter().zip(&params) {
            prop_assert!(same_value(b, &as_xml_reads_it(p)), "{b:?}");
        }
    }

    #[test]
    fn value_fragment_round_trips_like_task_results(value in any_value()) {
        let fragment = xmlrpc::encode_value(&value);
        let back: Value = xmlrpc::decode_value(fragment.as_bytes(), &Limits::default())
            .expect("decodes");
        prop_assert!(same_value(&back, &as_xml_reads_it(&value)), "{back:?}");
    }

    #[test]
    fn value_round_trips_through_jsonrpc_server_encoder(value in any_value(), v2 in any::<bool>()) {
        let version = if v2 { jsonrpc::Version::V2 } else { jsonrpc::Version::V1 };
        let body = jsonrpc::encode_response(version, &Value::Int(9), Ok(&value));
        let back: Value = jsonrpc::decode_response(&body, &Limits::default())
            .expect("well formed")
            .expect("success");
        prop_assert!(same_value(&back, &as_json_reads_it(&value)), "{back:?}");
    }

    #[test]
    fn value_round_trips_through_jsonrpc_client_encoder(params in proptest::collection::vec(any_value(), 0..4), id in 0..=i64::MAX as u64) {
        let body = jsonrpc::encode_call("VM.start", &params, id, jsonrpc::Version::V2);
        let call = jsonrpc::decode_call(&body, &Limits::default()).expect("decodes");
        prop_assert_eq!(call.version, jsonrpc::Version::V2);
        prop_assert_eq!(call.params.len(), params.len());
        for (b, p) in call.params.iter().zip(&params) {
            prop_assert!(same_value(b, &as_json_reads_it(p)), "{b:?}");
        }
        prop_assert_eq!(call.id, Value::Int(id as i64));
    }

    #[test]
    fn failures_round_trip_in_every_encoding(code in "[A-Z_]{1,20}", params in proptest::collection::vec(xml_safe_string(), 0..4)) {
        let failure = Failure::new(&code, params);
        let xml = xmlrpc::encode_response(Err(&failure));
        prop_assert_eq!(xmlrpc::decode_response::<Value>(&xml, &Limits::default()), Ok(Err(failure.clone())));
        for version in [jsonrpc::Version::V1, jsonrpc::Version::V2] {
            let json = jsonrpc::encode_response(version, &Value::from("id"), Err(&failure));
            prop_assert_eq!(jsonrpc::decode_response::<Value>(&json, &Limits::default()), Ok(Err(failure.clone())));
        }
    }

    #[test]
    fn typed_record_round_trips_through_xmlrpc(record in any_record()) {
        let value = to_value(&record).expect("encodable");
        let body = xmlrpc::encode_response(Ok(&value));
        let back: Record = xmlrpc::decode_response(&body, &Limits::default())
            .expect("well formed")
            .expect("success");
        prop_assert!(same_record(&back, &record), "{back:?}");
        let call = xmlrpc::encode_call("x", std::slice::from_ref(&value));
        let (_, params) = xmlrpc::decode_call(&call, &Limits::default()).expect("decodes");
        let back: Record = from_value(params.into_iter().next().expect("one param"))
            .expect("decodes");
        prop_assert!(same_record(&back, &record), "{back:?}");
    }

    #[test]
    fn typed_record_round_trips_through_jsonrpc(record in any_record(), v2 in any::<bool>()) {
        let version = if v2 { jsonrpc::Version::V2 } else { jsonrpc::Version::V1 };
        let value = to_value(&record).expect("encodable");
        let body = jsonrpc::encode_response(version, &Value::Int(1), Ok(&value));
        let back: Record = jsonrpc::decode_response(&body, &Limits::default())
            .expect("well formed")
            .expect("success");
        prop_assert!(same_record(&back, &record), "{back:?}");
        let call = jsonrpc::encode_call("x", std::slice::from_ref(&value), 1, version);
        let decoded = jsonrpc::decode_call(&call, &Limits::default()).expect("decodes");
        let back: Record = from_value(decoded.params.into_iter().next().expect("one param"))
            .expect("decodes");
        prop_assert!(same_record(&back, &record), "{back:?}");
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let limits = Limits::default();
        let _ = xmlrpc::decode_response::<Value>(&bytes, &limits);
        let _ = xmlrpc::decode_value::<Record>(&bytes, &limits);
        let _ = xmlrpc::decode_call(&bytes, &limits);
        let _ = jsonrpc::decode_response::<Record>(&bytes, &limits);
        let _ = jsonrpc::decode_call(&bytes, &limits);
    }

    #[test]
    fn decoders_never_panic_on_mutated_documents(value in any_value(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let limits = Limits::default();
        let mut xml = xmlrpc::encode_response(Ok(&value));
        let i = cut.index(xml.len());
        xml[i] = byte;
        if let Err(e) = xmlrpc::decode_response::<Value>(&xml, &limits) {
            prop_assert!(e.offset as usize <= xml.len());
        }
        let mut json = jsonrpc::encode_response(jsonrpc::Version::V2, &Value::Int(1), Ok(&value));
        let i = cut.index(json.len());
        json[i] = byte;
        if let Err(e) = jsonrpc::decode_response::<Value>(&json, &limits) {
            prop_assert!(e.offset as usize <= json.len());
        }
    }
}

/// Enums with data travel as a struct of one member, the shape `to_value` gives them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Change {
    Removed,
    Renamed(String),
    Moved { from: i64, to: i64 },
    Pair(bool, String),
}

fn any_change() -> impl Strategy<Value = Change> {
    prop_oneof![
        Just(Change::Removed),
        xml_safe_string().prop_map(Change::Renamed),
        (any::<i64>(), any::<i64>()).prop_map(|(from, to)| Change::Moved { from, to }),
        (any::<bool>(), xml_safe_string()).prop_map(|(b, s)| Change::Pair(b, s)),
    ]
}

proptest! {
    #[test]
    fn enums_with_data_round_trip_in_both_encodings(changes in proptest::collection::vec(any_change(), 0..4)) {
        let value = to_value(&changes).expect("encodable");
        let xml = xmlrpc::encode_response(Ok(&value));
        let back: Vec<Change> = xmlrpc::decode_response(&xml, &Limits::default())
            .expect("well formed")
            .expect("success");
        prop_assert_eq!(&back, &changes);
        let json = jsonrpc::encode_response(jsonrpc::Version::V2, &Value::Int(1), Ok(&value));
        let back: Vec<Change> = jsonrpc::decode_response(&json, &Limits::default())
            .expect("well formed")
            .expect("success");
        prop_assert_eq!(&back, &changes);
        prop_assert_eq!(from_value::<Vec<Change>>(value).expect("decodes"), changes);
    }
}
