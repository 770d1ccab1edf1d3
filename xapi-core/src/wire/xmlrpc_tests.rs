//! Unit tests of the XML-RPC codec, one per quirk of wire-protocol.md §3, §5, §6.

// the codec must be exact: floats are compared bit for bit on purpose
#![allow(clippy::float_cmp)]

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::*;
use crate::wire::ErrorCode;
use crate::wire::{DateTime, DecodeErrorKind, Ref};

struct Vm;

fn envelope(value: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<methodResponse><params><param><value><struct>\
         <member><name>Status</name><value>Success</value></member>\
         <member><name>Value</name>{value}</member>\
         </struct></value></param></params></methodResponse>\n"
    )
}

fn ok<T: DeserializeOwned>(value: &str) -> T {
    match decode_response::<T>(envelope(value).as_bytes(), &Limits::default()) {
        Ok(Ok(v)) => v,
        Ok(Err(failure)) => panic!("unexpected failure {failure}"),
        Err(e) => panic!("decode error {e} in {value}"),
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
    name_label: String,
    memory_static_max: i64,
    #[serde(rename = "VCPUs_max")]
    vcpus_max: i64,
    is_a_template: bool,
    power_state: Option<PowerState>,
    tags: Vec<String>,
    other_config: HashMap<String, String>,
    snapshot_time: DateTime,
    resident_on: Ref<Vm>,
    ratio: f64,
}

#[test]
fn untyped_value_decodes_as_string() {
    assert_eq!(ok::<Value>("<value>42</value>"), Value::from("42"));
    assert_eq!(ok::<String>("<value>Halted</value>"), "Halted");
}

#[test]
fn int64_sent_as_string_decodes_into_i64() {
    assert_eq!(ok::<i64>("<value>4294967296</value>"), 4_294_967_296);
    assert_eq!(ok::<i64>("<value>-9223372036854775808</value>"), i64::MIN);
    assert_eq!(ok::<i64>("<value><string>17</string></value>"), 17);
}

#[test]
fn typed_int_tags_decode_as_ints() {
    for tag in ["i4", "int", "i8"] {
        let xml = format!("<value><{tag}>-12</{tag}></value>");
        assert_eq!(ok::<i64>(&xml), -12);
        assert_eq!(ok::<Value>(&xml), Value::Int(-12));
        assert_eq!(ok::<i32>(&xml), -12);
    }
}

#[test]
fn doubles_decode_including_inf_and_nan() {
    assert_eq!(ok::<f64>("<value><double>0.25</double></value>"), 0.25);
    assert_eq!(
        ok::<f64>("<value><double>inf</double></value>"),
        f64::INFINITY
    );
    assert_eq!(
        ok::<f64>("<value><double>-inf</double></value>"),
        f64::NEG_INFINITY
    );
    assert!(ok::<f64>("<value><double>nan</double></value>").is_nan());
    assert_eq!(ok::<f64>("<value>1e3</value>"), 1000.0);
    assert_eq!(
        ok::<Value>("<value><double>1.5</double></value>"),
        Value::Double(1.5)
    );
}

#[test]
fn booleans_decode_from_zero_and_one() {
    assert!(ok::<bool>("<value><boolean>1</boolean></value>"));
    assert!(!ok::<bool>("<value><boolean>0</boolean></value>"));
    assert_eq!(
        ok::<Value>("<value><boolean>1</boolean></value>"),
        Value::Bool(true)
    );
}

#[test]
fn datetimes_decode_in_every_form() {
    let expected = DateTime::parse("20250319T04:16:24Z").expect("valid");
    for text in ["20250319T04:16:24Z", "2025-03-19T04:16:24Z", "1742357784"] {
        let xml = format!("<value><dateTime.iso8601>{text}</dateTime.iso8601></value>");
        assert_eq!(ok::<DateTime>(&xml), expected, "{text}");
    }
    let xml = "<value><dateTime.iso8601>20250319T04:16:24</dateTime.iso8601></value>";
    assert_eq!(ok::<DateTime>(xml).to_unix_seconds(), None);
    assert_eq!(ok::<Value>(xml), Value::DateTime(ok::<DateTime>(xml)));
    assert_eq!(ok::<String>(xml), "20250319T04:16:24");
}

#[test]
fn nil_decodes_as_none_and_unit() {
    assert_eq!(ok::<Option<i64>>("<value><nil/></value>"), None);
    assert_eq!(ok::<Option<i64>>("<value>5</value>"), Some(5));
    ok::<()>("<value><nil/></value>");
    assert_eq!(ok::<Value>("<value><nil></nil></value>"), Value::Nil);
}

#[test]
fn empty_values_decode_as_empty_string_and_void() {
    assert_eq!(ok::<String>("<value/>"), "");
    assert_eq!(ok::<String>("<value></value>"), "");
    assert_eq!(ok::<String>("<value><string/></value>"), "");
    assert_eq!(ok::<Value>("<value/>"), Value::from(""));
    ok::<()>("<value/>");
    ok::<()>("<value></value>");
}

#[test]
fn entities_character_references_and_cdata_decode() {
    assert_eq!(
        ok::<String>("<value>a&lt;b&gt;&amp;&quot;&apos;&#233;&#x41;</value>"),
        "a<b>&\"'éA"
    );
    assert_eq!(
        ok::<String>("<value><![CDATA[<raw> & ]]>tail</value>"),
        "<raw> & tail"
    );
    assert_eq!(ok::<String>("<value>  keep  </value>"), "  keep  ");
}

#[test]
fn whitespace_and_comments_between_elements_are_ignored() {
    let xml = "<value>\n  <array>\n <data>\n  <value>a</value>\n <!-- c -->\n \
               <value><i4>1</i4></value>\n </data>\n </array>\n</value>";
    assert_eq!(ok::<Vec<String>>(xml), vec!["a", "1"]);
    assert_eq!(
        ok::<Value>(xml),
        Value::Array(vec![Value::from("a"), Value::Int(1)])
    );
}

#[test]
fn base64_decodes_to_bytes() {
    assert_eq!(
        ok::<Value>("<value><base64>aGVs\nbG8=</base64></value>"),
        Value::Base64(b"hello".to_vec())
    );
    let err = decode_err::<Value>(&envelope("<value><base64>!!</base64></value>"));
    assert!(matches!(err.kind, DecodeErrorKind::InvalidBase64(_)));
}

#[test]
fn records_accept_missing_and_unknown_fields() {
    let xml = "<value><struct>\
        <member><name>uuid</name><value>u-1</value></member>\
        <member><name>memory_static_max</name><value>4294967296</value></member>\
        <member><name>VCPUs_max</name><value>2</value></member>\
        <member><name>is_a_template</name><value><boolean>0</boolean></value></member>\
        <member><name>power_state</name><value>Running</value></member>\
        <member><name>tags</name><value><array><data><value>t1</value></data></array></value></member>\
        <member><name>other_config</name><value><struct><member><name>k</name><value>v</value></member></struct></value></member>\
        <member><name>snapshot_time</name><value><dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601></value></member>\
        <member><name>resident_on</name><value>OpaqueRef:h</value></member>\
        <member><name>ratio</name><value><double>0.5</double></value></member>\
        <member><name>future_field</name><value><struct><member><name>x</name><value><array><data><value><struct/></value></data></array></value></member></struct></value></member>\
        <member><name>another_future</name><value><array><data/></array></value></member>\
        </struct></value>";
    let record: VmRecord = ok(xml);
    assert_eq!(
        record,
        VmRecord {
            uuid: "u-1".into(),
            name_label: String::new(),
            memory_static_max: 4_294_967_296,
            vcpus_max: 2,
            is_a_template: false,
            power_state: Some(PowerState::Running),
            tags: vec!["t1".into()],
            other_config: HashMap::from([("k".into(), "v".into())]),
            snapshot_time: DateTime::EPOCH,
            resident_on: Ref::new("OpaqueRef:h"),
            ratio: 0.5,
        }
    );
}

#[test]
fn maps_keyed_by_refs_ints_floats_and_enums_decode() {
    let xml = "<value><struct>\
        <member><name>OpaqueRef:a</name><value><struct><member><name>uuid</name><value>a</value></member></struct></value></member>\
        <member><name>OpaqueRef:b</name><value><struct/></value></member>\
        </struct></value>";
    let records: HashMap<Ref<Vm>, VmRecord> = ok(xml);
    assert_eq!(records[&Ref::new("OpaqueRef:a")].uuid, "a");
    assert_eq!(records[&Ref::new("OpaqueRef:b")], VmRecord::default());

    let xml = "<value><struct><member><name>-3</name><value>x</value></member></struct></value>";
    assert_eq!(
        ok::<BTreeMap<i64, String>>(xml),
        BTreeMap::from([(-3, "x".to_owned())])
    );
    let xml = "<value><struct><member><name>Halted</name><value><i4>2</i4></value></member></struct></value>";
    assert_eq!(ok::<HashMap<PowerState, i32>>(xml)[&PowerState::Halted], 2);
    let xml = "<value><struct><member><name>0.5</name><value>1</value></member></struct></value>";
    let floats: Vec<(f64, i64)> = ok::<HashMap<String, i64>>(xml)
        .into_iter()
        .map(|(k, v)| (k.parse().expect("float key"), v))
        .collect();
    assert_eq!(floats, vec![(0.5, 1)]);
    #[derive(Deserialize)]
    struct FloatKeys(HashMap<OrderedKey, i64>);
    #[derive(Deserialize, PartialEq, Eq, Hash)]
    #[serde(from = "f64")]
    struct OrderedKey(u64);
    impl From<f64> for OrderedKey {
        fn from(x: f64) -> Self {
            Self(x.to_bits())
        }
    }
    let keys: FloatKeys = ok(xml);
    assert_eq!(keys.0[&OrderedKey(0.5f64.to_bits())], 1);
}

#[test]
fn unknown_enum_value_is_a_typed_error_with_offset() {
    let body = envelope("<value>Paused</value>");
    let err = decode_err::<PowerState>(&body);
    assert!(matches!(err.kind, DecodeErrorKind::Mismatch(_)), "{err}");
    assert_eq!(
        err.offset as usize,
        body.find("<value>Paused").expect("present")
    );
}

#[test]
fn newtypes_and_tuples_decode() {
    #[derive(Debug, PartialEq, Deserialize)]
    struct Uuid(String);
    assert_eq!(ok::<Uuid>("<value>u</value>"), Uuid("u".into()));
    let xml = "<value><array><data><value>a</value><value>2</value></data></array></value>";
    assert_eq!(ok::<(String, i64)>(xml), ("a".to_owned(), 2));
}

#[test]
fn failure_envelope_becomes_failure() {
    let body = "<methodResponse><params><param><value><struct>\
        <member><name>Status</name><value>Failure</value></member>\
        <member><name>ErrorDescription</name><value><array><data>\
        <value>HOST_IS_SLAVE</value><value>192.0.2.1</value></data></array></value></member>\
        </struct></value></param></params></methodResponse>";
    let failure = decode_response::<VmRecord>(body.as_bytes(), &Limits::default())
        .expect("well formed")
        .expect_err("a failure");
    assert_eq!(failure.code, ErrorCode::HostIsSlave);
    assert_eq!(failure.param("master"), Some("192.0.2.1"));
}

#[test]
fn status_may_come_after_value_and_description() {
    let body = "<methodResponse><params><param><value><struct>\
        <member><name>Value</name><value>7</value></member>\
        <member><name>Status</name><value>Success</value></member>\
        </struct></value></param></params></methodResponse>";
    assert_eq!(
        decode_response::<i64>(body.as_bytes(), &Limits::default()),
        Ok(Ok(7))
    );
    let body = "<methodResponse><params><param><value><struct>\
        <member><name>ErrorDescription</name><value><array><data><value>SESSION_INVALID</value>\
        <value>OpaqueRef:s</value></data></array></value></member>\
        <member><name>Status</name><value>Failure</value></member>\
        </struct></value></param></params></methodResponse>";
    let failure = decode_response::<i64>(body.as_bytes(), &Limits::default())
        .expect("well formed")
        .expect_err("a failure");
    assert_eq!(failure.code, ErrorCode::SessionInvalid);
    assert_eq!(failure.params, vec!["OpaqueRef:s"]);
}

#[test]
fn missing_status_or_value_is_a_typed_error() {
    let no_status = "<methodResponse><params><param><value><struct>\
        <member><name>Value</name><value>7</value></member>\
        </struct></value></param></params></methodResponse>";
    assert_eq!(
        decode_err::<i64>(no_status).kind,
        DecodeErrorKind::MissingMember("Status")
    );
    let no_value = "<methodResponse><params><param><value><struct>\
        <member><name>Status</name><value>Success</value></member>\
        </struct></value></param></params></methodResponse>";
    assert_eq!(
        decode_err::<i64>(no_value).kind,
        DecodeErrorKind::MissingMember("Value")
    );
    let no_description = "<methodResponse><params><param><value><struct>\
        <member><name>Status</name><value>Failure</value></member>\
        </struct></value></param></params></methodResponse>";
    assert_eq!(
        decode_err::<i64>(no_description).kind,
        DecodeErrorKind::MissingMember("ErrorDescription")
    );
    let odd_status = "<methodResponse><params><param><value><struct>\
        <member><name>Status</name><value>Maybe</value></member>\
        </struct></value></param></params></methodResponse>";
    assert_eq!(
        decode_err::<i64>(odd_status).kind,
        DecodeErrorKind::InvalidStatus("Maybe".into())
    );
}

#[test]
fn fault_is_a_typed_error_with_code_and_string() {
    let body = "<?xml version=\"1.0\"?><methodResponse><fault><value><struct>\
        <member><name>faultCode</name><value><int>-32601</int></value></member>\
        <member><name>faultString</name><value><string>No async mode for this operation</string></value></member>\
        </struct></value></fault></methodResponse>";
    let err = decode_err::<i64>(body);
    assert!(err.is_fault());
    assert_eq!(
        err.kind,
        DecodeErrorKind::Fault {
            code: -32601,
            message: "No async mode for this operation".into()
        }
    );
}

#[test]
fn doctype_and_custom_entities_are_rejected() {
    let body = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">]>{}",
        &envelope("<value>&lol;</value>")[22..]
    );
    let err = decode_err::<String>(&body);
    assert_eq!(err.kind, DecodeErrorKind::DoctypeNotAllowed);
    assert_eq!(err.offset, 21);
    let err = decode_err::<String>(&envelope("<value>a&lol;b</value>"));
    assert_eq!(err.kind, DecodeErrorKind::UnknownEntity("lol".into()));
}

#[test]
fn bad_numbers_point_at_their_value() {
    let body = envelope("<value>12x</value>");
    let err = decode_err::<i64>(&body);
    assert!(
        matches!(err.kind, DecodeErrorKind::InvalidNumber { ty: "i64", .. }),
        "{err}"
    );
    assert_eq!(
        err.offset as usize,
        body.find("<value>12x").expect("present")
    );
    let body = envelope(
        "<value><struct><member><name>memory_static_max</name><value>lots</value></member></struct></value>",
    );
    let err = decode_err::<VmRecord>(&body);
    assert_eq!(
        err.offset as usize,
        body.find("<value>lots").expect("present")
    );
    let err = decode_err::<bool>(&envelope("<value><boolean>2</boolean></value>"));
    assert_eq!(err.kind, DecodeErrorKind::InvalidBool("2".into()));
}

#[test]
fn wrong_nesting_and_wrong_elements_are_errors_with_offsets() {
    for (value, expect_at) in [
        ("<value><array><value>1</value></array></value>", "<value>1"),
        ("<value><struct><name>a</name></struct></value>", "<name>a"),
        ("<value><foo>1</foo></value>", "<foo>"),
        ("<value>text<i4>1</i4></value>", "<i4>"),
        ("<value><i4>1<b/></i4></value>", "<b/>"),
    ] {
        let body = envelope(value);
        let err = decode_err::<Value>(&body);
        assert_eq!(
            err.offset as usize,
            body.find(expect_at).expect("present"),
            "{value}: {err}"
        );
    }
    let err = decode_err::<Value>(&envelope("<value><array><data></array></data></value>"));
    assert!(matches!(err.kind, DecodeErrorKind::Syntax(_)), "{err}");
    let err = decode_err::<Value>("<methodCall></methodCall>");
    assert!(
        matches!(err.kind, DecodeErrorKind::Unexpected { .. }),
        "{err}"
    );
}

#[test]
fn mismatched_end_tags_are_found_on_the_fast_path_and_in_skipped_subtrees() {
    /// A record that reads member `a` and skips every other member.
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Only {
        a: String,
    }
    // each error is at the first end tag after `expect_after`
    for (value, expect_after) in [
        // plain markup, read without quick-xml events
        (
            "<value><struct><member><name>a</name><value>x</value></value>",
            "x</value>",
        ),
        (
            "<value><array><data><value>x</value></array></value>",
            "x</value>",
        ),
        // inside a member the target skips
        (
            "<value><struct><member><name>a</name><value>x</value></member>\
             <member><name>b</name><value><struct><member><name>c</name>\
             <value>y</value></struct></member></struct></value></member></struct></value>",
            "y</value>",
        ),
    ] {
        let body = envelope(value);
        let err = decode_response::<Only>(body.as_bytes(), &Limits::default())
            .expect_err("mismatched end tag");
        assert!(matches!(err.kind, DecodeErrorKind::Syntax(_)), "{err}");
        assert_eq!(
            err.offset as usize,
            body.find(expect_after).expect("present") + expect_after.len(),
            "{value}: {err}"
        );
    }
}

#[test]
fn plain_and_general_markup_decode_alike() {
    // the same record once as plain markup (fast path) and once with whitespace, comments,
    // attributes-free typed tags, entities and CDATA (event-by-event path)
    let plain = "<value><struct><member><name>a</name><value>x &lt; y</value></member>\
                 <member><name>b</name><value><array><data><value>1</value><value>2</value>\
                 </data></array></value></member></struct></value>";
    let general = "<value> <struct> <!-- c --> <member> <name>a</name> \
                   <value><string>x <![CDATA[<]]> y</string></value> </member>\
                   <member><name >b</name ><value><array> <data> <value><string>1</string></value>\
                   <value>2</value> </data> </array></value></member> </struct> </value>";
    let plain: HashMap<String, Value> = ok(plain);
    let general: HashMap<String, Value> = ok(general);
    assert_eq!(plain, general);
    assert_eq!(plain["a"], Value::String("x < y".to_owned()));
}

#[test]
fn pretty_printed_bodies_decode_as_compact_ones() {
    // `xmlrpc.client.dumps` puts a newline between elements; the fast path skips it where only
    // elements may come, and keeps whitespace that is a value's text
    let compact = "<value><struct><member><name>a</name><value><string>x</string></value>\
                   </member><member><name>b</name><value><array><data><value><i4>1</i4>\
                   </value><value>  </value></data></array></value></member><member><name>c\
                   </name><value><struct></struct></value></member><member><name>d</name>\
                   <value><array><data></data></array></value></member><member><name>e</name>\
                   <value><struct><member><name>f</name><value><boolean>1</boolean></value>\
                   </member></struct></value></member></struct></value>";
    let pretty = "<value><struct>\n<member>\n<name>a</name>\n<value><string>x</string></value>\n\
                  </member>\n<member>\n<name>b</name>\n<value><array><data>\n<value><i4>1</i4>\
                  </value>\n<value>  </value>\n</data></array></value>\n</member>\n<member>\n\
                  <name>c</name>\n<value><struct>\n</struct></value>\n</member>\n<member>\n\
                  <name>d</name>\n<value><array><data>\n</data></array></value>\n</member>\n\
                  <member>\r\n\t<name>e</name>\n<value><struct>\n<member>\n<name>f</name>\n\
                  <value><boolean>1</boolean></value>\n</member>\n</struct></value>\n</member>\n\
                  </struct></value>\n";
    let compact: Value = ok(compact);
    let pretty_value: Value = ok(pretty);
    assert_eq!(compact, pretty_value);
    let Value::Struct(members) = &pretty_value else {
        panic!("a struct: {pretty_value:?}")
    };
    assert_eq!(
        members["b"],
        Value::Array(vec![Value::Int(1), Value::from("  ")])
    );
    // errors after skipped whitespace still point at the offending tag
    let body = envelope("<value><array><data>\n<value>x</value>\n</array></value>");
    let err = decode_err::<Vec<String>>(&body);
    assert!(matches!(err.kind, DecodeErrorKind::Syntax(_)), "{err}");
    assert_eq!(
        err.offset as usize,
        body.find("</array>").expect("present"),
        "{err}"
    );
}

#[test]
fn truncated_documents_fail_cleanly_at_every_byte() {
    let body = envelope(
        "<value><struct><member><name>a&amp;</name><value><array><data><value><i4>1</i4></value>\
         <value><![CDATA[x]]></value></data></array></value></member></struct></value>",
    );
    let trimmed = body.trim_end();
    for cut in 0..trimmed.len() {
        let result = decode_response::<Value>(&body.as_bytes()[..cut], &Limits::default());
        let err = result.expect_err("truncated input must not decode");
        assert!(err.offset as usize <= cut, "cut {cut}: {err}");
    }
}

#[test]
fn limits_bound_size_and_depth() {
    let limits = Limits {
        max_response_bytes: 100,
        max_depth: 3,
    };
    let body = envelope("<value>x</value>");
    let err = decode_response::<String>(body.as_bytes(), &limits).expect_err("too large");
    assert!(matches!(
        err.kind,
        DecodeErrorKind::TooLarge { limit: 100, .. }
    ));
    let deep = "<value><array><data>".repeat(5) + &"</data></array></value>".repeat(5);
    let limits = Limits {
        max_depth: 3,
        ..Limits::default()
    };
    let err = decode_response::<Value>(envelope(&deep).as_bytes(), &limits).expect_err("too deep");
    assert_eq!(err.kind, DecodeErrorKind::TooDeep { limit: 3 });
    // skipping an unknown deep subtree is not recursion, but the envelope still counts
    assert!(
        decode_response::<Value>(
            envelope("<value><array><data/></array></value>").as_bytes(),
            &limits
        )
        .is_ok()
    );
}

#[test]
fn task_result_fragments_decode() {
    let limits = Limits::default();
    assert_eq!(
        decode_value::<Ref<Vm>>(b"<value>OpaqueRef:abc</value>", &limits),
        Ok(Ref::new("OpaqueRef:abc"))
    );
    assert_eq!(
        decode_value::<Vec<Ref<Vm>>>(
            b"<value><array><data><value>OpaqueRef:1</value><value>OpaqueRef:2</value></data></array></value>",
            &limits
        ),
        Ok(vec![Ref::new("OpaqueRef:1"), Ref::new("OpaqueRef:2")])
    );
    assert_eq!(decode_value::<()>(b"", &limits), Ok(()));
    assert_eq!(decode_value::<String>(b"", &limits), Ok(String::new()));
    assert!(decode_value::<String>(b"<value>a</value><value>b</value>", &limits).is_err());
}

#[test]
fn calls_encode_exactly_as_xapi_expects() {
    let body = encode_call(
        "VM.get_power_state",
        &[Value::from("OpaqueRef:s"), Value::from("OpaqueRef:v&")],
    );
    assert_eq!(
        String::from_utf8(body).expect("utf-8"),
        "<?xml version=\"1.0\"?><methodCall><methodName>VM.get_power_state</methodName>\
         <params><param><value>OpaqueRef:s</value></param><param><value>OpaqueRef:v&amp;</value>\
         </param></params></methodCall>"
    );
}

#[test]
fn server_decodes_calls_with_typed_and_untyped_params() {
    let body = encode_call(
        "event.from",
        &[
            Value::from("OpaqueRef:s"),
            Value::Array(vec![Value::from("vm")]),
            Value::from(""),
            Value::Double(60.1),
        ],
    );
    let (method, params) = decode_call(&body, &Limits::default()).expect("decodes");
    assert_eq!(method, "event.from");
    assert_eq!(params[3], Value::Double(60.1));
    assert_eq!(params[2], Value::from(""));
    let body = b"<methodCall><methodName>x</methodName><params><param><value><int>3</int></value></param></params></methodCall>";
    assert_eq!(
        decode_call(body, &Limits::default()),
        Ok(("x".to_owned(), vec![Value::Int(3)]))
    );
    assert_eq!(
        decode_call(
            b"<methodCall><methodName>y</methodName></methodCall>",
            &Limits::default()
        ),
        Ok(("y".to_owned(), vec![]))
    );
}

#[test]
fn server_responses_decode_back_on_the_client() {
    let value = Value::Struct(BTreeMap::from([
        ("n".into(), Value::Int(1 << 60)),
        ("s".into(), Value::from("<&>")),
    ]));
    let body = encode_response(Ok(&value));
    assert!(String::from_utf8_lossy(&body).starts_with(
        "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>\
             <member><name>Status</name><value>Success</value></member>"
    ));
    let back: HashMap<String, String> = decode_response(&body, &Limits::default())
        .expect("decodes")
        .expect("success");
    assert_eq!(back["n"], (1_i64 << 60).to_string());
    let failure = Failure::new("VM_BAD_POWER_STATE", ["OpaqueRef:v", "halted", "running"]);
    let body = encode_response(Err(&failure));
    assert_eq!(
        decode_response::<Value>(&body, &Limits::default()),
        Ok(Err(failure))
    );
    assert_eq!(
        encode_value(&Value::from("OpaqueRef:r")),
        "<value>OpaqueRef:r</value>"
    );
}

#[test]
fn prolog_comments_and_byte_order_mark_are_accepted() {
    let body = format!(
        "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- xapi -->\n{}",
        &envelope("<value>x</value>")[22..]
    );
    assert_eq!(
        decode_response::<String>(body.as_bytes(), &Limits::default()),
        Ok(Ok("x".to_owned()))
    );
}

#[test]
fn html_error_pages_are_unexpected_elements() {
    let err = decode_err::<String>("<html><body>500 Internal Error</body></html>");
    assert_eq!(
        err.kind,
        DecodeErrorKind::Unexpected {
            expected: "methodResponse",
            found: "<html>".into()
        }
    );
    assert_eq!(err.offset, 0);
}

#[test]
fn failure_parameters_of_any_scalar_type_are_kept_as_text() {
    let body = "<methodResponse><params><param><value><struct>\
        <member><name>Status</name><value>Failure</value></member>\
        <member><name>ErrorDescription</name><value><array><data>\
        <value>MESSAGE_PARAMETER_COUNT_MISMATCH</value><value>VM.start</value>\
        <value><i4>3</i4></value><value><string>2</string></value></data></array></value></member>\
        </struct></value></param></params></methodResponse>";
    let failure = decode_response::<()>(body.as_bytes(), &Limits::default())
        .expect("well formed")
        .expect_err("a failure");
    assert_eq!(failure.code, ErrorCode::MessageParameterCountMismatch);
    assert_eq!(failure.params, vec!["VM.start", "3", "2"]);
}

#[test]
fn typed_scalars_follow_the_target_type() {
    assert_eq!(ok::<i64>("<value><i8>1099511627776</i8></value>"), 1 << 40);
    assert_eq!(ok::<f64>("<value><i4>3</i4></value>"), 3.0);
    assert_eq!(ok::<String>("<value><i4>3</i4></value>"), "3");
    assert_eq!(ok::<i64>("<value><double>2.0</double></value>"), 2);
    assert_eq!(ok::<String>("<value><string></string></value>"), "");
    let err = decode_err::<i32>(&envelope("<value><i8>4294967296</i8></value>"));
    assert!(
        matches!(err.kind, DecodeErrorKind::InvalidNumber { ty: "i32", .. }),
        "{err}"
    );
    let err = decode_err::<i64>(&envelope("<value><i8>99999999999999999999</i8></value>"));
    assert!(
        matches!(err.kind, DecodeErrorKind::InvalidNumber { .. }),
        "{err}"
    );
}

#[test]
fn optional_structs_and_arrays_decode() {
    #[derive(Debug, PartialEq, Deserialize)]
    struct Stat {
        free: i64,
    }
    assert_eq!(
        ok::<Option<Stat>>(
            "<value><struct><member><name>free</name><value>5</value></member></struct></value>"
        ),
        Some(Stat { free: 5 })
    );
    assert_eq!(ok::<Option<Stat>>("<value><nil/></value>"), None);
    assert_eq!(
        ok::<Option<Vec<i64>>>("<value><array><data><value>1</value></data></array></value>"),
        Some(vec![1])
    );
    assert_eq!(ok::<Vec<i64>>("<value><array/></value>"), Vec::<i64>::new());
    assert_eq!(
        ok::<Vec<i64>>("<value><array></array></value>"),
        Vec::<i64>::new()
    );
    assert_eq!(
        ok::<Value>("<value><array> </array></value>"),
        Value::Array(vec![])
    );
    assert_eq!(
        ok::<Vec<i64>>("<value><array><data/></array></value>"),
        Vec::<i64>::new()
    );
    assert_eq!(
        ok::<HashMap<String, i64>>("<value><struct/></value>"),
        HashMap::new()
    );
}

#[test]
fn a_missing_required_field_names_it() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Strict {
        free: i64,
    }
    let body = envelope("<value><struct></struct></value>");
    let err = decode_err::<Strict>(&body);
    assert_eq!(
        err.kind,
        DecodeErrorKind::Mismatch("missing field `free`".into())
    );
    assert_eq!(
        err.offset as usize,
        body.rfind("<value><struct>").expect("present")
    );
}

#[test]
fn enum_variants_with_data_need_exactly_one_member() {
    #[derive(Debug, PartialEq, Deserialize)]
    enum Change {
        Renamed(String),
    }
    assert_eq!(
        ok::<Change>(
            "<value><struct><member><name>Renamed</name><value>x</value></member></struct></value>"
        ),
        Change::Renamed("x".into())
    );
    let body = envelope(
        "<value><struct><member><name>Renamed</name><value>x</value></member>\
         <member><name>Renamed</name><value>y</value></member></struct></value>",
    );
    let err = decode_err::<Change>(&body);
    assert!(matches!(err.kind, DecodeErrorKind::Mismatch(_)), "{err}");
    assert!(decode_err::<Change>(&envelope("<value><struct/></value>")).offset > 0);
}

#[test]
fn unknown_enum_values_can_fall_back_with_serde_other() {
    #[derive(Debug, PartialEq, Eq, Hash, Deserialize)]
    enum VmPowerState {
        Halted,
        #[serde(other)]
        Unknown,
    }
    assert_eq!(
        ok::<VmPowerState>("<value>Halted</value>"),
        VmPowerState::Halted
    );
    assert_eq!(
        ok::<VmPowerState>("<value>Hibernating</value>"),
        VmPowerState::Unknown
    );
    let xml =
        "<value><struct><member><name>Quantum</name><value>1</value></member></struct></value>";
    assert_eq!(
        ok::<HashMap<VmPowerState, i64>>(xml)[&VmPowerState::Unknown],
        1
    );
}
