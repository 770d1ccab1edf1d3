//! Realistic XAPI records generated from the machine-readable datamodel
//! ([`xapi_core::api::meta`]): every field of a class gets a value of its declared type, with
//! content shaped like what a real pool returns (UUIDs, `OpaqueRef`s, memory sizes, platform
//! maps, allowed-operation sets, the `<restrictions>` XML of `recommendations`...).
//!
//! The records are [`Value`]s, so the server encoders of [`xapi_core::wire`] turn them into
//! exactly the bytes xapi would send.

use std::collections::BTreeMap;

use xapi_core::api::meta::{self, ClassMeta, FieldMeta, Ty};
use xapi_core::wire::{DateTime, Value};

use crate::rng::SplitMix64;

/// A random version-4 UUID in its text form.
pub fn uuid(rng: &mut SplitMix64) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFF,
        0x8000 | ((b >> 48) & 0x3FFF),
        b & 0xFFFF_FFFF_FFFF
    )
}

/// A reference as xapi writes it: `OpaqueRef:<uuid>`.
pub fn opaque_ref(rng: &mut SplitMix64) -> String {
    format!("OpaqueRef:{}", uuid(rng))
}

const RECOMMENDATIONS: &str = r#"<restrictions><restriction field="memory-static-max" max="1649267441664"/><restriction field="vcpus-max" max="32"/><restriction field="has-vendor-device" value="false"/><restriction field="allow-gpu-passthrough" value="1"/><restriction field="allow-vgpu" value="1"/><restriction field="allow-vtpm" value="1"/><restriction property="number-of-vbds" max="255"/><restriction property="number-of-vifs" max="7"/></restrictions>"#;

const OS_NAMES: &[&str] = &[
    "Debian Bookworm 12",
    "Ubuntu Noble Numbat 24.04",
    "Rocky Linux 9",
    "Windows Server 2022 (64-bit)",
    "Windows 11",
    "Alpine Linux 3.20",
    "Oracle Linux 8",
];

const ROLES: &[&str] = &[
    "web",
    "db",
    "cache",
    "ci-runner",
    "mail",
    "dns",
    "build",
    "backup",
    "ldap",
    "proxy",
];

/// Sample string maps for the fields whose content real pools fill in.
fn sample_map(field: &str, rng: &mut SplitMix64) -> Option<Vec<(String, String)>> {
    let pairs = |items: &[(&str, &str)]| {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
    };
    let map = match field {
        "platform" => pairs(&[
            ("timeoffset", "0"),
            ("device-model", "qemu-upstream-compat"),
            ("videoram", "8"),
            ("apic", "true"),
            ("pae", "true"),
            ("acpi", "1"),
            ("viridian", "true"),
            ("nx", "true"),
            ("hpet", "true"),
            ("cores-per-socket", "2"),
            ("secureboot", "false"),
            ("vga", "std"),
        ]),
        "other_config" => {
            let mut map = pairs(&[
                ("install-methods", "cdrom,nfs,http,ftp"),
                ("linux_template", "true"),
                ("import_task", "OpaqueRef:NULL"),
            ]);
            map.push((
                "base_template_name".to_owned(),
                (*rng.pick(OS_NAMES)).to_owned(),
            ));
            map.push(("mac_seed".to_owned(), uuid(rng)));
            if rng.chance(30) {
                map.push(("folder".to_owned(), "/production/tier-1".to_owned()));
            }
            map
        }
        "HVM_boot_params" => pairs(&[("order", "cd"), ("firmware", "uefi")]),
        "VCPUs_params" if rng.chance(50) => pairs(&[("weight", "256"), ("cap", "0")]),
        "last_boot_CPU_flags" => pairs(&[
            ("vendor", "GenuineIntel"),
            (
                "features",
                "1fcbfbff-f7fa3223-2d93fbff-00000023-00000001-000007ab-00000000-00000000-00001000-ac000400-00000000-00000000-00000000-00000000-00000000-00000000-00000000-00000000",
            ),
        ]),
        "bios_strings" => pairs(&[
            ("bios-vendor", "Xen"),
            ("bios-version", ""),
            ("system-manufacturer", "Xen"),
            ("system-product-name", "HVM domU"),
            ("system-version", ""),
            ("system-serial-number", ""),
            ("baseboard-manufacturer", ""),
            ("baseboard-product-name", ""),
            ("hp-rombios", ""),
            ("oem-1", "Xen"),
            (
                "oem-2",
                "MS_VM_CERT/SHA1/bdbeb6e0a816d43fa6d3fe8aaef04c2bad9d3e3d",
            ),
        ]),
        "xenstore_data" => pairs(&[("vm-data", ""), ("vm-data/mmio-hole-size", "268435456")]),
        "NVRAM" if rng.chance(40) => {
            let mut blob = vec![0u8; 600];
            rng.fill(&mut blob);
            vec![("EFI-variables".to_owned(), base64_text(&blob))]
        }
        _ => return None,
    };
    Some(map)
}

fn base64_text(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Generates records of one class, with a counter that makes names unique.
#[derive(Debug)]
pub struct RecordGenerator {
    rng: SplitMix64,
    serial: u64,
}

impl RecordGenerator {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: SplitMix64::new(seed),
            serial: 0,
        }
    }

    /// One record of `class`: a struct with every field of the class.
    pub fn record(&mut self, class: &ClassMeta) -> Value {
        self.serial += 1;
        let fields = class
            .fields
            .iter()
            .map(|field| (field.name.to_owned(), self.field(field)))
            .collect();
        Value::Struct(fields)
    }

    fn field(&mut self, field: &FieldMeta) -> Value {
        let name = field.name;
        match field.ty {
            Ty::String => Value::String(self.string(name)),
            Ty::Int => Value::Int(self.int(name)),
            Ty::Map(&Ty::String, &Ty::String) => match sample_map(name, &mut self.rng) {
                Some(pairs) => Value::Struct(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect(),
                ),
                None => self.value(&field.ty, name),
            },
            Ty::Set(&Ty::Ref(_)) => {
                let count = match name {
                    "VBDs" => 1 + self.rng.below(3),
                    "VIFs" => 1 + self.rng.below(2),
                    "consoles" => 1,
                    "snapshots" | "children" => self.rng.below(3),
                    _ => 0,
                };
                Value::Array(
                    (0..count)
                        .map(|_| Value::String(opaque_ref(&mut self.rng)))
                        .collect(),
                )
            }
            Ty::Set(&Ty::Enum(e)) if name == "allowed_operations" => {
                let values = meta::enumeration(e).map_or(&[][..], |m| m.values);
                Value::Array(
                    values
                        .iter()
                        .filter(|_| self.rng.chance(60))
                        .map(|v| Value::String((*v).to_owned()))
                        .collect(),
                )
            }
            Ty::DateTime if name == "snapshot_time" && self.rng.chance(70) => {
                Value::DateTime(DateTime::default())
            }
            ref ty => self.value(ty, name),
        }
    }

    fn string(&mut self, name: &str) -> String {
        match name {
            "uuid" => uuid(&mut self.rng),
            "name_label" => format!(
                "{}-{:04} ({})",
                self.rng.pick(ROLES),
                self.serial,
                self.rng.pick(OS_NAMES)
            ),
            "name_description" if self.rng.chance(50) => {
                format!(
                    "{} server, owner team-{}",
                    self.rng.pick(ROLES),
                    self.rng.below(40)
                )
            }
            "HVM_boot_policy" => "BIOS order".to_owned(),
            "domarch" => "x64".to_owned(),
            "recommendations" => RECOMMENDATIONS.to_owned(),
            "generation_id" => format!("{}:{}", self.rng.next_u64() >> 1, self.rng.next_u64() >> 1),
            "ha_restart_priority" if self.rng.chance(30) => "restart".to_owned(),
            "reference_label" if self.rng.chance(30) => "debian-12".to_owned(),
            "last_booted_record" | "snapshot_metadata" | "transportable_snapshot_id" => {
                String::new()
            }
            _ if name.starts_with("PV_") => String::new(),
            _ => {
                if self.rng.chance(70) {
                    String::new()
                } else {
                    format!("{}-{}", name.to_ascii_lowercase(), self.rng.below(1000))
                }
            }
        }
    }

    fn int(&mut self, name: &str) -> i64 {
        let gib = 1i64 << 30;
        match name {
            n if n.starts_with("memory_static_max") || n.starts_with("memory_dynamic_max") => {
                gib * (1 + self.rng.below(32) as i64)
            }
            n if n.starts_with("memory_") => gib / 2 * (1 + self.rng.below(8) as i64),
            "VCPUs_max" | "VCPUs_at_startup" => 1 + self.rng.below(8) as i64,
            "domid" => {
                if self.rng.chance(50) {
                    -1
                } else {
                    self.rng.below(2000) as i64
                }
            }
            "hardware_platform_version" | "version" => self.rng.below(3) as i64,
            "start_delay" | "shutdown_delay" | "order" => self.rng.below(60) as i64,
            _ => self.rng.below(100) as i64,
        }
    }

    fn value(&mut self, ty: &Ty, name: &str) -> Value {
        match *ty {
            Ty::String => Value::String(self.string(name)),
            Ty::Int => Value::Int(self.int(name)),
            Ty::Float => Value::Double(f64::from(self.rng.below(400) as u32) / 100.0),
            Ty::Bool => Value::Bool(self.rng.chance(30)),
            Ty::DateTime => Value::DateTime(
                DateTime::from_unix_seconds(1_600_000_000 + self.rng.below(150_000_000) as i64)
                    .expect("a 2020s timestamp is a valid datetime"),
            ),
            Ty::Enum(e) => Value::String(self.enum_value(e)),
            Ty::Ref(_) => {
                if self.rng.chance(40) {
                    Value::String("OpaqueRef:NULL".to_owned())
                } else {
                    Value::String(opaque_ref(&mut self.rng))
                }
            }
            Ty::Set(inner) => {
                let n = self.rng.below(3);
                Value::Array((0..n).map(|_| self.value(inner, name)).collect())
            }
            Ty::Map(key, value) => {
                let n = if self.rng.chance(60) {
                    0
                } else {
                    1 + self.rng.below(3)
                };
                let mut map = BTreeMap::new();
                for i in 0..n {
                    let key = match *key {
                        Ty::Enum(e) => self.enum_value(e),
                        Ty::Ref(_) => opaque_ref(&mut self.rng),
                        Ty::Int => i.to_string(),
                        _ => format!("key-{i}"),
                    };
                    let value = self.value(value, name);
                    map.insert(key, value);
                }
                Value::Struct(map)
            }
            Ty::Option(inner) => self.value(inner, name),
            Ty::Record(class) => match meta::class(class) {
                Some(class) => self.record(class),
                None => Value::Struct(BTreeMap::new()),
            },
            Ty::Void | Ty::EventBatch | Ty::AnyRecord => Value::Struct(BTreeMap::new()),
        }
    }

    fn enum_value(&mut self, name: &str) -> String {
        match meta::enumeration(name) {
            Some(e) if !e.values.is_empty() => (*self.rng.pick(e.values)).to_owned(),
            _ => String::new(),
        }
    }
}

/// The result of `<class>.get_all_records` for `count` records: a struct from
/// `OpaqueRef:<uuid>` to each record.
///
/// # Panics
/// If the datamodel has no class `class` (a programming error in the caller).
pub fn all_records(class: &str, count: usize, seed: u64) -> Value {
    let class = meta::class(class).expect("the datamodel has the requested class");
    let mut generator = RecordGenerator::new(seed);
    let mut refs = SplitMix64::new(seed ^ 0x5EED);
    let mut map = BTreeMap::new();
    while map.len() < count {
        map.insert(opaque_ref(&mut refs), generator.record(class));
    }
    Value::Struct(map)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use xapi_core::api::{Vm, VmRecord};
    use xapi_core::wire::{Limits, Ref, jsonrpc, xmlrpc};

    use super::*;

    #[test]
    fn uuids_have_the_canonical_shape() {
        let text = uuid(&mut SplitMix64::new(1));
        assert_eq!(text.len(), 36);
        assert_eq!(text.as_bytes()[14], b'4');
        assert_eq!(text.matches('-').count(), 4);
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64_text(b"Man"), "TWFu");
        assert_eq!(base64_text(b"Ma"), "TWE=");
        assert_eq!(base64_text(b"M"), "TQ==");
    }

    #[test]
    fn vm_records_decode_into_typed_records_over_both_wires() {
        let records = all_records("VM", 25, 11);
        let Value::Struct(map) = &records else {
            panic!("get_all_records is a struct")
        };
        assert_eq!(map.len(), 25);
        let fields = meta::class("VM").map_or(0, |c| c.fields.len());
        assert!(
            map.values()
                .all(|r| matches!(r, Value::Struct(f) if f.len() == fields))
        );

        let xml = xmlrpc::encode_response(Ok(&records));
        let typed: HashMap<Ref<Vm>, VmRecord> = xmlrpc::decode_response(&xml, &Limits::default())
            .expect("the XML-RPC bytes decode")
            .expect("a success envelope");
        assert_eq!(typed.len(), 25);

        let json = jsonrpc::encode_response(jsonrpc::Version::V2, &Value::Int(1), Ok(&records));
        let typed_json: HashMap<Ref<Vm>, VmRecord> =
            jsonrpc::decode_response(&json, &Limits::default())
                .expect("the JSON-RPC bytes decode")
                .expect("a success result");
        assert_eq!(typed, typed_json);
        let (reference, record) = map.iter().next().expect("25 records");
        let vm = &typed[&Ref::new(reference.clone())];
        assert_eq!(
            Some(vm.name_label.as_str()),
            record.get("name_label").and_then(Value::as_str)
        );
        assert!(vm.memory_static_max >= 1 << 30);
    }
}
