//! Realistic records decoded from both wire encodings into the generated types: XML-RPC as xapi
//! writes it (strings and ints untyped) and JSON-RPC, with missing fields (datamodel defaults),
//! unknown fields (ignored) and unknown enum values (`Unknown`).
//!
//! Each fixture is written once as a [`W`] tree and rendered into both encodings, so the two
//! decoders are held to the same expectations.

use std::collections::HashMap;
use std::fmt::Debug;
use std::fmt::Write as _;

use serde::de::DeserializeOwned;
use xapi_core::api::{
    ErrorCode, EventBatch, EventOperation, HostRecord, OnBoot, PbdRecord, PoolRecord, SrRecord,
    StorageOperations, TaskRecord, TaskStatusType, VdiOperations, VdiRecord, VdiType, Vm,
    VmApplianceOperation, VmApplianceRecord, VmOperations, VmPowerState, VmRecord,
};
use xapi_core::wire::{DateTime, Limits, Ref, Value, jsonrpc, xmlrpc};

/// A value to render in both encodings.
#[derive(Clone)]
enum W {
    /// A string (untyped in XML-RPC).
    S(&'static str),
    /// An int (untyped digits in XML-RPC, a literal in JSON).
    I(i64),
    /// A 32-bit int that xapi writes as `<i4>` (only in `valid_ref_counts`).
    I4(i32),
    /// A float.
    F(f64),
    /// A bool.
    B(bool),
    /// A datetime in xapi's basic ISO 8601 form.
    D(&'static str),
    /// A set.
    A(Vec<W>),
    /// A struct (record or map).
    M(Vec<(&'static str, W)>),
}

use W::{A, B, D, F, I, I4, M, S};

impl W {
    fn xml(&self, out: &mut String) {
        out.push_str("<value>");
        match self {
            S(s) => out.push_str(&escape(s)),
            I(i) => write!(out, "{i}").unwrap(),
            I4(i) => write!(out, "<i4>{i}</i4>").unwrap(),
            F(f) => write!(out, "<double>{f}</double>").unwrap(),
            B(b) => write!(out, "<boolean>{}</boolean>", u8::from(*b)).unwrap(),
            D(d) => write!(out, "<dateTime.iso8601>{d}</dateTime.iso8601>").unwrap(),
            A(items) => {
                out.push_str("<array><data>");
                for item in items {
                    item.xml(out);
                }
                out.push_str("</data></array>");
            }
            M(members) => {
                out.push_str("<struct>");
                for (name, value) in members {
                    write!(out, "<member><name>{}</name>", escape(name)).unwrap();
                    value.xml(out);
                    out.push_str("</member>");
                }
                out.push_str("</struct>");
            }
        }
        out.push_str("</value>");
    }

    fn json(&self, out: &mut String) {
        match self {
            S(s) | D(s) => out.push_str(&json_string(s)),
            I(i) => write!(out, "{i}").unwrap(),
            I4(i) => write!(out, "{i}").unwrap(),
            F(f) => write!(out, "{f:?}").unwrap(),
            B(b) => write!(out, "{b}").unwrap(),
            A(items) => {
                out.push('[');
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    item.json(out);
                }
                out.push(']');
            }
            M(members) => {
                out.push('{');
                for (n, (name, value)) in members.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    out.push_str(&json_string(name));
                    out.push(':');
                    value.json(out);
                }
                out.push('}');
            }
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The XML-RPC success envelope around `value`, as xapi writes it.
fn xml_response(value: &W) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>\
         <member><name>Status</name><value>Success</value></member><member><name>Value</name>",
    );
    value.xml(&mut out);
    out.push_str("</member></struct></value></param></params></methodResponse>");
    out
}

/// The JSON-RPC 2.0 success envelope around `value`.
fn json_response(value: &W) -> String {
    let mut out = String::from("{\"jsonrpc\":\"2.0\",\"result\":");
    value.json(&mut out);
    out.push_str(",\"id\":7}");
    out
}

/// Decode `value` from both encodings; both must succeed and agree.
fn decode_both<T: DeserializeOwned + PartialEq + Debug>(value: &W) -> T {
    let limits = Limits::default();
    let xml = xml_response(value);
    let from_xml: T = xmlrpc::decode_response(xml.as_bytes(), &limits)
        .unwrap_or_else(|err| panic!("XML-RPC decode failed: {err:?}\n{xml}"))
        .unwrap_or_else(|failure| panic!("XML-RPC fixture is a failure: {failure:?}"));
    let json = json_response(value);
    let from_json: T = jsonrpc::decode_response(json.as_bytes(), &limits)
        .unwrap_or_else(|err| panic!("JSON-RPC decode failed: {err:?}\n{json}"))
        .unwrap_or_else(|failure| panic!("JSON-RPC fixture is a failure: {failure:?}"));
    assert_eq!(from_xml, from_json, "the two encodings decode differently");
    from_xml
}

fn vm_fixture(power_state: &'static str) -> W {
    M(vec![
        ("uuid", S("0f1d6f0e-4d4b-4bd1-8d0c-5a1cdb2c9e11")),
        (
            "allowed_operations",
            A(vec![S("clean_shutdown"), S("snapshot"), S("teleport")]),
        ),
        (
            "current_operations",
            M(vec![("OpaqueRef:task-1", S("clean_shutdown"))]),
        ),
        ("name_label", S("web-01 <prod> & co")),
        ("name_description", S("")),
        ("power_state", S(power_state)),
        ("user_version", I(1)),
        ("is_a_template", B(false)),
        ("is_default_template", B(false)),
        ("suspend_VDI", S("OpaqueRef:NULL")),
        ("resident_on", S("OpaqueRef:host-a")),
        ("affinity", S("OpaqueRef:NULL")),
        ("memory_overhead", I(11_534_336)),
        ("memory_target", I(4_294_967_296)),
        ("memory_static_max", I(8_589_934_592)),
        ("memory_dynamic_max", I(8_589_934_592)),
        ("memory_dynamic_min", I(4_294_967_296)),
        ("memory_static_min", I(1_073_741_824)),
        ("VCPUs_params", M(vec![("weight", S("256"))])),
        ("VCPUs_max", I(4)),
        ("VCPUs_at_startup", I(2)),
        ("actions_after_shutdown", S("destroy")),
        ("actions_after_reboot", S("restart")),
        ("actions_after_crash", S("restart")),
        ("VIFs", A(vec![S("OpaqueRef:vif-0")])),
        ("VBDs", A(vec![S("OpaqueRef:vbd-0"), S("OpaqueRef:vbd-1")])),
        ("HVM_boot_policy", S("BIOS order")),
        ("HVM_boot_params", M(vec![("order", S("cdn"))])),
        ("HVM_shadow_multiplier", F(1.5)),
        (
            "platform",
            M(vec![("viridian", S("true")), ("nx", S("true"))]),
        ),
        (
            "other_config",
            M(vec![("base_template_name", S("Debian 12"))]),
        ),
        ("domid", I(17)),
        ("is_control_domain", B(false)),
        ("metrics", S("OpaqueRef:vm-metrics-1")),
        ("guest_metrics", S("OpaqueRef:NULL")),
        ("snapshot_time", D("20251121T08:30:00Z")),
        ("tags", A(vec![S("backup"), S("tier-1")])),
        ("blocked_operations", M(vec![("destroy", S("protected"))])),
        ("appliance", S("OpaqueRef:appliance-1")),
        ("start_delay", I(30)),
        ("order", I(2)),
        ("has_vendor_device", B(false)),
        ("domain_type", S("hvm")),
        // Not in the datamodel: a newer host's field must be ignored, whatever its shape.
        ("future_field", M(vec![("nested", A(vec![I(1), S("x")]))])),
        ("future_flag", B(true)),
    ])
}

#[test]
fn vm_record_decodes_in_both_encodings() {
    let vm: VmRecord = decode_both(&vm_fixture("Running"));
    assert_eq!(vm.uuid, "0f1d6f0e-4d4b-4bd1-8d0c-5a1cdb2c9e11");
    assert_eq!(vm.name_label, "web-01 <prod> & co");
    assert_eq!(vm.power_state, VmPowerState::Running);
    assert_eq!(vm.memory_target, 4_294_967_296, "ints above 2^32 survive");
    assert_eq!(vm.memory_static_max, 8_589_934_592);
    assert_eq!(vm.vcpus_max, 4);
    assert_eq!(vm.vcpus_params["weight"], "256");
    assert_eq!(vm.hvm_boot_params["order"], "cdn");
    assert!((vm.hvm_shadow_multiplier - 1.5).abs() < f64::EPSILON);
    assert_eq!(vm.resident_on, Ref::new("OpaqueRef:host-a"));
    assert!(vm.suspend_vdi.is_null());
    assert_eq!(vm.vbds.len(), 2);
    assert_eq!(vm.appliance.as_str(), "OpaqueRef:appliance-1");
    assert_eq!(vm.start_delay, 30);
    assert!(!vm.has_vendor_device, "a sent value beats the default");
    assert_eq!(vm.tags, ["backup", "tier-1"]);
    assert_ne!(vm.snapshot_time, DateTime::default());
    assert_eq!(
        vm.current_operations["OpaqueRef:task-1"],
        VmOperations::CleanShutdown
    );
    assert_eq!(
        vm.blocked_operations[&VmOperations::Destroy],
        "protected",
        "enum-keyed maps decode"
    );
}

#[test]
fn unknown_enum_values_are_kept_not_fatal() {
    let vm: VmRecord = decode_both(&vm_fixture("Hibernating"));
    assert_eq!(
        vm.power_state,
        VmPowerState::Unknown("Hibernating".to_owned())
    );
    assert_eq!(
        vm.allowed_operations,
        [
            VmOperations::CleanShutdown,
            VmOperations::Snapshot,
            VmOperations::Unknown("teleport".to_owned()),
        ]
    );
}

#[test]
fn missing_vm_fields_take_datamodel_defaults() {
    let vm: VmRecord = decode_both(&M(vec![
        ("uuid", S("5e1b7d2a-0000-4000-8000-000000000001")),
        ("name_label", S("old-host-vm")),
    ]));
    assert_eq!(vm.name_label, "old-host-vm");
    assert_eq!(vm.power_state, VmPowerState::Halted);
    assert!(vm.has_vendor_device);
    assert_eq!(vm.generation_id, "0:0");
    assert_eq!(vm.snapshot_time, DateTime::default());
    assert!(vm.snapshot_of.is_null());
    assert!(vm.vbds.is_empty());
    assert_eq!(vm.memory_static_max, 0);
    assert_eq!(
        vm,
        VmRecord {
            uuid: "5e1b7d2a-0000-4000-8000-000000000001".into(),
            name_label: "old-host-vm".into(),
            ..VmRecord::default()
        }
    );
}

#[test]
fn vdi_records_decode_as_a_ref_keyed_map() {
    let all: HashMap<Ref<xapi_core::api::Vdi>, VdiRecord> = decode_both(&M(vec![
        (
            "OpaqueRef:vdi-root",
            M(vec![
                ("uuid", S("a9b1c1e4-1111-4a4a-9b9b-000000000001")),
                ("name_label", S("web-01 root")),
                (
                    "allowed_operations",
                    A(vec![S("snapshot"), S("copy"), S("blink")]),
                ),
                ("current_operations", M(vec![])),
                ("SR", S("OpaqueRef:sr-nfs")),
                ("VBDs", A(vec![S("OpaqueRef:vbd-0")])),
                ("virtual_size", I(107_374_182_400)),
                ("physical_utilisation", I(21_474_836_480)),
                ("type", S("system")),
                ("sharable", B(false)),
                ("read_only", B(false)),
                ("sm_config", M(vec![("vhd-parent", S("b1c2"))])),
                ("is_a_snapshot", B(false)),
                ("snapshot_of", S("OpaqueRef:NULL")),
                ("cbt_enabled", B(true)),
            ]),
        ),
        (
            "OpaqueRef:vdi-meta",
            M(vec![
                ("uuid", S("a9b1c1e4-1111-4a4a-9b9b-000000000002")),
                ("type", S("metadata")),
                ("metadata_of_pool", S("OpaqueRef:pool-dr")),
                ("metadata_latest", B(true)),
                ("on_boot", S("reset")),
            ]),
        ),
    ]));
    assert_eq!(all.len(), 2);
    let root = &all[&Ref::new("OpaqueRef:vdi-root")];
    assert_eq!(root.r#type, VdiType::System);
    assert_eq!(root.sr.as_str(), "OpaqueRef:sr-nfs");
    assert_eq!(root.virtual_size, 107_374_182_400);
    assert!(root.cbt_enabled);
    assert_eq!(root.on_boot, OnBoot::Persist, "missing: datamodel default");
    assert_eq!(
        root.allowed_operations[2],
        VdiOperations::Unknown("blink".to_owned())
    );
    let meta = &all[&Ref::new("OpaqueRef:vdi-meta")];
    assert_eq!(meta.r#type, VdiType::Metadata);
    assert!(meta.metadata_latest);
    assert_eq!(meta.on_boot, OnBoot::Reset);
    assert_eq!(meta.name_label, "");
}

#[test]
fn sr_record_decodes() {
    let sr: SrRecord = decode_both(&M(vec![
        ("uuid", S("7c1b0d55-2222-4b4b-8c8c-000000000001")),
        ("name_label", S("NFS mirror")),
        ("allowed_operations", A(vec![S("vdi_create"), S("scan")])),
        (
            "current_operations",
            M(vec![("OpaqueRef:task-9", S("scan"))]),
        ),
        (
            "VDIs",
            A(vec![S("OpaqueRef:vdi-root"), S("OpaqueRef:vdi-meta")]),
        ),
        ("PBDs", A(vec![S("OpaqueRef:pbd-a")])),
        ("virtual_allocation", I(214_748_364_800)),
        ("physical_utilisation", I(42_949_672_960)),
        ("physical_size", I(1_099_511_627_776)),
        ("type", S("nfs")),
        ("content_type", S("user")),
        ("shared", B(true)),
        ("sm_config", M(vec![])),
        ("blobs", M(vec![("branding", S("OpaqueRef:blob-1"))])),
        ("introduced_by", S("OpaqueRef:dr-task-1")),
        ("clustered", B(false)),
    ]));
    assert_eq!(sr.r#type, "nfs");
    assert!(sr.shared);
    assert_eq!(sr.physical_size, 1_099_511_627_776);
    assert_eq!(sr.vdis.len(), 2);
    assert_eq!(
        sr.allowed_operations,
        [StorageOperations::VdiCreate, StorageOperations::Scan]
    );
    assert_eq!(sr.blobs["branding"].as_str(), "OpaqueRef:blob-1");
    assert_eq!(sr.introduced_by.as_str(), "OpaqueRef:dr-task-1");
    assert!(!sr.is_tools_sr, "missing: zero");
}

#[test]
fn host_and_pool_records_decode() {
    let host: HostRecord = decode_both(&M(vec![
        ("uuid", S("3f3f3f3f-3333-4c4c-8d8d-000000000001")),
        ("name_label", S("xcp-a")),
        ("address", S("10.0.0.11")),
        ("enabled", B(true)),
        ("software_version", M(vec![("product_version", S("8.3.0"))])),
        ("cpu_info", M(vec![("cpu_count", S("16"))])),
        ("memory_overhead", I(1_073_741_824)),
        (
            "resident_VMs",
            A(vec![S("OpaqueRef:vm-dom0"), S("OpaqueRef:vm-1")]),
        ),
        ("PBDs", A(vec![S("OpaqueRef:pbd-a")])),
        ("license_params", M(vec![("sku_type", S("free"))])),
        ("ha_statefiles", A(vec![])),
        (
            "virtual_hardware_platform_versions",
            A(vec![I(0), I(1), I(2)]),
        ),
        ("ssh_enabled", B(false)),
    ]));
    assert_eq!(host.address, "10.0.0.11");
    assert_eq!(host.software_version["product_version"], "8.3.0");
    assert_eq!(host.resident_vms.len(), 2);
    assert_eq!(host.virtual_hardware_platform_versions, [0, 1, 2]);
    assert!(!host.ssh_enabled);
    assert_eq!(host.timezone, "UTC", "missing: datamodel default");
    assert_eq!(host.license_server["port"], "27000");

    let pool: PoolRecord = decode_both(&M(vec![
        ("uuid", S("9a9a9a9a-4444-4d4d-8e8e-000000000001")),
        ("name_label", S("site-a")),
        ("master", S("OpaqueRef:host-a")),
        ("default_SR", S("OpaqueRef:sr-nfs")),
        ("ha_enabled", B(false)),
        ("ha_host_failures_to_tolerate", I(1)),
        ("metadata_VDIs", A(vec![S("OpaqueRef:vdi-meta")])),
        ("other_config", M(vec![("memory-ratio-hvm", S("0.25"))])),
        ("telemetry_frequency", S("fortnightly")),
    ]));
    assert_eq!(pool.master.as_str(), "OpaqueRef:host-a");
    assert_eq!(pool.default_sr.as_str(), "OpaqueRef:sr-nfs");
    assert_eq!(pool.metadata_vdis.len(), 1);
    assert_eq!(pool.ha_host_failures_to_tolerate, 1);
    assert_eq!(pool.local_auth_max_threads, 8, "missing: datamodel default");
    assert_eq!(pool.telemetry_frequency.as_str(), "fortnightly");
    assert!(!pool.telemetry_frequency.is_known());
}

#[test]
fn vm_appliance_record_decodes() {
    let appliance: VmApplianceRecord = decode_both(&M(vec![
        ("uuid", S("c0c0c0c0-5555-4e4e-8f8f-000000000001")),
        ("name_label", S("shop")),
        ("name_description", S("web + db")),
        (
            "allowed_operations",
            A(vec![S("start"), S("clean_shutdown")]),
        ),
        ("current_operations", M(vec![])),
        ("VMs", A(vec![S("OpaqueRef:vm-db"), S("OpaqueRef:vm-web")])),
    ]));
    assert_eq!(appliance.name_label, "shop");
    assert_eq!(
        appliance.allowed_operations,
        [
            VmApplianceOperation::Start,
            VmApplianceOperation::CleanShutdown
        ]
    );
    let vms: Vec<Ref<Vm>> = vec![Ref::new("OpaqueRef:vm-db"), Ref::new("OpaqueRef:vm-web")];
    assert_eq!(appliance.vms, vms);
}

#[test]
fn task_record_decodes() {
    let task: TaskRecord = decode_both(&M(vec![
        ("uuid", S("d1d1d1d1-6666-4f4f-8a8a-000000000001")),
        ("name_label", S("Async.VM.snapshot")),
        ("allowed_operations", A(vec![S("cancel")])),
        ("current_operations", M(vec![])),
        ("created", D("20251122T01:00:00Z")),
        ("finished", D("20251122T01:00:07Z")),
        ("status", S("success")),
        ("resident_on", S("OpaqueRef:host-a")),
        ("progress", F(1.0)),
        ("type", S("<none/>")),
        ("result", S("<value>OpaqueRef:vm-snap</value>")),
        ("error_info", A(vec![])),
        ("other_config", M(vec![])),
        ("subtask_of", S("OpaqueRef:NULL")),
        ("subtasks", A(vec![])),
    ]));
    assert_eq!(task.status, TaskStatusType::Success);
    assert!((task.progress - 1.0).abs() < f64::EPSILON);
    assert_eq!(task.result, "<value>OpaqueRef:vm-snap</value>");
    assert_eq!(task.r#type, "<none/>");
    assert!(task.finished > task.created);
    assert!(task.subtask_of.is_null());
    assert_eq!(task.backtrace, "()", "missing: datamodel default");
}

#[test]
fn event_from_batch_decodes() {
    let batch: EventBatch = decode_both(&M(vec![
        (
            "events",
            A(vec![
                // What xapi really sends (event_types.ml): `id` and `timestamp` are strings,
                // the timestamp in Unix seconds.
                M(vec![
                    ("id", S("1042")),
                    ("timestamp", S("1763773500.25")),
                    ("class", S("vm")),
                    ("operation", S("mod")),
                    ("ref", S("OpaqueRef:vm-1")),
                    ("obj_uuid", S("0f1d6f0e-4d4b-4bd1-8d0c-5a1cdb2c9e11")),
                    (
                        "snapshot",
                        M(vec![
                            ("name_label", S("web-01")),
                            ("power_state", S("Running")),
                            ("is_a_template", B(false)),
                        ]),
                    ),
                ]),
                M(vec![
                    ("id", S("1043")),
                    ("timestamp", S("0.0")),
                    ("class", S("task")),
                    ("operation", S("del")),
                    ("ref", S("OpaqueRef:task-1")),
                ]),
                M(vec![
                    ("id", I(1044)),
                    ("class", S("vm")),
                    ("operation", S("renamed")),
                    ("ref", S("OpaqueRef:vm-2")),
                ]),
            ]),
        ),
        ("valid_ref_counts", M(vec![("vm", I4(12)), ("task", I4(0))])),
        ("token", S("00000000000000001044,00000000000000000000")),
    ]));
    assert_eq!(batch.token, "00000000000000001044,00000000000000000000");
    assert_eq!(batch.valid_ref_counts["vm"], 12);
    assert_eq!(batch.events.len(), 3);
    let modified = &batch.events[0];
    assert_eq!(modified.id, 1042);
    assert_eq!(modified.timestamp.to_unix_seconds(), Some(1_763_773_500));
    assert_eq!(batch.events[1].timestamp.to_unix_seconds(), Some(0));
    assert_eq!(modified.operation, EventOperation::Mod);
    assert_eq!(modified.r#ref, "OpaqueRef:vm-1");
    let Some(Value::Struct(snapshot)) = &modified.snapshot else {
        panic!("snapshot should be a struct: {:?}", modified.snapshot);
    };
    assert_eq!(snapshot["name_label"], Value::String("web-01".to_owned()));
    let deleted = &batch.events[1];
    assert_eq!(deleted.operation, EventOperation::Del);
    assert_eq!(deleted.snapshot, None, "a deleted object has no snapshot");
    assert_eq!(
        batch.events[2].operation,
        EventOperation::Unknown("renamed".to_owned())
    );
}

#[test]
fn failures_decode_into_generated_error_codes_with_named_parameters() {
    let limits = Limits::default();
    let xml = "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>\
        <member><name>Status</name><value>Failure</value></member>\
        <member><name>ErrorDescription</name><value><array><data>\
        <value>VM_BAD_POWER_STATE</value><value>OpaqueRef:vm-1</value>\
        <value>halted</value><value>running</value>\
        </data></array></value></member></struct></value></param></params></methodResponse>";
    let json = r#"{"jsonrpc":"2.0","error":{"code":1,"message":"VM_BAD_POWER_STATE","data":["OpaqueRef:vm-1","halted","running"]},"id":3}"#;
    for failure in [
        xmlrpc::decode_response::<()>(xml.as_bytes(), &limits)
            .unwrap()
            .unwrap_err(),
        jsonrpc::decode_response::<()>(json.as_bytes(), &limits)
            .unwrap()
            .unwrap_err(),
    ] {
        assert_eq!(failure.code, ErrorCode::VmBadPowerState);
        assert_eq!(failure.param("vm"), Some("OpaqueRef:vm-1"));
        assert_eq!(failure.param("expected"), Some("halted"));
        assert_eq!(failure.param("actual"), Some("running"));
        assert_eq!(failure.param("host"), None);
    }
}

#[test]
fn generated_parameter_shapes_serialize_as_positional_values() {
    // Messages without parameters pass an empty array; the others a tuple of borrowed values.
    assert_eq!(
        xapi_core::wire::to_value(&[(); 0]).unwrap(),
        Value::Array(Vec::new())
    );
    let vm: Ref<Vm> = Ref::new("OpaqueRef:vm-1");
    let blocked = HashMap::from([(VmOperations::Destroy, "protected".to_owned())]);
    let params = xapi_core::wire::to_value(&(&vm, true, &blocked, &[VdiType::User][..])).unwrap();
    let Value::Array(values) = params else {
        panic!("a tuple must serialize as an array: {params:?}");
    };
    assert_eq!(values[0], Value::String("OpaqueRef:vm-1".to_owned()));
    assert_eq!(values[1], Value::Bool(true));
    assert_eq!(
        values[2].get("destroy"),
        Some(&Value::String("protected".to_owned())),
        "enum map keys become their wire strings"
    );
    assert_eq!(
        values[3],
        Value::Array(vec![Value::String("user".to_owned())])
    );
}

#[test]
fn debug_of_records_hides_storage_and_directory_credentials() {
    let pbd = decode_both::<PbdRecord>(&M(vec![
        ("uuid", S("5b0c9c6e-0000-4000-8000-000000000001")),
        (
            "device_config",
            M(vec![
                ("server", S("filer.example")),
                ("username", S("backup")),
                ("password", S("hunter2")),
                ("cifspassword", S("hunter3")),
                ("password_secret", S("OpaqueRef:s")),
            ]),
        ),
    ]));
    assert_eq!(
        pbd.device_config["password"], "hunter2",
        "the value is kept"
    );
    let shown = format!("{pbd:?}");
    assert!(
        shown.contains("filer.example") && shown.contains("backup"),
        "{shown}"
    );
    for secret in ["hunter2", "hunter3", "OpaqueRef:s"] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
    let host = HostRecord {
        external_auth_configuration: [("pass".into(), "ldap-secret".into())]
            .into_iter()
            .collect(),
        ..HostRecord::default()
    };
    assert!(!format!("{host:?}").contains("ldap-secret"));
}

/// The wire layer's enum visitor, through a generated enum: borrowed and owned strings decode
/// alike, unknown values are kept.
#[test]
fn enum_text_borrowed_and_owned_strings_decode_alike() {
    use serde::de::value::{BorrowedStrDeserializer, Error, StringDeserializer};
    use serde::de::{Deserialize, IntoDeserializer};

    let borrowed = BorrowedStrDeserializer::<Error>::new("Running");
    assert_eq!(
        VmPowerState::deserialize(borrowed).ok(),
        Some(VmPowerState::Running)
    );
    let owned: StringDeserializer<Error> = "Exploded".to_owned().into_deserializer();
    assert_eq!(
        VmPowerState::deserialize(owned).ok(),
        Some(VmPowerState::Unknown("Exploded".to_owned()))
    );
}

/// A value that is not a string names the enum it was meant for.
#[test]
fn enum_text_a_non_string_names_the_enum() {
    let err = xapi_core::wire::from_value::<VmPowerState>(Value::Array(vec![]))
        .expect_err("an array is not an enum value");
    assert!(err.to_string().contains("vm_power_state"), "{err}");
}

/// `VDI.get_nbd_info`'s export name carries a live session reference: `Debug` hides it.
#[test]
fn nbd_info_debug_hides_the_session_reference() {
    let info = xapi_core::api::VdiNbdServerInfoRecord {
        exportname: "/0b9c3e0a-1111-4222-8333-444455556666?session_id=OpaqueRef:live-session"
            .into(),
        address: "10.0.0.2".into(),
        port: 10809,
        ..Default::default()
    };
    let shown = format!("{info:?}");
    assert!(!shown.contains("live-session"), "{shown}");
    assert!(
        shown.contains("0b9c3e0a-1111-4222-8333-444455556666"),
        "{shown}"
    );
    assert!(shown.contains("10.0.0.2"), "{shown}");
}
