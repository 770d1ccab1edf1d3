//! References of every length, enum values known and unknown, and small maps, decoded into the
//! generated records over both encodings: the shapes the allocation-free paths (inline `Ref`,
//! enums matched on the borrowed string, `BTreeMap` fields) must get exactly right.

use std::collections::HashMap;

use xapi_core::api::{Host, Vm, VmOperations, VmPowerState, VmRecord};
use xapi_core::wire::{Limits, Ref, SmallString, Value, jsonrpc, xmlrpc};

/// `OpaqueRef:` and a UUID: 46 bytes, the longest reference held inline.
const UUID_REF: &str = "OpaqueRef:0b7c6b5e-2d7a-4c41-9f0e-6a1d2c3b4e5f";
/// A reference longer than the inline capacity, held on the heap.
const LONG_REF: &str = "OpaqueRef:0b7c6b5e-2d7a-4c41-9f0e-6a1d2c3b4e5f/snapshot-of/é";

fn record(power_state: &str, operations: &[&str], resident_on: &str) -> Value {
    Value::Struct(
        [
            ("name_label", Value::from("web & <db>")),
            ("power_state", Value::from(power_state)),
            (
                "allowed_operations",
                Value::Array(operations.iter().map(|op| Value::from(*op)).collect()),
            ),
            ("resident_on", Value::from(resident_on)),
            (
                "other_config",
                Value::Struct(
                    [("zeta", "1"), ("alpha", "2"), ("mid", "3")]
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), Value::from(v)))
                        .collect(),
                ),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    )
}

fn all_records() -> Value {
    Value::Struct(
        [
            (
                UUID_REF,
                record("Running", &["clean_shutdown", "hard_reboot"], LONG_REF),
            ),
            (
                LONG_REF,
                record("Exploded", &["snapshot", "teleport"], "OpaqueRef:NULL"),
            ),
            ("OpaqueRef:NULL", record("Halted", &[], "")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    )
}

fn check(vms: &HashMap<Ref<Vm>, VmRecord>) {
    assert_eq!(vms.len(), 3);
    let running = &vms[&Ref::new(UUID_REF)];
    assert_eq!(running.name_label, "web & <db>");
    assert_eq!(running.power_state, VmPowerState::Running);
    assert_eq!(
        running.allowed_operations,
        [VmOperations::CleanShutdown, VmOperations::HardReboot]
    );
    assert_eq!(running.resident_on, Ref::<Host>::new(LONG_REF));
    assert_eq!(running.resident_on.as_str(), LONG_REF);
    let keys: Vec<&str> = running
        .other_config
        .keys()
        .map(SmallString::as_str)
        .collect();
    assert_eq!(keys, ["alpha", "mid", "zeta"], "maps iterate in key order");

    let newer = &vms[&Ref::new(LONG_REF)];
    assert_eq!(
        newer.power_state,
        VmPowerState::Unknown("Exploded".to_owned())
    );
    assert_eq!(
        newer.allowed_operations,
        [
            VmOperations::Snapshot,
            VmOperations::Unknown("teleport".to_owned())
        ]
    );
    assert!(newer.resident_on.is_null());

    let null = &vms[&Ref::null()];
    assert_eq!(null.power_state, VmPowerState::Halted);
    assert!(null.resident_on.is_null(), "an empty reference is null");
    assert_eq!(null.resident_on.as_str(), "");
}

#[test]
fn refs_enums_and_maps_decode_alike_over_xmlrpc() {
    let body = xmlrpc::encode_response(Ok(&all_records()));
    let vms: HashMap<Ref<Vm>, VmRecord> = xmlrpc::decode_response(&body, &Limits::default())
        .expect("the XML-RPC body decodes")
        .expect("a success envelope");
    check(&vms);
}

#[test]
fn refs_enums_and_maps_decode_alike_over_jsonrpc() {
    let body = jsonrpc::encode_response(jsonrpc::Version::V2, &Value::Int(1), Ok(&all_records()));
    let vms: HashMap<Ref<Vm>, VmRecord> = jsonrpc::decode_response(&body, &Limits::default())
        .expect("the JSON-RPC body decodes")
        .expect("a success result");
    check(&vms);
}

#[test]
fn escaped_enum_and_reference_strings_decode_like_plain_ones() {
    // escapes force the decoder to hand over an owned string instead of a borrowed one
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"result":{{"{UUID_REF}":{{"power_state":"Runn\u0069ng","allowed_operations":["clean_shutdown","tele\u0070ort"],"resident_on":"{}"}}}}}}"#,
        LONG_REF.replace('é', "\\u00e9")
    );
    let vms: HashMap<Ref<Vm>, VmRecord> =
        jsonrpc::decode_response(body.as_bytes(), &Limits::default())
            .expect("the JSON-RPC body decodes")
            .expect("a success result");
    let vm = &vms[&Ref::new(UUID_REF)];
    assert_eq!(vm.power_state, VmPowerState::Running);
    assert_eq!(
        vm.allowed_operations,
        [
            VmOperations::CleanShutdown,
            VmOperations::Unknown("teleport".to_owned())
        ]
    );
    assert_eq!(vm.resident_on.as_str(), LONG_REF);

    let xml = format!(
        "<methodResponse><params><param><value><struct>\
         <member><name>Status</name><value>Success</value></member>\
         <member><name>Value</name><value><struct><member><name>{UUID_REF}</name><value><struct>\
         <member><name>power_state</name><value>Runn&#105;ng</value></member>\
         <member><name>resident_on</name><value>{}</value></member>\
         </struct></value></member></struct></value></member>\
         </struct></value></param></params></methodResponse>",
        LONG_REF.replace('é', "&#233;")
    );
    let vms: HashMap<Ref<Vm>, VmRecord> =
        xmlrpc::decode_response(xml.as_bytes(), &Limits::default())
            .expect("the XML-RPC body decodes")
            .expect("a success envelope");
    let vm = &vms[&Ref::new(UUID_REF)];
    assert_eq!(vm.power_state, VmPowerState::Running);
    assert_eq!(vm.resident_on.as_str(), LONG_REF);
}
