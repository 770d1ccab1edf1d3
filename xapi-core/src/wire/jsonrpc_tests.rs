//! Unit tests of the JSON-RPC codec, one per quirk of wire-protocol.md §4, §5, §6.

// the codec must be exact: floats are compared bit for bit on purpose
#![allow(clippy::float_cmp)]

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::*;
use crate::wire::ErrorCode;
use crate::wire::{DateTime, DecodeErrorKind, Ref};

struct Vm;

fn ok<T: DeserializeOwned>(result: &str) -> T {
    let body = format!(r#"{{"jsonrpc": "2.0", "result": {result}, "id": 1}}"#);
    match decode_response::<T>(body.as_bytes(), &Limits::default()) {
        Ok(Ok(v)) => v,
        Ok(Err(failure)) => panic!("unexpected failure {failure}"),
        Err(e) => panic!("decode error {e} in {body}"),
    }
}

fn decode_err<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> DecodeError {
    decode_response::<T>(body.as_bytes(), &Limits::default()).expect_err("must not decode")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
enum PowerState {
    Halted,
    Running,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
struct VmRecord {
    uuid: String,
    memory_static_max: i64,
    power_state: Option<PowerState>,
    snapshot_time: DateTime,
    ratio: f64,
    tags: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
struct Event {
    id: i64,
    timestamp: f64,
    class: String,
    operation: String,
    #[serde(rename = "ref")]
    reference: String,
}

#[test]
fn success_decodes_in_both_versions() {
    let limits = Limits::default();
    assert_eq!(
        decode_response::<String>(br#"{"result": "Halted", "error": null, "id": 3}"#, &limits),
        Ok(Ok("Halted".to_owned()))
    );
    assert_eq!(
        decode_response::<String>(br#"{"jsonrpc":"2.0","result":"Halted","id":"a"}"#, &limits),
        Ok(Ok("Halted".to_owned()))
    );
    assert_eq!(
        decode_response::<String>(br#"{"error": null, "id": 3, "result": "x"}"#, &limits),
        Ok(Ok("x".to_owned()))
    );
}

#[test]
fn v1_failure_shape_decodes() {
    let body = br#"{"result": null, "error": ["HOST_IS_SLAVE", "192.0.2.7"], "id": 1}"#;
    let failure = decode_response::<VmRecord>(body, &Limits::default())
        .expect("well formed")
        .expect_err("a failure");
    assert_eq!(failure.code, ErrorCode::HostIsSlave);
    assert_eq!(failure.param("master"), Some("192.0.2.7"));
}

#[test]
fn v2_failure_shape_decodes() {
    let body = br#"{"jsonrpc": "2.0", "error": {"code": 1, "message": "SESSION_INVALID",
        "data": ["OpaqueRef:s"]}, "id": 1}"#;
    let failure = decode_response::<VmRecord>(body, &Limits::default())
        .expect("well formed")
        .expect_err("a failure");
    assert_eq!(failure.code, ErrorCode::SessionInvalid);
    assert_eq!(failure.params, vec!["OpaqueRef:s"]);
    let body = br#"{"jsonrpc": "2.0", "error": {"code": 1, "message": "EVENTS_LOST"}, "id": 1}"#;
    let failure = decode_response::<()>(body, &Limits::default())
        .expect("well formed")
        .expect_err("a failure");
    assert_eq!(failure.code, ErrorCode::EventsLost);
    assert!(failure.params.is_empty());
}

#[test]
fn bare_nan_and_infinity_tokens_decode() {
    assert_eq!(ok::<f64>("Infinity"), f64::INFINITY);
    assert_eq!(ok::<f64>("-Infinity"), f64::NEG_INFINITY);
    assert!(ok::<f64>("NaN").is_nan());
    assert_eq!(
        ok::<Vec<f64>>("[1, -Infinity, 2.5e3]"),
        vec![1.0, f64::NEG_INFINITY, 2500.0]
    );
    assert!(matches!(ok::<Value>("NaN"), Value::Double(x) if x.is_nan()));
    // inside a string it stays text
    assert_eq!(ok::<String>(r#""NaN""#), "NaN");
}

#[test]
fn ints_beyond_2_pow_53_are_exact() {
    assert_eq!(ok::<i64>("9007199254740993"), 9_007_199_254_740_993);
    assert_eq!(ok::<i64>("9223372036854775807"), i64::MAX);
    assert_eq!(ok::<i64>("-9223372036854775808"), i64::MIN);
    assert_eq!(
        ok::<Value>("9007199254740993"),
        Value::Int(9_007_199_254_740_993)
    );
    assert_eq!(ok::<u64>("18446744073709551615"), u64::MAX);
}

#[test]
fn numbers_in_strings_decode_into_numeric_fields() {
    let event: Event = ok(r#"{"id": "1234", "timestamp": "0.0", "class": "vm",
        "operation": "mod", "ref": "OpaqueRef:v", "snapshot": {"uuid": "u"}}"#);
    assert_eq!(event.id, 1234);
    assert_eq!(event.timestamp, 0.0);
    assert_eq!(event.reference, "OpaqueRef:v");
    let err = decode_err::<Event>(r#"{"result": {"id": "12a"}, "id": 1}"#);
    assert!(
        matches!(err.kind, DecodeErrorKind::InvalidNumber { ty: "i64", .. }),
        "{err}"
    );
    assert_eq!(err.offset, 18);
}

#[test]
fn records_with_missing_and_unknown_fields_decode() {
    let record: VmRecord = ok(r#"{"uuid": "u", "memory_static_max": 4294967296,
        "power_state": "Running", "snapshot_time": "20250319T04:16:24Z",
        "future": {"deep": [[{"x": null}], "\"quoted\\"]}, "ratio": Infinity}"#);
    assert_eq!(
        record,
        VmRecord {
            uuid: "u".into(),
            memory_static_max: 4_294_967_296,
            power_state: Some(PowerState::Running),
            snapshot_time: DateTime::parse("20250319T04:16:24Z").expect("valid"),
            ratio: f64::INFINITY,
            tags: Vec::new(),
        }
    );
}

#[test]
fn datetimes_decode_from_strings_in_every_form() {
    let expected = DateTime::parse("20250319T04:16:24Z").expect("valid");
    for text in [
        r#""20250319T04:16:24Z""#,
        r#""2025-03-19T04:16:24Z""#,
        r#""2025-03-19T06:16:24+02:00""#,
        "1742357784",
    ] {
        let dt: DateTime = ok(text);
        assert_eq!(dt.to_unix_seconds(), expected.to_unix_seconds(), "{text}");
    }
}

#[test]
fn maps_keyed_by_refs_ints_and_enums_decode() {
    let records: HashMap<Ref<Vm>, VmRecord> =
        ok(r#"{"OpaqueRef:a": {"uuid": "a"}, "OpaqueRef:b": {}}"#);
    assert_eq!(records[&Ref::new("OpaqueRef:a")].uuid, "a");
    assert_eq!(ok::<BTreeMap<i64, i64>>(r#"{"-1": 2, "10": 3}"#)[&-1], 2);
    assert_eq!(
        ok::<HashMap<PowerState, i64>>(r#"{"Halted": 2}"#)[&PowerState::Halted],
        2
    );
}

#[test]
fn strings_with_escapes_decode() {
    assert_eq!(
        ok::<String>(r#""a\"b\\c\/d\n\u00e9\ud83d\ude00""#),
        "a\"b\\c/d\né😀"
    );
    let err = decode_err::<String>(r#"{"result": "\ud800x", "id": 1}"#);
    assert!(matches!(err.kind, DecodeErrorKind::Syntax(_)));
    assert_eq!(err.offset, 12);
}

#[test]
fn void_and_null_results_decode() {
    ok::<()>(r#""""#);
    assert_eq!(ok::<Option<i64>>("null"), None);
    let body = br#"{"result": null, "error": null, "id": 1}"#;
    assert_eq!(
        decode_response::<Option<String>>(body, &Limits::default()),
        Ok(Ok(None))
    );
    let err = decode_err::<i64>(r#"{"id": 1}"#);
    assert_eq!(err.kind, DecodeErrorKind::MissingMember("result"));
}

#[test]
fn malformed_json_gives_offsets_and_never_panics() {
    let body = r#"{"jsonrpc": "2.0", "result": {"a": [1, 2.5, "x\"y", true, null, NaN, {"k": -Infinity}]}, "id": 1}"#;
    for cut in 0..body.len() - 1 {
        let err = decode_response::<Value>(&body.as_bytes()[..cut], &Limits::default())
            .expect_err("truncated input must not decode");
        assert!(err.offset as usize <= cut, "cut {cut}: {err}");
    }
    let err = decode_err::<Value>(r#"{"result": [1 2], "id": 1}"#);
    assert_eq!(err.offset, 14);
    let err = decode_err::<i64>(r#"{"result": 1.2.3, "id": 1}"#);
    assert!(
        matches!(err.kind, DecodeErrorKind::InvalidNumber { .. }),
        "{err}"
    );
    assert_eq!(err.offset, 11);
    let err = decode_err::<Value>(r#"{"result": tru, "id": 1}"#);
    assert_eq!(err.offset, 11);
    let err = decode_err::<Value>(r#"{"result": 1, "id": 1} x"#);
    assert_eq!(err.offset, 23);
}

#[test]
fn limits_bound_size_and_depth() {
    let limits = Limits {
        max_response_bytes: 10,
        max_depth: 64,
    };
    let err =
        decode_response::<Value>(br#"{"result": 1, "id": 1}"#, &limits).expect_err("too large");
    assert!(matches!(err.kind, DecodeErrorKind::TooLarge { .. }));
    let limits = Limits {
        max_depth: 4,
        ..Limits::default()
    };
    let deep = format!(
        r#"{{"result": {}1{}, "id": 1}}"#,
        "[".repeat(10),
        "]".repeat(10)
    );
    let err = decode_response::<Value>(deep.as_bytes(), &limits).expect_err("too deep");
    assert_eq!(err.kind, DecodeErrorKind::TooDeep { limit: 4 });
    let err = decode_response::<()>(deep.as_bytes(), &limits).expect_err("too deep to skip");
    assert_eq!(err.kind, DecodeErrorKind::TooDeep { limit: 4 });
}

#[test]
fn calls_encode_in_both_versions() {
    let params = [
        Value::from("OpaqueRef:s"),
        Value::Int(1 << 62),
        Value::Double(60.1),
    ];
    assert_eq!(
        String::from_utf8(encode_call("event.from", &params, 7, Version::V2)).expect("utf-8"),
        r#"{"jsonrpc":"2.0","method":"event.from","params":["OpaqueRef:s",4611686018427387904,60.1],"id":7}"#
    );
    assert_eq!(
        String::from_utf8(encode_call("VM.start", &[], 8, Version::V1)).expect("utf-8"),
        r#"{"method":"VM.start","params":[],"id":8}"#
    );
}

#[test]
fn server_decodes_calls_and_requires_an_id() {
    let call = decode_call(
        br#"{"jsonrpc": "2.0", "method": "VM.start", "params": ["OpaqueRef:s", 9007199254740993, 1.5, NaN], "id": "uuid-1"}"#,
        &Limits::default(),
    )
    .expect("decodes");
    assert_eq!(call.method, "VM.start");
    assert_eq!(call.version, Version::V2);
    assert_eq!(call.id, Value::from("uuid-1"));
    assert_eq!(call.params[1], Value::Int(9_007_199_254_740_993));
    assert!(matches!(call.params[3], Value::Double(x) if x.is_nan()));
    let call = decode_call(
        br#"{"method": "m", "params": [], "id": 4}"#,
        &Limits::default(),
    )
    .expect("decodes");
    assert_eq!((call.version, call.id), (Version::V1, Value::Int(4)));
    for body in [
        &br#"{"method": "m", "params": []}"#[..],
        br#"{"method": "m", "params": [], "id": null}"#,
    ] {
        let err = decode_call(body, &Limits::default()).expect_err("no id");
        assert_eq!(err.kind, DecodeErrorKind::MissingMember("id"));
    }
}

#[test]
fn server_responses_have_xapis_exact_shapes() {
    let failure = Failure::new("VM_BAD_POWER_STATE", ["OpaqueRef:v", "halted", "running"]);
    let cases = [
        (
            encode_response(Version::V1, &Value::Int(1), Ok(&Value::Double(1.0))),
            r#"{"result":1.0,"error":null,"id":1}"#,
        ),
        (
            encode_response(Version::V1, &Value::Int(1), Err(&failure)),
            r#"{"result":null,"error":["VM_BAD_POWER_STATE","OpaqueRef:v","halted","running"],"id":1}"#,
        ),
        (
            encode_response(Version::V2, &Value::from("x"), Ok(&Value::Double(f64::NAN))),
            r#"{"jsonrpc":"2.0","result":NaN,"id":"x"}"#,
        ),
        (
            encode_response(Version::V2, &Value::Int(2), Err(&failure)),
            r#"{"jsonrpc":"2.0","error":{"code":1,"message":"VM_BAD_POWER_STATE","data":["OpaqueRef:v","halted","running"]},"id":2}"#,
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(String::from_utf8(body.clone()).expect("utf-8"), expected);
        let decoded = decode_response::<Value>(&body, &Limits::default()).expect("decodes");
        if expected.contains("error\":[") || expected.contains("error\":{") {
            assert_eq!(decoded, Err(failure.clone()));
        }
    }
}

#[test]
fn a_bare_string_error_is_a_code_without_parameters() {
    let failure = decode_response::<Value>(
        br#"{"result": null, "error": "SESSION_INVALID", "id": 1}"#,
        &Limits::default(),
    )
    .expect("well formed")
    .expect_err("a failure");
    assert_eq!(failure.code, ErrorCode::SessionInvalid);
    assert!(failure.params.is_empty());
}

#[test]
fn html_error_pages_are_unexpected_tokens() {
    let err = decode_err::<Value>("<html><body>500</body></html>");
    assert_eq!(err.offset, 0);
    assert!(
        matches!(err.kind, DecodeErrorKind::Unexpected { .. }),
        "{err}"
    );
    let err = decode_err::<Value>("{\"result\": \"\u{e9}\", \"id\": 1}\u{0}\u{ff}");
    assert!(
        matches!(err.kind, DecodeErrorKind::Unexpected { .. }),
        "{err}"
    );
    let bytes = b"{\"result\": \"\xff\", \"id\": 1}";
    let err = decode_response::<Value>(bytes, &Limits::default()).expect_err("not UTF-8");
    assert_eq!(err.offset, 12);
    assert!(matches!(err.kind, DecodeErrorKind::Syntax(_)), "{err}");
}

#[test]
fn enum_variants_with_data_need_exactly_one_member() {
    #[derive(Debug, PartialEq, Deserialize)]
    enum Change {
        Renamed(String),
        Removed,
    }
    assert_eq!(
        ok::<Change>(r#"{"Renamed": "x"}"#),
        Change::Renamed("x".into())
    );
    assert_eq!(ok::<Change>(r#""Removed""#), Change::Removed);
    let err = decode_err::<Change>(r#"{"result": {"Renamed": "x", "Removed": ""}, "id": 1}"#);
    assert_eq!(err.offset, 26);
    assert!(
        matches!(err.kind, DecodeErrorKind::Unexpected { .. }),
        "{err}"
    );
}

#[test]
fn unknown_enum_values_can_fall_back_with_serde_other() {
    #[derive(Debug, PartialEq, Deserialize)]
    enum VmPowerState {
        Halted,
        #[serde(other)]
        Unknown,
    }
    assert_eq!(ok::<VmPowerState>(r#""Halted""#), VmPowerState::Halted);
    assert_eq!(
        ok::<Vec<VmPowerState>>(r#"["Hibernating"]"#),
        vec![VmPowerState::Unknown]
    );
}
