//! `VM.get_all_records` of a realistic pool, decoded into typed records in both encodings.
//!
//! The default test checks 50 VMs field by field; the ignored one times 5,000 VMs:
//! `cargo test -p xapi-core --test integration wire_get_all_records -- --ignored --nocapture`
//! (set `XAPI_WIRE_BODIES=<dir>` to also write the two response bodies there, for comparing
//! with Python's `xmlrpc.client.loads` and `json.loads`).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Deserialize;
use xapi_core::wire::{DateTime, Limits, Ref, Value, jsonrpc, xmlrpc};

struct Vm;

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    Float,
    Date,
    Ref,
    Enum,
    Set,
    Map,
}

/// Field names and kinds of the VM record (92 fields, from the XAPI datamodel).
const VM_FIELDS: &[(&str, Kind)] = &[
    ("uuid", Kind::Str),
    ("allowed_operations", Kind::Set),
    ("current_operations", Kind::Map),
    ("name_label", Kind::Str),
    ("name_description", Kind::Str),
    ("power_state", Kind::Enum),
    ("user_version", Kind::Int),
    ("is_a_template", Kind::Bool),
    ("is_default_template", Kind::Bool),
    ("suspend_VDI", Kind::Ref),
    ("resident_on", Kind::Ref),
    ("scheduled_to_be_resident_on", Kind::Ref),
    ("affinity", Kind::Ref),
    ("memory_overhead", Kind::Int),
    ("memory_target", Kind::Int),
    ("memory_static_max", Kind::Int),
    ("memory_dynamic_max", Kind::Int),
    ("memory_dynamic_min", Kind::Int),
    ("memory_static_min", Kind::Int),
    ("VCPUs_params", Kind::Map),
    ("VCPUs_max", Kind::Int),
    ("VCPUs_at_startup", Kind::Int),
    ("actions_after_softreboot", Kind::Enum),
    ("actions_after_shutdown", Kind::Enum),
    ("actions_after_reboot", Kind::Enum),
    ("actions_after_crash", Kind::Enum),
    ("consoles", Kind::Set),
    ("VIFs", Kind::Set),
    ("VBDs", Kind::Set),
    ("VUSBs", Kind::Set),
    ("crash_dumps", Kind::Set),
    ("VTPMs", Kind::Set),
    ("PV_bootloader", Kind::Str),
    ("PV_kernel", Kind::Str),
    ("PV_ramdisk", Kind::Str),
    ("PV_args", Kind::Str),
    ("PV_bootloader_args", Kind::Str),
    ("PV_legacy_args", Kind::Str),
    ("HVM_boot_policy", Kind::Str),
    ("HVM_boot_params", Kind::Map),
    ("HVM_shadow_multiplier", Kind::Float),
    ("platform", Kind::Map),
    ("PCI_bus", Kind::Str),
    ("other_config", Kind::Map),
    ("domid", Kind::Int),
    ("domarch", Kind::Str),
    ("last_boot_CPU_flags", Kind::Map),
    ("is_control_domain", Kind::Bool),
    ("metrics", Kind::Ref),
    ("guest_metrics", Kind::Ref),
    ("last_booted_record", Kind::Str),
    ("recommendations", Kind::Str),
    ("xenstore_data", Kind::Map),
    ("ha_always_run", Kind::Bool),
    ("ha_restart_priority", Kind::Str),
    ("is_a_snapshot", Kind::Bool),
    ("snapshot_of", Kind::Ref),
    ("snapshots", Kind::Set),
    ("snapshot_time", Kind::Date),
    ("transportable_snapshot_id", Kind::Str),
    ("blobs", Kind::Map),
    ("tags", Kind::Set),
    ("blocked_operations", Kind::Map),
    ("snapshot_info", Kind::Map),
    ("snapshot_metadata", Kind::Str),
    ("parent", Kind::Ref),
    ("children", Kind::Set),
    ("bios_strings", Kind::Map),
    ("protection_policy", Kind::Ref),
    ("is_snapshot_from_vmpp", Kind::Bool),
    ("snapshot_schedule", Kind::Ref),
    ("is_vmss_snapshot", Kind::Bool),
    ("appliance", Kind::Ref),
    ("start_delay", Kind::Int),
    ("shutdown_delay", Kind::Int),
    ("order", Kind::Int),
    ("VGPUs", Kind::Set),
    ("attached_PCIs", Kind::Set),
    ("suspend_SR", Kind::Ref),
    ("version", Kind::Int),
    ("generation_id", Kind::Str),
    ("hardware_platform_version", Kind::Int),
    ("has_vendor_device", Kind::Bool),
    ("requires_reboot", Kind::Bool),
    ("reference_label", Kind::Str),
    ("domain_type", Kind::Enum),
    ("NVRAM", Kind::Map),
    ("pending_guidances", Kind::Set),
    ("pending_guidances_recommended", Kind::Set),
    ("pending_guidances_full", Kind::Set),
    ("groups", Kind::Set),
    ("secureboot_certificates_state", Kind::Enum),
];

/// A typed VM record like the generated one (enums as strings here).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
#[allow(dead_code)]
struct VmRecord {
    uuid: String,
    allowed_operations: Vec<String>,
    current_operations: HashMap<String, String>,
    name_label: String,
    name_description: String,
    power_state: String,
    user_version: i64,
    is_a_template: bool,
    is_default_template: bool,
    #[serde(rename = "suspend_VDI")]
    suspend_vdi: Ref<Vm>,
    resident_on: Ref<Vm>,
    scheduled_to_be_resident_on: Ref<Vm>,
    affinity: Ref<Vm>,
    memory_overhead: i64,
    memory_target: i64,
    memory_static_max: i64,
    memory_dynamic_max: i64,
    memory_dynamic_min: i64,
    memory_static_min: i64,
    #[serde(rename = "VCPUs_params")]
    vcpus_params: HashMap<String, String>,
    #[serde(rename = "VCPUs_max")]
    vcpus_max: i64,
    #[serde(rename = "VCPUs_at_startup")]
    vcpus_at_startup: i64,
    actions_after_softreboot: String,
    actions_after_shutdown: String,
    actions_after_reboot: String,
    actions_after_crash: String,
    consoles: Vec<String>,
    #[serde(rename = "VIFs")]
    vifs: Vec<String>,
    #[serde(rename = "VBDs")]
    vbds: Vec<String>,
    #[serde(rename = "VUSBs")]
    vusbs: Vec<String>,
    crash_dumps: Vec<String>,
    #[serde(rename = "VTPMs")]
    vtpms: Vec<String>,
    #[serde(rename = "PV_bootloader")]
    pv_bootloader: String,
    #[serde(rename = "PV_kernel")]
    pv_kernel: String,
    #[serde(rename = "PV_ramdisk")]
    pv_ramdisk: String,
    #[serde(rename = "PV_args")]
    pv_args: String,
    #[serde(rename = "PV_bootloader_args")]
    pv_bootloader_args: String,
    #[serde(rename = "PV_legacy_args")]
    pv_legacy_args: String,
    #[serde(rename = "HVM_boot_policy")]
    hvm_boot_policy: String,
    #[serde(rename = "HVM_boot_params")]
    hvm_boot_params: HashMap<String, String>,
    #[serde(rename = "HVM_shadow_multiplier")]
    hvm_shadow_multiplier: f64,
    platform: HashMap<String, String>,
    #[serde(rename = "PCI_bus")]
    pci_bus: String,
    other_config: HashMap<String, String>,
    domid: i64,
    domarch: String,
    #[serde(rename = "last_boot_CPU_flags")]
    last_boot_cpu_flags: HashMap<String, String>,
    is_control_domain: bool,
    metrics: Ref<Vm>,
    guest_metrics: Ref<Vm>,
    last_booted_record: String,
    recommendations: String,
    xenstore_data: HashMap<String, String>,
    ha_always_run: bool,
    ha_restart_priority: String,
    is_a_snapshot: bool,
    snapshot_of: Ref<Vm>,
    snapshots: Vec<String>,
    snapshot_time: DateTime,
    transportable_snapshot_id: String,
    blobs: HashMap<String, String>,
    tags: Vec<String>,
    blocked_operations: HashMap<String, String>,
    snapshot_info: HashMap<String, String>,
    snapshot_metadata: String,
    parent: Ref<Vm>,
    children: Vec<String>,
    bios_strings: HashMap<String, String>,
    protection_policy: Ref<Vm>,
    is_snapshot_from_vmpp: bool,
    snapshot_schedule: Ref<Vm>,
    is_vmss_snapshot: bool,
    appliance: Ref<Vm>,
    start_delay: i64,
    shutdown_delay: i64,
    order: i64,
    #[serde(rename = "VGPUs")]
    vgpus: Vec<String>,
    #[serde(rename = "attached_PCIs")]
    attached_pcis: Vec<String>,
    #[serde(rename = "suspend_SR")]
    suspend_sr: Ref<Vm>,
    version: i64,
    generation_id: String,
    hardware_platform_version: i64,
    has_vendor_device: bool,
    requires_reboot: bool,
    reference_label: String,
    domain_type: String,
    #[serde(rename = "NVRAM")]
    nvram: HashMap<String, String>,
    pending_guidances: Vec<String>,
    pending_guidances_recommended: Vec<String>,
    pending_guidances_full: Vec<String>,
    groups: Vec<String>,
    secureboot_certificates_state: String,
}

fn vm_ref(i: usize) -> String {
    format!("OpaqueRef:{i:08x}-5b1e-4c52-8f7a-{i:012x}")
}

fn field_value(i: usize, name: &str, kind: Kind) -> Value {
    match kind {
        // real records rarely need escaping: one field in the record carries entities
        Kind::Str if name == "name_description" => Value::String(format!("<VM {i}> & \"é\"")),
        Kind::Str => Value::String(format!("{name} of VM {i}")),
        Kind::Int => Value::Int(4_294_967_296 + i as i64),
        Kind::Bool => Value::Bool(i.is_multiple_of(2)),
        Kind::Float => Value::Double(i as f64 / 7.0),
        Kind::Date => Value::DateTime(
            DateTime::from_unix_seconds(1_742_357_784 + i as i64).expect("in range"),
        ),
        Kind::Ref => Value::String(vm_ref(i + 1)),
        Kind::Enum => Value::String("Running".to_owned()),
        Kind::Set => Value::Array(vec![
            Value::String(vm_ref(i + 2)),
            Value::String(vm_ref(i + 3)),
        ]),
        Kind::Map => Value::Struct(BTreeMap::from([
            ("key-a".to_owned(), Value::String(format!("value {i}"))),
            ("key-b".to_owned(), Value::String("true".to_owned())),
            ("key-c".to_owned(), Value::String(vm_ref(i))),
        ])),
    }
}

fn get_all_records(vms: usize) -> Value {
    Value::Struct(
        (0..vms)
            .map(|i| {
                let record = VM_FIELDS
                    .iter()
                    .map(|&(name, kind)| (name.to_owned(), field_value(i, name, kind)))
                    .collect();
                (vm_ref(i), Value::Struct(record))
            })
            .collect(),
    )
}

fn check(records: &HashMap<Ref<Vm>, VmRecord>, vms: usize) {
    assert_eq!(records.len(), vms);
    for i in 0..vms {
        let record = &records[&Ref::new(vm_ref(i))];
        assert_eq!(record.uuid, format!("uuid of VM {i}"));
        assert_eq!(record.name_label, format!("name_label of VM {i}"));
        assert_eq!(record.name_description, format!("<VM {i}> & \"é\""));
        assert_eq!(record.memory_static_max, 4_294_967_296 + i as i64);
        assert_eq!(record.is_a_template, i.is_multiple_of(2));
        assert_eq!(record.power_state, "Running");
        assert_eq!(record.resident_on, Ref::new(vm_ref(i + 1)));
        assert_eq!(record.vbds, vec![vm_ref(i + 2), vm_ref(i + 3)]);
        assert_eq!(record.other_config["key-c"], vm_ref(i));
        assert_eq!(
            record.snapshot_time.to_unix_seconds(),
            Some(1_742_357_784 + i as i64)
        );
        assert_eq!(record.start_delay, 4_294_967_296 + i as i64);
    }
}

fn decode_xml(body: &[u8]) -> HashMap<Ref<Vm>, VmRecord> {
    xmlrpc::decode_response(body, &Limits::default())
        .expect("well formed")
        .expect("success")
}

fn decode_json(body: &[u8]) -> HashMap<Ref<Vm>, VmRecord> {
    jsonrpc::decode_response(body, &Limits::default())
        .expect("well formed")
        .expect("success")
}

#[test]
fn typed_vm_records_decode_from_both_encodings() {
    let all = get_all_records(50);
    check(&decode_xml(&xmlrpc::encode_response(Ok(&all))), 50);
    check(
        &decode_json(&jsonrpc::encode_response(
            jsonrpc::Version::V2,
            &Value::Int(1),
            Ok(&all),
        )),
        50,
    );
}

/// The fastest of `runs` calls of `f`; what `f` returns is dropped outside the timed part.
fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            let out = f();
            let elapsed = start.elapsed();
            drop(out);
            elapsed
        })
        .min()
        .expect("at least one run")
}

#[test]
#[ignore = "timing: run with --ignored --nocapture, ideally with optimizations"]
fn time_5000_vm_records() {
    let vms: usize = std::env::var("XAPI_WIRE_VMS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5000);
    let all = get_all_records(vms);
    let xml = xmlrpc::encode_response(Ok(&all));
    let json = jsonrpc::encode_response(jsonrpc::Version::V2, &Value::Int(1), Ok(&all));
    if let Ok(dir) = std::env::var("XAPI_WIRE_BODIES") {
        std::fs::write(format!("{dir}/vm_get_all_records.xml"), &xml).expect("writable dir");
        std::fs::write(format!("{dir}/vm_get_all_records.json"), &json).expect("writable dir");
    }
    check(&decode_xml(&xml), vms);
    check(&decode_json(&json), vms);
    let only = std::env::var("XAPI_WIRE_ONLY").unwrap_or_default();
    let runs: usize = std::env::var("XAPI_WIRE_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let mb = |bytes: usize, d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    if only != "json" {
        let t = best_of(runs, || decode_xml(&xml));
        let size = xml.len();
        println!(
            "xml-rpc typed: {size} bytes in {t:?} ({:.0} MB/s)",
            mb(size, t)
        );
        let t = best_of(runs, || {
            xmlrpc::decode_response::<Value>(&xml, &Limits::default())
        });
        println!("xml-rpc Value: {t:?}");
        let t = best_of(runs, || {
            let mut reader = quick_xml::Reader::from_reader(&xml[..]);
            let mut events = 0usize;
            while !matches!(
                reader.read_event(),
                Ok(quick_xml::events::Event::Eof) | Err(_)
            ) {
                events += 1;
            }
            events
        });
        println!("quick-xml events alone: {t:?}");
    }
    if only != "xml" {
        let t = best_of(runs, || decode_json(&json));
        let size = json.len();
        println!(
            "json-rpc typed: {size} bytes in {t:?} ({:.0} MB/s)",
            mb(size, t)
        );
        let t = best_of(runs, || {
            jsonrpc::decode_response::<Value>(&json, &Limits::default())
        });
        println!("json-rpc Value: {t:?}");
    }
}
