//! Property tests: every reference and string form that xapi sends (`OpaqueRef:<uuid>`,
//! `OpaqueRef:NULL`, the empty reference, export ids `Ref:<n>`, hand-made and over-long
//! references; empty, UUID, name, datetime-, number- and `inf`-like text, XML and JSON special
//! characters, multi-byte text around the inline capacity, long blobs) survives the compact
//! representations of the generated records ([`Ref`], [`SmallString`], [`SmallMap`]) through
//! both encodings, as record fields, set items, map keys and values, and `get_all_records` keys.

use std::collections::HashMap;

use proptest::prelude::*;
use xapi_core::api::{Vbd, Vdi, Vm, VmRecord};
use xapi_core::wire::{
    Limits, Ref, SmallMap, SmallString, Value, from_value, jsonrpc, to_value, xmlrpc,
};

fn uuid() -> impl Strategy<Value = String> {
    "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
}

/// Text the XML encoder keeps: everything but the control characters it drops.
fn xml_safe(text: &str) -> String {
    text.chars()
        .filter(|&c| c >= ' ' || matches!(c, '\t' | '\n' | '\r'))
        .collect()
}

/// Every reference form of `wire-protocol.md` §6, `xva-and-disks.md` and `metadata-vdi.md`.
fn reference_text() -> impl Strategy<Value = String> {
    prop_oneof![
        uuid().prop_map(|u| format!("OpaqueRef:{u}")),
        Just("OpaqueRef:NULL".to_owned()),
        Just(String::new()),
        (0u32..100_000).prop_map(|n| format!("Ref:{n}")),
        "OpaqueRef:[A-Za-z0-9]{1,8}",
        uuid().prop_map(|u| format!("OpaqueRef:{u}-{u}")),
        "[ -~]{0,60}".prop_map(|s| xml_safe(&s)),
        "\\PC{0,50}".prop_map(|s| xml_safe(&s)),
    ]
}

/// String forms records carry, with lengths on both sides of the inline capacity.
fn string_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        uuid(),
        Just("19700101T00:00:00Z".to_owned()),
        Just("20250319T04:16:24".to_owned()),
        Just("4294967296".to_owned()),
        Just("-1".to_owned()),
        Just("inf".to_owned()),
        Just("nan".to_owned()),
        Just("true".to_owned()),
        Just("OpaqueRef:NULL".to_owned()),
        "[ -~]{36,41}",
        "[é€a]{10,20}",
        "\\PC{12,20}".prop_map(|s| xml_safe(&s)),
        "[<>&\"'\\\\ \t\r\na-z]{0,50}",
        "[A-Za-z0-9+/=]{100,700}",
        "\\PC{0,80}".prop_map(|s| xml_safe(&s)),
    ]
}

fn record() -> impl Strategy<Value = (String, VmRecord)> {
    (
        reference_text(),
        string_text(),
        string_text(),
        proptest::collection::vec((string_text(), string_text()), 0..14),
        reference_text(),
        proptest::collection::vec(reference_text(), 0..4),
    )
        .prop_map(|(key, uuid, name, pairs, suspend, vbds)| {
            let vm = VmRecord {
                uuid: uuid.into(),
                name_label: name.into(),
                other_config: pairs
                    .into_iter()
                    .map(|(k, v)| (SmallString::from(k), SmallString::from(v)))
                    .collect(),
                suspend_vdi: Ref::<Vdi>::from(suspend),
                vbds: vbds.into_iter().map(Ref::<Vbd>::from).collect(),
                ..VmRecord::default()
            };
            (key, vm)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn references_keep_their_text(text in reference_text()) {
        let reference = Ref::<Vm>::new(&text);
        prop_assert_eq!(reference.as_str(), text.as_str());
        let owned = Ref::<Vm>::from(text.clone());
        prop_assert_eq!(owned.as_str(), text.as_str());
        prop_assert_eq!(reference.clone().into_string(), text.clone());
        prop_assert_eq!(reference.is_null(), text.is_empty() || text == "OpaqueRef:NULL");
        let value = to_value(&reference).expect("a reference is a string");
        prop_assert_eq!(&value, &Value::String(text.clone()));
        prop_assert_eq!(from_value::<Ref<Vm>>(value).expect("decodes"), reference);
    }

    #[test]
    fn small_strings_keep_their_text(text in string_text()) {
        let small = SmallString::from(text.as_str());
        prop_assert_eq!(small.as_str(), text.as_str());
        prop_assert_eq!(&small, &SmallString::from(text.clone()));
        prop_assert_eq!(small.is_inline(), text.len() <= xapi_core::wire::small_string::INLINE_CAPACITY);
        let mut pushed = SmallString::new();
        for c in text.chars() {
            pushed.push(c);
        }
        prop_assert_eq!(&pushed, &small);
        let value = to_value(&small).expect("a string");
        prop_assert_eq!(&value, &Value::String(text.clone()));
        prop_assert_eq!(from_value::<SmallString>(value).expect("decodes"), small);
    }

    #[test]
    fn small_maps_agree_with_btree_maps(pairs in proptest::collection::vec((string_text(), string_text()), 0..20)) {
        let small: SmallMap<SmallString, SmallString> = pairs
            .iter()
            .map(|(k, v)| (SmallString::from(k.as_str()), SmallString::from(v.as_str())))
            .collect();
        let btree: std::collections::BTreeMap<String, String> = pairs.into_iter().collect();
        prop_assert_eq!(small.len(), btree.len());
        prop_assert!(small.iter().map(|(k, v)| (k.as_str(), v.as_str()))
            .eq(btree.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
        for (k, v) in &btree {
            prop_assert_eq!(small.get(k.as_str()).map(SmallString::as_str), Some(v.as_str()));
        }
    }

    #[test]
    fn records_round_trip_through_xmlrpc(records in proptest::collection::vec(record(), 1..4)) {
        let all: HashMap<Ref<Vm>, VmRecord> =
            records.into_iter().map(|(k, r)| (Ref::from(k), r)).collect();
        let value = to_value(&all).expect("encodable");
        let body = xmlrpc::encode_response(Ok(&value));
        let back: HashMap<Ref<Vm>, VmRecord> = xmlrpc::decode_response(&body, &Limits::default())
            .expect("well formed")
            .expect("success");
        prop_assert_eq!(back, all);
    }

    #[test]
    fn records_round_trip_through_jsonrpc(records in proptest::collection::vec(record(), 1..4), v2 in any::<bool>()) {
        let version = if v2 { jsonrpc::Version::V2 } else { jsonrpc::Version::V1 };
        let all: HashMap<Ref<Vm>, VmRecord> =
            records.into_iter().map(|(k, r)| (Ref::from(k), r)).collect();
        let value = to_value(&all).expect("encodable");
        let body = jsonrpc::encode_response(version, &Value::Int(1), Ok(&value));
        let back: HashMap<Ref<Vm>, VmRecord> = jsonrpc::decode_response(&body, &Limits::default())
            .expect("well formed")
            .expect("success");
        prop_assert_eq!(back, all);
    }
}
